"""g.to_dot(): a graphviz.Digraph with ports, initial values, groups and subgraphs as clusters."""

import shutil
import sys

import pytest

from cascata import Graph, component, inport, outport
from tests.components import Sink, Source

graphviz = pytest.importorskip("graphviz")


@component
@inport("x")
@inport("k", default=1)
@outport("out")
@outport("log")
async def Add(x, k, out, log):
    """tests.components.Add with a second outport (log), so that the drawing shows two."""
    await out.send(x + k)


def example_graph():
    sub = Graph()
    sub.ws = Add * 2
    sub.export(sub.ws.x, "inp")
    sub.export(sub.ws.out, "out")
    g = Graph()
    g.src = Source
    g.prep = sub
    g.sink = Sink
    g.src.n < 3
    g.src.out >> g.prep.inp
    g.prep.out >> 2 >= g.sink.x
    g.sink.x < "first"  # a seed, set after connecting
    g.export(g.src.n, "count")
    return g


def test_to_dot_draws_ports_initial_values_groups_and_subgraphs():
    dot = example_graph().to_dot()
    assert isinstance(dot, graphviz.Digraph)
    src = dot.source
    # each component: a table whose first row holds the inports, last row the outports
    assert '<TD PORT="in_x">x</TD><TD PORT="in_k">k</TD>' in src
    assert '<TD PORT="out_out">out</TD><TD PORT="out_log">log</TD>' in src
    [member] = [line for line in src.splitlines() if line.strip().startswith("prep_ws_0 [")]
    assert member.index('PORT="in_x"') < member.index("<B>prep_ws_0</B>") < member.index("out_out")
    # initial values are small notes feeding their port; a seed says so
    assert '"src.n.initial" [label=3' in src and '"src.n.initial" -> src:in_n:n' in src
    assert "label=\"seed 'first'\"" in src
    # a subgraph is a cluster, its group a nested cluster
    assert "subgraph cluster_sub_prep_ {" in src and 'label="subgraph prep"' in src
    assert "subgraph cluster_group_prep_ws {" in src and 'label="ws: Add × 2"' in src
    assert src.index("cluster_sub_prep_") < src.index("cluster_group_prep_ws")
    # distributing edges are dashed, batching edges say how they batch
    assert 'src:out_out:s -> prep_ws_0:in_x:n [style=dashed' in src
    assert 'prep_ws_1:out_out:s -> sink:in_x:n [label="lists of 2"]' in src
    # the drawn graph's own export
    assert '"export.count" -> src:in_n:n' in src


@pytest.mark.skipif(shutil.which("dot") is None, reason="the graphviz 'dot' binary is not installed")
def test_render_writes_a_picture(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = example_graph().to_dot().render()
    svg = (tmp_path / path).read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "prep_ws_1" in svg


def test_without_graphviz_returns_none_with_a_warning(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # makes 'import graphviz' fail
    g = example_graph()
    with pytest.warns(UserWarning, match=r"pip install cascata\[dot\]"):
        assert g.to_dot() is None
