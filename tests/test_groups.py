"""Component groups: naming, initialisation, wiring shapes, and no item lost or duplicated."""

import asyncio
import uuid
from collections import Counter

import pytest

from cascata import Graph, GraphError, component, inport, outport, persist
from cascata._run.compile import DISTRIBUTING_SLACK
from cascata.port import NOT_SET
from cascata.worker.process import LOCAL_SLACK
from tests.components import Collect, Source, run_collect


@component
@inport("x")
@inport("k", default=0)
@outport("out")
async def Shift(x, k, out):
    await out.send(x + k)


@component
@inport("x")
@outport("out")
async def Echo(x, out):
    """Sends ``x`` ``x % 3`` times: members of a group send different amounts."""
    for _ in range(x % 3):
        await out.send(x)


# -- graph time ---------------------------------------------------------------------------------


def test_group_adds_members_named_alias_index():
    g = Graph()
    g.ws = Shift * 4
    assert [n for n in g.nodes] == ["ws_0", "ws_1", "ws_2", "ws_3"]
    assert all(g.nodes[f"ws_{i}"].group_name == "ws" for i in range(4))
    assert g.group_handles["ws"] is g.ws
    assert len(g.ws) == 4 and [m.name for m in g.ws] == list(g.nodes)
    assert g.ws[2] is g.nodes["ws_2"]


def test_reversed_multiplication_makes_a_group_too():
    g = Graph()
    g.ws = 2 * Shift
    assert list(g.nodes) == ["ws_0", "ws_1"]


@pytest.mark.parametrize("count", [2.5, "3", True, None])
def test_group_size_must_be_a_whole_number(count):
    with pytest.raises(TypeError, match="whole number"):
        Shift * count


def test_group_size_must_be_positive():
    with pytest.raises(ValueError, match="at least one member"):
        Shift * 0


def test_lt_on_group_port_sets_every_member():
    g = Graph()
    g.ws = Shift * 3
    g.ws.k < 5
    assert [m.k.initial for m in g.ws] == [5, 5, 5]


def test_initialize_sets_every_member_and_persists_too():
    g = Graph()
    g.cs = Collect * 2
    g.cs.initialize("x", 7)
    box = []
    g.cs.sink < box
    assert [m.x.initial for m in g.cs] == [7, 7]
    assert all(m.sink.args == (box,) for m in g.cs)


def test_initialize_unknown_or_outport_names_the_ports():
    g = Graph()
    g.ws = Shift * 2
    with pytest.raises(GraphError, match="no inport or persist named 'nope'.*x, k, out"):
        g.ws.initialize("nope", 1)
    with pytest.raises(GraphError, match="'out'"):
        g.ws.initialize("out", 1)


def test_group_port_of_unknown_name_raises_attribute_error():
    g = Graph()
    g.ws = Shift * 2
    with pytest.raises(AttributeError, match="group 'ws' has no port 'nope'"):
        _ = g.ws.nope


def test_a_group_cannot_join_two_graphs():
    group = Shift * 2
    g = Graph()
    g.ws = group
    h = Graph()
    with pytest.raises(GraphError, match="already belongs to a graph"):
        h.ws = group


def _edge_shape(g):
    return [(e.src.full_name, tuple(d.full_name for d in e.dsts)) for e in g.edges]


def test_single_to_group_is_one_edge_distributing_over_members():
    g = Graph()
    g.src = Source
    g.ws = Shift * 3
    g.src.out >> g.ws.x
    assert _edge_shape(g) == [("src.out", ("ws_0.x", "ws_1.x", "ws_2.x"))]
    assert all(m.x.connected for m in g.ws)


def test_group_to_single_merges_every_member():
    g = Graph()
    g.ws = Shift * 3
    g.c = Collect
    g.ws.out >> g.c.x
    assert _edge_shape(g) == [(f"ws_{i}.out", ("c.x",)) for i in range(3)]


def test_group_to_group_same_size_pairs_member_i_with_member_i():
    g = Graph()
    g.a = Shift * 3
    g.b = Shift * 3
    g.a.out >> g.b.x
    assert _edge_shape(g) == [(f"a_{i}.out", (f"b_{i}.x",)) for i in range(3)]


def test_group_to_group_of_other_size_merges_then_distributes():
    g = Graph()
    g.a = Shift * 2
    g.b = Shift * 3
    g.a.out >> g.b.x
    members = ("b_0.x", "b_1.x", "b_2.x")
    assert _edge_shape(g) == [("a_0.out", members), ("a_1.out", members)]


def test_wiring_a_group_port_clears_initial_values_set_before():
    g = Graph()
    g.src = Source
    g.ws = Shift * 2
    g.ws.x < 3
    g.src.out >> g.ws.x
    assert all(m.x.initial is NOT_SET for m in g.ws)


