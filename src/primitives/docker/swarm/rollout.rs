//! Waiting for a rollout: Swarm's updater has no deadline of its own, so Galley polls the
//! service's update status and its tasks, prints each task's progress, and turns a pause, a
//! rollback, a failed task or its own deadline into a report naming the failing task, its error,
//! its last log lines and what Swarm did.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bollard::models::{Service, ServiceUpdateStatusStateEnum as State, Task};
use rhai::{Dynamic, Map};

use super::SwarmService;
use crate::duration::format_duration;
use crate::error::Failure;
use crate::error::{last_lines, SwarmProblem};
use crate::exec::Stream;

/// How often the service is polled.
const POLL: Duration = Duration::from_millis(250);

/// How many log lines of the failing task a report shows.
const LOG_LINES: usize = 10;

/// A rollback Galley asks for after its deadline gets at least this long.
const ROLLBACK_TIMEOUT: Duration = Duration::from_mins(1);

/// What the change sent was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A new spec (create, update, scale): a rollback means it failed.
    Update,
    /// A rollback to the previous spec: its completion is the success.
    Rollback,
}

/// How to wait.
pub struct Plan {
    pub expect: Expect,
    /// Galley's deadline for the service to converge.
    pub timeout: Duration,
    /// Ask Swarm to roll back when the deadline passes (`failure_action` "rollback").
    pub rollback_on_deadline: bool,
}

/// The service as it was before the change: its tasks, and the start of its last update (a
/// no-op update leaves that status as it was, so only a newer one is this change's).
pub struct Before {
    tasks: HashMap<String, String>,
    started_at: Option<String>,
}

impl Before {
    /// Reads the tasks of `current` (none for a service about to be created).
    pub fn of(svc: &SwarmService, current: Option<&Service>) -> Result<Self, Failure> {
        let Some(current) = current else {
            return Ok(Before {
                tasks: HashMap::new(),
                started_at: None,
            });
        };
        let tasks = svc.task_list(&[])?;
        Ok(Before {
            tasks: tasks.iter().map(|t| (id_of(t), progress_key(t))).collect(),
            started_at: current
                .update_status
                .as_ref()
                .and_then(|s| s.started_at.clone()),
        })
    }
}

fn id_of(t: &Task) -> String {
    t.id.clone().unwrap_or_default()
}

/// The task's state: "running", "starting", "failed", ...
pub fn state_of(t: &Task) -> String {
    t.status
        .as_ref()
        .and_then(|s| s.state)
        .map_or_else(|| "unknown".into(), |s| s.to_string())
}

fn error_of(t: &Task) -> String {
    t.status
        .as_ref()
        .and_then(|s| s.err.clone())
        .unwrap_or_default()
}

fn image_of(t: &Task) -> String {
    t.spec
        .as_ref()
        .and_then(|s| s.container_spec.as_ref()?.image.clone())
        .unwrap_or_default()
}

/// `web.2 (k3j4h5l6m7n8)`: the name `docker service ps` shows, and the task id.
fn label(service: &str, t: &Task) -> String {
    let id = id_of(t);
    format!(
        "{service}.{} ({})",
        t.slot.unwrap_or_default(),
        &id[..id.len().min(12)]
    )
}

/// The state as progress shows it: a running task that Swarm is stopping is "stopping".
fn shown_state(t: &Task) -> String {
    let state = state_of(t);
    let leaving = t
        .desired_state
        .is_some_and(|d| !matches!(d.to_string().as_str(), "running" | "ready"));
    if state == "running" && leaving {
        "stopping".into()
    } else {
        state
    }
}

fn progress_key(t: &Task) -> String {
    format!("{} {}", shown_state(t), error_of(t))
}

