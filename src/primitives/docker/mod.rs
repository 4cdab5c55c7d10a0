//! Docker on a host, through the Engine API (bollard): `h.docker()` on `local()` talks to the
//! local socket (or DOCKER_HOST), on an ssh host to the remote socket forwarded over the host's
//! ssh connection. Everything that changes something is an `Action`, so dry-run, printing and
//! masking work as for commands.

pub mod build;
pub mod client;
pub mod containers;
pub mod images;
pub mod swarm;

use std::collections::HashMap;
use std::time::Duration;

use rhai::{Array, Dynamic, Engine, Map};

use super::host::{output_map, Host};
use super::options::Opts;
use crate::error::Failure;
use client::DockerHost;

fn map_of(pairs: Vec<(String, String)>) -> HashMap<String, String> {
    pairs.into_iter().collect()
}

fn build(d: &DockerHost, opts: Map) -> Result<String, Failure> {
    let opts = Opts::new(
        "build",
        opts,
        &[
            "context",
            "file",
            "target",
            "tags",
            "build_args",
            "platform",
            "labels",
        ],
    )?;
    let spec = build::BuildSpec {
        context: opts.string("context")?.unwrap_or_else(|| ".".into()),
        file: opts.string("file")?.unwrap_or_else(|| "Dockerfile".into()),
        tags: opts.strings("tags")?.unwrap_or_default(),
        target: opts.string("target")?,
        platform: opts.string("platform")?,
        build_args: map_of(opts.string_map("build_args")?),
        labels: map_of(opts.string_map("labels")?),
    };
    build::build(d, &spec)
}

fn run(d: &DockerHost, opts: Map) -> Result<String, Failure> {
    let opts = Opts::new(
        "run",
        opts,
        &[
            "name",
            "image",
            "ports",
            "env",
            "env_file",
            "volumes",
            "restart",
            "labels",
            "network",
            "log_driver",
            "command",
        ],
    )?;
    let image = opts.string("image")?.ok_or_else(|| Failure::Other {
        message: "run needs an image".into(),
        help: "pass #{ image: \"app:1.2\", ... }".into(),
    })?;
    let env_file = opts.string("env_file")?;
    let mut env = Vec::new();
    if let Some(path) = &env_file {
        // The file's values are secrets as far as printing goes: they are masked everywhere.
        for (key, value) in super::process::parse_env_file(&d.host.read_text(path)?) {
            d.host.ctx().printer.masker().add(&value);
            env.push((key, value));
        }
    }
    for (key, value) in opts.string_map("env")? {
        env.retain(|(k, _)| *k != key);
        env.push((key, value));
    }
    let command = match opts.get("command") {
        None => None,
        Some(_) => opts.command("command")?.map(|c| c.program.argv()),
    };
    let spec = containers::RunSpec {
        name: opts.string("name")?,
        image,
        ports: opts.strings("ports")?.unwrap_or_default(),
        env,
        volumes: opts.strings("volumes")?.unwrap_or_default(),
        restart: opts.string("restart")?,
        labels: map_of(opts.string_map("labels")?),
        network: opts.string("network")?,
        log_driver: opts.string("log_driver")?,
        command,
    };
    containers::run(d, &spec)
}

fn options(function: &str, opts: Map, valid: &[&str]) -> Result<Opts, Failure> {
    Opts::new(function, opts, valid)
}

