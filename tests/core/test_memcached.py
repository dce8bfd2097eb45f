"""MemcachedBackend on real memcached servers: the contract, keys, TTLs, sizes, failures."""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import sys
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import pytest
from flask import Flask
from pymemcache.client.base import Client

from flask_stash import Cache
from flask_stash.backends.memcached import (
    MemcachedCache,
    SASLMemcachedCache,
    SpreadSASLMemcachedCache,
)
from flask_stash.core.api import MISS, Backend, SupportsAtomicAdd, SupportsIncrement, SupportsLock
from flask_stash.core.backends._urls import memcached_url
from flask_stash.core.backends.memcached import (
    LAST_TIMESTAMP,
    RELATIVE_TTL_LIMIT,
    MemcachedBackend,
    SASLMemcachedBackend,
    expire_for,
    lock_key,
    wire_key,
)
from flask_stash.core.errors import BackendError, ConfigurationError, EntryTooLarge
from flask_stash.core.memoize import memoize
from flask_stash.core.store import Store
from flask_stash.testing import BackendContract, FakeClock

from .. import servers
from .memcachedkit import remaining_ttl, text_client

pytestmark = pytest.mark.server

DAY = 86400
# memcached expires items on a clock that ticks once a second, a few milliseconds late at
# worst: a TTL of n seconds ends between n - 1 and n seconds later. Contract waits get
# this much slack past the tick.
TICK_SLACK = 0.25


@pytest.fixture(scope="module")
def big_item_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[servers.Server]]:
    """Two servers of our own, flushed by the contract, storing items up to 2 MiB (the
    contract stores a 1 MiB value; memcached's default limit counts the key too)."""
    binary = servers.require_binary("memcached")
    workdir = tmp_path_factory.mktemp("memcached-contract")
    with contextlib.ExitStack() as stack:
        nodes = []
        for _ in range(2):
            port = servers.free_port()
            args = [binary, "-l", servers.HOST, "-p", str(port), "-U", "0", "-m", "64"]
            args += ["-I", "2m", "-u", "root"]
            nodes.append(stack.enter_context(servers.running(args, port, workdir)))
        yield nodes


@pytest.fixture
def node(memcached_pair: list[servers.Server]) -> servers.Server:
    return memcached_pair[0]


@pytest.fixture
def backend(node: servers.Server) -> Iterator[MemcachedBackend]:
    """One node of the shared pair: tests use unique keys and never flush it."""
    with contextlib.closing(MemcachedBackend([node.address])) as made:
        yield made


@pytest.fixture
def key() -> str:
    return f"t:{uuid.uuid4().hex}"


@pytest.fixture
def raw(node: servers.Server) -> Iterator[Client]:
    """A plain pymemcache client on the same server, to look behind the backend."""
    with text_client(node) as client:
        yield client


