"""The daemon's fork server: a clean process that forks one fresh worker process per plan slot.

A worker started as a fresh interpreter first imports cascata and what it needs (most of a
second on a busy host), for every worker of every plan. The daemon instead starts this process
once: it imports that, then forks a worker whenever the daemon asks. It never receives a plan
nor anything from the network: the daemon's requests come over a private socket pair and carry
only a worker's arguments (index, endpoints, paths), so every worker starts from the same clean
state, serves one plan slot and exits; the plan is unpickled by that worker alone (child.py).
The daemon itself forks nothing: it runs threads (the ZAP authenticator, ZeroMQ's I/O), which a
fork would copy half-way.

The protocol, one JSON object a line: the daemon sends ``{"fork": [args]}``; the server says
``{"ready": pid}`` once, ``{"pid": n}`` (or ``{"error": text}``) per request, and ``{"exited":
pid, "status": wait status}`` when a worker ends (it is the workers' parent, so it alone can
wait for them). The server exits when the daemon's end of the pair closes: the daemon stopped
or died; the workers then see their parent gone and exit too (process.py's heartbeat).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import traceback
from typing import Any

from . import child, ending


def main(argv: list[str]) -> None:
    # Ctrl-C at the daemon's terminal is the daemon's to handle; the pair closing ends us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=int(argv[0]))
    try:
        _serve(sock)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the daemon is gone


def _serve(sock: socket.socket) -> None:
    # SIGCHLD wakes select() through this pipe, so an exit is reported at once, not polled for.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, _on_child)
    _send(sock, {"ready": os.getpid()})
    pending = b""
    while True:
        ready, _, _ = select.select([sock, wake_r], [], [])
        if wake_r in ready:
            while _read_some(wake_r):
                pass
        _reap(sock)
        if sock in ready:
            data = sock.recv(1 << 16)
            if not data:
                return
            *lines, pending = (pending + data).split(b"\n")
            for line in lines:
                _send(sock, _fork(json.loads(line)["fork"], sock, (wake_r, wake_w)))


def _on_child(signum: int, frame: Any) -> None:
    """Nothing to do: the wakeup fd already woke the loop (a handler must exist for it to)."""


def _read_some(fd: int) -> bool:
    try:
        return bool(os.read(fd, 512))
    except BlockingIOError:
        return False


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(sock, {"exited": pid, "status": status})


def _fork(args: list[str], sock: socket.socket, fds: tuple[int, int]) -> dict[str, Any]:
    server = os.getpid()
    try:
        pid = os.fork()
    except OSError as exc:
        return {"error": f"fork failed: {exc}"}
    if pid:
        return {"pid": pid}
    code = 1
    try:
        # A session of its own: the stop ladder signals the worker's whole process group (what
        # its components started, too), and no terminal's Ctrl-C reaches it.
        os.setsid()
        sock.close()
        for fd in fds:
            os.close(fd)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        code = child.main(args, server)
    except BaseException:
        traceback.print_exc()
    ending.end_process(code)
    return {}  # never reached: end_process exits


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


if __name__ == "__main__":
    main(sys.argv[1:])
