//! Notifications: `notify::webhook(url, #{ text, json, headers, timeout })`,
//! `notify::slack(url, text)`, and the summary of each deploy that `--notify URL` posts.
//! A notification never fails a deploy: a webhook that errors or hangs is a warning.

use std::sync::Arc;
use std::time::Duration;

use rhai::{Map, NativeCallContext};

use super::deploy::journal::Record;
use super::options::{bad_value, Opts};
use crate::api::{opt, Api, OptionSpec, Spec, Type};
use crate::error::{Failure, RhaiResult};
use crate::exec::Ctx;

/// How long a webhook may take unless the recipe says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// One POST of a JSON body.
pub struct Webhook {
    pub url: String,
    pub body: serde_json::Value,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
}

/// The URL as printed: scheme, host and port only (a webhook's path is often its secret).
fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}/…",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "(not a URL)".into(),
    }
}

/// Posts `hook` with every secret masked in the body; true when the server answered 2xx.
/// In a dry run it prints what it would send. Failures are warnings.
pub fn post(ctx: &Ctx, hook: &Webhook) -> bool {
    let masker = ctx.printer.masker();
    let body = masker.mask(&hook.body.to_string());
    let target = shown(&hook.url);
    if ctx.dry_run {
        ctx.printer
            .action("local", &format!("notify {target} {body}"), true);
        return false;
    }
    ctx.printer.action(
        "local",
        &format!("notify {target} ({} bytes)", body.len()),
        false,
    );
    let warn = |why: String| {
        ctx.printer
            .warn(&format!("notification to {target} failed: {why}"));
        false
    };
    let (url, headers, timeout) = (hook.url.clone(), hook.headers.clone(), hook.timeout);
    // Built inside the runtime: the client's timers need its reactor.
    let send = async move {
        let client = reqwest::Client::builder().timeout(timeout).build()?;
        let mut request = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        request.send().await
    };
    // A notification after Ctrl-C still goes out (bounded by its timeout).
    let sent = ctx.uncancelled().wait("posting a notification", send);
    match sent {
        Ok(Ok(response)) if response.status().is_success() => true,
        Ok(Ok(response)) => warn(format!("HTTP {}", response.status())),
        Ok(Err(e)) if e.is_timeout() => warn(format!(
            "no answer within {}",
            crate::duration::format_duration(hook.timeout)
        )),
        Ok(Err(e)) => warn(masker.mask(&e.to_string())),
        Err(f) => warn(f.to_string()),
    }
}

/// The link to the CI run, when Galley runs in GitHub Actions.
pub fn ci_run_url() -> Option<String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    Some(format!(
        "{}/{}/actions/runs/{}",
        var("GITHUB_SERVER_URL")?,
        var("GITHUB_REPOSITORY")?,
        var("GITHUB_RUN_ID")?
    ))
}

/// The `--notify` payload for a finished deploy: Slack's `text`, and the same facts as fields.
pub fn deploy_summary(record: &Record) -> serde_json::Value {
    let version = record.version();
    let mark = if record.result == "ok" { "✅" } else { "❌" };
    let mut text = format!(
        "{mark} {} {}{} on {} by {}: {} in {:.1}s",
        record.app,
        if version.is_empty() { "" } else { "deploy of " },
        if version.is_empty() {
            "deploy".to_string()
        } else {
            version.clone()
        },
        record.hosts.join(", "),
        record.who,
        record.result,
        record.seconds
    );
    if let Some(error) = &record.error {
        text.push_str(&format!(" ({error})"));
    }
    let link = ci_run_url();
    if let Some(link) = &link {
        text.push_str(&format!(" <{link}|CI run>"));
    }
    serde_json::json!({
        "text": text,
        "galley": {
            "app": record.app, "version": version, "hosts": record.hosts, "who": record.who,
            "result": record.result, "seconds": record.seconds, "error": record.error,
            "run_url": link, "id": record.id,
        },
    })
}

/// After each deploy: its version becomes the run's `version` output (unless the recipe sets
/// one with `ci::output`), and its summary goes to every `--notify` webhook.
pub fn deploy_finished(ctx: &Ctx, record: &Record) {
    let version = record.version();
    if !version.is_empty() {
        ctx.printer.default_output("version", &version);
    }
    for url in &ctx.run.notify {
        post(
            ctx,
            &Webhook {
                url: url.clone(),
                body: deploy_summary(record),
                headers: Vec::new(),
                timeout: DEFAULT_TIMEOUT,
            },
        );
    }
}

