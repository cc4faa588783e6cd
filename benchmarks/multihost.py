"""W1 and W3 across two hosts made of network namespaces (needs root).

    sudo .venv/bin/python benchmarks/multihost.py [--runs 3] [--quick] [--only W1,W3]

Runs, interleaved so machine noise hits all alike:

- ``raw``: the raw pyzmq nodes of raw_zmq.py spread over two namespace hosts; a hop between
  hosts is TCP with CurveZMQ (keys from a cluster key file, ZAP allow-list, as cascata's), a
  hop within a host ipc, arrays sent zero-copy.  W1 places source and stage 1 on host A, stages
  2-3 and the sink on host B; W3 the source on A, pass-through and sink on B: one crossing each.
- ``raw-1host``: the same nodes on one host over ipc (raw_zmq.py as run.py runs it).
- ``cascata-2hosts``: the same graphs as cascata_impl.py on two ``cascata worker`` daemons, one
  per namespace host, the components pinned as the raw nodes are placed; the
  coordinator is this process, in the root namespace. The components travel by value (they are
  defined in ``__main__``). Stream time: the source's clock before its first item to the sink's
  after its last (CLOCK_MONOTONIC is one clock for every namespace of a machine).
- ``cascata-2h-auto``: W1 on the same daemons, placed by cascata itself (no pins).
- ``cascata-1host``: cascata_impl.py's W1/W3 with default settings on this machine.
- ``cascata-1h-same``: the W1 graph of ``cascata-2hosts`` (same components, same clocks) on
  local workers with default settings: the single-host figure the W1 goal divides by.

``--processes N`` fixes what each daemon offers (``cascata worker --processes N``). Without it
each daemon offers its default, the machine's CPUs, and since both namespace hosts are one
machine (one boot id) the coordinator shares its 2 CPUs between them: one worker process each,
as many as a single-host run starts. ``--processes 2`` offers 4 processes on 2 CPUs.

Goals (issue 11): W1 across hosts >= 0.7 x single-host cascata; W3 across hosts >= 0.8 x raw
TCP+CURVE.  Figures are medians with [min..max]; a wrong result is a failure, never a figure.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import cascata_impl  # noqa: E402
import raw_zmq  # noqa: E402
import run  # noqa: E402

from cascata import Graph, component, inport, outport, persist  # noqa: E402
from cascata.transport.auth import (  # noqa: E402
    ClusterKey,
    configure_client,
    configure_server,
    generate_key_file,
    load_key,
    start_authenticator,
)
from tests.components import Add, Pass  # noqa: E402
from tests.daemons import DaemonProcess  # noqa: E402
from tests.multihost import netns  # noqa: E402

CLONE_NEWNET = 0x40000000
# First TCP port of the hops between hosts (each namespace has its own ports: no clash).
BASE_PORT = 7800
W1_PLACEMENT = "AABBB"  # source, stage 1, stage 2, stage 3, sink
W3_PLACEMENT = "ABB"  # source, pass-through, sink


def enter_netns(name: str) -> None:
    """Move this (single-threaded, freshly forked) process into a network namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {name} failed")
    finally:
        os.close(fd)


class CurveNode(raw_zmq._Node):
    """A raw node whose tcp sockets use CurveZMQ with the cluster key; ipc ones stay plain."""

    def __init__(self, zctx: zmq.Context, barrier: Any, timeout_s: float, key: ClusterKey) -> None:
        super().__init__(zctx, barrier, timeout_s)
        self.key = key
        self.auth = start_authenticator(zctx, key)  # ends with the context (node.close)

    def socket(self, kind: int, *, bind: str | None = None, connect: str | None = None,
               hwm: int | None = None) -> zmq.Socket:
        sock = super().socket(kind, hwm=hwm)
        endpoint = bind or connect or ""
        if endpoint.startswith("tcp://"):
            (configure_server if bind else configure_client)(sock, self.key)
        if bind:
            sock.bind(bind)
        elif connect:
            sock.connect(connect)
        return sock