def count_round_trips(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every command pymemcache sends (each one write + one read), by name."""
    sent: list[bytes] = []
    for method in ("_fetch_cmd", "_store_cmd", "_misc_cmd"):
        original = getattr(Client, method)

        def counted(self: Client, *args: Any, _original: Any = original, **kw: Any) -> Any:
            sent.append(args[0] if isinstance(args[0], bytes) else args[1])
            return _original(self, *args, **kw)

        monkeypatch.setattr(Client, method, counted)
    return sent


def wait_until(condition: Callable[[], object], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {seconds}s waiting for {what}"
        time.sleep(0.02)


# -- the contract ---------------------------------------------------------------------------


class TestMemcachedOneNode(BackendContract):
    follows_clock = False

    @pytest.fixture(autouse=True)
    def _addresses(self, big_item_nodes: list[servers.Server]) -> None:
        self.addresses = [big_item_nodes[0].address]

    def make_backend(self, clock: FakeClock) -> Backend:
        return MemcachedBackend(self.addresses)

    def ttl(self, seconds: float) -> float:
        # Half the contract's seconds: the shortest, 0.5 s, is still one whole tick.
        return seconds / 2

    def wait(self, clock: FakeClock, seconds: float) -> None:
        time.sleep(seconds + TICK_SLACK)

    def test_capabilities(self, backend: Backend) -> None:
        assert isinstance(backend, SupportsAtomicAdd)
        assert isinstance(backend, SupportsIncrement)
        assert isinstance(backend, SupportsLock)


class TestMemcachedTwoNodes(TestMemcachedOneNode):
    @pytest.fixture(autouse=True)
    def _addresses(self, big_item_nodes: list[servers.Server]) -> None:
        self.addresses = [n.address for n in big_item_nodes]

    def wait(self, clock: FakeClock, seconds: float) -> None:
        pytest.skip("expiry is each server's own: the one-node run checks it")


# -- round trips ----------------------------------------------------------------------------


def memoized_double(store: Store) -> tuple[Callable[[int], int], list[int]]:
    calls: list[int] = []

    @memoize(store, 60)
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    return double, calls


def test_memoize_hit_is_one_round_trip(
    backend: MemcachedBackend, raw: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    double, calls = memoized_double(Store(backend, key_prefix=f"{uuid.uuid4().hex}:"))
    assert double(21) == 42
    before = raw.stats()
    sent = count_round_trips(monkeypatch)
    assert double(21) == 42
    trips = list(sent)
    after = raw.stats()
    assert trips == [b"get"]  # one multi-get: the entry and its version stamp
    assert after[b"cmd_get"] - before[b"cmd_get"] == 2
    assert after[b"get_hits"] - before[b"get_hits"] == 2
    assert calls == [21]


def test_memoize_hit_on_two_nodes_is_one_round_trip(
    memcached_pair: list[servers.Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry and its version stamp share a ``{hash tag}``, so they live on one node."""
    addresses = [n.address for n in memcached_pair]
    with contextlib.closing(MemcachedBackend(addresses)) as backend:
        double, calls = memoized_double(Store(backend, key_prefix=f"{uuid.uuid4().hex}:"))
        assert [double(x) for x in range(8)] == [2 * x for x in range(8)]
        sent = count_round_trips(monkeypatch)
        assert [double(x) for x in range(8)] == [2 * x for x in range(8)]
    assert sent == [b"get"] * 8  # one multi-get per hit
    assert calls == list(range(8))


def test_keys_without_a_tag_still_spread_over_the_nodes(
    memcached_pair: list[servers.Server],
) -> None:
    from flask_stash.core.backends.memcached import routing_key

    assert routing_key("p:memo:{mod.f}:abc") == "mod.f"
    assert routing_key(b"x{}y") == b"x{}y"  # an empty tag does not count
    addresses = [n.address for n in memcached_pair]
    with contextlib.closing(MemcachedBackend(addresses)) as backend:
        backend.set_many({f"spread-{i}": b"v" for i in range(40)}, 60)
        counts = []
        for node in memcached_pair:
            client = Client((servers.HOST, node.port))
            try:
                counts.append(sum(client.get(f"spread-{i}") is not None for i in range(40)))
            finally:
                client.close()
    assert sum(counts) == 40
    assert min(counts) > 0


# -- keys -----------------------------------------------------------------------------------

AWKWARD_KEYS = [
    "x" * 300,
    "x" * 301,
    "a b",
    "a\nb",
    "a\r\nget other",
    "a\x00b",
    "a\tb",
    "a\x7fb",
    "~tilde",
    "clé été",
    "\ud800 lone surrogate",
    "x" * 250,
    "é" * 126,  # 252 bytes
]


def test_awkward_keys_round_trip_and_stay_distinct(backend: MemcachedBackend, key: str) -> None:
    keys = [key + k for k in AWKWARD_KEYS]
    # A caller's key that spells another key's hashed form must not collide with it.
    keys.append(wire_key(keys[2]).decode())
    backend.set_many({k: str(i).encode() for i, k in enumerate(keys)}, 60)
    assert backend.get_many(keys) == [str(i).encode() for i in range(len(keys))]
    assert [backend.get(k) for k in keys] == [str(i).encode() for i in range(len(keys))]
    assert len({wire_key(k) for k in keys}) == len(keys)
    assert backend.delete_many(keys) == len(keys)


def test_wire_keys_are_valid_memcached_keys() -> None:
    for k in AWKWARD_KEYS:
        wire = wire_key(k)
        assert len(wire) <= 250
        assert not any(b <= 0x20 or b == 0x7F for b in wire)
        assert wire == wire_key(k)  # deterministic
    assert wire_key("plain:key") == b"plain:key"  # readable when memcached can take it
    assert wire_key("x" * 250) == b"x" * 250
    assert wire_key("x" * 251).startswith(b"~h:")
    # The limit is in bytes: 125 two-byte characters are exactly 250 bytes.
    assert wire_key("é" * 125) == ("é" * 125).encode()
    assert wire_key("é" * 125 + "a").startswith(b"~h:")
    assert wire_key("x" * 251) != wire_key("x" * 252)  # hashed, never truncated
    assert lock_key("plain:key") != wire_key("plain:key")


def test_get_many_keeps_order_and_duplicates(backend: MemcachedBackend, key: str) -> None:
    backend.set_many({key + "a": b"1", key + "b": b"2"}, 60)
    got = backend.get_many([key + "b", key + "zz", key + "a", key + "b"])
    assert got == [b"2", MISS, b"1", b"2"]
    assert backend.get_many([]) == []


# -- TTLs -----------------------------------------------------------------------------------


def test_expire_for() -> None:
    now = 1_800_000_000.5
    assert expire_for(None) == 0
    assert expire_for(0.001) == 1
    assert expire_for(1) == 1
    assert expire_for(2.5) == 3
    assert expire_for(RELATIVE_TTL_LIMIT) == RELATIVE_TTL_LIMIT
    assert (
        expire_for(RELATIVE_TTL_LIMIT + 0.5, lambda: now) == 1_800_000_000 + RELATIVE_TTL_LIMIT + 1
    )
    assert expire_for(40 * DAY, lambda: now) == 1_800_000_000 + 40 * DAY
    assert expire_for(100 * 365 * DAY, lambda: now) == LAST_TIMESTAMP
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="ttl"):
            expire_for(bad)


