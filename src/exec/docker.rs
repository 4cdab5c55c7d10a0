//! A call to the Docker Engine that changes something, as data: the request that is sent, shown
//! as the docker CLI command that would send the same. A dry run prints this value; a run sends
//! this same value (`primitives::docker::client::DockerHost::perform`).

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::models::{
    ContainerCreateBody, EndpointPortConfig, EndpointPortConfigProtocolEnum,
    EndpointPortConfigPublishModeEnum, ExecConfig, HealthConfig, NetworkCreateRequest, SecretSpec,
    ServiceSpec, ServiceSpecRollbackConfig, ServiceSpecUpdateConfig, SwarmInitRequest,
    TaskSpecContainerSpec,
};
use bollard::query_parameters::{
    BuildImageOptions, CreateContainerOptions, CreateImageOptions, LeaveSwarmOptions,
    PushImageOptions, RemoveContainerOptions, StopContainerOptions, TagImageOptions,
    UpdateServiceOptions,
};

use super::action::quote;
use crate::duration::format_duration;

/// The address `docker swarm init` listens on unless told otherwise.
pub const SWARM_LISTEN_DEFAULT: &str = "0.0.0.0:2377";

/// What an update of a service changes, which decides how the CLI would write it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new spec from the recipe; `forced` when the recipe asked to restart the tasks anyway.
    Update { forced: bool },
    /// The running spec with another number of replicas.
    Scale,
    /// The previous spec back (`rollback: "previous"` in the options).
    Rollback,
}

/// A request to the Docker Engine that changes something.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// Build an image from a local folder (sent as a tar), then give it `more_tags` too.
    Build {
        context: String,
        options: BuildImageOptions,
        more_tags: Vec<String>,
    },
    /// Create a container and start it.
    Run {
        options: CreateContainerOptions,
        body: ContainerCreateBody,
    },
    /// Stop a container (TERM, then KILL after the options' timeout).
    Stop {
        container: String,
        options: StopContainerOptions,
    },
    /// Remove a container.
    Remove {
        container: String,
        options: RemoveContainerOptions,
    },
    /// Run a command inside a running container.
    Exec {
        container: String,
        config: ExecConfig,
    },
    /// Create a network.
    CreateNetwork(NetworkCreateRequest),
    /// Give `image` (an id or a reference) another name.
    Tag {
        image: String,
        options: TagImageOptions,
    },
    /// Pull an image from its registry.
    Pull {
        options: CreateImageOptions,
        auth: Option<DockerCredentials>,
    },
    /// Push an image to its registry.
    Push {
        image: String,
        options: PushImageOptions,
        auth: Option<DockerCredentials>,
    },
    /// Remove an image by one of its names.
    RemoveImage { image: String },
    /// Make this node the first manager of a new swarm.
    SwarmInit(SwarmInitRequest),
    /// Leave the swarm.
    SwarmLeave(LeaveSwarmOptions),
    /// Store a value as a Docker secret; `source` is the recipe's name for it (the value, in
    /// the spec, is never shown).
    CreateSecret { spec: SecretSpec, source: String },
    /// Create a service.
    CreateService(ServiceSpec),
    /// Replace the spec of `service` (at its current `version`, in the options).
    UpdateService {
        service: String,
        spec: ServiceSpec,
        options: UpdateServiceOptions,
        change: Change,
    },
    /// Remove a service.
    RemoveService { service: String },
}

/// The words of the docker command line, each quoted when it needs to be.
#[derive(Default)]
struct Words(Vec<String>);

impl Words {
    /// Plain words (flags), taken as they are.
    fn flag(&mut self, words: &[&str]) -> &mut Self {
        self.0
            .extend(words.iter().map(std::string::ToString::to_string));
        self
    }

    /// A value, quoted.
    fn value(&mut self, value: &str) -> &mut Self {
        self.0.push(quote(value));
        self
    }

