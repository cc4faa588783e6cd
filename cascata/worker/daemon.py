"""The ``cascata worker`` daemon: serves plans from authenticated coordinators on one host.

It listens on one ROUTER socket (CurveZMQ server, ZAP allow-list of the cluster key, in a thread).
A coordinator connects out to it (DEALER), says :class:`~cascata.transport.control.Hello` with its
versions, and sends a :class:`~cascata.transport.control.Launch` carrying the pickled plan: the
daemon has its fork server (forkserver.py: a clean process that imported cascata once) fork one
fresh worker process per plan slot, and those unpickle it; the daemon itself never does, it only
passes bytes. Workers talk to the daemon over ipc; the daemon
relays their control messages to the coordinator and back. Heartbeats go both ways: when the
coordinator falls silent the daemon stops the plan's workers and waits for the next plan. Anything
malformed is logged and answered, never fatal; one plan runs at a time.
"""

from __future__ import annotations

import hmac
import logging
import os
import signal
import sys
import time
from typing import Any

import zmq

from ..transport import control, sockets
from ..transport.auth import load_key, start_authenticator
from ..transport.endpoints import format_address, is_all_interfaces, parse_address, tcp_endpoint
from .forks import ForkServer, ForkServerError
from .machine import available_cpus, machine_id
from .session import Session, versions

logger = logging.getLogger("cascata.worker")

# Milliseconds the service loop waits for a message per turn (bounds timer and signal reaction).
POLL_MS = 50
# Plan ids remembered to refuse a replay; the oldest are forgotten beyond this many (at 40 bytes
# each, a few hundred kB), so a daemon serving plans for weeks does not grow.
SEEN_PLANS = 10_000
# Coordinator connections remembered as greeted (a valid HELLO, no LAUNCH yet); the oldest are
# forgotten beyond this many (a coordinator that only asks what the daemon offers never launches).
GREETED = 1_000
# Random bytes of the nonce in a WELCOME, which the connection's LAUNCH must carry back.
NONCE_BYTES = 16


class Refusal(ValueError):
    """A well-formed request the daemon will not serve; its message goes to the peer as is."""


