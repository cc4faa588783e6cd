"""Remote start-up: a tiny two-component graph run again and again on one daemon on loopback.

    .venv/bin/python benchmarks/remote_start.py [--runs 10] [--processes 2]

Starts one ``cascata worker`` daemon on a free loopback port, runs ``source -> double`` (50
items) on it ``--runs`` times after one warm-up run, and prints the median, min and max of
``run()``'s wall time: what a run on a daemon costs before any real work (the daemon starting
the plan's worker processes, their loading the plan, the handshakes, the end of run). No root
needed. A wrong result is a failure, never a figure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from cascata import Graph  # noqa: E402
from cascata.transport.auth import generate_key_file  # noqa: E402
from tests.components import Double, Source  # noqa: E402
from tests.daemons import DaemonProcess  # noqa: E402

ITEMS = 50


def one_run(address: str, key_file: str) -> float:
    g = Graph()
    g.src = Source
    g.dbl = Double
    g.src.n < ITEMS
    g.src.out >> g.dbl.x
    items = g.collect(g.dbl.out)
    began = time.perf_counter()
    g.run(workers=[address], key_file=key_file)
    took = time.perf_counter() - began
    if sorted(items) != [2 * i for i in range(ITEMS)]:
        raise AssertionError(f"wrong result: {sorted(items)[:5]}...")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        key_file = str(Path(tmp) / "cluster.key")
        generate_key_file(key_file)
        daemon = DaemonProcess(key_file, args.processes)
        try:
            one_run(daemon.address, key_file)  # warm-up: caches, the daemon's first plan
            times = [one_run(daemon.address, key_file) for _ in range(args.runs)]
        finally:
            daemon.stop()
    print(
        f"remote start ({args.runs} runs, 2 components on one loopback daemon): "
        f"median {statistics.median(times):.3f} s [{min(times):.3f}..{max(times):.3f}]"
    )


if __name__ == "__main__":
    main()
