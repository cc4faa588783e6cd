"""Graphs of ledger components for the fault suite, and a guard that never leaves a run behind."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cascata import Graph

from .ledger import NO_FAULT, Fault, LedgerSink, LedgerSource, LedgerStage

# Items of a stream meant to be cut by a fault: more than any test waits for.
ENDLESS = 10**7


def chain(
    ledger: str,
    n: int,
    kind: str = "int",
    delay: float = 0.0,
    faults: dict[str, Fault] | None = None,
) -> Graph:
    """src (LedgerSource) -> mid (LedgerStage) -> sink (LedgerSink); ``faults`` by name."""
    g = Graph()
    g.src = LedgerSource
    g.mid = LedgerStage
    g.sink = LedgerSink
    g.src.n < n
    g.src.kind < kind
    g.src.delay < delay
    g.mid.n < n
    g.sink.n < n
    g.sink.kind < kind
    g.sink.ledger < ledger
    g.src.out >> g.mid.x
    g.mid.out >> g.sink.x
    for name, fault in (faults or {}).items():
        getattr(g, name).fault < fault
    return g


def pair_of_stages(ledger: str, n: int, faults: dict[str, Fault]) -> Graph:
    """src fans out to stages a and b, each feeding its own sink (sa, sb)."""
    g = Graph()
    g.src = LedgerSource
    g.src.n < n
    for stage, sink in (("a", "sa"), ("b", "sb")):
        setattr(g, stage, LedgerStage)
        setattr(g, sink, LedgerSink)
        getattr(g, stage).n < n
        getattr(g, stage).fault < faults.get(stage, NO_FAULT)
        getattr(g, sink).ledger < ledger
        getattr(g, sink).tag < sink
        g.src.out >> getattr(g, stage).x
        getattr(g, stage).out >> getattr(g, sink).x
    return g


def stop(graph: Graph) -> None:
    """Stop a run that a test started and could not finish (as Ctrl-C during join() would)."""
    run = graph._run
    if run is None:
        return
    run._abort.set()
    try:
        graph.join()
    except BaseException:  # whatever it ended with, it has ended
        pass


@contextmanager
def started(graph: Graph, num_workers: int, **options: Any) -> Iterator[Graph]:
    """``graph.start()``; on the way out, stop the run if the test did not join it."""
    graph.start(num_workers, **options)
    try:
        yield graph
    finally:
        stop(graph)
