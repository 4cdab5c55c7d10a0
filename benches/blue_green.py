#!/usr/bin/env python3
"""Blue/green benchmark: 10 `galley/blue_green` switches of the demo app behind a real nginx,
under load.

Starts its own nginx (Debian's /usr/sbin/nginx, or $NGINX; in the foreground, as its child) with
a prefix in a temp dir /tmp/gbg-* on a free loopback port, in front of an upstream `web` whose
file Galley rewrites, and the demo app (recipes/demo/app.py) as two colours on two free ports. A load client of
THREADS Python threads (half of them keep their connection alive, half open a new one per
request; HTTP/1.1 GET / in a loop, no pauses) runs through nginx the whole time. Then:

  1. SWITCHES: 10 `galley run --output plain` blue/green deploys in a row (versions v1..v10);
  2. STEADY: a window of the same length with no deploy.

Prints requests served and failed in each window, latency p50/p99/max of the requests started in
each window, and Galley's own time per deploy: the wall time of `galley run` minus the health
check's wait (the `<== health check COLOUR: ok in Xs` step line of the plain output: that time is
the new app starting up, not Galley). It also splits the rest by step: `start` (includes the
process primitive's fixed 0.3 s start grace), `switch` (write the upstream, `nginx -t`, reload and
wait until nginx's old workers have finished their requests), `stop` (SIGTERM to the old colour
and waiting for it to exit), and what is left: Galley's start-up, recipe parse, lock, journal.

A keep-alive connection that nginx closes between two requests (an old worker shutting down after
a reload) is reopened and the request sent again, as HTTP clients do for idempotent requests
(RFC 9112 9.3.1): counted as a reconnect, not a failure. Any other error, cut response, non-200
or body that names no version is a failure.

Everything it started (nginx, both app colours) is stopped at exit, also on Ctrl-C or error.

    cargo build --release && python3 benches/blue_green.py [THREADS]
"""

import atexit
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GALLEY = os.path.join(ROOT, "target", "release", "galley")
DEMO_APP = os.path.join(ROOT, "recipes", "demo", "app.py")
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 4
SWITCHES = 10

RECIPE = r"""
import "galley/blue_green" as blue_green;

let h = local();
let ng = h.nginx(#{ conf_dir: "@PREFIX@/conf.d", bin: "@NGINX@", prefix: "@PREFIX@",
                    conf: "@PREFIX@/nginx.conf" });
let version = params.version ?? "v0";
let svc = |colour, port| h.process(`web-${colour}`, #{
    cmd: ["python3", "@APP@"], dir: "@APPDIR@", env: #{ PORT: port, APP_VERSION: version },
});
let colour = blue_green::deploy(#{
    app: "web", host: h, nginx: ng, upstream: "web",
    colours: #{ blue: @BLUE@, green: @GREEN@ },
    start: |c, p| { let s = svc.call(c, p); s.stop(); s.start(); },
    stop: |c, p| svc.call(c, p).stop(),
    health: "/health", health_options: #{ retries: 300, interval: "100ms" },
    sha: version,
});
"""

NGINX_CONF = """daemon off;
worker_processes 2;
pid {p}/logs/nginx.pid;
error_log {p}/logs/error.log warn;
events {{
    worker_connections 512;
}}
http {{
    access_log off;
    client_body_temp_path {p}/temp/client_body;
    proxy_temp_path {p}/temp/proxy;
    fastcgi_temp_path {p}/temp/fastcgi;
    uwsgi_temp_path {p}/temp/uwsgi;
    scgi_temp_path {p}/temp/scgi;
    keepalive_timeout 30s;
    include {p}/conf.d/*.conf;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://web;
        }}
    }}
}}
"""

