"""Cases 4 and 5 of the fault suite: the worker hosting a source, a middle stage or a sink is
killed mid-stream (SIGKILL, SIGSEGV, SIGTERM), or a worker is killed while it starts."""

from __future__ import annotations

import multiprocessing.util
import os
import signal
import threading
import time

import pytest

from cascata import WorkerLostError
from tests.helpers import poll_for

from .graphs import ENDLESS, chain, started
from .ledger import Fault, write_flag
from .tools import deadline, wait_flag

CLASSES = {"src": "LedgerSource", "mid": "LedgerStage", "sink": "LedgerSink"}


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV, signal.SIGTERM], ids=lambda s: s.name)
@pytest.mark.parametrize("role", list(CLASSES))
def test_worker_killed_mid_stream_fails_run_naming_worker_host_pid_and_signal(role, sig, ledger, flags):
    g = chain(ledger, ENDLESS, delay=0.001, faults={role: Fault(at=50, flag_dir=flags)})
    with started(g, 3):
        pid = wait_flag(flags)
        with deadline(f"4: {sig.name} of the worker hosting {role}"), pytest.raises(
            WorkerLostError
        ) as info:
            os.kill(pid, sig)
            g.join()
    err = info.value
    assert err.pid == pid
    assert f"pid {pid}" in err.worker and "localhost" in err.worker
    assert f"killed by signal {int(sig)} ({sig.name})" in err.cause
    assert f"{role}@{CLASSES[role]}" in err.components
    assert f"{role}@{CLASSES[role]}" in str(err) and sig.name in str(err)


class _SlowStart:
    """Registered as an after-fork hook: in a forked worker it raises a flag and stalls start-up
    (before the worker binds its sockets and reports READY), so a test can kill it there."""

    def __init__(self, flag_dir: str, parent: int) -> None:
        self.flag_dir = flag_dir
        self.parent = parent

    def __call__(self, _obj: object) -> None:
        if os.getpid() == self.parent:
            return
        write_flag(self.flag_dir, f"start-{os.getpid()}")
        time.sleep(3.0)


@pytest.fixture
def slow_start(flags):
    hook = _SlowStart(flags, os.getpid())
    multiprocessing.util.register_after_fork(hook, hook)
    yield hook
    for key in [k for k in multiprocessing.util._afterfork_registry if k[2] is hook]:
        del multiprocessing.util._afterfork_registry[key]


def test_worker_killed_during_start_up_fails_run_cleanly(slow_start, ledger, flags):
    g = chain(ledger, 10)
    with deadline("5: worker killed before READY") as t, pytest.raises(WorkerLostError) as info:
        killer = threading.Thread(target=_kill_first_starter, args=(flags, t))
        killer.start()
        try:
            g.run(3)
        finally:
            killer.join()
    err = info.value
    assert "killed by signal 9 (SIGKILL)" in err.cause
    assert err.pid is not None and f"pid {err.pid}" in err.worker


def _kill_first_starter(flag_dir: str, timing) -> None:
    names = poll_for(lambda: sorted(n for n in os.listdir(flag_dir) if n.startswith("start-")))
    timing.started = time.time()
    os.kill(int(names[0].split("-")[1]), signal.SIGKILL)
