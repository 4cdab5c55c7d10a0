#!/usr/bin/env python3
"""SSH benchmark: galley against plain `ssh`, pyinfra and Ansible on local sshd hosts.

Starts its own sshd on 127.0.0.1 (a temp dir /tmp/gb-*, one client key, a host key, config and
known_hosts line per host) and kills them, with every connection they forked, when it ends, even on
Ctrl-C or error. Installs the peers (pyinfra, ansible-core) itself into a venv under
target/bench-peers the first time. Each command runs RUNS times after 1 warm-up; prints medians and
ratios measured in the same run (see shared/design/BENCHMARKS.md).

Galley runs `galley run --output plain RECIPE` with GALLEY_CONTROL_DIR set. COLD: a fresh, empty
control dir for every run (new connections). WARM: one control dir for all runs after an untimed
first run (each host's master connection, and its command executor, kept alive between runs).

Scenarios and targets:
  A. 20 sequential `true` on one host: galley (one recipe, 20 `h.run(["true"])`) vs 20 plain
     `ssh ... true` in a row.         target: plain / galley >= 5x cold; warm >= 5x, and >= 20x
                                      when the host's rc file runs (the executor pays it once)
  B. one `true` on N hosts: galley `parallel` vs a bash `for` loop of plain ssh, pyinfra
     (--parallel N) and Ansible (forks = N, ControlPersist). Galley cold is also measured with
     the key exchange pyinfra negotiates (curve25519-sha256: paramiko has no sntrup761), through
     an `ssh` wrapper on PATH, to show what the default sntrup761x25519 costs.
                                      targets: cold: pyinfra / galley >= 1x,
                                               ansible / galley > 1x;
                                               warm: loop / galley >= 50x,
                                               pyinfra and ansible / galley > 1x

    cargo build --release && python3 benches/ssh.py [RUNS] [--hosts N[,N...]] [--rc on|off|both]
                                                       [--skip-peers] [--peers-only]

RUNS defaults to 10. --hosts: the host counts of scenario B, e.g. `--hosts 10,40` (default 10).
--rc: whether the remote bash runs root's ~/.bashrc. `on` (the default) runs it, like a real
login: on this machine `pyenv init` there costs ~0.2 s per remote shell (the bench prints what it
measured). `off` (or the older --no-shell-rc): the sshd set SHLVL=1 in their sessions
(`SetEnv`), so that bash skips it. `both`: every scenario with and without, in one run.
--skip-peers: no pyinfra/Ansible (nor their install), for a quick run.
--peers-only: a galley that is missing or fails is reported with its stderr and the other
measurements go on.
GALLEY=PATH picks another galley binary (default target/release/galley).
"""

import atexit
import os
import shutil
import signal
import socket
import stat
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GALLEY = os.environ.get("GALLEY") or os.path.join(ROOT, "target", "release", "galley")
PEERS = os.path.join(ROOT, "target", "bench-peers")
SEQUENTIAL = 20
WARMUP = 1


class CommandFailed(Exception):
    def __init__(self, name, proc):
        super().__init__(f"{name} failed with exit code {proc.returncode}")
        self.name = name
        self.proc = proc

    def report(self):
        out = (self.proc.stdout or b"").decode(errors="replace").strip()
        err = (self.proc.stderr or b"").decode(errors="replace").strip()
        text = f"{self.name}: exit code {self.proc.returncode}"
        if out:
            text += "\n--- stdout ---\n" + out[-4000:]
        if err:
            text += "\n--- stderr ---\n" + err[-4000:]
        return text


def run_checked(name, argv, env=None, cwd=None):
    proc = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise CommandFailed(name, proc)
    return proc


def median_ms(name, argv, env=None, cwd=None, before=None, after=None, warmup=WARMUP, runs=None):
    """Median wall time of `argv` over `runs` runs after `warmup` runs; before/after run untimed."""
    times = []
    for i in range(warmup + runs):
        if before:
            before()
        start = time.perf_counter()
        try:
            run_checked(name, argv, env=env, cwd=cwd)
        finally:
            elapsed = (time.perf_counter() - start) * 1000
            if after:
                after()
        if i >= warmup:
            times.append(elapsed)
    return statistics.median(times)


# ---------------------------------------------------------------- processes (/proc)