STEP = re.compile(r"^<== (.+): (ok|failed) in ([0-9.]+)s$")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def stop_pid(pid, sig, wait=10.0):
    """Sends `sig` to pid and waits until it is gone; SIGKILL after `wait` seconds."""
    if pid is None or not alive(pid):
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + wait
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Stage:
    """The temp dir with nginx's prefix, the app's folder, Galley's state and the recipe."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="gbg-", dir="/tmp")
        self.prefix = os.path.join(self.dir, "nginx")
        self.app_dir = os.path.join(self.dir, "app")
        self.state = os.path.join(self.dir, "state")
        for d in ("conf.d", "logs", "temp"):
            os.makedirs(os.path.join(self.prefix, d))
        os.makedirs(self.app_dir)
        self.blue, self.green = free_port(), free_port()
        self.port = None
        self.nginx = None
        self.recipe = os.path.join(self.dir, "recipe.rhai")
        text = (RECIPE.replace("@PREFIX@", self.prefix).replace("@NGINX@", NGINX)
                .replace("@APP@", DEMO_APP).replace("@APPDIR@", self.app_dir)
                .replace("@BLUE@", str(self.blue)).replace("@GREEN@", str(self.green)))
        with open(self.recipe, "w") as f:
            f.write(text)
        # nginx refuses `proxy_pass http://web` without the upstream: the first one names blue.
        with open(os.path.join(self.prefix, "conf.d", "upstream-web.conf"), "w") as f:
            f.write(f"upstream web {{\n    server 127.0.0.1:{self.blue};\n}}\n")

    def start_nginx(self):
        """nginx in the foreground (`daemon off`) as this script's child, on a free port."""
        last = ""
        log = os.path.join(self.prefix, "logs", "error.log")
        for _ in range(5):
            self.port = free_port()
            conf = os.path.join(self.prefix, "nginx.conf")
            with open(conf, "w") as f:
                f.write(NGINX_CONF.format(p=self.prefix, port=self.port))
            if os.path.exists(log):
                os.remove(log)
            self.nginx = subprocess.Popen([NGINX, "-p", self.prefix, "-c", conf, "-e", log],
                                          cwd="/", stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.nginx.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    if read_pid(os.path.join(self.prefix, "logs", "nginx.pid")) == self.nginx.pid:
                        return
                except OSError:
                    pass
                time.sleep(0.02)
            if self.nginx.poll() is None:
                sys.exit("nginx did not answer")
            self.nginx = None
            with open(log) as f:
                last = f.read()
            if "Address already in use" not in last:
                break
        sys.exit(f"nginx did not start:\n{last}")

    def deploy(self, version):
        """One `galley run`; returns (wall seconds, {step name: seconds})."""
        env = dict(os.environ, GALLEY_STATE_DIR=self.state, NO_COLOR="1")
        env.pop("GALLEY_PATH", None)
        start = time.perf_counter()
        proc = subprocess.run([GALLEY, "run", self.recipe, "--output", "plain",
                               "--set", f"version={version}"],
                              cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"deploy of {version} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        steps = {}
        for line in proc.stdout.splitlines():
            m = STEP.match(line.strip())
            if m:
                steps[m.group(1)] = float(m.group(3))
        return wall, steps

    def workers(self):
        master = read_pid(os.path.join(self.prefix, "logs", "nginx.pid"))
        try:
            with open(f"/proc/{master}/task/{master}/children") as f:
                return set(f.read().split())
        except OSError:
            return set()

    def reload_drain_ms(self):
        """Median wall time of `nginx -s reload` until every old worker has exited, in ms."""
        argv = [NGINX, "-p", self.prefix, "-c", os.path.join(self.prefix, "nginx.conf"),
                "-s", "reload"]
        times = []
        for _ in range(5):
            before = self.workers()
            start = time.perf_counter()
            subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=True)
            while True:
                now = self.workers()
                if now and not (now & before):
                    break
                time.sleep(0.005)
            times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)

    def nginx_test_ms(self):
        """Median wall time of `nginx -t` on this configuration, in ms."""
        argv = [NGINX, "-p", self.prefix, "-c", os.path.join(self.prefix, "nginx.conf"), "-t"]
        times = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=True)
            times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)

    def cleanup(self):
        if self.nginx is not None:
            stop_pid(self.nginx.pid, signal.SIGQUIT)
            self.nginx.wait()
        for colour in ("blue", "green"):
            stop_pid(read_pid(os.path.join(self.app_dir, f"web-{colour}.pid")), signal.SIGTERM)
        shutil.rmtree(self.dir, ignore_errors=True)


class Load:
    """THREADS client threads through nginx; each records (start, seconds, ok) per request."""

    def __init__(self, port, threads):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.samples = []       # (start time, latency seconds) of good responses
        self.failures = []      # (start time, what)
        self.reconnects = 0
        self.versions = {}
        self.threads = [threading.Thread(target=self.client, args=(i % 2 == 1,), daemon=True)
                        for i in range(threads)]
        for t in self.threads:
            t.start()

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def client(self, keepalive):
        request = ("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: "
                   + ("keep-alive" if keepalive else "close") + "\r\n\r\n").encode()
        samples, failures, versions, reconnects = [], [], {}, 0
        conn = None
        while not self.stop.is_set():
            reused = conn is not None
            t0 = time.perf_counter()
            try:
                if conn is None:
                    conn = self.connect()
                status, body, close = exchange(conn, request)
            except NothingBack as e:
                conn.close()
                conn = None
                if reused:
                    reconnects += 1
                else:
                    failures.append((t0, str(e)))
                continue
            except OSError as e:
                if conn is not None:
                    conn.close()
                conn = None
                failures.append((t0, f"{type(e).__name__}: {e}"))
                time.sleep(0.01)
                continue
            elapsed = time.perf_counter() - t0
            m = re.match(r"hello from the galley demo app, version ([^,]+),", body)
            if status == 200 and m:
                samples.append((t0, elapsed))
                versions[m.group(1)] = versions.get(m.group(1), 0) + 1
            else:
                failures.append((t0, f"status {status}: {body[:100]!r}"))
            if close or not keepalive:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()
        with self.lock:
            self.samples += samples
            self.failures += failures
            self.reconnects += reconnects
            for v, n in versions.items():
                self.versions[v] = self.versions.get(v, 0) + n

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()


