"""CachelibBackend beyond the contract: TTLs handed to cachelib, failures, error messages.

Real cachelib caches where cachelib's behaviour matters (their modules' ``time`` follows the
fake clock, as in ``test_contract_cachelib.py``); small stand-ins with cachelib's method
names where a cache has to fail, refuse or report in a way cachelib's own classes never do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flask_stash.core.api import MISS
from flask_stash.core.backends.cachelib import CachelibBackend
from flask_stash.core.errors import BackendError
from flask_stash.testing import FakeClock

cachelib = pytest.importorskip("cachelib")


@pytest.fixture
def simple(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> CachelibBackend:
    monkeypatch.setattr("cachelib.simple.time", clock)
    return CachelibBackend(cachelib.SimpleCache(threshold=10_000, default_timeout=300))


@pytest.fixture
def on_disk(clock: FakeClock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CachelibBackend:
    monkeypatch.setattr("cachelib.file.time", clock)
    return CachelibBackend(cachelib.FileSystemCache(str(tmp_path), threshold=0))


class Scripted:
    """A cachelib-style cache whose methods answer what the test says (or raise it)."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        for name in ("get", "get_many", "set", "set_many", "add", "delete", "clear"):
            setattr(self, name, self._method(name))

    def _method(self, name: str) -> Any:
        def method(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            answer = self.answers.get(name)
            if isinstance(answer, BaseException):
                raise answer
            return answer

        return method


class Closable(Scripted):
    def close(self) -> None:
        self.calls.append(("close", (), {}))
        answer = self.answers.get("close")
        if isinstance(answer, BaseException):
            raise answer


# -- construction -------------------------------------------------------------------------


def test_an_object_without_cachelib_methods_is_refused_by_name() -> None:
    class Half:
        def get(self, key: str) -> None: ...
        def set(self, key: str, value: bytes, timeout: int) -> bool: ...
        def clear(self) -> bool: ...

    with pytest.raises(TypeError, match=r"is not a cachelib-style cache: no add, delete$"):
        CachelibBackend(Half())


def test_max_key_length_comes_from_the_cache() -> None:
    cache = Scripted()
    cache.max_key_length = 250  # type: ignore[attr-defined]
    assert CachelibBackend(cache).max_key_length == 250
    assert CachelibBackend(Scripted()).max_key_length is None


# -- TTLs reach cachelib ------------------------------------------------------------------


def test_set_many_ttl_is_handed_to_cachelib(simple: CachelibBackend, clock: FakeClock) -> None:
    simple.set_many({"a": b"1", "b": b"2"}, 10)
    clock.advance(9.5)
    assert simple.get_many(["a", "b"]) == [b"1", b"2"]
    clock.advance(1)
    assert simple.get_many(["a", "b"]) == [MISS, MISS]


def test_set_many_without_ttl_never_expires(simple: CachelibBackend, clock: FakeClock) -> None:
    simple.set_many({"a": b"1"}, None)  # cachelib: 0 = never, None = its default of 300 s
    clock.advance(10_000)
    assert simple.get("a") == b"1"


def test_fractional_ttls_round_up_to_whole_seconds() -> None:
    cache = Scripted(set=True, set_many=["a"], add=True)
    backend = CachelibBackend(cache)
    backend.set("k", b"v", 0.2)
    backend.set_many({"a": b"1"}, 1.5)
    backend.add("n", b"v", 2.01)
    assert [call[2] for call in cache.calls] == [{"timeout": 1}, {"timeout": 2}, {"timeout": 3}]


def test_add_over_an_expired_file_keeps_the_new_ttl(
    on_disk: CachelibBackend, clock: FakeClock
) -> None:
    on_disk.set("k", b"old", 1)
    clock.advance(2)
    assert on_disk.add("k", b"new", 10) is True  # cachelib's own add refuses: the file exists
    clock.advance(9.5)
    assert on_disk.get("k") == b"new"
    clock.advance(1)
    assert on_disk.get("k") is MISS


def test_add_fallback_reports_a_refused_set() -> None:
    cache = Scripted(add=False, get=None, set=False)
    assert CachelibBackend(cache).add("k", b"v", 5) is False
    assert [name for name, _, _ in cache.calls] == ["add", "get", "set"]
    assert cache.calls[-1] == ("set", ("k", b"v"), {"timeout": 5})


# -- results cachelib reports -------------------------------------------------------------


def test_set_many_returning_nothing_is_success() -> None:
    CachelibBackend(Scripted(set_many=None)).set_many({"a": b"1", "b": b"2"}, None)


def test_set_many_storing_only_some_keys_fails() -> None:
    backend = CachelibBackend(Scripted(set_many=["a"]))
    with pytest.raises(BackendError, match=r"^Scripted\.set_many stored 1 keys$"):
        backend.set_many({"a": b"1", "b": b"2"}, None)


def test_a_refused_set_fails_naming_the_key() -> None:
    with pytest.raises(BackendError, match=r"^Scripted\.set refused 'k'$"):
        CachelibBackend(Scripted(set=False)).set("k", b"v", None)


def test_a_refused_clear_fails() -> None:
    with pytest.raises(BackendError, match=r"^Scripted\.clear failed$"):
        CachelibBackend(Scripted(clear=False)).clear()


def test_values_that_are_not_bytes_are_misses() -> None:
    backend = CachelibBackend(Scripted(get="text", get_many=[b"a", None, 3]))
    assert backend.get("k") is MISS
    assert backend.get_many(["a", "b", "c"]) == [b"a", MISS, MISS]


# -- failures -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "call"),
    [
        ("get", lambda b: b.get("k")),
        ("get_many", lambda b: b.get_many(["k"])),
        ("set", lambda b: b.set("k", b"v", None)),
        ("set_many", lambda b: b.set_many({"k": b"v"}, None)),
        ("add", lambda b: b.add("k", b"v", None)),
        ("delete", lambda b: b.delete("k")),
        ("clear", lambda b: b.clear()),
        ("close", lambda b: b.close()),
    ],
)
def test_every_failure_is_a_backend_error_naming_the_operation(operation: str, call: Any) -> None:
    boom = RuntimeError("boom")
    cache = Closable(**{operation: boom})
    with pytest.raises(BackendError, match=rf"^Closable\.{operation} failed: boom$") as info:
        call(CachelibBackend(cache))
    assert info.value.original is boom
    assert info.value.__cause__ is boom


def test_add_fallback_failures_name_add() -> None:
    boom = RuntimeError("disk gone")
    with pytest.raises(BackendError, match=r"^Scripted\.add failed: disk gone$"):
        CachelibBackend(Scripted(add=False, get=None, set=boom)).add("k", b"v", None)


def test_delete_failure_after_the_read_names_delete() -> None:
    boom = RuntimeError("boom")
    with pytest.raises(BackendError, match=r"^Scripted\.delete failed: boom$"):
        CachelibBackend(Scripted(get=b"v", delete=boom)).delete("k")


# -- close --------------------------------------------------------------------------------


def test_close_closes_the_cache() -> None:
    cache = Closable()
    CachelibBackend(cache).close()
    assert [name for name, _, _ in cache.calls] == ["close"]


def test_close_without_a_close_method_does_nothing() -> None:
    cache = Scripted()
    CachelibBackend(cache).close()
    assert cache.calls == []
