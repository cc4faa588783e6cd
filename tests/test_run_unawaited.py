"""A send that is not awaited is the component's error, whatever the placement; a runner that
returns a value (instead of sending it) gets one warning naming it."""

import pytest

from cascata import ComponentError, Graph, component, inport, outport
from tests.components import Sink, Source


@component
@inport("n")
@outport("out")
async def Forgetful(n, out):
    for i in range(n):
        out.send(i)  # the bug: no await


@component
@inport("x")
@outport("out")
async def ForgetfulStage(x, out):
    if x >= 0:
        out.send(x)  # the bug, in a consumer


@component
@inport("n")
@outport("out")
async def ForgetfulLater(n, out):
    # kept, never awaited: no line says `out.send(...)` alone, so only the run can tell, once
    # the send had to wait (a full connection) or ran its receiver inline
    pending = [out.send(i) for i in range(n)]
    del pending


# 1 worker: the consumer fires inline in the producer's send; 3 workers: each its own process
@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize(
    ("source", "stage", "who"),
    [(Forgetful, None, "src@Forgetful"), (Source, ForgetfulStage, "mid@ForgetfulStage")],
)
def test_a_send_without_await_is_a_component_error_naming_component_and_port(
    workers, source, stage, who
):
    g = Graph()
    g.src = source
    g.src.n < 2000
    end = g.src.out
    if stage is not None:
        g.mid = stage
        end >> g.mid.x
        end = g.mid.out
    g.sink = Sink
    end >> g.sink.x
    with pytest.raises(ComponentError, match=rf"{who}.*'out'.*await out\.send\(") as info:
        g.run(workers)
    assert info.value.component == who


@pytest.mark.parametrize("workers", [1, 2])
def test_a_kept_send_never_awaited_is_found_when_it_would_lose_the_item(workers):
    g = Graph()
    g.src = ForgetfulLater
    g.sink = Sink
    g.src.n < 50_000  # beyond any connection's room: some sends must wait
    g.src.out >> g.sink.x
    with pytest.raises(ComponentError, match=r"src@ForgetfulLater.*'out'.*await out\.send\("):
        g.run(workers)


@component
@inport("x")
async def Returns(x):
    return x * 2  # probably meant to be sent


@pytest.mark.parametrize("workers", [1, 2])
def test_a_runner_returning_a_value_warns_once_naming_it(capfd, workers):
    g = Graph()
    g.src = Source
    g.ret = Returns
    g.src.n < 100
    g.src.out >> g.ret.x
    g.run(workers)
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if "returned" in line]
    assert len(lines) == 1, err
    assert "ret@Returns" in lines[0] and "send" in lines[0]
