"""Small traps of the wiring DSL, each met with a clear message or a warning (issue 9, item 9)."""

from __future__ import annotations

import fractions
import re
import warnings

import numpy as np
import pytest

from cascata import Component, Graph, GraphError
from tests.components import Add, Collect, Mix, Pass, Sink, Source


def _pipeline() -> Graph:
    g = Graph()
    g.src = Source
    g.add = Add
    g.sink = Sink
    g.src.n < 3
    return g


# -- the same edge twice ------------------------------------------------------------------------


def test_wiring_the_same_edge_twice_warns_that_items_would_arrive_twice():
    g = _pipeline()
    g.src.out >> g.add.x
    with pytest.warns(UserWarning, match=r"src\.out >> add\.x is already wired.*twice") as caught:
        g.src.out >> g.add.x
    assert caught[0].filename == __file__  # points at the line that wired it again
    assert len(Graph.edges.fget(g)) == 2  # the warning does not change what was asked


def test_wiring_a_group_edge_twice_warns_once():
    g = Graph()
    g.src = Source
    g.ws = Pass * 3
    g.src.out >> g.ws.x
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g.src.out >> g.ws.x
    assert [str(w.message).split(" is already")[0] for w in caught] == ["src.out >> ws.x"]


def test_distinct_edges_between_the_same_components_do_not_warn():
    g = Graph()
    g.src = Source
    g.mix = Mix
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g.src.out >> g.mix.a
        g.src.out >> g.mix.b
        g.other = Source
        g.other.out >> g.mix.a  # fan-in from another publisher


# -- wrong direction ----------------------------------------------------------------------------


def test_inport_on_the_left_names_it_and_suggests_the_swap():
    g = _pipeline()
    with pytest.raises(GraphError, match=r"add\.x is an input port.*right of '>>'"):
        g.add.x >> g.sink.x
    with pytest.raises(GraphError, match=r"add\.x is an input port.*did you mean src\.out >> add\.x"):
        g.add.x >> g.src.out
    with pytest.raises(GraphError, match=r"add\.x is an input port"):
        g.add.x >>= g.sink.x
    with pytest.raises(GraphError, match=r"add\.x is an input port"):
        g.add.x >> 2 >= g.sink.x


def test_outport_on_the_right_names_it():
    g = _pipeline()
    with pytest.raises(GraphError, match=r"add\.out is an output port.*left of '>>'"):
        g.src.out >> g.add.out
    with pytest.raises(GraphError, match=r"add\.out is an output port"):
        g.src.out >> 2 >= g.add.out


def test_group_ports_and_non_ports_in_the_wrong_place_are_named():
    g = _pipeline()
    g.ws = Pass * 2
    with pytest.raises(GraphError, match=r"ws\.x is an input port"):
        g.ws.x >> g.sink.x
    with pytest.raises(GraphError, match=r"ws\.out is an output port"):
        g.src.out >> g.ws.out
    with pytest.raises(GraphError, match=r"left of '>>' must be an output port, got 5"):
        5 >> g.add.x
    g.c = Collect
    with pytest.raises(GraphError, match=r"c\.sink is a persist"):
        g.c.sink >> g.add.x


# -- batch sizes --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [2.5, 2.0, fractions.Fraction(5, 2), True], ids=repr)
def test_batch_size_must_be_a_whole_number(size):
    g = _pipeline()
    g.ws = Pass * 2
    for source in (g.src.out, g.ws.out):
        wanted = "batch size must be a whole number, got " + re.escape(repr(size))
        with pytest.raises(TypeError, match=wanted):
            source >> size >= g.add.x


def test_numpy_integer_batch_size_is_a_whole_number():
    g = _pipeline()
    g.src.out >> np.int64(2) >= g.add.x
    assert g.add.x.batch_size == 2 and type(g.add.x.batch_size) is int


# -- persist arguments ----------------------------------------------------------------------------


def test_persist_needing_an_argument_nobody_set_fails_at_run_before_workers_start():
    g = Graph()
    g.src = Source
    g.c = Collect
    g.ws = Collect * 2
    g.src.n < 3
    g.src.out >> g.c.x
    g.src.out >> g.ws.x
    with pytest.raises(GraphError) as raised:
        g.run(num_workers=2)
    text = str(raised.value)
    assert "persist 'c.sink'" in text and "g.c.sink < value" in text
    assert "persist 'ws.sink'" in text and "g.ws.sink < value" in text
    assert g._run is None  # nothing was started


def test_persist_given_arguments_its_factory_cannot_take_fails_at_run():
    g = Graph()
    g.src = Source
    g.c = Collect
    g.src.n < 3
    g.src.out >> g.c.x
    g.c.sink < (1, 2)
    with pytest.raises(GraphError, match=r"persist 'c\.sink'.*too many positional arguments"):
        g.run(num_workers=1)


def test_components_test_and_run_agree_on_persists_needing_arguments():
    with pytest.raises(TypeError, match="persist 'sink' has a factory that needs arguments"):
        Collect.test(x=1)
    assert issubclass(Collect, Component)
