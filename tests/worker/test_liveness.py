"""The liveness rule, table-driven: answers and CPU samples in, a verdict out (no processes)."""

import pytest

from cascata.worker.liveness import Liveness, ProcessSample

RUNNING = "R"


def _run(events, limit=1.0):
    """Feed (time, kind, value) events; return the verdict after the last one."""
    watch = Liveness(limit, 0.0)
    now = 0.0
    for now, kind, value in events:
        if kind == "answer":
            watch.answered(now)
        elif kind == "sample":
            watch.sampled(now, value)
    return watch.verdict(now)


@pytest.mark.parametrize(
    ("events", "lost"),
    [
        # answering regularly: alive
        ([(0.5, "answer", None), (1.0, "answer", None), (1.5, "answer", None)], None),
        # silent, but CPU time keeps growing (a C call holding the GIL): busy, alive
        ([(t / 4, "sample", ProcessSample(int(t), RUNNING)) for t in range(1, 40)], None),
        # silent and no CPU used for longer than the limit: frozen
        ([(t / 4, "sample", ProcessSample(7, "S")) for t in range(1, 10)], "frozen"),
        # busy first, then nothing for longer than the limit: frozen
        (
            [(0.5, "sample", ProcessSample(1, RUNNING)), (1.0, "sample", ProcessSample(5, RUNNING))]
            + [(1.0 + t / 4, "sample", ProcessSample(5, "S")) for t in range(1, 6)],
            "frozen",
        ),
        # stopped (SIGSTOP): no CPU, reported as stopped
        ([(t / 4, "sample", ProcessSample(3, "T")) for t in range(1, 10)], "stopped"),
        # silent for less than the limit since the last CPU progress: alive
        (
            [(0.5, "sample", ProcessSample(1, RUNNING)), (1.75, "sample", ProcessSample(2, RUNNING)),
             (2.5, "sample", ProcessSample(2, "S"))],
            None,
        ),
        # no /proc (no samples): silence alone decides, as before
        ([(0.5, "sample", None), (1.5, "sample", None)], "stopped answering"),
    ],
)
def test_a_worker_is_lost_only_when_silent_and_idle_for_the_limit(events, lost):
    verdict = _run(events)
    if lost is None:
        assert verdict is None
    else:
        assert verdict is not None and verdict.startswith(lost)
