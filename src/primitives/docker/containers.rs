//! Containers and networks: run, stop, rm, status, inspect, logs, exec, network.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, ExecConfig, HostConfig, HostConfigLogConfig, NetworkCreateRequest,
    PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, InspectNetworkOptions, ListContainersOptions,
    LogsOptions, RemoveContainerOptions, StopContainerOptions,
};
use futures_util::StreamExt;

use super::client::{is_missing, DockerHost, Reply};
use crate::error::DockerProblem;
use crate::error::Failure;
use crate::exec::action::quote;
use crate::exec::docker::{container_ports, restart_text, Request};
use crate::exec::{Output, Stream};
use crate::primitives::validate;

/// A published port: `[ip:]host:container[/proto]`.
#[derive(Debug, PartialEq)]
pub struct Publish {
    pub ip: Option<String>,
    pub host: String,
    pub container: String,
}

impl Publish {
    /// Parses a port as `docker run -p` takes it.
    pub fn parse(text: &str) -> Option<Self> {
        let (spec, proto) = match text.split_once('/') {
            Some((spec, proto)) => (spec, proto),
            None => (text, "tcp"),
        };
        let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
        let (ip, host, container) = match parts.as_slice() {
            [container] => (None, "", *container),
            [container, host] => (None, *host, *container),
            [container, host, ip] => (
                Some(ip.trim_matches(['[', ']']).to_string()),
                *host,
                *container,
            ),
            _ => return None,
        };
        container.parse::<u16>().ok()?;
        if !host.is_empty() {
            host.parse::<u16>().ok()?;
        }
        Some(Publish {
            ip,
            host: host.to_string(),
            container: format!("{container}/{proto}"),
        })
    }
}

/// What to run, as the recipe gave it.
pub struct RunSpec {
    pub name: Option<String>,
    pub image: String,
    pub ports: Vec<String>,
    pub env: Vec<(String, String)>,
    pub volumes: Vec<String>,
    pub restart: Option<String>,
    pub labels: HashMap<String, String>,
    pub network: Option<String>,
    pub log_driver: Option<String>,
    pub command: Option<Vec<String>>,
}

fn restart_policy(text: &str) -> Option<RestartPolicy> {
    let (name, retries) = match text.split_once(':') {
        Some((name, n)) => (name, n.parse::<i64>().ok()),
        None => (text, None),
    };
    let name = match name {
        "no" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        _ => return None,
    };
    Some(RestartPolicy {
        name: Some(name),
        maximum_retry_count: retries,
    })
}

/// What a refused container name is called in reports.
const CONTAINER: &str = "docker container name";

/// Creates and starts a container; returns its id ("" in a dry run).
pub fn run(docker: &DockerHost, spec: &RunSpec) -> Result<String, Failure> {
    let (options, body) = request(spec)?;
    if docker.host.ctx().dry_run && docker.host.ctx().run.diff {
        show_diff(docker, &options, &body);
    }
    Ok(docker.perform(Request::Run { options, body })?.id())
}

