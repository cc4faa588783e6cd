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
