import os
import stat

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
