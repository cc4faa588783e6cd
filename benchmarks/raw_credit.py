"""Raw pyzmq credit-window baselines for W5 (exact capacity) and W6 (uneven group).

W5 is W1's pipeline (0..N-1 -> +1 -> +1 -> +1 -> sum, one process per node) where every edge is
bounded by a credit window of C items, the design a hand-written exact capacity would use: the
producer sends what its credit allows as one batch (one batch per window), and the consumer
returns credit after half a window taken, or before it blocks waiting for input.

W6 sends N items to 4 worker processes; item i takes ``durations(case, N)[i]`` seconds
(``time.sleep``), and the source gives each item to a worker with credit (window 1 per
worker: what a raw load balancer would do), so a worker slowed by expensive items gets fewer.
Both check their results and report the same keys as raw_zmq; W6 adds ``vs_ideal``: the
stream time over the ideal (total work / workers).
"""

from __future__ import annotations

import pickle
import random
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

try:  # run as a script: this directory is on sys.path
    import raw_zmq
except ImportError:  # python -m benchmarks.run from the repository root
    from benchmarks import raw_zmq

W5_N = 200_000
W5_WINDOWS = (10, 100, 1000)
W6_N = {"every4": 200, "random": 300}
W6_WORKERS = 4
W6_FAST, W6_SLOW = 0.01, 0.1

_EOS = b""
_PROTO = pickle.HIGHEST_PROTOCOL


def durations(case: str, n: int) -> list[float]:
    """Seconds each item takes: every 4th slow, or a seeded 10% at random."""
    if case == "every4":
        return [W6_SLOW if i % 4 == 3 else W6_FAST for i in range(n)]
    rng = random.Random(10)
    return [W6_SLOW if rng.random() < 0.1 else W6_FAST for _ in range(n)]


# --------------------------------------------------------------------------------------------
# W5: a pipeline with a credit window on every edge
# --------------------------------------------------------------------------------------------


class _Sender:
    """Producer side of one edge: batches what the credit allows, then waits for credit."""

    def __init__(self, push: zmq.Socket, credits: zmq.Socket, window: int) -> None:
        self.push, self.credits, self.window = push, credits, window
        self.outstanding = 0
        self.batch: list[Any] = []

    def add(self, item: Any, before_block: Callable[[], None]) -> None:
        self.batch.append(item)
        if self.outstanding + len(self.batch) >= self.window:
            self.send_batch()
            self._wait_credit(before_block)

    def send_batch(self) -> None:
        if self.batch:
            self.push.send(pickle.dumps(self.batch, _PROTO))
            self.outstanding += len(self.batch)
            self.batch = []

    def _wait_credit(self, before_block: Callable[[], None]) -> None:
        while self.outstanding >= self.window:
            try:
                self.outstanding -= int(self.credits.recv(zmq.NOBLOCK))
            except zmq.Again:
                before_block()
                self.outstanding -= int(self.credits.recv())

    def end(self) -> None:
        self.send_batch()
        self.push.send(_EOS)


