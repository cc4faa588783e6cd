"""Wiring-time type checks between an output port and an input port.

A port's type is the annotation of its runner parameter. ``out >> inp`` is refused when some
value the output may send is certainly not one the input accepts. The rules, leaning towards
accepting whenever the annotations cannot tell:

- an unannotated port (or an unresolved string annotation, a ``TypeVar``, a non-runtime
  ``Protocol``) accepts and may send anything; ``Any`` and ``object`` accept everything, and an
  output typed ``Any`` may feed any input;
- classes follow ``issubclass`` (subclasses accepted), plus the numeric tower of PEP 484:
  ``int`` where ``float`` is expected, ``int``/``float`` where ``complex`` is;
- ``Union[A, B]``, ``Optional[A]`` and ``A | B``: every member the output may send must be
  accepted by some member of the input;
- generics compare their origins with ``issubclass`` (``list[int]`` feeds ``list``,
  ``Sequence[int]``, ``Iterable``), then, when both sides carry arguments of the same shape, the
  arguments pairwise and covariantly: ``list[int]`` feeds ``list[int]`` and ``list[float]`` but
  not ``list[str]``. A bare generic (``list``) stands for ``list[Any]`` on either side.
  ``Callable`` signatures are compared by origin only.
- ``Literal[...]`` values must be instances of the input type (or among the input's literals);
  ``NewType`` compares as its supertype.
"""

from __future__ import annotations

import collections.abc
import types
import typing
from typing import Any

from .errors import PortTypeError

_UNION_ORIGINS: tuple[Any, ...] = (typing.Union, types.UnionType)
# PEP 484: an int is acceptable where a float is expected, an int or float where a complex is.
_NUMERIC_TOWER: dict[type, tuple[type, ...]] = {float: (int,), complex: (int, float)}


def check_connection(src: Any, dst: Any) -> None:
    """Raise PortTypeError when ``src`` may send items ``dst`` does not accept."""
    sent, expected = _port_type(src), _port_type(dst)
    if is_subtype(sent, expected):
        return
    raise PortTypeError(
        f"port '{dst.full_name}' expects {type_name(expected)}; '{src.full_name}' sends "
        f"{type_name(sent)}. Annotate '{src.full_name}' or convert before sending."
    )


def _port_type(port: Any) -> Any:
    annotation = getattr(port, "type", None)
    # ``out: OutputPort`` annotates the runtime object the runner receives, not what it sends.
    if getattr(annotation, "__name__", None) == "OutputPort":
        return Any
    return _normalise(annotation)


def _normalise(tp: Any) -> Any:
    """Map the ways of saying 'anything' to ``Any`` and unwrap NewType."""
    if tp is None or tp is object or isinstance(tp, str | typing.TypeVar | typing.ForwardRef):
        return Any
    while callable(tp) and hasattr(tp, "__supertype__"):  # typing.NewType
        tp = tp.__supertype__
    return tp


def is_subtype(sent: Any, expected: Any) -> bool:
    """True unless some value of type ``sent`` is certainly not accepted by ``expected``."""
    sent, expected = _normalise(sent), _normalise(expected)
    if sent is Any or expected is Any:
        return True
    if typing.get_origin(sent) in _UNION_ORIGINS:
        return all(is_subtype(member, expected) for member in typing.get_args(sent))
    if typing.get_origin(expected) in _UNION_ORIGINS:
        return any(is_subtype(sent, member) for member in typing.get_args(expected))
    if typing.get_origin(sent) is typing.Literal:
        return all(_literal_accepted(v, expected) for v in typing.get_args(sent))
    if typing.get_origin(expected) is typing.Literal:
        return False  # a whole type cannot fit inside a set of literal values
    return _class_subtype(sent, expected)


def _literal_accepted(value: Any, expected: Any) -> bool:
    if typing.get_origin(expected) is typing.Literal:
        return value in typing.get_args(expected)
    return is_subtype(type(value), expected)


def _class_subtype(sent: Any, expected: Any) -> bool:
    sent_origin = typing.get_origin(sent) or sent
    expected_origin = typing.get_origin(expected) or expected
    if not (isinstance(sent_origin, type) and isinstance(expected_origin, type)):
        return True  # a typing construct we cannot reason about: do not refuse
    try:
        if not issubclass(sent_origin, expected_origin):
            return sent_origin in _NUMERIC_TOWER.get(expected_origin, ())
    except TypeError:  # e.g. a Protocol that is not runtime_checkable
        return True
    if expected_origin is collections.abc.Callable:
        return True
    return _args_subtype(typing.get_args(sent), typing.get_args(expected))


def _args_subtype(sent: tuple[Any, ...], expected: tuple[Any, ...]) -> bool:
    """Compare type arguments covariantly; unknown shapes are accepted."""
    if not sent or not expected:
        return True  # a bare generic means 'of anything'
    if Ellipsis in expected:  # tuple[X, ...] accepts any length of X
        return all(is_subtype(s, expected[0]) for s in sent if s is not Ellipsis)
    if Ellipsis in sent:
        return all(is_subtype(sent[0], e) for e in expected)
    if len(sent) != len(expected):
        return True
    return all(is_subtype(s, e) for s, e in zip(sent, expected, strict=True))


def type_name(tp: Any) -> str:
    """A short readable name: ``int``, ``list[int]``, ``int | None``, ``Any``."""
    if tp is Any:
        return "Any"
    if tp is type(None) or tp is None:
        return "None"
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in _UNION_ORIGINS:
        return " | ".join(type_name(a) for a in args)
    if origin is typing.Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is not None and args:
        inner = ", ".join("..." if a is Ellipsis else type_name(a) for a in args)
        return f"{type_name(origin)}[{inner}]"
    if isinstance(tp, list):  # the parameter list of Callable[[int], str]
        return f"[{', '.join(type_name(a) for a in tp)}]"
    if isinstance(tp, type):
        return tp.__qualname__
    return repr(tp).removeprefix("typing.")
