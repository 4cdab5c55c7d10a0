//! `deploy::run`: what every strategy wraps its work in — the deploy lock on each host, the
//! timing, and one journal record whatever happens (success, failure, rollback, Ctrl-C).

pub mod journal;
pub mod lock;

use std::sync::Arc;
use std::time::Instant;

use rhai::{Dynamic, FnPtr, Map, NativeCallContext};

use super::host::Host;
use super::options::Opts;
use crate::api::{opt, Api, OptionSpec, Spec, Type};
use crate::error::{reason, Failure, RhaiResult};
use crate::exec::Ctx;

fn hosts_of(opts: &Opts) -> Result<Vec<Host>, Failure> {
    let one = opts.get("host").map(|h| vec![h.clone()]);
    let many = opts
        .get("hosts")
        .and_then(|h| h.clone().try_cast::<rhai::Array>());
    let values = one.or(many).unwrap_or_default();
    let hosts: Option<Vec<Host>> = values
        .into_iter()
        .map(rhai::Dynamic::try_cast::<Host>)
        .collect();
    match hosts {
        Some(hosts) if !hosts.is_empty() => Ok(hosts),
        _ => Err(Failure::Other {
            message: "deploy::run needs the host (or hosts) it deploys to".into(),
            help: "pass #{ app: \"web\", host: h, ... } or #{ hosts: [h1, h2], ... }".into(),
        }),
    }
}

/// The journal's result, error text and failed hosts of a deploy's body that ended with `result`.
fn outcome_of(
    ctx: &Ctx,
    result: &RhaiResult<Dynamic>,
) -> (&'static str, Option<String>, Vec<String>) {
    let Err(err) = result else {
        return ("ok", None, Vec::new());
    };
    let failure = Failure::of(err);
    let outcome = match &failure {
        Some(f) if f.is_rolled_back() => "rolled_back",
        Some(Failure::Interrupted { .. }) => "interrupted",
        _ if ctx.cancel.is_cancelled() => "interrupted",
        Some(Failure::Partial { .. }) => "partial",
        _ => "failed",
    };
    let text = match failure {
        Some(f) => f.to_string(),
        None => reason(err),
    };
    let failed = Failure::thrown(err).map(|f| f.failed_items());
    (outcome, Some(text), failed.unwrap_or_default())
}

fn run(ctx: &Ctx, call: &NativeCallContext, opts: Map, body: FnPtr) -> RhaiResult<Dynamic> {
    let opts = Opts::new("deploy::run", opts, RUN_OPTIONS)?;
    let app = opts.string("app")?.ok_or_else(|| Failure::Other {
        message: "deploy::run needs the app's name".into(),
        help: "pass #{ app: \"web\", ... }: the lock and the journal are per app".into(),
    })?;
    // The app names its lock file and its journal entries.
    super::validate::safe_name("app name", &app)?;
    // The release id names the release's folder (galley/releases).
    if let Some(release) = opts.string("release")? {
        super::validate::safe_name("release id", &release)?;
    }
    let hosts = hosts_of(&opts)?;
    // A closure gives a value known only once the deploy ran (the sha that a pull moved to).
    let text = |key: &str| match opts.get(key).and_then(|v| v.clone().try_cast::<FnPtr>()) {
        Some(f) => f
            .call_within_context::<Dynamic>(call, ())
            .ok()
            .map(|v| v.to_string()),
        None => opts.string(key).ok().flatten(),
    };
    let record = |result: &str, seconds: f64, error: Option<String>, failed: Vec<String>| {
        let (when, id) = journal::now();
        journal::Record {
            id,
            who: journal::who(),
            when,
            recipe: ctx.run.recipe.clone(),
            task: ctx.run.task.clone(),
            params: ctx.run.params.clone(),
            app: app.clone(),
            hosts: hosts.iter().map(|h| h.name().to_string()).collect(),
            strategy: text("strategy").unwrap_or_else(|| "custom".into()),
            sha: text("sha"),
            branch: text("branch"),
            image: text("image"),
            release: text("release"),
            replicas: opts.int("replicas").ok().flatten(),
            result: result.into(),
            seconds,
            error: error.map(|e| ctx.printer.masker().mask(&e)),
            libraries: ctx
                .run
                .libraries
                .lock()
                .map(|l| l.clone())
                .unwrap_or_default(),
            failed,
            rollback_to: ctx
                .run
                .params
                .iter()
                .find(|(k, _)| k == "rollback_to")
                .map(|(_, v)| v.clone()),
        }
    };
    // Hosts whose lock file this run created: they release it and keep the host's journal.
    let mut created: Vec<&Host> = Vec::new();
    for host in &hosts {
        match lock::acquire(host, &app) {
            Ok(lock::Taken::Created) => created.push(host),
            Ok(lock::Taken::AlreadyOurs) => {}
            Err(failure) => {
                for held in &created {
                    let _ = lock::release(held, &app);
                }
                if !ctx.dry_run {
                    let outcome = lock_outcome(&failure, ctx.cancel.is_cancelled());
                    write_journal(
                        ctx,
                        &[],
                        &record(outcome, 0.0, Some(failure.to_string()), Vec::new()),
                    );
                }
                return Err(failure.into());
            }
        }
    }
    let started = Instant::now();
    let result = body.call_within_context::<Dynamic>(call, ());
    let seconds = started.elapsed().as_secs_f64();
    for host in &created {
        if let Err(failure) = lock::release(host, &app) {
            ctx.printer
                .warn(&format!("could not release the lock: {failure}"));
        }
    }
    let (outcome, error, failed) = outcome_of(ctx, &result);
    let record = record(outcome, seconds, error, failed);
    if !ctx.dry_run {
        write_journal(ctx, &created, &record);
    }
    super::notify::deploy_finished(ctx, &record);
    result
}

