"""cascata's side of the benchmarks: W1-W4 built with the public API and default settings.

Each workload runs in a fresh interpreter (``python benchmarks/cascata_impl.py w1 --n N``) that
prints one JSON line, as the raw baselines do, so neither side carries the harness's state.
Timing: items/s is N over the span from the source's first send to the sink's last item.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cascata import Graph, component, inport, outport, persist

try:  # run as a script: this directory is on sys.path
    import raw_credit
except ImportError:  # imported as benchmarks.cascata_impl
    from benchmarks import raw_credit

ROOT = Path(__file__).resolve().parent.parent
W1_N, W2_N, W3_N = 200_000, 20_000, 200
W2_WORK = 2000
W3_SIZE = 1_000_000


class BenchmarkError(RuntimeError):
    """A run gave a wrong result: never reported as a figure."""


@component
@inport("n")
@outport("out")
@persist("clock", lambda shared: shared)
async def Source(n, out, clock):
    clock.get()[0] = time.monotonic()
    for i in range(n):
        await out.send(i)

@component
@inport("x")
@outport("out")
async def AddOne(x, out):
    await out.send(x + 1)

@component
@inport("x")
@outport("out")
async def Work(x, out):
    await out.send(x + sum(range(W2_WORK)))

@component
@inport("x")
@persist("acc", lambda shared: shared)
async def Sum(x, acc):
    shared = acc.get()
    shared[1] = time.monotonic()
    shared[2] += x
    shared[3] += 1

@component
@inport("n")
@inport("size")
@outport("out")
@persist("clock", lambda shared: shared)
async def Arrays(n, size, out, clock):
    import numpy as np

    clock.get()[0] = time.monotonic()
    for i in range(n):
        await out.send(np.full(size, float(i)))

@component
@inport("x")
@outport("out")
async def Pass(x, out):
    await out.send(x)

@component
@inport("x")
@persist("acc", lambda shared: shared)
async def SumLast(x, acc):
    shared = acc.get()
    shared[1] = time.monotonic()
    shared[2] += float(x[-1])
    shared[3] += 1

def build_w1(n: int, shared: Any) -> Any:
    g = Graph()
    g.src = Source
    g.s1 = AddOne
    g.s2 = AddOne
    g.s3 = AddOne
    g.sink = Sum
    g.src.n < n
    g.src.clock < shared
    g.sink.acc < shared
    g.src.out >> g.s1.x
    g.s1.out >> g.s2.x
    g.s2.out >> g.s3.x
    g.s3.out >> g.sink.x
    return g

def build_w2(n: int, shared: Any) -> Any:
    g = Graph()
    g.src = Source
    g.ws = Work * 4
    g.sink = Sum
    g.src.n < n
    g.src.clock < shared
    g.sink.acc < shared
    g.src.out >> g.ws.x
    g.ws.out >> g.sink.x
    return g

def build_w3(n: int, shared: Any) -> Any:
    g = Graph()
    g.src = Arrays
    g.mid = Pass
    g.sink = SumLast
    g.src.n < n
    g.src.size < W3_SIZE
    g.src.clock < shared
    g.sink.acc < shared
    g.src.out >> g.mid.x
    g.mid.out >> g.sink.x
    return g

def build_w5(n: int, shared: Any, capacity: int) -> Any:
    """W1 with a given capacity on every inport fed by a stage: the edge between the two
    workers is then exact at ``capacity``, wherever placement cuts the pipeline."""
    g = build_w1(n, shared)
    for name in ("s1", "s2", "s3", "sink"):
        g.nodes[name].x.capacity = capacity
    return g


@component
@inport("x")
@inport("case")
@outport("out")
async def Uneven(x, case, out):
    await asyncio.sleep(_durations(case)[x])
    await out.send(x)


def _durations(case: str) -> list[float]:
    return raw_credit.durations(case, raw_credit.W6_N[case])


def build_w6(n: int, shared: Any, case: str) -> Any:
    """W6: n items into Uneven * 4; the random case declares capacity=1 on the members."""
    g = Graph()
    g.src = Source
    g.ws = Uneven * 4
    g.sink = Sum
    g.src.n < n
    g.src.clock < shared
    g.sink.acc < shared
    g.ws.case < case
    if case == "random":
        for member in g.ws.members:
            member.x.capacity = 1
    g.src.out >> g.ws.x
    g.ws.out >> g.sink.x
    return g


GRAPHS = {"w1": build_w1, "w2": build_w2, "w3": build_w3, "w5": build_w5, "w6": build_w6}


def _measure(workload: str, n: int, *extra: Any) -> dict[str, float]:
    """Run one workload in this process (called in the fresh interpreter)."""
    shared = multiprocessing.Array("d", 4, lock=False)  # t0, t1, sum, count
    graph = GRAPHS[workload](n, shared, *extra)
    started = time.perf_counter()
    graph.run()
    wall_s = time.perf_counter() - started
    expected = {
        "w1": (sum(range(n)) + 3 * n, n),
        "w2": (sum(range(n)) + n * sum(range(W2_WORK)), n),
        "w3": (float(sum(range(n))), n),
        "w5": (sum(range(n)) + 3 * n, n),
        "w6": (sum(range(n)), n),
    }[workload]
    if (shared[2], int(shared[3])) != expected:
        raise BenchmarkError(f"{workload}: got sum {shared[2]} of {shared[3]} items, expected {expected}")
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    extra_figures = {}
    if workload == "w6":  # stream time against the ideal: total work spread over 4 members
        extra_figures["vs_ideal"] = (shared[1] - shared[0]) / (sum(_durations(*extra)) / 4)
    return extra_figures | {
        "items_per_s": n / (shared[1] - shared[0]),
        "stream_s": shared[1] - shared[0],
        "wall_s": wall_s,
        # ru_maxrss of RUSAGE_CHILDREN is the peak of the largest reaped child (a worker), in KiB
        "peak_rss_mb": max(kids.ru_maxrss, own.ru_maxrss) / 1024,
        "cpu_s": own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime,
    }


def prepare() -> None:
    """Byte-compile the cascata package, as pip does when it installs a package: the fresh
    interpreters of W1-W4 then load bytecode, like pyzmq's on the raw side, even under an
    editable install with PYTHONDONTWRITEBYTECODE set (it is on these machines)."""
    import compileall

    import cascata

    compileall.compile_dir(str(Path(cascata.__file__).parent), quiet=1)


def _isolated(workload: str, n: int, *extra: Any) -> dict[str, float]:
    cmd = [sys.executable, str(Path(__file__).resolve()), workload, "--n", str(n)]
    cmd += [str(x) for x in extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    if proc.returncode != 0:
        raise BenchmarkError(f"{workload}: exit {proc.returncode}:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


def w1(n: int = W1_N) -> dict[str, float]:
    return _isolated("w1", n)


def w2(n: int = W2_N) -> dict[str, float]:
    return _isolated("w2", n)


def w3(n: int = W3_N) -> dict[str, float]:
    return _isolated("w3", n)


def w5(n: int, capacity: int) -> dict[str, float]:
    return _isolated("w5", n, capacity)


def w6(case: str) -> dict[str, float]:
    return _isolated("w6", raw_credit.W6_N[case], case)


W4_SCRIPT = """
from cascata import Graph, component, inport, outport

