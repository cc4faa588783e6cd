"""Control messages between the coordinator and workers, as typed records.

A message is one msgpack frame ``[PROTOCOL, kind, fields]``; each kind is a frozen dataclass below
with ``encode()`` and a module-level :func:`decode` that validates the kind and the fields. Errors
travel pickled inside :class:`Error`; the control channel is only ever opened to an authenticated
peer (a child process, or a daemon behind CurveZMQ), so nothing unauthenticated is unpickled.

Worker identities on the wire are :class:`WorkerId` values, the same on every host: the index of
the worker in the plan, never a pid or a host name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgpack

from ..errors import ProtocolError

# Bumped whenever a record's fields change: a peer speaking another version is refused by name.
PROTOCOL = 9


@dataclass(frozen=True, order=True)
class WorkerId:
    """A worker of one plan: its index, and the ZeroMQ identities it uses on control sockets."""

    index: int

    @property
    def control(self) -> bytes:
        """Identity of the worker's control DEALER (the one the event loop owns)."""
        return b"w%d" % self.index

    @property
    def heartbeat(self) -> bytes:
        """Identity of the worker's heartbeat DEALER (a thread of its own)."""
        return b"h%d" % self.index

    @classmethod
    def parse(cls, raw: bytes) -> WorkerId:
        """The worker behind a control or heartbeat identity; ProtocolError if it is neither."""
        if len(raw) < 2 or raw[:1] not in (b"w", b"h") or not raw[1:].isdigit():
            raise ProtocolError(f"malformed control message: unknown peer identity {raw[:32]!r}")
        return cls(int(raw[1:]))

    def __str__(self) -> str:
        return f"worker-{self.index}"


class Record:
    """Base of control records: a ``KIND`` tag and dataclass fields that msgpack can carry."""

    KIND: ClassVar[str] = ""

    def encode(self) -> bytes:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return msgpack.packb([PROTOCOL, self.KIND, fields], use_bin_type=True)


# -- worker -> coordinator ------------------------------------------------------------------------


@dataclass(frozen=True)
class Ready(Record):
    """The worker built its plan and bound its data socket at ``endpoint``; ``binds`` maps a
    peer on the caller's machine to the endpoint where this worker's data socket to that peer
    listens (the caller's machine listens on nothing: its workers connect out)."""

    KIND: ClassVar[str] = "ready"
    endpoint: str
    pid: int
    binds: dict[int, str] = field(default_factory=dict)
    # On a daemon, the ipc endpoint where peers of the same host reach this worker ("" if none).
    ipc: str = ""


@dataclass(frozen=True)
class Heartbeat(Record):
    """The worker's process is alive (sent by a thread, so a busy loop still beats)."""

    KIND: ClassVar[str] = "heartbeat"
    worker: int


@dataclass(frozen=True)
class Log(Record):
    """A log record made in the worker: by a component (``component`` is ``(name, class)``) or
    not (None), through the logger named ``logger``, at ``created`` (seconds since the epoch);
    ``message`` is its full text (with any traceback)."""

    KIND: ClassVar[str] = "log"
    level: str
    component: Any
    message: str
    logger: str = "cascata"
    levelno: int = 20
    created: float = 0.0


@dataclass(frozen=True)
class Output(Record):
    """Text a worker on another host wrote to ``sys.stdout`` or ``sys.stderr`` (``stream``):
    whole lines, or the rest when the worker ends, for the caller to print."""

    KIND: ClassVar[str] = "output"
    stream: str
    text: str


@dataclass(frozen=True)
class Error(Record):
    """The run must fail with this error (a pickled CascataError)."""

    KIND: ClassVar[str] = "error"
    error: bytes


@dataclass(frozen=True)
class Done(Record):
    """Every component of the worker finished; ``stats`` feeds the run report."""

    KIND: ClassVar[str] = "done"
    stats: dict[str, Any]
    host: str = ""
    pid: int = 0
    # Per edge between workers: items this worker sent on it, and the totals announced by the
    # ends of stream it received (the coordinator compares the two sides).
    sent: dict[int, int] = field(default_factory=dict)
    ended: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot(Record):
    """Counters for quiescence detection, answering the probe numbered ``probe``."""

    KIND: ClassVar[str] = "snapshot"
    probe: int
    events: int
    sent: int
    received: int
    idle: bool
    waits: list[Any] = field(default_factory=list)
    # Labels of the components (tasks) that have not finished, for a timeout's message.
    active: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Collected(Record):
    """A batch of items sent on a collected port (``sink`` numbers the caller's list).

    ``packed``: ``payload`` is a packed list of plain values; else a packed list of
    ``(body, buffers)`` of items serialized one by one. ``nbytes`` is what the
    acknowledgement returns to the worker's window."""

    KIND: ClassVar[str] = "collected"
    sink: int
    count: int
    packed: bool
    nbytes: int
    payload: bytes


@dataclass(frozen=True)
class StatsReply(Record):
    """Live counters of the worker's components, answering a StatsRequest (as in Done)."""

    KIND: ClassVar[str] = "stats"
    stats: dict[str, Any]
    host: str = ""
    pid: int = 0


# -- coordinator -> worker ------------------------------------------------------------------------


@dataclass(frozen=True)
class Go(Record):
    """Every worker is READY: connect to the peers' endpoints (keyed by worker index) and run."""

    KIND: ClassVar[str] = "go"
    peers: dict[int, str]
    # For each remote worker, its Ready.binds: where a worker of the caller's machine connects.
    binds: dict[int, dict[int, str]] = field(default_factory=dict)
    # Each remote worker's Ready.ipc: where workers of its own host connect instead of tcp.
    ipc: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Probe(Record):
    """Answer with a :class:`Snapshot` carrying this number."""

    KIND: ClassVar[str] = "probe"
    probe: int


