"""Every ZeroMQ socket cascata opens, with its options in one place.

``open_*`` create sockets for one role each (high-water marks, linger, reconnect interval,
identity); :func:`bind` and :func:`connect` attach them, switching CurveZMQ on when a cluster key is
given (server on a bind, client on a connect) and translating ``ZMQError`` into cascata errors that
name the address. No other module calls ``ctx.socket``, ``bind`` or ``connect``.
"""

from __future__ import annotations

import errno
from typing import Any

import zmq

from ..errors import AddressError

# Milliseconds between reconnect attempts of control sockets: the peer binds just after starting
# us, and ZeroMQ's default (100 ms) would cost that much per start.
RECONNECT_IVL_MS = 2
# Milliseconds a worker's control socket may keep unsent messages (its last log lines, DONE) after
# close, while the coordinator is still reading.
CONTROL_LINGER_MS = 1000


def _socket(ctx: zmq.Context, kind: int, *, sndhwm: int = 0, rcvhwm: int = 0, linger: int = 0) -> Any:
    sock = ctx.socket(kind)
    # HWM 0 = never drop or block: control volume is bounded by what components log, and data
    # flow control is by credit (an HWM would only reorder, or drop on a ROUTER).
    sock.setsockopt(zmq.SNDHWM, sndhwm)
    sock.setsockopt(zmq.RCVHWM, rcvhwm)
    sock.setsockopt(zmq.LINGER, linger)
    return sock


def open_control_router(ctx: zmq.Context) -> Any:
    """The coordinator's (or a daemon's) side of control channels: one per process, many peers."""
    return _socket(ctx, zmq.ROUTER)


def open_control_dealer(ctx: zmq.Context, identity: bytes, linger: int = 0) -> Any:
    """A control channel to a ROUTER, known there by ``identity``."""
    sock = _socket(ctx, zmq.DEALER, linger=linger)
    sock.setsockopt(zmq.IDENTITY, identity)
    sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
    return sock


def open_data_pull(ctx: zmq.Context) -> Any:
    """A worker's inbound data socket (every publisher of every edge into it)."""
    return _socket(ctx, zmq.PULL)


def open_data_push(ctx: zmq.Context) -> Any:
    """A worker's outbound data socket to one peer worker (one per peer: its own end of stream)."""
    return _socket(ctx, zmq.PUSH)


def bind(sock: Any, endpoint: str, key: Any = None) -> str:
    """Bind ``sock`` (a CurveZMQ server admitting the cluster when ``key`` is given); return the
    endpoint actually bound (the port chosen for ``tcp://host:*``)."""
    if key is not None:
        from .auth import configure_server

        configure_server(sock, key)
    # ZeroMQ TCP sockets are IPv4-only unless told; only an IPv6 address gets IPv6 (a dual-stack
    # socket bound to 127.0.0.1 would report its endpoint as [::ffff:127.0.0.1]).
    if endpoint.startswith("tcp://["):
        sock.setsockopt(zmq.IPV6, 1)
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        raise AddressError(endpoint, _reason(exc, "bind")) from exc
    return sock.getsockopt_string(zmq.LAST_ENDPOINT) if endpoint.endswith(":*") else endpoint


def connect(sock: Any, endpoint: str, key: Any = None) -> None:
    """Connect ``sock`` (a CurveZMQ client of the cluster when ``key`` is given)."""
    if key is not None:
        from .auth import configure_client

        configure_client(sock, key)
    if endpoint.startswith("tcp://"):  # a host name may resolve to an IPv6 address
        sock.setsockopt(zmq.IPV6, 1)
    try:
        sock.connect(endpoint)
    except zmq.ZMQError as exc:
        raise AddressError(endpoint, _reason(exc, "connect")) from exc


def close(sock: Any, linger: int = 0) -> None:
    """Close ``sock``, keeping unsent messages at most ``linger`` milliseconds."""
    sock.close(linger=linger)


def _reason(exc: zmq.ZMQError, verb: str) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "it is already in use; stop what uses it or choose another port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "no network interface of this machine has that address"
    if exc.errno == errno.EINVAL:
        return "it is not a valid endpoint (expected tcp://HOST:PORT or ipc://PATH)"
    return f"cannot {verb}: {exc.strerror}"
