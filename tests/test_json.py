"""Graph JSON documents: the schema, stable round trips, rebuilt graphs that run, clear errors."""

import copy
import json
import math
import multiprocessing
import random
import warnings

import pytest

from cascata import Graph, GraphError, component, inport, outport
from cascata.port import NOT_SET, OutPort
from tests.components import Add, Collect, Double, Mix, Source, nested_subgraph, run_collect


class Namespace:
    """Components nested in a class are found by their qualified name."""

    @component
    @inport("x")
    @outport("out")
    async def Negate(x, out):
        await out.send(-x)


def inport_doc(capacity=None, initial=None, batch_size=None):
    return {"capacity": capacity, "initial": initial, "batch_size": batch_size}


# -- schema -------------------------------------------------------------------------------------


def test_document_of_a_small_graph():
    g = Graph()
    g.src = Source
    g.ws = Add * 2
    g.c = Collect
    g.src.n < 3
    g.ws.k < 5
    g.src.out >> g.ws.x
    g.ws.out >> 2 >= g.c.x
    g.export(g.c.x, "results")

    mod = "tests.components"
    assert g.to_json() == {
        "nodes": {
            "src": {"module": mod, "class": "Source", "group": None,
                    "inports": {"n": inport_doc(initial=3)}},
            "c": {"module": mod, "class": "Collect", "group": None,
                  "inports": {"x": inport_doc(batch_size=2)}},
        },
        "edges": [["src", "out", "ws", "x"], ["ws", "out", "c", "x"]],
        "group_handles": {
            "ws": {"module": mod, "class": "Add", "count": 2,
                   "inports": {"x": inport_doc(), "k": inport_doc(initial=5)}},
        },
        "exports": {"results": ["c", "x"]},
        "subgraphs": {},
    }


def nested_graph():
    """main: src -> prep(pre -> inner(ws: Double x 3) -> post) -> c, with settings everywhere."""
    mid = nested_subgraph()
    mid.export(mid.inner.inp, "ws_in")
    main = Graph()
    main.src = Source
    main.prep = mid
    main.neg = Namespace.Negate
    main.c = Collect
    main.src.n < 12
    main.src.out >> main.prep.inp
    main.prep.out >> main.neg.x
    main.neg.out >> 5 >= main.c.x
    return main


def test_nested_subgraph_with_group_round_trips_stably_and_runs():
    g = nested_graph()
    doc = g.to_json()

    assert json.loads(json.dumps(doc)) == doc
    assert sorted(doc["nodes"]) == ["c", "neg", "src"]
    prep = doc["subgraphs"]["prep"]
    assert sorted(prep["nodes"]) == ["post", "pre"]
    assert prep["exports"] == {"inp": ["pre", "x"], "out": ["post", "out"], "ws_in": ["inner", "inp"]}
    assert prep["edges"] == [["pre", "out", "inner", "inp"], ["inner", "out", "post", "x"]]
    inner = prep["subgraphs"]["inner"]
    assert inner["group_handles"]["ws"]["count"] == 3 and inner["nodes"] == {}
    assert inner["group_handles"]["ws"]["inports"] == {"x": inport_doc(capacity=4)}
    assert doc["edges"] == [
        ["src", "out", "prep", "inp"], ["prep", "out", "neg", "x"], ["neg", "out", "c", "x"]
    ]

    rebuilt = Graph.from_json(doc)
    assert rebuilt.to_json() == doc
    assert Graph.from_json(json.dumps(doc)).to_json() == doc
    assert sorted(rebuilt.nodes) == sorted(g.nodes)
    assert sorted(rebuilt.group_handles) == ["prep_inner_ws"]
    assert rebuilt.c.x.batch_size == 5 and rebuilt.prep_pre.k.initial == 1000

    expected = sorted(-((i + 1000) * 2 + 1) for i in range(12))
    for graph in (g, rebuilt):
        batches = run_collect(graph)
        assert [len(b) for b in batches] == [5, 5, 2]
        assert sorted(x for b in batches for x in b) == expected


