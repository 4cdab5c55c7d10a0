//! A service's deploy options, read from the recipe's map into the Engine's `ServiceSpec` (which
//! `exec::docker::Request` shows as the `docker service create/update` line that sends it).

use std::time::Duration;

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, HealthConfig, NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, ServiceSpecRollbackConfig,
    ServiceSpecRollbackConfigFailureActionEnum, ServiceSpecRollbackConfigOrderEnum,
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, TaskSpec, TaskSpecContainerSpec, TaskSpecPlacement,
};
use rhai::{Dynamic, Map};

use crate::api::{opt, OptionSpec, Type};
use crate::error::Failure;
use crate::primitives::options::{bad_value, Opts};

const POLICY_OPTIONS: &[OptionSpec] = &[
    opt("parallelism", Type::Int, "1", "tasks replaced at once"),
    opt("delay", Type::Duration, "", "the pause between batches"),
    opt(
        "order",
        Type::String,
        "",
        "\"start-first\" or \"stop-first\"",
    ),
    opt(
        "failure_action",
        Type::String,
        "",
        "\"pause\", \"continue\" (or \"rollback\" for update)",
    ),
    opt(
        "monitor",
        Type::Duration,
        "",
        "how long a new task is watched for failure",
    ),
    opt(
        "max_failure_ratio",
        Type::Other("number"),
        "",
        "the share of failed tasks tolerated, 0 to 1",
    ),
];

const HEALTH_OPTIONS: &[OptionSpec] = &[
    opt(
        "test",
        Type::Other("string | array"),
        "",
        "the check: a shell string or an argv array",
    ),
    opt("interval", Type::Duration, "", "time between checks"),
    opt("timeout", Type::Duration, "", "how long one check may take"),
    opt(
        "retries",
        Type::Int,
        "",
        "failures before the task is unhealthy",
    ),
    opt(
        "start_period",
        Type::Duration,
        "",
        "start-up time during which failures do not count",
    ),
];

/// The options `deploy` takes.
pub const DEPLOY_OPTIONS: &[OptionSpec] = &[
    opt("image", Type::String, "", "the image (required), best pinned by digest: \"registry/app@sha256:...\""),
    opt("replicas", Type::Int, "the running service's, or 1", "how many tasks"),
    opt("command", Type::Command, "", "the command, instead of the image's"),
    opt("env", Type::Env, "", "environment variables: #{ MODE: \"prod\" }"),
    opt("env_file", Type::String, "", "a file of NAME=value lines on the manager (its values are masked)"),
    opt("secrets", Type::Other("map | array"), "", "#{ NAME: secret(\"NAME\") } stored as Docker secrets, or the names of existing ones; mounted at /run/secrets/NAME"),
    opt("ports", Type::Strings, "", "published ports: \"8080:80\", \"80\" or \"mode=host,target=PORT[,published=PORT]\""),
    opt("labels", Type::Env, "", "service labels"),
    opt("networks", Type::Strings, "", "the networks to join"),
    opt("constraints", Type::Strings, "", "placement constraints: [\"node.role == worker\"]"),
    opt("healthcheck", Type::Other("map | \"none\""), "the image's", "the tasks' health check, or \"none\" to switch the image's off").with_keys(HEALTH_OPTIONS),
    opt("update", Type::Map, "Docker's", "how an update replaces tasks").with_keys(POLICY_OPTIONS),
    opt("rollback", Type::Map, "Docker's", "how a rollback replaces tasks").with_keys(POLICY_OPTIONS),
    opt("stop_grace_period", Type::Duration, "", "how long a task has to stop before it is killed"),
    opt("force", Type::Bool, "false", "restart every task even if nothing changed"),
    opt("timeout", Type::Duration, "\"5m\"", "the deadline of the rollout; past it the service is rolled back"),
];

/// How Swarm replaces tasks during an update or a rollback.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policy {
    pub parallelism: Option<i64>,
    pub delay: Option<Duration>,
    pub order: Option<String>,
    pub failure_action: Option<String>,
    pub monitor: Option<Duration>,
    pub max_failure_ratio: Option<f64>,
}

