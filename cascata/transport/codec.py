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
