//! Docker Swarm on a host, through the same Engine client as `h.docker()` (the local socket, or a
//! manager's socket forwarded over ssh): `h.swarm()` → `init`, `status`, `leave`, and
//! `sw.service(name)` → `deploy` (create or update, then wait for the rollout), `status`,
//! `tasks`, `logs`, `scale`, `rollback`, `rm`. Every change is an `Action` first, so dry-run and
//! masking work as for every other primitive.

pub mod rollout;
pub mod spec;

use base64::Engine as _;
use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use bollard::errors::Error as ApiError;
use bollard::models::{LocalNodeState, SecretSpec, Service, ServiceSpec, SwarmInitRequest, Task};
use bollard::query_parameters::{
    InspectServiceOptions, LeaveSwarmOptions, ListTasksOptions, LogsOptions, UpdateServiceOptions,
};
use futures_util::StreamExt;
use rhai::{Array, Dynamic, Map};

use super::client::{is_missing, DockerHost, Reply};
use crate::api::{opt, Api, OptionSpec, Spec, Type};
use crate::error::SwarmProblem;
use crate::error::{Failure, RhaiResult};
use crate::exec::docker::{Change, Request, SWARM_LISTEN_DEFAULT};
use crate::primitives::host::Host;
use crate::primitives::options::Opts;
use spec::{Deploy, SecretRef};

/// How long `scale` and `rollback` wait for the service to converge.
const CONVERGE_TIMEOUT: Duration = Duration::from_mins(5);

/// The swarm that a host's Engine belongs to.
#[derive(Clone)]
pub struct Swarm {
    pub docker: DockerHost,
}

/// One service of a swarm, by name.
#[derive(Clone)]
pub struct SwarmService {
    pub docker: DockerHost,
    pub name: String,
}

/// The report for an Engine error during a swarm call: a node that is no manager gets its own
/// code, anything else is reported as for `h.docker()`.
fn failure(docker: &DockerHost, service: &str, what: &str, error: &ApiError) -> Failure {
    let plain = docker.failure(what, error);
    let text = plain.to_string();
    let lower = text.to_lowercase();
    if lower.contains("not a swarm manager") || lower.contains("not part of a swarm") {
        return Failure::Swarm {
            host: docker.host.name().to_string(),
            service: service.to_string(),
            problem: SwarmProblem::NotManager,
            message: format!(
                "{what}: the Docker Engine at {} is not a swarm manager",
                docker.endpoint
            ),
            detail: vec![format!("docker said: {text}")],
            rolled_back: false,
            help: "run `h.swarm().init(#{ advertise_addr: \"...\" })` on this host, or point the \
                   recipe at a manager (`ssh::connect(\"manager\")`); `docker node ls` on a \
                   manager lists them"
                .into(),
        };
    }
    plain
}

/// Runs a swarm API call (cancellable); its error becomes a report about `what`.
fn call<T>(
    docker: &DockerHost,
    service: &str,
    what: &str,
    fut: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, Failure> {
    docker
        .host
        .ctx()
        .wait(what, fut)?
        .map_err(|e| failure(docker, service, what, &e))
}

/// Whether `name` is a valid service (or secret) name: it goes into URL paths.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.len() <= 63
}

impl Swarm {
    fn connect(host: &Host) -> Result<Self, Failure> {
        Ok(Swarm {
            docker: DockerHost::connect(host)?,
        })
    }

    fn info(&self) -> Result<bollard::models::SwarmInfo, Failure> {
        let info = call(
            &self.docker,
            "",
            "reading the swarm state",
            self.docker.api.info(),
        )?;
        Ok(info.swarm.unwrap_or_default())
    }

