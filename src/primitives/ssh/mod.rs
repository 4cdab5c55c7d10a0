//! `ssh::connect` and `ssh::hosts`: Hosts reached over SSH, one multiplexed master connection
//! per host (reused across runs while it persists), sftp for files, forwards for tunnels.

pub mod executor;
pub mod master;
pub mod transport;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use rhai::{Array, Dynamic, Map, NativeCallContext};

use super::at_call;
use super::host::Host;
use super::options::{bad_value, Opts};
use crate::api::{opt, Api, OptionSpec, Spec, Type};
use crate::error::Failure;
use crate::exec::Ctx;
use master::{Destination, MasterOptions};
use transport::{Connection, SshTransport};

const CONNECT_OPTIONS: &[OptionSpec] = &[
    opt(
        "identity",
        Type::String,
        "",
        "private key file (`IdentitiesOnly=yes` when given); default: ssh's defaults and agent",
    ),
    opt(
        "known_hosts",
        Type::String,
        "\"strict\"",
        "\"accept-new\" adds a host seen for the first time; a changed key is refused either way",
    ),
    opt(
        "known_hosts_file",
        Type::String,
        "\"~/.ssh/known_hosts\"",
        "the file host keys are checked against",
    ),
    opt(
        "jump",
        Type::Other("string | array"),
        "",
        "a bastion, or a list of them (ProxyJump)",
    ),
    opt(
        "sudo",
        Type::Bool,
        "false",
        "run every command through `sudo -n --`, and the sftp server too",
    ),
    opt(
        "connect_timeout",
        Type::Duration,
        "\"10s\"",
        "TCP connect timeout (the handshake gets 10 s more)",
    ),
    opt(
        "persist",
        Type::Other("duration | bool"),
        "\"5m\"",
        "how long an idle connection stays for the next run; false: close it at the end of the run",
    ),
    opt(
        "name",
        Type::String,
        "the destination",
        "the prefix of the host's output lines",
    ),
    opt(
        "state_dir",
        Type::String,
        "\"$XDG_STATE_HOME/galley\" on the host",
        "Galley's state folder on the host (deploy locks, journal): absolute, or ~/...",
    ),
];

/// How long an idle master connection stays up for the next run, unless `persist` says otherwise.
const DEFAULT_PERSIST: Duration = Duration::from_mins(5);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connection options as the recipe gave them.
struct Settings {
    master: MasterOptions,
    name: Option<String>,
    /// Galley's state folder on the host, instead of `$XDG_STATE_HOME/galley` there.
    state_dir: Option<String>,
}

impl Settings {
    fn from(function: &str, opts: Map) -> Result<Self, Failure> {
        let opts = Opts::new(function, opts, CONNECT_OPTIONS)?;
        let accept_new =
            match opts.string("known_hosts")?.as_deref() {
                None | Some("strict") => false,
                Some("accept-new") => true,
                Some(_) => return Err(bad_value(
                    function,
                    "option `known_hosts`",
                    "\"strict\" (the default) or \"accept-new\"; a file goes in `known_hosts_file`",
                    opts.get("known_hosts").expect("present"),
                )),
            };
        let jump = match opts.get("jump") {
            None => Vec::new(),
            Some(v) => match super::options::string_list(v) {
                Some(list) => list,
                None => vec![opts.string("jump")?.unwrap_or_default()],
            },
        };
        let persist = match opts.get("persist") {
            None => Some(DEFAULT_PERSIST),
            Some(v) if v.as_bool() == Ok(false) => None,
            Some(v) if v.as_bool() == Ok(true) => Some(DEFAULT_PERSIST),
            Some(_) => Some(opts.duration("persist")?.unwrap_or(DEFAULT_PERSIST)),
        };
        let sudo = opts.bool("sudo")?.unwrap_or(false);
        Ok(Settings {
            master: MasterOptions {
                identity: opts.string("identity")?.map(|p| expand_home(&p)),
                known_hosts_file: opts.string("known_hosts_file")?.map(|p| expand_home(&p)),
                accept_new,
                jump,
                connect_timeout: opts
                    .duration("connect_timeout")?
                    .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
                persist,
                sudo,
            },
            name: opts.string("name")?,
            state_dir: match opts.string("state_dir")? {
                Some(dir) if !dir.starts_with('/') && !dir.starts_with("~/") => {
                    return Err(bad_value(
                        function,
                        "option `state_dir`",
                        "an absolute path (or one under ~/)",
                        opts.get("state_dir").expect("present"),
                    ))
                }
                dir => dir.map(|d| remote_home(&d)),
            },
        })
    }
}

/// `~/x` as the remote shell's `$HOME/x` would be, for paths on the host: sftp resolves a
/// relative path against the login folder.
fn remote_home(path: &str) -> String {
    path.strip_prefix("~/").unwrap_or(path).to_string()
}

fn expand_home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => path.to_string(),
    }
}

