"""FileSystemBackend: the Backend contract on disk, bounds, locks, and sharing."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from flask_stash.core.api import (
    MISS,
    Backend,
    SupportsAtomicAdd,
    SupportsLock,
    SupportsScan,
)
from flask_stash.core.backends import filesystem
from flask_stash.core.backends.filesystem import FileSystemBackend
from flask_stash.core.errors import BackendError, ConfigurationError


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def backend(tmp_path: Path, clock: FakeClock) -> FileSystemBackend:
    return FileSystemBackend(tmp_path / "cache", clock=clock)


def entry_path(root: Path, key: str) -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return root / digest[:2] / digest


def entry_files(root: Path) -> list[Path]:
    """Entry files only: no temp files, no locks, nothing in the root."""
    return [
        p
        for p in root.glob("[0-9a-f][0-9a-f]/*")
        if not p.name.startswith(".") and p.suffix != ".lock"
    ]


def temp_files(root: Path) -> list[Path]:
    return list(root.rglob(".tmp-*"))


# -- the basic contract -------------------------------------------------------------------


def test_implements_the_protocols(backend: FileSystemBackend) -> None:
    assert isinstance(backend, Backend)
    assert isinstance(backend, SupportsLock)
    assert isinstance(backend, SupportsScan)
    assert isinstance(backend, SupportsAtomicAdd)
    assert backend.default_timeout == 300


def test_set_get_overwrite(backend: FileSystemBackend) -> None:
    assert backend.get("k") is MISS
    backend.set("k", b"one", None)
    assert backend.get("k") == b"one"
    backend.set("k", b"two", 10)
    assert backend.get("k") == b"two"
    backend.set("empty", b"", None)
    assert backend.get("empty") == b""
    backend.set("\u00e9t\u00e9 \U0001f600", b"\x00\xff", None)
    assert backend.get("\u00e9t\u00e9 \U0001f600") == b"\x00\xff"


def test_files_are_sharded_by_hash(backend: FileSystemBackend, tmp_path: Path) -> None:
    backend.set("k", b"v", None)
    assert entry_files(tmp_path / "cache") == [entry_path(tmp_path / "cache", "k")]


def test_rejects_non_bytes_values_and_non_str_keys(backend: FileSystemBackend) -> None:
    with pytest.raises(TypeError):
        backend.set("k", "text", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        backend.set(b"k", b"v", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        backend.get(1)  # type: ignore[arg-type]


def test_add(backend: FileSystemBackend, clock: FakeClock) -> None:
    assert backend.add("k", b"first", 10) is True
    assert backend.add("k", b"second", 10) is False
    assert backend.get("k") == b"first"
    clock.now += 10
    assert backend.add("k", b"third", None) is True  # the expired value does not block
    assert backend.get("k") == b"third"
    assert temp_files(Path(backend.cache_dir)) == []


def test_delete_and_delete_many(backend: FileSystemBackend) -> None:
    backend.set_many({"a": b"1", "b": b"2", "c": b"3"}, None)
    assert backend.delete("a") is True
    assert backend.delete("a") is False
    assert backend.get("a") is MISS
    assert backend.delete_many(["a", "b", "c", "zz"]) == 2
    assert entry_files(Path(backend.cache_dir)) == []


def test_get_many_and_set_many(backend: FileSystemBackend, clock: FakeClock) -> None:
    backend.set_many({"a": b"1", "b": b"2"}, 5)
    assert backend.get_many(["a", "nope", "b"]) == [b"1", MISS, b"2"]
    clock.now += 5
    assert backend.get_many(["a", "b"]) == [MISS, MISS]


def test_clear_removes_only_our_files(backend: FileSystemBackend) -> None:
    root = Path(backend.cache_dir)
    backend.set_many({f"k{i}": b"v" for i in range(20)}, None)
    assert backend.acquire_lock("job", "token", 30)
    stray_temp = entry_path(root, "k0").parent / ".tmp-1-2-3"
    stray_temp.write_bytes(b"half a value")
    (root / "README.txt").write_text("mine")
    (root / "notes").mkdir()
    (root / "notes" / "todo.txt").write_text("mine too")
    backend.clear()
    assert entry_files(root) == []
    assert temp_files(root) == []
    assert backend.get("k0") is MISS
    assert (root / "README.txt").read_text() == "mine"
    assert (root / "notes" / "todo.txt").read_text() == "mine too"
    assert backend.acquire_lock("job", "other", 30) is False  # locks survive a clear
    backend.set("k0", b"back", None)
    assert backend.get("k0") == b"back"


def test_scan(backend: FileSystemBackend, clock: FakeClock) -> None:
    backend.set_many({"user:1": b"a", "user:2": b"b", "post:1": b"c"}, None)
    backend.set("user:3", b"short-lived", 5)
    assert sorted(backend.scan("user:")) == ["user:1", "user:2", "user:3"]
    assert sorted(backend.scan("")) == ["post:1", "user:1", "user:2", "user:3"]
    clock.now += 5
    assert sorted(backend.scan("user:")) == ["user:1", "user:2"]
    assert list(backend.scan("nothing")) == []


# -- TTL ----------------------------------------------------------------------------------


def test_ttl_expiry_with_fake_clock(backend: FileSystemBackend, clock: FakeClock) -> None:
    backend.set("k", b"v", 10)
    path = entry_path(Path(backend.cache_dir), "k")
    clock.now += 9.999
    assert backend.get("k") == b"v"
    clock.now += 0.001
    assert backend.get("k") is MISS
    assert not path.exists()


def test_none_ttl_never_expires(backend: FileSystemBackend, clock: FakeClock) -> None:
    backend.set("k", b"v", None)
    clock.now += 10**9
    assert backend.get("k") == b"v"


@pytest.mark.parametrize("ttl", [0, -1, -0.5, float("inf"), float("nan")])
def test_non_positive_ttl_raises(backend: FileSystemBackend, ttl: float) -> None:
    with pytest.raises(ValueError):
        backend.set("k", b"v", ttl)
    with pytest.raises(ValueError):
        backend.add("k", b"v", ttl)
    with pytest.raises(ValueError):
        backend.set_many({"k": b"v"}, ttl)
    assert backend.get("k") is MISS


def test_non_numeric_ttl_raises_type_error(backend: FileSystemBackend) -> None:
    with pytest.raises(TypeError):
        backend.set("k", b"v", "10")  # type: ignore[arg-type]


# -- damaged files ------------------------------------------------------------------------


def _random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(1).randbytes(200))


def _cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _wrong_magic(path: Path) -> None:
    path.write_bytes(b"XXXX" + path.read_bytes()[4:])


def _extra_bytes(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"junk")


def _empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(
    "damage", [_random_bytes, _cut_in_half, _wrong_magic, _extra_bytes, _empty]
)
def test_damaged_file_is_a_miss_and_removed(backend: FileSystemBackend, damage: object) -> None:
    backend.set("k", b"value" * 20, None)
    path = entry_path(Path(backend.cache_dir), "k")
    damage(path)  # type: ignore[operator]
    assert backend.get("k") is MISS
    assert not path.exists()
    backend.set("k", b"fresh", None)
    assert backend.get("k") == b"fresh"


def test_file_holding_another_key_is_a_miss_and_kept(backend: FileSystemBackend) -> None:
    root = Path(backend.cache_dir)
    backend.set("other", b"other's value", None)
    target = entry_path(root, "k")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(entry_path(root, "other"), target)
    assert backend.get("k") is MISS
    assert target.exists()
    assert backend.get("other") == b"other's value"


def test_hash_collision_never_returns_another_keys_value(tmp_path: Path) -> None:
    def constant(data: bytes) -> hashlib._Hash:
        return hashlib.sha256(b"same for every key")

    backend = FileSystemBackend(tmp_path, hash_method=constant)
    backend.set("a", b"value of a", None)
    assert backend.get("b") is MISS
    assert backend.add("b", b"value of b", None) is False  # the slot is taken by "a"
    backend.set("b", b"value of b", None)
    assert backend.get("a") is MISS
    assert backend.get("b") == b"value of b"


# -- bounds -------------------------------------------------------------------------------


def test_threshold_bounds_the_entry_count(tmp_path: Path) -> None:
    threshold = 20
    backend = FileSystemBackend(tmp_path, threshold=threshold)
    for i in range(threshold * 3):
        backend.set(f"k{i}", b"v%d" % i, None)
        assert len(entry_files(tmp_path)) <= threshold
    for i in range(threshold * 3 - threshold // 2, threshold * 3):
        assert backend.get(f"k{i}") == b"v%d" % i  # the newest survive


def test_reads_count_as_use(tmp_path: Path) -> None:
    backend = FileSystemBackend(tmp_path, threshold=10)
    for i in range(10):
        backend.set(f"k{i}", b"v", None)
    assert backend.get("k0") == b"v"  # k0 becomes the most recently used
    backend.set("k10", b"v", None)  # 11 > 10: evict down to 9, oldest first
    assert backend.get("k0") == b"v"
    assert backend.get("k1") is MISS
    assert backend.get("k2") is MISS
    assert backend.get("k10") == b"v"


def test_never_loses_a_key_while_under_the_bound(tmp_path: Path) -> None:
    threshold = 10
    backend = FileSystemBackend(tmp_path, threshold=threshold)
    keys = [f"k{i}" for i in range(threshold)]
    rng = random.Random(7)
    for round_ in range(40):
        for key in rng.sample(keys, len(keys)):
            backend.set(key, f"{key}@{round_}".encode(), None)
            if rng.random() < 0.3:
                backend.get(rng.choice(keys))
        assert backend.get_many(keys) == [f"{k}@{round_}".encode() for k in keys]
    assert len(entry_files(tmp_path)) == threshold


def test_estimate_drift_never_evicts_a_live_key(tmp_path: Path) -> None:
    ours = FileSystemBackend(tmp_path, threshold=10)
    theirs = FileSystemBackend(tmp_path, threshold=10)  # stands for another process
    for i in range(10):
        ours.set(f"k{i}", b"v", None)
    assert theirs.delete_many([f"k{i}" for i in range(5)]) == 5
    for i in range(10, 15):
        ours.set(f"k{i}", b"v", None)  # our estimate says 15 > 10; the disk says 10
    assert ours.get_many([f"k{i}" for i in range(5, 15)]) == [b"v"] * 10


def test_periodic_recount_sees_other_processes_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(filesystem, "_SYNC_INTERVAL", 0.0)  # recount on every write
    ours = FileSystemBackend(tmp_path, threshold=10)
    theirs = FileSystemBackend(tmp_path, threshold=0)  # stands for another process
    ours.set("mine", b"v", None)
    theirs.set_many({f"k{i}": b"v" for i in range(15)}, None)
    assert len(entry_files(tmp_path)) == 16  # our estimate still says 1
    ours.set("mine too", b"v", None)
    assert len(entry_files(tmp_path)) <= 10
    assert ours.get_many(["mine", "k14", "mine too"]) == [MISS, b"v", b"v"]  # LRU order


def test_expired_entries_are_evicted_before_live_ones(tmp_path: Path, clock: FakeClock) -> None:
    backend = FileSystemBackend(tmp_path, threshold=10, clock=clock)
    for i in range(5):
        backend.set(f"old{i}", b"v", None)
    for i in range(5):
        backend.set(f"brief{i}", b"v", 1)
    clock.now += 1
    backend.set("new", b"v", None)  # over the bound: the 5 expired go, no live one
    assert backend.get_many([f"old{i}" for i in range(5)]) == [b"v"] * 5
    assert len(entry_files(tmp_path)) == 6


def test_max_bytes_bounds_the_total_size(tmp_path: Path) -> None:
    max_bytes = 5_000
    backend = FileSystemBackend(tmp_path, threshold=0, max_bytes=max_bytes)
    for i in range(60):
        backend.set(f"k{i}", bytes(random.Random(i).randrange(100, 600)), None)
        assert sum(p.stat().st_size for p in entry_files(tmp_path)) <= max_bytes
    assert backend.get("k59") is not MISS
    assert backend.get("k0") is MISS


def test_value_larger_than_max_bytes_is_refused(tmp_path: Path) -> None:
    backend = FileSystemBackend(tmp_path, max_bytes=1_000)
    backend.set("k", b"small", None)
    backend.set("other", b"kept", None)
    backend.set("k", bytes(2_000), None)
    assert backend.get("k") is MISS  # the stale value is gone too
    assert backend.add("k", bytes(2_000), None) is False
    assert backend.get("other") == b"kept"


def test_max_bytes_with_same_keys_never_evicts(tmp_path: Path) -> None:
    backend = FileSystemBackend(tmp_path, threshold=0, max_bytes=10_000)
    keys = [f"k{i}" for i in range(10)]
    for round_ in range(20):
        for key in keys:
            backend.set(key, bytes(500 + round_), None)
        assert all(v is not MISS for v in backend.get_many(keys))


def test_prune_drops_stale_temp_files_only(tmp_path: Path) -> None:
    backend = FileSystemBackend(tmp_path, threshold=5)
    backend.set("k", b"v", None)
    shard = entry_path(tmp_path, "k").parent
    stale, fresh = shard / ".tmp-9-9-1", shard / ".tmp-9-9-2"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    for i in range(6):
        backend.set(f"x{i}", b"v", None)  # crosses the threshold: a real prune runs
    assert not stale.exists()
    assert fresh.exists()


def test_existing_files_are_counted_at_start(tmp_path: Path) -> None:
    first = FileSystemBackend(tmp_path, threshold=0)
    first.set_many({f"k{i}": b"v" for i in range(30)}, None)
    second = FileSystemBackend(tmp_path, threshold=10)
    second.set("new", b"v", None)
    assert len(entry_files(tmp_path)) <= 10
    assert second.get("new") == b"v"


# -- file mode and construction -----------------------------------------------------------


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o666])
def test_files_get_the_configured_mode(tmp_path: Path, mode: int) -> None:
    backend = FileSystemBackend(tmp_path, mode=mode)
    backend.set("k", b"v", None)
    backend.add("a", b"v", None)
    for path in entry_files(tmp_path):
        assert path.stat().st_mode & 0o777 == mode


def test_default_mode_is_owner_only(tmp_path: Path) -> None:
    FileSystemBackend(tmp_path).set("k", b"v", None)
    assert entry_path(tmp_path, "k").stat().st_mode & 0o777 == 0o600


def test_creates_a_missing_cache_dir(tmp_path: Path) -> None:
    backend = FileSystemBackend(str(tmp_path / "a" / "b"))
    backend.set("k", b"v", None)
    assert backend.get("k") == b"v"
    assert os.listdir(tmp_path / "a" / "b") != []


def test_cache_dir_that_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(ConfigurationError, match="is a file"):
        FileSystemBackend(path)


def test_cache_dir_under_a_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(ConfigurationError, match="cannot create"):
        FileSystemBackend(path / "sub")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
def test_cache_dir_not_writable(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(ConfigurationError, match="not writable"):
            FileSystemBackend(tmp_path)
    finally:
        tmp_path.chmod(0o700)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": -1},
        {"threshold": 1.5},
        {"threshold": True},
        {"threshold": "500"},
        {"max_bytes": 0},
        {"max_bytes": -5},
        {"mode": "0600"},
        {"mode": 0o1777},
        {"mode": 0o444},
        {"default_timeout": -1},
        {"default_timeout": "300"},
        {"hash_method": "sha256"},
        {"hash_method": lambda data: "not a hash object"},
        {"clock": 12},
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        FileSystemBackend(tmp_path / "cache", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "cache").exists()  # nothing is created for a bad config


def test_bad_cache_dir_type() -> None:
    with pytest.raises(ConfigurationError):
        FileSystemBackend(42)  # type: ignore[arg-type]


def test_cachelib_arguments(tmp_path: Path) -> None:
    backend = FileSystemBackend(str(tmp_path), 100, 60, None, hashlib.md5)
    backend.set("k", b"v", None)
    assert (backend.threshold, backend.default_timeout, backend.mode) == (100, 60, 0o600)
    digest = hashlib.md5(b"k").hexdigest()
    assert (tmp_path / digest[:2] / digest).exists()


# -- errors -------------------------------------------------------------------------------


def test_disk_full_on_replace(backend: FileSystemBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    backend.set("k", b"old", None)

    def disk_full(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(filesystem.os, "replace", disk_full)
    with pytest.raises(BackendError) as info:
        backend.set("k", b"new", None)
    monkeypatch.undo()
    assert isinstance(info.value.original, OSError)
    assert info.value.original.errno == errno.ENOSPC
    assert temp_files(Path(backend.cache_dir)) == []
    assert backend.get("k") == b"old"


def test_disk_full_on_write(backend: FileSystemBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(filesystem.os, "write", disk_full)
    with pytest.raises(BackendError):
        backend.set("k", b"v" * 10_000, None)
    with pytest.raises(BackendError):
        backend.add("k", b"v", None)
    monkeypatch.undo()
    assert temp_files(Path(backend.cache_dir)) == []
    assert backend.get("k") is MISS


def test_read_error_is_a_backend_error(
    backend: FileSystemBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend.set("k", b"v", None)

    def broken(*args: object, **kwargs: object) -> int:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(filesystem.os, "open", broken)
    with pytest.raises(BackendError):
        backend.get("k")
    with pytest.raises(BackendError):
        list(backend.scan(""))
    monkeypatch.undo()
    assert backend.get("k") == b"v"


# -- locks --------------------------------------------------------------------------------


def test_lock_acquire_and_release(backend: FileSystemBackend) -> None:
    assert backend.acquire_lock("job", "me", 30) is True
    assert backend.acquire_lock("job", "you", 30) is False
    assert backend.acquire_lock("job", "me", 30) is False  # not re-entrant
    assert backend.release_lock("job", "you") is False
    assert backend.release_lock("job", "me") is True
    assert backend.release_lock("job", "me") is False
    assert backend.acquire_lock("job", "you", 30) is True
    assert backend.acquire_lock("other job", "me", 30) is True
    assert temp_files(Path(backend.cache_dir)) == []


def test_lock_lease_expiry(backend: FileSystemBackend, clock: FakeClock) -> None:
    assert backend.acquire_lock("job", "me", 10)
    clock.now += 9.9
    assert backend.acquire_lock("job", "you", 10) is False
    clock.now += 0.1
    assert backend.acquire_lock("job", "you", 10) is True  # the lease ran out
    assert backend.release_lock("job", "me") is False  # no longer ours
    assert backend.acquire_lock("job", "me", 10) is False
    assert backend.release_lock("job", "you") is True


def test_release_after_own_lease_expired(backend: FileSystemBackend, clock: FakeClock) -> None:
    assert backend.acquire_lock("job", "me", 10)
    clock.now += 11
    assert backend.release_lock("job", "me") is False
    assert backend.acquire_lock("job", "you", 10) is True


def test_lock_and_entry_with_same_name_are_separate(backend: FileSystemBackend) -> None:
    backend.set("job", b"value", None)
    assert backend.acquire_lock("job", "me", 10)
    assert backend.get("job") == b"value"
    assert backend.delete("job") is True
    assert backend.acquire_lock("job", "you", 10) is False


def test_bad_lease(backend: FileSystemBackend) -> None:
    with pytest.raises(ValueError):
        backend.acquire_lock("job", "me", 0)
    with pytest.raises(TypeError):
        backend.acquire_lock("job", "me", None)  # type: ignore[arg-type]


def test_expired_locks_are_cleaned_by_prune(tmp_path: Path, clock: FakeClock) -> None:
    backend = FileSystemBackend(tmp_path, threshold=3, clock=clock)
    assert backend.acquire_lock("crashed", "me", 5)
    assert backend.acquire_lock("held", "me", 500)
    clock.now += 10
    for i in range(5):
        backend.set(f"k{i}", b"v", None)
    locks = sorted(p.name for p in tmp_path.rglob("*.lock"))
    held = hashlib.sha256(b"held").hexdigest() + ".lock"
    assert locks == [held]


# -- concurrency --------------------------------------------------------------------------


def make_value(key: str, nonce: bytes) -> bytes:
    """A value that proves which key it was written for."""
    digest = hashlib.sha256(key.encode() + nonce).hexdigest().encode()
    return key.encode() + b"|" + digest + b"|" + nonce


def is_valid(key: str, value: bytes) -> bool:
    parts = value.split(b"|")
    return len(parts) == 3 and value == make_value(key, parts[2]) and parts[0] == key.encode()


@pytest.mark.parametrize("threshold", [500, 8])
def test_threads_never_see_a_wrong_value(tmp_path: Path, threshold: int) -> None:
    backend = FileSystemBackend(tmp_path, threshold=threshold)
    keys = [f"key-{i}" for i in range(20)]
    barrier = threading.Barrier(8, timeout=10)
    errors: list[BaseException] = []
    bad: list[tuple[str, bytes]] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        barrier.wait()
        try:
            for i in range(2_000):
                key, op = rng.choice(keys), rng.random()
                value = make_value(key, b"%d-%d" % (seed, i) * rng.randrange(1, 50))
                if op < 0.4:
                    got = backend.get(key)
                    if got is not MISS and not is_valid(key, got):
                        bad.append((key, got))
                elif op < 0.7:
                    backend.set(key, value, rng.choice([None, 60]))
                elif op < 0.85:
                    backend.add(key, value, None)
                else:
                    backend.delete(key)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert bad == []
    assert temp_files(tmp_path) == []
    assert len(entry_files(tmp_path)) <= min(threshold, len(keys))


def test_add_has_exactly_one_winner(tmp_path: Path) -> None:
    backend = FileSystemBackend(tmp_path)
    barrier = threading.Barrier(8, timeout=10)
    wins: list[list[int]] = [[] for _ in range(30)]
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for round_ in range(30):
                barrier.wait()
                if backend.add(f"k{round_}", b"%d" % seed, None):
                    wins[round_].append(seed)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for round_, winners in enumerate(wins):
        assert len(winners) == 1
        assert backend.get(f"k{round_}") == b"%d" % winners[0]


def test_lock_is_shared_between_instances(tmp_path: Path) -> None:
    one, two = FileSystemBackend(tmp_path), FileSystemBackend(tmp_path)
    assert one.acquire_lock("job", "one", 30)
    assert two.acquire_lock("job", "two", 30) is False
    assert two.release_lock("job", "two") is False
    assert one.release_lock("job", "one")
    assert two.acquire_lock("job", "two", 30)


WORKER = """
import hashlib, json, os, random, sys, time
from flask_stash.core.api import MISS
from flask_stash.core.backends.filesystem import FileSystemBackend