    /// `#{ state, role, node_id, node_addr, managers, workers, nodes }`.
    fn status(&self) -> Result<Map, Failure> {
        let info = self.info()?;
        let state = info.local_node_state.unwrap_or(LocalNodeState::INACTIVE);
        let active = state == LocalNodeState::ACTIVE;
        let role = match (active, info.control_available.unwrap_or(false)) {
            (false, _) => "none",
            (true, true) => "manager",
            (true, false) => "worker",
        };
        let managers = info.managers.unwrap_or(0);
        let nodes = info.nodes.unwrap_or(0);
        let mut map = Map::new();
        map.insert("state".into(), state.to_string().into());
        map.insert("role".into(), role.into());
        map.insert("node_id".into(), info.node_id.unwrap_or_default().into());
        map.insert(
            "node_addr".into(),
            info.node_addr.unwrap_or_default().into(),
        );
        map.insert("managers".into(), Dynamic::from(managers));
        map.insert("workers".into(), Dynamic::from((nodes - managers).max(0)));
        map.insert("nodes".into(), Dynamic::from(nodes));
        Ok(map)
    }

    /// Makes this node the first manager of a new swarm; a node in a swarm already is left as it is.
    fn init(&self, opts: Map) -> Result<Map, Failure> {
        let opts = Opts::new("init", opts, INIT_OPTIONS)?;
        let advertise = opts.string("advertise_addr")?;
        let listen = opts.string("listen_addr")?;
        if self.info()?.local_node_state == Some(LocalNodeState::ACTIVE) {
            self.docker.host.ctx().printer.log(&format!(
                "[{}] already in a swarm: not initialising another",
                self.docker.host.name()
            ));
            return self.status();
        }
        let request = SwarmInitRequest {
            advertise_addr: advertise,
            listen_addr: Some(listen.unwrap_or_else(|| SWARM_LISTEN_DEFAULT.into())),
            ..Default::default()
        };
        self.docker.perform(Request::SwarmInit(request))?;
        self.status()
    }

    /// Leaves the swarm (`force` to leave as the last manager); a node in no swarm is left alone.
    fn leave(&self, opts: Map) -> Result<(), Failure> {
        let opts = Opts::new("leave", opts, LEAVE_OPTIONS)?;
        let force = opts.bool("force")?.unwrap_or(false);
        if self.info()?.local_node_state != Some(LocalNodeState::ACTIVE) {
            return Ok(());
        }
        self.docker
            .perform(Request::SwarmLeave(LeaveSwarmOptions { force }))?;
        Ok(())
    }

    fn service(&self, name: &str) -> Result<SwarmService, Failure> {
        if !valid_name(name) {
            return Err(Failure::BadValue {
                function: "service".into(),
                what: "the service name".into(),
                expected: "letters, digits, `-`, `_` and `.`, starting with a letter or digit (at most 63)".into(),
                got: format!("{name:?}"),
            });
        }
        Ok(SwarmService {
            docker: self.docker.clone(),
            name: name.to_string(),
        })
    }
}

impl SwarmService {
    /// The host the service is managed through.
    pub fn host(&self) -> &Host {
        &self.docker.host
    }

    /// Runs an API call about this service.
    pub fn call<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, Failure> {
        call(&self.docker, &self.name, what, fut)
    }

    /// The service as the Engine has it, or `None` when there is no such service.
    pub fn inspect(&self) -> Result<Option<Service>, Failure> {
        let what = format!("inspecting service {}", self.name);
        let found = self.host().ctx().wait(
            &what,
            self.docker
                .api
                .inspect_service(&self.name, None::<InspectServiceOptions>),
        )?;
        match found {
            Ok(service) => Ok(Some(service)),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(failure(&self.docker, &self.name, &what, &e)),
        }
    }

    /// The service, or a report that it does not exist.
    fn existing(&self, function: &str) -> Result<Service, Failure> {
        self.inspect()?.ok_or_else(|| Failure::Other {
            message: format!("{function}: there is no service {} on {}", self.name, self.host().name()),
            help: "deploy it first (`sw.service(name).deploy(#{ image: ... })`); `docker service ls` lists the services"
                .into(),
        })
    }