def test_group_wirings_are_written_by_alias_and_rebuild_the_same_edges():
    g = Graph()
    g.src = Source
    g.a = Add * 3
    g.b = Add * 3
    g.m = Add * 2
    g.n = Add * 3
    g.one = Add
    g.src.out >> g.a.x  # single -> group
    g.a.out >> g.b.x  # group -> group, same size
    g.b.out >> g.one.x  # group -> single
    g.one.out >> g.m.x  # single -> group
    g.m.out >> g.n.x  # group(2) -> group(3)
    g.n_0.out >> g.n_1.k  # one member only

    doc = g.to_json()
    assert doc["edges"] == [
        ["src", "out", "a", "x"], ["a", "out", "b", "x"], ["b", "out", "one", "x"],
        ["one", "out", "m", "x"], ["m", "out", "n", "x"], ["n_0", "out", "n_1", "k"],
    ]
    rebuilt = Graph.from_json(doc)
    assert rebuilt.to_json() == doc

    def flat(graph):
        return [(e.src.full_name, [d.full_name for d in e.dsts]) for e in graph.edges]

    assert flat(rebuilt) == flat(g)


def test_port_settings_firing_persist_args_and_member_overrides_round_trip():
    g = Graph()
    g.src = Source
    g.mix = Mix
    g.ws = Add * 3
    g.src.out >> g.mix.a
    g.mix.a < 0  # a seed: set after connecting
    g.mix.b < "constant"
    g.mix.a.capacity = 2
    g.mix.clk(g.mix.a)
    g.mix.state < ((5,), {"step": 3})
    g.ws.k < 1
    g.ws_1.k < 9
    g.ws.clk(g.ws.x)

    doc = g.to_json()
    assert doc["nodes"]["mix"]["firing"] == [["a"]]
    assert doc["nodes"]["mix"]["persist"] == {"state": {"args": [5], "kwargs": {"step": 3}}}
    assert doc["group_handles"]["ws"]["firing"] == [["x"]]
    assert doc["group_handles"]["ws"]["members"] == {
        "1": {"inports": {"x": inport_doc(), "k": inport_doc(initial=9)}, "firing": [["x"]]}
    }
    rebuilt = Graph.from_json(doc)
    assert rebuilt.to_json() == doc
    mix = rebuilt.mix
    assert (mix.a.initial, mix.a.connected, mix.a.capacity, mix.b.initial) == (0, True, 2, "constant")
    assert mix._firing == [(("a",), True)]
    assert (mix.state.args, mix.state.kwargs) == ((5,), {"step": 3})
    assert [rebuilt.nodes[f"ws_{i}"].k.initial for i in range(3)] == [1, 9, 1]


def test_seed_on_an_exported_port_wired_from_outside_survives_the_round_trip():
    sub = Graph()
    sub.a = Add
    sub.export(sub.a.x, "inp")
    sub.export(sub.a.k, "k")
    g = Graph()
    g.src = Source
    g.prep = sub
    g.src.out >> g.prep.inp
    g.prep.inp < 42  # seed set after the outer edge
    g.src.out >> g.prep.k  # clears the constant k

    rebuilt = Graph.from_json(g.to_json())
    assert rebuilt.prep_a.x.initial == 42 and rebuilt.prep_a.x.connected
    assert rebuilt.prep_a.k.initial is NOT_SET
    assert rebuilt.to_json() == g.to_json()


# -- values -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        (1, (2, "three")),
        {3, 1, 2},
        frozenset({"a", "b"}),
        b"\x00\xffbytes",
        float("inf"),
        {1: "one", (2, 3): [4]},
        {"$tuple": "a dict that looks like a tag"},
        {"plain": [1, 2.5, None, True]},
    ],
    ids=repr,
)
def test_values_json_cannot_hold_are_tagged_and_come_back_with_their_type(value):
    g = Graph()
    g.a = Add
    g.a.k < value
    doc = g.to_json()
    text = json.dumps(doc, allow_nan=False)
    rebuilt = Graph.from_json(text)
    assert rebuilt.a.k.initial == value and type(rebuilt.a.k.initial) is type(value)
    assert rebuilt.to_json() == doc


def test_nan_round_trips_as_a_tagged_float():
    g = Graph()
    g.a = Add
    g.a.k < float("nan")
    doc = g.to_json()
    assert doc["nodes"]["a"]["inports"]["k"]["initial"] == {"$float": "nan"}
    assert math.isnan(Graph.from_json(doc).a.k.initial)


def test_unserializable_initial_value_is_refused_naming_the_port():
    g = Graph()
    g.a = Add
    g.a.k < [1, object()]
    with pytest.raises(GraphError, match=r"initial value of inport 'a.k' is a builtins.object"):
        g.to_json()


