"""Shared test fixtures: every test is time-bounded (pytest-timeout, see pyproject) and checked
for leaks: a test that leaves a child process or a run directory behind fails."""

from __future__ import annotations

import glob
import os
import tempfile
import threading
import time

import psutil
import pytest

from tests.helpers import poll_for  # noqa: F401 - re-exported for tests

# Seconds a test's child processes get to exit after the test before they count as leaked.
LEAK_GRACE = 5.0


def _run_dirs() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), f"cascata-run-{os.getpid()}-*")))


@pytest.fixture(autouse=True)
def no_leaks():
    me = psutil.Process(os.getpid())
    before = {p.pid for p in me.children(recursive=True)}
    dirs_before = _run_dirs()
    threads_before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + LEAK_GRACE
    left: list[psutil.Process] = []
    while True:
        left = [p for p in me.children(recursive=True) if p.pid not in before]
        left = [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for p in left:
        p.kill()
    assert not left, f"test left child processes behind: {[(p.pid, p.name()) for p in left]}"
    leaked_dirs = _run_dirs() - dirs_before
    assert not leaked_dirs, f"test left run directories behind: {sorted(leaked_dirs)}"
    threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert not [t.name for t in threads if t.name.startswith("cascata")], (
        f"test left threads behind: {[t.name for t in threads]}"
    )
