//! `cache::step(name, #{ on: host, inputs: [...] }, || ...)`: what `actions/cache` keyed by a
//! lockfile does, on the host itself. The inputs are hashed on the host (`sha256sum`); when the
//! hashes match the ones recorded after the step last succeeded there, the closure is skipped.
//! The record is written only after a success, in the host's state folder.

use std::sync::Arc;

use rhai::{Dynamic, FnPtr, Map, NativeCallContext};

use super::host::Host;
use super::local::LocalTransport;
use super::options::Opts;
use crate::api::{opt, Api, OptionSpec, Spec, Type};
use crate::error::{Failure, RhaiResult};
use crate::exec::{Command, Ctx};

/// The record's file name for a step: its name with anything unusual replaced.
fn record_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.sha256")
}

/// `sha256sum` of the inputs on the host: one line per input, so the list itself counts too.
fn hash_inputs(
    host: &Host,
    name: &str,
    inputs: &[String],
    dir: Option<String>,
) -> Result<String, Failure> {
    let mut cmd = Command::new(
        ["sha256sum", "--"]
            .iter()
            .map(std::string::ToString::to_string)
            .chain(inputs.iter().cloned()),
    );
    cmd.dir = dir;
    let out = host.probe(cmd)?;
    if !out.success() {
        return Err(Failure::Other {
            message: format!(
                "cache::step `{name}`: cannot hash its inputs on {}: {}",
                host.name(),
                out.stderr.trim()
            ),
            help: "inputs are files on the host, relative to `dir` (or to the login folder over ssh, the current folder locally)".into(),
        });
    }
    Ok(out.stdout)
}

/// Writes the record atomically (temp file, then rename), creating the cache folder.
fn record(host: &Host, folder: &str, file: &str, hashes: &str) -> Result<(), Failure> {
    let mut cmd = Command::new([
        "sh",
        "-c",
        r#"mkdir -p -- "$1" && cat > "$1/$2.tmp" && mv -f -- "$1/$2.tmp" "$1/$2""#,
        "sh",
        folder,
        file,
    ])
    .quiet();
    cmd.stdin = Some(hashes.to_string());
    host.run_checked(cmd).map(|_| ())
}

fn step(
    ctx: &Arc<Ctx>,
    call: &NativeCallContext,
    name: &str,
    opts: Map,
    body: FnPtr,
) -> RhaiResult<Dynamic> {
    let opts = Opts::new("cache::step", opts, STEP_OPTIONS)?;
    let host = match opts.get("on") {
        None => Host::new(Arc::new(LocalTransport), ctx.clone()),
        Some(value) => value.clone().try_cast::<Host>().ok_or_else(|| {
            super::options::bad_value("cache::step", "option `on`", "a host", value)
        })?,
    };
    let inputs = opts
        .strings("inputs")?
        .filter(|i| !i.is_empty())
        .ok_or_else(|| Failure::Other {
            message: format!("cache::step `{name}` needs the files whose change reruns it"),
            help: "pass #{ inputs: [\"uv.lock\", \"pyproject.toml\"], on: host }".into(),
        })?;
    let dir = opts.string("dir")?;
    let hashes = hash_inputs(&host, name, &inputs, dir)?;
    let folder = format!("{}/cache", host.state_dir()?);
    let file = record_name(name);
    let path = format!("{folder}/{file}");
    let last = if host.exists(&path)? {
        Some(host.read_text(&path)?)
    } else {
        None
    };
    if last.as_deref() == Some(hashes.as_str()) {
        ctx.printer.cached(host.name(), name);
        return Ok(Dynamic::UNIT);
    }
    let result = body.call_within_context::<Dynamic>(call, ())?;
    if !ctx.dry_run {
        record(&host, &folder, &file, &hashes)?;
    }
    Ok(result)
}

const STEP_OPTIONS: &[OptionSpec] = &[
    opt("on", Type::Custom("Host"), "local()", "the host whose files are hashed and where the record is kept"),
    opt("inputs", Type::Strings, "", "the files whose change reruns the step (required), relative to `dir`"),
    opt("dir", Type::String, "", "the folder the inputs are in (default: the login folder over ssh, the current folder locally)"),
];

/// Registers the `cache` module.
pub fn register(api: &mut Api, ctx: &Arc<Ctx>) {
    api.module(
        "cache",
        "Skip a step whose input files have not changed since it last succeeded on that host.",
    );
    let c = ctx.clone();
    api.register(
        Spec::function("step", &[("name", "string"), ("opts", "map"), ("body", "fn")], "any")
            .module("cache")
            .doc("Runs the closure unless the inputs' hashes on the host match those recorded after its last success there; returns the closure's value (or () when skipped).")
            .example(r#"cache::step("deps", #{ on: web, inputs: ["uv.lock"], dir: "/srv/app" }, || web.run("uv sync", #{ dir: "/srv/app" }));"#)
            .options(STEP_OPTIONS),
        move |call: NativeCallContext, name: &str, opts: Map, body: FnPtr| {
            step(&c, &call, name, opts, body).map_err(|e| super::at_call(&call, e))
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names_are_plain_file_names() {
        assert_eq!(record_name("deps"), "deps.sha256");
        assert_eq!(record_name("uv sync/../x"), "uv_sync_.._x.sha256");
    }
}