def test_runtime_objects_in_persists_are_left_out_and_set_again_with_lt(tmp_path):
    g = Graph()
    g.src = Source
    g.c = Collect
    g.mix = Mix
    g.src.n < 4
    g.src.out >> g.c.x
    with multiprocessing.Manager() as manager, open(tmp_path / "f", "w") as file:
        g.c.sink < manager.list()
        g.mix.state < {"start": 1, "step": file}  # '<' sets all arguments: all are left out
        doc = g.to_json()
        assert "persist" not in doc["nodes"]["c"] and "persist" not in doc["nodes"]["mix"]
        g.mix.state < (1, 2)
        assert g.to_json()["nodes"]["mix"]["persist"] == {"state": {"args": [1, 2], "kwargs": {}}}
        g.mix.state < ()
        text = json.dumps(doc)
        again = Graph.from_json(text)
        assert again.to_json() == doc
        assert again.c.sink.args == ()
        results = manager.list()
        again.c.sink < results
        again.mix.a < 0
        again.mix.b < 0
        again.run(num_workers=2)
        assert sorted(results) == [0, 1, 2, 3]


def test_component_defined_inside_a_function_is_refused():
    @component
    @inport("x")
    async def Local(x):
        pass

    g = Graph()
    g.loc = Local
    with pytest.raises(GraphError, match="node 'loc'.*defined inside a function"):
        g.to_json()


# -- bad documents ------------------------------------------------------------------------------


def good_doc():
    g = nested_graph()
    g.ws = Add * 2
    g.src.out >> g.ws.x
    return g.to_json()


def _set(doc, path, value):
    *parents, last = path
    target = doc
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("nodes", "src", "module"), "no_such_module_xyz",
         r"nodes\['src'\]\.module: cannot import module 'no_such_module_xyz'"),
        (("nodes", "src", "class"), "NoSuchClass", r"nodes\['src'\]\.class: module .* has no"),
        (("nodes", "src", "module"), "json", r"nodes\['src'\]\.class: module 'json' has no"),
        (("nodes", "src", "class"), "Graph", None),
        (("nodes", "src", "module"), KeyError, r"nodes\['src'\]\.module: missing"),
        (("nodes", "src", "module"), 7, r"nodes\['src'\]\.module: expected a string, got int"),
        (("nodes", "src", "inports", "n", "capacity"), "big",
         r"nodes\['src'\]\.inports\['n'\]\.capacity: expected null \(none given\) or a positive"),
        (("nodes", "src", "inports", "nope"), {}, r"nodes\['src'\]\.inports\['nope'\]: Source has no"),
        (("nodes", "src", "colour"), "red", r"nodes\['src'\]\.colour: unknown key"),
        (("nodes", "src", "group"), "ws", r"nodes\['src'\]\.group: must be null"),
        (("nodes",), [], r"^from_json: nodes: expected an object, got list"),
        (("edges",), KeyError, r"^from_json: edges: missing"),
        (("edges", 0), ["src", "out"], r"edges\[0\]: expected \[src, src_port, dst, dst_port\]"),
        (("edges", 0, 0), "ghost", r"edges\[0\]: no component, group or subgraph named 'ghost'"),
        (("edges", 0, 1), "n", r"edges\[0\]: 'src' has no output port named 'n'"),
        (("edges", 0, 3), "nope", r"edges\[0\]: 'prep' has no input port named 'nope'"),
        (("group_handles", "ws", "count"), 2.5,
         r"group_handles\['ws'\]\.count: expected a positive integer, got 2.5"),
        (("subgraphs", "prep", "nodes", "pre", "class"), "Nope",
         r"subgraphs\['prep'\]\.nodes\['pre'\]\.class: module .* has no 'Nope'"),
        (("subgraphs", "prep", "exports", "inp"), ["pre", "zzz"],
         r"subgraphs\['prep'\]\.exports\['inp'\]: 'pre' has no port named 'zzz'"),
        (("subgraphs", "prep", "subgraphs", "inner", "group_handles", "ws", "inports", "x",
          "initial"), {"$bytes": "***"},
         r"inner'\]\.group_handles\['ws'\]\.inports\['x'\]\.initial\['\$bytes'\]: malformed"),
        (("nodes", "_run"), {"module": "tests.components", "class": "Add"},
         r"nodes\['_run'\]: component name '_run' must not start with '_'"),
        (("nodes", "a b"), {"module": "tests.components", "class": "Add"},
         r"nodes\['a b'\]: 'a b' is not a valid name"),
    ],
)
def test_bad_documents_raise_errors_naming_the_place(path, value, message):
    doc = copy.deepcopy(good_doc())
    _set(doc, path, value)
    if message is None:
        message = r"nodes\['src'\]\.class: .*Graph is not a cascata component"
        doc["nodes"]["src"]["module"] = "cascata"
    with pytest.raises(GraphError, match=message):
        Graph.from_json(doc)