@component
@inport('n')
@outport('out')
async def Source(n, out):
    await out.send(n)

@component
@inport('x')
@outport('out')
async def Pass(x, out):
    await out.send(x)

@component
@inport('x')
async def Sink(x):
    assert x == 1
    print('ok')

g = Graph()
g.src = Source
g.mid = Pass
g.sink = Sink
g.src.n < 1
g.src.out >> g.mid.x
g.mid.out >> g.sink.x
g.run()
"""


def w4() -> dict[str, float]:
    """Wall time of a fresh interpreter running one item through source -> pass -> sink."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", W4_SCRIPT], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    wall_s = time.perf_counter() - started
    if proc.returncode != 0 or proc.stdout.strip() != "ok":
        raise BenchmarkError(f"w4: exit {proc.returncode}, stdout {proc.stdout!r}: {proc.stderr[-2000:]}")
    return {"wall_s": wall_s}


def main(argv: list[str]) -> None:
    workload = argv[0]
    n = int(argv[argv.index("--n") + 1]) if "--n" in argv else {"w1": W1_N, "w2": W2_N, "w3": W3_N}[workload]
    extra: list[Any] = argv[argv.index("--n") + 2 :] if "--n" in argv else []
    if workload == "w5":
        extra = [int(extra[0])]
    print(json.dumps(_measure(workload, n, *extra)))


if __name__ == "__main__":
    main(sys.argv[1:])
