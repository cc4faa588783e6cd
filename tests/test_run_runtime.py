"""Runtime guarantees: bounded capacity, large items, ordering, clean stops."""

import contextlib
import glob
import hashlib
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
import psutil
import pytest

from cascata import Graph, WorkerLostError, component, inport, outport, persist
from tests.components import Collect, Pass, Sink, Source, run_collect
from tests.helpers import poll_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@component
@inport("n")
@inport("kind", default="plain")
@outport("out")
@persist("counter", lambda v: v)
async def CountingSource(n, kind, out, counter):
    for i in range(n):
        if kind == "plain":
            await out.send(i)
        elif kind == "small":  # not a plain value, but a few bytes serialized
            await out.send([i])
        else:  # 300 KB serialized: five of them are over the slack's byte budget
            await out.send((i, bytes(300_000)))
        with counter.get().get_lock():
            counter.get().value += 1


def _is_open(path):
    return os.path.exists(path)


@component
@inport("x", capacity=5)
@persist("gate", lambda path: path)
@persist("total", lambda v: v)
async def StalledSink(x, gate, total):
    while not _is_open(gate.get()):
        await __import__("asyncio").sleep(0.01)
    total.get().value += x[0] if isinstance(x, (list, tuple)) else x


def _stable(value, least=0, settle=0.3, timeout=10.0):
    """Wait until a shared counter reaches ``least`` and then stops changing for ``settle``
    seconds; return it. (Waiting for ``least`` first keeps a slow machine's pause from passing
    for the producer having stopped.)"""
    deadline = time.monotonic() + timeout
    while value.value < least and time.monotonic() < deadline:
        time.sleep(0.01)
    last, since = value.value, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        now = value.value
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= settle:
            return now
    raise AssertionError("counter never settled")


@pytest.mark.parametrize(
    ("workers", "kind", "least", "bound"),
    [
        (1, "plain", 0, 5 + 2),  # same worker: handed over inline, nothing buffered
        # other worker: the given capacity is exact whatever the item size
        (2, "large", 5, 5 + 2),
        (2, "small", 5, 5 + 2),
        (2, "plain", 5, 5 + 2),
    ],
)
def test_producer_runs_at_most_capacity_ahead_of_a_stalled_consumer(
    tmp_path, workers, kind, least, bound
):
    n = 300  # far more than the producer may run ahead
    sent = multiprocessing.Value("i", 0)
    total = multiprocessing.Value("q", 0)
    gate = str(tmp_path / "open")
    g = Graph()
    g.src = CountingSource
    g.sink = StalledSink
    g.src.n < n
    g.src.kind < kind
    g.src.counter < sent
    g.sink.gate < gate
    g.sink.total < total
    g.src.out >> g.sink.x
    g.start(workers)
    try:
        ahead = _stable(sent, least)
        # buffered + 1 in the consumer's hands + 1 send that completed into freed room
        assert ahead <= bound, f"producer ran {ahead} items ahead of a consumer with capacity 5"
        assert ahead >= least  # and it did run ahead, up to the bound
    finally:
        open(gate, "w").close()
        g.join()
    assert sent.value == n and total.value == sum(range(n))


@component
@inport("n")
@inport("size")
@outport("out")
async def BigItems(n, size, out):
    for i in range(n):
        arr = np.full(size // 8, i, dtype=np.float64)
        await out.send((i, hashlib.sha256(arr.tobytes()).hexdigest(), arr))


@component
@inport("item", capacity=2)
@persist("sink", lambda lst: lst)
async def CheckBig(item, sink):
    i, digest, arr = item
    sink.get().append((i, digest == hashlib.sha256(arr.tobytes()).hexdigest(), arr.nbytes))


def test_100_mb_items_arrive_intact_across_processes():
    with multiprocessing.Manager() as m:
        results = m.list()
        g = Graph()
        g.src = BigItems
        g.sink = CheckBig
        g.src.n < 3
        g.src.size < 100 * 1024 * 1024
        g.sink.sink < results
        g.src.out >> g.sink.item
        g.run(2)
        assert list(results) == [(i, True, 100 * 1024 * 1024) for i in range(3)]


@component
@inport("x")
@outport("out")
async def Stop(x, out):
    if x == 3:
        os.kill(os.getpid(), signal.SIGSTOP)
    await out.send(x)


@pytest.mark.timeout(30)
def test_frozen_worker_raises_worker_lost_within_seconds():
    g = Graph()
    g.src = Source
    g.stop = Stop
    g.sink = Sink
    g.src.n < 100
    g.src.out >> g.stop.x
    g.stop.out >> g.sink.x
    t0 = time.monotonic()
    with pytest.raises(WorkerLostError, match=r"stopped \(process state T.* stop@Stop"):
        g.run(3)
    assert time.monotonic() - t0 < 15


SCRIPT_SLOW = textwrap.dedent(
    """
    import asyncio, os, sys
    from cascata import *

    @component
    @inport('n')
    @outport('out')
    async def Tick(n, out):
        for i in range(n):
            await out.send(i)
            await asyncio.sleep(0.01)

    @component
    @inport('x')
    async def Show(x):
        if x == 0:
            print('PID', os.getpid(), flush=True)

    g = Graph()
    g.tick = Tick
    g.show = Show
    tick.n < 100000
    tick.out >> show.x
    g.run(2)
    """
)


def _start_script(tmp_path, text):
    path = tmp_path / "script.py"
    path.write_text(text)
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen(
        [sys.executable, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, cwd=str(tmp_path),
    )


@contextlib.contextmanager
def _running_script(tmp_path, text):
    """The script as a running process; killed on the way out whatever happened, so a failed
    assertion never leaves the test waiting on a script that runs for minutes."""
    proc = _start_script(tmp_path, text)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _workers_once_started(proc):
    """Wait for the script's first item (it prints PID), then return its worker pids."""
    line = proc.stdout.readline()
    if not line.startswith("PID"):
        proc.kill()
        pytest.fail(f"the script did not start: {line}{proc.communicate()[1]}")
    return [c.pid for c in psutil.Process(proc.pid).children()]


def _run_dirs_of(pid):
    return glob.glob(os.path.join(tempfile.gettempdir(), f"cascata-run-{pid}-*"))


def _gone(pids):
    def check():
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    return False
            except psutil.NoSuchProcess:
                pass
        return True

    return check


@pytest.mark.timeout(30)
def test_ctrl_c_stops_every_worker_and_raises_keyboard_interrupt(tmp_path):
    with _running_script(tmp_path, SCRIPT_SLOW) as proc:
        workers = _workers_once_started(proc)
        assert len(workers) == 2
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode != 0
        assert "KeyboardInterrupt" in err
        poll_for(_gone(workers), timeout=5)
        assert not _run_dirs_of(proc.pid)


@pytest.mark.timeout(30)
def test_workers_exit_by_themselves_when_the_caller_dies(tmp_path):
    with _running_script(tmp_path, SCRIPT_SLOW) as proc:
        workers = _workers_once_started(proc)
        assert workers
        proc.kill()
        proc.wait()
        poll_for(_gone(workers), timeout=5)
        poll_for(lambda: not _run_dirs_of(proc.pid), timeout=5)


def test_quick_start_runs_as_a_plain_script_without_main_guard():
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "quickstart.py")],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(i) for i in range(5, 15)]


