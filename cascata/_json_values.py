"""Values inside graph JSON documents: initial values and persist arguments.

JSON values pass through; tuples, sets, frozensets, bytes, non-finite floats and dicts whose keys
are not all strings become one-key tagged objects (``{"$tuple": [...]}``), so that they come back
with their type and the round trip is stable. A dict that itself looks like a tag is written as
``{"$dict": [[key, value], ...]}``. Anything else is refused with an error naming the value.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from .errors import GraphError

_TAGS = ("$tuple", "$set", "$frozenset", "$bytes", "$float", "$dict")


def encode_value(value: Any, what: str) -> Any:
    """``value`` as JSON data; ``what`` names it in the error for a value JSON cannot hold."""
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        return value if math.isfinite(value) else {"$float": repr(value)}
    if kind is list:
        return [encode_value(v, what) for v in value]
    if kind is tuple:
        return {"$tuple": [encode_value(v, what) for v in value]}
    if kind in (set, frozenset):
        items = sorted((encode_value(v, what) for v in value), key=_canonical)
        return {"$set" if kind is set else "$frozenset": items}
    if kind is bytes:
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if kind is dict:
        if all(type(k) is str for k in value) and not (len(value) == 1 and _tag_of(value)):
            return {k: encode_value(v, what) for k, v in value.items()}
        return {"$dict": [[encode_value(k, what), encode_value(v, what)] for k, v in value.items()]}
    raise GraphError(
        f"to_json: {what} is a {kind.__module__}.{kind.__qualname__}, which JSON cannot hold "
        "(supported: JSON values, tuples, sets, bytes, dicts); leave it unset before to_json() "
        "and set it on the rebuilt graph with '<'"
    )


def _canonical(data: Any) -> str:
    """A total order for encoded set members, so that equal sets encode equally."""
    return json.dumps(data, sort_keys=True)


def _tag_of(value: dict) -> str | None:
    if len(value) == 1:
        (key,) = value
        if key in _TAGS:
            return key
    return None


def decode_value(data: Any, path: str) -> Any:
    """The value that :func:`encode_value` wrote as ``data``."""
    if isinstance(data, list):
        return [decode_value(v, f"{path}[{i}]") for i, v in enumerate(data)]
    if not isinstance(data, dict):
        if data is None or isinstance(data, bool | int | float | str):
            return data
        raise _fail(path, f"expected JSON data, got {type(data).__name__}")
    tag = _tag_of(data)
    if tag is None:
        return {k: decode_value(v, f"{path}[{k!r}]") for k, v in data.items()}
    body, where = data[tag], f"{path}[{tag!r}]"
    try:
        return _decode_tagged(tag, body, where)
    except (TypeError, ValueError) as exc:
        raise _fail(where, f"malformed {tag} value ({exc})") from exc


def _decode_tagged(tag: str, body: Any, where: str) -> Any:
    if tag == "$float":
        return float(_expect(body, str, where))
    if tag == "$bytes":
        return base64.b64decode(_expect(body, str, where), validate=True)
    items = decode_value(_expect(body, list, where), where)
    if tag == "$tuple":
        return tuple(items)
    if tag == "$set":
        return set(items)
    if tag == "$frozenset":
        return frozenset(items)
    return dict(_pair(p, f"{where}[{i}]") for i, p in enumerate(items))


def _pair(item: Any, path: str) -> tuple[Any, Any]:
    if not isinstance(item, list) or len(item) != 2:
        raise _fail(path, "expected a [key, value] pair")
    return item[0], item[1]



def _fail(path: str, problem: str) -> GraphError:
    return GraphError(f"from_json: {path}: {problem}")


def _expect(value: Any, kind: type, path: str) -> Any:
    if not isinstance(value, kind):
        raise _fail(path, f"expected {kind.__name__}, got {type(value).__name__}")
    return value
