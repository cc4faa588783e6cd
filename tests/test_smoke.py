from cascata import Graph
from tests.components import Add, Collect, Source, run_collect


def test_pipeline_delivers_every_item_in_order():
    g = Graph()
    g.src = Source
    g.add = Add
    g.out = Collect
    g.src.n < 100
    g.src.out >> g.add.x
    g.add.out >> g.out.x
    assert run_collect(g, 3) == [i + 1 for i in range(100)]


def test_wiring_across_two_graphs_is_refused_naming_the_ports():
    import pytest

    from cascata import GraphError

    g1, g2 = Graph(), Graph()
    g1.a = Add
    g2.b = Add
    with pytest.raises(GraphError, match=r"a\.out.*b\.x.*different graphs"):
        g1.a.out >> g2.b.x


def test_component_names_must_be_identifiers():
    import pytest

    from cascata import GraphError

    g = Graph()
    with pytest.raises(GraphError, match="must be a Python identifier"):
        setattr(g, "a b", Add)