@pytest.mark.parametrize(("kind", "bound"), [("small", 5 + 2), ("plain", 5 + 2)])
def test_two_publishers_in_one_worker_stay_within_capacity_of_a_stalled_consumer(tmp_path, kind, bound):
    # two publishers, so no inline hand-over: items wait in the consumer's buffer
    sent = multiprocessing.Value("i", 0)
    total = multiprocessing.Value("q", 0)
    gate = str(tmp_path / "open")
    g = Graph()
    g.a = CountingSource
    g.b = CountingSource
    g.sink = StalledSink
    for src in (g.a, g.b):
        src.n < 100
        src.kind < kind
        src.counter < sent
        src.out >> g.sink.x
    g.sink.gate < gate
    g.sink.total < total
    g.start(1)
    try:
        ahead = _stable(sent, bound - 2)
        assert bound - 2 <= ahead <= bound, f"publishers ran {ahead} items ahead of capacity 5"
    finally:
        open(gate, "w").close()
        g.join()
    assert sent.value == 200 and total.value == 2 * sum(range(100))


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_the_report_counts_firings_and_items_whether_handed_over_inline_or_sent(workers):
    # One worker: every edge inline. Two: src and a | b and sink, one remote edge. Four: all
    # remote. The counts must not depend on which path an item took.
    n = 300
    g = Graph()
    g.src = Source
    g.a = Pass
    g.b = Pass
    g.sink = Sink
    g.src.n < n
    g.src.out >> g.a.x
    g.a.out >> g.b.x
    g.b.out >> g.sink.x
    report = g.run(num_workers=workers)
    stats = report.components
    assert (stats["src"].firings, stats["src"].items_out) == (1, n)
    for name in ("a", "b"):
        assert (stats[name].firings, stats[name].items_in, stats[name].items_out) == (n, n, n)
    assert (stats["sink"].firings, stats["sink"].items_in, stats["sink"].items_out) == (n, n, 0)
    assert {s.discarded for s in stats.values()} == {0}


@component
@inport("n")
@outport("out")
async def ReusedRecord(n, out):
    # One dict, changed after each send: what was sent must be what arrives, for small flat
    # records (packed in batches) and for larger ones (serialized one by one) alike.
    row = {"i": 0, "tag": "small"}
    for i in range(n):
        row["i"] = i
        await out.send(row)
    big = {"i": 0, "blob": list(range(100))}
    for i in range(n, 2 * n):
        big["i"] = i
        await out.send(big)
    row["i"] = big["i"] = -1


@pytest.mark.parametrize("workers", [1, 2])
def test_a_record_changed_after_its_send_arrives_as_sent(workers):
    g = Graph()
    g.src = ReusedRecord
    g.sink = Collect
    g.src.n < 300
    g.src.out >> g.sink.x
    got = run_collect(g, num_workers=workers)
    assert [r["i"] for r in got] == list(range(600))
    assert [r.get("tag") for r in got[:300]] == ["small"] * 300


@component
@inport("n")
@outport("out")
@persist("seen", lambda v: v)
async def WaitForEach(n, out, seen):
    # Send one item, then wait (up to 10 s) until the consumer in the other worker has it: a
    # lone item must go out while its producer still runs, not wait for a batch to fill.
    import asyncio

    for i in range(n):
        await out.send(i)
        for _ in range(1000):
            if seen.get().value == i + 1:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError(f"item {i} was not delivered while its producer waited")


@component
@inport("x")
@persist("seen", lambda v: v)
async def Acknowledge(x, seen):
    seen.get().value = x + 1


def test_a_lone_item_is_delivered_while_its_producer_keeps_running():
    seen = multiprocessing.Value("i", 0)
    g = Graph()
    g.src = WaitForEach
    g.ack = Acknowledge
    g.src.n < 5
    g.src.seen < seen
    g.ack.seen < seen
    g.src.out >> g.ack.x
    g.run(num_workers=2)
    assert seen.value == 5
