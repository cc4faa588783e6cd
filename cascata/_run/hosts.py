"""The coordinator's connections to ``cascata worker`` daemons.

The coordinator only connects out: one DEALER (CurveZMQ client) per daemon, so a run works from a
laptop that can reach the daemons and listens on no port. :func:`connect_hosts` says HELLO to
every daemon and waits for its WELCOME (the processes it offers); a wrong key is an
:class:`~cascata.errors.AuthenticationError` naming the daemon within seconds (the handshake is
watched), an address where nothing listens an :class:`~cascata.errors.AddressError` within
about a second, a daemon that does not answer a :class:`~cascata.errors.HostLostError`.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Sequence
from typing import Any

import zmq

from .._plan import LOCAL
from ..errors import AddressError, HostLostError, PlanRefusedError
from ..transport import control, sockets
from ..transport.auth import REFUSED_FOR, HandshakeWatch, load_key
from ..transport.endpoints import parse_address, tcp_endpoint
from ..worker.machine import available_cpus, machine_id

# Seconds a daemon has to complete the CurveZMQ handshake and answer HELLO.
CONNECT_TIMEOUT = 5.0


class HostLink:
    """The control connection to one daemon; ``processes`` is what it offered in its WELCOME."""

    def __init__(self, ctx: zmq.Context, address: str, key: Any) -> None:
        host, port = parse_address(address)
        self.address = address
        self.processes = 0
        self.nonce = b""  # from the daemon's WELCOME: the LAUNCH on this link carries it
        self.machine = ""  # the daemon's machine (boot id) and CPUs, also from its WELCOME
        self.cpus = 0
        # A fresh identity per run: the daemon tells runs apart by it.
        self.sock = sockets.open_control_dealer(ctx, b"c" + uuid.uuid4().bytes)
        self._watch = HandshakeWatch(self.sock, address, refused_after=REFUSED_FOR)
        try:
            sockets.connect(self.sock, tcp_endpoint(host, port), key)
        except BaseException:
            # An open socket would make the context's term() wait forever.
            self._watch.close()
            self.sock.close(linger=0)
            raise
        self.last_seen = time.monotonic()
        self.last_sent = 0.0
        self.released = False
        self._drops: zmq.Socket | None = None

    def hello(self, by_value: bool, timeout: float = CONNECT_TIMEOUT) -> None:
        from ..worker.session import versions  # loads importlib.metadata: daemon runs only

        py, ver, dill_ver = versions()
        self.send(control.Hello(py, ver, dill_ver, by_value))
        try:
            self._watch.wait(timeout)
        finally:
            self._watch.close()
        if not self.sock.poll(timeout * 1000):
            raise HostLostError(self.address, f"the daemon did not answer within {timeout:g} s")
        frames = self.sock.recv_multipart()
        record = control.decode(frames[-1])
        if isinstance(record, control.Refused):
            raise PlanRefusedError(self.address, record.reason)
        if not isinstance(record, control.Welcome):
            raise HostLostError(self.address, f"answered {record.KIND!r} to HELLO")
        self.processes = record.processes
        self.nonce = record.nonce
        self.machine = record.machine
        self.cpus = record.cpus
        self.last_seen = time.monotonic()
        # From now on a dropped connection matters: ZeroMQ would reconnect without a word, and
        # control records in the dropped one's buffers would be lost (they carry no sequence
        # numbers). The handshake watch is closed, so the socket's one monitor is free.
        self._drops = self.sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)

    def dropped(self) -> bool:
        """True once the connection to the daemon broke after HELLO (never blocks)."""
        return self._drops is not None and bool(self._drops.poll(0))

    def send(self, record: control.Record) -> None:
        self.sock.send(record.encode())
        self.last_sent = time.monotonic()

    def relay(self, identity: bytes, data: bytes, flags: int = 0) -> None:
        self.sock.send_multipart([identity, data], flags=flags)

    def close(self) -> None:
        self._watch.close()
        if self._drops is not None:
            self.sock.disable_monitor()
            self._drops.close(linger=0)
        sockets.close(self.sock)


def worker_addresses(workers: Sequence[str] | str | None) -> list[str]:
    """The ``workers=`` option (or ``CASCATA_WORKERS``, comma-separated) as a list of addresses;
    empty for a local run."""
    if workers is None:
        workers = os.environ.get("CASCATA_WORKERS", "")
    if isinstance(workers, str):
        workers = [w.strip() for w in workers.split(",") if w.strip()]
    out = []
    for w in workers:
        if w != LOCAL:
            host, port = parse_address(w)  # AddressError now, before anything starts
            if not host or port == 0:
                raise AddressError(w, "a daemon's address needs a host and a port, e.g. 10.0.0.5:7700")
            check_resolves(w, host, port)
        if w in out:
            raise ValueError(f"workers lists {w!r} twice")
        out.append(w)
    return out


def check_resolves(address: str, host: str, port: int) -> None:
    """AddressError naming ``host`` if it does not resolve. ZeroMQ would retry the name quietly
    forever, and the run would only say that no connection came within CONNECT_TIMEOUT."""
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        why = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise AddressError(
            address,
            f"the host name {host!r} does not resolve ({why}); check its spelling and this "
            "machine's name service (DNS, /etc/hosts), or give the daemon's IP address",
        ) from None


def connect_hosts(
    ctx: zmq.Context, addresses: Sequence[str], key_file: str | None, by_value: bool
) -> list[HostLink]:
    """Connect to every daemon and wait for its WELCOME; close them all on any failure."""
    if not key_file:
        raise ValueError(
            "running on other hosts needs the cluster key: pass key_file=... or set CASCATA_KEY_FILE "
            "(write one with `cascata keygen FILE` and copy it to every host)"
        )
    key = load_key(os.path.expanduser(key_file))
    links = []
    try:
        for address in addresses:
            links.append(HostLink(ctx, address, key))
        for link in links:
            link.hello(by_value)
    except BaseException:
        for link in links:
            link.close()
        raise
    return links


class Cluster:
    """The hosts a run uses: daemons (and maybe this machine's own processes, LOCAL), with the
    processes each offers. Made by :func:`open_hosts`, which asks the daemons; the coordinator
    connects again with :meth:`connect` once it has forked its local workers, since a forked
    process must not inherit a live zmq context."""

    def __init__(
        self, addresses: list[str], key_file: str, by_value: bool, offers: list[tuple[str, int]],
        shared: list[tuple[str, int]] | None = None,
    ) -> None:
        self.addresses = addresses
        self.key_file = key_file
        self.by_value = by_value
        self.offers = offers
        # The same, with hosts that are one machine sharing its CPUs: what a run uses when the
        # caller does not ask for a number of workers.
        self.shared = shared if shared is not None else offers

    def offers_for(self, num_workers: int | None) -> list[tuple[str, int]]:
        return self.shared if num_workers is None else self.offers

    def key(self) -> Any:
        return load_key(self.key_file)

    def connect(self, ctx: zmq.Context) -> list[HostLink]:
        return connect_hosts(ctx, self.addresses, self.key_file, self.by_value)


def open_hosts(
    components: Sequence[Any], workers: Sequence[str] | str | None, key_file: str | None
) -> Cluster | None:
    """Ask the daemons that ``workers`` (or ``CASCATA_WORKERS``) names what they offer; None for
    a run on local processes only. ``'local'`` in the list adds this machine's processes."""
    addresses = worker_addresses(workers)
    daemons = [a for a in addresses if a != LOCAL]
    if not daemons:
        return None
    key_file = os.path.expanduser(key_file or os.environ.get("CASCATA_KEY_FILE") or "")
    by_value = any(getattr(c._runner, "__module__", None) == "__main__" for c in components)
    ctx = zmq.Context()
    try:
        links = connect_hosts(ctx, daemons, key_file, by_value)
        offered = {link.address: (link.processes, link.machine, link.cpus) for link in links}
        for link in links:
            link.close()
    finally:
        ctx.term()
    offered[LOCAL] = (available_cpus(), machine_id(), available_cpus())
    offers = [(a, offered[a][0]) for a in addresses]
    shared = share_machines([(a, *offered[a]) for a in addresses])
    return Cluster(daemons, key_file, by_value, offers, shared)


def share_machines(hosts: Sequence[tuple[str, int, str, int]]) -> list[tuple[str, int]]:
    """``(address, processes, machine, cpus)`` of each host as ``(address, processes)``, where
    hosts on one machine (same boot id) together offer at most its CPUs (each at least one),
    taken in turn; a host alone on its machine keeps its offer."""
    machines: dict[str, list[str]] = {}
    for address, _, machine, _ in hosts:
        if machine:
            machines.setdefault(machine, []).append(address)
    offer = {a: n for a, n, _, _ in hosts}
    cpus = {a: c for a, _, _, c in hosts}
    out = dict(offer)
    for members in machines.values():
        budget = max(len(members), min(cpus[a] for a in members))
        if len(members) < 2 or sum(offer[a] for a in members) <= budget:
            continue
        out.update({a: 0 for a in members})
        while budget > 0:
            for a in members:
                if budget > 0 and out[a] < offer[a]:
                    out[a] += 1
                    budget -= 1
    return [(a, out[a]) for a, _, _, _ in hosts]
