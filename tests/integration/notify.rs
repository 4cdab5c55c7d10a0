//! Notifications against a real HTTP server on loopback, started by each test: one that answers
//! 200, one that answers 500 and one that never answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use crate::support::Sandbox;

/// What the server received: headers (names lowercased) and the JSON body.
#[derive(Clone, Debug)]
struct Request {
    path: String,
    headers: Vec<(String, String)>,
    body: serde_json::Value,
}

#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// Reads the request, then keeps the connection open without a word.
    Hang,
}

/// A tiny HTTP/1.1 server: records each request, answers as told.
struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    fn start(answer: Answer) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let seen = requests.clone();
        std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            for stream in listener.incoming().flatten() {
                let Some(request) = read_request(&stream) else {
                    continue;
                };
                seen.lock().unwrap().push(request);
                match answer {
                    Answer::Status(code) => {
                        let mut stream = stream;
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {code} Status\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        );
                    }
                    Answer::Hang => held.push(stream),
                }
            }
        });
        Server { port, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader.read_line(&mut first).ok()?;
    let path = first.split_whitespace().nth(1)?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_lowercase(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        path,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    })
}

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn webhook_and_slack_post_json_with_secrets_masked() {
    let server = Server::start(Answer::Status(200));
    let sb = Sandbox::new();
    let recipe = format!(
        r#"let token = secret("TOKEN");
log("delivered: " + notify::webhook("{url}", #{{ text: "deployed with " + token, headers: #{{ "X-Team": "seeds" }} }}));
notify::webhook("{url}", #{{ json: #{{ app: "web", hosts: ["a", "b"], key: token }} }});
notify::slack("{url}", "hello");
"#,
        url = server.url("/hook/secret-path")
    );
    sb.write("recipe.rhai", &recipe);
    let out = sb
        .invoke(["run", "recipe.rhai", "--output", "plain"])
        .env("TOKEN", "tok-12345")
        .run()
        .expect_code(0);
    assert!(out.stdout.contains("delivered: true"), "{}", out.stdout);
    // The webhook's path (often its secret) is not printed.
    assert!(!out.stdout.contains("secret-path"), "{}", out.stdout);
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert_eq!(requests[0].path, "/hook/secret-path");
    assert_eq!(
        requests[0].body,
        serde_json::json!({ "text": "deployed with ***" })
    );
    assert_eq!(header(&requests[0], "x-team"), Some("seeds"));
    assert_eq!(
        header(&requests[0], "content-type"),
        Some("application/json")
    );
    assert_eq!(
        requests[1].body,
        serde_json::json!({ "app": "web", "hosts": ["a", "b"], "key": "***" })
    );
    assert_eq!(requests[2].body, serde_json::json!({ "text": "hello" }));
}

#[test]
fn a_webhook_that_fails_or_hangs_is_a_warning_and_the_run_goes_on() {
    let failing = Server::start(Answer::Status(500));
    let hanging = Server::start(Answer::Hang);
    let sb = Sandbox::new();
    let run = sb
        .run_recipe(
            &format!(
                r#"log("500: " + notify::slack("{}", "x"));
log("hang: " + notify::webhook("{}", #{{ text: "y", timeout: "1s" }}));
log("after");
"#,
                failing.url("/"),
                hanging.url("/")
            ),
            &[],
        )
        .expect_code(0);
    let failed = format!(
        "warning: notification to http://127.0.0.1:{}/… failed: HTTP 500 Internal Server Error",
        failing.port
    );
    assert!(run.stdout.contains(&failed), "{}", run.stdout);
    let hung = format!(
        "warning: notification to http://127.0.0.1:{}/… failed: no answer within 1s",
        hanging.port
    );
    assert!(run.stdout.contains(&hung), "{}", run.stdout);
    assert!(run.stdout.contains("500: false"), "{}", run.stdout);
    assert!(run.stdout.contains("hang: false"), "{}", run.stdout);
    assert!(run.stdout.contains("after"), "{}", run.stdout);
    assert_eq!(hanging.requests().len(), 1);
}

const DEPLOYS: &str = r#"let token = secret("TOKEN");
deploy::run(#{ app: "web", host: local(), sha: "abc123" }, || log("deploying"));
deploy::run(#{ app: "api", host: local(), image: "api:7" }, || { throw "boom " + token; });
"#;

#[test]
fn notify_posts_one_summary_per_deploy_and_a_failing_hook_does_not_fail_it() {
    let good = Server::start(Answer::Status(200));
    let bad = Server::start(Answer::Status(500));
    let sb = Sandbox::new();
    sb.write("recipe.rhai", DEPLOYS);
    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "plain", "--notify"])
        .state("state")
        .env("TOKEN", "tok-12345")
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_REPOSITORY", "seeds/app")
        .env("GITHUB_RUN_ID", "42")
        .env("GITHUB_ACTOR", "alice")
        .env("GALLEY_NOTIFY", bad.url("/"))
        .args([good.url("/slack")])
        .run()
        .expect_code(1);
    // --notify given on the command line replaces GALLEY_NOTIFY.
    assert!(bad.requests().is_empty());
    let requests = good.requests();
    assert_eq!(requests.len(), 2, "{requests:?}\n{}", run.stdout);
    let ok = &requests[0].body["galley"];
    assert_eq!(ok["app"], "web");
    assert_eq!(ok["version"], "abc123");
    assert_eq!(ok["hosts"], serde_json::json!(["local"]));
    assert_eq!(ok["result"], "ok");
    assert_eq!(
        ok["run_url"],
        "https://github.com/seeds/app/actions/runs/42"
    );
    assert!(ok["who"].as_str().unwrap().starts_with("alice"), "{ok}");
    let text = requests[0].body["text"].as_str().unwrap();
    assert!(
        text.starts_with("✅ web deploy of abc123 on local by alice"),
        "{text}"
    );
    assert!(
        text.ends_with("<https://github.com/seeds/app/actions/runs/42|CI run>"),
        "{text}"
    );
    let failed = &requests[1].body["galley"];
    assert_eq!(failed["app"], "api");
    assert_eq!(failed["result"], "failed");
    assert_eq!(failed["version"], "api:7");
    assert!(
        failed["error"].as_str().unwrap().contains("boom ***"),
        "{failed}"
    );

    // The same deploys with only the failing hook: a warning each, the first deploy still ok.
    let run = sb
        .invoke(["run", "recipe.rhai", "--output", "plain"])
        .state("state")
        .env("TOKEN", "tok-12345")
        .env("GALLEY_NOTIFY", bad.url("/"))
        .run()
        .expect_code(1);
    assert_eq!(bad.requests().len(), 2);
    assert_eq!(
        run.stdout.matches("failed: HTTP 500").count(),
        2,
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("boom ***"), "{}", run.stderr);
}

#[test]
fn a_dry_run_prints_the_notification_and_sends_nothing() {
    let server = Server::start(Answer::Status(200));
    let sb = Sandbox::new();
    sb.write("recipe.rhai", DEPLOYS);
    let run = sb
        .invoke([
            "run",
            "recipe.rhai",
            "--output",
            "plain",
            "--dry-run",
            "--notify",
        ])
        .state("state")
        .env("TOKEN", "tok-12345")
        .args([server.url("/")])
        .run();
    let run = run.expect_code(1);
    let would = format!(
        "[local] would notify http://127.0.0.1:{}/… {{\"galley\":",
        server.port
    );
    assert!(run.stdout.contains(&would), "{}", run.stdout);
    assert!(run.stdout.contains("boom ***"), "{}", run.stdout);
    assert!(server.requests().is_empty());
}
