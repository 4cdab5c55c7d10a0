//! nginx on a host: upstream files written atomically, checked with `nginx -t` (and put back
//! when the check fails), then a reload that waits until the old workers have finished their
//! requests, so that a caller can stop the old backend knowing nothing still uses it.

use std::time::{Duration, Instant};

use rhai::{Array, Dynamic, Map};

use super::host::Host;
use super::options::Opts;
use super::validate;
use crate::api::{opt, Api, OptionSpec, Spec, Type};
use crate::error::{last_lines, STDERR_TAIL};
use crate::error::{Failure, RhaiResult};
use crate::exec::Command;

/// How long a reload may take for the old workers to finish their requests.
const DRAIN_TIMEOUT: Duration = Duration::from_mins(1);
const POLL: Duration = Duration::from_millis(50);

/// nginx on one host.
#[derive(Clone)]
pub struct Nginx {
    host: Host,
    conf_dir: String,
    bin: String,
    prefix: Option<String>,
    conf: Option<String>,
    pidfile: String,
}

/// One `server` line of an upstream.
#[derive(Clone, Debug, PartialEq)]
pub struct Server {
    pub addr: String,
    pub weight: Option<i64>,
    pub backup: bool,
}

impl Server {
    fn from(value: &Dynamic) -> Option<Self> {
        if let Ok(addr) = value.clone().into_string() {
            return Some(Server {
                addr,
                weight: None,
                backup: false,
            });
        }
        let map = value.read_lock::<Map>()?;
        let weight = match map.get("weight") {
            Some(w) => Some(w.as_int().ok()?),
            None => None,
        };
        Some(Server {
            addr: map.get("server")?.clone().into_string().ok()?,
            weight,
            backup: map
                .get("backup")
                .and_then(|b| b.as_bool().ok())
                .unwrap_or(false),
        })
    }

    /// Refuses an address or weight that would change the config's syntax.
    fn validate(&self) -> Result<(), Failure> {
        validate::upstream_server(&self.addr)?;
        self.weight.map(validate::upstream_weight).transpose()?;
        Ok(())
    }

    fn line(&self) -> String {
        let mut line = format!("    server {}", self.addr);
        if let Some(weight) = self.weight {
            line.push_str(&format!(" weight={weight}"));
        }
        if self.backup {
            line.push_str(" backup");
        }
        line.push(';');
        line
    }
}

/// The text of an upstream file.
pub fn render(name: &str, servers: &[Server]) -> String {
    let mut text = format!("# written by galley: the upstream `{name}`\nupstream {name} {{\n");
    for server in servers {
        text.push_str(&server.line());
        text.push('\n');
    }
    text.push_str("}\n");
    text
}