    /// The service's tasks (with `running`, only those Swarm wants running), as the Engine has them.
    pub fn task_list(&self, extra: &[(&str, &str)]) -> Result<Vec<Task>, Failure> {
        let mut filters: HashMap<String, Vec<String>> = HashMap::new();
        filters.insert("service".into(), vec![self.name.clone()]);
        for (k, v) in extra {
            filters.insert(k.to_string(), vec![v.to_string()]);
        }
        let mut tasks = self.call(
            &format!("listing the tasks of {}", self.name),
            self.docker.api.list_tasks(Some(ListTasksOptions {
                filters: Some(filters),
            })),
        )?;
        tasks.sort_by(|a, b| (a.slot, &b.created_at).cmp(&(b.slot, &a.created_at)));
        Ok(tasks)
    }

    /// The last `tail` lines a task wrote ("" when they cannot be read).
    pub fn task_logs(&self, task_id: &str, tail: u64) -> String {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: tail.to_string(),
            ..Default::default()
        };
        let api = self.docker.api.clone();
        let read = async move {
            let mut stream = api.task_logs(task_id, Some(options));
            let mut text = String::new();
            while let Some(chunk) = stream.next().await {
                text.push_str(&chunk?.to_string());
            }
            Ok::<_, ApiError>(text)
        };
        match self.host().ctx().wait("reading a task's logs", read) {
            Ok(Ok(text)) => text,
            _ => String::new(),
        }
    }

    /// The request that replaces the service's spec with `spec` (at the version of `current`).
    fn update_request(
        &self,
        current: &Service,
        spec: bollard::models::ServiceSpec,
        change: Change,
    ) -> Result<Request, Failure> {
        let index = current
            .version
            .as_ref()
            .and_then(|v| v.index)
            .unwrap_or_default();
        let version = i32::try_from(index).map_err(|_| Failure::Other {
            message: format!(
                "service {} has version {index}, more than the API can send",
                self.name
            ),
            help: "this is a limit of the Engine API client; `docker service update` works".into(),
        })?;
        let options = UpdateServiceOptions {
            version,
            registry_auth_from: "spec".into(),
            rollback: (change == Change::Rollback).then(|| "previous".into()),
        };
        Ok(Request::UpdateService {
            service: self.name.clone(),
            spec,
            options,
            change,
        })
    }

    /// Sends `request` (a create or an update of this service) and waits for the rollout that
    /// `plan` expects; a dry run only announces it.
    fn roll_out(
        &self,
        request: Request,
        current: Option<&Service>,
        plan: &rollout::Plan,
    ) -> Result<(), Failure> {
        if self.host().ctx().dry_run {
            self.docker.perform(request)?;
            return Ok(());
        }
        let before = rollout::Before::of(self, current)?;
        self.docker.perform(request)?;
        rollout::watch(self, plan, &before)
    }

    /// Makes sure every secret exists as a Docker secret; returns (id, name, file) to mount.
    fn secrets(&self, refs: &[SecretRef]) -> Result<Vec<(String, String, String)>, Failure> {
        let mut mounts = Vec::new();
        for secret in refs {
            let (docker_name, file, value) = match secret {
                SecretRef::Existing { name } => (name.clone(), name.clone(), None),
                SecretRef::Value { name, value } => (
                    spec::secret_name(&self.name, name, value),
                    name.clone(),
                    Some(value),
                ),
            };
            if !valid_name(&docker_name) {
                return Err(Failure::BadValue {
                    function: "deploy".into(),
                    what: "a secret's name".into(),
                    expected: "letters, digits, `-`, `_` and `.`".into(),
                    got: format!("{file:?}"),
                });
            }
            let what = format!("inspecting secret {docker_name}");
            let found = self
                .host()
                .ctx()
                .wait(&what, self.docker.api.inspect_secret(&docker_name))?;
            // A dry run shows the plan even where it cannot look (a node that is no manager yet).
            let dry_run = self.host().ctx().dry_run;
            let id = match (found, value) {
                (Ok(existing), _) => existing.id.unwrap_or_default(),
                (Err(e), Some(value)) if is_missing(&e) || dry_run => {
                    let labels = HashMap::from([(SERVICE_LABEL.to_string(), self.name.clone())]);
                    let spec = SecretSpec {
                        name: Some(docker_name.clone()),
                        labels: Some(labels),
                        data: Some(base64::engine::general_purpose::STANDARD.encode(value)),
                        ..Default::default()
                    };
                    let request = Request::CreateSecret {
                        spec,
                        source: file.clone(),
                    };
                    self.docker.perform(request)?.id()
                }
                (Err(_), None) if dry_run => String::new(),
                (Err(e), _) => return Err(failure(&self.docker, &self.name, &what, &e)),
            };
            mounts.push((id, docker_name, file));
        }
        Ok(mounts)
    }

    /// Creates or updates the service and waits until the rollout converged.
    fn deploy(&self, opts: Map) -> Result<Map, Failure> {
        let mut deploy = Deploy::from_map(opts)?;
        let masker = self.host().ctx().printer.masker().clone();
        if let Some(path) = &deploy.env_file {
            // The file's values are secrets as far as printing goes.
            let mut env = Vec::new();
            for (key, value) in
                crate::primitives::process::parse_env_file(&self.host().read_text(path)?)
            {
                masker.add(&value);
                env.push((key, value));
            }
            for (key, value) in std::mem::take(&mut deploy.env) {
                env.retain(|(k, _)| *k != key);
                env.push((key, value));
            }
            deploy.env = env;
        }
        for secret in &deploy.secrets {
            if let SecretRef::Value { value, .. } = secret {
                masker.add(value);
            }
        }
        let dry_run = self.host().ctx().dry_run;
        let current = match self.inspect() {
            // A dry run on a node that is not a manager yet (its init would come first) still shows the plan.
            Err(Failure::Swarm {
                problem: SwarmProblem::NotManager,
                ..
            }) if dry_run => None,
            other => other?,
        };
        let current_replicas = current.as_ref().and_then(|s| {
            s.spec
                .as_ref()?
                .mode
                .as_ref()?
                .replicated
                .as_ref()?
                .replicas
        });
        let replicas = deploy.replicas.or(current_replicas).unwrap_or(1);
        let force_update = current
            .as_ref()
            .and_then(|s| s.spec.as_ref()?.task_template.as_ref()?.force_update)
            .unwrap_or(0);
        let mut result = Map::new();
        result.insert("service".into(), self.name.clone().into());
        result.insert("image".into(), deploy.image.clone().into());
        result.insert("replicas".into(), Dynamic::from(replicas));
        result.insert("created".into(), current.is_none().into());
        let started = Instant::now();
        let mounts = self.secrets(&deploy.secrets)?;
        let spec = deploy.spec(&self.name, replicas, force_update, mounts);
        let request = match &current {
            None => Request::CreateService(spec),
            Some(current) => self.update_request(
                current,
                spec,
                Change::Update {
                    forced: deploy.force,
                },
            )?,
        };
        let plan = rollout::Plan {
            expect: rollout::Expect::Update,
            timeout: deploy.timeout,
            rollback_on_deadline: deploy.update.failure_action.as_deref() == Some("rollback")
                && current.is_some(),
        };
        self.roll_out(request, current.as_ref(), &plan)?;
        if dry_run {
            return Ok(result);
        }
        result.insert(
            "seconds".into(),
            Dynamic::from(started.elapsed().as_secs_f64()),
        );
        result.insert("tasks".into(), Dynamic::from(self.tasks(false)?));
        Ok(result)
    }

    /// `#{ exists, name, id, image, replicas, running, update: #{ state, message } }`.
    fn status(&self) -> Result<Map, Failure> {
        let mut map = Map::new();
        map.insert("name".into(), self.name.clone().into());
        let Some(service) = self.inspect()? else {
            map.insert("exists".into(), false.into());
            return Ok(map);
        };
        let spec = service.spec.clone().unwrap_or_default();
        let image = spec
            .task_template
            .as_ref()
            .and_then(|t| t.container_spec.as_ref()?.image.clone())
            .unwrap_or_default();
        let replicas = spec
            .mode
            .as_ref()
            .and_then(|m| m.replicated.as_ref()?.replicas)
            .unwrap_or(0);
        let running = self
            .task_list(&[("desired-state", "running")])?
            .iter()
            .filter(|t| rollout::state_of(t) == "running")
            .count();
        let mut update = Map::new();
        if let Some(status) = &service.update_status {
            update.insert(
                "state".into(),
                status
                    .state
                    .map(|s| s.to_string())
                    .unwrap_or_default()
                    .into(),
            );
            update.insert(
                "message".into(),
                status.message.clone().unwrap_or_default().into(),
            );
        }
        map.insert("exists".into(), true.into());
        map.insert("id".into(), service.id.unwrap_or_default().into());
        map.insert("image".into(), image.into());
        map.insert("replicas".into(), Dynamic::from(replicas));
        map.insert("running".into(), Dynamic::from(running as i64));
        map.insert("update".into(), Dynamic::from(update));
        Ok(map)
    }

    /// The service's tasks as maps; with `all`, the finished ones too.
    fn tasks(&self, all: bool) -> Result<Array, Failure> {
        let extra: &[(&str, &str)] = if all {
            &[]
        } else {
            &[("desired-state", "running")]
        };
        Ok(self
            .task_list(extra)?
            .iter()
            .map(|t| Dynamic::from(rollout::task_map(&self.name, t)))
            .collect())
    }

    /// The last `tail` lines of the service's output (all tasks), or all of it.
    fn logs(&self, tail: Option<u64>) -> Result<String, Failure> {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: tail.map_or_else(|| "all".into(), |n| n.to_string()),
            ..Default::default()
        };
        let api = self.docker.api.clone();
        let name = self.name.clone();
        self.call(&format!("reading the logs of {}", self.name), async move {
            let mut stream = api.service_logs(&name, Some(options));
            let mut text = String::new();
            while let Some(chunk) = stream.next().await {
                text.push_str(&chunk?.to_string());
            }
            Ok(text)
        })
    }

    /// Sets the number of replicas and waits until that many tasks run.
    fn scale(&self, replicas: i64) -> Result<(), Failure> {
        let current = self.existing("scale")?;
        let mut spec = current.spec.clone().unwrap_or_default();
        spec.mode = Some(bollard::models::ServiceSpecMode {
            replicated: Some(bollard::models::ServiceSpecModeReplicated {
                replicas: Some(replicas.max(0)),
            }),
            ..Default::default()
        });
        let request = self.update_request(&current, spec, Change::Scale)?;
        let plan = rollout::Plan {
            expect: rollout::Expect::Update,
            timeout: CONVERGE_TIMEOUT,
            rollback_on_deadline: false,
        };
        self.roll_out(request, Some(&current), &plan)
    }

    /// Asks Swarm to put the previous spec back (server-side) and waits for it.
    pub fn rollback(&self, timeout: Duration) -> Result<(), Failure> {
        let current = self.existing("rollback")?;
        let spec = current.spec.clone().unwrap_or_default();
        let request = self.update_request(&current, spec, Change::Rollback)?;
        let plan = rollout::Plan {
            expect: rollout::Expect::Rollback,
            timeout,
            rollback_on_deadline: false,
        };
        self.roll_out(request, Some(&current), &plan).map_err(|e| {
            if !e.to_string().contains("does not have a previous spec") {
                return e;
            }
            Failure::Other {
                message: format!("service {} has no previous spec to roll back to", self.name),
                help: "Swarm keeps one previous spec, from the last update; deploy the old image \
                           instead (`galley rollback APP` does that for `galley/swarm`)"
                    .into(),
            }
        })
    }

    /// Removes the service (its tasks stop); a missing service is not an error.
    fn rm(&self) -> Result<(), Failure> {
        self.docker.perform(Request::RemoveService {
            service: self.name.clone(),
        })?;
        Ok(())
    }
}