class _Receiver:
    """Consumer side of one edge: returns credit at half a window, or before it blocks."""

    def __init__(self, pull: zmq.Socket, credits: zmq.Socket, window: int) -> None:
        self.pull, self.credits = pull, credits
        self.half = max(1, window // 2)
        self.pending = 0
        self.inbox: deque[Any] = deque()

    def next(self, before_block: Callable[[], None]) -> Any:
        if not self.inbox:
            self.return_credit()
            before_block()
            msg = self.pull.recv()
            if msg == _EOS:
                return _EOS
            self.inbox.extend(pickle.loads(msg))
        self.pending += 1
        if self.pending >= self.half:
            self.return_credit()
        return self.inbox.popleft()

    def return_credit(self) -> None:
        if self.pending:
            self.credits.send(b"%d" % self.pending)
            self.pending = 0


def _nothing() -> None:
    pass


def _w5_source(node: Any, out_ep: str, credit_ep: str, n: int, window: int) -> dict[str, Any]:
    credits = node.socket(zmq.PULL, bind=credit_ep)
    node.all_bound()
    tx = _Sender(node.socket(zmq.PUSH, connect=out_ep), credits, window)
    t0 = time.monotonic()
    for i in range(n):
        tx.add(i, _nothing)
    tx.end()
    return {"t0": t0}


def _w5_stage(node: Any, eps: tuple[str, str, str, str], window: int) -> dict[str, Any]:
    in_ep, up_credit_ep, out_ep, credit_ep = eps
    pull = node.socket(zmq.PULL, bind=in_ep)
    credits = node.socket(zmq.PULL, bind=credit_ep)
    node.all_bound()
    rx = _Receiver(pull, node.socket(zmq.PUSH, connect=up_credit_ep), window)
    tx = _Sender(node.socket(zmq.PUSH, connect=out_ep), credits, window)
    while True:
        x = rx.next(tx.send_batch)
        if x is _EOS:
            tx.end()
            return {}
        tx.add(x + 1, rx.return_credit)


def _w5_sink(node: Any, in_ep: str, up_credit_ep: str, window: int) -> dict[str, Any]:
    pull = node.socket(zmq.PULL, bind=in_ep)
    node.all_bound()
    rx = _Receiver(pull, node.socket(zmq.PUSH, connect=up_credit_ep), window)
    total = count = 0
    while (x := rx.next(_nothing)) is not _EOS:
        total += x
        count += 1
    return {"t1": time.monotonic(), "sum": total, "count": count}


def w5(n: int = W5_N, window: int = 10, *, timeout_s: float = 60.0, isolated: bool = True,
       ipc_dir: str | None = None) -> dict[str, float]:
    """W5: W1's pipeline with a credit window of ``window`` items on every edge."""
    if isolated:
        return _isolated(["w5", "--n", str(n), "--window", str(window)], timeout_s)
    started = time.perf_counter()
    with raw_zmq._private_dir("w5", ipc_dir) as d:
        data = [raw_zmq._endpoint(d, f"in{k}") for k in range(4)]
        credit = [raw_zmq._endpoint(d, f"cr{k}") for k in range(4)]  # credit for edge k
        specs: list[Any] = [(_w5_source, (data[0], credit[0], n, window))]
        for k in range(3):
            eps = (data[k], credit[k], data[k + 1], credit[k + 1])
            specs.append((_w5_stage, (eps, window)))
        specs.append((_w5_sink, (data[3], credit[3], window)))
        reports = raw_zmq._run_nodes(specs, timeout_s)
    wall_s = time.perf_counter() - started
    raw_zmq._check(reports[-1], total=sum(range(n)) + 3 * n, count=n, what="w5")
    return raw_zmq._stream_result(n, reports, wall_s)


# --------------------------------------------------------------------------------------------
# W6: uneven work over a group of 4, window 1 per worker
# --------------------------------------------------------------------------------------------


def _w6_source(node: Any, worker_eps: list[str], credit_ep: str, work: list[float]) -> dict[str, Any]:
    credits = node.socket(zmq.PULL, bind=credit_ep)
    node.all_bound()
    pushes = [node.socket(zmq.PUSH, connect=ep) for ep in worker_eps]
    outstanding = [0] * len(pushes)
    turn = 0
    t0 = time.monotonic()
    for i, seconds in enumerate(work):
        while True:
            while credits.poll(0):
                outstanding[int(credits.recv())] -= 1
            free = [k for k in range(len(pushes)) if outstanding[(turn + k) % len(pushes)] < 1]
            if free:
                break
            outstanding[int(credits.recv())] -= 1
        turn = (turn + free[0]) % len(pushes)
        pushes[turn].send(pickle.dumps((i, seconds), _PROTO))
        outstanding[turn] += 1
        turn = (turn + 1) % len(pushes)
    for push in pushes:
        push.send(_EOS)
    return {"t0": t0}


def _w6_worker(node: Any, index: int, in_ep: str, credit_ep: str, sink_ep: str) -> dict[str, Any]:
    pull = node.socket(zmq.PULL, bind=in_ep)
    node.all_bound()
    credit = node.socket(zmq.PUSH, connect=credit_ep)
    push = node.socket(zmq.PUSH, connect=sink_ep)
    while (msg := pull.recv()) != _EOS:
        credit.send(b"%d" % index)  # taken: credit back before the work
        i, seconds = pickle.loads(msg)
        time.sleep(seconds)
        push.send(pickle.dumps(i, _PROTO))
    push.send(_EOS)
    return {}


def _w6_sink(node: Any, in_ep: str, workers: int) -> dict[str, Any]:
    pull = node.socket(zmq.PULL, bind=in_ep)
    node.all_bound()
    total = count = eos = 0
    while eos < workers:
        msg = pull.recv()
        if msg == _EOS:
            eos += 1
            continue
        total += pickle.loads(msg)
        count += 1
    return {"t1": time.monotonic(), "sum": total, "count": count}


def w6(case: str = "every4", *, timeout_s: float = 60.0, isolated: bool = True,
       ipc_dir: str | None = None) -> dict[str, float]:
    """W6: uneven items over 4 worker processes; see the module docstring."""
    if isolated:
        return _isolated(["w6", "--case", case], timeout_s)
    work = durations(case, W6_N[case])
    started = time.perf_counter()
    with raw_zmq._private_dir("w6", ipc_dir) as d:
        ins = [raw_zmq._endpoint(d, f"w{k}") for k in range(W6_WORKERS)]
        credit, sink = raw_zmq._endpoint(d, "credit"), raw_zmq._endpoint(d, "sink")
        specs: list[Any] = [(_w6_source, (ins, credit, work))]
        specs += [(_w6_worker, (k, ins[k], credit, sink)) for k in range(W6_WORKERS)]
        specs.append((_w6_sink, (sink, W6_WORKERS)))
        reports = raw_zmq._run_nodes(specs, timeout_s)
    wall_s = time.perf_counter() - started
    n = len(work)
    raw_zmq._check(reports[-1], total=sum(range(n)), count=n, what="w6")
    result = raw_zmq._stream_result(n, reports, wall_s)
    result["vs_ideal"] = result["stream_s"] / (sum(work) / W6_WORKERS)
    return result


def _isolated(args: list[str], timeout_s: float) -> dict[str, float]:
    import json
    import subprocess

    with raw_zmq._private_dir("credit") as directory:
        cmd = [sys.executable, str(Path(__file__).resolve()), *args, "--ipc-dir", directory]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s + 15)
    if proc.returncode != 0:
        raise raw_zmq.BenchmarkError(f"{args[0]}: exit {proc.returncode}:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", choices=["w5", "w6"])
    parser.add_argument("--n", type=int, default=W5_N)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--case", choices=sorted(W6_N), default="every4")
    parser.add_argument("--ipc-dir")
    args = parser.parse_args(argv)
    if args.workload == "w5":
        result = w5(args.n, args.window, isolated=False, ipc_dir=args.ipc_dir)
    else:
        result = w6(args.case, isolated=False, ipc_dir=args.ipc_dir)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
