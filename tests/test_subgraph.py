"""Subgraphs: export, copy with prefixed names, handles on both sides of '>>', nesting, groups."""

import multiprocessing

import pytest

from cascata import Graph, GraphError
from cascata.port import NOT_SET
from tests.components import Add, Collect, Double, Mix, Source, nested_subgraph


def add_then_double():
    """inp -> Add(k) -> Double -> out; exports inp, k and out."""
    sub = Graph()
    sub.a = Add
    sub.d = Double
    sub.a.out >> sub.d.x
    sub.export(sub.a.x, "inp")
    sub.export(sub.a.k, "k")
    sub.export(sub.d.out, "out")
    return sub


def run_into(graph, *collectors):
    """Run ``graph`` with a Manager list behind each named collector; return their contents."""
    with multiprocessing.Manager() as manager:
        lists = [manager.list() for _ in collectors]
        for name, lst in zip(collectors, lists, strict=True):
            getattr(graph, name).sink < lst
        graph.run(2)
        return [list(lst) for lst in lists]


# -- export -------------------------------------------------------------------------------------


def test_exporting_a_name_twice_raises_value_error():
    sub = Graph()
    sub.a = Add
    sub.export(sub.a.x, "inp")
    with pytest.raises(ValueError, match="already exported as 'inp'"):
        sub.export(sub.a.k, "inp")
    assert sub._exports == {"inp": sub.a.x}


def test_export_refuses_foreign_ports_non_ports_and_bad_names():
    sub, other = Graph(), Graph()
    sub.a = Add
    other.b = Add
    with pytest.raises(GraphError, match="belongs to another graph"):
        sub.export(other.b.x, "x")
    with pytest.raises(GraphError, match="only a component's port or a group's port"):
        sub.export(sub.a, "a")
    with pytest.raises(GraphError, match="must be a Python identifier"):
        sub.export(sub.a.x, "not a name")
    assert sub._exports == {}


# -- copying ------------------------------------------------------------------------------------


def test_copy_prefixes_names_and_carries_every_port_setting():
    sub = Graph()
    sub.a = Add
    sub.m = Mix
    sub.ws = Add * 2
    sub.a.k < 5
    sub.a.x.capacity = 3
    sub.a.out >> 2 >= sub.m.a
    sub.ws.out >>= sub.m.b
    sub.m.a < 100  # a seed: set after connecting
    sub.m.clk(sub.m.a)
    sub.m.state < ((7,), {"step": 2})
    sub.ws.k < 9
    sub.export(sub.ws.x, "inp")

    main = Graph()
    main.prep = sub

    assert sorted(main.nodes) == ["prep_a", "prep_m", "prep_ws_0", "prep_ws_1"]
    assert list(main.group_handles) == ["prep_ws"]
    assert [m.name for m in main.group_handles["prep_ws"].members] == ["prep_ws_0", "prep_ws_1"]
    assert all(main.nodes[f"prep_ws_{i}"].group_name == "prep_ws" for i in range(2))
    a, m = main.nodes["prep_a"], main.nodes["prep_m"]
    assert (a.k.initial, a.x.capacity, a.x.initial) == (5, 3, NOT_SET)
    assert (m.a.initial, m.a.connected, m.a.batch_size, m.b.batch_size) == (100, True, 2, 0)
    assert m._firing == [(("a",), True)]
    assert (m.state.args, m.state.kwargs) == ((7,), {"step": 2})
    assert [main.nodes[f"prep_ws_{i}"].k.initial for i in range(2)] == [9, 9]
    flat = sorted(
        (e.src.full_name, tuple(d.full_name for d in e.dsts)) for e in main.edges
    )
    assert flat == [
        ("prep_a.out", ("prep_m.a",)),
        ("prep_ws_0.out", ("prep_m.b",)),
        ("prep_ws_1.out", ("prep_m.b",)),
    ]
    assert [p.full_name for p in main.prep.inp._resolve_ports()] == ["prep_ws_0.x", "prep_ws_1.x"]


def test_original_subgraph_is_unchanged_and_still_runs_after_copies():
    sub = Graph()
    sub.src = Source
    sub.d = Double
    sub.c = Collect
    sub.src.n < 4
    sub.src.out >> sub.d.x
    sub.d.out >> sub.c.x
    edges_before = list(sub.edges)

    main = Graph()
    main.one = sub
    main.two = sub
    main.two_src.n < 2  # copies are plain nodes of main, reachable by their prefixed names

    assert sorted(sub.nodes) == ["c", "d", "src"]
    assert all(c.graph is sub and c.name == n for n, c in sub.nodes.items())
    assert sub.edges == edges_before and sub.src.n.initial == 4
    assert not {id(e) for e in main.edges} & {id(e) for e in sub.edges}
    [alone] = run_into(sub, "c")
    assert alone == [0, 2, 4, 6]
    first, second = run_into(main, "one_c", "two_c")
    assert (first, second) == ([0, 2, 4, 6], [0, 2])


