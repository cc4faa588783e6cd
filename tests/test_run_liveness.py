"""Busy is not frozen: a component in a long C call holding the GIL is never reported lost; a
worker that neither answers nor uses CPU (stopped) is, within a bound, with a hint that fits."""

import os
import random
import signal
import time

import pytest

from cascata import Graph, WorkerLostError, component, inport, outport
from tests.components import Sink, Source


@component
@inport("x")
@inport("n")
@outport("out")
async def SortBig(x, n, out):
    xs = [random.random() for _ in range(n)]
    xs.sort()  # one C call holding the GIL: the heartbeat thread cannot run meanwhile
    await out.send(x)


def test_a_long_c_call_holding_the_gil_is_busy_not_frozen():
    g = Graph()
    g.src = Source
    g.sort = SortBig
    g.sink = Sink
    g.src.n < 1
    g.sort.n < 2_000_000  # 1.5-2 s of sorting on an idle machine, more on a busy one
    g.src.out >> g.sort.x
    g.sort.out >> g.sink.x
    report = g.run(3, liveness_timeout=1.0)
    assert report is not None


@component
@inport("x")
@outport("out")
async def StopAt3(x, out):
    if x == 3:
        os.kill(os.getpid(), signal.SIGSTOP)
    await out.send(x)


@pytest.mark.timeout(40)
def test_a_stopped_worker_is_reported_lost_with_a_hint_about_stopping():
    g = Graph()
    g.src = Source
    g.stop = StopAt3
    g.sink = Sink
    g.src.n < 100
    g.src.out >> g.stop.x
    g.stop.out >> g.sink.x
    t0 = time.monotonic()
    with pytest.raises(WorkerLostError, match=r"stopped \(process state T") as info:
        g.run(3, liveness_timeout=1.0)
    assert time.monotonic() - t0 < 20  # a generous bound: the limit is 1 s
    err = info.value
    assert "stop@StopAt3" in err.components
    assert "SIGSTOP" in err.hint and "OOM" not in str(err)


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-1, ValueError), (float("inf"), ValueError), (float("nan"), ValueError),
     ("5", TypeError), (True, TypeError)],
)
def test_liveness_timeout_must_be_a_positive_number_of_seconds(value, error):
    g = Graph()
    g.src = Source
    g.src.n < 1
    with pytest.raises(error, match="liveness_timeout must be"):
        g.run(1, liveness_timeout=value)