/// The label on the Docker secrets Galley stores: the service they belong to.
const SERVICE_LABEL: &str = "galley.service";

/// Sends a `Request::SwarmInit`.
pub fn send_init(docker: &DockerHost, request: SwarmInitRequest) -> Result<Reply, Failure> {
    call(
        docker,
        "",
        "initialising the swarm",
        docker.api.init_swarm(request),
    )?;
    Ok(Reply::Done)
}

/// Sends a `Request::SwarmLeave`.
pub fn send_leave(docker: &DockerHost, options: LeaveSwarmOptions) -> Result<Reply, Failure> {
    let leave = docker.api.leave_swarm(Some(options));
    call(docker, "", "leaving the swarm", leave)?;
    Ok(Reply::Done)
}

/// Sends a `Request::CreateSecret`; replies with the secret's id.
pub fn send_secret(docker: &DockerHost, spec: SecretSpec) -> Result<Reply, Failure> {
    let labels = spec.labels.clone().unwrap_or_default();
    let service = labels.get(SERVICE_LABEL).map_or("", String::as_str);
    let what = format!(
        "creating secret {}",
        spec.name.as_deref().unwrap_or_default()
    );
    let created = call(docker, service, &what, docker.api.create_secret(spec))?;
    Ok(Reply::Id(created.id))
}