def test_ttl_over_30_days_is_stored_and_readable(
    backend: MemcachedBackend, raw: Client, key: str
) -> None:
    # Sent as a relative 40 days, memcached would read a date in 1970: expired at once.
    backend.set(key, b"long", 40 * DAY)
    assert backend.get(key) == b"long"
    remaining = remaining_ttl(raw, wire_key(key))
    assert remaining is not None
    assert 40 * DAY - 5 <= remaining <= 40 * DAY + 1
    assert backend.add(key + "add", b"v", 31 * DAY)
    assert backend.get(key + "add") == b"v"


def test_sub_second_ttl_is_one_second_never_forever(
    backend: MemcachedBackend, raw: Client, key: str
) -> None:
    backend.set(key, b"brief", 0.2)
    assert remaining_ttl(raw, wire_key(key)) in (0, 1)  # -1 would mean "never expires"
    wait_until(lambda: backend.get(key) is MISS, 3, "a 0.2 s TTL to expire")


def test_no_ttl_never_expires(backend: MemcachedBackend, raw: Client, key: str) -> None:
    backend.set(key, b"v", None)
    assert remaining_ttl(raw, wire_key(key)) == -1


# -- sizes ----------------------------------------------------------------------------------


def test_oversized_value_is_refused_before_sending(
    backend: MemcachedBackend, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = count_round_trips(monkeypatch)
    big = b"x" * (2 * 1024 * 1024)
    with pytest.raises(EntryTooLarge, match="max_value_size"):
        backend.set(key, big, 60)
    with pytest.raises(EntryTooLarge):
        backend.set_many({key + "small": b"s", key: big}, 60)
    with pytest.raises(EntryTooLarge):
        backend.add(key, big, 60)
    assert sent == []  # nothing reached the server, not even the small value


def test_oversized_value_is_a_counted_store_error(backend: MemcachedBackend, key: str) -> None:
    store = Store(backend)
    assert store.set(key, b"x" * (2 * 1024 * 1024)) is False
    assert store.stats.get("errors") == 1
    assert store.get(key) is MISS
    assert store.set(key, "small") is True  # the backend is still fine


def test_server_size_refusal_is_entry_too_large(backend: MemcachedBackend, key: str) -> None:
    # Exactly 1 MiB passes our check, but the server's 1 MiB limit counts the key too.
    with pytest.raises(EntryTooLarge, match="too large"):
        backend.set(key, b"x" * 1024 * 1024, 60)
    backend.set(key, b"fine", 60)
    assert backend.get(key) == b"fine"


def test_set_many_names_the_keys_not_stored() -> None:
    class Refusing:
        def set_many(self, values: dict[bytes, bytes], **kw: Any) -> list[bytes]:
            return [wire_key("b c")]

    backend = MemcachedBackend(client=Refusing())
    with pytest.raises(BackendError, match="'b c'"):
        backend.set_many({"a": b"1", "b c": b"2"}, None)


# -- failures -------------------------------------------------------------------------------


def test_closed_port_fails_fast_and_open() -> None:
    port = servers.free_port()
    with contextlib.closing(MemcachedBackend([f"127.0.0.1:{port}"])) as backend:
        store = Store(backend)
        started = time.monotonic()
        assert store.get("k") is MISS
        assert store.set("k", 1) is False
        assert store.add("k", 1) is False
        assert store.incr("n") is None
        assert time.monotonic() - started < 3
        # The breaker opens after three failures: the fourth call is not made.
        assert store.stats.get("errors") == 3
        assert store.stats.get("backend_skips") == 1
        with pytest.raises(BackendError) as caught:
            backend.get("k")
        assert isinstance(caught.value.original, OSError)


def test_one_node_down_the_other_serves_and_it_comes_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flask_stash")
    nodes = servers.memcached_nodes(tmp_path, 2)
    with nodes as (a, b), contextlib.closing(
        MemcachedBackend([a.address, b.address], retry_attempts=1, retry_timeout=0.05,
                         dead_timeout=0.5)
    ) as backend:  # fmt: skip
        store = Store(backend, key_prefix="dn:")
        keys = [f"k{i}" for i in range(24)]
        assert store.set_many({k: k for k in keys}) == keys
        with client_for(b) as raw_b:
            on_b = [k for k in keys if raw_b.get(wire_key("dn:" + k)) is not None]
        on_a = [k for k in keys if k not in on_b]
        assert on_a
        assert on_b
        crash(b)

        started = time.monotonic()
        assert store.get_many(on_a) in (on_a, [MISS] * len(on_a))
        assert store.get(on_b[0]) is MISS  # fail open: a miss, never an exception
        assert all(store.get(k) == k for k in on_a)  # the live node keeps serving
        assert time.monotonic() - started < 3
        assert store.stats.get("errors") >= 1
        # After retry_attempts failures the dead node leaves the ring: its keys are
        # cached on the live node meanwhile.
        wait_until(lambda: store.set(on_b[0], "moved") and store.get(on_b[0]) == "moved", 5,
                       "the dead node's keys to move to the live one")  # fmt: skip
        assert all(store.get(k) == k for k in on_a)

        with servers.running(b.args, b.port, tmp_path) as b_again, client_for(b_again) as raw:
            wire = wire_key("dn:" + on_b[1])
            wait_until(lambda: store.set(on_b[1], "back") and raw.get(wire) is not None, 10,
                           "the restarted node to be used again")  # fmt: skip
            assert store.get(on_b[1]) == "back"
    # One line when the server was left out, one when it was back: not one per call.
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "flask_stash"]
    assert [level for level, _ in lines] == ["WARNING", "INFO"], lines
    assert lines[0][1] == (
        f"memcached server {b.address} is failing; its keys go to the other servers until "
        "it answers again"
    )
    back_after = lines[1][1].removeprefix(f"memcached server {b.address} is back after ")
    assert 0 < float(back_after.removesuffix(" s")) < 30  # how long it was left out