def make_value(key, nonce):
    digest = hashlib.sha256(key.encode() + nonce).hexdigest().encode()
    return key.encode() + b"|" + digest + b"|" + nonce

def is_valid(key, value):
    parts = value.split(b"|")
    return len(parts) == 3 and value == make_value(key, parts[2])

cache_dir, seed, threshold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
backend = FileSystemBackend(cache_dir, threshold=threshold)
keys = [f"key-{i}" for i in range(50)]
rng = random.Random(seed)
open(os.path.join(cache_dir, f"ready-{seed}"), "w").close()
while not os.path.exists(os.path.join(cache_dir, "go")):
    time.sleep(0.001)
errors = bad = 0
for i in range(10_000):
    key, op = rng.choice(keys), rng.random()
    value = make_value(key, b"%d-%d" % (seed, i) * rng.randrange(1, 30))
    try:
        if op < 0.4:
            got = backend.get(key)
            bad += got is not MISS and not is_valid(key, got)
        elif op < 0.7:
            backend.set(key, value, None)
        elif op < 0.85:
            backend.add(key, value, 60)
        else:
            backend.delete(key)
    except Exception as exc:
        errors += 1
        print(repr(exc), file=sys.stderr)
print(json.dumps({"errors": errors, "bad": bad}))
"""


@pytest.mark.parametrize("threshold", [500, 40])
def test_processes_never_see_a_wrong_value(tmp_path: Path, threshold: int) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path), str(seed), str(threshold)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for seed in range(2)
    ]
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"ready-{seed}").exists() for seed in range(2)):
        assert time.monotonic() < deadline, "workers did not start"
        assert all(p.poll() is None for p in procs), procs[0].communicate()
        time.sleep(0.01)
    (tmp_path / "go").touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        results.append(json.loads(out))
    assert results == [{"errors": 0, "bad": 0}] * 2
    assert temp_files(tmp_path) == []
