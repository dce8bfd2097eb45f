"""BaseBackend: driver errors become BackendError in one place, and the generic multi-key
loops and context manager every backend inherits."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from flask_stash.core.api import MISS, TTL, Miss
from flask_stash.core.backends.base import BACKEND_CALLS, BaseBackend
from flask_stash.core.errors import BackendError


class DriverError(Exception):
    """What a driver raises (a socket error, a protocol error...)."""


class Dicts(BaseBackend):
    """A backend written against the base class: only the single-key calls."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[bytes, TTL]] = {}
        self.closed = 0

    def get(self, key: str) -> bytes | Miss:
        item = self.data.get(key)
        return MISS if item is None else item[0]

    def set(self, key: str, value: bytes, ttl: TTL) -> None:
        self.data[key] = (value, ttl)

    def delete(self, key: str) -> bool:
        return self.data.pop(key, None) is not None

    def close(self) -> None:
        self.closed += 1


def test_the_generic_multi_key_calls_loop_over_the_single_ones() -> None:
    backend = Dicts()
    backend.set_many({"a": b"1", "b": b"2", "c": b"3"}, 30)
    assert backend.data == {"a": (b"1", 30), "b": (b"2", 30), "c": (b"3", 30)}
    assert backend.get_many(["c", "x", "a"]) == [b"3", MISS, b"1"]
    assert backend.get_many([]) == []
    assert backend.delete_many(["a", "x", "b", "a"]) == 2  # absent keys do not count
    assert backend.delete_many([]) == 0
    assert list(backend.data) == ["c"]


@pytest.mark.parametrize(
    "call",
    [
        lambda backend: backend.get("k"),
        lambda backend: backend.set("k", b"v", None),
        lambda backend: backend.delete("k"),
    ],
)
def test_a_backend_must_implement_the_single_key_calls(call: Any) -> None:
    with pytest.raises(NotImplementedError):
        call(BaseBackend())


def test_close_has_nothing_to_release_by_default() -> None:
    assert BaseBackend().close() is None


def test_a_with_block_closes_the_backend_and_keeps_its_error() -> None:
    with Dicts() as backend:
        assert isinstance(backend, Dicts)
        assert backend.closed == 0
    assert backend.closed == 1
    with pytest.raises(KeyError), Dicts() as failing:
        raise KeyError("from the block")
    assert failing.closed == 1


# -- driver errors ---------------------------------------------------------------------------


def raising(name: str, error: BaseException) -> Callable[..., Any]:
    def call(self: Any, *args: Any) -> Any:
        raise error

    call.__name__ = call.__qualname__ = name
    return call


def failing_backend(error: BaseException) -> type[BaseBackend]:
    """A backend whose every storage call raises ``error``, defined like a real one."""
    methods = {name: raising(name, error) for name in BACKEND_CALLS}
    return type("Flaky", (BaseBackend,), {"native_errors": (DriverError, OSError), **methods})


ARGS: dict[str, tuple[Any, ...]] = {
    "get": ("k",),
    "get_many": (["k"],),
    "set": ("k", b"v", None),
    "set_many": ({"k": b"v"}, None),
    "add": ("k", b"v", None),
    "delete": ("k",),
    "delete_many": (["k"],),
    "clear": (),
    "close": (),
    "incr": ("k", 1, None),
    "acquire_lock": ("k", "t", 1.0),
    "release_lock": ("k", "t"),
    "publish": ("c", b"m"),
}


def test_every_backend_call_is_covered() -> None:
    assert set(ARGS) == set(BACKEND_CALLS)


@pytest.mark.parametrize("name", list(ARGS))
@pytest.mark.parametrize("error", [DriverError("connection reset"), ConnectionRefusedError(111)])
def test_a_driver_error_becomes_a_backend_error(name: str, error: BaseException) -> None:
    backend = failing_backend(error)()
    with pytest.raises(BackendError) as raised:
        getattr(backend, name)(*ARGS[name])
    assert str(raised.value) == f"Flaky.{name} failed: {error}"
    assert raised.value.original is error
    assert raised.value.__cause__ is error


@pytest.mark.parametrize("name", list(ARGS))
def test_a_backend_error_passes_through_unchanged(name: str) -> None:
    error = BackendError("already said")
    with pytest.raises(BackendError) as raised:
        getattr(failing_backend(error)(), name)(*ARGS[name])
    assert raised.value is error


@pytest.mark.parametrize("name", list(ARGS))
def test_other_errors_are_bugs_and_stay_what_they_are(name: str) -> None:
    # A TypeError is a caller's bug: fail-open must not hide it as an outage.
    error = TypeError("values are bytes")
    with pytest.raises(TypeError) as raised:
        getattr(failing_backend(error)(), name)(*ARGS[name])
    assert raised.value is error


def test_without_native_errors_nothing_is_wrapped() -> None:
    class Local(Dicts):
        def get(self, key: str) -> bytes | Miss:
            raise OSError("disk")

    with pytest.raises(OSError, match="disk"):
        Local().get("k")


def test_wrapped_calls_keep_their_signature() -> None:
    # Introspection (help(), IDEs, inspect.signature) sees the real arguments.
    class Sized(Dicts):
        native_errors = (OSError,)

        def add(self, key: str, value: bytes, ttl: TTL) -> bool:
            """Store unless present."""
            return True

    assert (
        str(inspect.signature(Sized.add))
        == "(self, key: 'str', value: 'bytes', ttl: 'TTL') -> 'bool'"
    )
    assert (Sized.add.__name__, Sized.add.__doc__) == ("add", "Store unless present.")


def test_a_subclass_is_wrapped_for_its_own_methods_only() -> None:
    parent = failing_backend(DriverError("down"))

    class Child(parent):  # type: ignore[valid-type,misc]
        def add(self, key: str, value: bytes, ttl: TTL) -> bool:
            raise OSError("child")

    child = Child()
    with pytest.raises(BackendError, match=r"^Flaky\.get failed: down$"):
        child.get("k")
    with pytest.raises(BackendError, match=r"^Child\.add failed: child$"):
        child.add("k", b"v", None)


def test_an_alias_of_a_wrapped_call_is_wrapped_once_for_its_own_class() -> None:
    class Driver(BaseBackend):
        native_errors = (DriverError,)

        def get(self, key: str) -> bytes | Miss:
            raise (DriverError if key == "driver" else OSError)(key)

    class Wider(Driver):
        native_errors = (DriverError, OSError)
        get = Driver.get  # the same call, under errors of its own

    # Wrapped as Wider's: its errors, its name, one layer.
    for key in ("driver", "os"):
        with pytest.raises(BackendError, match=rf"^Wider\.get failed: {key}$") as raised:
            Wider().get(key)
        assert not isinstance(raised.value.original, BackendError)
    with pytest.raises(OSError, match="os"):
        Driver().get("os")