    /// `flag value` for each value.
    fn each<S: AsRef<str>>(&mut self, flag: &str, values: impl IntoIterator<Item = S>) {
        for value in values {
            self.flag(&[flag]).value(value.as_ref());
        }
    }

    /// `flag value` when there is a value.
    fn option(&mut self, flag: &str, value: Option<impl AsRef<str>>) {
        self.each(flag, value);
    }
}

impl fmt::Display for Words {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.join(" "))
    }
}

/// `KEY=VALUE` for each pair, sorted by key (the Engine keeps maps unordered).
fn pairs(map: Option<&HashMap<String, String>>) -> Vec<String> {
    let mut pairs: Vec<String> = map
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    pairs.sort();
    pairs
}

fn nanos(n: i64) -> String {
    format_duration(Duration::from_nanos(n.max(0) as u64))
}

/// `[ip:]host:container` as `docker run -p` takes it (`/tcp` is the default and left out).
fn publish_text(ip: Option<&str>, host: &str, container: &str) -> String {
    let container = container.strip_suffix("/tcp").unwrap_or(container);
    match (ip.filter(|ip| !ip.is_empty()), host) {
        (Some(ip), host) => format!("{ip}:{host}:{container}"),
        (None, "") => container.to_string(),
        (None, host) => format!("{host}:{container}"),
    }
}

/// A port as `--publish` takes it (the long form).
pub fn port_text(p: &EndpointPortConfig) -> String {
    let mode = match p.publish_mode {
        Some(EndpointPortConfigPublishModeEnum::HOST) => "host",
        _ => "ingress",
    };
    let mut text = format!("mode={mode},target={}", p.target_port.unwrap_or_default());
    if let Some(published) = p.published_port {
        text.push_str(&format!(",published={published}"));
    }
    if let Some(proto) = p
        .protocol
        .filter(|p| *p != EndpointPortConfigProtocolEnum::TCP)
    {
        text.push_str(&format!(",protocol={proto}"));
    }
    text
}

fn build_words(w: &mut Words, context: &str, options: &BuildImageOptions, more_tags: &[String]) {
    w.flag(&["build"]);
    w.each("-t", options.t.iter().chain(more_tags));
    w.flag(&["-f"]).value(&options.dockerfile);
    w.option("--target", Some(&options.target).filter(|t| !t.is_empty()));
    w.option(
        "--platform",
        Some(&options.platform).filter(|p| !p.is_empty()),
    );
    w.each("--build-arg", pairs(options.buildargs.as_ref()));
    w.each("--label", pairs(options.labels.as_ref()));
    w.value(context);
}

/// The ports a container publishes, as `-p` takes them, sorted by container port.
pub fn container_ports(body: &ContainerCreateBody) -> Vec<(Option<String>, String, String)> {
    let mut bindings: Vec<_> = body
        .host_config
        .iter()
        .flat_map(|h| h.port_bindings.iter().flatten())
        .collect();
    bindings.sort_by(|a, b| a.0.cmp(b.0));
    let mut ports = Vec::new();
    for (container, list) in bindings {
        for binding in list.iter().flatten() {
            ports.push((
                binding.host_ip.clone(),
                binding.host_port.clone().unwrap_or_default(),
                container.clone(),
            ));
        }
    }
    ports
}

/// The restart policy as `--restart` takes it.
pub fn restart_text(policy: &bollard::models::RestartPolicy) -> String {
    let name = policy.name.map(|n| n.to_string()).unwrap_or_default();
    match policy.maximum_retry_count.filter(|n| *n > 0) {
        Some(n) => format!("{name}:{n}"),
        None => name,
    }
}

