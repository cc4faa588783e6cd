"""CurveZMQ for a cluster: one shared key file, the keys derived from it, and a ZAP allow-list.

Trust model: whoever holds the cluster key can run any code, as the daemon's user, on every host
of the cluster. Every process of a cluster derives the same two CurveZMQ keypairs from the key: a
server pair for sockets that listen and a client pair for sockets that connect. A listening socket
accepts a peer only if it proves it holds the client secret (the ZAP handler's allow-list holds
that one public key), and a connecting socket only completes the handshake with a server that holds
the server secret. The key never leaves the key file: not in argv, logs, errors, reprs or plans.

Use: ``key = load_key(path)``; per zmq context ``auth = start_authenticator(ctx, key)`` before any
bind; ``configure_server(sock, key)`` before ``bind``; ``configure_client(sock, key)`` and
``HandshakeWatch(sock, address)`` before ``connect``; ``auth.stop()`` before the context ends.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import logging
import os
import secrets
import stat
import threading
import time
import uuid
from typing import Any

import zmq
from zmq.utils import z85
from zmq.utils.monitor import parse_monitor_message

from ..errors import AddressError, AuthenticationError, CascataError, HostLostError, KeyFileError

logger = logging.getLogger(__name__)

# Random bytes in a fresh key, and the fewest a key file may hold: 256 bits, CurveZMQ's own strength.
KEY_BYTES = 32
# Bytes read from a key file at most: a key file is one line; anything larger is not a key file.
_MAX_KEY_FILE = 4096
# The ZAP domain of every cascata server socket; the handler refuses requests for other domains.
ZAP_DOMAIN = b"cascata"
# Seconds stop() waits for the authenticator thread; it answers a stop request in microseconds.
ZAP_STOP_TIMEOUT = 5.0
# Consecutive handshakes closed by the peer without detail before a HandshakeWatch calls the key
# wrong: one such close can be a daemon restarting, but a server with another key closes every one
# (about every 100-200 ms, zmq's reconnect interval), so two cost a few hundred milliseconds.
NO_DETAIL_FAILURES = 2
# Seconds of refused connection attempts (and none accepted) after which a watch that was asked
# to (``refused_after``) says nothing listens there, instead of waiting out its whole timeout.
REFUSED_FOR = 1.0
# Seconds between polls of the monitor while HandshakeWatch.wait blocks.
_WATCH_POLL = 0.05

_ZAP_ENDPOINT = "inproc://zeromq.zap.01"
_KEYGEN_HINT = "Write a fresh key with `cascata keygen {path}` and copy it to every host (mode 0600)."


class ClusterKey:
    """The CurveZMQ keys (z85 bytes) derived from one cluster key; it never shows or pickles them."""

    __slots__ = ("server_public", "server_secret", "client_public", "client_secret", "fingerprint")

    def __init__(self, key: bytes) -> None:
        if len(key) < KEY_BYTES:
            raise ValueError(f"a cluster key needs at least {KEY_BYTES} bytes")
        self.server_secret = _derive_secret(key, b"cascata curve server v1")
        self.server_public = zmq.curve_public(self.server_secret)
        self.client_secret = _derive_secret(key, b"cascata curve client v1")
        self.client_public = zmq.curve_public(self.client_secret)
        # A short public name for the key, so hosts can be compared without showing it.
        self.fingerprint = hashlib.sha256(self.server_public + self.client_public).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"<ClusterKey fingerprint={self.fingerprint}>"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        # Pickling would put the secrets into whatever is pickled next to it (a plan, a log record).
        raise TypeError(
            "a ClusterKey is never pickled, so it cannot travel inside a plan or a message; "
            "load it in each process with load_key(path), or inherit it through fork"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClusterKey):
            return NotImplemented
        return hmac.compare_digest(self.server_secret + self.client_secret,
                                   other.server_secret + other.client_secret)

    def __hash__(self) -> int:
        return hash(self.fingerprint)


def _derive_secret(key: bytes, label: bytes) -> bytes:
    """A z85 Curve25519 secret key: HMAC-SHA256 of a domain label under the cluster key (any 32
    bytes are a valid secret; libsodium clamps them)."""
    return z85.encode(hmac.new(key, label, hashlib.sha256).digest())


def generate_key_file(path: str | os.PathLike[str]) -> None:
    """Write a fresh random cluster key to ``path`` with mode 0600; never overwrite a file.

    The key is written to a private temporary file next to ``path`` and linked into place, so a
    reader never sees half a key and an existing file (or one created meanwhile) is left alone."""
    path = os.fspath(path)
    if os.path.lexists(path):
        raise KeyFileError(path, "already exists", "Remove it first if you mean to replace the key "
                           "(every host then needs the new one), or choose another file name.")
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise KeyFileError(path, f"cannot be created: {exc.strerror}",
                           "Choose a directory you can write to.") from exc
    try:
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)  # whatever the umask says
            f.write(secrets.token_hex(KEY_BYTES) + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError as exc:
            raise KeyFileError(path, "already exists", "Choose another file name.") from exc
    finally:
        os.unlink(tmp)


def load_key(path: str | os.PathLike[str]) -> ClusterKey:
    """Read the cluster key file at ``path``: a regular file, readable by its owner only, holding at
    least 32 bytes as hex digits (what ``cascata keygen`` writes). Raises KeyFileError otherwise."""
    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise KeyFileError(path, "does not exist", _KEYGEN_HINT.format(path=path)) from exc
    except OSError as exc:
        raise KeyFileError(path, f"cannot be read: {exc.strerror}",
                           "Run as the user who owns it, or check the path.") from exc
    try:
        mode = os.fstat(fd).st_mode  # of the file opened, not of what the path names by now
        if not stat.S_ISREG(mode):
            raise KeyFileError(path, "is not a regular file", _KEYGEN_HINT.format(path=path))
        if mode & 0o077:
            raise KeyFileError(
                path, f"is accessible by group or others (mode {stat.S_IMODE(mode):04o})",
                f"Run `chmod 600 {path}`; anyone who can read it can run code on every host.")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(_MAX_KEY_FILE + 1)
    finally:
        os.close(fd)
    return ClusterKey(_parse_key(path, data))


def _parse_key(path: str, data: bytes) -> bytes:
    text = data.strip()
    if len(data) > _MAX_KEY_FILE or not text:
        raise KeyFileError(path, "does not hold a cluster key", _KEYGEN_HINT.format(path=path))
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        # Say nothing about the content: it may be a key in another format.
        raise KeyFileError(path, "is malformed: a key is one line of hex digits",
                           _KEYGEN_HINT.format(path=path)) from None
    if len(key) < KEY_BYTES:
        raise KeyFileError(path, f"holds a {len(key)}-byte key; at least {KEY_BYTES} random bytes "
                           f"({2 * KEY_BYTES} hex digits) are needed", _KEYGEN_HINT.format(path=path))
    return key


def configure_server(sock: zmq.Socket, key: ClusterKey) -> None:
    """Make ``sock`` a CurveZMQ server that admits only the cluster's clients; call before bind.

    ZAP_ENFORCE_DOMAIN makes the socket refuse every peer when no authenticator runs, instead of
    admitting anyone who knows the server's public key."""
    sock.curve_secretkey = key.server_secret
    sock.curve_publickey = key.server_public
    sock.curve_server = True
    sock.zap_domain = ZAP_DOMAIN
    sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)