def ppids():
    """{pid: ppid} of every process now."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                data = f.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces or parens: split after its last ')'.
        fields = data[data.rfind(")") + 2:].split()
        table[int(entry)] = int(fields[1])
    return table


def descendants(pid):
    table = ppids()
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in table.items():
            if ppid == parent and child not in found:
                found.add(child)
                todo.append(child)
    return found


def signal_pid(pid, sig):
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rfind(")") + 2:].split()[0] != "Z"


# ---------------------------------------------------------------- sshd fixture

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def banner(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path],
                   stdin=subprocess.DEVNULL, check=True)


SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp /usr/lib/openssh/sftp-server
MaxSessions 100
MaxStartups 100:30:200
LogLevel ERROR
"""


class Fleet:
    """`hosts` sshd on 127.0.0.1 with a shared client key and a known_hosts file trusting them."""

    def __init__(self, hosts, no_shell_rc=False):
        self.config = SSHD_CONFIG + ("SetEnv SHLVL=1\n" if no_shell_rc else "")
        self.procs = []
        self.dir = tempfile.mkdtemp(prefix="gb-", dir="/tmp")
        self.cleanups = []  # run before the sshd are killed (e.g. closing ssh masters)
        atexit.register(self.close)
        self.key = os.path.join(self.dir, "id")
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        self.ports = []
        keygen(self.key)
        os.makedirs("/run/sshd", exist_ok=True)
        os.chmod("/run/sshd", 0o755)
        lines = []
        for i in range(hosts):
            port, host_pub = self._start_host(i)
            self.ports.append(port)
            lines.append(f"[127.0.0.1]:{port} {host_pub}\n")
        with open(self.known_hosts, "w") as f:
            f.writelines(lines)

    def _start_host(self, i):
        d = os.path.join(self.dir, f"h{i}")
        os.mkdir(d)
        host_key = os.path.join(d, "host_key")
        keygen(host_key)
        with open(host_key + ".pub") as f:
            host_pub = " ".join(f.read().split()[:2])
        authorized = os.path.join(d, "authorized_keys")
        shutil.copy(self.key + ".pub", authorized)
        conf = os.path.join(d, "sshd_config")
        log = os.path.join(d, "sshd.log")
        for _ in range(5):
            port = free_port()
            with open(conf, "w") as f:
                f.write(self.config.format(port=port, host_key=host_key, authorized=authorized,
                                           pid_file=os.path.join(d, "sshd.pid")))
            with open(log, "wb") as out:
                proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", conf],
                                        stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                        start_new_session=True)
            self.procs.append(proc)
            deadline = time.monotonic() + 10
            while proc.poll() is None and not banner(port):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sshd on port {port} gave no banner in 10 s; see {log}")
                time.sleep(0.02)
            if proc.poll() is None:
                return port, host_pub
        with open(log) as f:
            raise RuntimeError(f"sshd did not start after 5 ports; last log:\n{f.read()}")

    def dest(self, i):
        return f"root@127.0.0.1:{self.ports[i]}"

    def ssh_argv(self, i):
        return ["ssh", "-i", self.key, "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                "-p", str(self.ports[i]), "root@127.0.0.1"]

    def close(self):
        """Idempotent: closes masters, kills every sshd and its connections, removes the dir."""
        cleanups, self.cleanups = self.cleanups, []
        for fn in cleanups:
            try:
                fn()
            except Exception as e:  # keep cleaning up
                print(f"cleanup: {e}", file=sys.stderr)
        # A second Ctrl-C must not cut this short: hold the signals until the sshd are gone.
        held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            while self.procs:
                self._kill(self.procs[-1])
                self.procs.pop()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, held)
        if self.dir and os.path.isdir(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    @staticmethod
    def _kill(proc):
        """Kills an sshd listener and every process it forked (connections and their commands)."""
        if proc.poll() is None:
            # Stop the listener and its tree first so none forks or is reparented meanwhile.
            signal_pid(proc.pid, signal.SIGSTOP)
            tree = set()
            while True:
                new = descendants(proc.pid) - tree
                if not new:
                    break
                for pid in new:
                    signal_pid(pid, signal.SIGSTOP)
                tree |= new
            for pid in tree:
                signal_pid(pid, signal.SIGKILL)
            proc.kill()
            proc.wait()
            deadline = time.monotonic() + 10
            while any(alive(pid) for pid in tree) and time.monotonic() < deadline:
                time.sleep(0.02)


def sockets_in(directory):
    found = []
    for base, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(base, name)
            try:
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    found.append(path)
            except OSError:
                pass
    return found


def close_masters(directory):
    """Asks every ssh master whose control socket is in `directory` to exit (errors ignored).
    Control sockets have bare names; `NAME.x` and the like are forwards through them."""
    for sock in sockets_in(directory):
        if "." in os.path.basename(sock):
            continue
        subprocess.run(["ssh", "-S", sock, "-O", "exit", "none"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ---------------------------------------------------------------- galley

def rhai_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Galley:
    def __init__(self, fleet, work, runs, tolerate_failure):
        self.fleet = fleet
        self.work = work
        self.runs = runs
        self.tolerate = tolerate_failure
        self.failures = []
        self.opts = (f"#{{ identity: {rhai_str(fleet.key)}, "
                     f"known_hosts_file: {rhai_str(fleet.known_hosts)} }}")
        self.counter = 0

    def recipe(self, name, text):
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def sequential_recipe(self):
        lines = [f"let h = ssh::connect({rhai_str(self.fleet.dest(0))}, {self.opts});"]
        lines += ['h.run(["true"]);'] * SEQUENTIAL
        return self.recipe("sequential.rhai", "\n".join(lines) + "\n")

    def parallel_recipe(self, n):
        dests = ", ".join(rhai_str(self.fleet.dest(i)) for i in range(n))
        text = (f"let hs = ssh::hosts([{dests}], {self.opts});\n"
                'parallel(hs, |h| { h.run(["true"]); });\n')
        return self.recipe(f"parallel{n}.rhai", text)

    def _control_dir(self):
        self.counter += 1
        d = os.path.join(self.fleet.dir, f"c{self.counter}")
        os.mkdir(d, 0o700)
        self.fleet.cleanups.append(lambda: close_masters(d))
        return d

    def measure(self, label, recipe, warm, path=None, parallel=None):
        """Median ms of `galley run` on `recipe`, cold or warm; None if it failed and tolerated.
        `path`: a folder put first on PATH (an `ssh` wrapper); `parallel`: --max-parallel."""
        argv = [GALLEY, "run", "--output", "plain", recipe]
        if parallel:
            argv[2:2] = ["--max-parallel", str(parallel)]
        name = f"galley {label} ({'warm' if warm else 'cold'})"
        if not os.path.exists(GALLEY):
            if self.tolerate:
                failure = f"{name}: {GALLEY} is missing (cargo build --release)"
                print(f"  ! {failure}", file=sys.stderr)
                self.failures.append(failure)
                return None
            sys.exit(f"build first: cargo build --release ({GALLEY} is missing)")
        env = dict(os.environ)
        if path:
            env["PATH"] = path + ":" + env["PATH"]
        try:
            if warm:
                d = self._control_dir()
                env["GALLEY_CONTROL_DIR"] = d
                try:
                    return median_ms(name, argv, env=env, runs=self.runs)
                finally:
                    close_masters(d)
            current = {}

            def fresh():
                current["dir"] = self._control_dir()
                env["GALLEY_CONTROL_DIR"] = current["dir"]

            def closed():
                close_masters(current["dir"])

            return median_ms(name, argv, env=env, runs=self.runs, before=fresh, after=closed)
        except CommandFailed as e:
            if not self.tolerate:
                print(e.report(), file=sys.stderr)
                sys.exit(f"{name} failed (run with --peers-only to measure the others anyway)")
            print(f"  ! {e.report()}", file=sys.stderr)
            self.failures.append(f"{name}: exit code {e.proc.returncode}")
            return None


# ---------------------------------------------------------------- peers

def peer_bin(name):
    return os.path.join(PEERS, "bin", name)


def install_peers():
    python = peer_bin("python")
    if not os.path.exists(python):
        print(f"creating venv {PEERS}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", PEERS], check=True)
    probe = subprocess.run([python, "-c", "import pyinfra, ansible"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if probe.returncode != 0:
        print("installing pyinfra and ansible-core into it (may take a few minutes)", flush=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "pyinfra", "ansible-core"],
                       check=True)
    versions = subprocess.run(
        [python, "-c", "import importlib.metadata as m; "
         "print(m.version('pyinfra'), m.version('ansible-core'))"],
        stdout=subprocess.PIPE, check=True, text=True).stdout.split()
    return versions


def pyinfra_setup(fleet, work, n):
    inv = os.path.join(work, f"inventory{n}.py")
    with open(inv, "w") as f:
        f.write("hosts = [\n")
        for i, port in enumerate(fleet.ports[:n]):
            data = {"ssh_hostname": "127.0.0.1", "ssh_port": port, "ssh_user": "root",
                    "ssh_key": fleet.key, "ssh_known_hosts_file": fleet.known_hosts,
                    "ssh_strict_host_key_checking": "yes"}
            f.write(f"    ({f'h{i}'!r}, {data!r}),\n")
        f.write("]\n")
    argv = [peer_bin("pyinfra"), "-y", "--parallel", str(n), inv, "exec", "--", "true"]
    return argv, dict(os.environ)


def remote_python():
    """The hosts are this machine: name a python for Ansible's modules rather than let it
    discover one (auto_silent may find a pyenv shim on root's PATH that has no such version)."""
    for python in ("/usr/bin/python3", peer_bin("python")):
        if os.access(python, os.X_OK):
            return python
    return "auto_silent"


def ansible_setup(fleet, work, n):
    inv = os.path.join(work, f"hosts{n}.ini")
    with open(inv, "w") as f:
        for i, port in enumerate(fleet.ports[:n]):
            f.write(f"h{i} ansible_host=127.0.0.1 ansible_port={port} ansible_user=root\n")
    control = os.path.join(fleet.dir, f"acp{n}")
    os.mkdir(control, 0o700)
    fleet.cleanups.append(lambda: close_masters(control))
    cfg = os.path.join(work, f"ansible{n}.cfg")
    with open(cfg, "w") as f:
        f.write("[defaults]\n"
                f"private_key_file = {fleet.key}\n"
                "host_key_checking = True\n"
                f"forks = {n}\n"
                f"remote_tmp = {os.path.join(work, 'ansible-remote')}\n"
                f"interpreter_python = {remote_python()}\n"
                "\n[ssh_connection]\n"
                "ssh_args = -o ControlMaster=auto -o ControlPersist=60s "
                f"-o UserKnownHostsFile={fleet.known_hosts}\n"
                f"control_path_dir = {control}\n")
    env = dict(os.environ, ANSIBLE_CONFIG=cfg, ANSIBLE_HOME=os.path.join(work, "ansible-home"))
    argv = [peer_bin("ansible"), "all", "-i", inv, "-m", "command", "-a", "true"]
    return argv, env


# ---------------------------------------------------------------- report

def ratio(a, b):
    return None if a is None or b is None else a / b


def fmt_ms(ms):
    return "      n/a" if ms is None else f"{ms:9.1f}"


def fmt_ratio(r):
    return "  n/a " if r is None else f"{r:5.2f}x"




CURVE_WRAPPER = """#!/bin/sh
exec ssh -o KexAlgorithms=curve25519-sha256 "$@"
"""


def curve_wrapper(fleet):
    """A folder with an `ssh` that negotiates curve25519-sha256, as paramiko (pyinfra) does."""
    d = os.path.join(fleet.dir, "curve")
    os.mkdir(d)
    path = os.path.join(d, "ssh")
    real = shutil.which("ssh")
    with open(path, "w") as f:
        f.write(CURVE_WRAPPER.replace("exec ssh", f"exec {real}"))
    os.chmod(path, 0o755)
    return d


def measure_mode(rc, counts, runs, skip_peers, peers_only):
    """Every scenario on one fleet (root's rc run or not); returns (rows, ratios, targets)."""
    fleet = Fleet(max(counts), no_shell_rc=not rc)
    try:
        work = os.path.join(fleet.dir, "w")
        os.mkdir(work)
        label = "rc" if rc else "no rc"
        print(f"[{label}] {max(counts)} sshd on 127.0.0.1 ports {fleet.ports[0]}..; median of "
              f"{runs} runs after {WARMUP} warm-up", flush=True)
        galley = Galley(fleet, work, runs, tolerate_failure=peers_only)
        r = {}

        def step(key, fn):
            print(f"  [{label}] measuring {key} ...", flush=True)
            r[key] = fn()

        one = fleet.ssh_argv(0)
        step("one ssh", lambda: median_ms("one ssh", one + ["true"], runs=runs))
        # A. 20 sequential commands on one host
        plain_seq = os.path.join(work, "plain_seq.sh")
        with open(plain_seq, "w") as f:
            f.write("set -e\n")
            f.write((" ".join(one) + " true\n") * SEQUENTIAL)
        seq = galley.sequential_recipe()
        step("A plain", lambda: median_ms("plain ssh x20", ["bash", plain_seq], runs=runs))
        step("A cold", lambda: galley.measure("20 sequential", seq, warm=False))
        step("A warm", lambda: galley.measure("20 sequential", seq, warm=True))
        curve = curve_wrapper(fleet)
        for n in counts:
            loop = os.path.join(work, f"loop{n}.sh")
            with open(loop, "w") as f:
                f.write("set -e\nfor p in " + " ".join(map(str, fleet.ports[:n])) + "; do\n")
                f.write(f"  ssh -i {fleet.key} -o UserKnownHostsFile={fleet.known_hosts} "
                        "-o StrictHostKeyChecking=yes -o BatchMode=yes -p $p root@127.0.0.1 true\n")
                f.write("done\n")
            par = galley.parallel_recipe(n)
            step(f"B{n} loop", lambda: median_ms("ssh for loop", ["bash", loop], runs=runs))
            step(f"B{n} cold", lambda: galley.measure(f"{n} hosts", par, warm=False, parallel=n))
            step(f"B{n} cold curve", lambda: galley.measure(
                f"{n} hosts, curve25519", par, warm=False, path=curve, parallel=n))
            step(f"B{n} warm", lambda: galley.measure(f"{n} hosts", par, warm=True, parallel=n))
            if not skip_peers:
                argv, env = pyinfra_setup(fleet, work, n)
                step(f"B{n} pyinfra",
                     lambda: median_ms("pyinfra", argv, env=env, cwd=work, runs=runs))
                argv, env = ansible_setup(fleet, work, n)
                step(f"B{n} ansible",
                     lambda: median_ms("ansible", argv, env=env, cwd=work, runs=runs))
    finally:
        fleet.close()

    rows = [
        ("-", "one plain `ssh host true`", r["one ssh"]),
        ("A", f"{SEQUENTIAL} x plain ssh, in a row", r["A plain"]),
        ("A", f"galley, {SEQUENTIAL} h.run, cold", r["A cold"]),
        ("A", f"galley, {SEQUENTIAL} h.run, warm", r["A warm"]),
    ]
    ratios = [
        ("A", "plain / galley cold", ratio(r["A plain"], r["A cold"])),
        ("A", "plain / galley warm", ratio(r["A plain"], r["A warm"])),
    ]
    targets = [
        (f"A cold [{label}]: >= 5x faster than plain ssh", ratio(r["A plain"], r["A cold"]), 5.0),
        (f"A warm [{label}]: >= {20 if rc else 5}x faster than plain ssh",
         ratio(r["A plain"], r["A warm"]), 20.0 if rc else 5.0),
    ]
    for n in counts:
        b = f"B{n}"
        rows += [
            (b, f"bash for loop of ssh, {n} hosts", r[f"{b} loop"]),
            (b, "galley parallel, cold", r[f"{b} cold"]),
            (b, "galley parallel, cold, curve25519", r[f"{b} cold curve"]),
            (b, "galley parallel, warm", r[f"{b} warm"]),
        ]
        ratios += [
            (b, "loop / galley cold", ratio(r[f"{b} loop"], r[f"{b} cold"])),
            (b, "loop / galley warm", ratio(r[f"{b} loop"], r[f"{b} warm"])),
        ]
        targets.append((f"{b} warm [{label}]: >= 50x faster than the ssh loop",
                        ratio(r[f"{b} loop"], r[f"{b} warm"]), 50.0))
        if skip_peers:
            continue
        pyinfra, ansible = r[f"{b} pyinfra"], r[f"{b} ansible"]
        rows += [(b, f"pyinfra --parallel {n}", pyinfra),
                 (b, f"ansible-core forks={n}", ansible)]
        ratios += [
            (b, "pyinfra / galley cold", ratio(pyinfra, r[f"{b} cold"])),
            (b, "pyinfra / galley cold, curve25519", ratio(pyinfra, r[f"{b} cold curve"])),
            (b, "pyinfra / galley warm", ratio(pyinfra, r[f"{b} warm"])),
            (b, "ansible / galley cold", ratio(ansible, r[f"{b} cold"])),
            (b, "ansible / galley warm", ratio(ansible, r[f"{b} warm"])),
            (b, "loop / pyinfra", ratio(r[f"{b} loop"], pyinfra)),
            (b, "loop / ansible", ratio(r[f"{b} loop"], ansible)),
        ]
        targets += [
            (f"{b} cold [{label}]: at least as fast as pyinfra", ratio(pyinfra, r[f"{b} cold"]),
             1.0),
            (f"{b} cold [{label}], curve25519 like pyinfra: at least as fast as pyinfra",
             ratio(pyinfra, r[f"{b} cold curve"]), 1.0),
            (f"{b} cold [{label}]: faster than Ansible", ratio(ansible, r[f"{b} cold"]), 1.0),
            (f"{b} warm [{label}]: faster than pyinfra", ratio(pyinfra, r[f"{b} warm"]), 1.0),
            (f"{b} warm [{label}]: faster than Ansible", ratio(ansible, r[f"{b} warm"]), 1.0),
        ]
    return label, rows, ratios, targets, galley.failures


def main():
    args = sys.argv[1:]
    skip_peers = "--skip-peers" in args
    peers_only = "--peers-only" in args
    counts, rc_modes, positional = [10], [True], []
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("--skip-peers", "--peers-only"):
            pass
        elif a == "--no-shell-rc":
            rc_modes = [False]
        elif a in ("--hosts", "--rc") and i + 1 < len(args):
            i += 1
            value = args[i]
            if a == "--hosts":
                try:
                    counts = [int(c) for c in value.split(",")]
                except ValueError:
                    sys.exit(__doc__)
            elif value in ("on", "off", "both"):
                rc_modes = {"on": [True], "off": [False], "both": [True, False]}[value]
            else:
                sys.exit(__doc__)
        elif a.startswith("-"):
            sys.exit(__doc__)
        else:
            positional.append(a)
        i += 1
    if len(positional) > 1 or any(c < 1 for c in counts):
        sys.exit(__doc__)
    runs = int(positional[0]) if positional else 10
    if not os.path.exists(GALLEY) and not peers_only:
        sys.exit(f"build first: cargo build --release ({GALLEY} is missing)")
    versions = None if skip_peers else install_peers()

    # Ctrl-C raises KeyboardInterrupt; make SIGTERM/SIGHUP unwind through `finally` too.
    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    results = []
    try:
        for rc in rc_modes:
            results.append(measure_mode(rc, counts, runs, skip_peers, peers_only))
    except CommandFailed as e:
        print(e.report(), file=sys.stderr)
        sys.exit(f"{e.name} failed: see its output above")
    except KeyboardInterrupt:
        sys.exit("interrupted")

    print()
    peers = "" if skip_peers else f"; pyinfra {versions[0]}, ansible-core {versions[1]}"
    print(f"ssh on 127.0.0.1, median of {runs} runs each{peers}")
    print(f"  A = 20 sequential `true` on one host; BN = one `true` on each of N hosts")
    print("  rc: root's ~/.bashrc runs in every remote shell; no rc: sshd sets SHLVL=1, bash "
          "skips it")
    for label, rows, ratios, _, _ in results:
        print()
        print(f"  [{label}]")
        for scenario, name, ms in rows:
            print(f"  {scenario:<4} {name:<36} {fmt_ms(ms)} ms")
        print("  ratios (> 1: the second is faster)")
        for scenario, name, value in ratios:
            print(f"  {scenario:<4} {name:<36} {fmt_ratio(value)}")
    if len(results) == 2:
        on, off = results[0][1][0][2], results[1][1][0][2]
        if on is not None and off is not None:
            print(f"\n  the rc costs {on - off:.0f} ms per remote shell (one ssh, rc - no rc)")
    print()
    for _, _, _, targets, _ in results:
        for name, value, bound in targets:
            if value is None:
                verdict = "MISSED (no galley figure)"
            elif value >= bound:
                verdict = f"target met ({value:.2f}x)"
            else:
                verdict = f"MISSED ({value:.2f}x)"
            print(f"  {name:<70} {verdict}")
    failures = [f for result in results for f in result[4]]
    if failures:
        print()
        print("  galley did not run:")
        for failure in failures:
            print(f"    {failure}")


if __name__ == "__main__":
    main()
