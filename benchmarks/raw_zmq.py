"""Raw pyzmq baselines for the cascata benchmarks.

Each workload is wired by hand from nothing but pyzmq, pickle and ``multiprocessing``: one OS
process per node, PUSH/PULL over ``ipc://`` endpoints in a private temporary directory, one
zmq message per item and an explicit end-of-stream (EOS) message.  These are the numbers a
cascata graph doing the same work is compared against (see ``run.py`` and ``README.md``).

Every workload function checks its result and raises :class:`BenchmarkError` on a wrong sum
or item count, so a broken run never turns into a figure.  W1-W3 return::

    {"items_per_s": n / stream_s,  # throughput while streaming
     "stream_s": ...,              # first item emitted at the source -> last EOS at the sink
     "wall_s": ...,                # node start-up + streaming + shutdown (all nodes exited)
     "peak_rss_mb": ...,           # max over the node processes of their own peak RSS
     "cpu_s": ...}                 # user + system CPU time of all the nodes together

and W4 returns ``{"wall_s": ...}``: a fresh interpreter pushing one item through
source -> pass-through -> sink, timed from before it starts to after it exits.

By default W1-W3 run in a fresh interpreter (``isolated=True``) that forks the nodes, so the
figures do not depend on what the calling process holds; that interpreter's own start-up is
not in any figure.  Command line: ``python raw_zmq.py w1|w2|w3 [--n N]`` runs one workload
in-process and prints its result as JSON; ``python raw_zmq.py w4`` is the one-item pipeline
process that :func:`w4` times.
"""

from __future__ import annotations

# argparse, json and subprocess are imported where they are used: the process W4 times
# should start as lean as a hand-written one would.
import multiprocessing as mp
import pickle
import resource
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import zmq

W1_N = 200_000
W1_STAGES = 3
W2_N = 20_000
W2_WORKERS = 4
W2_WORK = 2_000  # each worker computes x + sum(range(W2_WORK)) per item
W3_N = 200
W3_SIZE = 1_000_000  # float64 elements per array: 8 MB
W3_HWM = 10  # SNDHWM/RCVHWM on the W3 links, in messages (8 MB each)

DEFAULT_TIMEOUT_S = 60.0

_EOS = b""  # an empty message is never a valid pickle, so it can mark the end of a stream
_PROTO = pickle.HIGHEST_PROTOCOL
_SEND_LINGER_MS = 5_000  # long enough to flush the tail of a stream, bounded if a peer is gone
_RECONNECT_IVL_MS = 10  # belt and braces: every PULL is bound before anyone connects
_PARENT_GRACE_S = 5.0  # the parent outwaits the nodes' own time limits
_IPC_PATH_MAX = 100  # sockaddr_un.sun_path is 108 bytes on Linux, 104 on macOS


class BenchmarkError(RuntimeError):
    """A run failed or produced a wrong result; it must not be reported as a figure."""


# --------------------------------------------------------------------------------------------
# Inside a node process
# --------------------------------------------------------------------------------------------


class _Node:
    """What a node process works with: its zmq context, the barrier, the time limit."""

    def __init__(self, zctx: zmq.Context, barrier: Any, timeout_s: float) -> None:
        self.zctx = zctx
        self.barrier = barrier
        self.timeout_s = timeout_s
        self.sockets: list[zmq.Socket] = []

    def socket(
        self,
        kind: int,
        *,
        bind: str | None = None,
        connect: str | None = None,
        hwm: int | None = None,
    ) -> zmq.Socket:
        sock = self.zctx.socket(kind)
        self.sockets.append(sock)
        limit_ms = int(self.timeout_s * 1000)
        sock.setsockopt(zmq.RCVTIMEO, limit_ms)  # a dead peer ends in an error, not a hang
        sock.setsockopt(zmq.SNDTIMEO, limit_ms)
        sock.setsockopt(zmq.RECONNECT_IVL, _RECONNECT_IVL_MS)
        sock.setsockopt(zmq.LINGER, _SEND_LINGER_MS if kind == zmq.PUSH else 0)
        if hwm is not None:
            sock.setsockopt(zmq.SNDHWM, hwm)
            sock.setsockopt(zmq.RCVHWM, hwm)
        if bind is not None:
            sock.bind(bind)
        if connect is not None:
            sock.connect(connect)
        return sock

    def all_bound(self) -> None:
        """Wait until every node has bound its sockets, so that no connect races a bind."""
        self.barrier.wait(self.timeout_s)

    def all_done(self) -> None:
        """Wait until every node, the sink included, has seen the end of its stream.

        Nobody may close a connection before that.  With libzmq 4.3.5 over ipc://, a PUSH that
        closes (LINGER or not) while its peer PULL is at RCVHWM loses the tail of the stream:
        the receiver stops reading at the HWM, the sender's data sits in the kernel buffer and
        counts as sent, and when the hang-up arrives the receiver drops the connection with
        that data unread (cf. zeromq/libzmq#4660).
        """
        self.barrier.wait(self.timeout_s)

    def close(self, linger_ms: int | None = None) -> None:
        """Close every socket (with its own LINGER unless `linger_ms`), then the context."""
        for sock in self.sockets:
            sock.close(linger=linger_ms)
        self.zctx.destroy(linger=0)  # strays (a monitor socket left by an error), then term


