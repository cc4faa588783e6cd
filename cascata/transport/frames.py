"""The data-link wire format: pure encoding and validation, no sockets.

A message is a list of ZeroMQ frames. Frame 0 is a msgpack header (plain arrays and integers, no
extension types, so decoding it can never run code). The kinds:

* ``DATA``   ``[VERSION, DATA, edge, seq, count, lengths, oob]``; frame 1 holds the item bodies
  back to back (``lengths`` gives each one's size), frames 2.. hold out-of-band buffers; ``oob`` is
  empty when there are none, else the number of buffers each item owns. With ``lengths`` empty the
  body is one serialized list of ``count`` plain values (a packed batch). ``seq`` is the sequence
  number of the first item on that edge, so a receiver detects any gap.
* ``EOS``    ``[VERSION, EOS, edge, total]``: the publisher of ``edge`` is done after ``total`` items.
* ``CREDIT`` ``[VERSION, CREDIT, edge, n]``: the receiver freed room for ``n`` more items on ``edge``.

Decoding validates everything and raises :class:`~cascata.errors.ProtocolError` with what was wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from ..errors import ProtocolError

VERSION = 1
DATA = 0
EOS = 1
CREDIT = 2
_KIND_NAMES = {DATA: "DATA", EOS: "EOS", CREDIT: "CREDIT"}
# An edge id or count above this is certainly garbage (plans have far fewer edges or items).
_MAX_INT = 2**63 - 1

Buffer = bytes | memoryview | bytearray


@dataclass(frozen=True, slots=True)
class DataMsg:
    """Items sent on one edge: ``bodies[i]`` and its out-of-band ``buffers[i]``; or, when
    ``packed`` is not None, one body holding a list of ``count`` plain values."""

    edge: int
    seq: int
    count: int
    bodies: list[memoryview]
    buffers: list[list[memoryview]]
    packed: memoryview | None = None
    # Bytes of all bodies and buffers together: when within a size limit, so is every item.
    nbytes: int = 0


@dataclass(frozen=True, slots=True)
class EosMsg:
    """End of stream: the publisher of ``edge`` sent ``total`` items in all."""

    edge: int
    total: int


@dataclass(frozen=True, slots=True)
class CreditMsg:
    """The consumer of ``edge`` has room for ``n`` more items."""

    edge: int
    n: int


Message = DataMsg | EosMsg | CreditMsg


def encode_data(
    edge: int, seq: int, bodies: Sequence[Buffer], buffers: Sequence[Sequence[Any]]
) -> list[Any]:
    """Frames for items on ``edge`` starting at ``seq``; ``buffers[i]`` are item i's oob buffers."""
    lengths = [len(b) if not isinstance(b, memoryview) else b.nbytes for b in bodies]
    counts = [len(bs) for bs in buffers]
    oob = counts if any(counts) else []
    header = msgpack.packb([VERSION, DATA, edge, seq, len(lengths), lengths, oob])
    frames: list[Any] = [header, b"".join(bodies)]
    for item_buffers in buffers:
        frames.extend(item_buffers)
    return frames


def encode_packed(edge: int, seq: int, count: int, body: Buffer) -> list[Any]:
    """Frames for ``count`` plain values on ``edge`` serialized together as one list."""
    return [msgpack.packb([VERSION, DATA, edge, seq, count, [], []]), body]


def encode_eos(edge: int, total: int) -> list[bytes]:
    """Frames telling the consumer of ``edge`` that its publisher finished after ``total`` items."""
    return [msgpack.packb([VERSION, EOS, edge, total])]


def encode_credit(edge: int, n: int) -> list[bytes]:
    """Frames granting the publisher of ``edge`` room for ``n`` more items."""
    return [msgpack.packb([VERSION, CREDIT, edge, n])]