class NothingBack(OSError):
    """The connection ended before any byte of the response."""


def exchange(conn, request):
    """Sends `request`, reads one response: (status, body, server closes)."""
    try:
        conn.sendall(request)
    except OSError as e:
        raise NothingBack(f"send: {e}") from e
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = conn.recv(65536)
        except OSError as e:
            if not data:
                raise NothingBack(f"recv: {e}") from e
            raise
        if not chunk:
            if not data:
                raise NothingBack("closed")
            raise OSError("closed in the headers")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    close = headers.get("connection", "").lower() == "close"
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                raise OSError(f"body cut at {len(body)} of {length} bytes")
            body += chunk
        body = body[:length]
    else:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        close = True
    return status, body.decode("utf-8", "replace"), close


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def window(load, start, end):
    lat = [l for t, l in load.samples if start <= t < end]
    fails = [f for t, f in load.failures if start <= t < end]
    return lat, fails


def main():
    if not os.path.exists(GALLEY):
        sys.exit(f"build first: cargo build --release ({GALLEY} is missing)")
    if not os.path.exists(NGINX):
        sys.exit(f"nginx is missing ({NGINX}): apt-get install nginx")
    stage = Stage()
    atexit.register(stage.cleanup)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sys.exit(130))
    stage.start_nginx()
    stage.deploy("v0")

    load = Load(stage.port, THREADS)
    time.sleep(1.0)  # warm-up: connections open, apps' first requests served

    deploys = []
    t_switch = time.perf_counter()
    for i in range(1, SWITCHES + 1):
        deploys.append(stage.deploy(f"v{i}"))
    t_switch_end = time.perf_counter()
    length = t_switch_end - t_switch
    time.sleep(length)
    t_steady_end = time.perf_counter()
    drain_ms = stage.reload_drain_ms()  # still under load, after the steady window
    load.finish()

    sw_lat, sw_fail = window(load, t_switch, t_switch_end)
    st_lat, st_fail = window(load, t_switch_end, t_steady_end)
    keepalive = THREADS // 2
    print(f"blue/green under load: {THREADS} client threads through nginx ({keepalive} keep-alive, "
          f"{THREADS - keepalive} new connection per request)")
    print(f"  requests served: {len(load.samples)}, failed: {len(load.failures)}, "
          f"keep-alive reconnects: {load.reconnects}")
    for _, what in load.failures[:5]:
        print(f"    failure: {what}")
    print(f"  {'window':<28} {'seconds':>8} {'served':>8} {'failed':>7} {'req/s':>7} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, lat, fails in ((f"{SWITCHES} switches", sw_lat, sw_fail),
                             ("steady state (no deploy)", st_lat, st_fail)):
        print(f"  {name:<28} {length:8.2f} {len(lat):8d} {len(fails):7d} {len(lat) / length:7.0f} "
              f"{percentile(lat, 50) * 1000:8.2f} {percentile(lat, 99) * 1000:8.2f} "
              f"{max(lat, default=float('nan')) * 1000:8.2f}")

    def parts(wall, steps):
        health = sum(s for n, s in steps.items() if n.startswith("health check"))
        start = sum(s for n, s in steps.items() if n.startswith("start "))
        switch = sum(s for n, s in steps.items() if n.startswith("switch "))
        stop = sum(s for n, s in steps.items() if n.startswith("stop "))
        return {"total": wall, "health check wait": health, "overhead (total - health)": wall - health,
                "  start step": start, "  switch step": switch, "  stop step": stop,
                "  rest (startup, parse, lock, journal)": wall - health - start - switch - stop}

    rows = [parts(w, s) for w, s in deploys]
    print(f"  per deploy, over {SWITCHES} deploys:  {'median':>8} {'mean':>8} {'max':>8}  (seconds)")
    for key in rows[0]:
        values = [r[key] for r in rows]
        print(f"    {key:<38} {statistics.median(values):8.3f} {statistics.mean(values):8.3f} "
              f"{max(values):8.3f}")
    test_ms = stage.nginx_test_ms()
    print(f"    start: 0.300 s of it is the process primitive's fixed start grace (START_GRACE)")
    print(f"    switch, done by hand under the same load (median of 5): `nginx -t` {test_ms:.1f} ms, "
          f"`nginx -s reload` until the old workers are gone (polled every 5 ms) {drain_ms:.1f} ms; "
          f"Galley polls every 50 ms")
    served = sorted(load.versions.items(), key=lambda kv: int(kv[0][1:]))
    print("  responses by version: " + ", ".join(f"{v}: {n}" for v, n in served))
    if load.failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
