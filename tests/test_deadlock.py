"""Static deadlock checks: unseeded cycles, orphan ports, unfed triggers, unfed exports."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from cascata import DeadlockError, Graph, component, inport, outport
from cascata._deadlock import MAX_CYCLES_REPORTED, find_issues
from tests.components import Pass, Sink


@component
@inport("x")
@inport("y")
@outport("out")
async def Two(x, y, out):
    await out.send(x)


@component
@inport("n", default=3)
@outport("out")
async def Source(n, out):
    """tests.components.Source, but n has a default: left unset, it is no orphan."""
    for i in range(n):
        await out.send(i)


def _cycle(*names):
    return f"Cycle deadlock: components {sorted(names)!r} form a cycle with no default seed."


def _pass_ring(*names):
    """A graph of one Pass per name, each one's out wired into the next one's x, the last's into
    the first's."""
    g = Graph()
    for name in names:
        setattr(g, name, Pass)
    for a, b in zip(names, names[1:] + names[:1], strict=True):
        g.nodes[a].out >> g.nodes[b].x
    return g


def _source_into_two():
    """src -> two.x; two.y left open."""
    g = Graph()
    g.src = Source
    g.two = Two
    g.src.out >> g.two.x
    return g


def _pass_into_sink():
    """p -> s, with p.x exported as 'entry' and fed by nothing."""
    g = Graph()
    g.p = Pass
    g.s = Sink
    g.p.out >> g.s.x
    g.export(g.p.x, "entry")
    return g


# -- cycles -------------------------------------------------------------------------------------


def test_unseeded_two_cycle_is_reported_with_sorted_names():
    g = Graph()
    g.b = Pass
    g.a = Pass
    g.a.out >> g.b.x
    g.b.out >> g.a.x
    assert find_issues(g) == ["Cycle deadlock: components ['a', 'b'] form a cycle with no default seed."]


def test_cycle_seeded_after_connecting_passes():
    g = _pass_ring("a", "b")
    g.a.x < 1
    assert find_issues(g) == []
    g.check_deadlocks()  # does not raise


def test_seed_set_before_connecting_is_cleared_so_the_cycle_is_reported():
    g = Graph()
    g.a = Pass
    g.b = Pass
    g.a.x < 1
    g.a.out >> g.b.x
    g.b.out >> g.a.x
    assert find_issues(g) == [_cycle("a", "b")]


def test_unseeded_self_loop_is_a_cycle_of_one():
    g = _pass_ring("loop")
    assert find_issues(g) == [_cycle("loop")]


def test_unseeded_cycle_is_reported_even_when_another_cycle_is_seeded():
    g = Graph()
    g.a = Pass
    g.b = Two
    g.c = Pass
    g.a.out >> g.b.x
    g.b.out >> g.a.x
    g.a.x < 0  # seeds a <-> b
    g.b.out >> g.c.x
    g.c.out >> g.b.y  # b <-> c has no seed
    assert find_issues(g) == [_cycle("b", "c")]


def test_seed_on_a_port_fed_from_outside_the_cycle_does_not_seed_it():
    g = Graph()
    g.src = Source
    g.a = Two
    g.b = Pass
    g.src.out >> g.a.x
    g.a.x < 5  # a seed, but on the edge from src, not on the cycle
    g.a.out >> g.b.x
    g.b.out >> g.a.y
    assert find_issues(g) == [_cycle("a", "b")]


def test_every_unseeded_cycle_is_listed_shortest_first():
    g = Graph()
    for name in ("z", "m", "a", "q"):
        setattr(g, name, Two)
    g.z.out >> g.m.x
    g.m.out >> g.z.x
    g.a.out >> g.q.x
    g.q.out >> g.a.x
    g.q.out >> g.q.y
    g.z.out >> g.z.y
    g.a.y < 0
    g.m.y < 0
    assert find_issues(g) == [_cycle("q"), _cycle("z"), _cycle("a", "q"), _cycle("m", "z")]


def test_cycle_through_a_group_names_each_member_cycle():
    g = Graph()
    g.hub = Pass
    g.ws = Pass * 2
    g.hub.out >> g.ws.x
    g.ws.out >> g.hub.x
    assert find_issues(g) == [_cycle("hub", "ws_0"), _cycle("hub", "ws_1")]


def test_densely_tangled_graph_reports_a_bounded_number_of_cycles():
    g = Graph()
    names = [f"n{i}" for i in range(6)]
    for name in names:
        setattr(g, name, Pass)
    for a in names:
        for b in names:
            if a != b:
                g.nodes[a].out >> g.nodes[b].x
    issues = find_issues(g)
    assert len(issues) == MAX_CYCLES_REPORTED + 1
    assert all(i.startswith("Cycle deadlock: components [") for i in issues[:-1])
    assert issues[-1] == (
        f"Cycle deadlock: more unseeded cycles among components {names!r}; seed one inport on "
        "each cycle with '<' after connecting it."
    )