def decode(frames: Sequence[Buffer]) -> Message:
    """Validate and decode one message; raise ProtocolError saying what is malformed."""
    if not frames:
        raise ProtocolError("malformed frame: empty message (no header frame)")
    header = _unpack_header(frames[0])
    kind = header[1]
    if kind == DATA:
        return _decode_data(header, frames)
    if len(header) != 4:
        raise ProtocolError(
            f"malformed frame: {_KIND_NAMES[kind]} header has {len(header)} fields, expected 4"
        )
    if len(frames) != 1:
        raise ProtocolError(
            f"malformed frame: {_KIND_NAMES[kind]} message has {len(frames)} frames, expected 1"
        )
    edge = _check_int(header[2], "edge")
    value = _check_int(header[3], "total" if kind == EOS else "credit")
    return EosMsg(edge, value) if kind == EOS else CreditMsg(edge, value)


def _unpack_header(frame: Buffer) -> list[Any]:
    try:
        header = msgpack.unpackb(bytes(frame), raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise ProtocolError(f"malformed frame: header is not valid msgpack ({exc})") from exc
    if not isinstance(header, list) or len(header) < 2:
        raise ProtocolError(f"malformed frame: header must be a list, got {type(header).__name__}")
    if header[0] != VERSION:
        raise ProtocolError(
            f"malformed frame: protocol version {header[0]!r}, this side speaks {VERSION}; "
            "run the same cascata version on every host"
        )
    if header[1] not in _KIND_NAMES:
        raise ProtocolError(f"malformed frame: unknown message kind {header[1]!r}")
    return header


def _check_int(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value <= _MAX_INT:
        raise ProtocolError(f"malformed frame: {what} must be a non-negative integer, got {value!r}")
    return value


def _check_int_list(value: Any, what: str) -> list[int]:
    if not isinstance(value, list):
        raise ProtocolError(f"malformed frame: {what} must be a list, got {type(value).__name__}")
    return [_check_int(v, what) for v in value]


def _decode_data(header: list[Any], frames: Sequence[Buffer]) -> DataMsg:
    if len(header) != 7:
        raise ProtocolError(f"malformed frame: DATA header has {len(header)} fields, expected 7")
    edge = _check_int(header[2], "edge")
    seq = _check_int(header[3], "seq")
    count = _check_int(header[4], "count")
    lengths = _check_int_list(header[5], "lengths")
    oob = _check_int_list(header[6], "oob")
    if len(frames) < 2:
        raise ProtocolError("malformed frame: DATA message has no body frame")
    if not lengths:
        if len(frames) != 2 or count == 0:
            raise ProtocolError("malformed frame: a packed DATA message needs one body and count > 0")
        packed = memoryview(frames[1])
        return DataMsg(edge, seq, count, [], [], packed, packed.nbytes)
    if count != len(lengths):
        raise ProtocolError(f"malformed frame: DATA count {count} but {len(lengths)} lengths")
    if oob and len(oob) != len(lengths):
        raise ProtocolError(
            f"malformed frame: DATA lists {len(lengths)} items but oob counts for {len(oob)}"
        )
    body = memoryview(frames[1]).cast("B")
    if sum(lengths) != body.nbytes:
        raise ProtocolError(
            f"malformed frame: DATA body has {body.nbytes} bytes, lengths add up to {sum(lengths)}"
        )
    extra = [memoryview(f) for f in frames[2:]]
    if sum(oob) != len(extra):
        raise ProtocolError(
            f"malformed frame: DATA carries {len(extra)} buffer frames, oob counts say {sum(oob)}"
        )
    bodies: list[memoryview] = []
    offset = 0
    for n in lengths:
        bodies.append(body[offset : offset + n])
        offset += n
    buffers: list[list[memoryview]] = []
    if oob:
        at = 0
        for n in oob:
            buffers.append(extra[at : at + n])
            at += n
    else:
        buffers = [[] for _ in lengths]
    nbytes = body.nbytes + (sum(f.nbytes for f in extra) if extra else 0)
    return DataMsg(edge, seq, count, bodies, buffers, None, nbytes)