class Placed:
    """A raw role to run inside one host's namespace."""

    def __init__(self, role: Callable[..., dict[str, Any]], host: netns.Host, key_file: str) -> None:
        self.role, self.host, self.key_file = role, host, key_file
        self.__name__ = f"{role.__name__}@{host.address}"


def host_node_main(placed: Placed, args: tuple[Any, ...], barrier: Any, conn: Any, timeout_s: float) -> None:
    enter_netns(placed.host.netns)  # before the zmq context exists, so its threads live there too
    make_node = functools.partial(CurveNode, key=load_key(placed.key_file))
    raw_zmq._node_main(placed.role, args, barrier, conn, timeout_s, make_node)


def endpoints(placement: str, hosts: dict[str, netns.Host], ipc_dir: str) -> list[str]:
    """The input endpoint of nodes 1..n-1 (node 0 is the source): tcp on the receiving host's
    address where the hop crosses hosts, else ipc."""
    out = []
    for i in range(1, len(placement)):
        if placement[i] == placement[i - 1]:
            out.append(raw_zmq._endpoint(ipc_dir, f"in{i}"))
        else:
            out.append(f"tcp://{hosts[placement[i]].address}:{BASE_PORT + i}")
    return out


def raw_w1(n: int, hosts: dict[str, netns.Host], key_file: str) -> dict[str, float]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cascata-mh-") as ipc_dir:
        eps = endpoints(W1_PLACEMENT, hosts, ipc_dir)
        roles: list[tuple[Callable[..., dict[str, Any]], tuple[Any, ...]]] = [
            (raw_zmq._int_source, (eps[0], n))]
        roles += [(raw_zmq._add_stage, (eps[k], eps[k + 1], 1)) for k in range(raw_zmq.W1_STAGES)]
        roles.append((raw_zmq._sum_sink, (eps[-1], 1)))
        reports = _run_placed(roles, W1_PLACEMENT, hosts, key_file)
    raw_zmq._check(reports[-1], total=sum(range(n)) + raw_zmq.W1_STAGES * n, count=n, what="w1")
    return raw_zmq._stream_result(n, reports, time.perf_counter() - started)


def raw_w3(n: int, hosts: dict[str, netns.Host], key_file: str) -> dict[str, float]:
    import numpy  # noqa: F401  (imported once here; the forked nodes inherit it)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cascata-mh-") as ipc_dir:
        stage, sink = endpoints(W3_PLACEMENT, hosts, ipc_dir)
        roles = [(raw_zmq._array_source, (stage, n, raw_zmq.W3_SIZE)),
                 (raw_zmq._array_stage, (stage, sink)), (raw_zmq._array_sink, (sink,))]
        reports = _run_placed(roles, W3_PLACEMENT, hosts, key_file)
    raw_zmq._check(reports[-1], total=float(sum(range(n))), count=n, what="w3")
    return raw_zmq._stream_result(n, reports, time.perf_counter() - started)


def _run_placed(roles: list[Any], placement: str, hosts: dict[str, netns.Host],
                key_file: str) -> list[dict[str, Any]]:
    specs = [(Placed(role, hosts[p], key_file), args)
             for (role, args), p in zip(roles, placement, strict=True)]
    return raw_zmq._run_nodes(specs, raw_zmq.DEFAULT_TIMEOUT_S, target=host_node_main)


# --- cascata across hosts ---------------------------------------------------------------------


@component
@inport("n")
@inport("size", default=0)
@outport("out")
@outport("clock")
async def Emit(n, size, out, clock):
    """Sends 0..n-1, or with a size n float64 arrays of that many elements (array i filled
    with i); first sends its clock on ``clock``."""
    import numpy as np

    await clock.send(time.monotonic())
    for i in range(n):
        await out.send(np.full(size, float(i)) if size else i)


@component
@inport("x")
@outport("out")
@persist("acc", lambda n: [0, 0, n])
async def Total(x, out, acc):
    """Sums the items (an array counts its last element); after the n-th sends (its clock, the
    sum, the count)."""
    state = acc.get()
    state[0] += float(x[-1]) if hasattr(x, "shape") else x
    state[1] += 1
    if state[1] == state[2]:
        await out.send((time.monotonic(), state[0], state[1]))


