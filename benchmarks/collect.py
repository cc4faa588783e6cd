"""What ``g.collect`` costs: 1 M small items collected by the caller, against the same run that
does not collect them.

Three ways a source's 1,000,000 ints can go, each a whole ``g.run()`` timed from the call to its
return (start-up and shutdown included), interleaved run by run so machine noise hits all alike:

- ``dropped``: the port is connected to nothing (the run without collecting);
- ``sink``: the items cross to a component in a second worker, which drops them;
- ``collected``: ``items = g.collect(src.out)``; afterwards ``items`` holds all 1 M.

Prints the median [min..max] of each and the ratios ``collected / dropped`` (the goal: at most
1.5) and ``collected / sink``. Then W1 (benchmarks/cascata_impl.py, N = 200,000) as it is and with
its last stage's output collected besides, items/s over the stream as run.py measures it.

    .venv/bin/python benchmarks/collect.py [--runs 3] [--n 1000000]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cascata_impl  # noqa: E402

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


def one_run(mode: str, n: int) -> tuple[float, float]:
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
    cpu = _cpu()
    started = time.perf_counter()
    g.run(num_workers=workers)
    elapsed = time.perf_counter() - started
    if items is not None and (len(items) != n or items[-1] != n - 1):
        raise RuntimeError(f"collected {len(items)} items, expected {n}")
    return elapsed, _cpu() - cpu


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (the workers): steadier than wall
    time on a busy machine."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def w1_run(collect: bool) -> float:
    """W1's items/s, its last stage's output collected or not."""
    import multiprocessing

    shared = multiprocessing.Array("d", 4, lock=False)
    n = cascata_impl.W1_N
    g = cascata_impl.build_w1(n, shared)
    items = Graph.collect(g, g.s3.out) if collect else None
    g.run()
    if shared[3] != n or (items is not None and len(items) != n):
        raise RuntimeError("W1 lost items")
    return n / (shared[1] - shared[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    modes = ("dropped", "sink", "collected")
    times: dict[str, list[float]] = {m: [] for m in modes}
    cpus: dict[str, list[float]] = {m: [] for m in modes}
    for run in range(args.runs):
        for mode in modes:
            wall, cpu = one_run(mode, args.n)
            times[mode].append(wall)
            cpus[mode].append(cpu)
            print(f"run {run + 1}/{args.runs} {mode}: {wall:.2f} s, {cpu:.2f} CPU s", file=sys.stderr)
    median = {m: statistics.median(t) for m, t in times.items()}
    cpu_median = {m: statistics.median(t) for m, t in cpus.items()}
    print(f"{args.n:,} small items, {args.runs} runs: wall s of g.run(); CPU s of all processes")
    for mode in modes:
        print(f"  {mode:<10} {median[mode]:6.2f} [{min(times[mode]):.2f}..{max(times[mode]):.2f}]"
              f"   CPU {cpu_median[mode]:6.2f}")
    for other in ("dropped", "sink"):
        print(f"  collected / {other:<8} wall {median['collected'] / median[other]:.2f}, "
              f"CPU {cpu_median['collected'] / cpu_median[other]:.2f}")
    w1: dict[str, list[float]] = {"plain": [], "collected": []}
    for run in range(args.runs):
        for mode in w1:
            w1[mode].append(w1_run(mode == "collected"))
            print(f"run {run + 1}/{args.runs} W1 {mode}: {w1[mode][-1]:,.0f} items/s", file=sys.stderr)
    w1_median = {m: statistics.median(r) for m, r in w1.items()}
    print(f"W1 ({cascata_impl.W1_N:,} items), items/s")
    for mode in w1:
        print(f"  {mode:<10} {w1_median[mode]:>9,.0f} [{min(w1[mode]):,.0f}..{max(w1[mode]):,.0f}]")
    print(f"  collected / plain: {w1_median['collected'] / w1_median['plain']:.2f}")


if __name__ == "__main__":
    main()
