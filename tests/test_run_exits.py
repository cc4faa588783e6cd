"""sys.exit(), SystemExit and KeyboardInterrupt raised inside a component are that component's
ComponentError, on every path (a source, a consumer task, an inline consumer); os._exit stays a
lost worker."""

import os
import sys

import pytest

from cascata import ComponentError, Graph, WorkerLostError, component, inport, outport
from tests.components import Sink, Source


def _leave(how):
    if how == "sys.exit(3)":
        sys.exit(3)
    if how == "SystemExit":
        raise SystemExit
    if how == "KeyboardInterrupt":
        raise KeyboardInterrupt
    os._exit(3)


@component
@inport("how")
@outport("out")
async def LeavingSource(how, out):
    await out.send(1)
    _leave(how)


@component
@inport("x")
@inport("how")
@outport("out")
async def Leaving(x, how, out):
    if x == 3:
        _leave(how)
    await out.send(x)


RAISED = {
    "sys.exit(3)": r"raised SystemExit: 3",
    "SystemExit": r"raised SystemExit\b",
    "KeyboardInterrupt": r"raised KeyboardInterrupt\b",
}


def _graph(path, how):
    g = Graph()
    if path == "source":
        g.src = LeavingSource
        g.src.how < how
    else:
        g.src = Source
        g.src.n < 10
        g.mid = Leaving
        g.mid.how < how
        g.src.out >> g.mid.x
    g.sink = Sink
    (g.src.out if path == "source" else g.mid.out) >> g.sink.x
    return g


# workers=1 puts everything in one worker, where the consumer runs inline in its publisher's send;
# workers=3 gives each component its own worker, so the consumer is a task reading a channel.
@pytest.mark.parametrize(
    ("path", "workers"), [("source", 2), ("consumer task", 3), ("inline consumer", 1)]
)
@pytest.mark.parametrize("how", sorted(RAISED))
def test_an_exit_raised_in_a_component_is_its_component_error(path, workers, how):
    g = _graph(path, how)
    name = "src@LeavingSource" if path == "source" else "mid@Leaving"
    with pytest.raises(ComponentError, match=rf"{name} {RAISED[how]}") as info:
        g.run(workers)
    assert "_leave" in info.value.traceback


def test_os_exit_in_a_component_stays_a_lost_worker_with_an_exit_code_hint():
    with pytest.raises(WorkerLostError, match=r"exited with code 3") as info:
        _graph("consumer task", "os._exit").run(3)
    assert "OOM" not in str(info.value)
    assert "os._exit" in info.value.hint
