"""Component names (SPEC 3): any identifier not starting with '_' names a component, Graph method
names included, and binding a name over something the caller already uses warns."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import textwrap
import warnings

import pytest

from cascata import Graph, GraphError
from tests.components import Collect, Pass, Sink, Source

# Every public name a Graph has: methods, the tables (nodes, edges, ...), whatever is added later.
GRAPH_NAMES = sorted(n for n in dir(Graph) if not n.startswith("_"))


def _method_named_graph() -> Graph:
    """src -> one Pass per Graph name, in a chain -> out (a Collect)."""
    g = Graph()
    for name in ("src", *GRAPH_NAMES, "out"):
        setattr(g, name, {"src": Source, "out": Collect}.get(name, Pass))
    nodes = Graph.nodes.fget(g)
    nodes["src"].n < 5
    chain = ["src", *GRAPH_NAMES, "out"]
    for a, b in zip(chain, chain[1:], strict=False):
        nodes[a].out >> nodes[b].x
    return g


def test_graph_method_names_are_component_names_on_that_graph_only():
    g = _method_named_graph()
    assert "join" in GRAPH_NAMES and "start" in GRAPH_NAMES and "nodes" in GRAPH_NAMES
    for name in GRAPH_NAMES:
        comp = getattr(g, name)
        assert type(comp) is Pass and comp.name == name, name
    other = Graph()
    assert callable(other.join) and isinstance(other.nodes, dict)  # other graphs keep them


def test_graph_with_method_named_components_runs_serializes_and_draws():
    g = _method_named_graph()
    Graph.check_deadlocks(g)
    doc = Graph.to_json(g)
    again = Graph.from_json(doc)
    assert Graph.to_json(again) == doc
    assert Graph.to_dot(g) is not None
    with multiprocessing.Manager() as manager:
        results = manager.list()
        g.out.sink < results
        Graph.start(g, num_workers=2)
        Graph.join(g)
        assert sorted(results) == [0, 1, 2, 3, 4]
        Graph.nodes.fget(again)["out"].sink < results
        Graph.run(again, num_workers=1)
        assert sorted(results) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_upstream_script_naming_components_join_and_collect_runs_unchanged(tmp_path):
    script = tmp_path / "upstream.py"
    script.write_text(textwrap.dedent("""
        from cascata import *

        @component
        @inport('n')
        @outport('out')
        async def Numbers(n, out):
            for i in range(n):
                await out.send(i)

        @component
        @inport('x')
        @outport('out')
        async def Join(x, out):
            await out.send(x * 10)

        @component
        @inport('x')
        async def Collect(x):
            print('got', x, flush=True)

        g = Graph()
        g.numbers = Numbers
        g.join = Join
        g.collect = Collect
        numbers.n < 3
        numbers.out >> join.x
        join.out >> collect.x
        g.run(num_workers=1)
    """))
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)], capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split("\n")[:-1]) == ["got 0", "got 10", "got 20"]


def _exec_module_level(code: str, **names) -> tuple[dict, list[str]]:
    """Run ``code`` as module-level code of a fresh namespace; return it and the warnings."""
    namespace = {"Graph": Graph, "Sink": Sink, "Source": Source, **names}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(textwrap.dedent(code), "<user script>", "exec"), namespace)
    return namespace, [str(w.message) for w in caught]


def test_binding_over_a_builtin_warns_naming_it():
    namespace, caught = _exec_module_level("""
        g = Graph()
        g.sum = Sink
    """)
    assert namespace["sum"] is Graph.nodes.fget(namespace["g"])["sum"]
    assert len(caught) == 1, caught
    assert "'sum'" in caught[0] and "builtin" in caught[0] and "g.sum" in caught[0]


def test_binding_over_a_user_variable_or_the_class_warns_naming_what_it_held():
    _, caught = _exec_module_level("""
        data = [1, 2, 3]
        g = Graph()
        g.data = Sink
        g.Source = Source
    """)
    assert len(caught) == 2, caught
    assert "'data'" in caught[0] and "list" in caught[0]
    assert "'Source'" in caught[1] and "class" in caught[1]


def test_rebinding_component_names_of_an_earlier_graph_is_quiet():
    namespace, caught = _exec_module_level("""
        g = Graph()
        g.src = Source
        g.sink = Sink
        g = Graph()             # a notebook cell run again
        g.src = Source
        g.sink = Sink
    """)
    assert caught == []
    assert namespace["src"] is namespace["g"].src


def test_names_are_bound_only_at_module_level():
    def build():
        g = Graph()
        g.sum = Sink  # no binding inside a function, hence nothing shadowed and no warning
        return g

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = build()
    assert sum([1, 2]) == 3 and type(g.sum) is Sink


@pytest.mark.parametrize("name", ["_private", "__dict__"])
def test_names_starting_with_underscore_are_not_component_names(name):
    g = Graph()
    with pytest.raises(GraphError, match="must not start with '_'"):
        g._add(name, Sink)