fn webhook_from(url: &str, opts: Map) -> Result<Webhook, Failure> {
    let opts = Opts::new("notify::webhook", opts, WEBHOOK_OPTIONS)?;
    let body = match (opts.get("json"), opts.string("text")?) {
        (Some(json), _) => serde_json::to_value(json).map_err(|_| {
            bad_value(
                "notify::webhook",
                "option `json`",
                "a map or array of plain values",
                json,
            )
        })?,
        (None, Some(text)) => serde_json::json!({ "text": text }),
        (None, None) => {
            return Err(Failure::Other {
                message: "notify::webhook needs something to send".into(),
                help: "pass #{ text: \"...\" } (Slack-compatible) or #{ json: #{ ... } }".into(),
            })
        }
    };
    Ok(Webhook {
        url: url.to_string(),
        body,
        headers: opts.string_map("headers")?,
        timeout: opts.duration("timeout")?.unwrap_or(DEFAULT_TIMEOUT),
    })
}

const WEBHOOK_OPTIONS: &[OptionSpec] = &[
    opt(
        "text",
        Type::String,
        "",
        "the message, sent as #{ text } (what Slack and most chat webhooks take)",
    ),
    opt(
        "json",
        Type::Other("map | array"),
        "",
        "the body to send instead, as JSON",
    ),
    opt(
        "headers",
        Type::Env,
        "",
        "extra HTTP headers: #{ Authorization: \"Bearer ...\" }",
    ),
    opt(
        "timeout",
        Type::Duration,
        "\"10s\"",
        "how long the request may take",
    ),
];

/// Registers the `notify` module.
pub fn register(api: &mut Api, ctx: &Arc<Ctx>) {
    api.module("notify", "Webhooks: tell a chat or another service about a deploy. A failed post is a warning, never a failed run.");
    let c = ctx.clone();
    api.register(
        Spec::function("webhook", &[("url", "string"), ("opts", "map")], "bool")
            .module("notify")
            .doc("POSTs a message (or a JSON body) to a webhook, every secret masked; true when the server answered 2xx.")
            .example(r#"notify::webhook(secret("HOOK_URL"), #{ text: `deployed ${sha}` });"#)
            .options(WEBHOOK_OPTIONS),
        move |call: NativeCallContext, url: &str, opts: Map| -> RhaiResult<bool> {
            let hook = webhook_from(url, opts).map_err(|f| super::at_call(&call, f))?;
            Ok(post(&c, &hook))
        },
    );
    let c = ctx.clone();
    api.register(
        Spec::function("slack", &[("url", "string"), ("text", "string")], "bool")
            .module("notify")
            .doc("POSTs `#{ text }` to a Slack (or compatible) incoming webhook; true when it answered 2xx.")
            .example(r#"notify::slack(secret("SLACK_HOOK"), "deploy finished");"#),
        move |url: &str, text: &str| {
            let hook = Webhook {
                url: url.to_string(),
                body: serde_json::json!({ "text": text }),
                headers: Vec::new(),
                timeout: DEFAULT_TIMEOUT,
            };
            post(&c, &hook)
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_only_the_origin_of_a_webhook() {
        assert_eq!(
            shown("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(shown("http://127.0.0.1:8080/x"), "http://127.0.0.1:8080/…");
    }

    #[test]
    fn a_deploy_summary_has_the_facts_and_a_slack_text() {
        let record = Record {
            app: "web".into(),
            hosts: vec!["web1".into(), "web2".into()],
            who: "alice".into(),
            sha: Some("1a2b3c".into()),
            result: "ok".into(),
            seconds: 12.34,
            ..Record::default()
        };
        let body = deploy_summary(&record);
        let text = body["text"].as_str().unwrap();
        assert!(
            text.starts_with("✅ web deploy of 1a2b3c on web1, web2 by alice: ok in 12.3s"),
            "{text}"
        );
        assert_eq!(body["galley"]["version"], "1a2b3c");
    }
}
