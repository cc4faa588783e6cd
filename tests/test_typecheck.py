# ruff: noqa: UP007, UP045 - typing.Union and typing.Optional are what these tests exercise
"""Type checks at wiring time: ``out >> inp`` refuses an output type the input does not accept."""

import collections.abc
import typing
from typing import Any, Literal, NewType, Optional, Union

import pytest

from cascata import Graph, GraphError, PortTypeError, component, inport, outport
from cascata._typecheck import is_subtype, type_name


class Animal:
    pass


class Dog(Animal):
    pass


UserId = NewType("UserId", int)
T = typing.TypeVar("T")


@typing.runtime_checkable
class HasLen(typing.Protocol):
    def __len__(self) -> int: ...


class NotRuntime(typing.Protocol):
    def name(self) -> str: ...


ACCEPTED = [
    (int, int),
    (bool, int),
    (Dog, Animal),
    (int, float),
    (float, complex),
    (int, Any),
    (Any, int),
    (str, object),
    (None, int),  # unannotated output
    (int, None),  # unannotated input
    (int, Optional[int]),
    (type(None), Optional[int]),
    (int, Union[int, str]),
    (int, int | str),
    (Union[int, str], int | str | bytes),
    (int | bool, int),
    (list[int], list[int]),
    (list[int], list),
    (list, list[int]),
    (typing.List[int], list[int]),  # noqa: UP006
    (list[int], collections.abc.Sequence[int]),
    (list[int], collections.abc.Iterable),
    (list[bool], list[int]),
    (list[int], list[float]),
    (dict[str, Dog], dict[str, Animal]),
    (dict[str, int], collections.abc.Mapping[str, float]),
    (tuple[int, int], tuple[int, ...]),
    (tuple[int, ...], tuple[int, ...]),
    (list[list[int]], list[list[int]]),
    (collections.abc.Callable[[int], str], collections.abc.Callable[[str], str]),
    (Literal[1, 2], int),
    (Literal["a"], Literal["a", "b"]),
    (UserId, int),
    (T, int),
    ("SomeForwardRef", int),
    (str, HasLen),
    (int, NotRuntime),
    (type[Dog], type[Animal]),
]

REFUSED = [
    (str, int),
    (float, int),
    (Animal, Dog),
    (Optional[int], int),
    (int | str, int),
    (int, Union[str, bytes]),
    (list[int], list[str]),
    (list[int], dict),
    (list[int], tuple[int, ...]),
    (dict[str, int], dict[str, str]),
    (tuple[int, str], tuple[int, ...]),
    (list[list[int]], list[list[str]]),
    (Literal[1, "x"], int),
    (Literal["c"], Literal["a", "b"]),
    (str, Literal["a"]),
    (int, HasLen),
    (type[Animal], type[Dog]),
]


@pytest.mark.parametrize(("sent", "expected"), ACCEPTED, ids=repr)
def test_accepted_type_pairs(sent, expected):
    assert is_subtype(sent, expected)


@pytest.mark.parametrize(("sent", "expected"), REFUSED, ids=repr)
def test_refused_type_pairs(sent, expected):
    assert not is_subtype(sent, expected)


@pytest.mark.parametrize(
    ("tp", "name"),
    [
        (int, "int"),
        (Any, "Any"),
        (Optional[int], "int | None"),
        (dict[str, list[int]], "dict[str, list[int]]"),
        (tuple[int, ...], "tuple[int, ...]"),
        (Dog, "Dog"),
        (Literal["a", 1], "Literal['a', 1]"),
        (collections.abc.Callable[[int], str], "Callable[[int], str]"),
    ],
)
def test_type_names_are_short_and_readable(tp, name):
    assert type_name(tp) == name


# -- at wiring time -----------------------------------------------------------------------------


@component
@outport("out")
async def SendsStr(out: str):
    await out.send("x")


@component
@outport("out")
async def SendsListOfInt(out: list[int]):
    await out.send([1])


@component
@outport("out")
async def SendsAnything(out):
    await out.send(object())


@component
@outport("out")
async def SendsDog(out: Dog):
    await out.send(Dog())


@component
@inport("inp")
async def WantsInt(inp: int):
    pass


@component
@inport("inp")
async def WantsOptionalStr(inp: Optional[str]):
    pass


@component
@inport("inp")
async def WantsList(inp: list):
    pass


@component
@inport("inp")
async def WantsAnimal(inp: Animal):
    pass


def test_mismatch_raises_type_error_naming_both_ports_and_types():
    g = Graph()
    g.a = SendsStr
    g.b = WantsInt
    with pytest.raises(PortTypeError) as info:
        g.a.out >> g.b.inp
    assert str(info.value) == (
        "port 'b.inp' expects int; 'a.out' sends str. Annotate 'a.out' or convert before sending."
    )
    assert isinstance(info.value, TypeError) and isinstance(info.value, GraphError)


def test_refused_connection_records_nothing():
    g = Graph()
    g.a = SendsStr
    g.b = WantsInt
    g.b.inp < 4
    with pytest.raises(TypeError):
        g.a.out >> g.b.inp
    assert g.edges == []
    assert not g.b.inp.connected and g.b.inp.initial == 4


def test_batched_connection_is_checked_too():
    g = Graph()
    g.a = SendsStr
    g.b = WantsInt
    with pytest.raises(PortTypeError, match="expects int; 'a.out' sends str"):
        g.a.out >> 3 >= g.b.inp


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (SendsStr, WantsOptionalStr),
        (SendsListOfInt, WantsList),
        (SendsAnything, WantsInt),
        (SendsDog, WantsAnimal),
    ],
)
def test_compatible_ports_connect(src, dst):
    g = Graph()
    g.a = src
    g.b = dst
    g.a.out >> g.b.inp
    assert len(g.edges) == 1 and g.b.inp.connected


def test_group_wiring_is_checked_member_by_member():
    g = Graph()
    g.a = SendsListOfInt * 2
    g.b = WantsInt * 3
    with pytest.raises(PortTypeError, match=r"port 'b_0.inp' expects int; 'a_0.out' sends list\[int\]"):
        g.a.out >> g.b.inp
    assert g.edges == []