def test_not_json_text_and_not_a_dict_are_refused():
    with pytest.raises(GraphError, match="the text is not JSON"):
        Graph.from_json("{nodes:")
    with pytest.raises(GraphError, match="document: expected an object, got list"):
        Graph.from_json([])


# -- random wirings -----------------------------------------------------------------------------


def _random_graph(rng, depth=0):
    """Singles, groups and nested subgraphs, wired at random through every kind of handle."""
    g = Graph()
    outs, ins = [], []
    for i in range(rng.randint(1, 4)):
        roll = rng.random()
        if roll < 0.4:
            g._add(f"s{i}", Add)
            outs.append(g.nodes[f"s{i}"].out)
            ins += [g.nodes[f"s{i}"].x, g.nodes[f"s{i}"].k]
        elif roll < 0.8 or depth == 2:
            group = g._add(f"g{i}", Add * rng.randint(1, 4))
            member = rng.choice(group.members)
            outs += [group.out, member.out]
            ins += [group.x, group.k, member.x]
        else:
            handle = g._add(f"sub{i}", _random_graph(rng, depth + 1))
            for port in handle._exports.values():
                first = port._resolve_ports()[0] if hasattr(port, "_resolve_ports") else port
                (outs if isinstance(first, OutPort) else ins).append(port)
    for _ in range(rng.randint(0, 6)):
        src, dst = rng.choice(outs), rng.choice(ins)
        how = rng.random()
        if how < 0.2:
            src >> 3 >= dst
        elif how < 0.3:
            src >>= dst
        else:
            src >> dst
        if rng.random() < 0.2:
            dst < rng.choice([5, (1, 2), "seed"])
    for j, port in enumerate(outs[:2] + ins[:2]):
        g.export(port, f"e{j}")
    return g


def _wiring(graph):
    def port_state(p):
        return p.full_name, p.batch_size, repr(p.initial)

    return sorted((e.src.full_name, [port_state(d) for d in e.dsts]) for e in graph.edges)


@pytest.mark.parametrize("seed", range(0, 300, 3))
def test_random_wirings_round_trip_stably_and_rebuild_the_same_edges(seed):
    rng = random.Random(seed)
    with warnings.catch_warnings():
        # random wirings repeat some edges on purpose (each repeat warns): documents hold them too
        warnings.filterwarnings("ignore", ".* is already wired", UserWarning)
        g = _random_graph(rng)
        doc = g.to_json()
        rebuilt = Graph.from_json(doc)
    assert rebuilt.to_json() == doc
    assert _wiring(rebuilt) == _wiring(g)
    assert sorted(rebuilt.nodes) == sorted(g.nodes)


def test_the_round_trip_keeps_whether_a_capacity_was_given():
    g = Graph()
    g.src = Source
    g.dbl = Double  # declares capacity=4
    g.add = Add  # declares none
    g.src.out >> g.dbl.x
    g.dbl.out >> g.add.x
    g.add.k.capacity = 10  # given, though equal to the default
    doc = g.to_json()
    inports = {n: {p: s["capacity"] for p, s in d["inports"].items()} for n, d in doc["nodes"].items()}
    assert inports == {"src": {"n": None}, "dbl": {"x": 4}, "add": {"x": None, "k": 10}}
    rebuilt = Graph.from_json(json.loads(json.dumps(doc)))
    assert rebuilt.to_json() == doc
    given = [(p.full_name, p.given_capacity, p.capacity) for c in rebuilt.nodes.values() for p in c.inports]
    assert given == [("src.n", None, 10), ("dbl.x", 4, 4), ("add.x", None, 10), ("add.k", 10, 10)]
