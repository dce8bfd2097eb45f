"""MemcachedBackend's edges: routing by hash tag, option checks, error messages naming the
key, TTLs at the server, evictions, a hung server, and the failing-server bookkeeping."""

from __future__ import annotations

import contextlib
import gc
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymemcache.client.base import Client

from flask_stash.core.backends import memcached
from flask_stash.core.backends.memcached import MemcachedBackend, routing_key, wire_key
from flask_stash.core.errors import (
    BackendError,
    ConfigurationError,
    EntryTooLarge,
    MissingDependencyError,
)

from .. import servers
from .memcachedkit import remaining_ttl, text_client


@pytest.fixture
def node(memcached_pair: list[servers.Server]) -> servers.Server:
    return memcached_pair[0]


@pytest.fixture
def backend(node: servers.Server) -> Iterator[MemcachedBackend]:
    with contextlib.closing(MemcachedBackend([node.address])) as made:
        yield made


@pytest.fixture
def raw(node: servers.Server) -> Iterator[Client]:
    with text_client(node) as client:
        yield client


@pytest.fixture
def key() -> str:
    return f"st:{uuid.uuid4().hex}"


# -- routing: the node is picked by the first non-empty {tag} --------------------------------


@pytest.mark.parametrize(
    ("key", "routed"),
    [
        ("{tag}:entry", "tag"),  # a tag at the very start counts
        ("p:{a}:x:{b}", "a"),  # the first tag, not the last
        ("p:{a}x}", "a"),  # up to the first closing brace after it
        ("}{x}", "x"),  # a closing brace before the tag is not its end
        ("{a}", "a"),  # a one-character tag
        ("{}x}", "{}x}"),  # an empty tag does not count: the whole key
        ("{}", "{}"),
        ("no tag", "no tag"),
        (b"k{t}", b"t"),  # wire keys are bytes
    ],
)
def test_routing_key(key: str | bytes, routed: str | bytes) -> None:
    assert routing_key(key) == routed


# -- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [("retry_attempts", -1), ("retry_attempts", 1.5), ("retry_attempts", True),
     ("retry_timeout", -1), ("timeout", 0), ("connect_timeout", -1), ("max_value_size", 0),
     ("retry_timeout", float("nan")), ("dead_timeout", -0.5), ("dead_timeout", "1")],
)  # fmt: skip
def test_bad_options_are_named(option: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=rf"^{option} must be"):
        MemcachedBackend(["a:1", "b:2"], **{option: value})  # type: ignore[arg-type]


def test_zero_retries_and_timeouts_are_allowed() -> None:
    options = {"retry_attempts": 0, "retry_timeout": 0, "dead_timeout": 0, "max_value_size": 1}
    with contextlib.closing(MemcachedBackend(["a:1", "b:2"], **options)) as made:  # type: ignore[arg-type]
        assert made.servers == ["a:1", "b:2"]
        assert made.max_value_size == 1


def test_credentials_point_to_the_sasl_backend() -> None:
    with pytest.raises(ConfigurationError) as caught:
        MemcachedBackend(url="memcached://user:pw@h:1")
    assert str(caught.value) == "credentials need SASL: use SASLMemcachedCache (pylibmc)"


def test_missing_pymemcache_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pymemcache", None)  # import pymemcache -> ImportError
    with pytest.raises(MissingDependencyError, match=r"'pymemcache'.*flask-stash\[memcached\]"):
        MemcachedBackend(["h:1"])


@pytest.mark.parametrize(("count", "ejects"), [(1, False), (2, True), (3, True)])
def test_several_servers_are_sharded_and_eject_failing_ones(count: int, ejects: bool) -> None:
    """Several servers: pymemcache's HashClient, which leaves a failing one out by itself
    (the gate's breaker reads ``ejects_failed_nodes`` to leave those to it)."""
    addresses = [f"h{i}:1" for i in range(count)]
    with contextlib.closing(MemcachedBackend(addresses)) as made:
        assert made.ejects_failed_nodes is ejects
        assert made.servers == addresses


def test_a_ready_client_is_used_as_given() -> None:
    class Listed:
        servers = ("a:1", "b:2")

    assert MemcachedBackend(client=Listed()).servers == ["a:1", "b:2"]
    assert MemcachedBackend(client=object()).servers == []


