//! Docker on a host, through the Engine API (bollard): `h.docker()` on `local()` talks to the
//! local socket (or `DOCKER_HOST`), on an ssh host to the remote socket forwarded over the host's
//! ssh connection. Everything that changes something is an `Action`, so dry-run, printing and
//! masking work as for commands.

pub mod build;
pub mod client;
pub mod containers;
pub mod images;
pub mod swarm;

use std::collections::HashMap;
use std::time::Duration;

use rhai::{Array, Dynamic, Map};

use super::host::{output_map, Host};
use super::options::Opts;
use crate::api::{opt, Api, OptionSpec, Spec, Type};
use crate::error::{Failure, RhaiResult};
use client::DockerHost;

fn map_of(pairs: Vec<(String, String)>) -> HashMap<String, String> {
    pairs.into_iter().collect()
}

fn build(d: &DockerHost, opts: Map) -> Result<String, Failure> {
    let opts = Opts::new("build", opts, BUILD_OPTIONS)?;
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
    let opts = Opts::new("run", opts, RUN_OPTIONS)?;
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

const BUILD_OPTIONS: &[OptionSpec] = &[
    opt(
        "context",
        Type::String,
        "\".\"",
        "the build context folder, on the host",
    ),
    opt(
        "file",
        Type::String,
        "\"Dockerfile\"",
        "the Dockerfile, relative to the context",
    ),
    opt("target", Type::String, "", "the stage to build"),
    opt("tags", Type::Strings, "", "the image's tags: [\"app:1.2\"]"),
    opt(
        "build_args",
        Type::Env,
        "",
        "build arguments: #{ VERSION: \"1.2\" }",
    ),
    opt(
        "platform",
        Type::String,
        "",
        "the platform: \"linux/amd64\"",
    ),
    opt("labels", Type::Env, "", "image labels"),
];

const RUN_OPTIONS: &[OptionSpec] = &[
    opt("name", Type::String, "", "the container's name"),
    opt(
        "image",
        Type::String,
        "",
        "the image (required): \"app:1.2\"",
    ),
    opt(
        "ports",
        Type::Strings,
        "",
        "published ports: [\"127.0.0.1:8080:80\"]",
    ),
    opt(
        "env",
        Type::Env,
        "",
        "environment variables: #{ MODE: \"prod\" }",
    ),
    opt(
        "env_file",
        Type::String,
        "",
        "a file of NAME=value lines on the host (its values are masked)",
    ),
    opt(
        "volumes",
        Type::Strings,
        "",
        "bind mounts and volumes: [\"/srv/data:/data\"]",
    ),
    opt(
        "restart",
        Type::String,
        "",
        "the restart policy: \"unless-stopped\"",
    ),
    opt("labels", Type::Env, "", "container labels"),
    opt("network", Type::String, "", "the network to join"),
    opt(
        "log_driver",
        Type::String,
        "",
        "the logging driver: \"json-file\"",
    ),
    opt(
        "command",
        Type::Command,
        "",
        "the command, instead of the image's",
    ),
];

const STOP_OPTIONS: &[OptionSpec] = &[opt(
    "timeout",
    Type::Duration,
    "\"10s\"",
    "how long to wait before the container is killed",
)];
const RM_OPTIONS: &[OptionSpec] = &[opt(
    "force",
    Type::Bool,
    "false",
    "remove it even if it runs",
)];
const LOGS_OPTIONS: &[OptionSpec] = &[opt("tail", Type::Int, "all", "how many of the last lines")];
const AUTH_OPTIONS: &[OptionSpec] = &[opt(
    "auth",
    Type::Map,
    "",
    "registry credentials: #{ username, password, server }",
)];
const IMAGES_OPTIONS: &[OptionSpec] = &[opt(
    "reference",
    Type::String,
    "",
    "only images of this repository (or reference pattern)",
)];
const PRUNE_OPTIONS: &[OptionSpec] = &[
    opt(
        "reference",
        Type::String,
        "",
        "the repository to prune (required)",
    ),
    opt(
        "keep",
        Type::Int,
        "3",
        "how many of the newest images to keep",
    ),
];

const DOCKER: &[(&str, &str)] = &[("docker", "Docker")];
const NAMED: &[(&str, &str)] = &[("docker", "Docker"), ("name", "string")];
const NAMED_OPTS: &[(&str, &str)] = &[("docker", "Docker"), ("name", "string"), ("opts", "map")];
const IMAGE_OPTS: &[(&str, &str)] = &[("docker", "Docker"), ("image", "string"), ("opts", "map")];

const STOP: Spec = Spec::method("stop", NAMED_OPTS, "()")
    .doc("Stops a container (SIGTERM, then SIGKILL after `timeout`).")
    .example(r#"d.stop("app", #{ timeout: "10s" });"#)
    .options(STOP_OPTIONS);
const RM: Spec = Spec::method("rm", NAMED_OPTS, "()")
    .doc("Removes a container; a missing one is not an error.")
    .example(r#"d.rm("app", #{ force: true });"#)
    .options(RM_OPTIONS);
const LOGS: Spec = Spec::method("logs", NAMED_OPTS, "string")
    .doc("A container's output (stdout and stderr).")
    .example(r#"log(d.logs("app", #{ tail: 50 }));"#)
    .options(LOGS_OPTIONS);
const PULL: Spec = Spec::method("pull", IMAGE_OPTS, "()")
    .doc("Pulls an image from its registry.")
    .example(r#"d.pull("registry:5000/app:abc");"#)
    .options(AUTH_OPTIONS);
const PUSH: Spec = Spec::method("push", IMAGE_OPTS, "()")
    .doc("Pushes an image to its registry.")
    .example(r#"d.push("registry:5000/app:abc", #{ auth: #{ username: "ci", password: secret("REGISTRY_PASSWORD") } });"#)
    .options(AUTH_OPTIONS);
const IMAGES: Spec = Spec::method("images", &[("docker", "Docker"), ("opts", "map")], "array")
    .doc("The images on the host, newest first: #{ id, tags, created }.")
    .example(r#"let images = d.images(#{ reference: "app" });"#)
    .options(IMAGES_OPTIONS);

fn auth(function: &str, opts: Map) -> Result<Option<Map>, Failure> {
    let opts = Opts::new(function, opts, AUTH_OPTIONS)?;
    Ok(opts.get("auth").and_then(|v| v.clone().try_cast::<Map>()))
}

fn stop(d: &DockerHost, name: &str, opts: Map) -> RhaiResult<()> {
    let opts = Opts::new("stop", opts, STOP_OPTIONS)?;
    let timeout = opts.duration("timeout")?.unwrap_or(Duration::from_secs(10));
    Ok(containers::stop(d, name, timeout)?)
}

fn rm(d: &DockerHost, name: &str, opts: Map) -> RhaiResult<()> {
    let opts = Opts::new("rm", opts, RM_OPTIONS)?;
    Ok(containers::rm(
        d,
        name,
        opts.bool("force")?.unwrap_or(false),
    )?)
}

fn logs(d: &DockerHost, name: &str, opts: Map) -> RhaiResult<String> {
    let opts = Opts::new("logs", opts, LOGS_OPTIONS)?;
    let tail = opts.int("tail")?.map(|n| n.max(0) as u64);
    Ok(containers::logs(d, name, tail)?)
}

fn images(d: &DockerHost, opts: Map) -> RhaiResult<Array> {
    let opts = Opts::new("images", opts, IMAGES_OPTIONS)?;
    let reference = opts.string("reference")?;
    Ok(images::to_array(images::list(d, reference.as_deref())?))
}

fn prune_images(d: &DockerHost, opts: Map) -> RhaiResult<Array> {
    let opts = Opts::new("prune_images", opts, PRUNE_OPTIONS)?;
    let reference = opts.string("reference")?.ok_or_else(|| Failure::Other {
        message: "prune_images needs a reference (the repository to prune)".into(),
        help: "pass #{ reference: \"app\", keep: 3 }".into(),
    })?;
    let keep = opts.int("keep")?.unwrap_or(3).max(0) as usize;
    Ok(images::prune(d, &reference, keep)?
        .into_iter()
        .map(Dynamic::from)
        .collect())
}

/// Registers the `Docker` type and `h.docker()`.
// One registration per function of the API: a list, not logic.
#[allow(clippy::too_many_lines)]
pub fn register(api: &mut Api) {
    swarm::register(api);
    api.register_type::<DockerHost>(
        "Docker",
        "Docker on a host (host.docker()), through the Engine API: the local socket, or the remote one over the host's ssh connection.",
    );
    api.register(
        Spec::method("to_string", DOCKER, "string")
            .doc("The Docker endpoint as text: `Docker(ENDPOINT)`.")
            .example("log(d.to_string());"),
        |d: &mut DockerHost| format!("Docker({})", d.endpoint),
    );
    api.register(
        Spec::method("docker", &[("host", "Host")], "Docker")
            .doc("Docker on the host: the local socket (or DOCKER_HOST) for local(), the host's /var/run/docker.sock over ssh otherwise.")
            .example("let d = local().docker();"),
        |h: &mut Host| -> RhaiResult<DockerHost> { Ok(DockerHost::connect(h)?) },
    );
    api.register(
        Spec::method("build", &[("docker", "Docker"), ("opts", "map")], "string")
            .doc("Builds an image on the host from a context folder there; returns the image id.")
            .example(r#"let id = d.build(#{ context: ".", tags: ["app:" + sha], build_args: #{ V: "1" } });"#)
            .options(BUILD_OPTIONS),
        |d: &mut DockerHost, opts: Map| -> RhaiResult<String> { Ok(build(d, opts)?) },
    );
    api.register(
        Spec::method("run", &[("docker", "Docker"), ("opts", "map")], "string")
            .doc("Creates and starts a container; returns its id.")
            .example(r#"d.run(#{ name: "app", image: "app:" + sha, ports: ["127.0.0.1:8080:80"], restart: "unless-stopped" });"#)
            .options(RUN_OPTIONS),
        |d: &mut DockerHost, opts: Map| -> RhaiResult<String> { Ok(run(d, opts)?) },
    );
    api.register(STOP.without_options(), |d: &mut DockerHost, name: &str| {
        stop(d, name, Map::new())
    });
    api.register(STOP, |d: &mut DockerHost, name: &str, opts: Map| {
        stop(d, name, opts)
    });
    api.register(RM.without_options(), |d: &mut DockerHost, name: &str| {
        rm(d, name, Map::new())
    });
    api.register(RM, |d: &mut DockerHost, name: &str, opts: Map| {
        rm(d, name, opts)
    });
    api.register(
        Spec::method("status", NAMED, "string")
            .doc("A container's state: \"running\", \"exited\", \"created\", ... or \"missing\".")
            .example(
                r#"if d.status("app") != "running" { d.run(#{ name: "app", image: "app:1" }); }"#,
            ),
        |d: &mut DockerHost, name: &str| -> RhaiResult<String> { Ok(containers::status(d, name)?) },
    );
    api.register(
        Spec::method("inspect", NAMED, "map")
            .doc("A container's details as the Engine API gives them (`docker inspect`).")
            .example(r#"let health = d.inspect("app").State.Health;"#),
        |d: &mut DockerHost, name: &str| -> RhaiResult<Dynamic> {
            rhai::serde::to_dynamic(containers::inspect(d, name)?)
        },
    );
    api.register(LOGS.without_options(), |d: &mut DockerHost, name: &str| {
        logs(d, name, Map::new())
    });
    api.register(LOGS, |d: &mut DockerHost, name: &str, opts: Map| {
        logs(d, name, opts)
    });
    api.register(
        Spec::method("exec", &[("docker", "Docker"), ("name", "string"), ("argv", "array")], "map")
            .doc("Runs a command in a running container; returns #{ code, ok, stdout, stderr, duration } like host.run.")
            .example(r#"d.exec("app", ["./migrate"]);"#),
        |d: &mut DockerHost, name: &str, argv: Array| -> RhaiResult<Map> {
            let argv: Vec<String> = argv.iter().map(std::string::ToString::to_string).collect();
            Ok(output_map(&containers::exec(d, name, &argv)?))
        },
    );
    api.register(
        Spec::method(
            "tag",
            &[
                ("docker", "Docker"),
                ("source", "string"),
                ("target", "string"),
            ],
            "()",
        )
        .doc("Tags an image with another reference.")
        .example(r#"d.tag("app:abc", "registry:5000/app:abc");"#),
        |d: &mut DockerHost, src: &str, dst: &str| -> RhaiResult<()> {
            Ok(images::tag(d, src, dst)?)
        },
    );
    api.register(
        PULL.without_options(),
        |d: &mut DockerHost, image: &str| -> RhaiResult<()> { Ok(images::pull(d, image, None)?) },
    );
    api.register(
        PULL,
        |d: &mut DockerHost, image: &str, opts: Map| -> RhaiResult<()> {
            Ok(images::pull(d, image, auth("pull", opts)?)?)
        },
    );
    api.register(
        PUSH.without_options(),
        |d: &mut DockerHost, image: &str| -> RhaiResult<()> { Ok(images::push(d, image, None)?) },
    );
    api.register(
        PUSH,
        |d: &mut DockerHost, image: &str, opts: Map| -> RhaiResult<()> {
            Ok(images::push(d, image, auth("push", opts)?)?)
        },
    );
    api.register(IMAGES.without_options(), |d: &mut DockerHost| {
        images(d, Map::new())
    });
    api.register(IMAGES, |d: &mut DockerHost, opts: Map| images(d, opts));
    api.register(
        Spec::method("prune_images", &[("docker", "Docker"), ("opts", "map")], "array")
            .doc("Removes the older images of a repository, keeping the newest `keep`; returns the removed ids.")
            .example(r#"d.prune_images(#{ reference: "registry:5000/app", keep: 3 });"#)
            .options(PRUNE_OPTIONS),
        |d: &mut DockerHost, opts: Map| prune_images(d, opts),
    );
    api.register(
        Spec::method("network", NAMED, "()")
            .doc("Creates a network unless it exists.")
            .example(r#"d.network("web");"#),
        |d: &mut DockerHost, name: &str| -> RhaiResult<()> { Ok(containers::network(d, name)?) },
    );
}