/// The Engine's create request for `spec`, once every value in it is checked.
fn request(spec: &RunSpec) -> Result<(CreateContainerOptions, ContainerCreateBody), Failure> {
    let bad = |what: &str, expected: &str, got: &str| Failure::BadValue {
        function: "run".into(),
        what: what.into(),
        expected: expected.into(),
        got: format!("{got:?}"),
    };
    if let Some(name) = &spec.name {
        validate::docker_name(CONTAINER, name)?;
    }
    validate::image_reference(&spec.image)?;
    if let Some(network) = &spec.network {
        // `container:NAME` shares another container's network stack.
        let name = network.strip_prefix("container:").unwrap_or(network);
        validate::docker_name("docker network name", name)?;
    }
    for (key, _) in &spec.env {
        validate::env_key(key)?;
    }
    let mut exposed = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for port in &spec.ports {
        let publish = Publish::parse(port).ok_or_else(|| {
            bad(
                "a port",
                "\"HOST:CONTAINER\", \"IP:HOST:CONTAINER\" or \"CONTAINER\" (with /udp if needed)",
                port,
            )
        })?;
        exposed.push(publish.container.clone());
        bindings
            .entry(publish.container)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: publish.ip,
                host_port: Some(publish.host),
            });
    }
    let restart = match &spec.restart {
        Some(text) => Some(restart_policy(text).ok_or_else(|| {
            bad(
                "option `restart`",
                "\"no\", \"always\", \"unless-stopped\" or \"on-failure[:N]\"",
                text,
            )
        })?),
        None => None,
    };
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: spec.command.clone(),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(spec.labels.clone()),
        exposed_ports: Some(exposed),
        host_config: Some(HostConfig {
            port_bindings: Some(bindings),
            binds: (!spec.volumes.is_empty()).then(|| spec.volumes.clone()),
            restart_policy: restart,
            network_mode: spec.network.clone(),
            log_config: spec.log_driver.as_ref().map(|driver| HostConfigLogConfig {
                typ: Some(driver.clone()),
                config: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: spec.name.clone(),
        ..Default::default()
    };
    Ok((options, body))
}

/// Sends a `Request::Run`: creates the container and starts it; one that does not start is
/// removed again (it would keep the name and block the next try).
pub fn create_and_start(
    docker: &DockerHost,
    options: CreateContainerOptions,
    body: ContainerCreateBody,
) -> Result<String, Failure> {
    let shown = options
        .name
        .clone()
        .or_else(|| body.image.clone())
        .unwrap_or_default();
    let host_ports: Vec<String> = container_ports(&body)
        .into_iter()
        .map(|(_, host, _)| host)
        .filter(|host| !host.is_empty())
        .collect();
    let created = docker.call(
        &format!("creating container {shown}"),
        docker.api.create_container(Some(options), body),
    )?;
    let started = docker.host.ctx().wait(
        "starting a container",
        docker.api.start_container(&created.id, None),
    )?;
    if let Err(e) = started {
        let mut failure = docker.failure(&format!("starting container {shown}"), &e);
        let _ = docker.host.ctx().wait(
            "removing the container that did not start",
            docker.api.remove_container(
                &created.id,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            ),
        );
        if let Failure::Docker {
            problem: DockerProblem::PortAllocated,
            message,
            ..
        } = &mut failure
        {
            let holders = port_holders(docker, &host_ports);
            if !holders.is_empty() {
                message.push_str(&format!("; held by {}", holders.join(", ")));
            }
        }
        return Err(failure);
    }
    Ok(created.id)
}

/// A port as `[ip:]host:container/proto`, the same whether the recipe or the Engine gave it.
fn port_line(ip: Option<&str>, host: &str, container: &str) -> String {
    match ip.filter(|ip| !ip.is_empty()) {
        Some(ip) => format!("port: {ip}:{host}:{container}"),
        None => format!("port: {host}:{container}"),
    }
}

/// What `--dry-run --diff` compares for a container: one setting per line, sorted within kind.
fn spec_lines(body: &ContainerCreateBody) -> Vec<String> {
    let host = body.host_config.clone().unwrap_or_default();
    let mut lines = vec![format!(
        "image: {}",
        body.image.as_deref().unwrap_or_default()
    )];
    if let Some(command) = &body.cmd {
        lines.push(format!("command: {}", command.join(" ")));
    }
    let mut env: Vec<String> = body
        .env
        .iter()
        .flatten()
        .map(|e| format!("env: {e}"))
        .collect();
    let mut ports: Vec<String> = container_ports(body)
        .iter()
        .map(|(ip, host, container)| port_line(ip.as_deref(), host, container))
        .collect();
    let mut volumes: Vec<String> = host
        .binds
        .iter()
        .flatten()
        .map(|v| format!("volume: {v}"))
        .collect();
    let mut labels: Vec<String> = body
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("label: {k}={v}"))
        .collect();
    for group in [&mut env, &mut ports, &mut volumes, &mut labels] {
        group.sort();
        lines.append(group);
    }
    let optional = [
        ("restart", host.restart_policy.as_ref().map(restart_text)),
        ("network", host.network_mode),
        ("log-driver", host.log_config.and_then(|l| l.typ)),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            lines.push(format!("{key}: {value}"));
        }
    }
    lines
}

