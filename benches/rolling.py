#!/usr/bin/env python3
"""Rolling benchmark: `galley/rolling` over 8 ssh hosts in batches of 2, behind a real nginx,
under load.

Starts 8 sshd on 127.0.0.1 (benches/ssh.py's Fleet, with SHLVL=1 so root's ~/.bashrc — pyenv
here — does not run for every remote command unless --shell-rc) and a local nginx (Debian's, or
$NGINX) whose upstream `web` lists the 8 hosts' apps, with `proxy_next_upstream off`: a request
sent to a backend that is going away fails instead of being retried elsewhere, so a lost request
counts. Each host runs the demo app (recipes/demo/app.py) on a port and in a folder of its own.
A load client (benches/blue_green.py's: THREADS threads, half keep-alive) runs through nginx the
whole time. After an untimed first deploy (v1), ROUNDS timed deploys follow (v2, v3, ...).

Prints requests served and failed during the deploys, the wall time of each deploy, and per
batch: its time (from Galley's `==> batch N` line to the next), the health-check wait in it (the
slowest host of the batch: the app starting up, not Galley), and the difference — Galley's own
work per batch: draining the batch (upstream write, `nginx -t`, reload, waiting for the old
workers), stopping and starting the apps over ssh (the process primitive's start grace, 0.3 s,
included), returning the batch.

    cargo build --release && python3 benches/rolling.py [ROUNDS] [--shell-rc]
"""

import atexit
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
_argv, sys.argv = sys.argv, sys.argv[:1]
import blue_green  # noqa: E402  (the load client, nginx helpers)
import ssh  # noqa: E402  (the sshd fleet)
sys.argv = _argv

HOSTS = 8
BATCH = 2
THREADS = 4
ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
ROUNDS = int(ARGS[0]) if ARGS else 3
SHELL_RC = "--shell-rc" in sys.argv
GALLEY = ssh.GALLEY

NGINX_CONF = blue_green.NGINX_CONF.replace(
    "proxy_pass http://web;", "proxy_pass http://web;\n            proxy_next_upstream off;")

RECIPE = r"""
import "galley/rolling" as rolling;

let hs = ssh::hosts([@DESTS@], #{ identity: @KEY@, known_hosts_file: @KNOWN@ });
let ports = #{ @PORTS@ };
let dirs = #{ @DIRS@ };
let ng = local().nginx(#{ conf_dir: @PREFIX@ + "/conf.d", bin: @NGINX@, prefix: @PREFIX@,
                          conf: @PREFIX@ + "/nginx.conf" });
let version = params.version;
rolling::deploy(#{
    app: "web", hosts: hs, nginx: ng, upstream: "web", batch: @BATCH@, sha: version,
    addr: |h| `127.0.0.1:${ports[h.name]}`,
    update: |h| {
        let s = h.process("web", #{ cmd: ["python3", @APP@], dir: dirs[h.name],
                                    env: #{ PORT: `${ports[h.name]}`, APP_VERSION: version } });
        s.stop();
        s.start();
        let t = timestamp();
        health::http(`http://127.0.0.1:${ports[h.name]}/health`, #{ on: h, retries: 300, interval: "50ms" });
        print(`health_wait ${h.name} ${t.elapsed}`);
    },
});
"""


def lit(s):
    return ssh.rhai_str(s)