fn run_words(w: &mut Words, options: &CreateContainerOptions, body: &ContainerCreateBody) {
    w.flag(&["run", "-d"]);
    w.option("--name", options.name.as_ref());
    let ports = container_ports(body);
    w.each(
        "-p",
        ports
            .iter()
            .map(|(ip, host, container)| publish_text(ip.as_deref(), host, container)),
    );
    w.each("-e", body.env.iter().flatten());
    let host = body.host_config.clone().unwrap_or_default();
    w.each("-v", host.binds.iter().flatten());
    w.option("--restart", host.restart_policy.as_ref().map(restart_text));
    w.each("--label", pairs(body.labels.as_ref()));
    w.option("--network", host.network_mode.as_ref());
    w.option("--log-driver", host.log_config.and_then(|l| l.typ));
    w.value(body.image.as_deref().unwrap_or_default());
    for word in body.cmd.iter().flatten() {
        w.value(word);
    }
}

fn health_words(w: &mut Words, h: &HealthConfig) {
    match h.test.as_deref() {
        Some([none]) if none == "NONE" => {
            w.flag(&["--no-healthcheck"]);
            return;
        }
        Some([kind, rest @ ..]) => {
            let cmd = if kind == "CMD-SHELL" {
                rest.join(" ")
            } else {
                rest.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
            };
            w.flag(&["--health-cmd"]).value(&cmd);
        }
        _ => {}
    }
    w.option("--health-interval", h.interval.map(nanos));
    w.option("--health-timeout", h.timeout.map(nanos));
    w.option("--health-start-period", h.start_period.map(nanos));
    w.option("--health-retries", h.retries.map(|n| n.to_string()));
}

/// An update or a rollback policy (the Engine has one type for each, with the same fields).
struct Policy {
    parallelism: Option<i64>,
    delay: Option<i64>,
    failure_action: Option<String>,
    monitor: Option<i64>,
    max_failure_ratio: Option<f64>,
    order: Option<String>,
}

impl From<&ServiceSpecUpdateConfig> for Policy {
    fn from(u: &ServiceSpecUpdateConfig) -> Self {
        Policy {
            parallelism: u.parallelism,
            delay: u.delay,
            failure_action: u.failure_action.map(|a| a.to_string()),
            monitor: u.monitor,
            max_failure_ratio: u.max_failure_ratio,
            order: u.order.map(|o| o.to_string()),
        }
    }
}

impl From<&ServiceSpecRollbackConfig> for Policy {
    fn from(r: &ServiceSpecRollbackConfig) -> Self {
        Policy {
            parallelism: r.parallelism,
            delay: r.delay,
            failure_action: r.failure_action.map(|a| a.to_string()),
            monitor: r.monitor,
            max_failure_ratio: r.max_failure_ratio,
            order: r.order.map(|o| o.to_string()),
        }
    }
}

impl Policy {
    /// The policy as the CLI's flags; a setting at the CLI's own default is left out, so the
    /// line still sends the same spec as the request.
    fn words(self, w: &mut Words, kind: &str) {
        let monitor_default = Duration::from_secs(5).as_nanos() as i64;
        let mut flag = |name: &str, value: Option<String>| {
            w.option(&format!("--{kind}-{name}"), value);
        };
        let parallelism = self.parallelism.filter(|n| *n != 1);
        flag("parallelism", parallelism.map(|n| n.to_string()));
        flag("delay", self.delay.filter(|d| *d != 0).map(nanos));
        flag("order", self.order.filter(|o| o != "stop-first"));
        flag(
            "failure-action",
            self.failure_action.filter(|a| a != "pause"),
        );
        let monitor = self.monitor.filter(|m| *m != monitor_default);
        flag("monitor", monitor.map(nanos));
        let ratio = self.max_failure_ratio.filter(|r| *r != 0.0);
        flag("max-failure-ratio", ratio.map(|r| r.to_string()));
    }
}

