"""What the live progress view costs: W1 with its stderr on a terminal (progress on, its default
there) against W1 with stderr on a pipe (progress off), interleaved run by run.

Each run is ``benchmarks/cascata_impl.py w1`` in a fresh interpreter, as ``run.py`` does; the
terminal is a pseudo-terminal whose output this script reads and drops. Prints the median
[min..max] items/s of each and the ratio ``on / off`` (the goal: at least 0.97).

    .venv/bin/python benchmarks/progress.py [--runs 5] [--n 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import statistics
import subprocess
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cascata_impl  # noqa: E402


def one_run(n: int, terminal: bool) -> float:
    cmd = [sys.executable, str(HERE / "cascata_impl.py"), "w1", "--n", str(n)]
    env = dict(os.environ, COLUMNS="100", LINES="40", TERM="xterm")
    if not terminal:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=True)
        return json.loads(out.stdout.splitlines()[-1])["items_per_s"]
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, env=env, text=True)
    os.close(slave)
    drain = threading.Thread(target=_drain, args=(master,), daemon=True)
    drain.start()
    stdout, _ = proc.communicate(timeout=300)
    drain.join(timeout=5)
    os.close(master)
    if proc.returncode != 0:
        raise RuntimeError(f"w1 with progress failed: exit {proc.returncode}")
    return json.loads(stdout.splitlines()[-1])["items_per_s"]


def _drain(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 65536):
                return
        except OSError:
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--n", type=int, default=cascata_impl.W1_N)
    args = parser.parse_args()
    cascata_impl.prepare()
    rates: dict[str, list[float]] = {"off": [], "on": []}
    for run in range(args.runs):
        for mode in ("off", "on"):
            rates[mode].append(one_run(args.n, terminal=mode == "on"))
            print(f"run {run + 1}/{args.runs} progress {mode}: {rates[mode][-1]:,.0f} items/s",
                  file=sys.stderr)
    median = {m: statistics.median(r) for m, r in rates.items()}
    print(f"W1, N = {args.n:,}, {args.runs} runs, items/s")
    for mode in ("off", "on"):
        print(f"  progress {mode:<3} {median[mode]:>10,.0f} "
              f"[{min(rates[mode]):,.0f}..{max(rates[mode]):,.0f}]")
    print(f"  on / off: {median['on'] / median['off']:.3f}")


if __name__ == "__main__":
    main()
