#!/usr/bin/env python3
"""Swarm benchmark: time from deploy to converged for a 3-replica service updated from v1 to v2,
Galley's `sw.service(name).deploy(...)` (which waits for the rollout itself) against
`docker service update --detach --no-resolve-image --image ...` followed by a shell loop polling
`docker service ps` and the update state every 100 ms (the same engine, images and spec: a
HEALTHCHECK every 500 ms, start-first, parallelism 1, monitor 500 ms).

"Converged" is what Galley waits for: 3 tasks of v2 running (healthy) and Swarm's update
`completed` (Swarm marks it so one monitor period after the last task). The loop's time to the
first moment all 3 tasks run v2 is printed too. Galley's overhead is its median minus the loop's.

Initialises a single-node swarm when the Engine is in none (and leaves it at the end); builds the
images from Debian's busybox-static; removes the service and images at the end.

    cargo build --release && python3 benches/swarm.py [RUNS]
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
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
NAME = f"galley-bench-swarm-{os.getpid()}"

RECIPE = """let svc = local().swarm().service("@NAME@");
svc.deploy(#{
    image: params.image, replicas: 3, ports: ["mode=host,target=8080"],
    update: #{ order: "start-first", parallelism: 1, monitor: "500ms" },
    stop_grace_period: "1s", timeout: "2m",
});
""".replace("@NAME@", NAME)

LOOP = r"""service=$1 image=$2 start=$(date +%s.%N)
docker service update --detach --no-resolve-image --image "$image" "$service" >/dev/null
converged=
while :; do
  state=$(docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "$service")
  n=$(docker service ps "$service" --filter desired-state=running --format '{{.Image}} {{.CurrentState}}' | grep -c "^$image Running")
  if [ "$n" = 3 ] && [ -z "$converged" ]; then converged=$(date +%s.%N); fi
  if [ "$n" = 3 ] && [ "$state" = completed ]; then break; fi
  sleep 0.1
done
echo "$start $converged $(date +%s.%N)"
"""


def sh(*argv, **kw):
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, **kw)


def galley(recipe, image):
    start = time.perf_counter()
    subprocess.run([GALLEY, "run", "--output", "plain", recipe, "--set", f"image={image}"],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    if not os.path.exists(GALLEY):
        sys.exit(f"build first: cargo build --release ({GALLEY} is missing)")
    if not os.path.exists("/bin/busybox"):
        sys.exit("needs Debian's busybox-static (/bin/busybox)")
    state = sh("docker", "info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
    created_swarm = state != "active"
    if created_swarm:
        sh("docker", "swarm", "init", "--advertise-addr", "127.0.0.1")
    tags = [f"{NAME}:v1", f"{NAME}:v2"]
    with tempfile.TemporaryDirectory() as tmp:
        ctx = os.path.join(tmp, "ctx")
        os.mkdir(ctx)
        shutil.copy("/bin/busybox", ctx)
        try:
            for tag, version in zip(tags, ["v1", "v2"]):
                with open(os.path.join(ctx, "Dockerfile"), "w") as f:
                    f.write(
                        "FROM scratch\nCOPY busybox /bin/busybox\n"
                        'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
                        f"RUN mkdir /www && echo {version} > /www/index.html && echo ok > /www/health\n"
                        "HEALTHCHECK --interval=500ms --timeout=2s --retries=3 "
                        "CMD wget -q -O /dev/null http://127.0.0.1:8080/health || exit 1\n"
                        'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n'
                    )
                sh("docker", "build", "-q", "-t", tag, ctx, env={**os.environ, "DOCKER_BUILDKIT": "0"})
            recipe = os.path.join(tmp, "deploy.rhai")
            with open(recipe, "w") as f:
                f.write(RECIPE)
            loop = os.path.join(tmp, "loop.sh")
            with open(loop, "w") as f:
                f.write(LOOP)
            galley(recipe, tags[0])  # create the service at v1
            galley_times, loop_done, loop_tasks = [], [], []
            for _ in range(RUNS):
                galley_times.append(galley(recipe, tags[1]))
                galley(recipe, tags[0])  # back to v1, not timed
                start, converged, done = map(float, sh("sh", loop, NAME, tags[1]).stdout.split())
                loop_tasks.append(converged - start)
                loop_done.append(done - start)
                galley(recipe, tags[0])
        finally:
            subprocess.run(["docker", "service", "rm", NAME], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.time() + 30
            while time.time() < deadline and subprocess.run(
                ["docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={NAME}"],
                stdout=subprocess.PIPE, text=True).stdout.strip():
                time.sleep(0.2)
            subprocess.run(["docker", "rmi", "-f", *tags], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if created_swarm:
                subprocess.run(["docker", "swarm", "leave", "--force"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    g, l, t = (statistics.median(x) for x in (galley_times, loop_done, loop_tasks))
    print(f"swarm, 3 replicas v1 -> v2 (start-first, parallelism 1, monitor 500ms), median of {RUNS} runs")
    print(f"  galley run (deploy, waits itself)             {g:7.2f} s")
    print(f"  docker service update + ps loop: completed    {l:7.2f} s")
    print(f"    (all 3 tasks on v2 running, before Swarm's final monitor period: {t:.2f} s)")
    print(f"  Galley's overhead over Swarm's convergence    {g - l:+7.2f} s ({(g / l - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    main()