def test_a_dropped_backend_closes_its_connections(node: servers.Server, raw: Client) -> None:
    def connections() -> int:
        return int(raw.stats()[b"curr_connections"])

    before = connections()
    made = MemcachedBackend([node.address])
    made.set("dropped", b"v", 60)
    assert connections() == before + 1
    del made
    gc.collect()
    deadline = time.monotonic() + 5  # the server notices the closed socket on its own
    while connections() != before:
        assert time.monotonic() < deadline, "the dropped backend's connection stayed open"
        time.sleep(0.02)


# -- messages that name the caller's key -----------------------------------------------------


def test_type_errors_say_what_was_wrong(backend: MemcachedBackend, key: str) -> None:
    with pytest.raises(TypeError, match=r"^delta must be an int, not float$"):
        backend.incr(key, 1.5, 60)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^lease must be a positive number of seconds, not None$"):
        backend.acquire_lock(key, "t", None)  # type: ignore[arg-type]


@pytest.mark.parametrize("stored", [b"x5", b"-", b"-x", b"5x", b""])
def test_increment_of_a_non_integer_names_the_key(
    backend: MemcachedBackend, key: str, stored: bytes
) -> None:
    backend.set(key, stored, 60)
    for delta in (1, -1):  # native incr refused, then compare-and-set; both refuse
        with pytest.raises(TypeError, match=rf"^cannot increment {key!r}: it does not hold"):
            backend.incr(key, delta, 60)
    assert backend.get(key) == stored


def test_size_refusals_name_the_key(backend: MemcachedBackend, key: str) -> None:
    tight = MemcachedBackend(backend.servers, max_value_size=4)
    with contextlib.closing(tight):
        with pytest.raises(EntryTooLarge, match=rf"^not caching {key!r}: 5 bytes"):
            tight.add(key, b"12345", 60)
        with pytest.raises(EntryTooLarge, match=rf"^not caching {key!r}: 5 bytes"):
            tight.set_many({key + "ok": b"1", key: b"12345"}, 60)


def test_server_size_refusals_are_reported(node: servers.Server, key: str) -> None:
    """Past our own limit (raised here), memcached's -I 1m refuses: never a silent loss,
    set_many included."""
    big = b"x" * (2 * 1024 * 1024)
    # A generous timeout: 2 MiB go out before the server answers, on a busy machine too.
    roomy = MemcachedBackend([node.address], max_value_size=4 * 1024 * 1024, timeout=10)
    with contextlib.closing(roomy):
        with pytest.raises(EntryTooLarge, match=rf"^memcached refused {key!r}: "):
            roomy.add(key, big, 60)
        with pytest.raises(EntryTooLarge, match=r"^memcached refused one of 2 values: "):
            roomy.set_many({key: big, key + "small": b"s"}, 60)
        assert roomy.get(key) is memcached.MISS


# -- TTLs at the server ----------------------------------------------------------------------


def test_set_many_ttl_reaches_the_server(backend: MemcachedBackend, raw: Client, key: str) -> None:
    backend.set_many({key + "a": b"1", key + "b": b"2"}, 120)
    assert remaining_ttl(raw, wire_key(key + "a")) in range(118, 121)
    assert remaining_ttl(raw, wire_key(key + "b")) in range(118, 121)


def test_add_sends_its_ttl_and_no_ttl_means_forever(
    backend: MemcachedBackend, raw: Client, key: str
) -> None:
    assert backend.add(key, b"1", 90) is True
    assert remaining_ttl(raw, wire_key(key)) in range(88, 91)
    assert backend.add(key + "forever", b"2", None) is True
    assert remaining_ttl(raw, wire_key(key + "forever")) == -1


def test_increment_by_zero_keeps_the_expiry(
    backend: MemcachedBackend, raw: Client, key: str
) -> None:
    assert backend.incr(key, 3, 60) == 3
    assert backend.incr(key, 0, None) == 3  # memcached's incr, like any non-negative delta
    assert remaining_ttl(raw, wire_key(key)) in range(58, 61)


# -- evictions -----------------------------------------------------------------------------


def test_evictions_sum_the_servers(tmp_path: Path) -> None:
    binary = servers.require_binary("memcached")
    port = servers.free_port()
    args = [binary, "-l", servers.HOST, "-p", str(port), "-U", "0", "-m", "2", "-u", "root"]
    with servers.running(args, port, tmp_path) as small:
        made = MemcachedBackend([small.address])
        with contextlib.closing(made), contextlib.closing(Client((servers.HOST, port))) as raw:
            assert made.evictions() == 0
            value = b"v" * 50_000
            for i in range(200):  # 10 MB into a 2 MB cache
                made.set(f"fill{i}", value, None)
            evicted = int(raw.stats()[b"evictions"])
            assert evicted > 0
            assert made.evictions() == evicted