/// Sends a `Request::CreateService`.
pub fn send_create(docker: &DockerHost, spec: ServiceSpec) -> Result<Reply, Failure> {
    let service = spec.name.clone().unwrap_or_default();
    let what = format!("creating service {service}");
    let created = docker.api.create_service(spec, None);
    let response = call(docker, &service, &what, created)?;
    for warning in response.warnings.unwrap_or_default() {
        docker.host.ctx().printer.warn(&warning);
    }
    Ok(Reply::Done)
}

/// Sends a `Request::UpdateService`.
pub fn send_update(
    docker: &DockerHost,
    service: &str,
    spec: ServiceSpec,
    options: UpdateServiceOptions,
) -> Result<Reply, Failure> {
    let what = format!("updating service {service}");
    let updated = docker.api.update_service(service, spec, options, None);
    let response = call(docker, service, &what, updated)?;
    for warning in response.warnings.unwrap_or_default() {
        docker.host.ctx().printer.warn(&warning);
    }
    Ok(Reply::Done)
}

/// Sends a `Request::RemoveService`; a missing service is not an error.
pub fn send_remove(docker: &DockerHost, service: &str) -> Result<Reply, Failure> {
    let what = format!("removing service {service}");
    match docker
        .host
        .ctx()
        .wait(&what, docker.api.delete_service(service))?
    {
        Err(e) if is_missing(&e) => Ok(Reply::Missing),
        Err(e) => Err(failure(docker, service, &what, &e)),
        Ok(()) => Ok(Reply::Done),
    }
}

