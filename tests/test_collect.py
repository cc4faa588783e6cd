"""g.collect(port): every item the port sent reaches the caller's list, in order per publisher."""

import asyncio
import os
import tempfile
from collections import defaultdict

import numpy as np
import pytest

from cascata import Graph, GraphError, component, inport, outport
from cascata.transport import control
from cascata.worker.collect import COLLECT_WINDOW_ITEMS, Collector, unpack
from cascata.worker.inputs import Activity, Tracker
from tests.components import Add, Collect, Pass, Source
from tests.helpers import poll_for


@component
@inport("x")
@outport("out")
async def Tag(x, out):
    """Sends (pid, x): who forwarded it, to check order per publisher."""
    await out.send((os.getpid(), x))


@pytest.mark.parametrize("workers", [1, 3])
def test_collected_items_equal_the_ledger_of_what_was_sent(workers):
    n = 5000
    g = Graph()
    g.src = Source
    g.a = Add
    g.b = Pass
    g.src.n < n
    g.src.out >> g.a.x
    g.a.out >> g.b.x
    sent = g.collect(g.src.out)
    passed = g.collect(g.b.out)
    report = g.run(num_workers=workers)
    assert sent == list(range(n))
    assert passed == [i + 1 for i in range(n)]
    assert report.components["b"].items_out == n


def test_a_groups_port_collects_every_member_in_order_per_member():
    n = 3000
    g = Graph()
    g.src = Source
    g.ws = Tag * 3
    g.src.n < n
    g.src.out >> g.ws.x
    items = g.collect(g.ws.out)
    g.run(num_workers=3)
    assert sorted(x for _, x in items) == list(range(n))
    per_member = defaultdict(list)
    for pid, x in items:
        per_member[pid].append(x)
    assert len(per_member) >= 2
    for xs in per_member.values():
        assert xs == sorted(xs)  # each member forwarded its share in the order it came


@component
@inport("n")
@outport("out")
async def Records(n, out):
    row = {"i": 0}
    for i in range(n):
        row["i"] = i  # changed after each send: what was collected must be what was sent
        await out.send(row)
        await out.send(np.full(100_000, float(i)))  # large: serialized with out-of-band buffers
        await out.send(Point(i, -i))


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y


def test_records_arrays_and_objects_arrive_as_they_were_when_sent():
    n = 20
    g = Graph()
    g.src = Records
    g.src.n < n
    items = g.collect(g.src.out)
    g.run(num_workers=1)
    assert [r["i"] for r in items[0::3]] == list(range(n))
    assert [float(a[-1]) for a in items[1::3]] == [float(i) for i in range(n)]
    assert [(p.x, p.y) for p in items[2::3]] == [(i, -i) for i in range(n)]


@component
@inport("gate")
@outport("out")
async def UntilGate(gate, out):
    """Sends 0, 1, ... every few milliseconds until the file ``gate`` exists."""
    i = 0
    while not os.path.exists(gate):  # noqa: ASYNC240 - a cheap stat, in a test
        await out.send(i)
        i += 1
        await asyncio.sleep(0.002)


def test_items_reach_the_caller_while_the_run_goes_on():
    with tempfile.TemporaryDirectory() as tmp:
        gate = os.path.join(tmp, "gate")
        g = Graph()
        g.src = UntilGate
        g.src.gate < gate
        items = g.collect(g.src.out)
        g.start(num_workers=1)
        try:
            poll_for(lambda: len(items) >= 10)  # the run is still going: nothing ended it
        finally:
            open(gate, "w").close()
            g.join()
        assert items == list(range(len(items)))


def test_a_component_named_collect_still_works_and_the_method_stays_reachable(recwarn):
    g = Graph()
    g.src = Source
    g.collect = Collect
    g.src.n < 5
    g.src.out >> g.collect.x
    assert g.collect.name == "collect"
    items = Graph.collect(g, g.src.out)
    g.collect.sink < []
    g.run(num_workers=1)
    assert items == [0, 1, 2, 3, 4]


def test_each_run_starts_the_list_afresh():
    g = Graph()
    g.src = Source
    g.src.n < 3
    items = g.collect(g.src.out)
    g.run(num_workers=1)
    report = g.run(num_workers=1)
    assert items == [0, 1, 2]
    assert report.components["src"].items_out == 3


def test_collecting_an_inport_or_a_foreign_port_is_a_clear_error():
    g = Graph()
    g.a = Pass
    other = Graph()
    other.b = Pass
    with pytest.raises(GraphError) as caught:
        g.collect(g.a.x)
    assert str(caught.value) == "the argument of collect() must be an output port, got <inport a.x>"
    with pytest.raises(GraphError, match="another graph"):
        g.collect(other.b.out)


def test_the_collector_holds_senders_at_its_window_until_the_caller_acknowledges():
    sent: list[control.Record] = []

    async def scenario():
        collector = Collector(sent.append, 1 << 30)
        activity = Activity("src@Source", Tracker())
        for i in range(COLLECT_WINDOW_ITEMS):
            assert collector.add(0, i, ("src@Source", "out"), activity).done()
        assert collector.room() == 0
        blocked = asyncio.ensure_future(collector.add(0, -1, ("src@Source", "out"), activity))
        await asyncio.sleep(0.01)
        assert not blocked.done() and activity.state == "blocked sending"
        collector.flush()
        first = sent[0]
        collector.acknowledge(first.count, first.nbytes)
        await asyncio.wait_for(blocked, 1)
        collector.flush()
        return [x for record in sent for x in unpack(record)]

    assert asyncio.run(scenario()) == [*range(COLLECT_WINDOW_ITEMS), -1]
