//! `health::http` and `health::tcp`: wait until an endpoint answers, or fail with what it last said.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rhai::{Dynamic, Map, NativeCallContext};

use super::at_call;
use super::host::Host;

use super::listen::{listener, Listener};
use super::options::Opts;
use super::process::Service;
use crate::api::{opt, Api, OptionSpec, Spec, Type};
use crate::error::Failure;
use crate::exec::{Action, Ctx};

/// How much of the last response body a failure shows.
const BODY_SHOWN: usize = 500;

const ON: OptionSpec = opt(
    "on",
    Type::Custom("Host"),
    "local()",
    "check from this host: the endpoint is reached through its ssh connection",
);
const TIMEOUT: OptionSpec = opt(
    "timeout",
    Type::Duration,
    "\"5s\"",
    "how long one attempt may take",
);
const RETRIES: OptionSpec = opt(
    "retries",
    Type::Int,
    "30",
    "how many attempts before it fails",
);
const INTERVAL: OptionSpec = opt(
    "interval",
    Type::Duration,
    "\"1s\"",
    "the pause between attempts",
);
const SERVICE: OptionSpec = opt(
    "service",
    Type::Custom("Service"),
    "",
    "an answer counts only while this service's process runs and listens on the port; fails at once when it exits",
);

const HTTP_OPTIONS: &[OptionSpec] = &[
    ON,
    opt(
        "expect",
        Type::Int,
        "200",
        "the status code that counts as healthy",
    ),
    opt("contains", Type::String, "", "text the body must contain"),
    TIMEOUT,
    RETRIES,
    INTERVAL,
    SERVICE,
];
const TCP_OPTIONS: &[OptionSpec] = &[ON, TIMEOUT, RETRIES, INTERVAL, SERVICE];

const HTTP: Spec = Spec::function("http", &[("url", "string"), ("opts", "map")], "map")
    .module("health")
    .doc("Polls an HTTP endpoint until it answers with the expected status (and text); returns #{ status, body, attempts }.")
    .example(r#"health::http("http://127.0.0.1:8000/health", #{ on: web, retries: 10, interval: "500ms" });"#)
    .options(HTTP_OPTIONS);

const TCP: Spec = Spec::function("tcp", &[("addr", "string"), ("opts", "map")], "map")
    .module("health")
    .doc("Polls a TCP address (HOST:PORT) until it accepts a connection; returns #{ attempts }.")
    .example(r#"health::tcp("127.0.0.1:5432", #{ on: db, timeout: "2s" });"#)
    .options(TCP_OPTIONS);

/// How often and how long to try.
struct Policy {
    timeout: Duration,
    retries: u32,
    interval: Duration,
}

impl Policy {
    fn from(opts: &Opts) -> Result<Self, Failure> {
        Ok(Policy {
            timeout: opts.duration("timeout")?.unwrap_or(Duration::from_secs(5)),
            retries: opts.int("retries")?.unwrap_or(30).clamp(1, 100_000) as u32,
            interval: opts.duration("interval")?.unwrap_or(Duration::from_secs(1)),
        })
    }
}

/// The service a check is about (option `service`): an answer counts only while its process is
/// alive and is the one listening on the checked port, so that an old copy of the app, or
/// another program on the port, never passes for the new version.
struct Guard {
    service: Service,
    port: u16,
}

impl Guard {
    fn from(function: &str, opts: &Opts, port: u16) -> Result<Option<Guard>, Failure> {
        match opts.get("service") {
            None => Ok(None),
            Some(v) => match v.clone().try_cast::<Service>() {
                Some(service) => Ok(Some(Guard { service, port })),
                None => Err(super::options::bad_value(
                    function,
                    "option `service`",
                    "a Service (host.process(...))",
                    v,
                )),
            },
        }
    }

    /// The service's pid; fails at once when its process is gone: it will never answer.
    fn alive(&self) -> Result<i64, Failure> {
        self.service.pid()?.ok_or_else(|| {
            self.service.failure(
                "exited while its health check waited for it".into(),
                &format!(
                    "its output is in {}; another program on port {} would make it exit like this",
                    self.service.log(),
                    self.port
                ),
            )
        })
    }

    /// Why an answer does not count, if it does not: another program holds the port. Fails
    /// when the service exited meanwhile.
    fn serving(&self, pid: i64) -> Result<Result<(), String>, Failure> {
        let found = listener(self.service.host(), pid, self.port);
        if self.alive()? != pid {
            return Ok(Err(format!(
                "`{}` was restarted meanwhile",
                self.service.name()
            )));
        }
        Ok(match found {
            Listener::Ours | Listener::Unknown => Ok(()),
            Listener::Nobody => Err(format!("nothing listens on port {} any more", self.port)),
            Listener::Other => Err(format!(
                "port {} answers, but from another program: `{}` (pid {pid}) and its children do \
                 not hold it",
                self.port,
                self.service.name()
            )),
        })
    }
}

/// Tries `attempt` until it returns Ok, showing a spinner; the error of the last attempt is kept.
fn poll<T>(
    ctx: &Ctx,
    target: &str,
    policy: &Policy,
    mut attempt: impl FnMut() -> Result<Result<T, String>, Failure>,
) -> Result<(T, u32), Failure> {
    if ctx.dry_run {
        ctx.printer.action(
            "local",
            &Action::Check {
                what: target.into(),
            }
            .to_string(),
            true,
        );
    }
    let spinner = ctx.printer.spinner(&format!("waiting for {target}"));
    let mut last = String::from("no attempt made");
    for n in 1..=policy.retries {
        spinner.update(&format!(
            "waiting for {target}: attempt {n}/{}",
            policy.retries
        ));
        match attempt()? {
            Ok(value) => return Ok((value, n)),
            Err(why) => last = why,
        }
        if n < policy.retries {
            ctx.sleep(policy.interval)?;
        }
    }
    Err(Failure::Health {
        target: target.to_string(),
        attempts: policy.retries,
        last,
    })
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .expect("http client")
    })
}

