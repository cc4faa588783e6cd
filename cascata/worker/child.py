"""A worker process of a daemon, forked by its fork server (forkserver.py) for one plan slot with
the arguments ``INDEX CTL HOST KEY_FILE ADDRESS PLAN_FILE`` (no secret among them: the key is
read from the key file).

It loads the cluster key, unpickles the plan (the first and only place on this host that does),
and runs the same :func:`~cascata.worker.process.worker_main` as a local worker, with its data
socket on ``HOST`` (tcp, CurveZMQ). A plan that cannot be loaded (a module missing here, say) is
reported to the coordinator as :class:`~cascata.errors.PlanRefusedError` naming this host.
"""

from __future__ import annotations

import pickle

import dill
import zmq

from ..errors import PlanRefusedError
from ..transport import control, sockets
from ..transport.auth import load_key
from ..transport.endpoints import tcp_endpoint
from .ending import start_process
from .process import worker_main

# Seconds a worker that could not load its plan waits for the coordinator's ABORT before exiting
# (so its error arrives before the exit is noticed).
SETUP_FAILURE_WAIT = 5.0


def main(argv: list[str], parent: int) -> int:
    """Run worker ``INDEX`` of the plan in ``PLAN_FILE``; ``parent`` is the process whose exit
    means nobody will collect our work (the fork server, which exits with the daemon)."""
    # As a forked local worker begins: SIGINT ignored (the daemon decides how its workers stop),
    # a subreaper for what components start, a clean slate for the multiprocessing exit machinery.
    start_process()
    index_text, ctl, host, key_file, address, plan_path = argv
    index = int(index_text)
    key = load_key(key_file)
    try:
        with open(plan_path, "rb") as f:
            plan = dill.loads(f.read())
    except Exception as exc:
        _report(index, ctl, PlanRefusedError(address, _why(exc)))
        return 3
    worker_main(plan, index, ctl, tcp_endpoint(host, "*"), parent, key)
    return 0


def _why(exc: Exception) -> str:
    if isinstance(exc, ModuleNotFoundError):
        return (
            f"module {exc.name!r} is not installed there (the plan's components need it); install "
            "it on that host, or define the component in the script you run so it travels by value"
        )
    return f"its plan could not be loaded: {type(exc).__name__}: {exc}"


def _report(index: int, ctl: str, error: PlanRefusedError) -> None:
    ctx = zmq.Context()
    sock = sockets.open_control_dealer(ctx, control.WorkerId(index).control)
    try:
        sockets.connect(sock, ctl)
        sock.send(control.Error(error=pickle.dumps(error)).encode())
        sock.poll(SETUP_FAILURE_WAIT * 1000)
    finally:
        sockets.close(sock, linger=1000)
        ctx.term()