# -- a hung server ---------------------------------------------------------------------------


def test_a_hung_server_times_out_as_an_error(tmp_path: Path) -> None:
    """SIGSTOP: connections are accepted, never answered. Each call ends with an error
    after ``timeout``, on a sharded client too: never a hang, never a silent miss."""
    with servers.memcached_nodes(tmp_path, 2) as (a, b):
        made = MemcachedBackend([a.address, b.address], timeout=0.3, connect_timeout=0.3)
        with contextlib.closing(made):
            keys = [f"k{i}" for i in range(16)]
            with contextlib.closing(MemcachedBackend([a.address, b.address])) as patient:
                patient.set_many(dict.fromkeys(keys, b"v"), 60)  # same nodes, same routing
            with contextlib.closing(Client((servers.HOST, b.port))) as raw_b:
                on_b = next(k for k in keys if raw_b.get(k) is not None)
            with servers.paused(b), pytest.raises(BackendError):
                made.get(on_b)


# -- the failing-server record, shared by threads ------------------------------------------


def test_a_failure_record_removed_by_another_thread_reads_as_fresh() -> None:
    records = memcached._FailedNodes()
    fresh = records["gone:1"]
    assert fresh["attempts"] == 0
    assert set(fresh) == {"failed_time", "attempts"}  # the fields pymemcache reads
    assert records.pop("gone:1") is None


class FrozenTime:
    """``time.time`` as the failing-server bookkeeping reads it, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_failing_server_errors_until_it_is_left_out(
    node: servers.Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between retries a failing server's calls are errors at once (pymemcache answered
    them with a silent default: a miss, an add "lost"); after ``retry_attempts`` failed
    retries it is left out and its keys go to the live server."""
    clock = FrozenTime()
    monkeypatch.setattr(memcached.time, "time", clock)  # pymemcache's clock too
    dead = f"{servers.HOST}:{servers.free_port()}"
    made = MemcachedBackend([node.address, dead], retry_attempts=2, retry_timeout=0.25)
    with contextlib.closing(made):
        on_dead = next(f"k{i}" for i in range(64) if not answers(made, f"k{i}"))

        def failure() -> str:
            with pytest.raises(BackendError) as caught:
                made.get(on_dead)
            return str(caught.value)

        assert (
            f"memcached server {dead} is failing" in failure()
        )  # refused at 1000.0: failing, no new attempt
        clock.now = 1_000.25
        assert "is failing" in failure()  # exactly retry_timeout later: still waiting
        clock.now = 1_000.5
        assert "is failing" not in failure()  # retried (and refused): attempt 1
        clock.now = 1_001.0
        assert "is failing" not in failure()  # attempt 2
        assert f"memcached server {dead} left out after failing" in failure()
        assert made.get(on_dead) is memcached.MISS  # now served by the live server


def answers(made: MemcachedBackend, key: str) -> bool:
    """Whether ``key``'s server answers; the first refusal marks the other one failing."""
    try:
        made.get(key)
    except BackendError:
        return False
    return True


