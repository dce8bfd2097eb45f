from __future__ import annotations

import random
import threading

import pytest

from flask_stash.core.api import MISS
from flask_stash.core.backends.memory import ENTRY_OVERHEAD, MemoryBackend
from flask_stash.core.errors import ConfigurationError
from flask_stash.testing import FakeClock


def test_evicts_least_recently_used_beyond_threshold(clock: FakeClock) -> None:
    backend = MemoryBackend(threshold=3, clock=clock)
    for key in "abc":
        backend.set(key, key.encode(), None)
    assert backend.get("a") == b"a"  # "b" is now the least recently used
    backend.set("d", b"d", None)
    assert len(backend) == 3
    assert backend.get("b") is MISS
    assert backend.get_many(["a", "c", "d"]) == [b"a", b"c", b"d"]


def test_bounded_by_bytes(clock: FakeClock) -> None:
    per_entry = 1 + 100 + ENTRY_OVERHEAD
    backend = MemoryBackend(threshold=0, max_bytes=per_entry * 4, clock=clock)
    for key in "abcdef":
        backend.set(key, b"x" * 100, None)
    assert len(backend) == 4
    assert backend.size_in_bytes <= backend.max_bytes  # type: ignore[operator]
    assert backend.get_many(list("ab")) == [MISS, MISS]


def test_value_larger_than_budget_is_refused_without_flushing(clock: FakeClock) -> None:
    backend = MemoryBackend(threshold=0, max_bytes=1000, clock=clock)
    backend.set("small", b"s", None)
    backend.set("huge", b"x" * 5000, None)
    assert backend.get("huge") is MISS
    assert backend.get("small") == b"s"


def test_expired_entries_are_never_served_and_free_space(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    backend.set("k", b"v", 10)
    clock.advance(10)
    assert backend.get("k") is MISS
    assert len(backend) == 0
    assert backend.size_in_bytes == 0


def test_overwrite_keeps_byte_accounting_exact(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    backend.set("k", b"x" * 10, None)
    backend.set("k", b"x" * 20, None)
    assert backend.size_in_bytes == 1 + 20 + ENTRY_OVERHEAD
    backend.delete("k")
    assert backend.size_in_bytes == 0


def test_increment_keeps_existing_expiry(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    assert backend.incr("n", 2, 10) == 2
    clock.advance(5)
    assert backend.incr("n", 1, 100) == 3
    clock.advance(6)
    assert backend.get("n") is MISS


def test_increment_refuses_non_integers(clock: FakeClock) -> None:
    backend = MemoryBackend(clock=clock)
    backend.set("k", b"text", None)
    with pytest.raises(TypeError, match="does not hold an integer"):
        backend.incr("k", 1, None)
    assert backend.get("k") == b"text"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": -1}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"max_bytes": 0}, "max_bytes"),
        ({"max_bytes": -5}, "max_bytes"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        MemoryBackend(**kwargs)  # type: ignore[arg-type]


def test_values_must_be_bytes() -> None:
    with pytest.raises(TypeError, match="bytes"):
        MemoryBackend().set("k", "text", None)  # type: ignore[arg-type]


def test_eight_threads_hammering_see_only_valid_values() -> None:
    backend = MemoryBackend(threshold=50)
    keys = [f"key{i}" for i in range(100)]
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []
    wrong: list[tuple[str, bytes]] = []

    def value_for(key: str, n: int) -> bytes:
        return f"{key}|{n}".encode()

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        barrier.wait()
        try:
            for n in range(5000):
                key = rng.choice(keys)
                op = rng.random()
                if op < 0.4:
                    backend.set(key, value_for(key, n), rng.choice([None, 5.0]))
                elif op < 0.5:
                    backend.add(key, value_for(key, n), None)
                elif op < 0.6:
                    backend.delete(key)
                elif op < 0.7:
                    backend.incr(f"counter{seed}", 1, None)
                else:
                    for k, got in zip(
                        [key, keys[0]], backend.get_many([key, keys[0]]), strict=True
                    ):
                        if got is not MISS and not got.startswith(f"{k}|".encode()):
                            wrong.append((k, got))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert wrong == []
    assert len(backend) <= 50