/// A task as the recipe sees it (`tasks()`).
pub fn task_map(service: &str, t: &Task) -> Map {
    let status = t.status.clone().unwrap_or_default();
    let ports: rhai::Array = status
        .port_status
        .and_then(|p| p.ports)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.published_port)
        // The same port once per address family.
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(Dynamic::from)
        .collect();
    let mut map = Map::new();
    map.insert("id".into(), id_of(t).into());
    map.insert(
        "name".into(),
        format!("{service}.{}", t.slot.unwrap_or_default()).into(),
    );
    map.insert("slot".into(), Dynamic::from(t.slot.unwrap_or_default()));
    map.insert("image".into(), image_of(t).into());
    map.insert("state".into(), state_of(t).into());
    map.insert(
        "desired_state".into(),
        t.desired_state
            .map(|s| s.to_string())
            .unwrap_or_default()
            .into(),
    );
    map.insert("error".into(), error_of(t).into());
    map.insert("message".into(), status.message.unwrap_or_default().into());
    map.insert("node".into(), t.node_id.clone().unwrap_or_default().into());
    map.insert(
        "container".into(),
        status
            .container_status
            .and_then(|c| c.container_id)
            .unwrap_or_default()
            .into(),
    );
    map.insert("ports".into(), Dynamic::from(ports));
    map
}

fn replicas_of(service: &Service) -> i64 {
    service
        .spec
        .as_ref()
        .and_then(|s| s.mode.as_ref()?.replicated.as_ref()?.replicas)
        .unwrap_or(0)
}

fn failure_action(service: &Service) -> String {
    service
        .spec
        .as_ref()
        .and_then(|s| s.update_config.as_ref()?.failure_action)
        .map_or_else(|| "pause".into(), |a| a.to_string())
}

/// One look at the service.
struct Poll {
    service: Service,
    state: State,
    message: String,
    /// Swarm's message when it paused or started rolling back: it names the failing task.
    reason: String,
    tasks: Vec<Task>,
    /// Tasks on the current spec that Swarm wants running.
    fresh: Vec<Task>,
    running: i64,
    replicas: i64,
}

impl Poll {
    fn take(svc: &SwarmService, before: &Before) -> Result<Self, Failure> {
        let service = svc.inspect()?.ok_or_else(|| Failure::Other {
            message: format!("service {} disappeared during its rollout", svc.name),
            help: "someone removed it (`docker service rm`); deploy again".into(),
        })?;
        let status = service
            .update_status
            .clone()
            .filter(|s| s.started_at != before.started_at);
        let state = status
            .as_ref()
            .and_then(|s| s.state)
            .unwrap_or(State::EMPTY);
        let message = status.and_then(|s| s.message).unwrap_or_default();
        let tasks = svc.task_list(&[])?;
        // `_up-to-date` is the Engine's own test of a task against the current spec (what
        // `docker service update` waits on).
        let fresh = svc.task_list(&[("_up-to-date", "true"), ("desired-state", "running")])?;
        let running = fresh.iter().filter(|t| state_of(t) == "running").count() as i64;
        Ok(Poll {
            replicas: replicas_of(&service),
            service,
            state,
            reason: message.clone(),
            message,
            tasks,
            fresh,
            running,
        })
    }

    fn converged(&self) -> bool {
        self.running == self.replicas && self.fresh.len() as i64 == self.replicas
    }

    /// The task a failure is about: the one Swarm's message names, else the newest task of this
    /// change that failed, else one that is not running yet.
    fn culprit(&self, before: &Before) -> Option<&Task> {
        let named = self
            .tasks
            .iter()
            .find(|t| !self.reason.is_empty() && self.reason.contains(&id_of(t)));
        let failed = || {
            self.tasks.iter().find(|t| {
                !before.tasks.contains_key(&id_of(t))
                    && matches!(state_of(t).as_str(), "failed" | "rejected")
            })
        };
        let waiting = || self.fresh.iter().find(|t| state_of(t) != "running");
        named.or_else(failed).or_else(waiting)
    }
}

/// Prints each task whose state changed, and Swarm's own update state.
struct Progress {
    seen: HashMap<String, String>,
    update: String,
}

impl Progress {
    fn show(&mut self, svc: &SwarmService, poll: &Poll) {
        let printer = &svc.host().ctx().printer;
        let host = svc.host().name();
        if poll.state != State::EMPTY {
            let update = format!("swarm: update {}: {}", poll.state, poll.message);
            if update != self.update {
                printer.line(host, Stream::Stdout, &update);
                self.update = update;
            }
        }
        // Oldest first, so that the lines read in the order things happened.
        for t in poll.tasks.iter().rev() {
            let key = progress_key(t);
            if self.seen.get(&id_of(t)) == Some(&key) {
                continue;
            }
            let mut line = format!(
                "{} {}: {}",
                label(&svc.name, t),
                image_of(t),
                shown_state(t)
            );
            let err = error_of(t);
            if !err.is_empty() {
                line.push_str(&format!(" ({err})"));
            }
            printer.line(host, Stream::Stdout, &line);
            self.seen.insert(id_of(t), key);
        }
    }
}