# -- ports --------------------------------------------------------------------------------------


def test_inport_with_no_edge_and_no_value_is_an_orphan():
    g = _source_into_two()
    assert find_issues(g) == ["Orphan port: 'two.y' has no producer and no default."]


def test_constant_ports_are_not_orphans():
    g = Graph()
    g.src = Source  # n has a default
    g.two = Two
    g.two.x < 1
    g.two.y < 2
    assert find_issues(g) == []


def test_clk_port_never_fed_is_a_trigger_deadlock():
    g = _source_into_two()
    g.two.y < 1  # a constant, yet marked as a trigger: it would never fire the runner
    g.two.clk(g.two.y)
    assert find_issues(g) == ["Trigger deadlock: 'two.y' marked as clk/sync but never fed."]


def test_sync_port_with_no_value_is_reported_once_as_a_trigger_deadlock():
    g = _source_into_two()
    g.two.sync(g.two.x, g.two.y)
    assert find_issues(g) == ["Trigger deadlock: 'two.y' marked as clk/sync but never fed."]


def test_exported_inport_without_upstream_is_an_export_deadlock():
    g = _pass_into_sink()
    assert find_issues(g) == ["Export deadlock: exported inport 'entry' has no upstream."]


def test_exported_inport_with_a_value_or_a_feed_is_fine():
    g = Graph()
    g.src = Source
    g.p = Pass
    g.q = Pass
    g.src.out >> g.p.x
    g.q.x < 4
    g.export(g.p.x, "fed")
    g.export(g.q.x, "valued")
    g.export(g.p.out, "result")  # exported outports are never starved
    assert find_issues(g) == []


def test_exported_group_port_without_upstream_is_reported_once():
    g = Graph()
    g.ws = Pass * 3
    g.export(g.ws.x, "work")
    assert find_issues(g) == ["Export deadlock: exported inport 'work' has no upstream."]


def test_subgraph_export_left_unfed_in_the_main_graph_is_an_orphan_there():
    sub = _pass_into_sink()
    assert find_issues(sub) == ["Export deadlock: exported inport 'entry' has no upstream."]
    main = Graph()
    main.prep = sub
    assert find_issues(main) == ["Orphan port: 'prep_p.x' has no producer and no default."]
    main.src = Source
    main.src.out >> main.prep.entry
    assert find_issues(main) == []


def test_seeded_cycle_inside_a_subgraph_stays_seeded_in_the_copy():
    sub = _pass_ring("a", "b")
    sub.a.x < 1
    main = Graph()
    main.one = sub
    main.two = sub
    assert find_issues(main) == []


def test_issue_kinds_come_in_a_stable_order():
    g = Graph()
    g.a = Pass
    g.b = Two
    g.c = Two
    g.a.out >> g.b.x
    g.b.out >> g.a.x
    g.c.clk(g.c.x)
    g.export(g.b.y, "e")
    assert find_issues(g) == [
        _cycle("a", "b"),
        "Export deadlock: exported inport 'e' has no upstream.",
        "Trigger deadlock: 'c.x' marked as clk/sync but never fed.",
        "Orphan port: 'c.y' has no producer and no default.",
    ]


# -- check_deadlocks and run --------------------------------------------------------------------


def _broken_graph():
    g = _pass_ring("a", "b")
    g.t = Two
    g.b.out >> g.t.x
    return g


def test_check_deadlocks_raises_listing_every_issue():
    with pytest.raises(DeadlockError) as info:
        _broken_graph().check_deadlocks()
    assert info.value.issues == [
        _cycle("a", "b"),
        "Orphan port: 't.y' has no producer and no default.",
    ]
    assert all(issue in str(info.value) for issue in info.value.issues)


def test_deadlock_error_survives_pickling():
    with pytest.raises(DeadlockError) as info:
        _broken_graph().check_deadlocks()
    again = pickle.loads(pickle.dumps(info.value))
    assert again.issues == info.value.issues and str(again) == str(info.value)


def test_run_raises_before_any_process_starts():
    me = psutil.Process(os.getpid())
    before = {p.pid for p in me.children(recursive=True)}
    with pytest.raises(DeadlockError, match="Cycle deadlock"):
        _broken_graph().run(num_workers=2)
    assert {p.pid for p in me.children(recursive=True)} == before


def test_quickstart_example_passes_the_checks():
    example = Path(__file__).resolve().parent.parent / "examples" / "quickstart.py"
    done = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(i + 5) for i in range(10)]
