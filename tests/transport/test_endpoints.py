import os
import stat
import subprocess
import sys

import pytest

from cascata.transport.endpoints import ipc_endpoint, make_run_dir, remove_run_dir


def test_run_directory_is_private_and_removed():
    path = make_run_dir()
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
        assert f"cascata-run-{os.getpid()}-" in os.path.basename(path)
        assert ipc_endpoint(path, "d0") == f"ipc://{path}/d0"
    finally:
        remove_run_dir(path)
    assert not os.path.exists(path)


def test_too_long_ipc_path_is_refused_saying_what_to_do():
    with pytest.raises(ValueError, match="longer than 107 bytes; set TMPDIR shorter"):
        ipc_endpoint("/tmp/" + "x" * 120, "d0")


def test_run_directories_of_dead_processes_are_swept_by_the_next_run(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    # a process that makes a run directory and ends without removing it
    code = "from cascata.transport.endpoints import make_run_dir; print(make_run_dir())"
    left = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    stale = [p for p in os.listdir(tmp_path) if p == os.path.basename(left.stdout.strip())]
    assert len(stale) == 1
    mine = make_run_dir()
    try:
        assert os.listdir(tmp_path) == [os.path.basename(mine)]
    finally:
        remove_run_dir(mine)
