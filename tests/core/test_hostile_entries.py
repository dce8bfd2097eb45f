"""Hostile bytes written straight into real backends read back as counted misses.

Every blob of ``tests/hostile.py`` is put under a key by the backend's own client (a raw
``SET`` on Redis), then read through the store's direct API and its decorator path, with
each serializer, signed and unsigned.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from flask_stash.core.api import MISS
from flask_stash.core.backends.filesystem import FileSystemBackend
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.backends.redis import RedisBackend
from flask_stash.core.memoize import memoize
from flask_stash.core.serializers import JsonSerializer, PickleSerializer, Serializer
from flask_stash.core.signing import parse_integer
from flask_stash.core.stats import UNDECODABLE
from flask_stash.core.store import Store

from .. import servers
from ..hostile import BLOBS

Writer = Callable[[str, bytes], None]

SERIALIZERS: dict[str, Callable[[], Serializer]] = {
    "pickle": PickleSerializer,
    "signed pickle": lambda: PickleSerializer(signing_key="dev"),
    "json": JsonSerializer,
    "signed json": lambda: JsonSerializer(signing_key="dev"),
}


@pytest.fixture(params=["memory", "filesystem", pytest.param("redis", marks=pytest.mark.server)])
def backend_and_writer(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[object, Writer]]:
    if request.param == "memory":
        memory = MemoryBackend()
        yield memory, lambda key, blob: memory.set(key, blob, None)
    elif request.param == "filesystem":
        files = FileSystemBackend(tmp_path / "cache")
        yield files, lambda key, blob: files.set(key, blob, None)
    else:
        server: servers.Server = request.getfixturevalue("redis_single")
        namespace = f"hostile-{uuid.uuid4().hex[:8]}:"
        raw = redis.Redis(host=servers.HOST, port=server.port, db=2)
        with RedisBackend(host=servers.HOST, port=server.port, db=2, namespace=namespace) as made:
            yield made, lambda key, blob: raw.set(key, blob)
            made.clear()
        raw.close()


@pytest.mark.parametrize("serializer", SERIALIZERS)
@pytest.mark.parametrize("name", BLOBS)
def test_hostile_bytes_are_counted_misses(
    backend_and_writer: tuple[object, Writer], serializer: str, name: str
) -> None:
    backend, write = backend_and_writer
    prefix = getattr(backend, "namespace", "") or "hostile-"  # cleared by the fixture
    store = Store(backend, serializer=SERIALIZERS[serializer](), key_prefix=prefix)  # type: ignore[arg-type]
    blob = BLOBS[name]
    write(store.backend_key("k"), blob)
    # The decorators' read path never takes anything but an entry of ours.
    assert store.read("k")[0] is MISS
    counted = 1
    plain_counter = store.counters.scale == 1 and parse_integer(blob) is not None
    if plain_counter:  # without a key, a bare integer is a counter, as in Flask-Caching
        assert store.get("k") == int(blob)
    else:
        assert store.get("k") is MISS
        assert store.get_many(["k"]) == [MISS]
        counted += 2
    assert store.stats.get(UNDECODABLE) == counted


@pytest.mark.parametrize("serializer", ["json", "signed pickle"])
@pytest.mark.parametrize(
    "name", ["bare integer", "json bad decimal", "json deep nesting", "json tags of wrong type"]
)
def test_memoized_function_recomputes_over_hostile_entries(
    backend_and_writer: tuple[object, Writer], serializer: str, name: str
) -> None:
    backend, write = backend_and_writer
    prefix = getattr(backend, "namespace", "") or "memo-"  # Redis scans its namespace only
    store = Store(backend, serializer=SERIALIZERS[serializer](), key_prefix=prefix)  # type: ignore[arg-type]
    calls: list[int] = []

    @memoize(store)
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    before = set(backend.scan(store.key_prefix))  # type: ignore[attr-defined]
    assert double(21) == 42
    entries = set(backend.scan(store.key_prefix)) - before  # type: ignore[attr-defined]
    entry_keys = [k for k in entries if (backend.get(k) or b"")[:2] == b"fs"]  # type: ignore[attr-defined]
    assert entry_keys, "the memoized entry was not found"
    for key in entry_keys:
        write(key, BLOBS[name])
    assert double(21) == 42
    assert calls == [21, 21]
    assert double(21) == 42  # and the fresh value is cached again
    assert calls == [21, 21]


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_mutated_entries_never_raise(serializer: str) -> None:
    """Bit flips, truncations and splices of real entries (seeded: the same every run)."""
    rng = random.Random(12)
    store = Store(MemoryBackend(), serializer=SERIALIZERS[serializer]())
    value = {"a": (1, 2.5, "x"), "b": [b"\x00", {3, 4}], "c": None}
    blob = store.serializer.dumps((value, 1.0, 2.0, None, b"v", (("t", "s"),), 0.5))
    mutations = 0
    for _ in range(3000):
        data = bytearray(blob)
        for _ in range(rng.randint(1, 4)):
            choice = rng.random()
            if choice < 0.5 and data:
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            elif choice < 0.75:
                del data[rng.randrange(len(data) + 1) :]
            else:
                at = rng.randrange(len(data) + 1)
                data[at:at] = rng.randbytes(rng.randint(1, 8))
        entry = store.decode(bytes(data))  # must not raise
        mutations += entry is MISS
    # Most mutations break the entry; those that do not were checked field by field.
    assert mutations > 2000
    assert store.stats.get(UNDECODABLE) == mutations