/// Registers the `Docker` type and `h.docker()`.
pub fn register(engine: &mut Engine) {
    swarm::register(engine);
    let r = Failure::into_rhai;
    engine.register_type_with_name::<DockerHost>("Docker");
    engine.register_fn("to_string", |d: &mut DockerHost| {
        format!("Docker({})", d.endpoint)
    });
    engine.register_fn("docker", move |h: &mut Host| {
        DockerHost::connect(h).map_err(r)
    });
    engine.register_fn("build", move |d: &mut DockerHost, opts: Map| {
        build(d, opts).map_err(r)
    });
    engine.register_fn("run", move |d: &mut DockerHost, opts: Map| {
        run(d, opts).map_err(r)
    });
    let stop = |d: &DockerHost, name: &str, opts: Map| -> Result<(), Failure> {
        let opts = options("stop", opts, &["timeout"])?;
        let timeout = opts.duration("timeout")?.unwrap_or(Duration::from_secs(10));
        containers::stop(d, name, timeout)
    };
    engine.register_fn("stop", move |d: &mut DockerHost, name: &str| {
        stop(d, name, Map::new()).map_err(r)
    });
    engine.register_fn("stop", move |d: &mut DockerHost, name: &str, opts: Map| {
        stop(d, name, opts).map_err(r)
    });
    let rm = |d: &DockerHost, name: &str, opts: Map| -> Result<(), Failure> {
        let opts = options("rm", opts, &["force"])?;
        containers::rm(d, name, opts.bool("force")?.unwrap_or(false))
    };
    engine.register_fn("rm", move |d: &mut DockerHost, name: &str| {
        rm(d, name, Map::new()).map_err(r)
    });
    engine.register_fn("rm", move |d: &mut DockerHost, name: &str, opts: Map| {
        rm(d, name, opts).map_err(r)
    });
    engine.register_fn("status", move |d: &mut DockerHost, name: &str| {
        containers::status(d, name).map_err(r)
    });
    engine.register_fn("inspect", move |d: &mut DockerHost, name: &str| {
        let value = containers::inspect(d, name).map_err(r)?;
        rhai::serde::to_dynamic(value)
    });
    let logs = |d: &DockerHost, name: &str, opts: Map| -> Result<String, Failure> {
        let opts = options("logs", opts, &["tail"])?;
        let tail = opts.int("tail")?.map(|n| n.max(0) as u64);
        containers::logs(d, name, tail)
    };
    engine.register_fn("logs", move |d: &mut DockerHost, name: &str| {
        logs(d, name, Map::new()).map_err(r)
    });
    engine.register_fn("logs", move |d: &mut DockerHost, name: &str, opts: Map| {
        logs(d, name, opts).map_err(r)
    });
    engine.register_fn(
        "exec",
        move |d: &mut DockerHost, name: &str, argv: Array| {
            let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
            containers::exec(d, name, &argv)
                .map(|out| output_map(&out))
                .map_err(r)
        },
    );
    engine.register_fn("tag", move |d: &mut DockerHost, src: &str, dst: &str| {
        images::tag(d, src, dst).map_err(r)
    });
    let auth = |function: &str, opts: Map| -> Result<Option<Map>, Failure> {
        let opts = options(function, opts, &["auth"])?;
        match opts.get("auth") {
            None => Ok(None),
            Some(v) => v.clone().try_cast::<Map>().map(Some).ok_or_else(|| {
                super::options::bad_value(
                    function,
                    "option `auth`",
                    "a map #{ username, password, server }",
                    v,
                )
            }),
        }
    };
    engine.register_fn("pull", move |d: &mut DockerHost, image: &str| {
        images::pull(d, image, None).map_err(r)
    });
    engine.register_fn("pull", move |d: &mut DockerHost, image: &str, opts: Map| {
        images::pull(d, image, auth("pull", opts).map_err(r)?).map_err(r)
    });
    engine.register_fn("push", move |d: &mut DockerHost, image: &str| {
        images::push(d, image, None).map_err(r)
    });
    engine.register_fn("push", move |d: &mut DockerHost, image: &str, opts: Map| {
        images::push(d, image, auth("push", opts).map_err(r)?).map_err(r)
    });
    let list = |d: &DockerHost, opts: Map| -> Result<Array, Failure> {
        let opts = options("images", opts, &["reference"])?;
        let reference = opts.string("reference")?;
        Ok(images::to_array(images::list(d, reference.as_deref())?))
    };
    engine.register_fn("images", move |d: &mut DockerHost| {
        list(d, Map::new()).map_err(r)
    });
    engine.register_fn("images", move |d: &mut DockerHost, opts: Map| {
        list(d, opts).map_err(r)
    });
    engine.register_fn("prune_images", move |d: &mut DockerHost, opts: Map| {
        let prune = || -> Result<Array, Failure> {
            let opts = options("prune_images", opts, &["reference", "keep"])?;
            let reference = opts.string("reference")?.ok_or_else(|| Failure::Other {
                message: "prune_images needs a reference (the repository to prune)".into(),
                help: "pass #{ reference: \"app\", keep: 3 }".into(),
            })?;
            let keep = opts.int("keep")?.unwrap_or(3).max(0) as usize;
            Ok(images::prune(d, &reference, keep)?
                .into_iter()
                .map(Dynamic::from)
                .collect())
        };
        prune().map_err(r)
    });
    engine.register_fn("network", move |d: &mut DockerHost, name: &str| {
        containers::network(d, name).map_err(r)
    });
}
