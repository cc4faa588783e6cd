"""The fault suite's test process is a child subreaper while it runs, so processes orphaned by a
fault (a killed user script's workers, a dead worker's children) become its children, and the
autouse leak check of tests/conftest.py finds them instead of losing them to init."""

from __future__ import annotations

import ctypes
import tempfile

import pytest

_PR_SET_CHILD_SUBREAPER = 36


def _set_subreaper(on: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


@pytest.fixture(scope="package", autouse=True)
def subreaper():
    _set_subreaper(True)
    yield
    _set_subreaper(False)


@pytest.fixture
def flags():
    """A directory for progress flags (see ledger.Fault)."""
    with tempfile.TemporaryDirectory(prefix="cascata-flags-") as path:
        yield path


@pytest.fixture
def ledger():
    """A directory the ledger sinks write into."""
    with tempfile.TemporaryDirectory(prefix="cascata-ledger-") as path:
        yield path


@pytest.fixture
def trap(tmp_path):
    """A path that a pickle trap (tools.Trap) would create if something unpickled it."""
    return str(tmp_path / "unpickled")
