#!/usr/bin/env python3
"""Startup benchmark: `galley run empty.rhai` against `bash -c true` and `python3 -c pass`.

Runs each command RUNS times (after warm-up runs), prints the medians and galley's ratio to each.
Targets (issue 2): galley median <= 5 ms and <= 5x bash.

    cargo build --release && python3 benches/startup.py [RUNS]
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GALLEY = os.path.join(ROOT, "target", "release", "galley")
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 30
WARMUP = 3


def median_ms(argv):
    for _ in range(WARMUP):
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    if not os.path.exists(GALLEY):
        sys.exit(f"build first: cargo build --release ({GALLEY} is missing)")
    with tempfile.TemporaryDirectory() as tmp:
        empty = os.path.join(tmp, "empty.rhai")
        open(empty, "w").close()
        results = {
            "galley run empty.rhai": median_ms([GALLEY, "run", empty, "--output", "plain"]),
            "bash -c true": median_ms(["bash", "-c", "true"]),
            "python3 -c pass": median_ms(["python3", "-c", "pass"]),
        }
    print(f"startup, median of {RUNS} runs each")
    for name, ms in results.items():
        print(f"  {name:<24} {ms:7.2f} ms")
    galley = results["galley run empty.rhai"]
    bash = results["bash -c true"]
    python = results["python3 -c pass"]
    print(f"  galley / bash    = {galley / bash:5.2f}x   (target <= 5x)")
    print(f"  galley / python3 = {galley / python:5.2f}x")
    verdict = "met" if galley <= 5.0 and galley / bash <= 5.0 else "NOT met"
    print(f"  target (<= 5 ms and <= 5x bash): {verdict}")


if __name__ == "__main__":
    main()