def crash(server: servers.Server) -> None:
    """Kill a server at once (a graceful stop waits for memcached's next clock tick)."""
    server.process.kill()
    server.process.wait(timeout=10)


@contextlib.contextmanager
def client_for(server: servers.Server) -> Iterator[Client]:
    client = Client(("127.0.0.1", server.port), default_noreply=False, timeout=2)
    try:
        yield client
    finally:
        client.close()


def test_threads_hitting_a_dead_node_get_only_backend_errors(tmp_path: Path) -> None:
    with servers.memcached_nodes(tmp_path, 2) as (a, b):
        crash(b)
        fast_retry = MemcachedBackend(
            [a.address, b.address], retry_attempts=1, retry_timeout=0.0, dead_timeout=0.05
        )
        with contextlib.closing(fast_retry) as backend:
            store = Store(backend, fail_open=True)
            barrier = threading.Barrier(8)

            def hammer(i: int) -> None:
                barrier.wait()
                for n in range(100):
                    store.set(f"k{i}:{n}", n)
                    store.get(f"k{i}:{n}")

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(hammer, range(8)))  # any non-BackendError would raise here


# -- atomic operations ---------------------------------------------------------------------


def test_add_has_one_winner_among_threads(backend: MemcachedBackend, key: str) -> None:
    barrier = threading.Barrier(8)

    def contender(i: int) -> bool:
        barrier.wait()
        return backend.add(key, str(i).encode(), 60)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(contender, range(8)))
    assert results.count(True) == 1
    assert backend.get(key) == str(results.index(True)).encode()