def test_group_clk_and_sync_apply_to_every_member():
    g = Graph()
    g.ws = Shift * 2
    g.ws.clk(g.ws.x)
    g.ws.sync(g.ws.x, g.ws.k)
    assert all(m._firing == [(("x",), True), (("x", "k"), True)] for m in g.ws)


# -- run time: nothing lost, nothing duplicated --------------------------------------------------


def _single_to_group_to_single(g, size):
    g.ws = Shift * size
    g.c = Collect
    g.src.out >> g.ws.x
    g.ws.out >> g.c.x
    return lambda n: Counter(range(n))


def _group_to_group_same_size(g, size):
    g.a = Echo * size
    g.b = Shift * size
    g.c = Collect
    g.b.k < 1000
    g.src.out >> g.a.x
    g.a.out >> g.b.x
    g.b.out >> g.c.x
    return lambda n: Counter(x + 1000 for x in range(n) for _ in range(x % 3))


def _group_to_bigger_group(g, size):
    g.a = Echo * size
    g.b = Shift * (size + 1)
    g.c = Collect
    g.src.out >> g.a.x
    g.a.out >> g.b.x
    g.b.out >> g.c.x
    return lambda n: Counter(x for x in range(n) for _ in range(x % 3))


def _group_to_smaller_group(g, size):
    g.a = Shift * size
    g.b = Echo * (size - 1)
    g.c = Collect
    g.src.out >> g.a.x
    g.a.out >> g.b.x
    g.b.out >> g.c.x
    return lambda n: Counter(x for x in range(n) for _ in range(x % 3))


def _group_into_group_of_sinks(g, size):
    g.ws = Echo * size
    g.cs = Collect * (size - 1)
    g.src.out >> g.ws.x
    g.ws.out >> g.cs.x
    return lambda n: Counter(x for x in range(n) for _ in range(x % 3))


WIRINGS = [
    _single_to_group_to_single,
    _group_to_group_same_size,
    _group_to_bigger_group,
    _group_to_smaller_group,
    _group_into_group_of_sinks,
]


@pytest.mark.parametrize("size", [3, 4])
@pytest.mark.parametrize("count", [0, 1, 7, 1000])
@pytest.mark.parametrize("wiring", WIRINGS, ids=lambda w: w.__name__.strip("_"))
def test_group_wiring_delivers_every_item_exactly_once(wiring, count, size):
    g = Graph()
    g.src = Source
    g.src.n < count
    expected = wiring(g, size)
    assert Counter(run_collect(g)) == expected(count)


@component
@inport("x")
@outport("out")
@persist("me", lambda: uuid.uuid4().hex)
async def Tag(x, out, me):
    await out.send((me.get(), x))


def test_merge_from_a_group_keeps_each_members_order():
    g = Graph()
    g.src = Source
    g.ws = Tag * 3
    g.c = Collect
    g.src.n < 300
    g.src.out >> g.ws.x
    g.ws.out >> g.c.x
    results = run_collect(g)
    by_member = {}
    for tag, x in results:
        by_member.setdefault(tag, []).append(x)
    assert sorted(x for _, x in results) == list(range(300))
    assert 1 <= len(by_member) <= 3
    assert all(xs == sorted(xs) for xs in by_member.values())



@component
@inport("x")
@inport("stall", default=0)
@inport("tag", default="?")
@persist("sink", lambda lst: lst)
@persist("stalled", lambda: False)
async def MaybeStall(x, stall, tag, sink, stalled):
    if stall and not stalled.get():  # stalls once, on its first item
        stalled.set(True)
        await asyncio.sleep(stall)
    sink.get().append(tag)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stalled_member_holds_up_nobody(workers):
    g = Graph()
    g.src = Source
    g.ws = MaybeStall * 2
    g.src.n < 400
    g.src.out >> g.ws.x
    g.ws[0].stall < 2.0  # long enough for the fast member to finish the rest on a slow machine
    g.ws[0].tag < "slow"
    g.ws[1].tag < "fast"
    counts = Counter(run_collect(g, workers))
    assert counts["slow"] + counts["fast"] == 400
    # the stalled member gets about what its buffer (and credit) holds, not half the items (200)
    assert counts["slow"] <= 10 + max(DISTRIBUTING_SLACK, LOCAL_SLACK) + 2, counts


def test_capacity_set_on_a_group_port_applies_to_every_member_and_other_attributes_are_refused():
    g = Graph()
    g.ws = Shift * 3
    g.ws.x.capacity = 2
    assert [getattr(g, f"ws_{i}").x.given_capacity for i in range(3)] == [2, 2, 2]
    assert g.ws.x.capacity == 2
    with pytest.raises(GraphError, match="'ws.out' is an outport: only inports have a capacity"):
        g.ws.out.capacity = 2
    with pytest.raises(AttributeError):
        g.ws.x.capcity = 2  # a typo must not be kept silently
