"""Placement over hosts (pure: plans are compiled, nothing runs): a chain crosses from host to
host once, group members alternate hosts, pins keep neighbours together, and no worker is
started without a component to run."""

from __future__ import annotations

from cascata import Graph
from cascata._run.compile import compile_plan
from cascata._run.placement import assign, compact, host_major
from tests.components import Add, Sink, Source

A, B = "10.9.0.1:7700", "10.9.0.2:7700"
CHAIN = ["src", "s1", "s2", "s3", "sink"]
EDGES = list(zip(CHAIN[:-1], CHAIN[1:], strict=True))


def w1_graph() -> Graph:
    """W1's shape: source -> three stages -> sink."""
    g = Graph()
    g.src, g.s1, g.s2, g.s3, g.sink = Source, Add, Add, Add, Sink
    g.src.n < 10
    g.src.out >> g.s1.x
    g.s1.out >> g.s2.x
    g.s2.out >> g.s3.x
    g.s3.out >> g.sink.x
    return g


def hosts_of(plan) -> dict[str, str]:
    return {c.name: plan.host_of(c.worker) for c in plan.components}


def crossings(plan) -> int:
    """Edges whose two ends run on different hosts."""
    return sum(plan.host_of(e.src_worker) != plan.host_of(e.dst_worker) for e in plan.edges)


def test_host_major_puts_each_hosts_workers_together_in_order_of_first_appearance():
    assert host_major("ABAB", 4) == [0, 2, 1, 3]
    assert host_major("BAAB", 4) == [0, 3, 1, 2]
    assert host_major((), 3) == [0, 1, 2]


def test_a_chain_over_two_hosts_crosses_between_them_once():
    where = assign(CHAIN, EDGES, 4, slots="ABAB")
    hosts = ["ABAB"[where[n]] for n in CHAIN]
    assert hosts == sorted(hosts) and set(hosts) == {"A", "B"}
    # neighbouring stages still share workers, as on one host with four processes
    assert where["src"] == where["s1"] and where["s2"] == where["s3"]


def test_a_chain_placed_on_two_daemons_crosses_hosts_once_and_starts_only_used_workers():
    plan = compile_plan(w1_graph(), hosts=[(A, 2), (B, 2)])
    assert crossings(plan) == 1
    assert set(hosts_of(plan).values()) == {A, B}
    # five cheap stages over four offered processes: three workers, none idle
    assert plan.num_workers == 3
    assert {c.worker for c in plan.components} == set(range(plan.num_workers))
    assert len(plan.hosts) == plan.num_workers


def test_group_members_still_alternate_hosts():
    g = Graph()
    g.src = Source
    g.ws = Add * 4
    g.sink = Sink
    g.src.n < 10
    g.src.out >> g.ws.x
    g.ws.out >> g.sink.x
    plan = compile_plan(g, hosts=[(A, 2), (B, 2)])
    members = [c for c in plan.components if c.name.startswith("ws")]
    assert sorted(plan.host_of(c.worker) for c in members) == [A, A, B, B]
    assert len({c.worker for c in members}) == 4


def test_pins_split_the_chain_where_asked_crossing_once():
    pin = {"src": A, "s1": A, "s2": B, "s3": B, "sink": B}
    plan = compile_plan(w1_graph(), hosts=[(A, 2), (B, 2)], pin=pin)
    assert hosts_of(plan) == pin
    assert crossings(plan) == 1
    assert {c.worker for c in plan.components} == set(range(plan.num_workers))


def test_a_local_run_starts_no_worker_without_a_component():
    plan = compile_plan(w1_graph(), 4)  # five components cut two per worker: three workers
    assert plan.num_workers == 3
    assert sorted({c.worker for c in plan.components}) == [0, 1, 2]
    assert plan.hosts == ()


def test_compact_renumbers_used_workers_in_order_with_their_hosts():
    placement, slots = compact({"a": 3, "b": 1, "c": 3}, ("A", "B", "A", "B"))
    assert placement == {"a": 1, "b": 0, "c": 1}
    assert slots == ("B", "B")


def test_hosts_on_one_machine_share_its_cpus_and_hosts_alone_keep_their_offer():
    from cascata._run.hosts import share_machines

    # Two daemons on one 2-CPU machine offering 2 each: one process each, as one host would use.
    assert share_machines([(A, 2, "m1", 2), (B, 2, "m1", 2)]) == [(A, 1), (B, 1)]
    # Different machines, or no machine id (not Linux): offers as they are.
    assert share_machines([(A, 2, "m1", 2), (B, 2, "m2", 2)]) == [(A, 2), (B, 2)]
    assert share_machines([(A, 2, "", 2), (B, 2, "", 2)]) == [(A, 2), (B, 2)]
    # The caller's machine ('local') counts like any host; CPUs are handed out in turn, and every
    # host on a shared machine keeps at least one process.
    assert share_machines([("local", 2, "m1", 2), (A, 4, "m1", 2), (B, 8, "m2", 8)]) == [
        ("local", 1), (A, 1), (B, 8)
    ]
    assert share_machines([(A, 3, "m1", 2), (B, 3, "m1", 2), ("x:1", 3, "m1", 2)]) == [
        (A, 1), (B, 1), ("x:1", 1)
    ]
    # Within the machine's CPUs already: unchanged.
    assert share_machines([(A, 1, "m1", 4), (B, 2, "m1", 4)]) == [(A, 1), (B, 2)]
    assert share_machines([(A, 8, "m1", 4)]) == [(A, 8)]  # alone: its own --processes stands