def test_incr_semantics(backend: MemcachedBackend, raw: Client, key: str) -> None:
    assert backend.incr(key, 3, 60) == 3  # absent: created with the TTL
    assert backend.incr(key, 4, None) == 7  # native incr
    assert remaining_ttl(raw, wire_key(key)) in range(55, 61)  # ...keeps the expiry
    assert backend.incr(key, -10, 60) == -3  # decr would stop at 0
    assert backend.get(key) == b"-3"
    assert backend.incr(key, 1, 60) == -2  # memcached cannot incr "-3": compare-and-set
    assert backend.incr(key, 5, 60) == 3
    assert backend.incr(key, 0, 60) == 3
    assert backend.incr(key + "neg", -2, None) == -2
    assert backend.incr(key + "big", 2**70, None) == 2**70
    backend.set(key + "text", b"abc", 60)
    with pytest.raises(TypeError, match="integer"):
        backend.incr(key + "text", 1, 60)
    with pytest.raises(TypeError, match="integer"):
        backend.incr(key + "text", -1, 60)
    with pytest.raises(TypeError):
        backend.incr(key, 1.5, 60)  # type: ignore[arg-type]


def test_incr_is_exact_under_threads(backend: MemcachedBackend, key: str) -> None:
    barrier = threading.Barrier(8)

    def worker(_: int) -> None:
        barrier.wait()
        for _ in range(20):
            backend.incr(key, 2, 60)
            backend.incr(key, -3, 60)  # crosses zero: native incr and CAS interleave

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    assert backend.get(key) == str(8 * 20 * -1).encode()


def test_store_incr_converts_a_stored_integer(backend: MemcachedBackend, key: str) -> None:
    store = Store(backend)
    store.set(key, 41)
    assert store.incr(key) == 42
    assert store.incr(key, -50) == -8
    assert store.get(key) == -8


def test_lock_semantics(backend: MemcachedBackend, key: str) -> None:
    backend.set(key, b"data", 60)
    assert backend.acquire_lock(key, "a", 5)
    assert backend.get(key) == b"data"  # locks live apart from data keys
    assert not backend.acquire_lock(key, "b", 5)
    assert not backend.release_lock(key, "b")
    assert backend.release_lock(key, "a")
    assert not backend.release_lock(key, "a")
    assert backend.acquire_lock(key, "b", 0.1)  # lease rounded up to 1 s, not "forever"
    wait_until(lambda: backend.acquire_lock(key, "c", 5), 3, "a 0.1 s lease to end")
    with pytest.raises(TypeError):
        backend.acquire_lock(key, "d", None)  # type: ignore[arg-type]


