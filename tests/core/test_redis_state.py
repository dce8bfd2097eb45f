"""RedisBackend on one real redis-server, command by command: what reaches the server (TTLs
in milliseconds, batches, pipelines, seen through ``MONITOR``), what comes back (misses,
counters, evictions, keys that are not UTF-8), and how failures surface (``BackendError``
with the driver's error, ``TypeError`` for a caller's bug), subscriptions included.

The family's shared behaviour on all three flavours is in ``test_redis_family.py``; this
module needs the single server only, so the mutation run of ``redis.py`` starts no cluster.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from flask_stash.core.api import MISS
from flask_stash.core.backends import redis as redis_module
from flask_stash.core.backends.redis import RedisBackend, Subscription
from flask_stash.core.errors import BackendError, ConfigurationError
from flask_stash.testing import BackendContract, FakeClock

from .. import servers
from ..servers import HOST
from .redisfamily import unique

pytestmark = pytest.mark.server

CONFIRM_FAILED = "Redis subscribe failed: the server did not confirm the subscription"
RECONNECTED = "Redis subscribe failed: the connection was re-established"


@pytest.fixture
def backend(redis_single: servers.Server) -> Iterator[RedisBackend]:
    """A backend on database 2 of the session's server, under a namespace of its own."""
    with RedisBackend(host=HOST, port=redis_single.port, db=2, namespace=unique("st")) as made:
        yield made
        made.clear()


def admin(server: servers.Server, db: int = 0) -> redis.Redis:
    """A plain client for looking at the server (a timeout, so a wrong test cannot hang)."""
    return redis.Redis(host=HOST, port=server.port, db=db, socket_timeout=5)


def commands_sent(server: servers.Server, action: Callable[[], object]) -> list[str]:
    """The commands ``server`` received while ``action`` ran, as ``MONITOR`` shows them
    (``SET key value PX 1000``): what the backend asked for, not what it says it asked."""
    marker = f"end-of-action-{uuid.uuid4().hex}"
    with admin(server) as watcher, admin(server) as signaller:
        signaller.ping()  # connected first: no handshake of its own after the action
        with watcher.monitor() as monitor:
            action()
            signaller.echo(marker)
            commands: list[str] = []
            while marker not in (command := monitor.next_command()["command"]):
                commands.append(command)
    return commands


class TestRedisSingleContract(BackendContract):
    """The backend contract on the single server alone."""

    follows_clock = False

    @pytest.fixture(autouse=True)
    def _isolate(self, redis_single: servers.Server) -> None:
        self.server = redis_single
        self.namespace = unique("contract")

    @pytest.fixture
    def key(self) -> str:
        return f"{self.namespace}{uuid.uuid4().hex}"

    def make_backend(self, clock: FakeClock) -> RedisBackend:
        return RedisBackend(host=HOST, port=self.server.port, db=3, namespace=self.namespace)


# -- TTLs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ttl", "px"),
    [
        (1, 1000),
        (1.0001, 1001),  # a fraction of a millisecond rounds up: never shorter than asked
        (0.1 + 0.2, 300),  # 300.00000000000006 ms is float noise, not a millisecond more
        (0.0004, 1),  # below a millisecond: 1 ms, not 0 (which Redis refuses)
        (30 * 86400, 30 * 86400 * 1000),
    ],
)
def test_every_write_sends_its_ttl_in_whole_milliseconds_rounded_up(
    backend: RedisBackend, redis_single: servers.Server, ttl: float, px: int
) -> None:
    key = f"{backend.namespace}ttl"

    def write() -> None:
        backend.set(key, b"v", ttl)
        backend.set_many({f"{key}:a": b"a", f"{key}:b": b"b"}, ttl)
        backend.add(f"{key}:new", b"n", ttl)
        backend.acquire_lock(f"{key}:lock", "token", ttl)
        backend.incr(f"{key}:count", 3, ttl)

    sent = [c for c in commands_sent(redis_single, write) if c.startswith(("SET", "EVAL"))]
    # redis-py 5 sends PX before NX, later versions after it: the same command to Redis.
    assert [
        c.removesuffix(" NX").replace(" PX", " NX PX") if c.endswith(" NX") else c for c in sent[:5]
    ] == [
        f"SET {key} v PX {px}",
        f"SET {key}:a a PX {px}",
        f"SET {key}:b b PX {px}",
        f"SET {key}:new n NX PX {px}",
        f"SET {key}:lock token NX PX {px}",
    ]
    assert sent[5].startswith("EVAL ")
    assert sent[5].endswith(f" 1 {key}:count 3 {px}")  # one key, then delta and TTL
    assert len(sent) == 6


