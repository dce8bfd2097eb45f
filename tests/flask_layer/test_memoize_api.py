"""``@cache.memoize``, ``delete_memoized`` and ``delete_memoized_verhash`` as documented
by Flask-Caching, through ``from flask_stash import Cache``."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from flask_stash import Cache, ConfigurationError
from flask_stash.testing import FakeClock

from .conftest import make_app

Calls = list[Any]


@pytest.fixture
def app(clock: FakeClock) -> Flask:
    return make_app(CACHE_TYPE="SimpleCache", CACHE_OPTIONS={"clock": clock})


@pytest.fixture
def cache(app: Flask) -> Iterator[Cache]:
    cache = Cache(app)
    with app.app_context():
        yield cache


# -- the basics ----------------------------------------------------------------------------


def test_one_computation_per_argument_set(cache: Cache) -> None:
    calls: Calls = []

    @cache.memoize(timeout=50)
    def add(a: int, b: int) -> int:
        calls.append((a, b))
        return a + b

    assert add(2, 3) == 5
    assert add(2, 3) == 5
    assert add(10, 1) == 11
    assert add(10, 1) == 11
    assert add(2, 3) == 5
    assert calls == [(2, 3), (10, 1)]


def test_positional_keyword_and_default_spellings_share_an_entry(cache: Cache) -> None:
    calls: Calls = []

    @cache.memoize()
    def f(a: int, b: int = 2) -> int:
        calls.append((a, b))
        return a * 10 + b

    assert f(1, 2) == 12
    assert f(1, b=2) == 12
    assert f(a=1, b=2) == 12
    assert f(b=2, a=1) == 12
    assert f(1) == 12
    assert calls == [(1, 2)]
    assert f(1, 3) == 13
    assert calls == [(1, 2), (1, 3)]


def test_var_args_and_kwargs(cache: Cache) -> None:
    calls: Calls = []

    @cache.memoize()
    def f(*args: int, **kwargs: int) -> int:
        calls.append((args, kwargs))
        return sum(args) + sum(kwargs.values())

    assert f(1, 2, x=3, y=4) == 10
    assert f(1, 2, y=4, x=3) == 10
    assert f(2, 1, x=3, y=4) == 10
    assert len(calls) == 2


def test_values_of_different_types_do_not_collide(cache: Cache) -> None:
    @cache.memoize()
    def ident(x: Any) -> str:
        return f"{type(x).__name__}:{x!r}"

    assert ident(1) == "int:1"
    assert ident("1") == "str:'1'"
    assert ident(1.0) == "float:1.0"
    assert ident(True) == "bool:True"
    assert ident(None) == "NoneType:None"


def test_unhashable_arguments(cache: Cache) -> None:
    calls: Calls = []

    @cache.memoize()
    def total(items: list[int], weights: dict[str, int]) -> int:
        calls.append(1)
        return sum(items) + sum(weights.values())

    assert total([1, 2], {"a": 1, "b": 2}) == 6
    assert total([1, 2], {"b": 2, "a": 1}) == 6
    assert total([2, 1], {"a": 1, "b": 2}) == 6
    assert len(calls) == 2


def test_exceptions_propagate_and_are_not_cached(cache: Cache) -> None:
    calls: Calls = []

    @cache.memoize()
    def fragile(x: int) -> int:
        calls.append(x)
        if len(calls) == 1:
            raise RuntimeError("first call fails")
        return x

    with pytest.raises(RuntimeError):
        fragile(1)
    assert fragile(1) == 1
    assert fragile(1) == 1
    assert len(calls) == 2


def test_cached_values_are_copies(cache: Cache) -> None:
    @cache.memoize()
    def make_list() -> list[int]:
        return [1]

    make_list().append(2)
    assert make_list() == [1]


def test_wrapper_keeps_name_and_signature(cache: Cache) -> None:
    def original(a: int, b: str = "x") -> str:
        """Docstring."""
        return b * a

    wrapped = cache.memoize()(original)
    assert wrapped.__name__ == "original"
    assert wrapped.__doc__ == "Docstring."
    assert inspect.signature(wrapped) == inspect.signature(original)
    assert wrapped.uncached is original  # type: ignore[attr-defined]


def test_uncached_bypasses_the_cache(cache: Cache) -> None:
    calls: Calls = []

    @cache.memoize()
    def f(x: int) -> int:
        calls.append(x)
        return len(calls)

    assert f(1) == 1
    assert f.uncached(1) == 2  # type: ignore[attr-defined]
    assert f(1) == 1


# -- timeouts ------------------------------------------------------------------------------


def test_timeout_expires(cache: Cache, clock: FakeClock) -> None:
    calls: Calls = []

    @cache.memoize(timeout=10)
    def f(x: int) -> int:
        calls.append(x)
        return len(calls)

    assert f(1) == 1
    clock.advance(9)
    assert f(1) == 1
    clock.advance(2)
    assert f(1) == 2


def test_default_timeout_applies(clock: FakeClock) -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_DEFAULT_TIMEOUT=20)
    cache = Cache(app, config={"CACHE_OPTIONS": {"clock": clock}})
    calls: Calls = []

    @cache.memoize()
    def f() -> int:
        calls.append(1)
        return len(calls)

    with app.app_context():
        assert f() == 1
        clock.advance(19)
        assert f() == 1
        clock.advance(2)
        assert f() == 2


def test_timeout_zero_never_expires(cache: Cache, clock: FakeClock) -> None:
    calls: Calls = []

    @cache.memoize(timeout=0)
    def f() -> int:
        calls.append(1)
        return len(calls)

    f()
    clock.advance(10**8)
    assert f() == 1


def test_changing_cache_timeout_affects_later_stores(cache: Cache, clock: FakeClock) -> None:
    calls: Calls = []

    @cache.memoize(timeout=100)
    def f(x: int) -> int:
        calls.append(x)
        return len(calls)

    assert f.cache_timeout == 100  # type: ignore[attr-defined]
    f.cache_timeout = 5  # type: ignore[attr-defined]
    assert f(1) == 1
    clock.advance(6)
    assert f(1) == 2


def test_negative_timeout_fails_at_decoration(cache: Cache) -> None:
    with pytest.raises((ConfigurationError, ValueError)):
        cache.memoize(timeout=-5)


def test_memoize_on_non_callable_is_a_type_error(cache: Cache) -> None:
    with pytest.raises(TypeError):
        cache.memoize()(42)  # type: ignore[type-var]


# -- options -------------------------------------------------------------------------------


def test_make_name_is_applied(cache: Cache) -> None:
    seen: list[str] = []

    def make_name(name: str) -> str:
        seen.append(name)
        return "renamed"

    @cache.memoize(make_name=make_name)
    def f(x: int) -> int:
        return x

    @cache.memoize(make_name=make_name)
    def g(x: int) -> int:
        return -x

    assert f(1) == 1
    assert g(1) == 1  # the same name, so the same entry
    assert any(name.endswith("test_make_name_is_applied.<locals>.f") for name in seen)


def test_make_name_is_called_on_every_call(cache: Cache) -> None:
    tenant = {"id": "a"}
    calls: Calls = []

    @cache.memoize(make_name=lambda name: f"{name}:{tenant['id']}")
    def settings(x: int) -> tuple[str, int]:
        calls.append(tenant["id"])
        return tenant["id"], x

    assert settings(1) == ("a", 1)
    tenant["id"] = "b"
    assert settings(1) == ("b", 1)
    tenant["id"] = "a"
    assert settings(1) == ("a", 1)
    assert calls == ["a", "b"]


def test_unless_without_arguments(cache: Cache) -> None:
    bypass = {"on": False}
    calls: Calls = []

    @cache.memoize(unless=lambda: bypass["on"])
    def f(x: int) -> int:
        calls.append(x)
        return len(calls)

    assert f(1) == 1
    bypass["on"] = True
    assert f(1) == 2
    assert f(1) == 3
    bypass["on"] = False
    assert f(1) == 1


def test_unless_with_arguments_gets_function_first(cache: Cache) -> None:
    seen: list[tuple[Any, ...]] = []
    calls: Calls = []

    def unless(f: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        seen.append((f, args, kwargs))
        return args[0] < 0

    @cache.memoize(unless=unless)
    def f(x: int, y: int = 0) -> int:
        calls.append(x)
        return x

    f(1, y=2)
    f(1, y=2)
    f(-1)
    f(-1)
    assert calls == [1, -1, -1]
    assert seen[0] == (f.uncached, (1,), {"y": 2})  # type: ignore[attr-defined]


def test_forced_update(cache: Cache) -> None:
    force = {"on": False}
    calls: Calls = []

    @cache.memoize(forced_update=lambda: force["on"])
    def f(x: int) -> int:
        calls.append(x)
        return len(calls)

    assert f(1) == 1
    assert f(1) == 1
    force["on"] = True
    assert f(1) == 2
    force["on"] = False
    assert f(1) == 2


def test_forced_update_with_arguments(cache: Cache) -> None:
    calls: Calls = []

    @cache.memoize(forced_update=lambda x: x == 2)
    def f(x: int) -> int:
        calls.append(x)
        return len(calls)

    assert f(1) == 1
    assert f(1) == 1
    assert f(2) == 2
    assert f(2) == 3


def test_is_stale_with_value_only(cache: Cache) -> None:
    seen: list[Any] = []
    calls: Calls = []

    def is_stale(value: Any) -> bool:
        seen.append(value)
        return value["version"] < 2

    @cache.memoize(is_stale=is_stale)
    def doc() -> dict[str, int]:
        calls.append(1)
        return {"version": len(calls)}

    assert doc() == {"version": 1}
    assert doc() == {"version": 2}
    assert doc() == {"version": 2}
    assert seen == [{"version": 1}, {"version": 2}]


def test_is_stale_with_value_and_arguments(cache: Cache) -> None:
    seen: list[tuple[Any, ...]] = []
    calls: Calls = []

    def is_stale(value: Any, x: int) -> bool:
        seen.append((value, x))
        return x == 2

    @cache.memoize(is_stale=is_stale)
    def f(x: int) -> int:
        calls.append(x)
        return x * 100 + len(calls)

    assert f(1) == 101
    assert f(1) == 101
    assert f(2) == 202
    assert f(2) == 203
    assert seen[0] == (101, 1)


def test_response_filter(cache: Cache) -> None:
    calls: Calls = []

    @cache.memoize(response_filter=lambda rv: rv["ok"])
    def fetch(x: int) -> dict[str, Any]:
        calls.append(x)
        return {"ok": x > 0, "x": x}

    fetch(-1)
    fetch(-1)
    fetch(1)
    fetch(1)
    assert calls == [-1, -1, 1]


def test_none_results_are_recomputed_by_default(cache: Cache) -> None:
    calls: Calls = []

    @cache.memoize()
    def nothing(x: int) -> None:
        calls.append(x)

    assert nothing(1) is None
    assert nothing(1) is None
    assert calls == [1, 1]


def test_cache_none_stores_none(cache: Cache) -> None:
    calls: Calls = []

    @cache.memoize(cache_none=True)
    def nothing(x: int) -> None:
        calls.append(x)

    assert nothing(1) is None
    assert nothing(1) is None
    assert calls == [1]


def test_args_to_ignore(cache: Cache) -> None:
    calls: Calls = []

    @cache.memoize(args_to_ignore=["request_id"])
    def lookup(user: str, request_id: int) -> str:
        calls.append(request_id)
        return user.upper()

    assert lookup("ann", 1) == "ANN"
    assert lookup("ann", 2) == "ANN"
    assert lookup("ann", request_id=3) == "ANN"
    assert lookup("bob", 4) == "BOB"
    assert calls == [1, 4]


def test_args_to_ignore_self(cache: Cache) -> None:
    calls: Calls = []

    class Service:
        @cache.memoize(args_to_ignore=["self"])
        def compute(self, x: int) -> int:
            calls.append(x)
            return x * 2

    assert Service().compute(2) == 4
    assert Service().compute(2) == 4
    assert calls == [2]


def test_hash_method(cache: Cache) -> None:
    @cache.memoize(hash_method=hashlib.md5)
    def f(x: int) -> int:
        return x

    @cache.memoize()
    def g(x: int) -> int:
        return x

    md5_key = f.make_cache_key(f.uncached, 1)  # type: ignore[attr-defined]
    sha_key = g.make_cache_key(g.uncached, 1)  # type: ignore[attr-defined]
    assert len(md5_key.rsplit(":", 1)[-1]) == 32
    assert len(sha_key.rsplit(":", 1)[-1]) == 64
    f(1)
    assert cache.get(md5_key) == 1


def test_cache_hash_method_setting(clock: FakeClock) -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_HASH_METHOD=hashlib.md5)
    cache = Cache(app)

    @cache.memoize()
    def f(x: int) -> int:
        return x

    with app.app_context():
        key = f.make_cache_key(f.uncached, 1)  # type: ignore[attr-defined]
        assert len(key.rsplit(":", 1)[-1]) == 32


def _two_functions_with_one_name() -> tuple[Callable[[int], str], Callable[[int], str]]:
    def build(variant: int) -> Callable[[int], str]:
        if variant == 1:

            def f(x: int) -> str:
                return f"one {x}"

        else:

            def f(x: int) -> str:
                return f"two {x}"

        return f

    return build(1), build(2)


def test_source_check_separates_changed_code(cache: Cache) -> None:
    one, two = _two_functions_with_one_name()
    assert one.__qualname__ == two.__qualname__
    checked_one = cache.memoize(source_check=True)(one)
    checked_two = cache.memoize(source_check=True)(two)
    assert checked_one(1) == "one 1"
    assert checked_two(1) == "two 1"


def test_without_source_check_same_name_shares_entries(cache: Cache) -> None:
    one, two = _two_functions_with_one_name()
    plain_one = cache.memoize()(one)
    plain_two = cache.memoize()(two)
    assert plain_one(1) == "one 1"
    assert plain_two(1) == "one 1"  # same qualified name, same key (as in Flask-Caching)


def test_cache_source_check_setting(clock: FakeClock) -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_SOURCE_CHECK=True)
    cache = Cache(app)
    one, two = _two_functions_with_one_name()
    with app.app_context():
        assert cache.memoize()(one)(1) == "one 1"
        assert cache.memoize()(two)(1) == "two 1"


# -- methods -------------------------------------------------------------------------------


class Adder:
    calls: Calls = []  # noqa: RUF012

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Adder({self.name!r})"


def make_adder_class(cache: Cache) -> type[Any]:
    calls: Calls = []

    class Counter:
        log = calls

        def __init__(self, name: str) -> None:
            self.name = name

        def __repr__(self) -> str:
            return f"Counter({self.name!r})"

        @cache.memoize()
        def add(self, b: int) -> str:
            calls.append((self.name, b))
            return f"{self.name}+{b}#{len(calls)}"

        @classmethod
        @cache.memoize()
        def cm(cls, b: int) -> str:
            calls.append(("cm", b))
            return f"cm{b}#{len(calls)}"

        @cache.memoize()
        @classmethod
        def cm_outer(cls, b: int) -> str:
            calls.append(("cm_outer", b))
            return f"cmo{b}#{len(calls)}"

        @staticmethod
        @cache.memoize()
        def sm(b: int) -> str:
            calls.append(("sm", b))
            return f"sm{b}#{len(calls)}"

    return Counter


def test_methods_are_memoized_per_instance(cache: Cache) -> None:
    counter_cls = make_adder_class(cache)
    a, b = counter_cls("a"), counter_cls("b")
    assert a.add(1) == "a+1#1"
    assert a.add(1) == "a+1#1"
    assert b.add(1) == "b+1#2"
    assert b.add(1) == "b+1#2"
    assert a.add(2) == "a+2#3"


def test_classmethods_in_both_decorator_orders(cache: Cache) -> None:
    counter_cls = make_adder_class(cache)
    assert counter_cls.cm(1) == "cm1#1"
    assert counter_cls.cm(1) == "cm1#1"
    assert counter_cls("x").cm(1) == "cm1#1"
    assert counter_cls.cm_outer(1) == "cmo1#2"
    assert counter_cls.cm_outer(1) == "cmo1#2"


def test_staticmethods(cache: Cache) -> None:
    counter_cls = make_adder_class(cache)
    assert counter_cls.sm(1) == "sm1#1"
    assert counter_cls.sm(1) == "sm1#1"
    assert counter_cls("x").sm(1) == "sm1#1"


def test_caching_id_identifies_instances(cache: Cache) -> None:
    calls: Calls = []

    class User:
        def __init__(self, user_id: int, session: object) -> None:
            self.user_id = user_id
            self.session = session

        def __caching_id__(self) -> int:
            return self.user_id

    @cache.memoize()
    def profile(user: User) -> str:
        calls.append(user.user_id)
        return f"profile {user.user_id}"

    assert profile(User(1, object())) == "profile 1"
    assert profile(User(1, object())) == "profile 1"  # another object, same identity
    assert profile(User(2, object())) == "profile 2"
    assert calls == [1, 2]


def test_objects_without_identity_never_share_entries(cache: Cache) -> None:
    calls: Calls = []

    class Opaque:
        pass

    @cache.memoize()
    def f(obj: Opaque) -> int:
        calls.append(obj)
        return len(calls)

    first = Opaque()
    assert f(first) == 1
    assert f(first) == 1
    assert f(Opaque()) == 2


# -- delete_memoized -----------------------------------------------------------------------


def test_delete_memoized_all(cache: Cache) -> None:
    calls: Calls = []

    @cache.memoize()
    def f(x: int) -> int:
        calls.append(x)
        return len(calls)

    assert (f(1), f(2)) == (1, 2)
    cache.delete_memoized(f)
    assert (f(1), f(2)) == (3, 4)
    assert (f(1), f(2)) == (3, 4)


def test_delete_memoized_one_call(cache: Cache) -> None:
    calls: Calls = []

    @cache.memoize()
    def param_func(a: int, b: int) -> int:
        calls.append((a, b))
        return len(calls)

    assert param_func(1, 2) == 1
    assert param_func(2, 2) == 2
    cache.delete_memoized(param_func, 1, 2)
    assert param_func(1, 2) == 3
    assert param_func(2, 2) == 2


def test_delete_memoized_one_call_with_keywords_and_defaults(cache: Cache) -> None:
    calls: Calls = []

    @cache.memoize()
    def f(a: int, b: int = 5) -> int:
        calls.append((a, b))
        return len(calls)

    assert f(1) == 1
    cache.delete_memoized(f, a=1)
    assert f(1, 5) == 2
    cache.delete_memoized(f, 1, b=5)
    assert f(a=1) == 3


def test_delete_memoized_args_of_never_made_call_is_harmless(cache: Cache) -> None:
    @cache.memoize()
    def f(x: int) -> int:
        return x

    f(1)
    cache.delete_memoized(f, 99)
    assert f(1) == 1


def test_delete_memoized_bound_method_only_that_instance(cache: Cache) -> None:
    counter_cls = make_adder_class(cache)
    a, b = counter_cls("a"), counter_cls("b")
    assert (a.add(3), b.add(3)) == ("a+3#1", "b+3#2")
    cache.delete_memoized(a.add)
    assert a.add(3) == "a+3#3"
    assert b.add(3) == "b+3#2"


def test_delete_memoized_class_method_all_instances(cache: Cache) -> None:
    counter_cls = make_adder_class(cache)
    a, b = counter_cls("a"), counter_cls("b")
    assert (a.add(3), b.add(3)) == ("a+3#1", "b+3#2")
    cache.delete_memoized(counter_cls.add)
    assert a.add(3) == "a+3#3"
    assert b.add(3) == "b+3#4"


def test_delete_memoized_bound_method_with_argument(cache: Cache) -> None:
    counter_cls = make_adder_class(cache)
    a, b = counter_cls("a"), counter_cls("b")
    assert (a.add(3), a.add(4), b.add(3)) == ("a+3#1", "a+4#2", "b+3#3")
    cache.delete_memoized(a.add, 3)
    assert a.add(3) == "a+3#4"
    assert a.add(4) == "a+4#2"
    assert b.add(3) == "b+3#3"


def test_delete_memoized_bound_method_with_explicit_instance(cache: Cache) -> None:
    """Passing the instance again (the pre-2.5 form) keeps working."""
    counter_cls = make_adder_class(cache)
    a = counter_cls("a")
    assert a.add(3) == "a+3#1"
    cache.delete_memoized(a.add, a, 3)
    assert a.add(3) == "a+3#2"


def test_delete_memoized_through_class_with_instance_and_argument(cache: Cache) -> None:
    counter_cls = make_adder_class(cache)
    a, b = counter_cls("a"), counter_cls("b")
    assert (a.add(3), b.add(3)) == ("a+3#1", "b+3#2")
    cache.delete_memoized(counter_cls.add, a, 3)
    assert a.add(3) == "a+3#3"
    assert b.add(3) == "b+3#2"


def test_delete_memoized_classmethod(cache: Cache) -> None:
    counter_cls = make_adder_class(cache)
    assert (counter_cls.cm(1), counter_cls.cm(2)) == ("cm1#1", "cm2#2")
    cache.delete_memoized(counter_cls.cm, counter_cls, 1)  # Flask-Caching's form
    assert counter_cls.cm(1) == "cm1#3"
    assert counter_cls.cm(2) == "cm2#2"
    cache.delete_memoized(counter_cls.cm, 2)  # the class is implied
    assert counter_cls.cm(2) == "cm2#4"
    cache.delete_memoized(counter_cls.cm)
    assert (counter_cls.cm(1), counter_cls.cm(2)) == ("cm1#5", "cm2#6")


def test_delete_memoized_staticmethod(cache: Cache) -> None:
    counter_cls = make_adder_class(cache)
    assert counter_cls.sm(1) == "sm1#1"
    cache.delete_memoized(counter_cls.sm, 1)
    assert counter_cls.sm(1) == "sm1#2"
    cache.delete_memoized(counter_cls.sm)
    assert counter_cls.sm(1) == "sm1#3"


def test_delete_memoized_verhash(cache: Cache) -> None:
    calls: Calls = []

    @cache.memoize()
    def f(x: int) -> int:
        calls.append(x)
        return len(calls)

    assert (f(1), f(2)) == (1, 2)
    cache.delete_memoized_verhash(f)
    assert (f(1), f(2)) == (3, 4)
    assert (f(1), f(2)) == (3, 4)


def test_delete_memoized_verhash_rejects_names(cache: Cache) -> None:
    with pytest.raises(TypeError):
        cache.delete_memoized_verhash("f")  # type: ignore[arg-type]


def test_wrapper_delete_memoized(cache: Cache) -> None:
    calls: Calls = []

    @cache.memoize()
    def f(x: int) -> int:
        calls.append(x)
        return len(calls)

    assert f(1) == 1
    f.delete_memoized()  # type: ignore[attr-defined]
    assert f(1) == 2


def test_delete_memoized_by_name_is_a_type_error(cache: Cache) -> None:
    with pytest.raises(TypeError, match="function reference"):
        cache.delete_memoized("f")  # type: ignore[arg-type]


def test_delete_memoized_of_plain_function_is_a_clear_value_error(cache: Cache) -> None:
    def never_memoized(x: int) -> int:
        return x

    with pytest.raises(ValueError, match="not memoized"):
        cache.delete_memoized(never_memoized)


def test_delete_memoized_of_another_caches_function(app: Flask, cache: Cache) -> None:
    other = Cache(app, config={"CACHE_KEY_PREFIX": "other_"})

    @other.memoize()
    def f(x: int) -> int:
        return x

    with pytest.raises(ValueError):
        cache.delete_memoized(f)


def test_delete_memoized_forgets_in_every_spelling(cache: Cache) -> None:
    calls: Calls = []

    @cache.memoize()
    def f(a: int, b: int = 2) -> int:
        calls.append(1)
        return len(calls)

    f(1)
    f(1, b=2)
    cache.delete_memoized(f, 1, 2)
    assert f(a=1) == 2


# -- make_cache_key ------------------------------------------------------------------------


def test_make_cache_key_returns_a_key_cache_get_can_read(cache: Cache) -> None:
    @cache.memoize()
    def area(w: int, h: int = 2) -> int:
        return w * h

    assert area(3) == 6
    key = area.make_cache_key(area.uncached, 3, 2)  # type: ignore[attr-defined]
    assert isinstance(key, str)
    assert cache.get(key) == 6
    assert area.make_cache_key(area.uncached, 3) == key  # type: ignore[attr-defined]
    assert area.make_cache_key(area.uncached, w=3, h=2) == key  # type: ignore[attr-defined]
    assert area.make_cache_key(area.uncached, 4) != key  # type: ignore[attr-defined]


def test_deleting_make_cache_key_forgets_the_call(cache: Cache) -> None:
    calls: Calls = []

    @cache.memoize()
    def f(x: int) -> int:
        calls.append(x)
        return len(calls)

    f(1)
    assert cache.delete(f.make_cache_key(f.uncached, 1)) is True  # type: ignore[attr-defined]
    assert f(1) == 2


def test_make_cache_key_for_a_method(cache: Cache) -> None:
    counter_cls = make_adder_class(cache)
    a = counter_cls("a")
    result = a.add(7)
    key = counter_cls.add.make_cache_key(counter_cls.add.uncached, a, 7)
    assert cache.get(key) == result


# -- apps ----------------------------------------------------------------------------------


def test_memoize_outside_app_context_with_one_app(clock: FakeClock) -> None:
    app = make_app(CACHE_TYPE="SimpleCache")
    cache = Cache(app)
    calls: Calls = []

    @cache.memoize()
    def f(x: int) -> int:
        calls.append(x)
        return x

    f(1)
    f(1)
    assert calls == [1]


def test_memoized_function_decorated_before_init_app() -> None:
    cache = Cache()
    calls: Calls = []

    @cache.memoize()
    def f(x: int) -> int:
        calls.append(x)
        return x

    app = make_app(CACHE_TYPE="SimpleCache")
    cache.init_app(app)
    with app.app_context():
        f(1)
        f(1)
    assert calls == [1]


# -- async ---------------------------------------------------------------------------------


def test_async_memoized_function_stays_awaitable(cache: Cache) -> None:
    calls: Calls = []

    @cache.memoize()
    async def fetch(x: int) -> dict[str, int]:
        calls.append(x)
        await asyncio.sleep(0)
        return {"x": x}

    assert inspect.iscoroutinefunction(fetch)
    assert asyncio.run(fetch(1)) == {"x": 1}
    assert asyncio.run(fetch(1)) == {"x": 1}
    assert asyncio.run(fetch(2)) == {"x": 2}
    assert calls == [1, 2]
    cache.delete_memoized(fetch, 1)
    assert asyncio.run(fetch(1)) == {"x": 1}
    assert calls == [1, 2, 1]


def test_async_memoized_method(cache: Cache) -> None:
    calls: Calls = []

    class Client:
        def __repr__(self) -> str:
            return "Client()"

        @cache.memoize()
        async def get(self, path: str) -> str:
            calls.append(path)
            return path.upper()

    client = Client()

    async def main() -> list[str]:
        return [await client.get("/a"), await client.get("/a"), await client.get("/b")]

    assert asyncio.run(main()) == ["/A", "/A", "/B"]
    assert calls == ["/a", "/b"]


# -- more of Flask-Caching's documented behaviour ------------------------------------------


def test_memoized_generator_is_joined(cache: Cache) -> None:
    calls: Calls = []

    @cache.memoize()
    def words(n: int) -> Iterator[str]:
        calls.append(n)
        yield from ("a", "b", "c")[:n]

    assert words(2) == "ab"
    assert words(2) == "ab"
    assert calls == [2]


def test_results_stay_correct_under_a_tiny_threshold(clock: FakeClock) -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_THRESHOLD=2)
    cache = Cache(app, config={"CACHE_OPTIONS": {"clock": clock}})

    @cache.memoize()
    def square(x: int) -> int:
        return x * x

    class Box:
        def __init__(self, n: int) -> None:
            self.n = n

        def __repr__(self) -> str:
            return f"Box({self.n})"

        @cache.memoize()
        def times(self, k: int) -> int:
            return self.n * k

    with app.app_context():
        for _ in range(3):
            for x in range(6):
                assert square(x) == x * x
                assert Box(x).times(3) == 3 * x
            cache.delete_memoized(square, 2)
            cache.delete_memoized(Box.times)


def test_delete_memoized_only_affects_the_current_app() -> None:
    cache = Cache()
    app1, app2 = make_app(CACHE_TYPE="SimpleCache"), make_app(CACHE_TYPE="SimpleCache")
    cache.init_app(app1)
    cache.init_app(app2)
    calls: Calls = []

    @cache.memoize()
    def f(x: int) -> int:
        calls.append(x)
        return x

    for app in (app1, app2):
        with app.app_context():
            f(1)
    with app1.app_context():
        cache.delete_memoized(f)
        f(1)
    with app2.app_context():
        f(1)
    assert calls == [1, 1, 1]


def test_unstorable_result_is_still_returned(cache: Cache) -> None:
    import threading

    @cache.memoize()
    def make_lock(x: int) -> Any:
        return threading.Lock()

    assert make_lock(1) is not None


def test_json_serializer_with_memoize(clock: FakeClock) -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_SERIALIZER="json")
    cache = Cache(app)
    calls: Calls = []

    @cache.memoize()
    def data(x: int) -> dict[str, Any]:
        calls.append(x)
        return {"x": x, "items": [1, 2], "pair": (1, 2)}

    with app.app_context():
        assert data(1) == {"x": 1, "items": [1, 2], "pair": (1, 2)}
        assert data(1) == {"x": 1, "items": [1, 2], "pair": (1, 2)}
    assert calls == [1]


def test_timeout_can_be_given_positionally(cache: Cache, clock: FakeClock) -> None:
    """``@cache.memoize(50)``, as in Flask-Caching's delete_memoized example."""
    calls: Calls = []

    @cache.memoize(50)
    def f() -> int:
        calls.append(1)
        return len(calls)

    assert f.cache_timeout == 50  # type: ignore[attr-defined]
    f()
    clock.advance(49)
    assert f() == 1
    clock.advance(2)
    assert f() == 2