/// The servers of an upstream file that `render` wrote.
pub fn parse(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("server "))
        .filter_map(|rest| rest.trim_end_matches(';').split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// `BIN [-p PREFIX] [-c CONF] ARGS...`.
fn nginx_command(bin: &str, prefix: Option<&str>, conf: Option<&str>, args: &[&str]) -> Command {
    let mut argv = vec![bin];
    if let Some(prefix) = prefix {
        argv.extend(["-p", prefix]);
    }
    if let Some(conf) = conf {
        argv.extend(["-c", conf]);
    }
    argv.extend(args);
    Command::new(argv)
}

impl Nginx {
    fn new(host: Host, opts: Map) -> Result<Self, Failure> {
        let opts = Opts::new("nginx", opts, NGINX_OPTIONS)?;
        let prefix = opts.string("prefix")?;
        let pidfile = match (opts.string("pidfile")?, &prefix) {
            (Some(pidfile), _) => pidfile,
            (None, Some(prefix)) => format!("{}/logs/nginx.pid", prefix.trim_end_matches('/')),
            (None, None) => "/run/nginx.pid".into(),
        };
        Ok(Nginx {
            conf_dir: opts
                .string("conf_dir")?
                .unwrap_or_else(|| "/etc/nginx/conf.d".into()),
            bin: opts.string("bin")?.unwrap_or_else(|| "nginx".into()),
            conf: opts.string("conf")?,
            prefix,
            pidfile,
            host,
        })
    }

    fn file(&self, name: &str) -> String {
        format!(
            "{}/upstream-{name}.conf",
            self.conf_dir.trim_end_matches('/')
        )
    }

    /// `nginx [-p PREFIX] [-c CONF] ARGS...`.
    fn command(&self, args: &[&str]) -> Command {
        nginx_command(
            &self.bin,
            self.prefix.as_deref(),
            self.conf.as_deref(),
            args,
        )
    }

    /// `nginx -t`; the failure carries nginx's own words.
    fn test(&self) -> Result<(), Failure> {
        let out = self
            .host
            .perform(crate::exec::Action::Run(self.command(&["-t"]).quiet()))?;
        if out.success() {
            return Ok(());
        }
        Err(Failure::Nginx {
            host: self.host.name().to_string(),
            problem: "the configuration test failed (`nginx -t`)".into(),
            detail: last_lines(&out.stderr, STDERR_TAIL),
            help: "fix what nginx names above; the previous file was put back and nginx was \
                   not reloaded, so it still serves the old configuration"
                .into(),
        })
    }

    /// The pids of the master's worker processes.
    fn workers(&self) -> Vec<String> {
        let Ok(master) = self.host.read_text(&self.pidfile) else {
            return Vec::new();
        };
        let master = master.trim();
        self.host
            .read_text(&format!("/proc/{master}/task/{master}/children"))
            .map(|c| c.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// `nginx -s reload`, then waits until every worker that ran before has exited: they
    /// finish their in-flight requests first, so afterwards nothing uses the old upstream.
    fn reload(&self) -> Result<(), Failure> {
        let before = self.workers();
        self.host.run_checked(self.command(&["-s", "reload"]))?;
        if self.host.ctx().dry_run || before.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let spinner = self
            .host
            .ctx()
            .printer
            .spinner("waiting for nginx's old workers to finish their requests");
        loop {
            let now = self.workers();
            // The new workers are up and no old one is left.
            if !now.is_empty() && now.iter().all(|w| !before.contains(w)) {
                return Ok(());
            }
            if started.elapsed() > DRAIN_TIMEOUT {
                drop(spinner);
                return Err(Failure::Nginx {
                    host: self.host.name().to_string(),
                    problem: format!(
                        "old workers still running {}s after the reload",
                        DRAIN_TIMEOUT.as_secs()
                    ),
                    detail: Vec::new(),
                    help: "a long request or a stuck connection holds them; see nginx's error \
                           log"
                    .into(),
                });
            }
            self.host.ctx().sleep(POLL)?;
        }
    }

    /// Writes the upstream, tests the configuration (putting the old file back if the test
    /// fails), and reloads.
    fn upstream(&self, name: &str, servers: &[Server]) -> Result<(), Failure> {
        validate::upstream_name(name)?;
        for server in servers {
            server.validate()?;
        }
        let path = self.file(name);
        let old = if self.host.exists(&path)? {
            Some(self.host.read_text(&path)?)
        } else {
            None
        };
        let new = render(name, servers);
        if old.as_deref() == Some(new.as_str()) {
            return Ok(());
        }
        self.host.write(&path, new.as_bytes(), None)?;
        if let Err(failure) = self.test() {
            match &old {
                Some(text) => self.host.write(&path, text.as_bytes(), None)?,
                None => {
                    self.host.perform(crate::exec::Action::Remove { path })?;
                }
            }
            return Err(failure);
        }
        self.reload()
    }

    fn current_upstream(&self, name: &str) -> Result<Vec<String>, Failure> {
        validate::upstream_name(name)?;
        let path = self.file(name);
        if !self.host.exists(&path)? {
            return Ok(Vec::new());
        }
        Ok(parse(&self.host.read_text(&path)?))
    }
}

const NGINX_OPTIONS: &[OptionSpec] = &[
    opt(
        "conf_dir",
        Type::String,
        "\"/etc/nginx/conf.d\"",
        "where upstream files (upstream-NAME.conf) are written",
    ),
    opt("bin", Type::String, "\"nginx\"", "the nginx program"),
    opt("prefix", Type::String, "", "nginx's prefix folder (-p)"),
    opt(
        "conf",
        Type::String,
        "",
        "nginx's main configuration file (-c)",
    ),
    opt(
        "pidfile",
        Type::String,
        "\"/run/nginx.pid\" (PREFIX/logs/nginx.pid with a prefix)",
        "the master's pidfile, to find its workers",
    ),
];

const NGINX: Spec = Spec::method("nginx", &[("host", "Host"), ("opts", "map")], "Nginx")
    .doc("The nginx on the host, whose upstreams Galley writes and reloads.")
    .example(r#"let lb = host.nginx(#{ conf_dir: "/etc/nginx/conf.d" });"#)
    .options(NGINX_OPTIONS);

const NGINX_SELF: &[(&str, &str)] = &[("nginx", "Nginx")];

/// Registers `h.nginx(...)` and its methods.
pub fn register(api: &mut Api) {
    api.register_type::<Nginx>(
        "Nginx",
        "An nginx on a host (host.nginx(...)): upstream files, `nginx -t`, reloads that wait for the old workers.",
    );
    api.register(
        NGINX.without_options(),
        |h: &mut Host| -> RhaiResult<Nginx> { Ok(Nginx::new(h.clone(), Map::new())?) },
    );
    api.register(NGINX, |h: &mut Host, opts: Map| -> RhaiResult<Nginx> {
        Ok(Nginx::new(h.clone(), opts)?)
    });
    api.register(
        Spec::method("upstream", &[("nginx", "Nginx"), ("name", "string"), ("servers", "array")], "()")
            .doc("Writes the upstream NAME (file upstream-NAME.conf) with these servers, checks it with `nginx -t` (the old file goes back if the check fails) and reloads, waiting for the old workers to finish their requests.")
            .example(r#"lb.upstream("web", ["127.0.0.1:3031", #{ server: "127.0.0.1:3032", weight: 5, backup: false }]);"#),
        |n: &mut Nginx, name: &str, servers: Array| -> RhaiResult<()> {
            let servers = servers
                .iter()
                .map(|s| {
                    Server::from(s).ok_or_else(|| {
                        super::options::bad_value(
                            "upstream",
                            "each server",
                            "\"127.0.0.1:3031\" or #{ server: \"127.0.0.1:3031\", weight: 5, backup: false }",
                            s,
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(n.upstream(name, &servers)?)
        },
    );
    api.register(
        Spec::method("test", NGINX_SELF, "()")
            .doc(
                "Checks nginx's configuration (`nginx -t`); the failure carries nginx's own words.",
            )
            .example("lb.test();"),
        |n: &mut Nginx| -> RhaiResult<()> { Ok(n.test()?) },
    );
    api.register(
        Spec::method("reload", NGINX_SELF, "()")
            .doc("Reloads nginx and waits until every worker that ran before has exited.")
            .example("lb.reload();"),
        |n: &mut Nginx| -> RhaiResult<()> { Ok(n.reload()?) },
    );
    api.register(
        Spec::method("current_upstream", &[("nginx", "Nginx"), ("name", "string")], "array")
            .doc("The server addresses the upstream NAME lists now (empty when Galley has not written it).")
            .example(r#"let serving = lb.current_upstream("web");"#),
        |n: &mut Nginx, name: &str| -> RhaiResult<Array> {
            Ok(n.current_upstream(name)?
                .into_iter()
                .map(Dynamic::from)
                .collect())
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_name_the_prefix_and_config_before_the_action() {
        let reload = nginx_command(
            "/usr/sbin/nginx",
            Some("/srv/nginx"),
            Some("/srv/nginx/nginx.conf"),
            &["-s", "reload"],
        );
        assert_eq!(
            reload.program.to_string(),
            "/usr/sbin/nginx -p /srv/nginx -c /srv/nginx/nginx.conf -s reload"
        );
        assert_eq!(
            nginx_command("nginx", None, None, &["-t"]).to_string(),
            "nginx -t"
        );
    }

    #[test]
    fn upstream_files_round_trip() {
        let servers = vec![
            Server {
                addr: "127.0.0.1:3031".into(),
                weight: Some(9),
                backup: false,
            },
            Server {
                addr: "127.0.0.1:3032".into(),
                weight: None,
                backup: true,
            },
        ];
        let text = render("app", &servers);
        assert!(text.contains("upstream app {\n    server 127.0.0.1:3031 weight=9;\n"));
        assert_eq!(parse(&text), ["127.0.0.1:3031", "127.0.0.1:3032"]);
    }
}
