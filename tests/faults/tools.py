"""Tools of the fault suite: a deadline on how fast a fault is reported, a raw peer that speaks
the data wire format wrongly, a pickle trap, and access to a running graph's plan.

Detection times measured through :func:`deadline` are appended to the JSON-lines file named by
``CASCATA_FAULT_TIMES`` when it is set (the README's table of detection times comes from there).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import msgpack
import zmq

from cascata.transport import frames as wire
from tests.helpers import poll_for

from .ledger import read_flag

# Seconds within which every fault of this suite must be reported: the detection mechanisms
# (waitpid polling, a 5 s heartbeat limit, sequence checks) act within about one second, and
# the stop ladder after them takes at most a few; ten is "well above" and still "within seconds".
FAULT_DEADLINE = 10.0


@dataclass
class Timing:
    label: str
    started: float  # wall clock (time.time()), comparable with a flag file's mtime
    elapsed: float = 0.0

    def since_flag(self, flag_dir: str, name: str = "flag") -> None:
        """Count from the moment a component wrote its flag (the fault itself) instead."""
        self.started = os.stat(os.path.join(flag_dir, name)).st_mtime


@contextmanager
def deadline(label: str, bound: float = FAULT_DEADLINE) -> Iterator[Timing]:
    """Time the block (from the fault to the error), assert it took at most ``bound`` seconds,
    and record the figure."""
    timing = Timing(label, time.time())
    yield timing
    timing.elapsed = time.time() - timing.started
    assert timing.elapsed <= bound, f"{label}: reported after {timing.elapsed:.2f} s, over {bound} s"
    path = os.environ.get("CASCATA_FAULT_TIMES")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"case": label, "seconds": round(timing.elapsed, 3)}) + "\n")


def wait_flag(flag_dir: str, name: str = "flag", timeout: float = 20.0) -> int:
    """Wait until a component wrote progress flag ``name``; return the pid of its worker."""
    return poll_for(lambda: read_flag(flag_dir, name), timeout=timeout, interval=0.005)


# -- the running graph --------------------------------------------------------------------------


def running_plan(graph: Any) -> Any:
    """The plan of the run ``graph.start()`` began."""
    return graph._run.plan


def run_dir(graph: Any) -> str:
    return graph._run._run_dir


def data_endpoint(graph: Any, worker: int) -> str:
    """The address worker ``worker``'s data PULL socket is bound to."""
    return f"ipc://{run_dir(graph)}/d{worker}"


def inbound_edge(graph: Any, component: str) -> Any:
    """The first edge of the plan that feeds ``component`` from another worker."""
    for edge in running_plan(graph).edges:
        if edge.dst_component == component and edge.src_worker != edge.dst_worker:
            return edge
    raise AssertionError(f"no edge into {component} crosses workers")


# -- a raw peer ---------------------------------------------------------------------------------


class Trap:
    """An object whose unpickling creates the file ``path``: proof that something was unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def trap_body(path: str, size: int = 0) -> bytes:
    """A pickle that creates ``path`` when loaded, padded to ``size`` bytes (pickle stops
    reading at its STOP opcode, so the padding is ignored by a loader)."""
    import pickle

    body = pickle.dumps(Trap(path), protocol=5)
    return body + b"\0" * max(0, size - len(body))


def malformed(kind: str, edge: int, trap: str) -> list[bytes]:
    """The frames of one malformed message of ``kind`` aimed at ``edge``; any body is a trap."""
    body = trap_body(trap)
    header = [wire.VERSION, wire.DATA, edge, 0, 1, [len(body)], []]
    if kind == "garbage-header":
        return [b"\xc1 not msgpack", body]
    if kind == "truncated-header":
        return [msgpack.packb(header)[:-3], body]
    if kind == "truncated-body":
        return [msgpack.packb([*header[:5], [len(body) + 100], []]), body]
    if kind == "unknown-kind":
        return [msgpack.packb([wire.VERSION, 9, edge, 0]), body]
    if kind == "wrong-version":
        return [msgpack.packb([wire.VERSION + 41, *header[1:]]), body]
    if kind == "unknown-edge":
        return [msgpack.packb([*header[:2], 10_000, *header[3:]]), body]
    if kind == "gap":  # a replayed or stray batch: far ahead of what the edge expects
        return [msgpack.packb([*header[:3], 1_000_000, *header[4:]]), body]
    if kind == "packed-count":  # header and body disagree on how many values the batch holds
        return wire.encode_packed(edge, 0, 0, body)
    if kind == "duplicate-eos":  # an end of stream nobody sent: the real one follows later
        return wire.encode_eos(edge, 0)
    if kind == "eos-short":  # an end of stream that claims fewer items than arrived
        return [msgpack.packb([wire.VERSION, wire.EOS, edge, 0]), body]
    if kind == "too-large":  # one item over max_item_bytes, at the sequence the edge expects
        big = trap_body(trap, TOO_LARGE)
        return [msgpack.packb([*header[:5], [len(big)], []]), big]
    raise AssertionError(f"unknown malformed kind {kind!r}")


# max_item_bytes of the runs the raw peer talks to, and the size of its "too large" item.
RAW_MAX_ITEM_BYTES = 64 * 1024
TOO_LARGE = 4 * RAW_MAX_ITEM_BYTES
MALFORMED_KINDS = (
    "garbage-header",
    "truncated-header",
    "truncated-body",
    "unknown-kind",
    "wrong-version",
    "unknown-edge",
    "gap",
    "packed-count",
    "duplicate-eos",
    "eos-short",
    "too-large",
)


class RawPeer:
    """A real ZeroMQ PUSH socket connected to a worker's data port, sending what we choose."""

    def __init__(self, endpoint: str, timeout: float = 5.0) -> None:
        """Connect, and return once the ZeroMQ handshake with the worker is done, so what is
        sent next goes straight to it."""
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.PUSH)
        self.sock.setsockopt(zmq.LINGER, 2000)
        monitor = self.sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        try:
            self.sock.connect(endpoint)
            if not monitor.poll(int(timeout * 1000)):
                raise AssertionError(f"no handshake with {endpoint} within {timeout} s")
        finally:
            self.sock.disable_monitor()
            monitor.close(linger=0)

    def send(self, frames: Sequence[bytes]) -> None:
        self.sock.send_multipart(list(frames))

    def close(self) -> None:
        self.sock.close()  # linger: what was sent still goes out
        self.ctx.term()


def raw_stream(endpoint: str, data: bytes) -> None:
    """Connect a plain socket (no ZeroMQ) to ``endpoint`` (ipc:// or tcp://), write ``data``,
    read whatever comes back for a moment, and close."""
    scheme, _, where = endpoint.partition("://")
    if scheme == "ipc":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address: Any = where
    else:
        host, _, port = where.rpartition(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        address = (host, int(port))
    sock.settimeout(1.0)
    try:
        sock.connect(address)
        sock.sendall(data)
        try:
            sock.recv(4096)
        except (TimeoutError, OSError):
            pass
    finally:
        sock.close()