/// Opens (or resumes) the connection to one destination.
fn connect(
    ctx: &Arc<Ctx>,
    function: &str,
    target: &str,
    settings: &Settings,
) -> Result<Host, Failure> {
    let dest = Destination::parse(target).map_err(|why| Failure::BadValue {
        function: function.into(),
        what: "the destination".into(),
        expected: "\"user@host:port\" (user and port optional)".into(),
        got: format!("{target:?} ({why})"),
    })?;
    let name = settings.name.clone().unwrap_or_else(|| target.to_string());
    let socket = master::socket_for(&dest, &settings.master)?;
    // Hosts of one run that reach the same destination share one connection, so that none of
    // them closes it under the others.
    let shared = live()
        .lock()
        .expect("connections lock")
        .get(&socket)
        .and_then(Weak::upgrade);
    let conn = if let Some(conn) = shared {
        conn
    } else {
        let master = master::open(ctx, &name, &dest, &settings.master, socket.clone())?;
        let conn = Arc::new(Connection::new(
            master,
            settings.master.persist.is_some(),
            settings.master.sudo,
        ));
        let mut live = live().lock().expect("connections lock");
        live.retain(|_, c| c.strong_count() > 0);
        live.insert(socket, Arc::downgrade(&conn));
        conn
    };
    Ok(Host::new(
        Arc::new(SshTransport::new(name, conn, settings.state_dir.clone())),
        ctx.clone(),
    ))
}

/// This process's open connections, by control socket.
fn live() -> &'static Mutex<HashMap<PathBuf, Weak<Connection>>> {
    static LIVE: OnceLock<Mutex<HashMap<PathBuf, Weak<Connection>>>> = OnceLock::new();
    LIVE.get_or_init(Mutex::default)
}

/// Connects to every destination at once; a new connection costs a key exchange, so a fleet
/// pays for one, not for one per host.
fn hosts(ctx: &Arc<Ctx>, targets: Array, opts: Map) -> Result<Array, Failure> {
    let settings = Settings::from("ssh::hosts", opts)?;
    if settings.name.is_some() {
        return Err(Failure::Other {
            message: "ssh::hosts: `name` names one host".into(),
            help: "connect that host with ssh::connect(dest, #{ name: ... }) instead".into(),
        });
    }
    let targets: Vec<String> = targets
        .into_iter()
        .map(|t| {
            t.clone().into_string().map_err(|_| {
                bad_value(
                    "ssh::hosts",
                    "each destination",
                    "a string such as \"deploy@web1:22\"",
                    &t,
                )
            })
        })
        .collect::<Result<_, _>>()?;
    let results: Vec<Result<Host, Failure>> = std::thread::scope(|scope| {
        let handles: Vec<_> = targets
            .iter()
            .map(|t| scope.spawn(|| connect(ctx, "ssh::hosts", t, &settings)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("connect thread"))
            .collect()
    });
    let failed = results.iter().filter(|r| r.is_err()).count();
    let mut hosts = Array::new();
    for result in results {
        match result {
            Ok(host) => hosts.push(Dynamic::from(host)),
            Err(Failure::Ssh {
                host,
                problem,
                message,
                detail,
                help,
            }) if failed > 1 => {
                return Err(Failure::Ssh {
                    host,
                    problem,
                    message,
                    detail,
                    help: format!(
                        "{help} ({failed} of {} hosts could not be reached)",
                        targets.len()
                    ),
                })
            }
            Err(e) => return Err(e),
        }
    }
    Ok(hosts)
}

const CONNECT: Spec = Spec::function(
    "connect",
    &[("target", "string"), ("opts", "map")],
    "Host",
)
.module("ssh")
.doc("A host reached over ssh (`user@host:port`), through one multiplexed master connection that later runs reuse while it persists.")
.example(r#"let web = ssh::connect("deploy@web1:22", #{ identity: "~/.ssh/deploy", known_hosts: "accept-new" });"#)
.options(CONNECT_OPTIONS);

const HOSTS: Spec = Spec::function("hosts", &[("targets", "array"), ("opts", "map")], "array")
    .module("ssh")
    .doc("Connects to several hosts at once (in parallel), with the same options; returns an array of Host.")
    .example(r#"let fleet = ssh::hosts(["deploy@web1", "deploy@web2"], #{ sudo: true });"#)
    .options(CONNECT_OPTIONS);

/// Registers the `ssh` module.
pub fn register(api: &mut Api, ctx: &Arc<Ctx>) {
    api.module("ssh", "Hosts reached over ssh: one multiplexed master connection per host, sftp for files, forwards for tunnels.");
    let c = ctx.clone();
    api.register(
        CONNECT.without_options(),
        move |call: NativeCallContext, target: &str| {
            Settings::from("ssh::connect", Map::new())
                .and_then(|s| connect(&c, "ssh::connect", target, &s))
                .map_err(|f| at_call(&call, f))
        },
    );
    let c = ctx.clone();
    api.register(
        CONNECT,
        move |call: NativeCallContext, target: &str, opts: Map| {
            Settings::from("ssh::connect", opts)
                .and_then(|s| connect(&c, "ssh::connect", target, &s))
                .map_err(|f| at_call(&call, f))
        },
    );
    let c = ctx.clone();
    api.register(
        HOSTS.without_options(),
        move |call: NativeCallContext, targets: Array| {
            hosts(&c, targets, Map::new()).map_err(|f| at_call(&call, f))
        },
    );
    let c = ctx.clone();
    api.register(
        HOSTS,
        move |call: NativeCallContext, targets: Array, opts: Map| {
            hosts(&c, targets, opts).map_err(|f| at_call(&call, f))
        },
    );
}