/// A secret the service mounts at /run/secrets/NAME: a value Galley stores as a Docker secret,
/// or the name of a Docker secret that exists already.
#[derive(Clone, Debug, PartialEq)]
pub enum SecretRef {
    Value { name: String, value: String },
    Existing { name: String },
}

/// What the recipe asked for.
#[derive(Clone, Debug, Default)]
pub struct Deploy {
    pub image: String,
    pub replicas: Option<i64>,
    pub command: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub env_file: Option<String>,
    pub secrets: Vec<SecretRef>,
    pub ports: Vec<EndpointPortConfig>,
    pub labels: Vec<(String, String)>,
    pub networks: Vec<String>,
    pub constraints: Vec<String>,
    pub healthcheck: Option<HealthConfig>,
    pub update: Policy,
    pub rollback: Policy,
    pub stop_grace_period: Option<Duration>,
    pub force: bool,
    pub timeout: Duration,
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn sub_options(
    function: &str,
    opts: &Opts,
    key: &str,
    valid: &[OptionSpec],
) -> Result<Opts, Failure> {
    let map = match opts.get(key) {
        None => Map::new(),
        Some(v) => v
            .clone()
            .try_cast::<Map>()
            .ok_or_else(|| bad_value(function, &format!("option `{key}`"), "a map #{ ... }", v))?,
    };
    Opts::new(&format!("{function} ({key})"), map, valid)
}

fn choice(
    function: &str,
    what: &str,
    value: Option<String>,
    valid: &[&str],
) -> Result<Option<String>, Failure> {
    match value {
        Some(v) if !valid.contains(&v.as_str()) => Err(Failure::BadValue {
            function: function.into(),
            what: what.into(),
            expected: valid
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(" or "),
            got: format!("{v:?}"),
        }),
        other => Ok(other),
    }
}

fn policy(function: &str, opts: &Opts, key: &str) -> Result<Policy, Failure> {
    let o = sub_options(function, opts, key, POLICY_OPTIONS)?;
    let actions: &[&str] = if key == "update" {
        &["pause", "continue", "rollback"]
    } else {
        &["pause", "continue"]
    };
    let ratio = match o.get("max_failure_ratio") {
        None => None,
        Some(v) => Some(
            v.as_float()
                .ok()
                .or_else(|| v.as_int().ok().map(|n| n as f64))
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| {
                    bad_value(function, "`max_failure_ratio`", "a number from 0 to 1", v)
                })?,
        ),
    };
    Ok(Policy {
        parallelism: o.int("parallelism")?,
        delay: o.duration("delay")?,
        order: choice(
            function,
            &format!("`{key}.order`"),
            o.string("order")?,
            &["start-first", "stop-first"],
        )?,
        failure_action: choice(
            function,
            &format!("`{key}.failure_action`"),
            o.string("failure_action")?,
            actions,
        )?,
        monitor: o.duration("monitor")?,
        max_failure_ratio: ratio,
    })
}

fn healthcheck(function: &str, opts: &Opts) -> Result<Option<HealthConfig>, Failure> {
    let Some(value) = opts.get("healthcheck") else {
        return Ok(None);
    };
    if value.clone().into_string().ok().as_deref() == Some("none") {
        return Ok(Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        }));
    }
    let o = sub_options(function, opts, "healthcheck", HEALTH_OPTIONS)?;
    let test = match o.get("test") {
        None => None,
        Some(v) if v.is_string() => Some(vec![
            "CMD-SHELL".to_string(),
            v.clone().into_string().expect("string"),
        ]),
        Some(v) => {
            let argv = crate::primitives::options::string_list(v)
                .filter(|a| !a.is_empty())
                .ok_or_else(|| {
                    bad_value(
                        function,
                        "`healthcheck.test`",
                        "a shell string or an argv array such as [\"wget\", \"-q\", \"URL\"]",
                        v,
                    )
                })?;
            if matches!(argv[0].as_str(), "CMD" | "CMD-SHELL" | "NONE") {
                Some(argv)
            } else {
                Some(std::iter::once("CMD".to_string()).chain(argv).collect())
            }
        }
    };
    Ok(Some(HealthConfig {
        test,
        interval: o.duration("interval")?.map(nanos),
        timeout: o.duration("timeout")?.map(nanos),
        retries: o.int("retries")?,
        start_period: o.duration("start_period")?.map(nanos),
        start_interval: None,
    }))
}

