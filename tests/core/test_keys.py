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


# -- the key format is a contract -----------------------------------------------------------
# Keys live in shared backends across deploys and in mixed-version fleets during a rolling
# deploy: a change of format silently empties every cache (or, worse, makes two versions
# disagree). So the exact text is pinned; change it only deliberately, with a CHANGES entry.


def _pinned_samples() -> list[tuple[object, str]]:
    import datetime as dt
    import uuid
    from decimal import Decimal

    from .. import keymodel as km

    return [
        (1, "1"),
        (True, "True"),
        (None, "None"),
        (1.5, "1.5"),
        ("s", "'s'"),
        (b"b", "b'b'"),
        ((1, "a"), "(1, 'a')"),
        ([1, None], "[1, None]"),
        ((km.Tag.A,), "(<tests.keymodel.Tag.A>,)"),
        ([km.Tag.A, 1], "[<tests.keymodel.Tag.A>,1]"),
        ({"b": 1, 2: [3]}, "{'b':1,2:[3]}"),
        ({3, 1}, "set{1,3}"),
        (frozenset({"x"}), "frozenset{'x'}"),
        (dt.date(2024, 1, 2), "<datetime.date:datetime.date(2024, 1, 2)>"),
        (uuid.UUID(int=7), "<uuid.UUID:UUID('00000000-0000-0000-0000-000000000007')>"),
        (Decimal("1.10"), "<decimal.Decimal:Decimal('1.10')>"),
        (km.Point(1, (2,)), "<tests.keymodel.Point:{'x':1,'y':(2,)}>"),
        (km.Pair(1, 2), "<tests.keymodel.Pair('x', 'y'):(1, 2)>"),
        (km.MyList([1]), "<tests.keymodel.MyList:[1]>"),
        (km.Hooked("i"), "<tests.keymodel.Hooked#'i'>"),
        (km.Shown(4), "<tests.keymodel.Shown:Shown(4)>"),
        (km.module_function, "<tests.keymodel.module_function>"),
        (km.Shown, "<tests.keymodel.Shown>"),
        (km.Shown(2).scaled, "<tests.keymodel.Shown.scaled of <tests.keymodel.Shown:Shown(2)>>"),
        (len, "<builtins.len>"),
    ]


def test_the_encoding_of_every_kind_of_value_is_pinned() -> None:
    for value, text in _pinned_samples():
        assert encode(value) == text, value


def test_the_text_of_a_call_is_pinned() -> None:
    def g(a: Any, /, b: Any = 2, *args: Any, k: Any, **kwargs: Any) -> None: ...

    call_key = CallKey(g)
    assert call_key.text((1, 2, 3), {"k": 4, "z": 5}) == "(1,2,('*', 3),('k', 4),('**',('z', 5),),)"
    assert call_key.text((1,), {"k": 4}) == "(1,2,('*',),('k', 4),('**',),)"


def test_hash_text_is_pinned_and_takes_any_str() -> None:
    import hashlib

    from flask_stash.core.keys import hash_text

    assert (
        hash_text("k\udcff") == "c66e63fec1975c909c139e880e6ce1c18ce56c6ba4add154b4a7229f902a6eb2"
    )
    assert hash_text("k", hashlib.md5) == hashlib.md5(b"k").hexdigest()


def test_qualified_name_falls_back_step_by_step() -> None:
    import types

    from flask_stash.core.keys import qualified_name

    assert qualified_name(f) == "tests.core.test_keys.f"
    assert qualified_name(types.SimpleNamespace(__module__="m", __name__="n")) == "m.n"
    assert qualified_name(types.SimpleNamespace(__module__=None, __qualname__="q")) == "?.q"
    nameless = types.SimpleNamespace(__module__="m")
    assert qualified_name(nameless) == f"m.{nameless!r}"


# -- look-alike values never share a key ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Secret:
    shown: int
    hidden: int = dataclasses.field(repr=False)