def test_release_never_removes_a_new_owners_lock(
    backend: MemcachedBackend, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert backend.acquire_lock(key, "old", 5)
    real_gets = backend._client.gets

    def gets_then_lose_the_lease(wire: bytes) -> Any:
        found = real_gets(wire)  # "old" reads its lock...
        backend._client.delete(wire, noreply=False)  # ...its lease ends...
        assert backend.acquire_lock(key, "new", 5)  # ...and "new" takes the lock
        return found

    monkeypatch.setattr(backend._client, "gets", gets_then_lose_the_lease)
    assert backend.release_lock(key, "old") is False
    monkeypatch.undo()
    assert not backend.acquire_lock(key, "third", 5)  # "new" still holds it
    assert backend.release_lock(key, "new")


# -- configuration --------------------------------------------------------------------------


def test_server_forms() -> None:
    cases: list[tuple[Any, list[str]]] = [
        (None, ["127.0.0.1:11211"]),
        ("h1:1,h2", ["h1:1", "h2:11211"]),
        (["h1:1", ("h2", 2)], ["h1:1", "h2:2"]),
        (("h", 3), ["h:3"]),
        (["[::1]:4", "unix:/tmp/mc.sock"], ["[::1]:4", "/tmp/mc.sock"]),
        ("memcached://h1:5,h2:6", ["h1:5", "h2:6"]),
    ]
    for servers_given, expected in cases:
        with contextlib.closing(MemcachedBackend(servers_given)) as backend:  # never connects
            assert backend.servers == expected
    with contextlib.closing(MemcachedBackend(url="memcached:///run/mc.sock")) as backend:
        assert backend.servers == ["/run/mc.sock"]
    assert memcached_url("memcached://u:p%40ss@h:7") == ([("h", 7)], "u", "p@ss")


@pytest.mark.parametrize(
    "options",
    [
        {"servers": []},
        {"servers": ["h:notaport"]},
        {"servers": ["h:70000"]},
        {"servers": [42]},
        {"url": "redis://h"},
        {"url": "memcached://h:1?timeout=3"},
        {"url": "memcached://user:pw@h"},
        {"servers": ["h"], "url": "memcached://h"},
        {"timeout": 0},
        {"connect_timeout": -1},
        {"timeout": float("inf")},
        {"servers": ["a", "b"], "retry_attempts": -1},
        {"max_value_size": 0},
    ],
)
def test_bad_configuration_fails_at_construction(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        MemcachedBackend(**options)


# -- Flask-Caching compatibility ---------------------------------------------------------


def test_flask_app_memoize_and_cached(memcached_pair: list[servers.Server]) -> None:
    app = Flask(__name__)
    cache = Cache(
        app,
        config={
            "CACHE_TYPE": "flask_stash.backends.memcached.MemcachedCache",
            "CACHE_MEMCACHED_SERVERS": [n.address for n in memcached_pair],
            "CACHE_KEY_PREFIX": f"app{uuid.uuid4().hex}:",
        },
    )
    calls: list[str] = []

    @cache.memoize(60)
    def shout(word: str) -> str:
        calls.append(word)
        return word.upper()

    @app.route("/page")
    @cache.cached(60)
    def page() -> str:
        calls.append("page")
        return f"page {len(calls)}"

    try:
        with app.app_context():
            assert shout("hi") == shout("hi") == "HI"
            assert isinstance(cache.cache, MemcachedCache)
            assert cache.set("direct", {"a": 1})
            assert cache.get("direct") == {"a": 1}
            assert cache.cache.inc("counter") == 1
        client = app.test_client()
        first, second = client.get("/page"), client.get("/page")
        assert first.data == second.data == b"page 2"
        assert calls == ["hi", "page"]
        assert cache.stats().get("errors") is None
    finally:
        with app.app_context():
            cache.cache.close()


def test_factory_reads_flask_caching_config(memcached_pair: list[servers.Server]) -> None:
    base = {"CACHE_MEMCACHED_SERVERS": None, "CACHE_KEY_PREFIX": "p:"}
    kwargs = {"default_timeout": 300, "ignore_delete_many_errors": False}
    made = MemcachedCache.factory(None, base, [], dict(kwargs))
    assert isinstance(made, MemcachedCache)
    assert made.store.backend.servers == ["127.0.0.1:11211"]  # type: ignore[attr-defined]
    made.close()
    addresses = [n.address for n in memcached_pair]
    url = "memcached://" + ",".join(addresses)
    config = {**base, "CACHE_MEMCACHED_SERVERS": ["ignored:1"]}
    made = MemcachedCache.factory(None, config, [], {**kwargs, "url": url, "timeout": 0.5})
    assert made.store.backend.servers == addresses  # type: ignore[attr-defined]
    assert made.set("k", "v")
    assert made.get("k") == "v"
    made.close()
    bad = {"CACHE_OPTIONS": {"bogus_option": 1}}
    with pytest.raises(ConfigurationError, match="bogus_option"):
        Cache(
            Flask(__name__),
            config={**bad, "CACHE_TYPE": "flask_stash.backends.memcached.MemcachedCache"},
        )


# -- SASL (pylibmc) -----------------------------------------------------------------------


@pytest.mark.parametrize("cls", [SASLMemcachedCache, SpreadSASLMemcachedCache])
def test_sasl_without_pylibmc_is_a_configuration_error(
    cls: type[MemcachedCache], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pylibmc", None)  # import pylibmc -> ImportError
    with pytest.raises(ConfigurationError, match=r"needs pylibmc: pip install pylibmc"):
        cls(["127.0.0.1:11211"], username="u", password="p")
    with pytest.raises(ConfigurationError, match="needs pylibmc"):
        Cache(Flask(__name__), config={"CACHE_TYPE": f"{cls.__module__}.{cls.__name__}"})
    config = {"CACHE_MEMCACHED_SERVERS": None, "CACHE_KEY_PREFIX": ""}
    with pytest.raises(ConfigurationError, match="needs pylibmc"):
        MemcachedCache.factory(None, config, [], {"url": "memcached://u:p@h:1"})


def fake_pylibmc() -> types.ModuleType:
    """Just enough of pylibmc's API, over a dict, to check the SASL backend's wiring."""
    lib = types.ModuleType("pylibmc")
    error = type("Error", (Exception,), {})
    not_found = type("NotFound", (error,), {})

    class FakeClient:
        made: ClassVar[list[FakeClient]] = []

        def __init__(self, servers: list[str], **options: Any) -> None:
            self.servers, self.options, self.disconnects = servers, options, 0
            self.data: dict[bytes, tuple[bytes, int]] = {}
            self.ids = itertools.count(1)
            FakeClient.made.append(self)

        def clone(self) -> FakeClient:
            return self

        def get(self, key: bytes) -> Any:
            if key.startswith(b"boom"):
                raise error("connection lost")
            return self.data.get(key, (None,))[0]

        def get_multi(self, keys: list[bytes]) -> dict[bytes, bytes]:
            return {k: self.data[k][0] for k in keys if k in self.data}

        def set(self, key: bytes, value: bytes, time: int = 0) -> bool:
            self.data[key] = (value, next(self.ids))
            return True

        def set_multi(self, values: dict[bytes, bytes], time: int = 0) -> list[bytes]:
            for k, v in values.items():
                self.set(k, v, time)
            return []

        def add(self, key: bytes, value: bytes, time: int = 0) -> bool:
            return key not in self.data and self.set(key, value, time)

        def delete(self, key: bytes) -> bool:
            return self.data.pop(key, None) is not None

        def incr(self, key: bytes, delta: int) -> int:
            if key not in self.data:
                raise not_found(key)
            if not self.data[key][0].isdigit():
                raise error("non-numeric")
            self.set(key, str(int(self.data[key][0]) + delta).encode())
            return int(self.data[key][0])

        def gets(self, key: bytes) -> tuple[bytes | None, int | None]:
            return self.data.get(key, (None, None))

        def cas(self, key: bytes, value: bytes, cas: int, time: int = 0) -> bool:
            if key not in self.data or self.data[key][1] != cas:
                return False
            if time < 0:
                del self.data[key]
            else:
                self.set(key, value)
            return True

        def flush_all(self) -> bool:
            self.data.clear()
            return True

        def disconnect_all(self) -> None:
            self.disconnects += 1

    class FakePool(queue.Queue[FakeClient]):
        def __init__(self, client: FakeClient, size: int) -> None:
            super().__init__()
            for _ in range(size):
                self.put(client.clone())

        @contextlib.contextmanager
        def reserve(self, block: bool = False) -> Iterator[FakeClient]:
            client = self.get(block)
            try:
                yield client
            finally:
                self.put(client)

    vars(lib).update(Client=FakeClient, ClientPool=FakePool, Error=error, NotFound=not_found)
    return lib


def test_sasl_backend_drives_pylibmc(monkeypatch: pytest.MonkeyPatch) -> None:
    lib = fake_pylibmc()
    monkeypatch.setitem(sys.modules, "pylibmc", lib)
    backend = SASLMemcachedBackend(url="memcached://user:secret@h1:1,h2", pool_size=2)
    client = lib.Client.made[0]
    assert client.servers == ["h1:1", "h2:11211"]
    assert client.options["username"] == "user"
    assert client.options["password"] == "secret"
    assert client.options["binary"] is True
    assert client.options["behaviors"]["cas"] is True
    backend.set_many({"a b": b"1", "c": b"2"}, 60)
    assert backend.get_many(["a b", "c", "d"]) == [b"1", b"2", MISS]
    assert backend.add("c", b"3", None) is False
    assert backend.incr("n", 2, None) == 2
    assert backend.incr("n", -5, None) == -3
    assert backend.incr("n", 1, None) == -2  # refused natively: compare-and-set
    assert backend.acquire_lock("L", "t", 5)
    assert backend.release_lock("L", "t")
    assert backend.delete("c")
    assert backend.get("c") is MISS
    with pytest.raises(BackendError, match="connection lost"):
        backend.get("boom")
    backend.clear()
    assert backend.get("a b") is MISS
    backend.close()
    assert client.disconnects >= 1
    made = SASLMemcachedCache.factory(
        None,
        {"CACHE_MEMCACHED_SERVERS": ["h:1"], "CACHE_KEY_PREFIX": "",
         "CACHE_MEMCACHED_USERNAME": "cfg-user", "CACHE_MEMCACHED_PASSWORD": "cfg-pw"},
        [],
        {"default_timeout": 300},
    )  # fmt: skip
    assert lib.Client.made[-1].options["username"] == "cfg-user"
    made.close()


def test_class_names_and_urls_reach_this_backend(memcached_pair: list[servers.Server]) -> None:
    from flask_stash import backends

    if backends.MemcachedCache.__module__ != MemcachedCache.__module__:
        pytest.skip("MemcachedCache/memcached:// are not wired to flask_stash.backends.memcached")
    addresses = [n.address for n in memcached_pair]
    configs: list[dict[str, Any]] = [
        {"CACHE_TYPE": "MemcachedCache", "CACHE_MEMCACHED_SERVERS": addresses},
        {"CACHE_TYPE": "memcached", "CACHE_MEMCACHED_SERVERS": addresses},
        {"CACHE_URL": "memcached://" + ",".join(addresses)},
        {"CACHE_TYPE": "memcached://" + ",".join(addresses)},
    ]
    for config in configs:
        app = Flask(__name__)
        cache = Cache(app, config={**config, "CACHE_KEY_PREFIX": f"{uuid.uuid4().hex}:"})
        with app.app_context():
            assert isinstance(cache.cache, MemcachedCache)
            assert cache.cache.store.backend.servers == addresses  # type: ignore[attr-defined]
            assert cache.set("k", 1)
            assert cache.get("k") == 1
            cache.cache.close()
