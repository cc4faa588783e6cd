"""Shared test fixtures: every test is time-bounded (pytest-timeout, see pyproject) and checked
for leaks: a test that leaves a child process, a run directory or a listening socket behind fails.
(Network namespaces are checked by tests/multihost/conftest.py, which knows which ones this
process made: /run/netns is shared with every other test run on the machine.)"""

from __future__ import annotations

import glob
import os
import tempfile
import threading
import time

import psutil
import pytest

from tests.helpers import poll_for  # noqa: F401 - re-exported for tests

# Fixtures for tests that start worker daemons: key_file, daemons.
pytest_plugins = ["tests.daemons"]

# Seconds a test's child processes get to exit after the test before they count as leaked.
LEAK_GRACE = 5.0


def _run_dirs() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), f"cascata-run-{os.getpid()}-*")))


def _listening(me: psutil.Process) -> set[tuple[str, int]]:
    """Addresses the test process listens on (TCP)."""
    return {
        (c.laddr.ip, c.laddr.port)
        for c in me.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
    }


def _reap_zombies(me: psutil.Process, keep: set[int]) -> None:
    """Reap exited children the test did not wait for: orphans adopted while this process is a
    subreaper (tests/faults) would otherwise stay zombies."""
    for p in me.children():
        if p.pid in keep:
            continue
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(p.pid, os.WNOHANG)
        except (psutil.NoSuchProcess, ChildProcessError):
            pass


@pytest.fixture(autouse=True)
def no_leaks():
    me = psutil.Process(os.getpid())
    before = {p.pid for p in me.children(recursive=True)}
    dirs_before = _run_dirs()
    threads_before = set(threading.enumerate())
    listening_before = _listening(me)
    yield
    deadline = time.monotonic() + LEAK_GRACE
    left: list[psutil.Process] = []
    while True:
        _reap_zombies(me, before)
        left = [p for p in me.children(recursive=True) if p.pid not in before]
        left = [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for p in left:
        p.kill()
    _reap_zombies(me, before)
    assert not left, f"test left child processes behind: {[(p.pid, p.name()) for p in left]}"
    leaked_dirs = _run_dirs() - dirs_before
    assert not leaked_dirs, f"test left run directories behind: {sorted(leaked_dirs)}"
    threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert not [t.name for t in threads if t.name.startswith("cascata")], (
        f"test left threads behind: {[t.name for t in threads]}"
    )
    listening = _listening(me) - listening_before
    assert not listening, f"test left listening sockets behind: {sorted(listening)}"