class Daemon:
    """One host's service. ``serve()`` runs until SIGTERM/SIGINT, ending any run it serves."""

    def __init__(
        self, listen: str, key_file: str, processes: int | None, allow_all_interfaces: bool = False
    ) -> None:
        host, port = parse_address(listen)
        if is_all_interfaces(host) and not allow_all_interfaces:
            raise ValueError(
                f"--listen {listen} would accept connections on every network interface; give the "
                "address of the interface the other hosts reach (e.g. 10.0.0.5:7700), or add "
                "--allow-all-interfaces if you mean it"
            )
        # Offered by default (this machine's CPUs), the processes are shared with other daemons
        # on the same machine; a number the operator gave stands as given.
        self.elastic = processes is None
        processes = available_cpus() if processes is None else processes
        if processes < 1:
            raise ValueError(f"--processes must be at least 1, got {processes}")
        self.key_file = os.path.abspath(key_file)
        self.key = load_key(self.key_file)
        self.host = host
        self.processes = processes
        self.ctx = zmq.Context()
        self.auth = start_authenticator(self.ctx, self.key)
        self.router = sockets.open_control_router(self.ctx)
        try:
            bound = sockets.bind(self.router, tcp_endpoint(host, port or "*"), self.key)
        except BaseException:
            self.close()
            raise
        self.address = format_address(host, bound.rsplit(":", 1)[1])
        # Started now, so its imports are done before the first plan arrives.
        self.forks: ForkServer | None = None
        try:
            self.forks = ForkServer()
        except BaseException:
            self.close()
            raise
        self.session: Session | None = None
        self._seen: dict[str, None] = {}
        self._greeted: dict[bytes, bytes] = {}  # peer -> the nonce of its WELCOME
        self._stop = False

    def ready_line(self) -> str:
        py, ver, dill_ver = versions()
        return (
            f"cascata worker ready on {self.address}: {self.processes} processes, "
            f"Python {py}, cascata {ver}, dill {dill_ver}"
        )

    def serve(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        print(self.ready_line(), flush=True)
        try:
            while not self._stop:
                self._turn()
        finally:
            if self.session is not None:
                self._refuse(self.session.peer, f"the daemon at {self.address} is shutting down")
                self.session.stop_now()
                self.session = None
            self.close()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._stop = True

    def close(self) -> None:
        if getattr(self, "forks", None) is not None:
            self.forks.close()
        sockets.close(self.router)
        self.auth.stop()
        self.ctx.term()

    # -- one turn of the service loop -------------------------------------------------------------

    def _turn(self) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        forks = self.forks.fileno()
        if forks >= 0:
            poller.register(forks, zmq.POLLIN)
        session = self.session
        if session is not None:
            poller.register(session.workers_router, zmq.POLLIN)
        ready = dict(poller.poll(POLL_MS))
        if forks in ready:
            self.forks.collect()  # workers' exits; the server's death
        self.forks.restart_if_due()
        if self.router in ready:
            self._drain_coordinators()
        if session is not None:
            if session.workers_router in ready:
                session.relay_from_workers(self.router)
            session.tick(self.router)
            if session.finished:
                logger.info("plan %s ended", session.plan_id)
                session.close()
                self.session = None

    def _drain_coordinators(self) -> None:
        while True:
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            peer, body = frames[0], frames[1:]
            try:
                self._handle(peer, body)
            except Refusal as exc:
                logger.warning("request from %s refused: %s", _peer_name(peer), exc)
                self._refuse(peer, str(exc))
            except Exception as exc:  # a bad message must never take the daemon down
                logger.warning("message from %s refused: %s", _peer_name(peer), exc)
                self._refuse(peer, f"malformed message: {exc}")

    def _handle(self, peer: bytes, body: list[bytes]) -> None:
        session = self.session
        if len(body) == 2:  # a control message for one of the plan's workers
            if session is None or peer != session.peer:
                raise ValueError("a worker message outside any plan of this coordinator")
            session.relay_to_worker(body[0], body[1])
            return
        if len(body) != 1:
            raise ValueError(f"{len(body)} frames; expected 1 or 2")
        record = control.decode(body[0])
        if session is not None and peer == session.peer:
            session.last_seen = time.monotonic()
        if isinstance(record, control.Hello):
            self._hello(peer, record)
        elif isinstance(record, control.Launch):
            self._launch(peer, record)
        elif isinstance(record, control.Release) and session is not None and peer == session.peer:
            session.release(record.grace)
        elif not isinstance(record, control.Beat):
            raise ValueError(f"unexpected {record.KIND!r} message")

    def _hello(self, peer: bytes, hello: control.Hello) -> None:
        py, ver, dill_ver = versions()
        mismatch = []
        if hello.python.split(".")[:2] != py.split(".")[:2]:
            mismatch.append(f"Python {hello.python} there, {py} here")
        if hello.cascata != ver:
            mismatch.append(f"cascata {hello.cascata} there, {ver} here")
        if hello.by_value and hello.dill != dill_ver:
            mismatch.append(f"dill {hello.dill} there, {dill_ver} here (code travels by value)")
        self._greeted.pop(peer, None)
        if mismatch:
            reason = "versions differ: " + "; ".join(mismatch) + ". Install the same versions on every host."
            logger.warning("refused coordinator %s: %s", _peer_name(peer), reason)
            self._refuse(peer, reason)
            return
        nonce = os.urandom(NONCE_BYTES)
        self._greeted[peer] = nonce
        if len(self._greeted) > GREETED:
            del self._greeted[next(iter(self._greeted))]
        welcome = control.Welcome(
            self.address, self.processes, py, ver, dill_ver, nonce,
            machine_id() if self.elastic else "", available_cpus()
        )
        self.router.send_multipart([peer, welcome.encode()])

    def _launch(self, peer: bytes, launch: control.Launch) -> None:
        # The version check is what makes a plan safe to load here: no HELLO, no plan.
        if peer not in self._greeted:
            raise Refusal(
                f"plan {launch.plan_id} came before a HELLO on this connection; a coordinator "
                "says HELLO with its versions (and gets WELCOME) before each LAUNCH"
            )
        if launch.plan_id in self._seen:
            raise Refusal(f"plan {launch.plan_id} was already run here; a replayed plan is refused")
        if not hmac.compare_digest(launch.nonce, self._greeted[peer]):
            raise Refusal(
                f"plan {launch.plan_id} does not carry the nonce of the WELCOME this connection "
                "received: a replayed (recorded) plan is refused"
            )
        if self.session is not None:
            raise Refusal(f"busy with plan {self.session.plan_id} of another run; try again later")
        if not launch.workers or len(launch.workers) > self.processes:
            raise Refusal(f"asks for {len(launch.workers)} workers; this host offers {self.processes}")
        del self._greeted[peer]  # one HELLO admits one plan
        self._seen[launch.plan_id] = None
        if len(self._seen) > SEEN_PLANS:
            del self._seen[next(iter(self._seen))]
        session = Session(self.ctx, peer, launch, self.host, self.address, self.key_file, self.forks)
        logger.info("plan %s: starting %d worker(s)", launch.plan_id, len(launch.workers))
        try:
            session.start(self.router)
        except BaseException as exc:
            session.stop_now()
            if isinstance(exc, ForkServerError):
                raise Refusal(f"could not start the workers of plan {launch.plan_id}: {exc}") from None
            raise
        self.session = session

    def _refuse(self, peer: bytes, reason: str) -> None:
        try:
            self.router.send_multipart([peer, control.Refused(reason).encode()], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # the peer is gone


def _peer_name(peer: bytes) -> str:
    return peer.hex()[:12]


def run_daemon(listen: str, key_file: str, processes: int | None, allow_all_interfaces: bool) -> None:
    """Start a daemon and serve until SIGTERM (used by the CLI)."""
    daemon = Daemon(listen, key_file, processes, allow_all_interfaces)
    # Configured once the daemon runs (not when it refuses to start, which may happen inside
    # another program, such as a test calling the CLI).
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    daemon.serve()