def _look_alikes() -> list[tuple[object, object]]:
    from .. import keymodel as km

    return [
        (km.Point(1, 2), km.OtherPoint(1, 2)),
        (km.Point(1, 2), {"x": 1, "y": 2}),
        (Secret(1, 1), Secret(1, 2)),  # a field left out of repr is still part of the key
        (km.Pair(1, 2), km.Couple(1, 2)),
        (km.Pair(1, 2), (1, 2)),
        (km.Pair(1, 2), km.Swapped(1, 2)),
        (km.Tag.A, km.OtherTag.A),
        (km.Hooked(1), km.OtherHooked(1)),
        (km.MyList([1]), [1]),
        ([km.Tag.A], (km.Tag.A,)),
        ([km.Tag.A], [km.Tag.B]),
        ({"a": km.Tag.A}, {"a": km.Tag.B}),
        ({"a": 1}, {"a": 2}),
        ({"a": 1}, {"b": 1}),
        ({1}, frozenset({1})),
        ({1}, {2}),
        (1, True),
        (1, 1.0),
        (km.Shown(1), km.Shown(2)),
        (km.module_function, km.other_module_function),
    ]


@pytest.mark.parametrize(("one", "other"), _look_alikes())
def test_look_alike_values_never_share_a_key(one: object, other: object) -> None:
    assert encode(one) != encode(other)
    assert key_of(f, one) != key_of(f, other)
    assert key_of(f, 1, c=one) != key_of(f, 1, c=other)


# -- calls the function itself would refuse are refused --------------------------------------


def test_calls_the_function_would_refuse_raise_the_binding_error() -> None:
    def two(a: Any, b: Any) -> None: ...

    with pytest.raises(TypeError, match="missing a required argument"):
        key_of(two, 1)
    with pytest.raises(TypeError, match="missing a required argument"):
        key_of(f)
    with pytest.raises(TypeError, match="multiple values"):
        key_of(f, 1, 2, None, b=3)
    with pytest.raises(TypeError, match="unexpected keyword"):
        key_of(two, 1, 2, c=3)


# -- instance tokens --------------------------------------------------------------------------


def test_a_live_object_keeps_its_token_whatever_else_is_keyed() -> None:
    tokens = type(instance_token)()
    one, two = Plain(), Plain()
    first = tokens(one)
    assert tokens(two) != first
    assert tokens(one) == first
    tokens._forget(id(one))  # a stale callback for this address: the live token stays
    assert tokens(one) == first


def test_objects_without_identity_are_refused_with_advice() -> None:
    class Slotted:
        __slots__ = ("x",)

    message = (
        "cannot build a cache key for 'test_objects_without_identity_are_refused_with_advice"
        ".<locals>.Slotted' instances: define __caching_id__(self) returning a value that "
        "identifies the object, or a __repr__ that does"
    )
    with pytest.raises(TypeError) as info:
        type(instance_token)()(Slotted())
    assert str(info.value) == message


def test_qualified_name_of_an_object_without_a_module() -> None:
    import json

    from flask_stash.core.keys import qualified_name

    assert not hasattr(json, "__module__")
    assert qualified_name(json) == "?.json"


def test_a_token_key_still_names_the_class() -> None:
    """Readable in the backend: which type's instances are keyed by identity."""
    import re

    assert re.fullmatch(r"<tests\.core\.test_keys\.Plain@[0-9a-f]{32}>", encode(Plain()))


def test_positional_calls_never_bind_the_signature() -> None:
    """The documented hot path: positional calls are keyed without Signature.bind."""
    call_key = CallKey(f)

    class NoBinding:
        parameters = call_key.signature.parameters

        def bind(self, *args: Any, **kwargs: Any) -> None:
            raise AssertionError("the fast path bound the signature")

    call_key.signature = NoBinding()  # type: ignore[assignment]
    full = (1, 2, 3)
    assert call_key.arguments(full, {}) is full
    assert call_key.arguments((1,), {}) == (1, 2, None)
    assert call_key.arguments((1, 5), {}) == (1, 5, None)
    assert call_key.text((1,), {}) == "(1, 2, None)"