def test_two_copies_chained_through_handles_are_independent():
    sub = add_then_double()
    main = Graph()
    main.src = Source
    main.p1 = sub
    main.p2 = sub
    main.c = Collect
    main.src.n < 5
    main.p1.k < 10
    main.src.out >> main.p1.inp
    main.p1.out >> main.p2.inp
    main.p2.out >> main.c.x

    assert main.p1.k is main.nodes["p1_a"].k and main.p2.k.initial == 1
    assert sub.a.k.initial == 1 and not sub.a.x.connected
    [results] = run_into(main, "c")
    assert results == [((i + 10) * 2 + 1) * 2 for i in range(5)]


def test_exported_outport_batches_and_assigning_it_back_is_a_no_op():
    main = Graph()
    main.src = Source
    main.prep = add_then_double()
    main.whole = Collect
    main.threes = Collect
    main.src.n < 7
    main.src.out >> main.prep.inp
    handle = main.prep
    main.prep.out >>= main.whole.x  # assigns main.prep.out back to itself
    main.prep.out >> 3 >= main.threes.x

    assert main.prep is handle and main.prep.out is main.nodes["prep_d"].out
    assert (main.whole.x.batch_size, main.threes.x.batch_size) == (0, 3)
    whole, threes = run_into(main, "whole", "threes")
    expected = [(i + 1) * 2 for i in range(7)]
    assert whole == [expected]
    assert threes == [expected[:3], expected[3:6], expected[6:]]


def test_exported_group_ports_distribute_merge_and_initialise_all_members():
    sub = Graph()
    sub.ws = Add * 3
    sub.export(sub.ws.x, "inp")
    sub.export(sub.ws.k, "k")
    sub.export(sub.ws.out, "out")
    main = Graph()
    main.src = Source
    main.prep = sub
    main.c = Collect
    main.src.n < 20
    main.prep.k < 100
    main.src.out >> main.prep.inp
    main.prep.out >> main.c.x

    assert [main.nodes[f"prep_ws_{i}"].k.initial for i in range(3)] == [100] * 3
    [spread] = [e for e in main.edges if e.src is main.src.out]
    assert [d.full_name for d in spread.dsts] == ["prep_ws_0.x", "prep_ws_1.x", "prep_ws_2.x"]
    [results] = run_into(main, "c")
    assert sorted(results) == [i + 100 for i in range(20)]


def test_nested_subgraph_with_a_group_runs_inside_main():
    mid = nested_subgraph()
    main = Graph()
    main.src = Source
    main.prep = mid
    main.c = Collect
    main.src.n < 10
    main.src.out >> main.prep.inp
    main.prep.out >> main.c.x

    assert sorted(main.nodes) == [
        "c", "prep_inner_ws_0", "prep_inner_ws_1", "prep_inner_ws_2", "prep_post", "prep_pre",
        "src",
    ]
    assert list(main.group_handles) == ["prep_inner_ws"]
    assert sorted(mid.nodes) == ["inner_ws_0", "inner_ws_1", "inner_ws_2", "post", "pre"]
    [results] = run_into(main, "c")
    assert sorted(results) == sorted((i + 1000) * 2 + 1 for i in range(10))


# -- mistakes -----------------------------------------------------------------------------------


def test_handle_only_exposes_exports():
    main = Graph()
    main.prep = add_then_double()
    with pytest.raises(AttributeError, match=r"exports no port 'nope' \(exports: inp, k, out\)"):
        main.prep.nope  # noqa: B018
    with pytest.raises(GraphError, match="only exposes its exported ports"):
        main.prep.out = main.prep.inp
    assert sorted(dir(main.prep)) == ["inp", "k", "out"]


def test_name_clash_with_existing_nodes_is_refused_and_changes_nothing():
    main = Graph()
    main.prep_a = Add
    with pytest.raises(GraphError, match=r"would create \['prep_a'\]"):
        main.prep = add_then_double()
    assert list(main.nodes) == ["prep_a"] and main._subgraphs == {} and main.edges == []
    with pytest.raises(GraphError, match="cannot add a graph to itself"):
        main.me = main


def test_an_edge_leaving_a_graph_is_refused_when_wired():
    sub, other = Graph(), Graph()
    sub.a = Add
    other.b = Add
    with pytest.raises(GraphError, match="different graphs"):
        sub.a.out >> other.b.x
    assert sub.edges == [] and other.edges == []


def test_copies_share_persist_arguments_given_to_the_original():
    sub = Graph()
    sub.src = Source
    sub.c = Collect
    sub.src.out >> sub.c.x
    sub.export(sub.src.n, "n")
    with multiprocessing.Manager() as manager:
        results = manager.list()
        sub.c.sink < results  # set once, on the original
        main = Graph()
        main.one = sub
        main.two = sub
        main.one.n < 2
        main.two.n < 3
        main.run(2)
        assert sorted(results) == [0, 0, 1, 1, 2]