/// Parses a published port: `"8080:80"`, `"80"` (a port Swarm picks) or the long form
/// `"mode=host,target=80[,published=8080][,protocol=udp]"`, each with `/udp` allowed on the short form.
pub fn parse_port(text: &str) -> Option<EndpointPortConfig> {
    let protocol = |p: &str| match p {
        "tcp" => Some(EndpointPortConfigProtocolEnum::TCP),
        "udp" => Some(EndpointPortConfigProtocolEnum::UDP),
        "sctp" => Some(EndpointPortConfigProtocolEnum::SCTP),
        _ => None,
    };
    let mut port = EndpointPortConfig {
        protocol: Some(EndpointPortConfigProtocolEnum::TCP),
        publish_mode: Some(EndpointPortConfigPublishModeEnum::INGRESS),
        ..Default::default()
    };
    if text.contains('=') {
        for pair in text.split(',') {
            let (key, value) = pair.split_once('=')?;
            match key.trim() {
                "mode" => {
                    port.publish_mode = Some(match value {
                        "host" => EndpointPortConfigPublishModeEnum::HOST,
                        "ingress" => EndpointPortConfigPublishModeEnum::INGRESS,
                        _ => return None,
                    });
                }
                "target" => port.target_port = Some(value.parse::<u16>().ok()?.into()),
                "published" => port.published_port = Some(value.parse::<u16>().ok()?.into()),
                "protocol" => port.protocol = Some(protocol(value)?),
                _ => return None,
            }
        }
        port.target_port?;
        return Some(port);
    }
    let (spec, proto) = text.split_once('/').unwrap_or((text, "tcp"));
    port.protocol = Some(protocol(proto)?);
    match spec.split_once(':') {
        Some((published, target)) => {
            port.published_port = Some(published.parse::<u16>().ok()?.into());
            port.target_port = Some(target.parse::<u16>().ok()?.into());
        }
        None => port.target_port = Some(spec.parse::<u16>().ok()?.into()),
    }
    Some(port)
}

fn secrets(function: &str, opts: &Opts) -> Result<Vec<SecretRef>, Failure> {
    let Some(value) = opts.get("secrets") else {
        return Ok(Vec::new());
    };
    if let Some(names) = crate::primitives::options::string_list(value) {
        return Ok(names
            .into_iter()
            .map(|name| SecretRef::Existing { name })
            .collect());
    }
    if value.read_lock::<Map>().is_some() {
        return Ok(opts
            .string_map("secrets")?
            .into_iter()
            .map(|(name, value)| SecretRef::Value { name, value })
            .collect());
    }
    Err(bad_value(
        function,
        "option `secrets`",
        "a map #{ NAME: secret(\"NAME\") } (stored as Docker secrets) or an array of the names of existing Docker secrets",
        value,
    ))
}

