"""The run report: counts equal what was sent, and the times match what the components did."""

import json
import os
import time

from cascata import Graph, component, inport, outport
from tests.components import Sink

NAP = 0.02
N = 20


@component
@inport("n")
@outport("out")
async def Chunks(n, out):
    # Items over the slack's byte budget: the producer waits on the consumer's capacity exactly.
    for i in range(n):
        await out.send((i, bytes(400_000)))


@component
@inport("x", capacity=2)
@outport("out")
async def Napper(x, out):
    time.sleep(NAP)  # noqa: ASYNC251 - busy in its own code, holding the loop as real work would
    await out.send(x)


def _pipeline():
    g = Graph()
    g.src = Chunks
    g.nap = Napper
    g.sink = Sink
    g.src.n < N
    g.src.out >> g.nap.x
    g.nap.out >> g.sink.x
    return g


def test_report_times_show_the_busy_stage_its_blocked_producer_and_its_waiting_consumer():
    report = _pipeline().run(num_workers=3)
    src, nap, sink = (report.components[n] for n in ("src", "nap", "sink"))
    assert (src.items_out, nap.items_in, nap.items_out, sink.items_in) == (N, N, N, N)
    work = N * NAP
    assert work * 0.9 <= nap.busy_s <= report.wall_s
    # The producer spends the napper's time blocked on its capacity-2 port, the sink waiting.
    assert src.blocked_s >= work * 0.5 and src.busy_s < work * 0.5
    assert sink.waiting_s >= work * 0.6 and sink.busy_s < work * 0.4
    assert report.slowest == "nap"
    # With an item always queued for it, the napper hardly waits (round trips on a busy machine
    # still show), and it never blocks: the sink keeps up.
    assert nap.waiting_s < nap.busy_s / 2 and nap.blocked_s < work * 0.4


def test_report_names_each_worker_with_host_and_pid_and_prints_a_table_marking_the_slowest():
    report = _pipeline().run(num_workers=3)
    assert sorted(report.workers) == [0, 1, 2]
    pids = {w.pid for w in report.workers.values()}
    assert len(pids) == 3 and os.getpid() not in pids
    assert {w.host for w in report.workers.values()} == {os.uname().nodename}
    text = str(report)
    line = next(row for row in text.splitlines() if row.startswith("nap@Napper"))
    assert line.endswith("<- slowest")
    assert sum("<- slowest" in row for row in text.splitlines()) == 1
    assert "wall time" in text


def test_report_to_dict_is_json_ready_and_carries_every_figure():
    report = _pipeline().run(num_workers=1)
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["slowest"] == report.slowest
    assert doc["components"]["nap"]["items_in"] == N
    assert doc["components"]["sink"]["inline_in"] in (None, "src@Chunks")
    assert doc["workers"]["0"]["pid"] == report.workers[0].pid
    assert doc["wall_s"] == report.wall_s


def test_inline_consumers_report_their_host_task_instead_of_times_of_their_own():
    report = _pipeline().run(num_workers=1)
    src, nap = report.components["src"], report.components["nap"]
    if nap.inline_in is None:  # placement kept them apart: nothing to check here
        return
    assert nap.inline_in == "src@Chunks" and nap.busy_s is None
    assert src.busy_s >= N * NAP * 0.9
    assert "in src" in str(report)
