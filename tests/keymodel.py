"""A reference model of "the same argument value", for the canonical key tests.

``canon`` is written independently of ``flask_stash.core.keys``: two values are the same
argument when they have the same type all the way down and equal contents (dict and set
order ignored), or are the same object when the type has no value identity. The key tests
check that the key module agrees with it, in both directions.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
from collections import namedtuple
from typing import Any

from flask_stash.core.keys import CallKey, encode, hash_text


class Tag(enum.Enum):
    A = 1
    B = 2


class OtherTag(enum.Enum):  # same member names and values, another class
    A = 1
    B = 2


@dataclasses.dataclass(frozen=True)
class Point:
    x: Any
    y: Any


@dataclasses.dataclass(frozen=True)
class OtherPoint:  # same fields, another class
    x: Any
    y: Any


Pair = namedtuple("Pair", "x y")
Couple = namedtuple("Couple", "x y")
Swapped = namedtuple("Swapped", "y x")
# One name, two layouts (two modules' "Row", or a class redefined): never one key.
RowAB = namedtuple("Row", "a b")
RowCD = namedtuple("Row", "c d")


class Hooked:
    def __init__(self, ident: object) -> None:
        self.ident = ident

    def __caching_id__(self) -> object:
        return self.ident


class OtherHooked(Hooked):
    pass


class Shown:
    """A ``__repr__`` that identifies the value."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"Shown({self.n})"

    def scaled(self, factor: int) -> int:
        return self.n * factor


class Opaque:
    """Neither a hook nor a useful repr: identified by the object itself."""


class AddressRepr:
    """A repr with a memory address: useless as an identity (the address is reused)."""

    def __repr__(self) -> str:
        return f"<AddressRepr at {hex(id(self))}>"


class MyList(list):  # type: ignore[type-arg]
    pass


def module_function(x: int) -> int:
    return x


def other_module_function(x: int) -> int:
    return x


def make_adder(n: int) -> Any:
    def add(x: int) -> int:
        return x + n

    return add


def _local_class() -> type:
    class Local:
        pass

    return Local


# Functions and classes as arguments: named ones by name, bound methods with their object,
# lambdas and closures (whose names are not unique) by the object itself.
CALLABLES = [
    module_function,
    other_module_function,
    len,
    print,
    Shown,
    Point,
    Shown(1).scaled,
    Shown(2).scaled,
    make_adder(1),
    make_adder(2),
    lambda x: x,
    lambda x: -x,
    _local_class(),
    _local_class(),
]

VALUE_CLASSES = (Point, OtherPoint)
NAMED_TUPLES = (Pair, Couple, Swapped, RowAB, RowCD)
IDENTITY_CLASSES = (Opaque, AddressRepr)


def canon(value: object) -> object:
    """A hashable description: equal exactly when the two values are the same argument."""
    kind = type(value)
    if kind is float:
        return ("float", "nan" if math.isnan(value) else value.hex())  # type: ignore[arg-type]
    if kind in (int, str, bytes, bool, type(None)):
        return (kind.__name__, value)
    if kind in (list, tuple, MyList):
        return (kind.__name__, tuple(canon(item) for item in value))  # type: ignore[attr-defined]
    if kind in NAMED_TUPLES:
        return (kind.__name__, kind._fields, tuple(canon(item) for item in value))  # type: ignore[attr-defined]
    if kind is dict:
        return ("dict", frozenset((canon(k), canon(v)) for k, v in value.items()))  # type: ignore[attr-defined]
    if kind in (set, frozenset):
        return (kind.__name__, frozenset(canon(item) for item in value))  # type: ignore[attr-defined]
    if kind in VALUE_CLASSES:
        return (kind.__name__, canon(value.x), canon(value.y))  # type: ignore[attr-defined]
    if kind in (Tag, OtherTag):
        return (kind.__name__, value.name)  # type: ignore[attr-defined]
    if kind in (Hooked, OtherHooked):
        return (kind.__name__, canon(value.ident))  # type: ignore[attr-defined]
    if kind is Shown:
        return ("Shown", value.n)  # type: ignore[attr-defined]
    if kind.__name__ == "method":  # a new bound method object on every attribute access
        return ("method", value.__func__.__qualname__, canon(value.__self__))  # type: ignore[attr-defined]
    if kind in IDENTITY_CLASSES or callable(value):
        return ("object", id(value))
    raise AssertionError(f"no model for {value!r}")


def clone(value: object) -> object:
    """An equal value made of new objects wherever the type has value identity."""
    kind = type(value)
    if kind in (list, tuple, MyList, set, frozenset):
        return kind(clone(item) for item in value)  # type: ignore[attr-defined]
    if kind in NAMED_TUPLES:
        return kind(*(clone(item) for item in value))  # type: ignore[attr-defined]
    if kind is dict:
        return {k: clone(v) for k, v in value.items()}  # type: ignore[attr-defined]
    if kind in VALUE_CLASSES:
        return kind(clone(value.x), clone(value.y))  # type: ignore[attr-defined]
    if kind in (Hooked, OtherHooked):
        return kind(clone(value.ident))  # type: ignore[attr-defined]
    if kind is Shown:
        return Shown(value.n)  # type: ignore[attr-defined]
    if kind.__name__ == "method":
        return getattr(clone(value.__self__), value.__name__)  # type: ignore[attr-defined]
    if kind is str:
        return "".join(list(value))  # type: ignore[arg-type]  # equal, often not identical
    return value


# -- a fixed sample whose keys must be the same in every process ---------------------------


def sample_function(a: Any, b: Any = 2, *args: Any, flag: Any = False, **kwargs: Any) -> None:
    """A signature with every kind of parameter."""


def sample_calls() -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    nested = {"k": [1, (2, {3, 4})], "s": frozenset({"x", "y", "z"}), b"b": None}
    return [
        ((1,), {}),
        ((1, 3, 4, 5), {"flag": True, "z": 1, "a2": 2}),
        ((nested,), {"q": {"é", "\udcff", "long" * 40}}),
        ((Point(1, Pair(2, 3)), Tag.A), {}),
        ((OtherPoint(1.5, -0.0), OtherTag.B), {"h": Hooked(("id", 7))}),
        ((module_function, Shown(3), MyList([1, 2])), {"m": Shown(4).scaled, "c": Point}),
        ((Swapped(1, 2), Couple(1, 2)), {"n": None}),
        ((float("nan"), 2**80, -(2**70), 1e300), {}),
    ]


def sample_keys() -> list[str]:
    """The keys of the sample: the argument text and its hash."""
    call_key = CallKey(sample_function)
    out = []
    for args, kwargs in sample_calls():
        text = call_key.text(args, kwargs)
        out += [text, hash_text(text), hash_text(text, hashlib.md5)]
    out.append(encode(sample_function))
    return out


def main() -> None:
    """Print the sample's keys (run in a child process by the key tests)."""
    print(json.dumps(sample_keys()))