/// The error and its causes on one line ("error sending request: ...: Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The host named by `on`, if any.
fn on_host(function: &str, opts: &Opts) -> Result<Option<Host>, Failure> {
    match opts.get("on") {
        None => Ok(None),
        Some(v) => v.clone().try_cast::<Host>().map(Some).ok_or_else(|| {
            super::options::bad_value(
                function,
                "option `on`",
                "a Host (local() or ssh::connect(...))",
                v,
            )
        }),
    }
}

/// Where to send a check for `host:port` on `on`: through a tunnel when `on` is an ssh host,
/// because apps usually listen on the server's loopback only.
fn reach(function: &str, on: &Host, host: &str, port: u16) -> Result<String, Failure> {
    if !matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1") {
        return Err(Failure::Other {
            message: format!("{function}: with `on`, the address must be the host's own loopback, not {host}"),
            help: "write the URL as the host itself would reach the app, e.g. http://127.0.0.1:8080/health".into(),
        });
    }
    on.forward(port)
}

fn http(ctx: &Ctx, url: &str, opts: Map) -> Result<Map, Failure> {
    let opts = Opts::new("health::http", opts, HTTP_OPTIONS)?;
    let parsed = reqwest::Url::parse(url).map_err(|e| Failure::BadValue {
        function: "health::http".into(),
        what: "the URL".into(),
        expected: "a URL such as \"http://127.0.0.1:8080/health\"".into(),
        got: format!("{url:?} ({e})"),
    });
    let guard = match &parsed {
        Ok(u) => Guard::from(
            "health::http",
            &opts,
            u.port_or_known_default().unwrap_or(80),
        )?,
        Err(_) => None,
    };
    if let Some(on) = on_host("health::http", &opts)? {
        let mut direct = parsed?;
        let host = direct.host_str().unwrap_or_default().to_string();
        let port = direct.port_or_known_default().unwrap_or(80);
        let local = reach("health::http", &on, &host, port)?;
        let (ip, local_port) = local.rsplit_once(':').unwrap_or((&local, ""));
        let _ = direct.set_ip_host(ip.parse().expect("forward gives an IP address"));
        let _ = direct.set_port(local_port.parse().ok());
        return check_http(
            ctx,
            direct.as_str(),
            &format!("{url} on {}", on.name()),
            &opts,
            guard,
        );
    }
    check_http(ctx, url, url, &opts, guard)
}