def _node_main(
    role: Callable[..., dict[str, Any]],
    args: tuple[Any, ...],
    barrier: Any,
    conn: Connection,
    timeout_s: float,
    make_node: Callable[..., _Node] = _Node,
) -> None:
    """Entry point of every node process: run ``role``, send its report to the parent.

    ``make_node`` lets a variant (multihost.py: CurveZMQ on tcp) set up sockets its own way."""
    node = make_node(zmq.Context(), barrier, timeout_s)
    try:
        try:
            report = role(node, *args)
            node.all_done()
        except BaseException:
            barrier.abort()  # the other nodes fail at once instead of timing out
            node.close(linger_ms=0)
            raise
        node.close()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        # ru_maxrss is in KiB on Linux.  A node is forked, never exec'd, so this is its own
        # peak (across an execve, Linux carries the parent's peak over into ru_maxrss).
        report["rss_mb"] = usage.ru_maxrss / 1024.0
        report["cpu_s"] = usage.ru_utime + usage.ru_stime  # all its threads, zmq's included
        conn.send(report)
    except BaseException:
        conn.send({"error": f"{role.__name__} failed:\n{traceback.format_exc()}"})
    finally:
        conn.close()


def _sum_sink(node: _Node, in_ep: str, eos_expected: int) -> dict[str, Any]:
    pull = node.socket(zmq.PULL, bind=in_ep)
    node.all_bound()
    loads = pickle.loads
    total = count = eos = 0
    while eos < eos_expected:
        msg = pull.recv()
        if msg == _EOS:
            eos += 1
            continue
        total += loads(msg)
        count += 1
    return {"t1": time.monotonic(), "sum": total, "count": count}


def _int_source(node: _Node, out_ep: str, n: int) -> dict[str, Any]:
    node.all_bound()
    push = node.socket(zmq.PUSH, connect=out_ep)
    dumps, proto = pickle.dumps, _PROTO
    t0 = time.monotonic()  # CLOCK_MONOTONIC on Linux: one clock shared by all processes
    for i in range(n):
        push.send(dumps(i, proto))
    push.send(_EOS)
    return {"t0": t0}


def _add_stage(node: _Node, in_ep: str, out_ep: str, add: int) -> dict[str, Any]:
    pull = node.socket(zmq.PULL, bind=in_ep)
    node.all_bound()
    push = node.socket(zmq.PUSH, connect=out_ep)
    dumps, loads, proto = pickle.dumps, pickle.loads, _PROTO
    while True:
        msg = pull.recv()
        if msg == _EOS:
            push.send(_EOS)
            return {}
        push.send(dumps(loads(msg) + add, proto))


def _fan_source(node: _Node, out_ep: str, n: int, workers: int) -> dict[str, Any]:
    # SNDHWM=0 (no limit): a PUSH skips peers whose pipe is full, so with a finite HWM the
    # closing EOS messages could land two on one worker and none on another.  With no limit,
    # and every worker's pipe attached before the first send, round-robin is strict and the
    # last `workers` messages go to `workers` distinct workers.  20,000 small pickles buffer
    # in well under 1 MB.
    push = node.socket(zmq.PUSH, bind=out_ep, hwm=0)
    monitor = push.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    monitor.setsockopt(zmq.RCVTIMEO, int(node.timeout_s * 1000))
    node.all_bound()
    for _ in range(workers):
        monitor.recv_multipart()  # one handshake per worker connection
    push.disable_monitor()
    monitor.close(linger=0)
    # The session attaches a pipe to the socket just before it reports the handshake;
    # reading EVENTS makes the socket process those pending attach commands now.
    push.getsockopt(zmq.EVENTS)
    dumps, proto = pickle.dumps, _PROTO
    t0 = time.monotonic()
    for i in range(n):
        push.send(dumps(i, proto))
    for _ in range(workers):
        push.send(_EOS)
    return {"t0": t0}