/// How a deploy that could not take its lock is journaled: "refused" only when another deploy
/// holds it; a Ctrl-C or a host that could not be reached while taking it is not a refusal.
fn lock_outcome(failure: &Failure, cancelled: bool) -> &'static str {
    match failure {
        Failure::Locked { .. } => "refused",
        Failure::Interrupted { .. } => "interrupted",
        _ if cancelled => "interrupted",
        _ => "failed",
    }
}

/// Appends `record` to this machine's journal and to the journal in the state folder of each
/// ssh host of `hosts`; a journal that cannot be written is a warning, never the deploy's failure.
fn write_journal(ctx: &Ctx, hosts: &[&Host], record: &journal::Record) {
    // Every field masked: a secret in a param, a sha or an error never reaches a journal.
    let record = &record.masked(ctx.printer.masker());
    if let Err(e) = journal::append(record) {
        ctx.printer.warn(&format!(
            "could not write the deploy journal {}: {e}",
            journal::path().display()
        ));
    }
    for host in hosts.iter().filter(|h| !h.is_local()) {
        if let Err(failure) = journal::append_on(&host.uncancelled(), record) {
            ctx.printer.warn(&format!(
                "could not write the deploy journal on {}: {failure}",
                host.name()
            ));
        }
    }
}

/// The failure a strategy throws after it put the old version back: `cause` is what went wrong.
fn rolled_back(app: &str, cause: &Dynamic, note: &str) -> Failure {
    let cause_text = match cause.clone().try_cast::<Failure>() {
        Some(failure) => failure.to_string(),
        None => cause.to_string(),
    };
    let detail = match cause.clone().try_cast::<Failure>() {
        Some(failure) => failure.details(),
        None => Vec::new(),
    };
    Failure::RolledBack {
        app: app.to_string(),
        cause: format!("{cause_text} ({note})"),
        detail,
    }
}

const RUN_OPTIONS: &[OptionSpec] = &[
    opt(
        "app",
        Type::String,
        "",
        "the app's name (required): the lock and the journal are per app",
    ),
    opt(
        "host",
        Type::Custom("Host"),
        "",
        "the host it deploys to (or `hosts`)",
    ),
    opt(
        "hosts",
        Type::Array,
        "",
        "the hosts it deploys to, each locked",
    ),
    opt(
        "strategy",
        Type::String,
        "",
        "the strategy's name, for the journal",
    ),
    opt(
        "sha",
        Type::Other("string | fn"),
        "",
        "the version deployed, for the journal; a closure gives it once the deploy ran",
    ),
    opt(
        "branch",
        Type::Other("string | fn"),
        "",
        "the branch deployed, for the journal",
    ),
    opt(
        "image",
        Type::Other("string | fn"),
        "",
        "the image deployed, for the journal",
    ),
    opt(
        "release",
        Type::String,
        "",
        "the release id (galley/releases), for the journal",
    ),
    opt(
        "replicas",
        Type::Other("int | fn"),
        "",
        "the replicas deployed (galley/swarm), for the journal",
    ),
];

/// Registers the `deploy` module.
pub fn register(api: &mut Api, ctx: &Arc<Ctx>) {
    api.module(
        "deploy",
        "The deploy lock and journal that every strategy wraps its work in.",
    );
    let c = ctx.clone();
    api.register(
        Spec::function("run", &[("meta", "map"), ("body", "fn")], "any")
            .module("deploy")
            .doc("Runs the closure holding the app's deploy lock on each host, and writes one journal record whatever happens (success, failure, rollback, Ctrl-C); returns the closure's value.")
            .example(r#"deploy::run(#{ app: "web", host: web, strategy: "custom" }, || web.run("./deploy.sh"));"#)
            .options(RUN_OPTIONS),
        move |call: NativeCallContext, opts: Map, body: FnPtr| run(&c, &call, opts, body),
    );
    api.register(
        Spec::function("rolled_back", &[("app", "string"), ("cause", "any"), ("note", "string")], "Failure")
            .module("deploy")
            .doc("The failure a strategy throws after it put the old version back: `cause` is what went wrong, `note` what was restored.")
            .example(r#"throw deploy::rolled_back("web", e, "the old container serves again");"#),
        |app: &str, cause: Dynamic, note: &str| -> RhaiResult<Dynamic> {
            Ok(Dynamic::from(rolled_back(app, &cause, note)))
        },
    );
    api.register(
        Spec::function("unlock", &[("host", "Host"), ("app", "string")], "string | ()")
            .module("deploy")
            .doc("Clears the app's deploy lock on the host; returns who held it, or () when it was not locked.")
            .example(r#"deploy::unlock(web, "web");"#),
        |call: NativeCallContext, host: Host, app: &str| -> RhaiResult<Dynamic> {
            let cleared =
                super::validate::safe_name("app name", app).and_then(|()| lock::clear(&host, app));
            match cleared {
                Ok(Some(holder)) => Ok(holder.into()),
                Ok(None) => Ok(Dynamic::UNIT),
                Err(failure) => Err(super::at_call(&call, failure)),
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lock_held_by_another_deploy_is_a_refusal() {
        let locked = Failure::Locked {
            host: "web1".into(),
            app: "web".into(),
            holder: "someone".into(),
            stale: false,
        };
        assert_eq!(lock_outcome(&locked, false), "refused");
        let stopped = Failure::Interrupted {
            what: "creating the lock".into(),
        };
        assert_eq!(lock_outcome(&stopped, true), "interrupted");
        let other = Failure::Other {
            message: "cannot find Galley's state folder".into(),
            help: String::new(),
        };
        assert_eq!(lock_outcome(&other, true), "interrupted");
        assert_eq!(lock_outcome(&other, false), "failed");
    }
}
