"""Item serialization: pickle protocol 5 with large buffers out of band, dill as a fallback.

Large contiguous buffers (numpy arrays, bytes) travel as their own ZeroMQ frames without a copy on
the sending side. Objects plain pickle cannot handle (lambdas, classes defined in ``__main__`` on a
remote host) go through dill; such bodies start with a one-byte marker so the receiver knows.
"""

from __future__ import annotations

import pickle
from typing import Any

from ..errors import ItemTooLargeError, SerializationError

# Buffers at least this large are sent as separate zero-copy frames; smaller ones are cheaper
# in-band (ZeroMQ copies messages under 64 KiB anyway).
OOB_THRESHOLD = 64 * 1024
# Default limit on one serialized item, in bytes: large enough for any sane item, small enough to
# stop a runaway object before it takes all memory. Configurable per run.
DEFAULT_MAX_ITEM_BYTES = 2 * 1024**3
_DILL_MARK = b"D"


def dumps(
    item: Any, max_bytes: int, component: str = "?", port: str = "?"
) -> tuple[bytes, list[pickle.PickleBuffer]]:
    """Serialize ``item``; return its body and out-of-band buffers, or raise SerializationError."""
    buffers: list[pickle.PickleBuffer] = []

    def keep_large(buf: pickle.PickleBuffer) -> bool:
        if buf.raw().nbytes >= OOB_THRESHOLD:
            buffers.append(buf)
            return False
        return True

    try:
        body = pickle.dumps(item, protocol=5, buffer_callback=keep_large)
    except Exception as exc:  # pickle raises many types: PicklingError, TypeError, AttributeError
        buffers.clear()
        body = _dill_dumps(item, exc, component, port)
    size = len(body) + sum(b.raw().nbytes for b in buffers)
    if size > max_bytes:
        raise ItemTooLargeError(
            component,
            port,
            type(item).__name__,
            f"{size} bytes serialized, over the limit of {max_bytes}",
            message=(
                f"component {component} sent an item of type {type(item).__name__} on port "
                f"'{port}' of {size} bytes, over max_item_bytes={max_bytes}. Split the item, or "
                "raise the limit with run(max_item_bytes=...)."
            ),
        )
    return body, buffers


def _dill_dumps(item: Any, first: Exception, component: str, port: str) -> bytes:
    import dill  # imported lazily: most items never need it, and it is slow to import

    try:
        return _DILL_MARK + dill.dumps(item, protocol=5, recurse=True)
    except Exception as exc:
        raise SerializationError(
            component, port, type(item).__name__, f"{type(first).__name__}: {first}"
        ) from exc


def loads(body: bytes | memoryview, buffers: list[memoryview] | tuple = ()) -> Any:
    """Rebuild an item from what :func:`dumps` produced."""
    if body[:1] == _DILL_MARK:
        import dill

        return dill.loads(bytes(body[1:]))
    return pickle.loads(body, buffers=buffers)


# Plain values: serialized together in packed batches, and small enough that a few hundred of
# them in flight cost little memory (see PLAIN_MAX_LEN).
_SCALARS = frozenset({int, float, bool, type(None), complex})
_SIZED = frozenset({str, bytes})
# Most characters or bytes a plain value holds (a str, bytes, or all of a tuple's together), so
# the small-item slack stays small in bytes too: 4096 plain items in flight hold about 1 MiB.
PLAIN_MAX_LEN = 256
_PLAIN_TUPLE_MAX = 8


def is_plain(item: Any) -> bool:
    """True for small built-in values (numbers, None, short str/bytes, short tuples of those):
    they can always be pickled, and cheaply in bulk."""
    t = type(item)
    if t in _SCALARS:
        return True
    if t in _SIZED:
        return len(item) <= PLAIN_MAX_LEN
    if t is tuple and len(item) <= _PLAIN_TUPLE_MAX:
        return 0 <= _flat_len(item) <= PLAIN_MAX_LEN
    return False


def _flat_len(values: Any) -> int:
    """Characters and bytes of the str/bytes among ``values``; -1 if any value is neither one of
    those nor a plain scalar."""
    size = 0
    for v in values:
        tv = type(v)
        if tv in _SIZED:
            size += len(v)
        elif tv not in _SCALARS:
            return -1
    return size


# Entries a small record (see packable_copy) may have.
RECORD_MAX_ITEMS = 16
NOT_PACKABLE = object()


def packable_copy(item: Any) -> Any:
    """A copy of ``item`` if it is a small flat record, else NOT_PACKABLE.

    A small flat record is a dict or list of at most RECORD_MAX_ITEMS entries whose keys and
    values are plain scalars or str/bytes holding PLAIN_MAX_LEN in all. Such records travel
    packed with plain values, which serializes a batch in one call rather than one per item;
    the copy is a snapshot, as the batch is serialized later and the sender may change the
    original meanwhile (its entries are immutable, so a shallow copy suffices)."""
    t = type(item)
    if t is dict:
        if len(item) <= RECORD_MAX_ITEMS:
            keys = _flat_len(item)
            values = _flat_len(item.values()) if keys >= 0 else -1
            if values >= 0 and keys + values <= PLAIN_MAX_LEN:
                return dict(item)
    elif t is list:
        if len(item) <= RECORD_MAX_ITEMS and 0 <= _flat_len(item) <= PLAIN_MAX_LEN:
            return list(item)
    return NOT_PACKABLE


# Bytes a packed number (int up to 64 bits, float, bool, None) counts for in a byte budget: its
# pickle opcode and payload, rounded up. (Larger ints are rare enough to count as 64-bit ones.)
NUMBER_BYTES = 16


def packed_bytes(item: Any) -> int:
    """An upper bound of the bytes a plain value or small record (see :func:`is_plain` and
    :func:`packable_copy`) adds to a packed batch: what a byte budget counts it for."""
    t = type(item)
    if t is dict:
        return 8 + _flat_bytes(item) + _flat_bytes(item.values())
    if t is list or t is tuple:
        return 8 + _flat_bytes(item)
    return _flat_bytes((item,))


def _flat_bytes(values: Any) -> int:
    size = 0
    for v in values:
        tv = type(v)
        if tv is str:  # UTF-8: up to 4 bytes a character unless all ASCII
            size += (len(v) if v.isascii() else 4 * len(v)) + 6
        elif tv is bytes:
            size += len(v) + 6
        elif tv is complex:
            size += 48
        else:
            size += NUMBER_BYTES
    return size


def dumps_packed(items: list[Any]) -> bytes:
    """Serialize a list of plain values and small records (see :func:`is_plain` and
    :func:`packable_copy`) in one go."""
    return pickle.dumps(items, protocol=5)


def loads_packed(body: bytes | memoryview, count: int) -> list[Any]:
    """Rebuild a packed batch; its length must be ``count``."""
    items = pickle.loads(body)
    if type(items) is not list or len(items) != count:
        raise ValueError(f"packed batch holds {len(items) if type(items) is list else '?'} values, "
                         f"header says {count}")
    return items
