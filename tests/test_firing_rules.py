"""Firing rules (SPEC 2), observed end to end on real worker processes."""

import pytest

from cascata import Graph, component, inport, outport, persist
from tests.components import Collect, Count, run_collect


@component
@outport("out")
async def NoInports(out):
    await out.send("fired")


@component
@inport("k")
@outport("out")
async def ConstantsOnly(k, out):
    await out.send(("fired", k))


@component
@inport("a")
@inport("b")
@inport("c", default="const")
@persist("sink", lambda lst: lst)
async def Record(a, b, c, sink):
    """Records the values of every firing."""
    sink.get().append((a, b, c))


@component
@inport("inp")
@outport("out")
@persist("sink", lambda lst: lst)
async def Relay(inp, out, sink):
    sink.get().append(inp)
    await out.send(inp)


@component
@inport("x")
@inport("limit", default=5)
@outport("out")
async def Increment(x, limit, out):
    if x < limit:
        await out.send(x + 1)


def _xs_and_ys_into_record(xs, ys):
    """xs sends 0, 1, ... (``xs`` items) into r.a; ys sends 100, 101, ... (``ys`` items) into r.b."""
    g = Graph()
    g.xs = Count
    g.ys = Count
    g.r = Record
    g.xs.n < xs
    g.ys.n < ys
    g.ys.start < 100
    g.xs.out >> g.r.a
    g.ys.out >> g.r.b
    return g


# -- sources ------------------------------------------------------------------------------------


def test_component_without_inports_runs_exactly_once():
    g = Graph()
    g.src = NoInports
    g.c = Collect
    g.src.out >> g.c.x
    assert run_collect(g) == ["fired"]


def test_component_whose_inports_are_all_constants_runs_exactly_once():
    g = Graph()
    g.src = ConstantsOnly
    g.c = Collect
    g.src.k < 42
    g.src.out >> g.c.x
    assert run_collect(g) == [("fired", 42)]


# -- the default group --------------------------------------------------------------------------


def test_default_group_zips_streams_and_ends_with_the_shortest():
    g = _xs_and_ys_into_record(50, 3)  # 50: more than the port's capacity; drained, not blocking xs
    assert run_collect(g) == [(0, 100, "const"), (1, 101, "const"), (2, 102, "const")]


def test_seed_set_after_connecting_is_delivered_first():
    g = Graph()
    g.src = Count
    g.c = Collect
    g.src.n < 3
    g.src.out >> g.c.x
    g.c.x < "seed"
    assert run_collect(g) == ["seed", 0, 1, 2]


# -- clk, sync and listeners --------------------------------------------------------------------


def test_clk_fires_on_every_item_of_each_clocked_port():
    g = _xs_and_ys_into_record(4, 6)
    g.r.clk(g.r.a)
    g.r.clk(g.r.b)
    firings = run_collect(g)
    assert len(firings) == 10
    a_seen = [a for a, _, _ in firings if a is not None]
    b_seen = [b for _, b, _ in firings if b is not None]
    assert sorted(set(a_seen)) == [0, 1, 2, 3] and a_seen == sorted(a_seen)
    assert sorted(set(b_seen)) == list(range(100, 106)) and b_seen == sorted(b_seen)


def test_sync_fires_on_zipped_items_and_other_groups_fire_on_their_own():
    g = _xs_and_ys_into_record(3, 5)
    g.zs = Count
    g.zs.n < 2
    g.zs.start < 200
    g.zs.out >> g.r.c
    g.r.sync(g.r.a, g.r.b)
    g.r.clk(g.r.c)
    firings = run_collect(g)
    assert len(firings) == 3 + 2
    pairs = [(a, b) for a, b, _ in firings if a is not None]
    # zipped (a, b) pairs appear in order; the pair of a firing caused by c may repeat it
    assert list(dict.fromkeys(pairs)) == [(0, 100), (1, 101), (2, 102)]
    # c was connected, so its default is gone: None until its first item arrives
    assert {c for _, _, c in firings} in ({200, 201}, {None, 200, 201})


def test_listener_port_updates_the_value_without_firing():
    g = _xs_and_ys_into_record(3, 3)
    g.xs.delay < 0.3  # y's three items have long arrived when x's first item does
    g.r.clk(g.r.a)  # b is in no group: a listener
    assert run_collect(g) == [(0, 102, "const"), (1, 102, "const"), (2, 102, "const")]


@component
@inport("a")
@inport("b", capacity=2)
@outport("out")
async def Gate(a, b, out):
    await out.send(a)


def test_component_ends_when_its_firing_groups_are_exhausted_while_a_listener_still_has_items():
    g = Graph()
    g.xs = Count
    g.ys = Count
    g.gate = Gate
    g.after = Collect
    g.xs.n < 2
    g.ys.n < 500  # far more than the listener's capacity: drained once the gate ends
    g.xs.out >> g.gate.a
    g.ys.out >> g.gate.b
    g.gate.clk(g.gate.a)
    g.gate.out >> g.after.x
    assert run_collect(g) == [0, 1]


# -- cycles, fan-out, fan-in --------------------------------------------------------------------


def test_seeded_cycle_fires_on_the_seed_and_on_what_comes_back_then_ends():
    g = Graph()
    g.a = Relay
    g.b = Increment
    g.a.out >> g.b.x
    g.b.out >> g.a.inp
    g.a.inp < 1
    assert run_collect(g) == [1, 2, 3, 4, 5]


@component
@inport("x")
@inport("tag")
@persist("sink", lambda lst: lst)
async def Tagged(x, tag, sink):
    sink.get().append((tag, x))


def test_fan_out_gives_every_inport_every_item_in_order():
    g = Graph()
    g.src = Count
    g.left = Tagged
    g.right = Tagged
    g.src.n < 100
    g.left.tag < "L"
    g.right.tag < "R"
    g.src.out >> g.left.x
    g.src.out >> g.right.x
    got = run_collect(g)
    assert [x for tag, x in got if tag == "L"] == list(range(100))
    assert [x for tag, x in got if tag == "R"] == list(range(100))
    assert len(got) == 200


# With three workers, placement leaves one worker without a component: it must still report DONE
# (it once did not, and the run ended in an empty DeadlockError).
@pytest.mark.parametrize("num_workers", [1, 2, 3])  # 3: one worker gets no component
def test_fan_in_merges_every_publisher_keeping_each_ones_order(num_workers):
    g = Graph()
    g.p = Count
    g.q = Count
    g.r = Count
    g.c = Collect
    g.p.n < 200
    g.q.n < 200
    g.q.start < 1000
    g.r.n < 200
    g.r.start < 2000
    for src in (g.p, g.q, g.r):
        src.out >> g.c.x
    got = run_collect(g, num_workers)
    assert sorted(got) == sorted(list(range(200)) + list(range(1000, 1200)) + list(range(2000, 2200)))
    for base in (0, 1000, 2000):
        mine = [x for x in got if base <= x < base + 200]
        assert mine == list(range(base, base + 200))