@dataclass(frozen=True)
class EndAll(Record):
    """The graph is quiescent: end every input port still open."""

    KIND: ClassVar[str] = "end_all"


@dataclass(frozen=True)
class Finish(Record):
    """The run succeeded: flush and exit."""

    KIND: ClassVar[str] = "finish"


@dataclass(frozen=True)
class Abort(Record):
    """The run failed: exit at once."""

    KIND: ClassVar[str] = "abort"


@dataclass(frozen=True)
class CollectAck(Record):
    """The caller appended a Collected batch of ``count`` items and ``nbytes`` bytes."""

    KIND: ClassVar[str] = "collect_ack"
    count: int
    nbytes: int


@dataclass(frozen=True)
class StatsRequest(Record):
    """Answer with a StatsReply (sent only while someone watches the run's progress)."""

    KIND: ClassVar[str] = "stats_request"


# -- coordinator <-> daemon (one frame each; a worker's message relayed by a daemon travels as two
# frames, [worker identity, record]) -----------------------------------------------------------------


@dataclass(frozen=True)
class Hello(Record):
    """The coordinator's versions; ``by_value`` says the plan will carry code pickled by dill."""

    KIND: ClassVar[str] = "hello"
    python: str
    cascata: str
    dill: str
    by_value: bool = False


@dataclass(frozen=True)
class Welcome(Record):
    """The daemon accepts the coordinator: how many worker processes it offers, its versions, and
    a fresh ``nonce`` the connection's LAUNCH must carry (so a recorded LAUNCH never runs again,
    not even on a restarted daemon, which no longer knows the plan ids it ran); ``machine`` (the
    kernel's boot id) and ``cpus`` let the coordinator see daemons that share one machine and its
    CPUs (``machine`` is empty when the operator fixed the processes with ``--processes``)."""

    KIND: ClassVar[str] = "welcome"
    address: str
    processes: int
    python: str
    cascata: str
    dill: str
    nonce: bytes = b""
    machine: str = ""
    cpus: int = 0


@dataclass(frozen=True)
class Refused(Record):
    """The daemon will not serve this request; ``reason`` says why and what to do."""

    KIND: ClassVar[str] = "refused"
    reason: str


@dataclass(frozen=True)
class Launch(Record):
    """Start ``workers`` (plan indices) for plan ``plan_id``; ``payload`` is the pickled plan, which
    only the fresh worker processes unpickle. The timings are the ones the daemon itself needs."""

    KIND: ClassVar[str] = "launch"
    plan_id: str
    workers: list[int]
    payload: bytes
    heartbeat_interval: float
    host_timeout: float
    term_grace: float
    # The nonce of the WELCOME this connection received.
    nonce: bytes = b""


@dataclass(frozen=True)
class Started(Record):
    """The daemon started the plan's workers: their pids by plan index."""

    KIND: ClassVar[str] = "started"
    pids: dict[int, int]


@dataclass(frozen=True)
class Beat(Record):
    """A heartbeat between coordinator and daemon (either way). From a daemon, ``cpu`` gives each
    of its workers' CPU ticks and process state, so a worker busy in a long C call that silences
    its heartbeat thread is seen busy, not frozen."""

    KIND: ClassVar[str] = "beat"
    cpu: dict[int, list[Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Exited(Record):
    """A worker process of the plan ended with this wait status."""

    KIND: ClassVar[str] = "exited"
    worker: int
    status: int


@dataclass(frozen=True)
class Release(Record):
    """The run is over (FINISH or ABORT was sent to the workers): stop them within ``grace``."""

    KIND: ClassVar[str] = "release"
    grace: float


@dataclass(frozen=True)
class Released(Record):
    """Every worker of the plan has exited; the daemon is free for the next plan."""

    KIND: ClassVar[str] = "released"


@dataclass(frozen=True)
class Abandoned(Record):
    """The daemon heard nothing from the coordinator for ``silent`` seconds (over the host
    timeout) and is stopping the plan's workers. Sent in case the coordinator still listens
    (it was stopped, or the network came back just too late), so its run reports a lost host
    and why, not workers that exited for no reason."""

    KIND: ClassVar[str] = "abandoned"
    silent: float


HOST_RECORDS = (Hello, Welcome, Refused, Launch, Started, Beat, Exited, Release, Released, Abandoned)


_KINDS: dict[str, type[Record]] = {
    cls.KIND: cls
    for cls in (
        Ready, Heartbeat, Log, Output, Error, Done, Snapshot, Collected, Go, Probe, EndAll, Finish,
        Abort,
        CollectAck, StatsReply, StatsRequest, *HOST_RECORDS,
    )
}


def decode(frame: bytes) -> Record:
    """The record in ``frame``; ProtocolError naming what was wrong (version, kind, fields)."""
    try:
        version, kind, fields = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception as exc:
        raise ProtocolError(f"malformed control message ({exc})") from exc
    if version != PROTOCOL:
        raise ProtocolError(
            f"control protocol {version!r}, expected {PROTOCOL}: run one cascata version everywhere"
        )
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None or not isinstance(fields, dict):
        raise ProtocolError(f"malformed control message: kind {kind!r}")
    try:
        return cls(**fields)
    except TypeError as exc:
        raise ProtocolError(f"malformed control message {kind!r}: {exc}") from exc