def _fan_worker(node: _Node, in_ep: str, out_ep: str, work: int) -> dict[str, Any]:
    node.all_bound()
    push = node.socket(zmq.PUSH, connect=out_ep)
    pull = node.socket(zmq.PULL, connect=in_ep)
    dumps, loads, proto = pickle.dumps, pickle.loads, _PROTO
    count = 0
    while True:
        msg = pull.recv()
        if msg == _EOS:
            push.send(_EOS)
            return {"items": count}
        push.send(dumps(loads(msg) + sum(range(work)), proto))
        count += 1


def _array_header(arr: Any) -> bytes:
    return pickle.dumps((arr.dtype.str, arr.shape), _PROTO)


def _array_from(frames: list[zmq.Frame]) -> Any:
    import numpy as np

    dtype, shape = pickle.loads(frames[0].bytes)
    return np.frombuffer(frames[1].buffer, dtype=dtype).reshape(shape)


def _is_eos(frames: list[zmq.Frame]) -> bool:
    return len(frames) == 1 and frames[0].bytes == _EOS


def _array_source(node: _Node, out_ep: str, n: int, size: int) -> dict[str, Any]:
    import numpy as np

    node.all_bound()
    push = node.socket(zmq.PUSH, connect=out_ep, hwm=W3_HWM)
    t0 = time.monotonic()
    for i in range(n):
        arr = np.full(size, i, dtype=np.float64)
        # zero-copy: libzmq sends straight from the array's buffer and pyzmq keeps the
        # array alive until libzmq is done with it
        push.send_multipart([_array_header(arr), memoryview(arr)], copy=False)
    push.send(_EOS)
    return {"t0": t0}


def _array_stage(node: _Node, in_ep: str, out_ep: str) -> dict[str, Any]:
    pull = node.socket(zmq.PULL, bind=in_ep, hwm=W3_HWM)
    node.all_bound()
    push = node.socket(zmq.PUSH, connect=out_ep, hwm=W3_HWM)
    while True:
        frames = pull.recv_multipart(copy=False)
        if _is_eos(frames):
            push.send(_EOS)
            return {}
        arr = _array_from(frames)  # what a user's pass-through function would be handed
        push.send_multipart([_array_header(arr), memoryview(arr)], copy=False)


def _array_sink(node: _Node, in_ep: str) -> dict[str, Any]:
    pull = node.socket(zmq.PULL, bind=in_ep, hwm=W3_HWM)
    node.all_bound()
    total = 0.0
    count = 0
    while True:
        frames = pull.recv_multipart(copy=False)
        if _is_eos(frames):
            return {"t1": time.monotonic(), "sum": total, "count": count}
        total += float(_array_from(frames)[-1])
        count += 1


# --------------------------------------------------------------------------------------------
# In the calling process
# --------------------------------------------------------------------------------------------

_NodeSpec = tuple[Callable[..., dict[str, Any]], tuple[Any, ...]]