def test_no_ttl_means_no_expiry_on_the_server(
    backend: RedisBackend, redis_single: servers.Server
) -> None:
    key = f"{backend.namespace}forever"

    def write() -> None:
        backend.set(key, b"v", None)
        backend.set_many({f"{key}:a": b"a"}, None)
        backend.add(f"{key}:new", b"n", None)
        assert backend.incr(f"{key}:count", 2, None) == 2

    sent = [c for c in commands_sent(redis_single, write) if backend.namespace in c]
    assert sent == [
        f"SET {key} v",
        f"SET {key}:a a",
        f"SET {key}:new n NX",
        f"INCRBY {key}:count 2",  # no script needed when there is no TTL to give
    ]
    assert backend.client.pttl(f"{key}:count") == -1


def test_a_new_counter_gets_the_ttl_an_existing_one_keeps_its_own(backend: RedisBackend) -> None:
    key = f"{backend.namespace}counter"
    assert backend.incr(key, 5, 100) == 5
    assert 99_000 < backend.client.pttl(key) <= 100_000
    backend.client.pexpire(key, 50_000)
    assert backend.incr(key, -2, 100) == 3
    assert backend.client.pttl(key) <= 50_000
    assert backend.get(key) == b"3"


# -- values and keys -----------------------------------------------------------------------------


def test_a_value_that_is_not_bytes_is_the_callers_bug(backend: RedisBackend) -> None:
    key = f"{backend.namespace}typed"
    for write in (
        lambda: backend.set(key, "text", 10),  # type: ignore[arg-type]
        lambda: backend.add(key, "text", 10),  # type: ignore[arg-type]
        lambda: backend.set_many({key: "text"}, 10),  # type: ignore[dict-item]
    ):
        with pytest.raises(TypeError, match="backend values are bytes, not str"):
            write()
    assert backend.get(key) is MISS


def test_counters_refuse_what_is_not_an_integer(backend: RedisBackend) -> None:
    entry = f"{backend.namespace}entry"
    backend.set(entry, b"\x80pickled", 10)
    for ttl in (None, 10):
        with pytest.raises(TypeError, match=f"cannot increment {entry!r}: it does not hold"):
            backend.incr(entry, 1, ttl)
    assert backend.get(entry) == b"\x80pickled"
    # Any other refusal is the server's, not the caller's: a BackendError keeping it.
    listed = f"{backend.namespace}list"
    backend.client.rpush(listed, b"x")
    with pytest.raises(BackendError, match="WRONGTYPE") as raised:
        backend.incr(listed, 1, None)
    assert isinstance(raised.value.original, redis.ResponseError)


def test_empty_batches_ask_nothing_of_the_server(
    backend: RedisBackend, redis_single: servers.Server
) -> None:
    def nothing() -> None:
        assert backend.get_many([]) == []
        assert backend.delete_many([]) == 0
        backend.set_many({}, 10)

    backend.get("connected")
    assert commands_sent(redis_single, nothing) == []


def test_set_many_sends_its_sets_without_a_transaction(
    backend: RedisBackend, redis_single: servers.Server
) -> None:
    # MULTI/EXEC would buy nothing (entries are independent) and cost a round trip.
    keys = [f"{backend.namespace}{i}" for i in range(3)]
    backend.get("connected")
    sent = commands_sent(redis_single, lambda: backend.set_many(dict.fromkeys(keys, b"v"), 10))
    assert sent == [f"SET {key} v PX 10000" for key in keys]
    assert backend.get_many(keys) == [b"v"] * 3


def test_scan_lists_keys_that_are_not_utf8_instead_of_failing(backend: RedisBackend) -> None:
    raw = backend.namespace.encode() + b"\xff\xfe:x"
    backend.client.set(raw, b"v")
    assert list(backend.scan(backend.namespace)) == [f"{backend.namespace}\ufffd\ufffd:x"]


def test_clear_scans_and_unlinks_in_batches(
    backend: RedisBackend, redis_single: servers.Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_module, "SCAN_BATCH", 4)
    keys = [f"{backend.namespace}{i}" for i in range(9)]
    backend.set_many(dict.fromkeys(keys, b"v"), 30)
    sent = commands_sent(redis_single, backend.clear)
    scans = [c for c in sent if c.startswith("SCAN ")]
    unlinked = [c.split()[1:] for c in sent if c.startswith("UNLINK ")]
    assert scans
    assert all(c.endswith("* COUNT 4") for c in scans)
    assert [len(batch) for batch in unlinked] == [4, 4, 1]
    assert sorted(key for batch in unlinked for key in batch) == sorted(keys)
    assert backend.get_many(keys) == [MISS] * 9


