"""FileSystemBackend, file by file: what is on disk after each call, exact expiry, exact bounds.

The backend takes a ``clock`` for TTLs, so expiry is tested at its exact boundary. Races
with other processes are staged deterministically: a wrapper around one file operation lets
"another process" (a second backend on the same folder) act at that exact point.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from flask_stash.core.api import MISS
from flask_stash.core.backends import filesystem
from flask_stash.core.backends.filesystem import FileSystemBackend
from flask_stash.core.backends.fsformat import encode_record
from flask_stash.core.errors import BackendError, ConfigurationError
from flask_stash.testing import FakeClock

T0 = 1_700_000_000.0


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def backend(root: Path, clock: FakeClock) -> FileSystemBackend:
    return FileSystemBackend(root, threshold=0, clock=clock)


def entry(root: Path, key: str) -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return root / digest[:2] / digest


def lock(root: Path, name: str) -> Path:
    return entry(root, name).with_name(entry(root, name).name + ".lock")


def entries(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("[0-9a-f][0-9a-f]/*") if len(p.name) == 64 and p.is_file())


def temps(root: Path) -> list[Path]:
    return list(root.rglob(".tmp-*"))


def plant(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def bounded(root: Path, clock: FakeClock, **kwargs: Any) -> FileSystemBackend:
    return FileSystemBackend(root, clock=clock, **{"threshold": 0, **kwargs})


# -- what is on disk ----------------------------------------------------------------------


def test_set_writes_one_record_with_its_expiry(backend: FileSystemBackend, root: Path) -> None:
    backend.set("k", b"value", 10)
    backend.set("forever", b"v", None)
    assert entry(root, "k").read_bytes() == encode_record("k", b"value", T0 + 10)
    assert entry(root, "forever").read_bytes() == encode_record("forever", b"v", 0)
    assert entries(root) == sorted([entry(root, "k"), entry(root, "forever")])
    assert temps(root) == []


def test_set_many_gives_every_item_the_same_expiry(
    backend: FileSystemBackend, root: Path, clock: FakeClock
) -> None:
    backend.set_many({"a": b"1", "b": b"2"}, 2.5)
    assert entry(root, "a").read_bytes() == encode_record("a", b"1", T0 + 2.5)
    assert entry(root, "b").read_bytes() == encode_record("b", b"2", T0 + 2.5)


def test_add_writes_the_same_record(backend: FileSystemBackend, root: Path) -> None:
    assert backend.add("k", b"value", 7) is True
    assert entry(root, "k").read_bytes() == encode_record("k", b"value", T0 + 7)
    assert temps(root) == []


def test_lock_file_holds_name_token_and_lease_end(backend: FileSystemBackend, root: Path) -> None:
    assert backend.acquire_lock("job", "token-1", 30)
    assert lock(root, "job").read_bytes() == encode_record("job", b"token-1", T0 + 30)
    assert entries(root) == []
    assert temps(root) == []


def test_overwrite_replaces_the_file_atomically(backend: FileSystemBackend, root: Path) -> None:
    backend.set("k", b"old", None)
    before = entry(root, "k").stat()
    backend.set("k", b"new", None)
    after = entry(root, "k").stat()
    assert before.st_ino != after.st_ino  # a new file renamed over the old one
    assert entry(root, "k").read_bytes() == encode_record("k", b"new", 0)


@pytest.mark.parametrize(
    ("mode", "folder_mode"),
    [(0o600, 0o700), (0o601, 0o700), (0o640, 0o750), (0o666, 0o777), (0o755, 0o755)],
)
def test_modes_of_files_and_shard_folders(tmp_path: Path, mode: int, folder_mode: int) -> None:
    old_umask = os.umask(0o077)  # the strictest umask: the backend must still apply the mode
    try:
        backend = FileSystemBackend(tmp_path / "c", mode=mode)
        backend.set("k", b"v", None)
        backend.set("k", b"again", None)  # its shard folder exists now
        backend.add("a", b"v", None)
        os.umask(0)
        other = FileSystemBackend(tmp_path / "d", mode=mode)
        other.set("k", b"v", None)
    finally:
        os.umask(old_umask)
    for path in (entry(tmp_path / "c", "k"), entry(tmp_path / "c", "a")):
        assert stat.S_IMODE(path.stat().st_mode) == mode
    shard = entry(tmp_path / "d", "k").parent
    assert stat.S_IMODE(shard.stat().st_mode) == folder_mode


def test_construction_leaves_no_probe_file(root: Path) -> None:
    FileSystemBackend(root)
    assert list(root.iterdir()) == []


def test_unwritable_cache_dir_is_a_configuration_error(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def refuse(path: str, *args: Any, **kwargs: Any) -> int:
        if os.path.dirname(path) == str(root):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(filesystem.os, "open", refuse)
    with pytest.raises(ConfigurationError, match=r"cache_dir .* is not writable: .*denied"):
        FileSystemBackend(root)


def test_works_from_a_current_folder_that_is_gone(
    tmp_path: Path, root: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every file the backend makes, including probes and grabbed locks, is in cache_dir.
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    backend = bounded(root, clock, threshold=5)
    assert backend.acquire_lock("job", "me", 5)
    clock.advance(5)
    assert backend.acquire_lock("job", "you", 5) is True
    assert backend.release_lock("job", "you") is True


def test_lease_must_not_be_none(backend: FileSystemBackend) -> None:
    with pytest.raises(TypeError) as info:
        backend.acquire_lock("job", "me", None)  # type: ignore[arg-type]
    assert str(info.value) == "lease must be a positive number of seconds, not None"


# -- expiry at its exact boundary ---------------------------------------------------------


def test_get_expires_at_exactly_the_ttl(
    backend: FileSystemBackend, root: Path, clock: FakeClock
) -> None:
    backend.set("k", b"v", 10)
    clock.advance(9.999)
    assert backend.get("k") == b"v"
    assert backend.get_many(["k"]) == [b"v"]
    clock.advance(0.001)
    assert backend.get_many(["k"]) == [MISS]
    assert not entry(root, "k").exists()  # an expired file is removed when read


def test_add_over_an_entry_expiring_at_exactly_now(
    backend: FileSystemBackend, clock: FakeClock
) -> None:
    backend.set("k", b"old", 10)
    clock.advance(9.999)
    assert backend.add("k", b"new", None) is False
    clock.advance(0.001)
    assert backend.add("k", b"new", 5) is True
    assert backend.get("k") == b"new"
    clock.advance(5)
    assert backend.get("k") is MISS


def test_scan_drops_keys_at_exactly_their_expiry(
    backend: FileSystemBackend, clock: FakeClock
) -> None:
    backend.set("a:1", b"v", 10)
    backend.set("a:2", b"v", None)
    clock.advance(9.999)
    assert sorted(backend.scan("a:")) == ["a:1", "a:2"]
    clock.advance(0.001)
    assert list(backend.scan("a:")) == ["a:2"]


def test_lock_lease_ends_at_exactly_its_length(
    backend: FileSystemBackend, clock: FakeClock
) -> None:
    assert backend.acquire_lock("job", "me", 10)
    clock.advance(9.999)
    assert backend.acquire_lock("job", "you", 10) is False
    assert backend.release_lock("job", "me") is True
    assert backend.acquire_lock("job", "me", 10)
    clock.advance(10)
    assert backend.release_lock("job", "me") is False  # lease over: no longer ours
    assert backend.acquire_lock("job", "you", 10) is True


# -- hostile and damaged files ------------------------------------------------------------

GOOD = encode_record("k", b"value", 0)
HOSTILE = {
    "empty": b"",
    "header only": GOOD[:28],
    "cut in the key": GOOD[:29],
    "cut in the value": GOOD[:-1],
    "one byte more": GOOD + b"\0",
    "wrong magic": b"XXXX" + GOOD[4:],
    "next version": GOOD[:4] + b"\x02" + GOOD[5:],
    "negative expiry": encode_record("k", b"value", -5.0),
    "infinite expiry": encode_record("k", b"value", float("inf")),
    "key length past the end": GOOD[:16] + b"\xff\xff\xff\xff" + GOOD[20:],
    "text": b"not a cache entry at all\n" * 10,
}


@pytest.mark.parametrize("data", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_malformed_entry_is_a_miss_and_removed(
    backend: FileSystemBackend, root: Path, data: bytes
) -> None:
    path = plant(entry(root, "k"), data)
    assert backend.get("k") is MISS
    assert not path.exists()
    plant(path, data)
    assert backend.get_many(["k"]) == [MISS]
    plant(path, data)
    assert list(backend.scan("")) == []
    assert backend.add("k", b"mine", None) is True
    assert backend.get("k") == b"mine"


@pytest.mark.parametrize("data", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_malformed_lock_is_free(backend: FileSystemBackend, root: Path, data: bytes) -> None:
    plant(lock(root, "job"), data)
    assert backend.release_lock("job", "value") is False
    assert backend.acquire_lock("job", "me", 10) is True
    assert backend.release_lock("job", "me") is True


def test_an_entry_of_another_key_is_a_miss_and_left_alone(
    backend: FileSystemBackend, root: Path
) -> None:
    path = plant(entry(root, "k"), encode_record("other", b"other's value", 0))
    assert backend.get("k") is MISS
    assert backend.add("k", b"mine", None) is False  # the slot is taken, and not by us
    assert path.read_bytes() == encode_record("other", b"other's value", 0)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_in_place_of_an_entry_is_a_miss(backend: FileSystemBackend, root: Path) -> None:
    path = entry(root, "k")
    path.parent.mkdir(parents=True)
    os.mkfifo(path)  # opening it for reading would wait for a writer forever
    assert backend.get("k") is MISS
    assert not path.exists()
    os.mkfifo(path)
    assert list(backend.scan("")) == []
    assert backend.add("k", b"mine", None) is True
    assert backend.get("k") == b"mine"


def test_scan_skips_locks_temps_and_foreign_files(backend: FileSystemBackend, root: Path) -> None:
    backend.set("user:1", b"v", None)
    assert backend.acquire_lock("user:2", "token", 10)
    shard = entry(root, "user:1").parent
    plant(shard / ".tmp-1-2-3", encode_record("user:3", b"v", 0))
    plant(shard / "notes.txt", encode_record("user:4", b"v", 0))
    plant(root / "user5", encode_record("user:5", b"v", 0))
    assert list(backend.scan("user:")) == ["user:1"]


def test_scan_returns_keys_as_stored(backend: FileSystemBackend) -> None:
    keys = ["clé:\U0001f600", "clé:\udc80", "clé:" + "x" * 600]
    backend.set_many(dict.fromkeys(keys, b"v"), None)
    assert sorted(backend.scan("clé:")) == sorted(keys)
    assert list(backend.scan("clé:\U0001f600")) == ["clé:\U0001f600"]


def test_scan_failure_is_a_backend_error(
    backend: FileSystemBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend.set("k", b"v", None)

    def broken(path: str) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(filesystem, "peek", broken)
    with pytest.raises(BackendError, match=r"^FileSystemBackend\.scan failed: .*denied") as info:
        list(backend.scan(""))
    assert isinstance(info.value.original, PermissionError)


# -- clear --------------------------------------------------------------------------------


def test_clear_removes_entries_and_temps_only(backend: FileSystemBackend, root: Path) -> None:
    backend.set_many({"a": b"1", "b": b"2"}, None)
    assert backend.acquire_lock("job", "me", 10)
    shard = entry(root, "a").parent
    digest = entry(root, "a").name
    kept = [
        plant(shard / "notes.txt", b"x"),
        plant(shard / digest.upper(), b"x"),  # not lowercase hex
        plant(shard / digest[:-1], b"x"),  # a digit short
        plant(shard / (digest + "0"), b"x"),  # a digit long
        plant(shard / ("zz" + digest[2:] + ".lock"), b"x"),  # not a lock of ours
        plant(root / ("00" if shard.name != "00" else "01") / digest, b"x"),  # wrong shard
        plant(root / digest, b"x"),  # outside any shard
        plant(root / "AB" / digest, b"x"),  # not a shard folder
    ]
    gone = [plant(shard / ".tmp-9-9-9", b"x"), plant(shard / ".tmp-anything", b"x")]
    backend.clear()
    assert all(p.exists() for p in kept)
    assert not any(p.exists() for p in gone)
    assert lock(root, "job").exists()
    assert backend.get_many(["a", "b"]) == [MISS, MISS]


# -- bounds: counts ------------------------------------------------------------------------


def test_threshold_evicts_down_to_nine_tenths_oldest_first(root: Path, clock: FakeClock) -> None:
    backend = bounded(root, clock, threshold=10)
    for i in range(10):
        backend.set(f"k{i}", b"v", None)
    assert len(entries(root)) == 10
    assert backend.evictions() == 0
    backend.set("k10", b"v", None)  # 11 > 10: down to 9
    assert len(entries(root)) == 9
    assert backend.evictions() == 2
    assert backend.get_many(["k0", "k1", "k2", "k10"]) == [MISS, MISS, b"v", b"v"]


def test_threshold_of_one_keeps_the_newest(root: Path, clock: FakeClock) -> None:
    backend = bounded(root, clock, threshold=1)
    backend.set("a", b"v", None)
    backend.set("b", b"v", None)
    assert backend.get_many(["a", "b"]) == [MISS, b"v"]
    assert backend.evictions() == 1


def test_add_counts_toward_the_threshold(root: Path, clock: FakeClock) -> None:
    backend = bounded(root, clock, threshold=10)
    for i in range(11):
        assert backend.add(f"k{i}", b"v", None)
    assert len(entries(root)) == 9
    assert backend.evictions() == 2


def test_overwrites_and_deletes_keep_the_count_exact(root: Path, clock: FakeClock) -> None:
    backend = bounded(root, clock, threshold=10)
    for i in range(10):
        backend.set(f"k{i}", b"v", None)
    for _ in range(5):
        backend.set("k0", b"again", None)
    assert backend.delete("k1") is True
    assert backend.delete("k1") is False
    assert backend.delete_many(["k2", "k3", "nope"]) == 2
    for i in range(10, 13):
        backend.set(f"k{i}", b"v", None)
    assert len(entries(root)) == 10  # 10 - 3 + 3: not over, nothing evicted
    assert backend.evictions() == 0


def test_expired_entries_go_before_live_ones_and_are_not_evictions(
    root: Path, clock: FakeClock
) -> None:
    backend = bounded(root, clock, threshold=4)
    backend.set_many({"brief1": b"v", "brief2": b"v"}, 5)
    backend.set_many({"live1": b"v", "live2": b"v"}, None)
    clock.advance(5)
    backend.set("live3", b"v", None)  # 5 > 4, but two are expired
    assert sorted(entries(root)) == sorted(entry(root, f"live{i}") for i in (1, 2, 3))
    assert backend.evictions() == 0


def test_reads_refresh_recency_only_when_bounded(tmp_path: Path, clock: FakeClock) -> None:
    for threshold in (0, 3):
        root = tmp_path / str(threshold)
        backend = bounded(root, clock, threshold=threshold)
        backend.set("k", b"v", None)
        old = time.time_ns() - 10**10
        os.utime(entry(root, "k"), ns=(old, old))
        backend.get("k")
        refreshed = entry(root, "k").stat().st_mtime_ns != old
        assert refreshed is bool(threshold)


def test_writes_are_ordered_even_within_one_clock_tick(
    root: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every write in one tick of the system clock, a tick ahead of the kernel's file clock.
    frozen = time.time_ns() + 10**12
    patched = SimpleNamespace(time=time.time, time_ns=lambda: frozen, monotonic=time.monotonic)
    monkeypatch.setattr(filesystem, "time", patched)
    backend = bounded(root, clock, threshold=100)
    keys = [f"k{i}" for i in range(20)]
    for key in keys:
        backend.set(key, b"v", None)
    backend.get("k0")
    mtimes = [entry(root, key).stat().st_mtime_ns for key in [*keys[1:], "k0"]]
    assert mtimes == sorted(set(mtimes))


# -- bounds: bytes -------------------------------------------------------------------------


def record_size(key: str, value: bytes) -> int:
    return len(encode_record(key, value, 0))


def test_max_bytes_evicts_down_to_nine_tenths(root: Path, clock: FakeClock) -> None:
    value = bytes(69)
    assert record_size("k00", value) == 100
    backend = bounded(root, clock, max_bytes=1_000)
    for i in range(10):
        backend.set(f"k{i:02d}", value, None)
    assert len(entries(root)) == 10  # exactly 1,000 bytes: fits
    backend.set("k10", value, None)
    assert len(entries(root)) == 9
    assert backend.evictions() == 2
    assert backend.get_many(["k00", "k01", "k02"]) == [MISS, MISS, value]


def test_an_entry_of_exactly_max_bytes_fits(root: Path, clock: FakeClock) -> None:
    backend = bounded(root, clock, max_bytes=100)
    backend.set("k0", bytes(70), None)
    assert backend.get("k0") == bytes(70)
    assert backend.add("k1", bytes(70), None) is True
    assert backend.get_many(["k0", "k1"]) == [MISS, bytes(70)]  # the newest always stays


def test_an_entry_over_max_bytes_is_refused(root: Path, clock: FakeClock) -> None:
    backend = bounded(root, clock, max_bytes=100)
    backend.set("k0", b"small", None)
    backend.set("k0", bytes(71), None)
    assert backend.get("k0") is MISS  # the old value went with the refused write
    assert backend.add("k1", bytes(71), None) is False
    assert entries(root) == []
    assert temps(root) == []


def test_the_newest_entry_stays_even_over_the_kept_share(root: Path, clock: FakeClock) -> None:
    backend = bounded(root, clock, max_bytes=1_000)
    big = bytes(1_000 - record_size("a", b""))
    backend.set("a", big, None)
    backend.set("b", big, None)  # 2,000 > 1,000: evict to 900, but "b" alone is 1,000
    assert backend.get_many(["a", "b"]) == [MISS, big]
    assert backend.evictions() == 1


def test_growing_values_count_their_new_size(root: Path, clock: FakeClock) -> None:
    backend = bounded(root, clock, max_bytes=1_000)
    for i in range(5):
        backend.set(f"k{i}", bytes(70), None)  # 500 bytes
    for i in range(5):
        backend.set(f"k{i}", bytes(170), None)  # 1,000 bytes: still fits
    assert backend.evictions() == 0
    backend.set("k0", bytes(171), None)  # 1,001
    assert backend.evictions() == 1
    assert backend.get("k1") is MISS


# -- recounting ----------------------------------------------------------------------------


class Monotonic:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def monotonic(monkeypatch: pytest.MonkeyPatch) -> Monotonic:
    fake = Monotonic()
    patched = SimpleNamespace(time=time.time, time_ns=time.time_ns, monotonic=fake)
    monkeypatch.setattr(filesystem, "time", patched)
    return fake


def count_scans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    scans: list[str] = []
    real = filesystem.shard_dirs

    def shard_dirs(path: str) -> Any:
        scans.append(path)
        return real(path)

    monkeypatch.setattr(filesystem, "shard_dirs", shard_dirs)
    return scans


def test_recounts_once_a_minute_and_when_over(
    root: Path, clock: FakeClock, monotonic: Monotonic, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = bounded(root, clock, threshold=5)
    scans = count_scans(monkeypatch)
    backend.set("k0", b"v", None)
    assert len(scans) == 1  # the first write counts what is already there
    for i in range(1, 5):
        backend.set(f"k{i}", b"v", None)
    monotonic.now += 59.999
    backend.set("k0", b"v", None)
    assert len(scans) == 1
    monotonic.now += 0.001
    backend.set("k0", b"v", None)
    assert len(scans) == 2
    backend.set("k5", b"v", None)  # 6 > 5
    assert len(scans) == 3
    assert len(entries(root)) == 4


def test_unbounded_cache_never_scans(
    backend: FileSystemBackend, monotonic: Monotonic, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = count_scans(monkeypatch)
    for i in range(20):
        backend.set(f"k{i}", b"v", None)
        monotonic.now += 100
    backend.add("a", b"v", None)
    backend.delete("k0")
    assert scans == []


def test_clear_resets_the_count(
    root: Path, clock: FakeClock, monotonic: Monotonic, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = bounded(root, clock, threshold=5)
    backend.set_many({f"old{i}": b"v" for i in range(5)}, None)
    backend.clear()
    scans = count_scans(monkeypatch)
    backend.set_many({f"new{i}": b"v" for i in range(5)}, None)
    assert scans == []  # 5 entries, not 10


def test_another_process_files_are_found_by_the_recount(
    root: Path, clock: FakeClock, monotonic: Monotonic
) -> None:
    ours = bounded(root, clock, threshold=10)
    theirs = bounded(root, clock)  # stands for another process
    ours.set("mine", b"v", None)
    theirs.set_many({f"k{i}": b"v" for i in range(15)}, None)
    monotonic.now += 60
    ours.set("mine too", b"v", None)
    assert len(entries(root)) == 9
    assert ours.evictions() == 8


def test_recount_removes_stale_temps_and_expired_locks(
    root: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = bounded(root, clock, threshold=2)
    assert backend.acquire_lock("crashed", "me", 5)
    assert backend.acquire_lock("held", "me", 500)
    backend.set("k", b"v", None)
    shard = entry(root, "k").parent
    hour = 3600 * 10**9
    now_ns = time.time_ns()
    monkeypatch.setattr(filesystem.time, "time_ns", lambda: now_ns)
    stale = plant(shard / ".tmp-1-1-1", b"x")
    fresh = plant(shard / ".tmp-1-1-2", b"x")
    os.utime(stale, ns=(now_ns - hour - 1, now_ns - hour - 1))
    os.utime(fresh, ns=(now_ns - hour, now_ns - hour))
    foreign = plant(shard / "notes.txt", b"x")
    clock.advance(10)
    backend.set_many({"a": b"v", "b": b"v"}, None)  # 3 > 2: a recount runs
    assert not stale.exists()
    assert fresh.exists()
    assert foreign.exists()
    assert not lock(root, "crashed").exists()
    assert lock(root, "held").exists()


# -- races with another process, staged ---------------------------------------------------


def on_first_call(monkeypatch: pytest.MonkeyPatch, name: str, action: Callable[[], None]) -> None:
    """Run ``action`` right after the first call of ``filesystem.<name>``."""
    real = getattr(filesystem, name)
    done: list[bool] = []

    def wrapper(*args: Any) -> Any:
        result = real(*args)
        if not done:
            done.append(True)
            action()
        return result

    monkeypatch.setattr(filesystem, name, wrapper)


def test_an_expired_entry_replaced_meanwhile_is_not_removed(
    root: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = bounded(root, clock), bounded(root, clock)
    ours.set("k", b"old", 1)
    clock.advance(1)
    on_first_call(monkeypatch, "slurp", lambda: theirs.set("k", b"fresh", None))
    assert ours.get("k") is MISS  # judged on the file it read
    assert theirs.get("k") == b"fresh"  # the new file survived


def test_a_lock_taken_over_meanwhile_is_given_back(
    root: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = bounded(root, clock), bounded(root, clock)
    assert ours.acquire_lock("job", "old owner", 5)
    clock.advance(5)
    # Between our read of the expired lease and our grab, another process breaks it and
    # takes the lock: our grab must not steal it.
    on_first_call(monkeypatch, "slurp", lambda: take(theirs))
    assert ours.acquire_lock("job", "us", 5) is False
    assert lock(root, "job").read_bytes() == encode_record("job", b"them", T0 + 10)
    assert theirs.release_lock("job", "them") is True
    assert temps(root) == []


def take(backend: FileSystemBackend) -> None:
    os.unlink(lock(Path(backend.cache_dir), "job"))
    assert backend.acquire_lock("job", "them", 5)


def test_release_does_not_remove_a_lock_taken_over_meanwhile(
    root: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = bounded(root, clock), bounded(root, clock)
    assert ours.acquire_lock("job", "us", 5)
    clock.advance(4)  # still ours by our clock; another host's clock may disagree
    on_first_call(monkeypatch, "slurp", lambda: take(theirs))
    assert ours.release_lock("job", "us") is False
    assert lock(root, "job").read_bytes() == encode_record("job", b"them", T0 + 9)
    assert temps(root) == []


def test_a_lock_freed_meanwhile_is_taken(
    root: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = bounded(root, clock), bounded(root, clock)
    assert ours.acquire_lock("job", "old owner", 5)
    clock.advance(5)
    on_first_call(monkeypatch, "slurp", lambda: os.unlink(lock(root, "job")))
    assert theirs.acquire_lock("job", "them", 5) is True
    assert theirs.release_lock("job", "them") is True


def test_a_lock_released_before_we_look_is_taken(
    root: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = bounded(root, clock), bounded(root, clock)
    assert theirs.acquire_lock("job", "them", 5)
    # Our first link finds their lock; by the time we read it, it is gone.
    on_first_call(monkeypatch, "link_file", lambda: theirs.release_lock("job", "them"))
    assert ours.acquire_lock("job", "us", 5) is True
    assert lock(root, "job").read_bytes() == encode_record("job", b"us", T0 + 5)


def test_an_entry_deleted_while_read_is_still_returned(
    root: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = bounded(root, clock, threshold=5), bounded(root, clock)
    ours.set("k", b"v", None)
    on_first_call(monkeypatch, "slurp", lambda: theirs.delete("k"))
    assert ours.get("k") == b"v"  # what it read; refreshing its recency finds no file


def test_recount_keeps_an_expired_entry_rewritten_meanwhile(
    root: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = bounded(root, clock, threshold=3), bounded(root, clock)
    ours.set("k", b"old", 1)
    clock.advance(1)
    real_peek = filesystem.peek

    def peek(path: str) -> Any:
        found = real_peek(path)
        if path == str(entry(root, "k")) and found[0] == T0 + 1:
            theirs.set("k", b"fresh", None)
        return found

    monkeypatch.setattr(filesystem, "peek", peek)
    ours.set_many({f"n{i}": b"v" for i in range(3)}, None)  # 4 > 3: a recount runs
    monkeypatch.undo()
    assert ours.get("k") == b"fresh"


def test_recount_ignores_a_temp_file_gone_meanwhile(
    root: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = bounded(root, clock, threshold=2)
    backend.set("k", b"v", None)
    temp = plant(entry(root, "k").parent / ".tmp-7-7-7", b"x")
    real_list_dir = filesystem.list_dir

    def list_dir(path: str) -> Any:
        items = real_list_dir(path)
        if any(item.path == str(temp) for item in items):
            temp.unlink()  # listed, then renamed into place by its writer
        return items

    monkeypatch.setattr(filesystem, "list_dir", list_dir)
    backend.set_many({"a": b"v", "b": b"v"}, None)  # 3 > 2: a recount runs
    assert len(entries(root)) == 1


def test_a_stale_temp_is_judged_by_its_own_age_not_its_target(root: Path, clock: FakeClock) -> None:
    backend = bounded(root, clock, threshold=1)
    backend.set("k", b"v", None)
    shard = entry(root, "k").parent
    link = shard / ".tmp-8-8-8"
    link.symlink_to(entry(root, "k"))  # a fresh target
    old = time.time_ns() - 2 * 3600 * 10**9
    os.utime(link, ns=(old, old), follow_symlinks=False)
    backend.set("n", b"v", None)  # 2 > 1: a recount runs
    assert not os.path.lexists(link)


def test_a_write_whose_temp_a_clear_removed_is_dropped(
    root: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = bounded(root, clock, threshold=10), bounded(root, clock)
    real_replace = os.replace

    def clear_first(src: str, dst: str) -> None:
        theirs.clear()
        real_replace(src, dst)

    monkeypatch.setattr(filesystem.os, "replace", clear_first)
    ours.set("k", b"v", None)  # as if the clear ran just after it
    monkeypatch.undo()
    assert ours.get("k") is MISS
    assert entries(root) == []
    assert temps(root) == []


def test_add_loses_to_a_writer_that_came_first(
    root: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = bounded(root, clock), bounded(root, clock)
    ours.set("k", b"expired", 1)
    clock.advance(1)
    on_first_call(monkeypatch, "slurp", lambda: theirs.set("k", b"theirs", None))
    assert ours.add("k", b"ours", None) is False
    assert ours.get("k") == b"theirs"
    assert temps(root) == []


def test_failed_chmod_leaves_no_temp_file(
    root: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_umask = os.umask(0o077)  # takes bits off 0o640: every write needs a chmod
    try:
        backend = FileSystemBackend(root, mode=0o640, clock=clock)
    finally:
        os.umask(old_umask)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(filesystem.os, "chmod", refuse)
    with pytest.raises(BackendError):
        backend.set("k", b"v", None)
    with pytest.raises(BackendError):
        backend.acquire_lock("job", "me", 5)
    assert temps(root) == []


def test_default_threshold_is_500(root: Path, clock: FakeClock) -> None:
    backend = FileSystemBackend(root, clock=clock)
    backend.set_many({f"k{i}": b"" for i in range(500)}, None)
    assert backend.evictions() == 0
    backend.set("k500", b"", None)
    assert len(entries(root)) == 450


def test_get_many_refreshes_recency_and_a_refused_add_does_not(
    root: Path, clock: FakeClock
) -> None:
    backend = bounded(root, clock, threshold=4)
    for key in "abcd":
        backend.set(key, b"v", None)
    assert backend.get_many(["a"]) == [b"v"]  # "a" is now the most recently used
    assert backend.add("b", b"other", None) is False  # "b" stays the least
    backend.set("e", b"v", None)  # 5 > 4: down to 3
    assert backend.get_many(["a", "b", "c", "d", "e"]) == [b"v", MISS, MISS, b"v", b"v"]


# -- the in-process estimate ---------------------------------------------------------------


@pytest.mark.parametrize("bound", [{"threshold": 4}, {"max_bytes": 400}])
def test_the_estimate_follows_every_write_without_rescanning(
    root: Path,
    clock: FakeClock,
    monotonic: Monotonic,
    monkeypatch: pytest.MonkeyPatch,
    bound: dict[str, int],
) -> None:
    backend = bounded(root, clock, **bound)
    value = bytes(69)  # 100-byte records under 3-character keys
    backend.set("k00", value, None)  # the first write counts the folder
    scans = count_scans(monkeypatch)
    backend.set("k01", bytes(169), None)  # 300 bytes
    backend.set("k01", value, None)  # shrinks: 200 bytes
    assert backend.add("k02", value, None)  # 300 bytes
    assert backend.delete("k00")  # 200 bytes, 2 entries
    backend.set_many({"k03": value, "k04": value}, None)  # 400 bytes, 4 entries: at the bound
    assert scans == []
    backend.set("k05", b"", None)
    assert len(scans) == 1


def delete_during_a_clear(
    backend: FileSystemBackend, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Delete ``key`` while a clear runs between its unlink and its accounting."""
    real_unlink = os.unlink
    cleared: list[bool] = []

    def unlink(path: str) -> None:
        real_unlink(path)
        if not cleared:
            cleared.append(True)
            backend.clear()  # counts from zero: the removal is already in that count

    monkeypatch.setattr(filesystem.os, "unlink", unlink)
    assert backend.delete(key) is True
    monkeypatch.setattr(filesystem.os, "unlink", real_unlink)