impl Deploy {
    /// Reads `deploy`'s options; `env` from an env file is added by the caller (it reads the host).
    pub fn from_map(opts: Map) -> Result<Self, Failure> {
        let function = "deploy";
        let opts = Opts::new(function, opts, DEPLOY_OPTIONS)?;
        let image = opts.string("image")?.ok_or_else(|| Failure::Other {
            message: "deploy needs an image".into(),
            help: "pass #{ image: \"registry/app@sha256:...\", replicas: 3, ... }".into(),
        })?;
        let mut ports = Vec::new();
        for text in opts.strings("ports")?.unwrap_or_default() {
            ports.push(parse_port(&text).ok_or_else(|| Failure::BadValue {
                function: function.into(),
                what: "a port".into(),
                expected: "\"PUBLISHED:TARGET\", \"TARGET\" or \"mode=host,target=PORT[,published=PORT]\""
                    .into(),
                got: format!("{text:?}"),
            })?);
        }
        let replicas = opts.int("replicas")?;
        if let Some(n) = replicas.filter(|n| *n < 0) {
            return Err(bad_value(
                function,
                "option `replicas`",
                "0 or more",
                &Dynamic::from(n),
            ));
        }
        Ok(Deploy {
            image,
            replicas,
            command: match opts.get("command") {
                None => None,
                Some(_) => opts.command("command")?.map(|c| c.program.argv()),
            },
            env: opts.string_map("env")?,
            env_file: opts.string("env_file")?,
            secrets: secrets(function, &opts)?,
            ports,
            labels: opts.string_map("labels")?,
            networks: opts.strings("networks")?.unwrap_or_default(),
            constraints: opts.strings("constraints")?.unwrap_or_default(),
            healthcheck: healthcheck(function, &opts)?,
            update: policy(function, &opts, "update")?,
            rollback: policy(function, &opts, "rollback")?,
            stop_grace_period: opts.duration("stop_grace_period")?,
            force: opts.bool("force")?.unwrap_or(false),
            timeout: opts.duration("timeout")?.unwrap_or(Duration::from_mins(5)),
        })
    }

    /// The full spec of service `name`. `secrets` are the mounted secrets as (id, name, file
    /// name); `replicas` and `force_update` come from the running service when the recipe
    /// leaves them out, so that a deploy changes nothing it was not asked to.
    pub fn spec(
        &self,
        name: &str,
        replicas: i64,
        force_update: u64,
        secrets: Vec<(String, String, String)>,
    ) -> ServiceSpec {
        let env: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let secrets = secrets
            .into_iter()
            .map(
                |(id, name, file)| bollard::models::TaskSpecContainerSpecSecrets {
                    secret_id: Some(id),
                    secret_name: Some(name),
                    file: Some(bollard::models::TaskSpecContainerSpecFile {
                        name: Some(file),
                        uid: Some("0".into()),
                        gid: Some("0".into()),
                        mode: Some(0o444),
                    }),
                },
            )
            .collect::<Vec<_>>();
        let container = TaskSpecContainerSpec {
            image: Some(self.image.clone()),
            args: self.command.clone(),
            env: (!env.is_empty()).then_some(env),
            health_check: self.healthcheck.clone(),
            secrets: (!secrets.is_empty()).then_some(secrets),
            stop_grace_period: self.stop_grace_period.map(nanos),
            ..Default::default()
        };
        let networks: Vec<NetworkAttachmentConfig> = self
            .networks
            .iter()
            .map(|n| NetworkAttachmentConfig {
                target: Some(n.clone()),
                ..Default::default()
            })
            .collect();
        let u = &self.update;
        let r = &self.rollback;
        ServiceSpec {
            name: Some(name.to_string()),
            labels: (!self.labels.is_empty()).then(|| self.labels.iter().cloned().collect()),
            task_template: Some(TaskSpec {
                container_spec: Some(container),
                placement: (!self.constraints.is_empty()).then(|| TaskSpecPlacement {
                    constraints: Some(self.constraints.clone()),
                    ..Default::default()
                }),
                force_update: Some(force_update + u64::from(self.force)),
                networks: (!networks.is_empty()).then_some(networks),
                ..Default::default()
            }),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated {
                    replicas: Some(replicas),
                }),
                ..Default::default()
            }),
            update_config: Some(ServiceSpecUpdateConfig {
                parallelism: Some(u.parallelism.unwrap_or(1)),
                delay: Some(nanos(u.delay.unwrap_or_default())),
                failure_action: Some(
                    u.failure_action
                        .as_deref()
                        .unwrap_or("pause")
                        .parse()
                        .unwrap_or(ServiceSpecUpdateConfigFailureActionEnum::PAUSE),
                ),
                monitor: Some(nanos(u.monitor.unwrap_or(Duration::from_secs(5)))),
                max_failure_ratio: Some(u.max_failure_ratio.unwrap_or(0.0)),
                order: Some(
                    u.order
                        .as_deref()
                        .unwrap_or("stop-first")
                        .parse()
                        .unwrap_or(ServiceSpecUpdateConfigOrderEnum::STOP_FIRST),
                ),
            }),
            rollback_config: Some(ServiceSpecRollbackConfig {
                parallelism: Some(r.parallelism.unwrap_or(1)),
                delay: Some(nanos(r.delay.unwrap_or_default())),
                failure_action: Some(
                    r.failure_action
                        .as_deref()
                        .unwrap_or("pause")
                        .parse()
                        .unwrap_or(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
                ),
                monitor: Some(nanos(r.monitor.unwrap_or(Duration::from_secs(5)))),
                max_failure_ratio: Some(r.max_failure_ratio.unwrap_or(0.0)),
                order: Some(
                    r.order
                        .as_deref()
                        .unwrap_or("stop-first")
                        .parse()
                        .unwrap_or(ServiceSpecRollbackConfigOrderEnum::STOP_FIRST),
                ),
            }),
            networks: None,
            endpoint_spec: Some(EndpointSpec {
                mode: None,
                ports: Some(self.ports.clone()),
            }),
        }
    }
}

