from __future__ import annotations

import dataclasses
import enum
import gc
from typing import Any

import pytest

from flask_stash.core.keys import CallKey, encode, instance_token


def f(a: Any, b: Any = 2, c: Any = None) -> None: ...


def key_of(fn: Any, *args: Any, **kwargs: Any) -> str:
    return CallKey(fn).text(args, kwargs)


def test_every_spelling_of_a_call_is_one_key() -> None:
    spellings = [
        key_of(f, 1),
        key_of(f, 1, 2),
        key_of(f, 1, 2, None),
        key_of(f, 1, b=2),
        key_of(f, b=2, a=1),
        key_of(f, c=None, a=1),
    ]
    assert len(set(spellings)) == 1


def test_falsy_values_and_none_never_collide() -> None:
    values = [None, 0, False, 0.0, "", "0", "None", b"", (), [], {}, -0.0]
    keys = {key_of(f, 1, value) for value in values}
    assert len(keys) == len(values)


def test_strings_cannot_forge_structure() -> None:
    assert key_of(f, "1, 2") != key_of(f, 1, 2)
    assert key_of(f, ("a", "b")) != key_of(f, "('a', 'b')")


def test_var_args_and_kwargs() -> None:
    def g(a: Any, *args: Any, key: Any = 1, **kwargs: Any) -> None: ...

    assert key_of(g, 1, 2, 3, x=1, y=2) == key_of(g, 1, 2, 3, y=2, x=1, key=1)
    assert key_of(g, 1, 2, 3) != key_of(g, 1, (2, 3))
    assert key_of(g, 1, x=1) != key_of(g, 1, 1)


def test_dicts_and_sets_are_order_independent() -> None:
    assert encode({"a": 1, "b": 2}) == encode({"b": 2, "a": 1})
    assert encode({3, 1, 2}) == encode({2, 3, 1})
    assert encode({1}) != encode(frozenset({1}))
    assert encode([1, 2]) != encode((1, 2))


def test_ignored_arguments() -> None:
    def g(user: Any, request_id: Any) -> None: ...

    call_key = CallKey(g, ignore=["request_id"])
    assert call_key.text((1, "abc"), {}) == call_key.text((1, "xyz"), {})
    with pytest.raises(ValueError, match="no parameter"):
        CallKey(g, ignore=["nope"])


def test_wrong_call_raises_like_the_function_would() -> None:
    with pytest.raises(TypeError):
        key_of(f)
    with pytest.raises(TypeError):
        key_of(f, 1, 2, 3, 4)


class WithHook:
    def __init__(self, ident: int) -> None:
        self.ident = ident

    def __caching_id__(self) -> int:
        return self.ident


class Plain:
    pass


class Color(enum.Enum):
    RED = 1


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_caching_id_hook_identifies_instances() -> None:
    assert encode(WithHook(1)) == encode(WithHook(1))
    assert encode(WithHook(1)) != encode(WithHook(2))


def test_stable_types_are_keyed_by_value() -> None:
    assert encode(Point(1, 2)) == encode(Point(1, 2))
    assert encode(Color.RED) == encode(Color.RED)
    assert encode(Plain) == encode(Plain)
    assert "0x" not in encode(f)


def test_default_repr_objects_get_a_token_never_an_address() -> None:
    first = Plain()
    first_key = encode(first)
    assert hex(id(first)) not in first_key
    assert encode(first) == first_key  # same live object, same key
    address = id(first)
    del first
    gc.collect()
    # The token died with the object: whatever object gets this address next gets a new
    # token, never the dead one's entries.
    assert address not in instance_token._tokens
    candidate = Plain()  # CPython often hands the freed address straight back
    assert encode(candidate) != first_key


def test_objects_without_weakrefs_or_hook_are_refused() -> None:
    class Slotted:
        __slots__ = ("x",)

    with pytest.raises(TypeError, match="__caching_id__"):
        instance_token(Slotted())


def test_named_tuples_of_one_name_and_another_layout_differ() -> None:
    from collections import namedtuple

    row_ab = namedtuple("Row", "a b")
    row_cd = namedtuple("Row", "c d")
    assert encode(row_ab(1, 2)) != encode(row_cd(1, 2))
    assert encode(row_ab(1, 2)) == encode(row_ab(1, 2))
    assert encode(row_ab(1, 2)) != encode((1, 2))


def test_bound_methods_are_keyed_with_their_object() -> None:
    assert encode(WithHook(1).__caching_id__) != encode(WithHook(2).__caching_id__)
    assert encode(WithHook(1).__caching_id__) == encode(WithHook(1).__caching_id__)
    assert encode(len) == "<builtins.len>"  # a module's function: by name


def test_lambdas_and_closures_are_keyed_by_the_object_not_the_shared_name() -> None:
    def make(n: int) -> Any:
        return lambda: n

    one, two = make(1), make(2)
    assert encode(one) != encode(two)
    assert encode(one) == encode(one)
    assert "0x" not in encode(one)