def test_a_delete_straddling_a_clear_is_not_subtracted_again(
    root: Path, clock: FakeClock, monotonic: Monotonic, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = len(encode_record("n0", b"v", 0))
    backend = bounded(root, clock, threshold=3, max_bytes=3 * record)
    for key in ("a", "b"):  # twice in a row: each clear must mark a change of its own
        backend.set(key, b"v", None)
        delete_during_a_clear(backend, key, monkeypatch)
    scans = count_scans(monkeypatch)
    backend.set_many({f"n{i}": b"v" for i in range(3)}, None)  # at both bounds
    assert scans == []
    backend.set("x", b"", None)  # over both, by less than the removal counted twice
    assert len(scans) == 1
    assert len(entries(root)) == 2


def test_a_write_straddling_a_recount_counts_as_new(
    root: Path, clock: FakeClock, monotonic: Monotonic, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = bounded(root, clock, threshold=3)
    backend.set_many({"a": b"v", "b": b"v", "c": b"v"}, None)
    # While "a" is being rewritten, a recount evicts the old "a": the rewrite is a new entry.
    on_first_call(monkeypatch, "size_of", lambda: backend.add("d", b"v", None))
    backend.set("a", b"new", None)
    assert sorted(entries(root)) == sorted(entry(root, key) for key in "acd")
    backend.add("e", b"v", None)  # 4 > 3
    assert len(entries(root)) == 2


def test_a_delete_waits_for_a_write_of_the_same_key(
    root: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = bounded(root, clock, threshold=10)
    backend.set("k", b"old", None)
    deleted = threading.Event()
    worker = threading.Thread(target=lambda: [backend.delete("k"), deleted.set()])

    def start_delete() -> None:
        worker.start()
        # The delete must wait for the write's rename: it never finishes in this window.
        assert not deleted.wait(0.2)

    on_first_call(monkeypatch, "size_of", start_delete)
    backend.set("k", b"new", None)
    worker.join(10)
    assert deleted.is_set()
    assert backend.get("k") is MISS  # the delete came second