/// Waits until the service converged on its spec, or fails with a report.
pub fn watch(svc: &SwarmService, plan: &Plan, before: &Before) -> Result<(), Failure> {
    let ctx = svc.host().ctx();
    let deadline = Instant::now() + plan.timeout;
    let verb = match plan.expect {
        Expect::Update => "rolling out",
        Expect::Rollback => "rolling back",
    };
    let spinner = ctx.printer.spinner(&format!("{verb} {}", svc.name));
    let mut progress = Progress {
        seen: before.tasks.clone(),
        update: String::new(),
    };
    let mut reason = String::new();
    loop {
        let mut poll = Poll::take(svc, before)?;
        if matches!(poll.state, State::PAUSED | State::ROLLBACK_STARTED) {
            reason.clone_from(&poll.message);
        }
        if !reason.is_empty() {
            poll.reason.clone_from(&reason);
        }
        progress.show(svc, &poll);
        spinner.update(&format!(
            "{verb} {}: {} of {} tasks on the new spec running",
            svc.name, poll.running, poll.replicas
        ));
        let rolling_back = matches!(
            poll.state,
            State::ROLLBACK_STARTED | State::ROLLBACK_COMPLETED | State::ROLLBACK_PAUSED
        );
        match (plan.expect, poll.state) {
            (_, State::PAUSED | State::ROLLBACK_PAUSED) => {
                return Err(report(svc, &poll, before, SwarmProblem::Paused))
            }
            (Expect::Update, State::ROLLBACK_COMPLETED) => {
                return Err(report(svc, &poll, before, SwarmProblem::RolledBack))
            }
            (Expect::Rollback, State::ROLLBACK_COMPLETED)
            | (Expect::Update, State::COMPLETED | State::EMPTY)
                if poll.converged() =>
            {
                return Ok(())
            }
            _ => {}
        }
        // Without an update of its own (a create, a scale) or with `continue`, Swarm only
        // restarts a failed task: nothing else would stop the wait.
        let swarm_reacts =
            poll.state != State::EMPTY && failure_action(&poll.service) != "continue";
        if plan.expect == Expect::Update && !rolling_back && !swarm_reacts {
            let failed = poll.tasks.iter().any(|t| {
                !before.tasks.contains_key(&id_of(t))
                    && matches!(state_of(t).as_str(), "failed" | "rejected")
            });
            if failed {
                return Err(report(svc, &poll, before, SwarmProblem::TaskFailed));
            }
        }
        if Instant::now() >= deadline {
            drop(spinner);
            return Err(past_deadline(svc, plan, &poll, before, rolling_back));
        }
        ctx.sleep(POLL)?;
    }
}

/// The failing task, its error, its health check's last words and its last log lines.
fn task_detail(svc: &SwarmService, t: &Task) -> Vec<String> {
    let status = t.status.clone().unwrap_or_default();
    let mut line = format!(
        "task {} running {}: {}",
        label(&svc.name, t),
        image_of(t),
        state_of(t)
    );
    let message = status.message.unwrap_or_default();
    if !message.is_empty() && message != state_of(t) {
        line.push_str(&format!(" ({message})"));
    }
    let mut lines = vec![line];
    let err = error_of(t);
    if !err.is_empty() {
        lines.push(format!("  error: {err}"));
    }
    let container = status.container_status.and_then(|c| c.container_id);
    if let Some(said) = container.and_then(|id| health_said(svc, &id)) {
        lines.push(format!("  last health check said: {said}"));
    }
    let logs = last_lines(&svc.task_logs(&id_of(t), 50), LOG_LINES);
    if logs.is_empty() {
        lines.push("  its log is empty".into());
    } else {
        lines.push(format!("  its log (last {} lines):", logs.len()));
        lines.extend(logs.iter().map(|l| format!("  | {l}")));
    }
    lines
}