/// The flags of `docker service create/update` that set what `spec` sets.
fn service_flags(w: &mut Words, spec: &ServiceSpec, container: &TaskSpecContainerSpec) {
    let task = spec.task_template.clone().unwrap_or_default();
    let replicas = spec
        .mode
        .as_ref()
        .and_then(|m| m.replicated.as_ref()?.replicas);
    w.option("--replicas", replicas.map(|n| n.to_string()));
    let ports = spec.endpoint_spec.as_ref().and_then(|e| e.ports.clone());
    w.each("--publish", ports.iter().flatten().map(port_text));
    w.each("--env", container.env.iter().flatten());
    let secrets = container.secrets.iter().flatten();
    w.each(
        "--secret",
        secrets.filter_map(|s| s.file.as_ref()?.name.clone()),
    );
    w.each("--label", pairs(spec.labels.as_ref()));
    let networks = task.networks.iter().flatten();
    w.each("--network", networks.filter_map(|n| n.target.clone()));
    let constraints = task.placement.and_then(|p| p.constraints);
    w.each("--constraint", constraints.iter().flatten());
    if let Some(h) = &container.health_check {
        health_words(w, h);
    }
    if let Some(u) = &spec.update_config {
        Policy::from(u).words(w, "update");
    }
    if let Some(r) = &spec.rollback_config {
        Policy::from(r).words(w, "rollback");
    }
    w.option(
        "--stop-grace-period",
        container.stop_grace_period.map(nanos),
    );
}

fn service_words(w: &mut Words, spec: &ServiceSpec, update: Option<(&str, Change)>) {
    let container = spec
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.clone())
        .unwrap_or_default();
    let image = container.image.clone().unwrap_or_default();
    let force_update = spec
        .task_template
        .as_ref()
        .and_then(|t| t.force_update)
        .unwrap_or(0);
    match update {
        Some((service, Change::Scale)) => {
            let replicas = spec
                .mode
                .as_ref()
                .and_then(|m| m.replicated.as_ref()?.replicas)
                .unwrap_or_default();
            w.flag(&["service", "scale"])
                .value(&format!("{service}={replicas}"));
        }
        Some((service, Change::Rollback)) => {
            w.flag(&["service", "rollback"]).value(service);
        }
        Some((service, Change::Update { forced })) => {
            w.flag(&["service", "update", "--image"]).value(&image);
            service_flags(w, spec, &container);
            if forced {
                w.flag(&["--force"]);
            }
            w.value(service);
        }
        None => {
            w.flag(&["service", "create", "--name"])
                .value(spec.name.as_deref().unwrap_or_default());
            service_flags(w, spec, &container);
            if force_update > 0 {
                w.flag(&["--force"]);
            }
            w.value(&image);
            for word in container.args.iter().flatten() {
                w.value(word);
            }
        }
    }
}