def configure_client(sock: zmq.Socket, key: ClusterKey) -> None:
    """Make ``sock`` a CurveZMQ client of the cluster's servers; call before connect."""
    sock.curve_serverkey = key.server_public
    sock.curve_publickey = key.client_public
    sock.curve_secretkey = key.client_secret


class Authenticator:
    """The ZAP handler of one zmq context, in a thread named ``cascata-zap``: it admits CURVE peers
    whose public key is on the allow-list, for the cascata domain only.

    A thread and not a task: a component that blocks its worker's event loop must not stall the
    handshakes of other peers. ``accepted`` and ``refused`` count the answers given."""

    def __init__(self, ctx: zmq.Context, allowed: frozenset[bytes]) -> None:
        # A plain context over the same libzmq context: the handler's sockets must be blocking ones
        # even when the caller uses zmq.asyncio, and inproc names are shared with the original.
        self._ctx = zmq.Context.shadow(ctx.underlying)
        self._allowed = allowed  # raw 32-byte public keys
        self._stop_endpoint = f"inproc://cascata-zap-stop-{uuid.uuid4().hex}"
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.accepted = 0
        self.refused = 0
        self._thread = threading.Thread(target=self._serve, name="cascata-zap", daemon=True)

    def _start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error

    def _serve(self) -> None:
        handler = self._ctx.socket(zmq.REP)
        stopper = self._ctx.socket(zmq.PULL)
        handler.linger = stopper.linger = 0
        try:
            handler.bind(_ZAP_ENDPOINT)
            stopper.bind(self._stop_endpoint)
        except zmq.ZMQError as exc:
            self._error = AuthenticationError(
                "an authenticator already runs on this zmq context; start one per context"
                if exc.errno == errno.EADDRINUSE else f"cannot start the authenticator: {exc}")
        self._ready.set()
        try:
            if self._error is None:
                self._loop(handler, stopper)
        except zmq.ContextTerminated:
            pass  # the context ended under us: nothing is left to answer
        finally:
            handler.close()
            stopper.close()

    def _loop(self, handler: zmq.Socket, stopper: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(handler, zmq.POLLIN)
        poller.register(stopper, zmq.POLLIN)
        while True:
            ready = dict(poller.poll())
            if stopper in ready:
                return
            if handler in ready:
                handler.send_multipart(self._answer(handler.recv_multipart()))

    def _answer(self, request: list[bytes]) -> list[bytes]:
        """The ZAP reply (RFC 27) to one request: 200 for an allowed CURVE key, else 400."""
        if len(request) < 6 or request[0] != b"1.0":
            self.refused += 1
            return [b"1.0", request[1] if len(request) > 1 else b"", b"500", b"bad request", b"", b""]
        _version, request_id, domain, address, _identity, mechanism, *credentials = request
        peer = address.decode("ascii", "replace")
        if domain == ZAP_DOMAIN and mechanism == b"CURVE" and credentials and \
                credentials[0] in self._allowed:
            self.accepted += 1
            return [b"1.0", request_id, b"200", b"OK", b"cascata", b""]
        self.refused += 1
        logger.warning("refused a connection from %s: it does not hold this cluster's key", peer)
        return [b"1.0", request_id, b"400", b"not a cluster key", b"", b""]

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop the handler and wait for its thread; sockets it guarded then refuse new peers."""
        if not self._thread.is_alive():
            return
        try:
            with self._ctx.socket(zmq.PUSH) as poke:
                poke.linger = 0
                poke.connect(self._stop_endpoint)
                poke.send(b"", zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # the thread is already leaving (its context ended)
        self._thread.join(ZAP_STOP_TIMEOUT)
        if self._thread.is_alive():
            raise AuthenticationError(f"the authenticator did not stop within {ZAP_STOP_TIMEOUT} s")

    def __enter__(self) -> Authenticator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_authenticator(ctx: zmq.Context, key: ClusterKey) -> Authenticator:
    """Start the ZAP handler of ``ctx`` admitting the cluster's client key; before any bind."""
    auth = Authenticator(ctx, frozenset({z85.decode(key.client_public)}))
    auth._start()
    return auth


_WATCHED = (zmq.EVENT_CONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
            | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH
            | zmq.EVENT_CONNECT_RETRIED)


class HandshakeWatch:
    """Watches the CurveZMQ handshakes of a client socket, so that a wrong key fails within a
    fraction of a second instead of zmq reconnecting silently forever. Create it before
    ``connect``; ``address`` is the peer's name for messages. One watch per socket.

    ``check()`` never blocks (safe on an event loop); ``wait(timeout)`` blocks. With
    ``refused_after`` (seconds), connection attempts refused for that long, none accepted, are
    an AddressError saying nothing listens there (for a peer that must be up already, such as a
    daemon: a worker's data peer may legitimately start later)."""

    def __init__(self, sock: zmq.Socket, address: str, refused_after: float | None = None) -> None:
        self.address = address
        self.connected = False
        self.succeeded = False
        self._failure: CascataError | None = None
        self._no_detail = 0
        self._refused_after = refused_after
        self._first_refusal: float | None = None
        self._sock = sock
        endpoint = f"inproc://cascata-handshake-{uuid.uuid4().hex}"
        sock.monitor(endpoint, _WATCHED)
        # Made by the socket's own context, so that context's destroy() closes it too; read
        # through a plain (blocking-API) view, as the context may be a zmq.asyncio one.
        self._owner = sock.context.socket(zmq.PAIR)
        self._owner.linger = 0
        self._owner.connect(endpoint)
        self._events = zmq.Socket.shadow(self._owner.underlying)

    def check(self) -> bool:
        """True once a handshake succeeded, False while none has; raises AuthenticationError when
        the peer refused the key or closes every handshake (it holds another key)."""
        while self._failure is None and not self._owner.closed:
            try:
                frames = self._events.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            self._note(parse_monitor_message(frames))
        if self._failure is not None:
            raise self._failure
        return self.succeeded

    def _note(self, event: dict[str, Any]) -> None:
        kind, value = event["event"], event["value"]
        if kind == zmq.EVENT_CONNECTED:
            self.connected = True
        elif kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self.succeeded, self._no_detail = True, 0
        elif kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            self._fail(f"it refused this machine's key (ZAP status {value})")
        elif kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL and \
                value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
            self._fail("it does not use CurveZMQ (is it a cascata server started with a key?)")
        elif kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
            self._fail(f"the CurveZMQ handshake broke (protocol error {value:#x})")
        elif kind == zmq.EVENT_CONNECT_RETRIED and not self.connected:
            self._refused()
        elif kind == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            self._no_detail += 1
            if self._no_detail >= NO_DETAIL_FAILURES:
                self._fail("it closed every CurveZMQ handshake (it holds another cluster key, or "
                       "runs no authenticator)")

    def _refused(self) -> None:
        if self._refused_after is None:
            return
        now = time.monotonic()
        if self._first_refusal is None:
            self._first_refusal = now
        elif now - self._first_refusal >= self._refused_after:
            self._failure = AddressError(
                self.address, f"nothing accepts connections there (refused for "
                f"{self._refused_after:g} s); is the daemon running, and listening on that port?")

    def _fail(self, what: str) -> None:
        self._failure = AuthenticationError(
            f"could not authenticate with {self.address}: {what}. Use the same cluster key file on "
            "this machine and on every host (`cascata keygen FILE` once, then copy FILE, mode 0600).",
            address=self.address)

    def wait(self, timeout: float) -> None:
        """Block until a handshake succeeds. Raises AuthenticationError when it fails, or when the
        peer accepted the connection but never completed the handshake (a server without an
        authenticator, or not a cascata server); HostLostError when no connection was made."""
        deadline = time.monotonic() + timeout
        while not self.check():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._events.poll(min(left, _WATCH_POLL) * 1000)
        if self.succeeded:
            return
        if self.connected:
            raise AuthenticationError(
                f"{self.address} accepted the connection but did not complete the CurveZMQ "
                f"handshake within {timeout:g} s: it is not a cascata server, or its "
                "authenticator is not running", address=self.address)
        raise HostLostError(self.address, f"no connection within {timeout:g} s; is the daemon "
                            "running and reachable from here?")

    def close(self) -> None:
        """Stop watching; the socket itself stays as it is."""
        if self._owner.closed:
            return
        try:
            self._sock.disable_monitor()
        except zmq.ZMQError:
            pass  # the socket is already closed, and its monitor with it
        self._owner.close()

    def __enter__(self) -> HandshakeWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