/// The output of the last health check of a task's container, when this node runs it.
fn health_said(svc: &SwarmService, container: &str) -> Option<String> {
    let info = svc
        .host()
        .ctx()
        .wait(
            "inspecting a task's container",
            svc.docker.api.inspect_container(
                container,
                None::<bollard::query_parameters::InspectContainerOptions>,
            ),
        )
        .ok()?
        .ok()?;
    let log = info.state?.health?.log?;
    let output = log.last()?.output.clone()?;
    let output = output.trim();
    (!output.is_empty()).then(|| output.chars().take(300).collect())
}

fn report(svc: &SwarmService, poll: &Poll, before: &Before, problem: SwarmProblem) -> Failure {
    let mut detail = match poll.culprit(before) {
        Some(t) => task_detail(svc, t),
        None => vec!["no failed task was found (Swarm may have removed it already)".into()],
    };
    let (message, did, help) = match problem {
        SwarmProblem::Paused => (
            format!("Swarm paused the {}", if poll.state == State::ROLLBACK_PAUSED { "rollback" } else { "update" }),
            format!("Swarm paused it: {}; the tasks it replaced run the new spec, the others the old one", poll.message),
            "fix the new version and deploy again (the update resumes), or put the previous spec back with \
             `sw.service(name).rollback()`; with `update: #{ failure_action: \"rollback\" }` Swarm rolls back by itself",
        ),
        SwarmProblem::RolledBack => (
            "a task of the new spec failed, and Swarm rolled the service back".to_string(),
            format!("Swarm rolled back to the previous spec ({}): {}", poll.reason, poll.message),
            "the previous version serves again; fix the new version (its failing task is above) and deploy again",
        ),
        _ => (
            "a task of the new spec failed".to_string(),
            "Swarm restarts the task (restart policy); the service stays on the new spec".to_string(),
            "the task's error and log are above; `docker service ps --no-trunc NAME` shows every attempt",
        ),
    };
    detail.push(did);
    Failure::Swarm {
        host: svc.host().name().to_string(),
        service: svc.name.clone(),
        problem,
        message,
        detail,
        rolled_back: problem == SwarmProblem::RolledBack,
        help: help.into(),
    }
}

fn past_deadline(
    svc: &SwarmService,
    plan: &Plan,
    poll: &Poll,
    before: &Before,
    rolling_back: bool,
) -> Failure {
    let mut detail = match poll.culprit(before) {
        Some(t) => task_detail(svc, t),
        None => Vec::new(),
    };
    let state = if poll.state == State::EMPTY {
        "no update under way".to_string()
    } else {
        format!("update {}: {}", poll.state, poll.message)
    };
    detail.push(format!(
        "Swarm was still at it ({state}); it has no deadline of its own"
    ));
    let mut rolled_back = false;
    if plan.rollback_on_deadline && !rolling_back {
        svc.host().ctx().printer.log(&format!(
            "[{}] {} did not converge in time: asking Swarm to roll back to the previous spec",
            svc.host().name(),
            svc.name
        ));
        match svc.rollback(plan.timeout.max(ROLLBACK_TIMEOUT)) {
            Ok(()) => {
                rolled_back = true;
                detail.push("Galley asked Swarm to roll back (failure_action \"rollback\"): the previous spec serves again".into());
            }
            Err(e) => detail.push(format!(
                "Galley asked Swarm to roll back, and that failed too: {e}"
            )),
        }
    } else {
        detail.push("Galley left the rollout as it is".into());
    }
    let waiting: HashSet<String> = poll
        .fresh
        .iter()
        .filter(|t| state_of(t) != "running")
        .map(|t| format!("{} is {}", label(&svc.name, t), state_of(t)))
        .collect();
    let mut waiting: Vec<String> = waiting.into_iter().collect();
    waiting.sort();
    Failure::Swarm {
        host: svc.host().name().to_string(),
        service: svc.name.clone(),
        problem: SwarmProblem::Deadline,
        message: format!(
            "the rollout did not converge within {}: {} of {} tasks on the new spec are running{}",
            format_duration(plan.timeout),
            poll.running,
            poll.replicas,
            if waiting.is_empty() { String::new() } else { format!(" ({})", waiting.join(", ")) }
        ),
        detail,
        rolled_back,
        help: "raise `timeout` if the rollout needs longer; a task that stays `starting` is waiting for its \
               health check to pass"
            .into(),
    }
}
