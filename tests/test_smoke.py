import multiprocessing

from cascata import Graph, component, inport, outport, persist


@component
@inport("n")
@outport("out")
async def Source(n, out):
    for i in range(n):
        await out.send(i)


@component
@inport("x")
@inport("k", default=1)
@outport("out")
async def Add(x, k, out):
    await out.send(x + k)


@component
@inport("x")
@persist("sink", lambda lst: lst)
async def Collect(x, sink):
    sink.get().append(x)


def test_pipeline_delivers_every_item_in_order():
    with multiprocessing.Manager() as manager:
        results = manager.list()
        g = Graph()
        g.src = Source
        g.add = Add
        g.out = Collect
        g.src.n < 100
        g.src.out >> g.add.x
        g.add.out >> g.out.x
        g.out.sink < results
        g.run(3)
        assert list(results) == [i + 1 for i in range(100)]


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