impl fmt::Display for Request {
    /// The docker CLI command that would send the same request (without the leading `docker`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = Words::default();
        match self {
            Request::Build {
                context,
                options,
                more_tags,
            } => build_words(&mut w, context, options, more_tags),
            Request::Run { options, body } => run_words(&mut w, options, body),
            Request::Stop { container, options } => {
                w.flag(&["stop"]);
                w.option("-t", options.t.map(|t| t.to_string()));
                w.value(container);
            }
            Request::Remove { container, options } => {
                w.flag(&["rm"]);
                if options.force {
                    w.flag(&["-f"]);
                }
                w.value(container);
            }
            Request::Exec { container, config } => {
                w.flag(&["exec"]).value(container);
                for word in config.cmd.iter().flatten() {
                    w.value(word);
                }
            }
            Request::CreateNetwork(request) => {
                w.flag(&["network", "create"]);
                w.option(
                    "--driver",
                    request.driver.as_ref().filter(|d| *d != "bridge"),
                );
                w.value(&request.name);
            }
            Request::Tag { image, options } => {
                let target = format!(
                    "{}:{}",
                    options.repo.as_deref().unwrap_or_default(),
                    options.tag.as_deref().unwrap_or("latest")
                );
                w.flag(&["tag"]).value(image).value(&target);
            }
            Request::Pull { options, .. } => {
                let image = format!(
                    "{}:{}",
                    options.from_image.as_deref().unwrap_or_default(),
                    options.tag.as_deref().unwrap_or("latest")
                );
                w.flag(&["pull"]).value(&image);
            }
            Request::Push { image, options, .. } => {
                let tag = options.tag.as_deref().unwrap_or("latest");
                w.flag(&["push"]).value(&format!("{image}:{tag}"));
            }
            Request::RemoveImage { image } => {
                w.flag(&["rmi"]).value(image);
            }
            Request::SwarmInit(request) => {
                w.flag(&["swarm", "init"]);
                w.option("--advertise-addr", request.advertise_addr.as_ref());
                let listen = request.listen_addr.as_ref();
                w.option(
                    "--listen-addr",
                    listen.filter(|l| *l != SWARM_LISTEN_DEFAULT),
                );
            }
            Request::SwarmLeave(options) => {
                w.flag(&["swarm", "leave"]);
                if options.force {
                    w.flag(&["--force"]);
                }
            }
            Request::CreateSecret { spec, source } => {
                w.flag(&["secret", "create"])
                    .value(spec.name.as_deref().unwrap_or_default())
                    .flag(&["-", &format!(" (the value of {source})")]);
            }
            Request::CreateService(spec) => service_words(&mut w, spec, None),
            Request::UpdateService {
                service,
                spec,
                change,
                ..
            } => service_words(&mut w, spec, Some((service, *change))),
            Request::RemoveService { service } => {
                w.flag(&["service", "rm"]).value(service);
            }
        }
        write!(f, "{w}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{
        HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum, ServiceSpecMode,
        ServiceSpecModeReplicated, ServiceSpecUpdateConfigOrderEnum, TaskSpec,
        TaskSpecContainerSpecFile, TaskSpecContainerSpecSecrets,
    };

