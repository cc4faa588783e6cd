"""Control messages between the coordinator (ROUTER) and workers (DEALER).

A message is one msgpack frame ``[kind, fields]``. Errors travel pickled inside ``fields``; the
control channel is only ever opened to an authenticated peer (a child process, or a daemon behind
CurveZMQ), so nothing unauthenticated is unpickled.
"""

from __future__ import annotations

from typing import Any

import msgpack

from ..errors import ProtocolError

PROTOCOL = 1

# worker -> coordinator
READY = "ready"
HEARTBEAT = "heartbeat"
LOG = "log"
ERROR = "error"
DONE = "done"
SNAPSHOT = "snapshot"
# coordinator -> worker
GO = "go"
PROBE = "probe"
END_ALL = "end_all"
FINISH = "finish"
ABORT = "abort"

KINDS = frozenset({READY, HEARTBEAT, LOG, ERROR, DONE, SNAPSHOT, GO, PROBE, END_ALL, FINISH, ABORT})


def encode(kind: str, **fields: Any) -> bytes:
    return msgpack.packb([PROTOCOL, kind, fields], use_bin_type=True)


def decode(frame: bytes) -> tuple[str, dict[str, Any]]:
    try:
        version, kind, fields = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception as exc:
        raise ProtocolError(f"malformed control message ({exc})") from exc
    if version != PROTOCOL:
        raise ProtocolError(
            f"control protocol {version!r}, expected {PROTOCOL}: run one cascata version everywhere"
        )
    if kind not in KINDS or not isinstance(fields, dict):
        raise ProtocolError(f"malformed control message: kind {kind!r}")
    return kind, fields
