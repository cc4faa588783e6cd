"""Cases 1-3 of the fault suite: user code raising, in every role and at every point of the
stream, with exceptions that do and do not survive pickling, and two at once."""

from __future__ import annotations

import pytest

from cascata import ComponentError

from .graphs import chain, pair_of_stages
from .ledger import LAST, Fault
from .tools import deadline

N = 200
CLASSES = {"src": "LedgerSource", "mid": "LedgerStage", "sink": "LedgerSink"}
WHERE = {"src": "source", "mid": "stage", "sink": "sink"}
POSITIONS = {"first": 0, "middle": N // 2, "last": LAST}


def _run_failing(ledger, flags, role, fault, workers, label):
    g = chain(ledger, N, faults={role: fault})
    with deadline(label) as t, pytest.raises(ComponentError) as info:
        try:
            g.run(workers)
        finally:
            t.since_flag(flags)
    return info.value


@pytest.mark.parametrize("at", list(POSITIONS))
@pytest.mark.parametrize("role", list(CLASSES))
def test_component_raising_fails_run_naming_component_worker_and_traceback(role, at, ledger, flags):
    fault = Fault(at=POSITIONS[at], how="raise", flag_dir=flags)
    err = _run_failing(ledger, flags, role, fault, 3, f"1: {role} raises at {at} item")
    assert err.component == f"{role}@{CLASSES[role]}"
    assert err.exc_type == "ValueError"
    assert err.exc_message == f"injected fault in {WHERE[role]}"
    assert err.worker.startswith("worker-") and "localhost" in err.worker and "pid " in err.worker
    assert "ledger.py" in err.traceback and 'raise ValueError(f"injected fault in {where}")' in (
        err.traceback
    )
    assert f"component {role}@{CLASSES[role]} raised ValueError" in str(err)


@pytest.mark.parametrize("role", list(CLASSES))
def test_component_raising_in_one_worker_is_named_though_stages_run_inline(role, ledger, flags):
    # One worker: mid and sink run inline inside src's send, so the error crosses their frames.
    fault = Fault(at=POSITIONS["middle"], how="raise", flag_dir=flags)
    err = _run_failing(ledger, flags, role, fault, 1, f"1: {role} raises, one worker (inline)")
    assert err.component == f"{role}@{CLASSES[role]}"
    assert "ledger.py" in err.traceback


@pytest.mark.parametrize(
    ("how", "type_name", "message"),
    [
        ("unpicklable-args", "NotPicklableArgs", "injected fault in stage (code 7)"),
        ("lock", "HoldsLock", "injected fault in stage"),
        ("bad-str", "BadStr", ""),
    ],
)
def test_exception_that_cannot_be_pickled_still_gives_component_error(
    how, type_name, message, ledger, flags
):
    fault = Fault(at=N // 2, how=how, flag_dir=flags)
    err = _run_failing(ledger, flags, "mid", fault, 3, f"2: unpicklable exception ({how})")
    assert err.component == "mid@LedgerStage"
    assert err.exc_type == type_name
    if message:
        assert err.exc_message == message
    assert type_name in err.traceback and "ledger.py" in err.traceback


def test_two_components_failing_at_once_raise_one_error_mentioning_the_other(ledger, flags):
    # b fails at its first item but first blocks its worker for a moment; a fails as soon as b
    # is inside that failure, so b's error arrives while the run is already being stopped.
    faults = {
        "a": Fault(at=0, how="raise", flag_dir=flags, name="a", after="b"),
        "b": Fault(at=0, how="raise", flag_dir=flags, name="b", pause=0.3),
    }
    g = pair_of_stages(ledger, N, faults)
    with deadline("3: two components fail at once") as t, pytest.raises(ComponentError) as info:
        try:
            g.run(5)
        finally:
            t.since_flag(flags, "a")
    err = info.value
    assert err.component == "a@LedgerStage"
    assert "b@LedgerStage" in str(err)
    assert "injected fault in stage" in str(err).split("b@LedgerStage", 1)[1]


def test_an_error_mentioning_others_keeps_its_type_fields_and_mention_through_pickling():
    import pickle

    from cascata.errors import WorkerLostError, with_others

    first = WorkerLostError("worker-1 (pid 9, localhost)", 9, "killed by signal 9 (SIGKILL)", ["a@A"])
    other = ComponentError("b@B", "worker-2 (pid 10, localhost)", "KeyError", "'k'", "tb")
    same = ComponentError("b@B", "worker-2 (pid 10, localhost)", "KeyError", "'j'", "tb")
    err = pickle.loads(pickle.dumps(with_others(first, [other, same])))
    assert type(err) is WorkerLostError and err.pid == 9 and err.components == ["a@A"]
    assert err.also == ("b@B raised KeyError: 'k' (in worker-2 (pid 10, localhost))",)
    assert str(err).endswith("Also failed at about the same time:\n  " + err.also[0])