    #[test]
    fn a_container_is_shown_as_the_docker_run_that_sends_the_same_body() {
        let body = ContainerCreateBody {
            image: Some("app:1.2".into()),
            cmd: Some(vec!["serve".into(), "--port".into(), "80".into()]),
            env: Some(vec!["MODE=prod".into(), "GREETING=hi there".into()]),
            labels: Some(HashMap::from([
                ("z".to_string(), "1".to_string()),
                ("a".to_string(), "2".to_string()),
            ])),
            host_config: Some(HostConfig {
                port_bindings: Some(HashMap::from([
                    (
                        "80/tcp".to_string(),
                        Some(vec![PortBinding {
                            host_ip: Some("127.0.0.1".into()),
                            host_port: Some("8080".into()),
                        }]),
                    ),
                    (
                        "53/udp".to_string(),
                        Some(vec![PortBinding {
                            host_ip: None,
                            host_port: Some("5353".into()),
                        }]),
                    ),
                ])),
                binds: Some(vec!["/srv/data:/data".into()]),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::ON_FAILURE),
                    maximum_retry_count: Some(3),
                }),
                network_mode: Some("web".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let run = Request::Run {
            options: CreateContainerOptions {
                name: Some("web-1".into()),
                ..Default::default()
            },
            body,
        };
        assert_eq!(
            run.to_string(),
            "run -d --name web-1 -p 5353:53/udp -p 127.0.0.1:8080:80 -e MODE=prod \
             -e 'GREETING=hi there' -v /srv/data:/data --restart on-failure:3 --label a=2 \
             --label z=1 --network web app:1.2 serve --port 80"
        );
    }

    #[test]
    fn builds_stops_and_images_are_shown_as_the_cli_writes_them() {
        let build = Request::Build {
            context: "ctx".into(),
            options: BuildImageOptions {
                dockerfile: "Dockerfile".into(),
                t: Some("app:1".into()),
                target: "prod".into(),
                buildargs: Some(HashMap::from([("V".to_string(), "1".to_string())])),
                ..Default::default()
            },
            more_tags: vec!["app:latest".into()],
        };
        assert_eq!(
            build.to_string(),
            "build -t app:1 -t app:latest -f Dockerfile --target prod --build-arg V=1 ctx"
        );
        let stop = Request::Stop {
            container: "web".into(),
            options: StopContainerOptions {
                t: Some(10),
                ..Default::default()
            },
        };
        assert_eq!(stop.to_string(), "stop -t 10 web");
        let rm = Request::Remove {
            container: "web".into(),
            options: RemoveContainerOptions {
                force: true,
                ..Default::default()
            },
        };
        assert_eq!(rm.to_string(), "rm -f web");
        let tag = Request::Tag {
            image: "sha256:abc".into(),
            options: TagImageOptions {
                repo: Some("127.0.0.1:5000/app".into()),
                tag: Some("2".into()),
            },
        };
        assert_eq!(tag.to_string(), "tag sha256:abc 127.0.0.1:5000/app:2");
        let exec = Request::Exec {
            container: "web".into(),
            config: ExecConfig {
                cmd: Some(vec!["sh".into(), "-c".into(), "echo $HOME".into()]),
                ..Default::default()
            },
        };
        assert_eq!(exec.to_string(), "exec web sh -c 'echo $HOME'");
        let init = Request::SwarmInit(SwarmInitRequest {
            advertise_addr: Some("10.0.0.1".into()),
            listen_addr: Some(SWARM_LISTEN_DEFAULT.into()),
            ..Default::default()
        });
        assert_eq!(init.to_string(), "swarm init --advertise-addr 10.0.0.1");
    }

    fn service() -> ServiceSpec {
        ServiceSpec {
            name: Some("web".into()),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some("app:2".into()),
                    args: Some(vec!["serve".into()]),
                    env: Some(vec!["TOKEN=t0k3n".into()]),
                    secrets: Some(vec![TaskSpecContainerSpecSecrets {
                        secret_id: Some("id".into()),
                        secret_name: Some("web-token-0123".into()),
                        file: Some(TaskSpecContainerSpecFile {
                            name: Some("token".into()),
                            ..Default::default()
                        }),
                    }]),
                    stop_grace_period: Some(1_000_000_000),
                    ..Default::default()
                }),
                force_update: Some(0),
                ..Default::default()
            }),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated { replicas: Some(3) }),
                ..Default::default()
            }),
            update_config: Some(ServiceSpecUpdateConfig {
                parallelism: Some(1),
                delay: Some(0),
                monitor: Some(5_000_000_000),
                max_failure_ratio: Some(0.0),
                order: Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
                ..Default::default()
            }),
            endpoint_spec: Some(bollard::models::EndpointSpec {
                mode: None,
                ports: Some(vec![EndpointPortConfig {
                    target_port: Some(8080),
                    publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                    protocol: Some(EndpointPortConfigProtocolEnum::TCP),
                    ..Default::default()
                }]),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_service_spec_is_shown_as_the_service_create_or_update_that_sends_it() {
        assert_eq!(
            Request::CreateService(service()).to_string(),
            "service create --name web --replicas 3 --publish mode=host,target=8080 \
             --env TOKEN=t0k3n --secret token --update-order start-first \
             --stop-grace-period 1s app:2 serve"
        );
        let update = |change| Request::UpdateService {
            service: "web".into(),
            spec: service(),
            options: UpdateServiceOptions::default(),
            change,
        };
        assert_eq!(
            update(Change::Update { forced: true }).to_string(),
            "service update --image app:2 --replicas 3 --publish mode=host,target=8080 \
             --env TOKEN=t0k3n --secret token --update-order start-first \
             --stop-grace-period 1s --force web"
        );
        assert_eq!(update(Change::Scale).to_string(), "service scale web=3");
        assert_eq!(update(Change::Rollback).to_string(), "service rollback web");
        let secret = Request::CreateSecret {
            spec: SecretSpec {
                name: Some("web-token-0123".into()),
                data: Some("c2VjcmV0".into()),
                ..Default::default()
            },
            source: "token".into(),
        };
        assert_eq!(
            secret.to_string(),
            "secret create web-token-0123 -  (the value of token)"
        );
    }
}