/// The same lines for the container that `body` would replace, leaving out what the recipe did
/// not set (the image's own environment and labels, defaults) so that only real changes show.
fn existing_lines(
    docker: &DockerHost,
    name: &str,
    body: &ContainerCreateBody,
) -> Option<Vec<String>> {
    let wanted = body.host_config.clone().unwrap_or_default();
    let found = docker
        .host
        .ctx()
        .wait(
            "inspecting a container",
            docker
                .api
                .inspect_container(name, None::<InspectContainerOptions>),
        )
        .ok()?
        .ok()?;
    let config = found.config.unwrap_or_default();
    let host = found.host_config.unwrap_or_default();
    let image = config.image.clone().unwrap_or_default();
    let image_config = docker
        .host
        .ctx()
        .wait("inspecting an image", docker.api.inspect_image(&image))
        .ok()
        .and_then(Result::ok)
        .and_then(|i| i.config)
        .unwrap_or_default();
    let from_image_env = image_config.env.unwrap_or_default();
    let from_image_labels = image_config.labels.unwrap_or_default();
    let mut lines = vec![format!("image: {image}")];
    if body.cmd.is_some() {
        lines.push(format!(
            "command: {}",
            config.cmd.unwrap_or_default().join(" ")
        ));
    }
    let mut env: Vec<String> = config
        .env
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !from_image_env.contains(e))
        .map(|e| format!("env: {e}"))
        .collect();
    let mut ports: Vec<String> = Vec::new();
    for (container, bindings) in host.port_bindings.unwrap_or_default() {
        for binding in bindings.unwrap_or_default() {
            let host_port = binding.host_port.unwrap_or_default();
            ports.push(port_line(
                binding.host_ip.as_deref(),
                &host_port,
                &container,
            ));
        }
    }
    let mut volumes: Vec<String> = host
        .binds
        .unwrap_or_default()
        .into_iter()
        .map(|v| format!("volume: {v}"))
        .collect();
    let mut labels: Vec<String> = config
        .labels
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, v)| from_image_labels.get(k) != Some(v))
        .map(|(k, v)| format!("label: {k}={v}"))
        .collect();
    for group in [&mut env, &mut ports, &mut volumes, &mut labels] {
        group.sort();
        lines.append(group);
    }
    if wanted.restart_policy.is_some() {
        let policy = host.restart_policy.unwrap_or_default();
        lines.push(format!("restart: {}", restart_text(&policy)));
    }
    if wanted.network_mode.is_some() {
        lines.push(format!(
            "network: {}",
            host.network_mode.unwrap_or_default()
        ));
    }
    if wanted.log_config.is_some() {
        let driver = host.log_config.and_then(|l| l.typ).unwrap_or_default();
        lines.push(format!("log-driver: {driver}"));
    }
    Some(lines)
}

/// `--dry-run --diff`: what `run` would change against the container of the same name.
fn show_diff(docker: &DockerHost, options: &CreateContainerOptions, body: &ContainerCreateBody) {
    let label = format!("container {}", options.name.as_deref().unwrap_or("(new)"));
    let old = options
        .name
        .as_deref()
        .and_then(|name| existing_lines(docker, name, body))
        .map(|lines| lines.join("\n") + "\n");
    let new = spec_lines(body).join("\n") + "\n";
    if let Some(diff) = crate::exec::diff::unified(&label, old.as_deref(), &new) {
        docker
            .host
            .ctx()
            .printer
            .diff(docker.host.name(), &label, &diff);
    }
}

/// Which running containers publish any of `ports`, as "port P (container NAME)".
fn port_holders(docker: &DockerHost, ports: &[String]) -> Vec<String> {
    let Ok(Ok(containers)) = docker.host.ctx().wait(
        "listing containers",
        docker.api.list_containers(None::<ListContainersOptions>),
    ) else {
        return Vec::new();
    };
    let mut holders = Vec::new();
    for container in containers {
        let name = container
            .names
            .and_then(|n| n.first().cloned())
            .unwrap_or_default();
        for port in container.ports.unwrap_or_default() {
            let public = port.public_port.map(|p| p.to_string()).unwrap_or_default();
            if ports.contains(&public) {
                let holder = format!("port {public} (container {})", name.trim_start_matches('/'));
                if !holders.contains(&holder) {
                    holders.push(holder);
                }
            }
        }
    }
    holders
}

