//! The connection to a host's Docker Engine (its API through bollard, never the CLI) and the
//! translation of the Engine's errors into reports that say what to do.

use std::future::Future;
use std::sync::Arc;

use bollard::errors::Error as ApiError;

use super::{build, containers, images, swarm};
use crate::error::DockerProblem;
use crate::error::Failure;
use crate::exec::docker::Request;
use crate::exec::{Action, Output};
use crate::primitives::host::Host;

/// Where the Engine listens on a host that is reached over ssh.
const REMOTE_SOCKET: &str = "/var/run/docker.sock";

/// What the Engine gave back for a request.
pub enum Reply {
    /// Done, or in a dry run only announced.
    Done,
    /// The id of what it made (a container, an image).
    Id(String),
    /// A command's output (`exec`).
    Ran(Output),
    /// What the request was about does not exist (a 404): a stop or a removal has nothing to do.
    Missing,
}

impl Reply {
    /// The id of what the request made ("" in a dry run).
    pub fn id(self) -> String {
        match self {
            Reply::Id(id) => id,
            _ => String::new(),
        }
    }

    /// The command's output (an empty success in a dry run).
    pub fn output(self) -> Output {
        match self {
            Reply::Ran(out) => out,
            _ => Output::ok(),
        }
    }
}

/// Docker on one host.
#[derive(Clone)]
pub struct DockerHost {
    pub host: Host,
    pub api: Arc<bollard::Docker>,
    /// The socket, as the reports name it.
    pub endpoint: String,
}