/// Polls `url`; failures and progress name it as `shown`.
fn check_http(
    ctx: &Ctx,
    url: &str,
    shown: &str,
    opts: &Opts,
    guard: Option<Guard>,
) -> Result<Map, Failure> {
    let policy = Policy::from(opts)?;
    let expect = opts.int("expect")?.unwrap_or(200);
    let contains = opts.string("contains")?;
    let mut result = Map::new();
    if ctx.dry_run {
        poll(
            ctx,
            shown,
            &Policy {
                retries: 1,
                ..policy
            },
            || Ok(Ok(())),
        )?;
        result.insert("status".into(), Dynamic::from(expect));
        return Ok(result);
    }
    let (body, attempts) = poll(ctx, shown, &policy, || {
        let pid = guard.as_ref().map(Guard::alive).transpose()?;
        let response = ctx.wait(&format!("checking {shown}"), async {
            let response = client().get(url).timeout(policy.timeout).send().await?;
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            Ok::<_, reqwest::Error>((status, body))
        })?;
        Ok(match response {
            Err(e) => Err(error_chain(&e)),
            Ok((status, body)) => {
                let shown: String = body.chars().take(BODY_SHOWN).collect();
                if i64::from(status) != expect {
                    Err(format!(
                        "HTTP {status} (expected {expect}), body: {shown:?}"
                    ))
                } else if contains.as_deref().is_some_and(|c| !body.contains(c)) {
                    Err(format!(
                        "HTTP {status} but the body does not contain {:?}, body: {shown:?}",
                        contains.as_deref().unwrap_or_default()
                    ))
                } else if let (Some(guard), Some(pid)) = (&guard, pid) {
                    guard.serving(pid)?.map(|()| body)
                } else {
                    Ok(body)
                }
            }
        })
    })?;
    result.insert("status".into(), Dynamic::from(expect));
    result.insert("body".into(), body.into());
    result.insert("attempts".into(), Dynamic::from(i64::from(attempts)));
    Ok(result)
}

fn tcp(ctx: &Ctx, addr: &str, opts: Map) -> Result<Map, Failure> {
    let opts = Opts::new("health::tcp", opts, TCP_OPTIONS)?;
    if let Some(on) = on_host("health::tcp", &opts)? {
        let (host, port) = addr
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
            .ok_or_else(|| Failure::BadValue {
                function: "health::tcp".into(),
                what: "the address".into(),
                expected: "\"HOST:PORT\"".into(),
                got: format!("{addr:?}"),
            })?;
        let guard = Guard::from("health::tcp", &opts, port)?;
        let local = reach("health::tcp", &on, host, port)?;
        return check_tcp(
            ctx,
            &local,
            &format!("{addr} on {}", on.name()),
            &opts,
            guard,
        );
    }
    let port = addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok());
    let guard = match port {
        Some(port) => Guard::from("health::tcp", &opts, port)?,
        None => None,
    };
    check_tcp(ctx, addr, addr, &opts, guard)
}

/// Polls a TCP connect to `addr`; failures and progress name it as `shown`.
fn check_tcp(
    ctx: &Ctx,
    addr: &str,
    shown: &str,
    opts: &Opts,
    guard: Option<Guard>,
) -> Result<Map, Failure> {
    let policy = Policy::from(opts)?;
    let mut result = Map::new();
    if ctx.dry_run {
        poll(
            ctx,
            shown,
            &Policy {
                retries: 1,
                ..policy
            },
            || Ok(Ok(())),
        )?;
        return Ok(result);
    }
    let ((), attempts) = poll(ctx, shown, &policy, || {
        let pid = guard.as_ref().map(Guard::alive).transpose()?;
        let connect = async {
            tokio::time::timeout(policy.timeout, tokio::net::TcpStream::connect(addr)).await
        };
        Ok(
            match ctx.wait(&format!("connecting to {shown}"), connect)? {
                Ok(Ok(_)) => match (&guard, pid) {
                    (Some(guard), Some(pid)) => guard.serving(pid)?,
                    _ => Ok(()),
                },
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {:?}", policy.timeout)),
            },
        )
    })?;
    result.insert("attempts".into(), Dynamic::from(i64::from(attempts)));
    Ok(result)
}

/// Registers the `health` module.
pub fn register(api: &mut Api, ctx: &Arc<Ctx>) {
    api.module("health", "Health checks that wait for an endpoint to answer, from the local machine or through a host.");
    for (spec, check) in [
        (HTTP, http as fn(&Ctx, &str, Map) -> Result<Map, Failure>),
        (TCP, tcp),
    ] {
        let c = ctx.clone();
        api.register(
            spec.without_options(),
            move |call: NativeCallContext, target: &str| {
                check(&c, target, Map::new()).map_err(|f| at_call(&call, f))
            },
        );
        let c = ctx.clone();
        api.register(
            spec,
            move |call: NativeCallContext, target: &str, opts: Map| {
                check(&c, target, opts).map_err(|f| at_call(&call, f))
            },
        );
    }
}