const INIT_OPTIONS: &[OptionSpec] = &[
    opt(
        "advertise_addr",
        Type::String,
        "",
        "the address other nodes reach this manager at",
    ),
    opt(
        "listen_addr",
        Type::String,
        "\"0.0.0.0:2377\"",
        "where the manager listens",
    ),
];
const LEAVE_OPTIONS: &[OptionSpec] = &[opt(
    "force",
    Type::Bool,
    "false",
    "leave even as the last manager",
)];
const TASKS_OPTIONS: &[OptionSpec] = &[opt(
    "all",
    Type::Bool,
    "false",
    "with the finished and failed tasks",
)];
const LOGS_OPTIONS: &[OptionSpec] = &[opt(
    "tail",
    Type::Int,
    "all",
    "how many of the last lines of each task",
)];
const ROLLBACK_OPTIONS: &[OptionSpec] = &[opt(
    "timeout",
    Type::Duration,
    "\"5m\"",
    "how long to wait for the rollback to converge",
)];

const SWARM: &[(&str, &str)] = &[("swarm", "Swarm")];
const SERVICE: &[(&str, &str)] = &[("service", "SwarmService")];
const SERVICE_OPTS: &[(&str, &str)] = &[("service", "SwarmService"), ("opts", "map")];

const INIT: Spec = Spec::method("init", &[("swarm", "Swarm"), ("opts", "map")], "map")
    .doc("Makes this node the first manager of a new swarm (a node in one already is left as it is); returns the status.")
    .example(r#"sw.init(#{ advertise_addr: "10.0.0.1" });"#)
    .options(INIT_OPTIONS);
const LEAVE: Spec = Spec::method("leave", &[("swarm", "Swarm"), ("opts", "map")], "()")
    .doc("Leaves the swarm; a node in no swarm is left alone.")
    .example(r"sw.leave(#{ force: true });")
    .options(LEAVE_OPTIONS);
const TASKS: Spec = Spec::method("tasks", SERVICE_OPTS, "array")
    .doc("The service's tasks: #{ id, name, slot, image, state, desired_state, error, message, node, container, ports }.")
    .example(r"let tasks = web.tasks(#{ all: true });")
    .options(TASKS_OPTIONS);
const LOGS: Spec = Spec::method("logs", SERVICE_OPTS, "string")
    .doc("Every task's output.")
    .example(r"log(web.logs(#{ tail: 50 }));")
    .options(LOGS_OPTIONS);
const ROLLBACK: Spec = Spec::method("rollback", SERVICE_OPTS, "()")
    .doc("Swarm's server-side rollback to the previous spec, waited for.")
    .example("web.rollback();")
    .options(ROLLBACK_OPTIONS);

/// Registers the `Swarm` and `SwarmService` types and `h.swarm()`.
// One registration per function of the API: a list, not logic.
#[allow(clippy::too_many_lines)]
pub fn register(api: &mut Api) {
    api.register_type::<Swarm>(
        "Swarm",
        "Docker Swarm on a manager (host.swarm()), through the same Engine API client as host.docker().",
    );
    api.register_type::<SwarmService>(
        "SwarmService",
        "A Swarm service (swarm.service(name)): deployed, scaled and rolled back by Swarm, with Galley's deadline and reports.",
    );
    api.register(
        Spec::method("to_string", SWARM, "string")
            .doc("The swarm as text: `Swarm(ENDPOINT)`.")
            .example("log(sw.to_string());"),
        |s: &mut Swarm| format!("Swarm({})", s.docker.endpoint),
    );
    api.register(
        Spec::method("to_string", SERVICE, "string")
            .doc("The service as text: `SwarmService(NAME on HOST)`.")
            .example("log(web.to_string());"),
        |s: &mut SwarmService| format!("SwarmService({} on {})", s.name, s.docker.host.name()),
    );
    api.register(
        Spec::method("swarm", &[("host", "Host")], "Swarm")
            .doc("Docker Swarm on the host (a manager, for most methods).")
            .example(r#"let sw = ssh::connect("deploy@manager-1").swarm();"#),
        |h: &mut Host| -> RhaiResult<Swarm> { Ok(Swarm::connect(h)?) },
    );
    api.register(INIT.without_options(), |s: &mut Swarm| -> RhaiResult<Map> {
        Ok(s.init(Map::new())?)
    });
    api.register(INIT, |s: &mut Swarm, opts: Map| -> RhaiResult<Map> {
        Ok(s.init(opts)?)
    });
    api.register(
        Spec::method("status", SWARM, "map")
            .doc("The node's swarm state: #{ state, role, node_id, node_addr, managers, workers, nodes }.")
            .example(r#"if sw.status().role != "manager" { throw "not a manager"; }"#),
        |s: &mut Swarm| -> RhaiResult<Map> { Ok(s.status()?) },
    );
    api.register(LEAVE.without_options(), |s: &mut Swarm| -> RhaiResult<()> {
        Ok(s.leave(Map::new())?)
    });
    api.register(LEAVE, |s: &mut Swarm, opts: Map| -> RhaiResult<()> {
        Ok(s.leave(opts)?)
    });
    api.register(
        Spec::method(
            "service",
            &[("swarm", "Swarm"), ("name", "string")],
            "SwarmService",
        )
        .doc("The service NAME (it need not exist yet).")
        .example(r#"let web = sw.service("web");"#),
        |s: &mut Swarm, name: &str| -> RhaiResult<SwarmService> { Ok(s.service(name)?) },
    );
    api.register(
        Spec::method("deploy", SERVICE_OPTS, "map")
            .doc("Creates or updates the service with the full spec and waits until the rollout converges (or rolls it back past `timeout`); returns #{ service, image, replicas, created, seconds, tasks }.")
            .example(r#"web.deploy(#{ image: "registry.example.com/web:" + sha, replicas: 3, ports: ["8080:80"] });"#)
            .options(spec::DEPLOY_OPTIONS),
        |s: &mut SwarmService, opts: Map| -> RhaiResult<Map> { Ok(s.deploy(opts)?) },
    );
    api.register(
        Spec::method("status", SERVICE, "map")
            .doc("The service's state: #{ exists, name, id, image, replicas, running, update: #{ state, message } }.")
            .example("let s = web.status();"),
        |s: &mut SwarmService| -> RhaiResult<Map> { Ok(s.status()?) },
    );
    api.register(
        TASKS.without_options(),
        |s: &mut SwarmService| -> RhaiResult<Array> { Ok(s.tasks(false)?) },
    );
    api.register(
        TASKS,
        |s: &mut SwarmService, opts: Map| -> RhaiResult<Array> {
            let all = Opts::new("tasks", opts, TASKS_OPTIONS)?.bool("all")?;
            Ok(s.tasks(all.unwrap_or(false))?)
        },
    );
    api.register(
        LOGS.without_options(),
        |s: &mut SwarmService| -> RhaiResult<String> { Ok(s.logs(None)?) },
    );
    api.register(
        LOGS,
        |s: &mut SwarmService, opts: Map| -> RhaiResult<String> {
            let tail = Opts::new("logs", opts, LOGS_OPTIONS)?.int("tail")?;
            Ok(s.logs(tail.map(|n| n.max(0) as u64))?)
        },
    );
    api.register(
        Spec::method(
            "scale",
            &[("service", "SwarmService"), ("replicas", "int")],
            "()",
        )
        .doc("Sets the number of replicas and waits until that many tasks run.")
        .example("web.scale(5);"),
        |s: &mut SwarmService, n: i64| -> RhaiResult<()> { Ok(s.scale(n)?) },
    );
    api.register(
        ROLLBACK.without_options(),
        |s: &mut SwarmService| -> RhaiResult<()> { Ok(s.rollback(CONVERGE_TIMEOUT)?) },
    );
    api.register(
        ROLLBACK,
        |s: &mut SwarmService, opts: Map| -> RhaiResult<()> {
            let timeout = Opts::new("rollback", opts, ROLLBACK_OPTIONS)?.duration("timeout")?;
            Ok(s.rollback(timeout.unwrap_or(CONVERGE_TIMEOUT))?)
        },
    );
    api.register(
        Spec::method("rm", SERVICE, "()")
            .doc("Removes the service; a missing one is not an error.")
            .example("web.rm();"),
        |s: &mut SwarmService| -> RhaiResult<()> { Ok(s.rm()?) },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_stay_out_of_other_paths() {
        assert!(valid_name("web"));
        assert!(valid_name("galley-test-1-0-web.v2"));
        assert!(!valid_name("../containers/x"));
        assert!(!valid_name("-web"));
        assert!(!valid_name(""));
    }
}
