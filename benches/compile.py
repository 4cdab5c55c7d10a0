#!/usr/bin/env python3
"""Compile time against recipe size: `galley check` of recipes made of N `let vI = I;` lines
(about 22 bytes each), for N doubling from 62,500 to 500,000 (1.3 MB to 10.8 MB). Prints the
CPU time (user + sys) and wall time of each and the ratio of CPU time to the previous size:
about 2.0 at each doubling means linear (it was about 4.0 before large recipes were compiled in
chunks, see docs/safety.md).

    cargo build --release && python3 benches/compile.py [target/release/galley]
"""

import os
import resource
import subprocess
import sys
import tempfile
import time


def main():
    galley = sys.argv[1] if len(sys.argv) > 1 else "target/release/galley"
    previous = None
    with tempfile.TemporaryDirectory(prefix="gcompile-") as tmp:
        for n in (62_500, 125_000, 250_000, 500_000):
            path = os.path.join(tmp, f"lets{n}.rhai")
            with open(path, "w") as f:
                f.writelines(f"let v{i} = {i};\n" for i in range(n))
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.monotonic()
            subprocess.run([galley, "check", path], check=True, stdout=subprocess.DEVNULL)
            wall = time.monotonic() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            ratio = f"{cpu / previous:.2f}x" if previous else "-"
            size = os.path.getsize(path) / 1e6
            print(f"{n:>8} lets  {size:5.1f} MB  cpu {cpu:6.2f} s  wall {wall:6.2f} s  ratio {ratio}")
            previous = cpu


if __name__ == "__main__":
    main()