def _cascata_run(g: Graph, source: Any, sink: Any, n: int, total: float, workers: list[str] | None,
                 key_file: str | None, pin: dict[str, str] | None) -> dict[str, float]:
    clocks, ends = g.collect(source.clock), g.collect(sink.out)
    started = time.perf_counter()
    if workers is None:
        g.run()
    else:
        g.run(workers=workers, key_file=key_file, pin=pin)
    wall_s = time.perf_counter() - started
    if len(ends) != 1 or ends[0][1:] != (total, n):
        raise raw_zmq.BenchmarkError(f"wrong result: {ends}, expected sum {total} of {n} items")
    stream_s = ends[0][0] - clocks[0]
    return {"items_per_s": n / stream_s, "stream_s": stream_s, "wall_s": wall_s}


def cascata_w1(
    n: int, daemons: dict[str, DaemonProcess] | None, key_file: str, split: bool = True
) -> dict[str, float]:
    """W1 on the two daemons: split as the raw nodes (AABBB), or placed by cascata itself;
    without daemons the same graph on local workers (default placement)."""
    g = Graph()
    g.src, g.s1, g.s2, g.s3, g.sink = Emit, Add, Add, Add, Total
    g.src.n < n
    g.sink.acc < n
    g.src.out >> g.s1.x
    g.s1.out >> g.s2.x
    g.s2.out >> g.s3.x
    g.s3.out >> g.sink.x
    names = ["src", "s1", "s2", "s3", "sink"]
    if daemons is None:
        return _cascata_run(g, g.src, g.sink, n, sum(range(n)) + 3 * n, None, None, None)
    pin = {name: daemons[p].address for name, p in zip(names, W1_PLACEMENT, strict=True)} if split else {}
    workers = [daemons["A"].address, daemons["B"].address]
    return _cascata_run(g, g.src, g.sink, n, sum(range(n)) + 3 * n, workers, key_file, pin)


def cascata_w3(n: int, daemons: dict[str, DaemonProcess], key_file: str) -> dict[str, float]:
    g = Graph()
    g.src, g.mid, g.sink = Emit, Pass, Total
    g.src.n < n
    g.src.size < raw_zmq.W3_SIZE
    g.sink.acc < n
    g.src.out >> g.mid.x
    g.mid.out >> g.sink.x
    pin = {name: daemons[p].address for name, p in zip(["src", "mid", "sink"], W3_PLACEMENT, strict=True)}
    workers = [daemons["A"].address, daemons["B"].address]
    return _cascata_run(g, g.src, g.sink, n, float(sum(range(n))), workers, key_file, pin)


def measure(impls: dict[str, dict[str, Callable[[int], dict[str, float]]]], keys: list[str],
            runs: int, quick: bool) -> dict[str, dict[str, run.Outcome]]:
    """Every implementation of every workload ``runs`` times, interleaved run by run."""
    outcomes: dict[str, dict[str, run.Outcome]] = {}
    for key in keys:
        n = run.size(run.WORKLOADS[key], quick)
        outcomes[key] = {name: run.Outcome() for name, fns in impls.items() if key in fns}
        for i in range(runs):
            for name, outcome in outcomes[key].items():
                if outcome.error is not None:
                    continue
                try:
                    result = impls[name][key](n)
                except Exception as exc:  # a failed or wrong run is never a figure
                    outcome.error = f"{type(exc).__name__}: {exc}"
                    print(f"  {key} {name}: FAILED: {outcome.error}", file=sys.stderr, flush=True)
                    continue
                outcome.results.append(result)
                print(f"  {key} {name:<12} run {i + 1}/{runs}: {result['items_per_s']:,.0f} items/s",
                      file=sys.stderr, flush=True)
    return outcomes


