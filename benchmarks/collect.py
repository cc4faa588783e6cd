"""What ``g.collect`` costs: 1 M small items collected by the caller, against the same run that
does not collect them.

Three ways a source's 1,000,000 ints can go, each a whole ``g.run()`` timed from the call to its
return (start-up and shutdown included), interleaved run by run so machine noise hits all alike:

- ``dropped``: the port is connected to nothing (the run without collecting);
- ``sink``: the items cross to a component in a second worker, which drops them;
- ``collected``: ``items = g.collect(src.out)``; afterwards ``items`` holds all 1 M.

Prints the median [min..max] of each and the ratios ``collected / dropped`` (the goal: at most
1.5) and ``collected / sink``.

    .venv/bin/python benchmarks/collect.py [--runs 3] [--n 1000000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cascata import Graph, component, inport, outport  # noqa: E402


@component
@inport("n")
@outport("out")
async def Numbers(n, out):
    for i in range(n):
        await out.send(i)


@component
@inport("x")
async def Drop(x):
    pass


def one_run(mode: str, n: int) -> float:
    g = Graph()
    g.src = Numbers
    g.src.n < n
    items = None
    workers = 1
    if mode == "collected":
        items = Graph.collect(g, g.src.out)
    elif mode == "sink":
        g.sink = Drop
        g.src.out >> g.sink.x
        workers = 2
    started = time.perf_counter()
    g.run(num_workers=workers)
    elapsed = time.perf_counter() - started
    if items is not None and (len(items) != n or items[-1] != n - 1):
        raise RuntimeError(f"collected {len(items)} items, expected {n}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    modes = ("dropped", "sink", "collected")
    times: dict[str, list[float]] = {m: [] for m in modes}
    for run in range(args.runs):
        for mode in modes:
            times[mode].append(one_run(mode, args.n))
            print(f"run {run + 1}/{args.runs} {mode}: {times[mode][-1]:.2f} s", file=sys.stderr)
    median = {m: statistics.median(t) for m, t in times.items()}
    print(f"{args.n:,} small items, {args.runs} runs, wall seconds of g.run()")
    for mode in modes:
        print(f"  {mode:<10} {median[mode]:6.2f} [{min(times[mode]):.2f}..{max(times[mode]):.2f}]")
    print(f"  collected / dropped: {median['collected'] / median['dropped']:.2f}")
    print(f"  collected / sink:    {median['collected'] / median['sink']:.2f}")


if __name__ == "__main__":
    main()