def test_failing_server_defaults(node: servers.Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """By default a failing server is retried 1 s apart, left out after 2 failed retries,
    and tried again 30 s later."""
    clock = FrozenTime()
    monkeypatch.setattr(memcached.time, "time", clock)
    dead = f"{servers.HOST}:{servers.free_port()}"
    with contextlib.closing(MemcachedBackend([node.address, dead])) as made:
        on_dead = next(f"k{i}" for i in range(64) if not answers(made, f"k{i}"))

        def failure() -> str:
            with pytest.raises(BackendError) as caught:
                made.get(on_dead)
            return str(caught.value)

        clock.now = 1_001.0
        assert "is failing" in failure()
        clock.now = 1_001.5
        assert "is failing" not in failure()  # attempt 1
        clock.now = 1_003.0
        assert "is failing" not in failure()  # attempt 2
        assert "left out after failing" in failure()
        assert made.get(on_dead) is memcached.MISS
        clock.now = 1_033.5  # 30.5 s after it was left out: tried again, still refused
        assert "is failing" not in failure()


def test_an_increment_that_always_loses_the_race_gives_up(
    backend: MemcachedBackend, raw: Client, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another client writes between every read and compare-and-set: the increment ends
    with an error after a bounded number of rounds, never a spin or a lost write."""
    backend.set(key, b"-1", 60)
    real_gets = backend._client.gets
    rounds: list[int] = []

    def gets_then_someone_writes(wire: bytes) -> object:
        found = real_gets(wire)
        rounds.append(1)
        raw.set(wire, b"-100", noreply=False)  # the other client's write wins the race
        return found

    monkeypatch.setattr(backend._client, "gets", gets_then_someone_writes)
    with pytest.raises(BackendError, match=rf"^incr\({key!r}\) lost 32 compare-and-set races"):
        backend.incr(key, -1, 60)
    assert len(rounds) == 32
    assert raw.get(wire_key(key)) == b"-100"  # the other write stands


def test_an_increment_racing_a_creation_counts_from_the_created_value(
    backend: MemcachedBackend, raw: Client, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Absent when read, created by another client before our ``add``: the add must fail
    and the increment apply to that value, not overwrite it."""
    real_gets = backend._client.gets
    created: list[bytes] = []

    def gets_then_someone_creates(wire: bytes) -> object:
        found = real_gets(wire)
        if not created:
            raw.set(wire, b"10", noreply=False)
            created.append(wire)
        return found

    monkeypatch.setattr(backend._client, "gets", gets_then_someone_creates)
    assert backend.incr(key, -1, 60) == 9
    assert raw.get(wire_key(key)) == b"9"


def test_a_server_brought_back_gets_a_new_pool_and_the_old_one_is_closed(
    memcached_pair: list[servers.Server],
) -> None:
    """What pymemcache does when a left-out server's dead_timeout ends: the server is
    added again with a new pool; the old pool's connections must not stay open."""
    a, b = memcached_pair
    with contextlib.closing(MemcachedBackend([a.address, b.address])) as made:
        client = made._client
        old = client.clients[b.address]
        old.get(b"any")  # one pooled connection to b, idle now
        with contextlib.closing(Client((servers.HOST, b.port))) as raw_b:

            def connections() -> int:
                return int(raw_b.stats()[b"curr_connections"])

            with_old = connections()
            client.remove_server((servers.HOST, b.port))
            client.add_server((servers.HOST, b.port))
            assert client.clients[b.address] is not old
            deadline = time.monotonic() + 5  # the server notices the close on its own
            while connections() != with_old - 1:
                assert time.monotonic() < deadline, "the old pool's connection stayed open"
                time.sleep(0.02)


def test_clear_reports_every_failing_server() -> None:
    dead = [f"{servers.HOST}:{servers.free_port()}" for _ in range(2)]
    made = MemcachedBackend(dead, retry_attempts=0)
    with contextlib.closing(made), pytest.raises(BackendError) as caught:
        made.clear()
    message = str(caught.value)
    assert message.startswith(f"flush_all failed on {dead[0]}: ")
    assert f"; {dead[1]}: " in message


def test_clear_on_a_hung_server_is_an_error(tmp_path: Path) -> None:
    """flush_all waits for the reply: a hung server's flush is reported, not assumed."""
    with servers.memcached_nodes(tmp_path, 1) as (hung,):
        made = MemcachedBackend([hung.address], timeout=0.3, connect_timeout=0.3)
        with contextlib.closing(made):
            made.set("k", b"v", 60)  # connected
            with servers.paused(hung), pytest.raises(BackendError, match="flush_all failed"):
                made.clear()


def test_set_messages_name_the_key(node: servers.Server, key: str) -> None:
    with contextlib.closing(MemcachedBackend([node.address], max_value_size=4)) as tight:
        with pytest.raises(EntryTooLarge, match=rf"^not caching {key!r}: 5 bytes"):
            tight.set(key, b"12345", 60)
        with pytest.raises(TypeError, match=r"^backend values are bytes, not str$"):
            tight.set(key, "text", 60)  # type: ignore[arg-type]
    roomy = MemcachedBackend([node.address], max_value_size=4 * 1024 * 1024, timeout=10)
    with (
        contextlib.closing(roomy),
        pytest.raises(EntryTooLarge, match=rf"^memcached refused {key!r}: "),
    ):
        roomy.set(key, b"x" * (2 * 1024 * 1024), 60)


def test_lock_names_with_lone_surrogates_work(backend: MemcachedBackend) -> None:
    name = f"\ud800 lock {uuid.uuid4().hex}"
    assert backend.acquire_lock(name, "t", 5)
    assert not backend.acquire_lock(name, "u", 5)
    assert backend.release_lock(name, "t")


def test_repr_names_the_class_and_servers() -> None:
    with contextlib.closing(MemcachedBackend(["h:1", "h:2"])) as made:
        assert repr(made) == "MemcachedBackend(['h:1', 'h:2'])"