def test_clear_and_scan_match_the_namespace_literally(redis_single: servers.Server) -> None:
    namespace = f"{unique('glob')}[1]*?\\"
    with (
        RedisBackend(host=HOST, port=redis_single.port, db=2, namespace=namespace) as ours,
        RedisBackend(host=HOST, port=redis_single.port, db=2) as everything,
    ):
        look_alike = namespace.replace("[1]*?", "1ab")
        everything.set_many({f"{namespace}x": b"ours", f"{look_alike}x": b"theirs"}, 30)
        assert list(ours.scan(namespace)) == [f"{namespace}x"]
        ours.clear()
        assert everything.get_many([f"{namespace}x", f"{look_alike}x"]) == [MISS, b"theirs"]
        everything.delete(f"{look_alike}x")


# -- servers without UNLINK (older than 4.0, or the command renamed away) ------------------------


def test_delete_falls_back_to_del_once_and_remembers(tmp_path: Path) -> None:
    with (
        servers.redis_server(tmp_path, "--rename-command", "UNLINK", '""') as server,
        RedisBackend(host=HOST, port=server.port) as backend,
    ):
        backend.set_many({"a": b"1", "b": b"2", "c": b"3", "d": b"4"}, 30)
        assert backend.delete("a") is True
        errors_after_first = _errors(server)  # (opening a connection costs a few too)
        assert backend.delete("a") is False
        assert backend.delete_many(["b", "c", "absent"]) == 2
        backend.clear()
        assert backend.get_many(["a", "b", "c", "d"]) == [MISS] * 4
        assert _errors(server) == errors_after_first  # UNLINK was not tried again


def _errors(server: servers.Server) -> int:
    """Error replies the server sent so far, to anyone (``errorstat_ERR:count=3`` lines;
    read as text, since redis-py versions parse this section differently)."""
    text = servers.redis_cli("-p", str(server.port), "info", "errorstats")
    return sum(
        int(line.split("count=")[1].split(",")[0])
        for line in text.splitlines()
        if line.startswith("errorstat_")
    )


# -- evictions ------------------------------------------------------------------------------------


def test_evictions_are_the_servers_evicted_keys(tmp_path: Path) -> None:
    extra = ("--maxmemory", "4mb", "--maxmemory-policy", "allkeys-random")
    with (
        servers.redis_server(tmp_path, *extra) as server,
        RedisBackend(host=HOST, port=server.port) as backend,
    ):
        assert backend.evictions() == 0
        backend.set_many({f"k{i}": bytes(64 * 1024) for i in range(128)}, 60)
        evicted = int(backend.client.info("stats")["evicted_keys"])
        assert evicted > 0
        assert backend.evictions() == evicted


# -- clients and addresses --------------------------------------------------------------------


def test_defaults_reach_localhost_6379_database_0() -> None:
    with RedisBackend() as backend:  # nothing is connected before use
        kwargs = backend.client.get_connection_kwargs()
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("localhost", 6379, 0)


def test_an_existing_client_takes_no_options(redis_single: servers.Server) -> None:
    with admin(redis_single) as client:
        for build in (
            lambda: RedisBackend(f"redis://{HOST}:{redis_single.port}/1", host=client),
            lambda: RedisBackend(host=client, socket_timeout=3),
        ):
            with pytest.raises(
                ConfigurationError, match=r"^options cannot be applied to an existing Redis client$"
            ):
                build()


def test_an_existing_client_stays_connected_after_close(redis_single: servers.Server) -> None:
    name = f"owner-{uuid.uuid4().hex[:8]}"
    with redis.Redis(host=HOST, port=redis_single.port, client_name=name) as client:
        backend = RedisBackend(host=client)
        backend.set(f"{name}:k", b"v", 5)  # the client's connection, opened under its name
        backend.close()
        assert name in _client_names(redis_single)  # not disconnected behind its owner's back
        client.delete(f"{name}:k")


def test_close_disconnects_an_own_client(redis_single: servers.Server) -> None:
    name = f"own-{uuid.uuid4().hex[:8]}"
    backend = RedisBackend(host=HOST, port=redis_single.port, client_name=name)
    backend.set(f"{name}:k", b"v", 5)
    assert name in _client_names(redis_single)
    backend.close()
    deadline = time.monotonic() + 5
    while name in _client_names(redis_single):  # the server notices the closed socket
        assert time.monotonic() < deadline, "the connection stayed open"
        time.sleep(0.01)


def _client_names(server: servers.Server) -> list[str]:
    with admin(server) as client:
        return [entry["name"] for entry in client.client_list()]


# -- failures surface as BackendError, keeping the driver's error ----------------------------------


