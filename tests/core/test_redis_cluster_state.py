"""RedisClusterBackend piece by piece: the per-node breaker (:class:`NodeEjection`) on a fake
clock, then on the session's real cluster what only a cluster does: keys of several slots
in one ``get_many``, a paused node left out while the others serve, evictions summed over
nodes, connections closed on every node.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from flask_stash.core.api import MISS
from flask_stash.core.backends.redis_cluster import (
    NodeEjection,
    RedisClusterBackend,
    _no_cluster_retries,
)
from flask_stash.core.breaker import BACKOFF
from flask_stash.core.errors import BackendError, ConfigurationError
from flask_stash.testing import FakeClock

from .. import servers
from .redisfamily import command_stats, commands_between

# -- NodeEjection: no server ----------------------------------------------------------------


@pytest.fixture
def ejection(clock: FakeClock) -> NodeEjection:
    return NodeEjection(backoff=1.0, max_backoff=5.0, clock=clock)


def test_a_failed_node_is_left_out_for_the_backoff_and_alone(
    ejection: NodeEjection, clock: FakeClock
) -> None:
    ejection.check("n1:7000")  # never failed: in
    ejection.failed("n1:7000", RedisTimeoutError("Timeout reading from socket"))
    assert ejection.out == {"n1:7000": (clock() + 1.0, 1.0)}
    with pytest.raises(RedisConnectionError, match=r"^cluster node n1:7000 is left out after"):
        ejection.check("n1:7000")
    ejection.check("n2:7000")  # the other nodes keep serving
    clock.advance(0.999)
    with pytest.raises(RedisConnectionError):
        ejection.check("n1:7000")
    clock.advance(0.001)
    ejection.check("n1:7000")  # back in once the backoff is over: one probe may go through


def test_each_failure_in_a_row_doubles_the_wait_up_to_the_cap(
    ejection: NodeEjection, clock: FakeClock
) -> None:
    waits = []
    for _ in range(5):
        ejection.failed("n1:7000", RedisConnectionError("refused"))
        back_at, wait = ejection.out["n1:7000"]
        assert back_at == clock() + wait
        waits.append(wait)
        clock.advance(wait)
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_a_node_that_works_again_starts_over(ejection: NodeEjection, clock: FakeClock) -> None:
    ejection.failed("n1:7000", RedisConnectionError("refused"))
    ejection.failed("n1:7000", RedisConnectionError("refused"))
    ejection.worked("n1:7000")
    assert ejection.out == {}
    ejection.check("n1:7000")
    ejection.failed("n1:7000", RedisConnectionError("refused"))
    assert ejection.out["n1:7000"] == (clock() + 1.0, 1.0)


def test_one_warning_per_outage_and_one_line_when_it_ends(
    ejection: NodeEjection, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flask_stash")
    ejection.worked("n1:7000")  # never failed: nothing to say
    ejection.failed("n1:7000", RedisTimeoutError("Timeout reading from socket"))
    clock.advance(1.5)
    ejection.failed("n1:7000", RedisConnectionError("refused"))  # same outage: quiet
    clock.advance(2.25)
    ejection.worked("n1:7000")
    ejection.worked("n1:7000")  # already back: quiet
    ejection.failed("n2:7001", RedisConnectionError("refused"))
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "Redis Cluster node n1:7000 is failing (TimeoutError: Timeout reading from "
            "socket); its keys are served uncached until it answers again",
        ),
        ("INFO", "Redis Cluster node n1:7000 answers again after 3.8 s"),
        (
            "WARNING",
            "Redis Cluster node n2:7001 is failing (ConnectionError: refused); its keys are "
            "served uncached until it answers again",
        ),
    ]


def test_a_node_back_twice_at_once_is_said_once(
    ejection: NodeEjection, caplog: pytest.LogCaptureFixture
) -> None:
    # Two threads see the node out; the other one takes the lock first and brings it back.
    caplog.set_level(logging.INFO, logger="flask_stash")
    ejection.failed("n1:7000", RedisConnectionError("refused"))
    lock = ejection._lock

    class OvertakenLock:
        def __enter__(self) -> None:
            ejection._lock = lock
            ejection.worked("n1:7000")  # the other thread, first
            lock.acquire()

        def __exit__(self, *exc: object) -> None:
            lock.release()

    ejection._lock = OvertakenLock()  # type: ignore[assignment]
    ejection.worked("n1:7000")  # finds it back already: no KeyError, no second line
    assert ejection.out == {}
    assert sum("answers again after" in r.getMessage() for r in caplog.records) == 1


def _attempts(retry: Retry, error: Exception) -> int:
    calls: list[int] = []

    def call() -> None:
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        retry.call_with_retry(call, lambda failure: None)
    return len(calls)


@pytest.mark.parametrize("version", ["6.0.0", "7.4.0", "8.1.0"])
def test_redis_py_6_and_later_get_one_retry_object_that_never_retries(
    monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    monkeypatch.setattr(redis, "__version__", version)
    options = _no_cluster_retries()
    assert set(options) == {"retry"}
    assert _attempts(options["retry"], RedisConnectionError("refused")) == 1
    assert _attempts(options["retry"], RedisTimeoutError("timed out")) == 1


@pytest.mark.parametrize("version", ["5.0.1", "5.3.0"])
def test_redis_py_5_gets_its_own_cluster_retry_count_zero(
    monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    # redis-py 5 took the cluster's count from its own argument; ``retry`` is then the
    # per-connection policy: one immediate retry of a dropped connection, none on a timeout.
    monkeypatch.setattr(redis, "__version__", version)
    options = _no_cluster_retries()
    assert set(options) == {"retry", "cluster_error_retry_attempts"}
    assert options["cluster_error_retry_attempts"] == 0
    assert _attempts(options["retry"], RedisConnectionError("refused")) == 2
    assert _attempts(options["retry"], RedisTimeoutError("timed out")) == 1


# -- configuration: no server -----------------------------------------------------------------


def test_seeds_without_a_port_use_6379_and_the_namespace_defaults_to_none() -> None:
    for made in (
        RedisClusterBackend("redis+cluster://n1,n2:7001/0"),
        RedisClusterBackend(startup_nodes="n1,n2:7001"),
    ):
        with made:
            assert [(n.host, n.port) for n in made._nodes] == [("n1", 6379), ("n2", 7001)]
            assert made.namespace == ""  # clear() then empties the whole cluster


def test_a_url_without_password_keeps_the_keyword_one() -> None:
    with RedisClusterBackend("redis+cluster://n1:7000", password="kw") as made:
        assert made._kwargs["password"] == "kw"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: RedisClusterBackend("redis+cluster://n1:7000/1"),
            "Redis Cluster has database 0 only: 'redis+cluster://n1:7000/1'",
        ),
        (
            lambda: RedisClusterBackend("redis+cluster://u:secret@n1:7000/1"),
            "Redis Cluster has database 0 only: 'redis+cluster://u:***@n1:7000/1'",
        ),
        (lambda: RedisClusterBackend(), "RedisClusterBackend needs at least one startup node"),
        (
            lambda: RedisClusterBackend(startup_nodes="n1:7000", bogus=1),
            "RedisClusterBackend: unknown Redis option(s) bogus",
        ),
    ],
)
def test_configuration_errors_say_what_is_wrong(build: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        build()
    assert str(raised.value) == message


# -- on the session's cluster ---------------------------------------------------------------


def seeds(nodes: list[servers.Server]) -> str:
    return ",".join(node.address for node in nodes)


@pytest.fixture
def backend(redis_cluster: list[servers.Server]) -> Iterator[RedisClusterBackend]:
    namespace = f"cs{uuid.uuid4().hex[:10]}:"
    made = RedisClusterBackend(startup_nodes=seeds(redis_cluster), namespace=namespace)
    yield made
    made.clear()
    made.close()


@pytest.mark.server
def test_get_many_mixes_slots_in_any_order(
    backend: RedisClusterBackend, redis_cluster: list[servers.Server]
) -> None:
    ns = backend.namespace
    a1, b1, a2, b2 = (f"{ns}{{a}}1", f"{ns}{{b}}1", f"{ns}{{a}}2", f"{ns}{{b}}2")
    assert backend.client.keyslot(a1) != backend.client.keyslot(b1)
    backend.set_many({a1: b"a1", b1: b"b1", a2: b"a2"}, 30)
    assert backend.get_many([a1, b1, a2]) == [b"a1", b"b1", b"a2"]
    assert backend.get_many([a1, b1, b2]) == [b"a1", b"b1", MISS]
    ports = [node.port for node in redis_cluster]
    before = command_stats(*ports)
    assert backend.get_many([a1, a2, f"{ns}{{a}}3"]) == [b"a1", b"a2", MISS]
    assert commands_between(before, command_stats(*ports)) == {"mget": 1}  # one slot, one MGET


def _evicted_per_node(nodes: list[servers.Server]) -> list[int]:
    texts = [servers.redis_cli("-p", str(node.port), "info", "stats") for node in nodes]
    return [int(text.split("evicted_keys:")[1].split()[0]) for text in texts]


def _cli_each(nodes: list[servers.Server], *args: str) -> list[str]:
    return [servers.redis_cli("-p", str(node.port), *args) for node in nodes]


@pytest.mark.server
def test_evictions_add_up_the_nodes_that_evicted(
    backend: RedisClusterBackend, redis_cluster: list[servers.Server]
) -> None:
    # Every node short of memory for a moment: only keys with a TTL may go (volatile-lru),
    # so the session's other keys stay; a count from one node alone falls short.
    before = _evicted_per_node(redis_cluster)
    used = [
        int(text.split("used_memory:")[1].split()[0])
        for text in _cli_each(redis_cluster, "info", "memory")
    ]
    try:
        for node, amount in zip(redis_cluster, used, strict=True):
            servers.redis_cli(
                "-p", str(node.port), "config", "set", "maxmemory", str(amount + 2**18)
            )
        _cli_each(redis_cluster, "config", "set", "maxmemory-policy", "volatile-lru")
        value = b"x" * 10_000
        for batch in range(30):
            backend.set_many({f"{backend.namespace}ev{batch}-{i}": value for i in range(20)}, 60)
    finally:
        _cli_each(redis_cluster, "config", "set", "maxmemory", "0")
        _cli_each(redis_cluster, "config", "set", "maxmemory-policy", "noeviction")
    evicted = [
        now - then for now, then in zip(_evicted_per_node(redis_cluster), before, strict=True)
    ]
    assert all(count > 0 for count in evicted), evicted
    assert backend.evictions() == sum(before) + sum(evicted)


@pytest.mark.server
def test_close_disconnects_from_every_node(redis_cluster: list[servers.Server]) -> None:
    name = f"cl-{uuid.uuid4().hex[:8]}"
    made = RedisClusterBackend(startup_nodes=seeds(redis_cluster), client_name=name)
    made.get_many([f"{name}{i}" for i in range(30)])  # keys on every node
    assert _named_connections(redis_cluster, name) == len(redis_cluster)
    made.close()
    # redis-py 5's RedisCluster.close() leaves one node's connection open (not found why;
    # redis-py 6 and later close them all): the lowest versions' run allows that one.
    left = 0 if int(redis.__version__.split(".")[0]) >= 6 else 1
    deadline = time.monotonic() + 5
    while _named_connections(redis_cluster, name) > left:  # each node notices its closed socket
        assert time.monotonic() < deadline, "connections stayed open"
        time.sleep(0.01)


def _named_connections(nodes: list[servers.Server], name: str) -> int:
    lists = [servers.redis_cli("-p", str(node.port), "client", "list") for node in nodes]
    return sum(f" name={name} " in text for text in lists)


@pytest.mark.server
def test_a_paused_node_is_left_out_while_the_others_serve(
    redis_cluster: list[servers.Server], clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    namespace = f"pause{uuid.uuid4().hex[:8]}:"
    timeouts = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
    made = RedisClusterBackend(startup_nodes=seeds(redis_cluster), namespace=namespace, **timeouts)
    made.ejection.clock = clock
    try:
        keys = [f"{namespace}{i}" for i in range(30)]
        made.set_many(dict.fromkeys(keys, b"v"), 60)
        holder = made.client.get_node_from_key(keys[0])
        paused = next(node for node in redis_cluster if node.port == holder.port)
        elsewhere = next(k for k in keys if made.client.get_node_from_key(k).port != paused.port)
        with servers.paused(paused, redis_cluster):
            with pytest.raises(BackendError) as first:
                made.get(keys[0])
            assert isinstance(first.value.original, RedisTimeoutError)
            # One timeout, not a retry after it: the node is out for the base backoff.
            assert made.ejection.out == {holder.name: (clock() + BACKOFF, BACKOFF)}
            started = time.monotonic()
            with pytest.raises(BackendError, match="is left out after failing"):
                made.get(keys[0])
            assert time.monotonic() - started < 0.4  # at once, no second timeout
            assert made.get(elsewhere) == b"v"
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1
        assert f"node {holder.name} is failing (TimeoutError: Timeout reading" in warnings[0]
        clock.advance(BACKOFF)
        assert made.get(keys[0]) == b"v"
        assert made.ejection.out == {}
    finally:
        made.clear()
        made.close()
