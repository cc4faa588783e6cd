"""Endpoints: private ipc directories for one run, and address parsing."""

from __future__ import annotations

import os
import shutil
import tempfile

# Unix socket paths are limited to 107 bytes on Linux.
_MAX_IPC_PATH = 107


def make_run_dir() -> str:
    """A fresh directory only this user can enter (mode 0700) for a run's ipc sockets."""
    path = tempfile.mkdtemp(prefix=f"cascata-run-{os.getpid()}-")  # in TMPDIR, else /tmp
    os.chmod(path, 0o700)
    return path


def ipc_endpoint(run_dir: str, name: str) -> str:
    path = os.path.join(run_dir, name)
    if len(path.encode()) > _MAX_IPC_PATH:
        raise ValueError(f"ipc path {path!r} is longer than {_MAX_IPC_PATH} bytes; set TMPDIR shorter")
    return f"ipc://{path}"


def remove_run_dir(run_dir: str) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)
