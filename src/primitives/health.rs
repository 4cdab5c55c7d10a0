//! `health::http` and `health::tcp`: wait until an endpoint answers, or fail with what it last said.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rhai::{Dynamic, Engine, Map, Module, NativeCallContext};

use super::at_call;

use super::options::Opts;
use crate::exec::{Action, Ctx};
use crate::report::Failure;

/// How much of the last response body a failure shows.
const BODY_SHOWN: usize = 500;

const HTTP_OPTIONS: &[&str] = &["on", "expect", "contains", "timeout", "retries", "interval"];
const TCP_OPTIONS: &[&str] = &["on", "timeout", "retries", "interval"];

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

fn http(ctx: &Ctx, url: &str, opts: Map) -> Result<Map, Failure> {
    let opts = Opts::new("health::http", opts, HTTP_OPTIONS)?;
    let policy = Policy::from(&opts)?;
    let expect = opts.int("expect")?.unwrap_or(200);
    let contains = opts.string("contains")?;
    let mut result = Map::new();
    if ctx.dry_run {
        poll(
            ctx,
            url,
            &Policy {
                retries: 1,
                ..policy
            },
            || Ok(Ok(())),
        )?;
        result.insert("status".into(), Dynamic::from(expect));
        return Ok(result);
    }
    let (body, attempts) = poll(ctx, url, &policy, || {
        let response = ctx.wait(&format!("checking {url}"), async {
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
    let policy = Policy::from(&opts)?;
    let mut result = Map::new();
    if ctx.dry_run {
        poll(
            ctx,
            addr,
            &Policy {
                retries: 1,
                ..policy
            },
            || Ok(Ok(())),
        )?;
        return Ok(result);
    }
    let (_, attempts) = poll(ctx, addr, &policy, || {
        let connect = async {
            tokio::time::timeout(policy.timeout, tokio::net::TcpStream::connect(addr)).await
        };
        Ok(match ctx.wait(&format!("connecting to {addr}"), connect)? {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", policy.timeout)),
        })
    })?;
    result.insert("attempts".into(), Dynamic::from(i64::from(attempts)));
    Ok(result)
}

/// Registers the `health` module.
pub fn register(engine: &mut Engine, ctx: &Arc<Ctx>) {
    let mut module = Module::new();
    for (name, check) in [
        ("http", http as fn(&Ctx, &str, Map) -> Result<Map, Failure>),
        ("tcp", tcp),
    ] {
        let c = ctx.clone();
        module.set_native_fn(name, move |call: NativeCallContext, target: &str| {
            check(&c, target, Map::new()).map_err(|f| at_call(&call, f.into_rhai()))
        });
        let c = ctx.clone();
        module.set_native_fn(
            name,
            move |call: NativeCallContext, target: &str, opts: Map| {
                check(&c, target, opts).map_err(|f| at_call(&call, f.into_rhai()))
            },
        );
    }
    engine.register_static_module("health", module.into());
}