@contextmanager
def _private_dir(tag: str, path: str | None = None) -> Iterator[str]:
    """A private directory for ipc:// endpoints (mkdtemp makes it 0700), removed afterwards.

    Given `path` (made by a caller that removes it itself), that directory is used as is.
    """
    if path is not None:
        yield path
        return
    path = tempfile.mkdtemp(prefix=f"cascata-raw-{tag}-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _endpoint(directory: str, name: str) -> str:
    sock_path = f"{directory}/{name}"
    if len(sock_path.encode()) > _IPC_PATH_MAX:
        raise BenchmarkError(f"ipc path too long ({sock_path!r}); set a shorter TMPDIR")
    return f"ipc://{sock_path}"


def _collect(readers: list[Connection], timeout_s: float) -> list[dict[str, Any]]:
    """One report per node, in order; raises on the first failure (root cause first)."""
    deadline = time.monotonic() + timeout_s
    reports: dict[int, dict[str, Any]] = {}
    errors: list[str] = []
    while len(reports) < len(readers):
        pending = [r for i, r in enumerate(readers) if i not in reports]
        ready = wait(pending, timeout=max(deadline - time.monotonic(), 0.0))
        if not ready:
            break
        for reader in ready:
            try:
                report = reader.recv()
            except EOFError:
                report = {"error": "a node process died without reporting"}
            reports[readers.index(reader)] = report
            if "error" in report:
                errors.append(report["error"])
                # the others fail soon after (broken barrier); give them a moment to say so
                deadline = min(deadline, time.monotonic() + 1.0)
    if errors:
        errors.sort(key=lambda e: "BrokenBarrierError" in e)  # the cause, not the echoes
        raise BenchmarkError("\n".join(errors))
    if len(reports) < len(readers):
        raise BenchmarkError(f"timed out after {timeout_s:.0f} s waiting for the nodes")
    return [reports[i] for i in range(len(readers))]


def _run_nodes(
    specs: list[_NodeSpec], timeout_s: float, target: Callable[..., None] = _node_main
) -> list[dict[str, Any]]:
    """Fork one process per spec; return their reports in order.  Nothing outlives the call.

    ``target`` runs in each process with ``_node_main``'s arguments (multihost.py enters a
    network namespace first)."""
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(len(specs))
    procs: list[Any] = []
    readers: list[Connection] = []
    try:
        for role, args in specs:
            reader, writer = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=target,
                args=(role, args, barrier, writer, timeout_s),
                name=f"raw_zmq:{role.__name__}",
                daemon=True,
            )
            proc.start()
            writer.close()
            procs.append(proc)
            readers.append(reader)
        reports = _collect(readers, timeout_s + _PARENT_GRACE_S)
        for proc in procs:
            proc.join(timeout_s)
            if proc.exitcode != 0:
                raise BenchmarkError(f"{proc.name} exited with {proc.exitcode}")
        return reports
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
            proc.join()
            proc.close()
        for reader in readers:
            reader.close()


def _check(sink: dict[str, Any], *, total: float, count: int, what: str) -> None:
    if sink["count"] != count or sink["sum"] != total:
        raise BenchmarkError(
            f"{what}: wrong result: {sink['count']} items summing to {sink['sum']!r}, "
            f"expected {count} items summing to {total!r}"
        )


def _stream_result(n: int, reports: list[dict[str, Any]], wall_s: float) -> dict[str, float]:
    stream_s = reports[-1]["t1"] - reports[0]["t0"]  # source first, sink last
    return {
        "items_per_s": n / stream_s,
        "stream_s": stream_s,
        "wall_s": wall_s,
        "peak_rss_mb": max(r["rss_mb"] for r in reports),
        "cpu_s": sum(r["cpu_s"] for r in reports),
    }


