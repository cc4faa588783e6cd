"""Endpoints: private ipc directories for one run, and address parsing."""

from __future__ import annotations

import glob
import os
import shutil
import tempfile

from ..errors import AddressError

# Unix socket paths are limited to 107 bytes on Linux.
_MAX_IPC_PATH = 107


_PREFIX = "cascata-run-"


def make_run_dir() -> str:
    """A fresh directory only this user can enter (mode 0700) for a run's ipc sockets.

    Directories that dead processes of this user left behind (a caller or daemon killed with
    SIGKILL cannot clean up) are removed first, so they do not pile up in TMPDIR."""
    remove_stale_run_dirs()
    path = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-")  # in TMPDIR, else /tmp
    os.chmod(path, 0o700)
    return path


def remove_stale_run_dirs() -> list[str]:
    """Remove this user's run directories whose owning process no longer exists; return them."""
    removed = []
    for path in glob.glob(os.path.join(tempfile.gettempdir(), f"{_PREFIX}*-*")):
        pid_text = os.path.basename(path)[len(_PREFIX) :].split("-", 1)[0]
        try:
            if not pid_text.isdigit() or os.stat(path).st_uid != os.getuid():
                continue
        except OSError:
            continue
        if not _process_exists(int(pid_text)):
            remove_run_dir(path)
            removed.append(path)
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def ipc_endpoint(run_dir: str, name: str) -> str:
    path = os.path.join(run_dir, name)
    if len(path.encode()) > _MAX_IPC_PATH:
        raise ValueError(f"ipc path {path!r} is longer than {_MAX_IPC_PATH} bytes; set TMPDIR shorter")
    return f"ipc://{path}"


def remove_run_dir(run_dir: str) -> None:
    shutil.rmtree(run_dir, ignore_errors=True)


# Hosts that mean "every interface of this machine".
_ALL_INTERFACES = frozenset({"", "*", "0.0.0.0", "::", "[::]"})


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (a name, an IPv4 address or a bracketed IPv6 one) as ``(host, port)``;
    AddressError saying what is wrong otherwise. Port 0 means "any free port"."""
    if not isinstance(address, str) or ":" not in address:
        raise AddressError(str(address), "expected HOST:PORT, e.g. 10.0.0.5:7700")
    host, _, port_text = address.rpartition(":")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise AddressError(address, f"the port {port_text!r} is not a number from 0 to 65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


def is_all_interfaces(host: str) -> bool:
    return host in _ALL_INTERFACES


def format_address(host: str, port: int | str) -> str:
    """``HOST:PORT`` as users write it (an IPv6 host in brackets), so it can be copied back."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def tcp_endpoint(host: str, port: int | str) -> str:
    """The ZeroMQ endpoint for ``host`` and ``port`` (``"*"`` for a free port)."""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"tcp://{host or '*'}:{port}"
