#!/usr/bin/env python3
"""Docker benchmark: 10 `status` queries through Galley (Engine API, one process) against 10
`docker inspect` CLI calls, on the machine's Docker Engine.

Builds a tiny image from Debian's busybox-static (no pull needed), starts one container, measures
each side RUNS times (after a warm-up) and prints the medians and the ratio, then removes the
container and the image. Target (issue 4): Galley >= 5x faster.

    cargo build --release && python3 benches/docker.py [RUNS]
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GALLEY = os.path.join(ROOT, "target", "release", "galley")
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
QUERIES = 10
NAME = f"galley-bench-{os.getpid()}"


def sh(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def median_ms(argv, env=None):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    if not os.path.exists(GALLEY):
        sys.exit(f"build first: cargo build --release ({GALLEY} is missing)")
    if not os.path.exists("/bin/busybox"):
        sys.exit("needs Debian's busybox-static (/bin/busybox)")
    with tempfile.TemporaryDirectory() as tmp:
        ctx = os.path.join(tmp, "ctx")
        os.mkdir(ctx)
        shutil.copy("/bin/busybox", ctx)
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write('FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "sleep", "3600"]\n')
        try:
            sh("docker", "build", "-q", "-t", f"{NAME}:1", ctx)
            sh("docker", "run", "-d", "--name", NAME, f"{NAME}:1")
            recipe = os.path.join(tmp, "status.rhai")
            with open(recipe, "w") as f:
                f.write("let d = local().docker();\n")
                f.write(f'for i in 0..{QUERIES} {{ d.status("{NAME}"); }}\n')
            loop = os.path.join(tmp, "inspect.sh")
            with open(loop, "w") as f:
                f.write("".join(f"docker inspect {NAME} >/dev/null\n" for _ in range(QUERIES)))
            galley = median_ms([GALLEY, "run", "--output", "plain", recipe])
            cli = median_ms(["bash", loop])
        finally:
            subprocess.run(["docker", "rm", "-f", NAME], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            subprocess.run(["docker", "rmi", "-f", f"{NAME}:1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ratio = cli / galley
    print(f"docker, median of {RUNS} runs each, {QUERIES} queries of one container's state")
    print(f"  galley run: {QUERIES} x d.status()         {galley:8.1f} ms")
    print(f"  bash: {QUERIES} x docker inspect           {cli:8.1f} ms")
    print(f"  ratio (CLI / galley)                {ratio:8.2f}x")
    print(f"  target >= 5x: {'met' if ratio >= 5 else 'MISSED'}")


if __name__ == "__main__":
    main()