def test_scan_fails_as_a_backend_error_while_iterating() -> None:
    with RedisBackend(host=HOST, port=servers.free_port()) as backend:
        keys = backend.scan("any")  # lazy: nothing sent yet
        with pytest.raises(BackendError, match=r"^Redis scan failed: ") as raised:
            next(keys)
        assert isinstance(raised.value.original, redis.ConnectionError)


def test_subscribing_where_nothing_listens_is_a_backend_error() -> None:
    with RedisBackend(host=HOST, port=servers.free_port()) as backend:
        with pytest.raises(BackendError, match=r"^Redis subscribe failed: ") as raised:
            backend.subscribe("events")
        assert isinstance(raised.value.original, redis.ConnectionError)


# -- subscriptions ---------------------------------------------------------------------------------


def test_subscription_delivers_messages_in_order(backend: RedisBackend) -> None:
    channel = f"{backend.namespace}events"
    started = time.monotonic()
    with backend.subscribe(channel) as messages:
        assert messages.heard_at >= started  # the confirmation was a reply
        assert messages.poll(0.01) is None  # nothing published yet
        backend.publish(channel, b"invalidate:a")
        backend.publish(channel, b"\x00binary")
        backend.publish(f"{channel}:other", b"not ours")
        assert next(messages) == b"invalidate:a"
        heard = messages.heard_at
        assert messages.poll(5) == b"\x00binary"
        assert messages.heard_at >= heard
        assert messages.poll(0.01) is None


def test_a_pong_is_a_reply_but_not_a_message(backend: RedisBackend) -> None:
    channel = f"{backend.namespace}pings"
    with backend.subscribe(channel) as messages:
        before = messages.heard_at
        messages.ping()
        assert messages.poll(5) is None  # the pong: nothing for the caller...
        assert messages.heard_at > before  # ...but proof the connection is alive
        backend.publish(channel, b"after the pong")
        assert messages.poll(5) == b"after the pong"


def test_iterating_waits_through_silences_longer_than_the_socket_timeout(
    redis_single: servers.Server,
) -> None:
    with RedisBackend(host=HOST, port=redis_single.port, socket_timeout=0.2) as backend:
        channel = f"{unique('quiet')}events"
        with backend.subscribe(channel) as messages:
            later = threading.Timer(0.5, backend.publish, (channel, b"late"))
            later.start()
            try:
                assert next(messages) == b"late"
            finally:
                later.join()


def test_a_short_confirm_timeout_is_enough_for_a_healthy_server(backend: RedisBackend) -> None:
    channel = f"{backend.namespace}quick"
    pubsub = backend.client.pubsub()
    with Subscription(pubsub, channel, confirm_timeout=0.5) as messages:
        backend.publish(channel, b"hello")
        assert messages.poll(5) == b"hello"


def test_an_unconfirmed_subscription_fails_after_the_confirm_timeout(
    own_redis: servers.Server,
) -> None:
    with RedisBackend(host=HOST, port=own_redis.port) as backend:
        pubsub = backend.client.pubsub()
        pubsub.ping()  # connected, and a reply (the pong) on its way
        assert pubsub.connection is not None
        assert pubsub.connection.can_read(timeout=5)
        with servers.paused(own_redis):
            started = time.monotonic()
            with pytest.raises(BackendError, match=rf"^{CONFIRM_FAILED}$"):
                Subscription(pubsub, "events", confirm_timeout=0.3)
            assert 0.3 <= time.monotonic() - started < 3
            assert pubsub.connection is None  # closed, not left half subscribed


def test_a_reconnected_subscription_says_messages_may_be_lost(
    backend: RedisBackend, redis_single: servers.Server
) -> None:
    channel = f"{backend.namespace}cut"
    with backend.subscribe(channel) as messages:
        with admin(redis_single) as client:
            client.client_kill_filter(_type="pubsub")
        # redis-py 6 and later reconnect and subscribe again by themselves (messages lost
        # meanwhile: refused); redis-py 5 reports the closed connection.
        closed = r"Redis subscribe failed: Connection closed by server\."
        with pytest.raises(BackendError, match=rf"^({RECONNECTED}|{closed})$"):
            messages.poll(5)


def test_a_lost_server_fails_the_subscription(own_redis: servers.Server) -> None:
    with (
        RedisBackend(host=HOST, port=own_redis.port) as backend,
        backend.subscribe("events") as messages,
    ):
        own_redis.stop()
        with pytest.raises(BackendError, match=r"^Redis subscribe failed: ") as polled:
            messages.poll(5)
        assert isinstance(polled.value.original, redis.ConnectionError)
        with pytest.raises(BackendError, match=r"^Redis subscribe failed: ") as pinged:
            messages.ping()
        assert isinstance(pinged.value.original, redis.ConnectionError)