def _isolated(workload: str, n: int, timeout_s: float) -> dict[str, float]:
    """Run a workload in a fresh interpreter that forks its nodes; return its result.

    The nodes are then forked from a small single-threaded process, whatever the caller
    holds (cascata, threads, big arrays): their start-up stays a few ms and their RSS is
    their own.  The interpreter's own start-up is outside every figure.
    """
    import json
    import subprocess

    with _private_dir(workload) as directory:
        cmd = [sys.executable, str(Path(__file__).resolve()), workload, "--n", str(n)]
        cmd += ["--timeout", str(timeout_s), "--ipc-dir", directory]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s + 3 * _PARENT_GRACE_S)
    if proc.returncode != 0:
        raise BenchmarkError(f"{workload}: exit {proc.returncode}:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


def w1(
    n: int = W1_N,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    isolated: bool = True,
    ipc_dir: str | None = None,
) -> dict[str, float]:
    """W1 pipeline: 0..n-1 -> +1 -> +1 -> +1 -> sum, five processes, one message per item."""
    if isolated:
        return _isolated("w1", n, timeout_s)
    started = time.perf_counter()
    with _private_dir("w1", ipc_dir) as directory:
        inputs = [_endpoint(directory, f"stage{k}") for k in range(W1_STAGES)]
        inputs.append(_endpoint(directory, "sink"))
        specs: list[_NodeSpec] = [(_int_source, (inputs[0], n))]
        specs += [(_add_stage, (inputs[k], inputs[k + 1], 1)) for k in range(W1_STAGES)]
        specs.append((_sum_sink, (inputs[-1], 1)))
        reports = _run_nodes(specs, timeout_s)
    wall_s = time.perf_counter() - started
    _check(reports[-1], total=sum(range(n)) + W1_STAGES * n, count=n, what="w1")
    return _stream_result(n, reports, wall_s)


def w2(
    n: int = W2_N,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    isolated: bool = True,
    ipc_dir: str | None = None,
) -> dict[str, float]:
    """W2 fan-out: 0..n-1 round-robined over 4 workers (x + sum(range(2000))), merged, summed."""
    if isolated:
        return _isolated("w2", n, timeout_s)
    started = time.perf_counter()
    with _private_dir("w2", ipc_dir) as directory:
        src, sink = _endpoint(directory, "source"), _endpoint(directory, "sink")
        specs: list[_NodeSpec] = [(_fan_source, (src, n, W2_WORKERS))]
        specs += [(_fan_worker, (src, sink, W2_WORK))] * W2_WORKERS
        specs.append((_sum_sink, (sink, W2_WORKERS)))
        reports = _run_nodes(specs, timeout_s)
    wall_s = time.perf_counter() - started
    _check(reports[-1], total=sum(range(n)) + n * sum(range(W2_WORK)), count=n, what="w2")
    return _stream_result(n, reports, wall_s)


def w3(
    n: int = W3_N,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    isolated: bool = True,
    ipc_dir: str | None = None,
) -> dict[str, float]:
    """W3 payload: n 8 MB float64 arrays (array i filled with i) -> pass-through -> sink."""
    if isolated:
        return _isolated("w3", n, timeout_s)
    import numpy  # noqa: F401  (imported once here; the forked nodes inherit it)

    started = time.perf_counter()
    with _private_dir("w3", ipc_dir) as directory:
        stage, sink = _endpoint(directory, "stage"), _endpoint(directory, "sink")
        specs: list[_NodeSpec] = [
            (_array_source, (stage, n, W3_SIZE)),
            (_array_stage, (stage, sink)),
            (_array_sink, (sink,)),
        ]
        reports = _run_nodes(specs, timeout_s)
    wall_s = time.perf_counter() - started
    _check(reports[-1], total=float(sum(range(n))), count=n, what="w3")
    return _stream_result(n, reports, wall_s)


def w4(*, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, float]:
    """W4 start-up: wall time of a fresh interpreter running source -> pass -> sink on 1 item."""
    import subprocess

    cmd = [sys.executable, str(Path(__file__).resolve()), "w4"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    wall_s = time.perf_counter() - started
    if proc.returncode != 0 or proc.stdout.strip() != "ok":
        raise BenchmarkError(
            f"w4: exit {proc.returncode}, stdout {proc.stdout!r}, stderr:\n{proc.stderr[-4000:]}"
        )
    return {"wall_s": wall_s}


def _w4_process(timeout_s: float) -> None:
    """The process W4 times: one item through source -> pass-through -> sink, then exit."""
    with _private_dir("w4") as directory:
        stage, sink = _endpoint(directory, "stage"), _endpoint(directory, "sink")
        specs: list[_NodeSpec] = [
            (_int_source, (stage, 1)),
            (_add_stage, (stage, sink, 0)),
            (_sum_sink, (sink, 1)),
        ]
        reports = _run_nodes(specs, timeout_s)
    _check(reports[-1], total=0, count=1, what="w4")
    print("ok")


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", choices=["w1", "w2", "w3", "w4"])
    parser.add_argument("--n", type=int, help="items (w1-w3; default: the full workload)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds")
    parser.add_argument("--ipc-dir", help="an existing private directory for the endpoints")
    args = parser.parse_args(argv)
    if args.workload == "w4":
        _w4_process(args.timeout)
        return
    fn = {"w1": w1, "w2": w2, "w3": w3}[args.workload]
    n = {"w1": W1_N, "w2": W2_N, "w3": W3_N}[args.workload] if args.n is None else args.n
    result = fn(n, timeout_s=args.timeout, isolated=False, ipc_dir=args.ipc_dir)
    import json

    print(json.dumps(result))


if __name__ == "__main__":
    main()
