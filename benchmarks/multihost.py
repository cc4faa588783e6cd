"""W1 and W3 across two hosts made of network namespaces (needs root).

    sudo .venv/bin/python benchmarks/multihost.py [--runs 3] [--quick] [--only W1,W3]

Runs, interleaved so machine noise hits all alike:

- ``raw``: the raw pyzmq nodes of raw_zmq.py spread over two namespace hosts; a hop between
  hosts is TCP with CurveZMQ (keys from a cluster key file, ZAP allow-list, as cascata's), a
  hop within a host ipc, arrays sent zero-copy.  W1 places source and stage 1 on host A, stages
  2-3 and the sink on host B; W3 the source on A, pass-through and sink on B: one crossing each.
- ``raw-1host``: the same nodes on one host over ipc (raw_zmq.py as run.py runs it).

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

import raw_zmq  # noqa: E402
import run  # noqa: E402

from cascata.transport.auth import (  # noqa: E402
    ClusterKey,
    configure_client,
    configure_server,
    generate_key_file,
    load_key,
    start_authenticator,
)
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
    args = parser.parse_args(argv)
    keys = [k.strip().upper() for k in args.only.split(",")]
    if os.geteuid() != 0:
        print("benchmarks/multihost.py makes network namespaces, which needs root; run it as root "
              "(sudo .venv/bin/python benchmarks/multihost.py). Nothing was run.", file=sys.stderr)
        return 2
    print("\n".join(run.machine()[:3]))
    with tempfile.TemporaryDirectory(prefix="cascata-mh-key-") as key_dir, netns.Cluster(2) as pair:
        key_file = os.path.join(key_dir, "cluster.key")
        generate_key_file(key_file)
        hosts = dict(zip("AB", pair, strict=True))
        print(f"hosts: A {hosts['A'].address}, B {hosts['B'].address} (namespaces, one bridge)")
        impls: dict[str, dict[str, Callable[[int], dict[str, float]]]] = {
            "raw": {"W1": lambda n: raw_w1(n, hosts, key_file), "W3": lambda n: raw_w3(n, hosts, key_file)},
            "raw-1host": {"W1": raw_zmq.w1, "W3": raw_zmq.w3},
        }
        outcomes = measure(impls, keys, args.runs, args.quick)
    print()
    print("\n".join(run.table(outcomes, list(impls))))
    print("\nraw = raw pyzmq across 2 namespace hosts, TCP + CurveZMQ between them; "
          "raw-1host = raw pyzmq over ipc on one host")
    for key in keys:
        across = ratio(outcomes, key, "raw", "raw-1host")
        print(f"{key}: raw TCP+CURVE across hosts / raw ipc one host {across}")
    return 1 if any(o.error for by in outcomes.values() for o in by.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