/// Stops a container (TERM, then KILL after `timeout`); a missing one is not an error.
pub fn stop(docker: &DockerHost, name: &str, timeout: Duration) -> Result<(), Failure> {
    validate::docker_name(CONTAINER, name)?;
    let options = StopContainerOptions {
        t: Some(timeout.as_secs() as i32),
        ..Default::default()
    };
    docker.perform(Request::Stop {
        container: name.to_string(),
        options,
    })?;
    Ok(())
}

/// Sends a `Request::Stop`.
pub fn send_stop(
    docker: &DockerHost,
    name: &str,
    options: StopContainerOptions,
) -> Result<Reply, Failure> {
    let result = docker.host.ctx().wait(
        "stopping a container",
        docker.api.stop_container(name, Some(options)),
    )?;
    docker.reply(&format!("stopping {name}"), result.map(|()| Reply::Done))
}

/// Removes a container; a missing one is not an error.
pub fn rm(docker: &DockerHost, name: &str, force: bool) -> Result<(), Failure> {
    validate::docker_name(CONTAINER, name)?;
    let options = RemoveContainerOptions {
        force,
        ..Default::default()
    };
    docker.perform(Request::Remove {
        container: name.to_string(),
        options,
    })?;
    Ok(())
}

/// Sends a `Request::Remove`.
pub fn send_remove(
    docker: &DockerHost,
    name: &str,
    options: RemoveContainerOptions,
) -> Result<Reply, Failure> {
    let result = docker.host.ctx().wait(
        "removing a container",
        docker.api.remove_container(name, Some(options)),
    )?;
    docker.reply(&format!("removing {name}"), result.map(|()| Reply::Done))
}

/// The container's state: "running", "exited", "created", ... or "missing".
pub fn status(docker: &DockerHost, name: &str) -> Result<String, Failure> {
    validate::docker_name(CONTAINER, name)?;
    let result = docker.host.ctx().wait(
        "inspecting a container",
        docker
            .api
            .inspect_container(name, None::<InspectContainerOptions>),
    )?;
    match result {
        Ok(info) => Ok(info
            .state
            .and_then(|s| s.status)
            .map_or_else(|| "unknown".into(), |s| s.to_string())),
        Err(e) if is_missing(&e) => Ok("missing".into()),
        Err(e) => Err(docker.failure(&format!("inspecting {name}"), &e)),
    }
}

/// Docker's inspect document of the container.
pub fn inspect(docker: &DockerHost, name: &str) -> Result<serde_json::Value, Failure> {
    validate::docker_name(CONTAINER, name)?;
    let info = docker.call(
        &format!("inspecting {name}"),
        docker
            .api
            .inspect_container(name, None::<InspectContainerOptions>),
    )?;
    Ok(serde_json::to_value(info).unwrap_or_default())
}

/// The last `tail` lines of the container's output (stdout and stderr).
pub fn logs(docker: &DockerHost, name: &str, tail: Option<u64>) -> Result<String, Failure> {
    validate::docker_name(CONTAINER, name)?;
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        tail: tail.map_or_else(|| "all".into(), |n| n.to_string()),
        ..Default::default()
    };
    let api = docker.api.clone();
    docker.call(&format!("reading the logs of {name}"), async move {
        let mut stream = api.logs(name, Some(options));
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            text.push_str(&chunk?.to_string());
        }
        Ok(text)
    })
}