def start_nginx(prefix, ports):
    for d in ("conf.d", "logs", "temp"):
        os.makedirs(os.path.join(prefix, d), exist_ok=True)
    with open(os.path.join(prefix, "conf.d", "upstream-web.conf"), "w") as f:
        f.write("upstream web {\n" + "".join(f"    server 127.0.0.1:{p};\n" for p in ports) + "}\n")
    log = os.path.join(prefix, "logs", "error.log")
    for _ in range(5):
        port = blue_green.free_port()
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(p=prefix, port=port))
        proc = subprocess.Popen([blue_green.NGINX, "-p", prefix, "-c", conf, "-e", log], cwd="/",
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return proc, port
            except OSError:
                time.sleep(0.02)
        if proc.poll() is None:
            proc.kill()
    sys.exit(f"nginx did not start; see {log}")


def deploy(recipe, work, state, version, timed):
    """One `galley run`, its stdout read line by line with arrival times."""
    env = dict(os.environ, GALLEY_STATE_DIR=state, GALLEY_CONTROL_DIR=os.path.join(work, "c"),
               NO_COLOR="1")
    env.pop("GALLEY_PATH", None)
    start = time.perf_counter()
    proc = subprocess.Popen([GALLEY, "run", recipe, "--output", "plain", "--set",
                             f"version={version}"], cwd=work, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = [(time.perf_counter(), line.rstrip("\n")) for line in proc.stdout]
    err = proc.stderr.read()
    code = proc.wait()
    wall = time.perf_counter() - start
    if code != 0:
        sys.exit(f"deploy of {version} failed ({code}):\n"
                 + "\n".join(l for _, l in lines) + "\n" + err)
    if not timed:
        return None
    # Batches: from each `==> batch N of M` line to the next one (the last to the summary).
    marks = [(t, l.split(": ", 1)[1].split(", ")) for t, l in lines if l.startswith("==> batch ")]
    end = next(t for t, l in lines if l.startswith("rolling: "))
    waits = {}
    for _, l in lines:
        if "health_wait " in l:
            name, seconds = l.split("health_wait ", 1)[1].rsplit(" ", 1)
            waits[name] = float(seconds)
    batches = []
    for i, (t, members) in enumerate(marks):
        t_next = marks[i + 1][0] if i + 1 < len(marks) else end
        batches.append((t_next - t, max((waits.get(n, 0.0) for n in members), default=0.0)))
    return wall, batches


def main():
    if not os.path.exists(GALLEY):
        sys.exit(f"build first: cargo build --release ({GALLEY} is missing)")
    ssh.HOSTS = HOSTS
    fleet = ssh.Fleet(no_shell_rc=not SHELL_RC)
    work = tempfile.mkdtemp(prefix="gbr-", dir="/tmp")
    os.makedirs(os.path.join(work, "c"), mode=0o700)
    state = os.path.join(work, "state")
    ports = [blue_green.free_port() for _ in range(HOSTS)]
    dirs = [os.path.join(work, f"app{i}") for i in range(HOSTS)]
    for d in dirs:
        os.makedirs(d)
    prefix = os.path.join(work, "nginx")
    nginx, port = start_nginx(prefix, ports)

    def cleanup():
        ssh.close_masters(os.path.join(work, "c"))
        blue_green.stop_pid(nginx.pid, signal.SIGQUIT)
        for d in dirs:
            blue_green.stop_pid(blue_green.read_pid(os.path.join(d, "web.pid")), signal.SIGTERM)
    fleet.cleanups.append(cleanup)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sys.exit(130))

    dests = ", ".join(lit(fleet.dest(i)) for i in range(HOSTS))
    by_host = lambda values: ", ".join(f"{lit(fleet.dest(i))}: {v}" for i, v in enumerate(values))
    recipe = os.path.join(work, "recipe.rhai")
    with open(recipe, "w") as f:
        f.write(RECIPE.replace("@DESTS@", dests).replace("@KEY@", lit(fleet.key))
                .replace("@KNOWN@", lit(fleet.known_hosts))
                .replace("@PORTS@", by_host(ports))
                .replace("@DIRS@", by_host([lit(d) for d in dirs]))
                .replace("@PREFIX@", lit(prefix)).replace("@NGINX@", lit(blue_green.NGINX))
                .replace("@APP@", lit(blue_green.DEMO_APP)).replace("@BATCH@", str(BATCH)))
    deploy(recipe, work, state, "v1", timed=False)

    load = blue_green.Load(port, THREADS)
    time.sleep(1.0)  # warm-up: connections open, apps' first requests served
    t0 = time.perf_counter()
    rounds = [deploy(recipe, work, state, f"v{i + 2}", timed=True) for i in range(ROUNDS)]
    t1 = time.perf_counter()
    load.finish()
    served, failed = blue_green.window(load, t0, t1)

    print(f"rolling deploy of {HOSTS} ssh hosts in batches of {BATCH} behind nginx "
          f"(proxy_next_upstream off), {ROUNDS} deploys under load "
          f"({THREADS} client threads, half keep-alive); remote shell rc "
          f"{'runs' if SHELL_RC else 'skipped (SHLVL=1)'}")
    print(f"  requests served: {len(served)}, failed: {len(failed)}, "
          f"keep-alive reconnects: {load.reconnects}")
    for _, what in failed[:5]:
        print(f"    failure: {what}")
    walls = [w for w, _ in rounds]
    batches = [b for _, bs in rounds for b in bs]
    print(f"  {'':<44} {'median':>8} {'min':>8} {'max':>8}  (seconds)")
    rows = [("total time per deploy", walls),
            ("time per batch", [t for t, _ in batches]),
            ("  health-check wait in it (slowest host)", [h for _, h in batches]),
            ("  batch minus health-check wait (Galley)", [t - h for t, h in batches])]
    for name, values in rows:
        print(f"  {name:<44} {statistics.median(values):8.3f} {min(values):8.3f} "
              f"{max(values):8.3f}")
    print(f"  per batch: 0.300 s of it is the process primitive's fixed start grace; "
          f"{HOSTS // BATCH} batches per deploy")
    served_by = sorted(load.versions.items(), key=lambda kv: int(kv[0][1:]))
    print("  responses by version: " + ", ".join(f"{v}: {n}" for v, n in served_by))
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