def ratio(outcomes: dict[str, dict[str, run.Outcome]], key: str, top: str, bottom: str) -> str:
    def median(impl: str) -> float | None:
        o = outcomes.get(key, {}).get(impl)
        return statistics.median(r["items_per_s"] for r in o.results) if o and o.results else None

    a, b = median(top), median(bottom)
    return f"{a / b:.2f}" if a and b else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="N / 10 (smoke test)")
    parser.add_argument("--only", default="W1,W3", help="W1, W3 or both")
    parser.add_argument("--processes", type=int, default=None,
                        help="worker processes each daemon offers, fixed (default: the daemon's "
                        "default, the CPUs, shared by daemons on one machine)")
    args = parser.parse_args(argv)
    keys = [k.strip().upper() for k in args.only.split(",")]
    if os.geteuid() != 0:
        print("benchmarks/multihost.py makes network namespaces, which needs root; run it as root "
              "(sudo .venv/bin/python benchmarks/multihost.py). Nothing was run.", file=sys.stderr)
        return 2
    print("\n".join(run.machine()[:3]))
    cascata_impl.prepare()
    with tempfile.TemporaryDirectory(prefix="cascata-mh-key-") as key_dir, netns.Cluster(2) as pair:
        key_file = os.path.join(key_dir, "cluster.key")
        generate_key_file(key_file)
        hosts = dict(zip("AB", pair, strict=True))
        daemons: dict[str, DaemonProcess] = {}
        try:
            for name, host in hosts.items():
                daemons[name] = DaemonProcess(key_file, args.processes, listen=f"{host.address}:7700",
                                              wrap=host.argv)
            print(f"hosts: A {daemons['A'].address}, B {daemons['B'].address} (namespaces, one bridge), "
                  f"{args.processes or 'the default number of'} worker process(es) offered by each")
            outcomes = measure(implementations(hosts, daemons, key_file), keys, args.runs, args.quick)
        finally:
            for daemon in daemons.values():
                daemon.stop()
    print()
    print("\n".join(run.table(outcomes, IMPLS)))
    print("\nraw = raw pyzmq across 2 namespace hosts, TCP + CurveZMQ between them; raw-1host = raw pyzmq "
          "over ipc on one host; cascata-2hosts = two daemons in those hosts, pinned as raw; "
          "cascata-2h-auto = the same, placed by cascata; cascata-1host = run.py's cascata W1 (a fresh "
          "interpreter); cascata-1h-same = the graph of cascata-2hosts on local workers (default placement)")
    print("goals:")
    if "W1" in keys:
        for across in ("cascata-2hosts", "cascata-2h-auto"):
            w1 = ratio(outcomes, "W1", across, "cascata-1h-same")
            also = ratio(outcomes, "W1", across, "cascata-1host")
            print(f"  W1 {across} / cascata one host, same graph {w1} (goal >= 0.7); "
                  f"/ run.py's cascata W1 {also}")
    if "W3" in keys:
        w3 = ratio(outcomes, "W3", "cascata-2hosts", "raw")
        print(f"  W3 cascata across hosts / raw TCP+CURVE {w3} (goal >= 0.8)")
    return 1 if any(o.error for by in outcomes.values() for o in by.values()) else 0


IMPLS = ["raw", "raw-1host", "cascata-2hosts", "cascata-2h-auto", "cascata-1host", "cascata-1h-same"]


def implementations(hosts: dict[str, netns.Host], daemons: dict[str, DaemonProcess],
                    key_file: str) -> dict[str, dict[str, Callable[[int], dict[str, float]]]]:
    return {
        "raw": {"W1": lambda n: raw_w1(n, hosts, key_file), "W3": lambda n: raw_w3(n, hosts, key_file)},
        "raw-1host": {"W1": raw_zmq.w1, "W3": raw_zmq.w3},
        "cascata-2hosts": {"W1": lambda n: cascata_w1(n, daemons, key_file),
                           "W3": lambda n: cascata_w3(n, daemons, key_file)},
        "cascata-2h-auto": {"W1": lambda n: cascata_w1(n, daemons, key_file, split=False)},
        "cascata-1host": {"W1": cascata_impl.w1, "W3": cascata_impl.w3},
        "cascata-1h-same": {"W1": lambda n: cascata_w1(n, None, key_file)},
    }


if __name__ == "__main__":
    sys.exit(main())