impl DockerHost {
    /// Connects to the Engine of `host`: the local socket (or `DOCKER_HOST`), or the host's
    /// socket forwarded over its ssh connection.
    pub fn connect(host: &Host) -> Result<Self, Failure> {
        let (endpoint, api) = if host.is_local() {
            let endpoint = std::env::var("DOCKER_HOST")
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| format!("unix://{REMOTE_SOCKET}"));
            (endpoint, bollard::Docker::connect_with_defaults())
        } else {
            let local = host.forward_socket(REMOTE_SOCKET)?;
            (
                format!("{REMOTE_SOCKET} on {} (through ssh)", host.name()),
                bollard::Docker::connect_with_unix(&local, 120, bollard::API_DEFAULT_VERSION),
            )
        };
        let unreachable = |e: &ApiError| Failure::Docker {
            host: host.name().to_string(),
            problem: DockerProblem::Unreachable,
            message: format!("the Docker Engine at {endpoint} does not answer: {e}"),
            detail: Vec::new(),
            help: "check that the Docker daemon runs on that host (`systemctl status docker`) and \
                   that this user may use its socket (the `docker` group); set DOCKER_HOST for \
                   another daemon"
                .into(),
        };
        let api = api.map_err(|e| unreachable(&e))?;
        let api = host
            .ctx()
            .wait("connecting to Docker", api.negotiate_version())?
            .map_err(|e| unreachable(&e))?;
        Ok(DockerHost {
            host: host.clone(),
            api: Arc::new(api),
            endpoint,
        })
    }

    /// Announces `request` and, unless this is a dry run, sends that same request.
    pub fn perform(&self, request: Request) -> Result<Reply, Failure> {
        if !self
            .host
            .announce(&Action::Docker(Box::new(request.clone())))
        {
            return Ok(Reply::Done);
        }
        match request {
            Request::Build {
                context,
                options,
                more_tags,
            } => build::send(self, &context, options, &more_tags).map(Reply::Id),
            Request::Run { options, body } => {
                containers::create_and_start(self, options, body).map(Reply::Id)
            }
            Request::Stop { container, options } => {
                containers::send_stop(self, &container, options)
            }
            Request::Remove { container, options } => {
                containers::send_remove(self, &container, options)
            }
            Request::Exec { container, config } => {
                containers::send_exec(self, &container, config).map(Reply::Ran)
            }
            Request::CreateNetwork(request) => containers::send_network(self, request),
            Request::Tag { image, options } => images::send_tag(self, &image, options),
            Request::Pull { options, auth } => images::send_pull(self, options, auth),
            Request::Push {
                image,
                options,
                auth,
            } => images::send_push(self, &image, options, auth),
            Request::RemoveImage { image } => images::send_remove(self, &image),
            Request::SwarmInit(request) => swarm::send_init(self, request),
            Request::SwarmLeave(options) => swarm::send_leave(self, options),
            Request::CreateSecret { spec, .. } => swarm::send_secret(self, spec),
            Request::CreateService(spec) => swarm::send_create(self, spec),
            Request::UpdateService {
                service,
                spec,
                options,
                ..
            } => swarm::send_update(self, &service, spec, options),
            Request::RemoveService { service } => swarm::send_remove(self, &service),
        }
    }

    /// The reply to a stop or a removal: a 404 means there was nothing to do.
    pub fn reply(&self, what: &str, result: Result<Reply, ApiError>) -> Result<Reply, Failure> {
        match result {
            Err(e) if is_missing(&e) => Ok(Reply::Missing),
            Err(e) => Err(self.failure(what, &e)),
            Ok(reply) => Ok(reply),
        }
    }

    /// Runs an API call on the runtime (cancellable); its error becomes a report about `what`.
    pub fn call<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, Failure> {
        self.host
            .ctx()
            .wait(what, fut)?
            .map_err(|e| self.failure(what, &e))
    }

    /// The report for an Engine error while doing `what`.
    pub fn failure(&self, what: &str, error: &ApiError) -> Failure {
        let (status, message) = match error {
            ApiError::DockerResponseServerError {
                status_code,
                message,
            } => (Some(*status_code), message.clone()),
            ApiError::DockerStreamError { error } => (None, error.clone()),
            other => {
                return Failure::Docker {
                    host: self.host.name().to_string(),
                    problem: DockerProblem::Unreachable,
                    message: format!(
                        "lost the Docker Engine at {} while {what}: {other}",
                        self.endpoint
                    ),
                    detail: Vec::new(),
                    help: "check that the Docker daemon is still running on that host".into(),
                }
            }
        };
        let lower = message.to_lowercase();
        let (problem, help) = if lower.contains("no such image")
            || lower.contains("manifest unknown")
            || lower.contains("not found: manifest")
            || (lower.contains("repository") && lower.contains("not found"))
        {
            (
                DockerProblem::ImageNotFound,
                "build or pull the image first (`d.build(...)`, `d.pull(...)`); `d.images()` \
                 lists what the host has",
            )
        } else if lower.contains("already in use") {
            (
                DockerProblem::NameInUse,
                "stop and remove the old container first (`d.stop(name); d.rm(name)`), or pick \
                 another name",
            )
        } else if lower.contains("port is already allocated")
            || lower.contains("address already in use")
        {
            (
                DockerProblem::PortAllocated,
                "stop the container that holds the port, or publish another host port",
            )
        } else if status == Some(401)
            || lower.contains("unauthorized")
            || lower.contains("authentication required")
            || lower.contains("no basic auth credentials")
        {
            (
                DockerProblem::Auth,
                "pass the registry's credentials: #{ auth: #{ username: ..., password: \
                 secret(\"REGISTRY_PASSWORD\") } }",
            )
        } else {
            (
                DockerProblem::Other,
                "Docker's own words are above; the same call through the docker CLI would fail \
                 the same way",
            )
        };
        Failure::Docker {
            host: self.host.name().to_string(),
            problem,
            message: format!("{what}: {}", message.trim()),
            detail: Vec::new(),
            help: help.into(),
        }
    }
}

/// Whether an Engine error is a 404 (no such container, image or network).
pub fn is_missing(error: &ApiError) -> bool {
    matches!(
        error,
        ApiError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
