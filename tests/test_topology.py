import pytest

from cascata._run.placement import assign
from cascata._topology import strongly_connected, topological


@pytest.mark.parametrize(
    ("names", "edges", "sccs"),
    [
        (["a", "b", "c"], [("a", "b"), ("b", "c")], [["c"], ["b"], ["a"]]),
        (["a", "b", "c"], [("a", "b"), ("b", "a"), ("b", "c")], [["c"], ["a", "b"]]),
        (["a"], [("a", "a")], [["a"]]),
        (["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("c", "a"), ("d", "d")], [["a", "b", "c"], ["d"]]),
    ],
)
def test_strongly_connected(names, edges, sccs):
    assert strongly_connected(names, edges) == sccs


@pytest.mark.parametrize(
    ("names", "edges", "order"),
    [
        (["sink", "mid", "src"], [("src", "mid"), ("mid", "sink")], ["src", "mid", "sink"]),
        (["a", "b", "c", "d"], [("a", "b"), ("b", "a"), ("c", "a"), ("b", "d")], ["c", "a", "b", "d"]),
        (["x", "y"], [], ["x", "y"]),
    ],
)
def test_topological_keeps_edges_forward_and_cycles_together(names, edges, order):
    assert topological(names, edges) == order


def test_placement_keeps_neighbours_together_and_spreads_group_members():
    names = ["src", "a", "b", "c", "sink", "g_0", "g_1"]
    edges = [("src", "a"), ("a", "b"), ("b", "c"), ("c", "sink")]
    where = assign(names, edges, 2, groups={"g_0": "g", "g_1": "g"})
    assert where["src"] == where["a"] == where["b"] == 0
    assert where["c"] == where["sink"] == 1
    assert where["g_0"] != where["g_1"]