/// The Docker secret name for a value: secrets are immutable, so the name carries a digest of
/// the value (a new value is a new secret, and the same value is the same spec).
pub fn secret_name(service: &str, name: &str, value: &str) -> String {
    // FNV-1a, 64 bits: stable across builds and Rust versions (unlike `DefaultHasher`).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in value.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // Docker takes names up to 64 characters: a long service name is cut, never the digest.
    let suffix = format!("-{name}-{hash:016x}");
    let keep = 63_usize.saturating_sub(suffix.len()).min(service.len());
    format!("{}{suffix}", &service[..keep])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::docker::port_text;

    #[test]
    fn parses_short_and_long_ports() {
        let p = parse_port("8080:80").unwrap();
        assert_eq!((p.published_port, p.target_port), (Some(8080), Some(80)));
        assert_eq!(
            p.publish_mode,
            Some(EndpointPortConfigPublishModeEnum::INGRESS)
        );
        let p = parse_port("mode=host,target=8080").unwrap();
        assert_eq!(
            p.publish_mode,
            Some(EndpointPortConfigPublishModeEnum::HOST)
        );
        assert_eq!((p.published_port, p.target_port), (None, Some(8080)));
        assert_eq!(port_text(&p), "mode=host,target=8080");
        let p = parse_port("53/udp").unwrap();
        assert_eq!(p.protocol, Some(EndpointPortConfigProtocolEnum::UDP));
        assert!(parse_port("mode=host").is_none());
        assert!(parse_port("web:80").is_none());
        assert!(parse_port("mode=mesh,target=80").is_none());
    }

    #[test]
    fn secret_names_follow_the_value() {
        let a = secret_name("web", "db", "one");
        assert_eq!(a, secret_name("web", "db", "one"));
        assert_ne!(a, secret_name("web", "db", "two"));
        assert!(a.starts_with("web-db-"));
        assert!(secret_name(&"s".repeat(80), "db", "one").len() <= 63);
    }

    #[test]
    fn the_spec_is_shown_as_the_cli_line_that_sends_it() {
        let mut map = Map::new();
        map.insert("image".into(), "app:2".into());
        map.insert("replicas".into(), Dynamic::from(3_i64));
        let mut update = Map::new();
        update.insert("order".into(), "start-first".into());
        map.insert("update".into(), Dynamic::from(update));
        let deploy = Deploy::from_map(map).unwrap();
        let update = crate::exec::docker::Request::UpdateService {
            service: "web".into(),
            spec: deploy.spec("web", 3, 0, Vec::new()),
            options: Default::default(),
            change: crate::exec::docker::Change::Update { forced: false },
        };
        assert_eq!(
            update.to_string(),
            "service update --image app:2 --replicas 3 --update-order start-first web"
        );
        let mut bad = Map::new();
        bad.insert("image".into(), "app:2".into());
        let mut update = Map::new();
        update.insert("order".into(), "sideways".into());
        bad.insert("update".into(), Dynamic::from(update));
        assert!(Deploy::from_map(bad).is_err());
    }
}