/// Runs `argv` inside a running container, streaming its output.
pub fn exec(docker: &DockerHost, name: &str, argv: &[String]) -> Result<Output, Failure> {
    validate::docker_name(CONTAINER, name)?;
    let config = ExecConfig {
        cmd: Some(argv.to_vec()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let request = Request::Exec {
        container: name.to_string(),
        config,
    };
    Ok(docker.perform(request)?.output())
}

/// Sends a `Request::Exec`, streaming the command's output.
pub fn send_exec(docker: &DockerHost, name: &str, config: ExecConfig) -> Result<Output, Failure> {
    let started = Instant::now();
    let shown: Vec<String> = config.cmd.iter().flatten().map(|w| quote(w)).collect();
    let api = docker.api.clone();
    let printer = docker.host.ctx().printer.clone();
    let host = docker.host.name().to_string();
    docker.call(
        &format!("running {} in {name}", shown.join(" ")),
        async move {
            let exec = api.create_exec(name, config).await?;
            let mut out = Output::default();
            if let bollard::exec::StartExecResults::Attached { mut output, .. } =
                api.start_exec(&exec.id, None).await?
            {
                while let Some(chunk) = output.next().await {
                    let (stream, text, all) = match chunk? {
                        bollard::container::LogOutput::StdErr { message } => {
                            (Stream::Stderr, message, &mut out.stderr)
                        }
                        other => (Stream::Stdout, other.into_bytes(), &mut out.stdout),
                    };
                    let text = String::from_utf8_lossy(&text).into_owned();
                    for line in text.lines() {
                        printer.line(&host, stream, line);
                    }
                    all.push_str(&text);
                }
            }
            let inspected = api.inspect_exec(&exec.id).await?;
            out.code = inspected.exit_code.map(|c| c as i32);
            out.duration = started.elapsed();
            Ok(out)
        },
    )
}

/// Creates the network unless it exists.
pub fn network(docker: &DockerHost, name: &str) -> Result<(), Failure> {
    validate::docker_name("docker network name", name)?;
    let found = docker.host.ctx().wait(
        "inspecting a network",
        docker
            .api
            .inspect_network(name, None::<InspectNetworkOptions>),
    )?;
    match found {
        Ok(_) => return Ok(()),
        Err(e) if !is_missing(&e) => {
            return Err(docker.failure(&format!("inspecting network {name}"), &e))
        }
        Err(_) => {}
    }
    let request = NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".into()),
        ..Default::default()
    };
    docker.perform(Request::CreateNetwork(request))?;
    Ok(())
}

/// Sends a `Request::CreateNetwork`.
pub fn send_network(docker: &DockerHost, request: NetworkCreateRequest) -> Result<Reply, Failure> {
    let what = format!("creating network {}", request.name);
    docker.call(&what, docker.api.create_network(request))?;
    Ok(Reply::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_published_ports_like_docker_run() {
        let p = Publish::parse("127.0.0.1:8080:80").unwrap();
        assert_eq!(
            (p.ip.as_deref(), p.host.as_str(), p.container.as_str()),
            (Some("127.0.0.1"), "8080", "80/tcp")
        );
        let p = Publish::parse("8080:80/udp").unwrap();
        assert_eq!((p.host.as_str(), p.container.as_str()), ("8080", "80/udp"));
        assert_eq!(Publish::parse("80").unwrap().host, "");
        assert!(Publish::parse("web:80").is_none());
    }

    #[test]
    fn a_run_spec_becomes_the_body_that_is_sent_and_shown() {
        let spec = RunSpec {
            name: Some("web".into()),
            image: "app:1".into(),
            ports: vec!["127.0.0.1:8080:80".into(), "9000".into()],
            env: vec![("MODE".into(), "prod".into())],
            volumes: Vec::new(),
            restart: Some("unless-stopped".into()),
            labels: HashMap::from([("galley.app".to_string(), "web".to_string())]),
            network: None,
            log_driver: Some("json-file".into()),
            command: Some(vec!["serve".into()]),
        };
        let (options, body) = request(&spec).unwrap();
        assert_eq!(body.env, Some(vec!["MODE=prod".to_string()]));
        assert_eq!(
            body.exposed_ports,
            Some(vec!["80/tcp".to_string(), "9000/tcp".to_string()])
        );
        assert_eq!(
            Request::Run { options, body }.to_string(),
            "run -d --name web -p 127.0.0.1:8080:80 -p 9000 -e MODE=prod --restart unless-stopped \
             --label galley.app=web --log-driver json-file app:1 serve"
        );
        let bad = RunSpec {
            restart: Some("sometimes".into()),
            ..spec
        };
        assert!(request(&bad).is_err());
    }
}
