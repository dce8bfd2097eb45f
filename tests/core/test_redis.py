"""RedisBackend on a real redis-server: the contract, round trips, fail-open, TLS, Flask.

Sentinel and Cluster live in ``test_redis_sentinel.py`` and ``test_redis_cluster.py``;
configuration errors (no server needed) in ``test_redis_config.py``.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

import flask_stash.backends
from flask_stash import Cache
from flask_stash.backends.redis import RedisCache
from flask_stash.core.api import MISS, SupportsAtomicAdd, SupportsPublish
from flask_stash.core.backends.redis import RedisBackend
from flask_stash.core.errors import BackendError
from flask_stash.core.memoize import memoize
from flask_stash.core.stats import ERROR
from flask_stash.core.store import Store
from flask_stash.testing import BackendContract, FakeClock

from .. import servers
from ..servers import HOST

pytestmark = pytest.mark.server


def command_stats(*ports: int) -> dict[str, int]:
    """Commands each server ran so far (``INFO commandstats``), summed over ``ports``.

    ``INFO`` itself is left out: it is how we look, not what the code under test did.
    """
    totals: dict[str, int] = {}
    for port in ports:
        for line in servers.redis_cli("-p", str(port), "info", "commandstats").splitlines():
            if line.startswith("cmdstat_") and not line.startswith("cmdstat_info:"):
                name, _, fields = line[len("cmdstat_") :].partition(":")
                calls = int(fields.split(",")[0].removeprefix("calls="))
                totals[name] = totals.get(name, 0) + calls
    return totals


def commands_between(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    diff = {name: after[name] - before.get(name, 0) for name in after}
    return {name: count for name, count in diff.items() if count}


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def backend(redis_single: servers.Server) -> Iterator[RedisBackend]:
    with RedisBackend(host=HOST, port=redis_single.port, db=1, namespace=unique()) as made:
        yield made


# -- the contract ------------------------------------------------------------------------


class TestRedisBackend(BackendContract):
    follows_clock = False

    @pytest.fixture(autouse=True)
    def _isolate(self, redis_single: servers.Server) -> None:
        # A namespace per test: the contract's clear() then touches this test's keys only.
        self.port = redis_single.port
        self.namespace = unique("contract")

    @pytest.fixture
    def key(self) -> str:
        return f"{self.namespace}{uuid.uuid4().hex}"

    def make_backend(self, clock: FakeClock) -> RedisBackend:
        return RedisBackend(f"redis://{HOST}:{self.port}/1", namespace=self.namespace)


# -- round trips ---------------------------------------------------------------------------


def test_memoize_hit_is_one_command_on_the_server(
    backend: RedisBackend, redis_single: servers.Server
) -> None:
    store = Store(backend, key_prefix=backend.namespace)
    calls: list[int] = []

    @memoize(store, 60)
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    assert double(21) == 42
    before = command_stats(redis_single.port)
    assert double(21) == 42
    after = command_stats(redis_single.port)
    assert commands_between(before, after) == {"mget": 1}
    assert calls == [21]


def test_get_many_is_one_mget_and_set_many_one_pipeline(
    backend: RedisBackend, redis_single: servers.Server
) -> None:
    keys = [f"{backend.namespace}{i}" for i in range(20)]
    backend.get(keys[0])  # connect first: a new connection sends HELLO, SELECT and a PING
    before = command_stats(redis_single.port)
    backend.set_many(dict.fromkeys(keys, b"v"), 10)
    assert backend.get_many(keys) == [b"v"] * 20
    after = command_stats(redis_single.port)
    assert commands_between(before, after) == {"set": 20, "mget": 1}


# -- clear, scan, counters, locks, pub/sub ---------------------------------------------------


def test_clear_leaves_keys_outside_the_namespace(
    backend: RedisBackend, redis_single: servers.Server
) -> None:
    outside = RedisBackend(host=HOST, port=redis_single.port, db=1)
    try:
        ours = [f"{backend.namespace}{i}" for i in range(1200)]  # several SCAN/UNLINK batches
        theirs = [f"other-{backend.namespace}", backend.namespace.rstrip(":")]
        backend.set_many(dict.fromkeys(ours, b"x"), 30)
        outside.set_many(dict.fromkeys(theirs, b"keep"), 30)
        before = command_stats(redis_single.port)
        backend.clear()
        ran = commands_between(before, command_stats(redis_single.port))
        assert backend.get_many(ours) == [MISS] * len(ours)
        assert outside.get_many(theirs) == [b"keep", b"keep"]
        assert "flushdb" not in ran
        assert "keys" not in ran
        assert "flushall" not in ran
        assert ran["unlink"] >= 3  # batches of SCAN_BATCH keys, not one huge UNLINK
        outside.delete_many(theirs)
    finally:
        outside.close()


def test_clear_with_an_empty_namespace_empties_only_its_database(
    redis_single: servers.Server,
) -> None:
    with (
        RedisBackend(host=HOST, port=redis_single.port, db=5) as whole_db,
        RedisBackend(host=HOST, port=redis_single.port, db=6) as other_db,
    ):
        whole_db.set_many({"a": b"1", "b": b"2"}, 30)
        other_db.set("a", b"kept", 30)
        whole_db.clear()
        assert list(whole_db.scan("")) == []
        assert other_db.get("a") == b"kept"
        other_db.clear()


def test_scan_escapes_glob_characters(backend: RedisBackend) -> None:
    ns = backend.namespace
    backend.set_many({f"{ns}[1]*?:x": b"1", f"{ns}1a:x": b"2", f"{ns}\\:x": b"3"}, 30)
    assert list(backend.scan(f"{ns}[1]*?")) == [f"{ns}[1]*?:x"]
    assert list(backend.scan(f"{ns}\\")) == [f"{ns}\\:x"]


def test_incr_gives_a_new_counter_its_ttl_and_keeps_an_existing_one(
    backend: RedisBackend,
) -> None:
    key = f"{backend.namespace}counter"
    assert backend.incr(key, 2, 100) == 2
    assert 99_000 < backend.client.pttl(key) <= 100_000
    backend.client.pexpire(key, 50_000)
    assert backend.incr(key, 3, 100) == 5
    assert backend.client.pttl(key) <= 50_000
    backend.set(f"{key}:entry", b"\x80pickled", 10)
    with pytest.raises(TypeError, match="integer"):
        backend.incr(f"{key}:entry", 1, 10)


def test_store_incr_converts_a_set_integer_then_counts_atomically(backend: RedisBackend) -> None:
    store = Store(backend, key_prefix=backend.namespace)
    store.set("hits", 41)
    assert store.incr("hits") == 42
    assert store.incr("hits", 8) == 50
    assert store.get("hits") == 50


def test_add_is_atomic_under_concurrency(backend: RedisBackend) -> None:
    assert isinstance(backend, SupportsAtomicAdd)
    key = f"{backend.namespace}race"
    barrier = threading.Barrier(8)
    results: dict[int, bool] = {}

    def contender(index: int) -> None:
        barrier.wait()
        results[index] = backend.add(key, str(index).encode(), 30)

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [index for index, stored in results.items() if stored]
    assert len(results) == 8
    assert len(winners) == 1
    assert backend.get(key) == str(winners[0]).encode()


def test_lock_owner_and_lease(backend: RedisBackend) -> None:
    lock = f"{backend.namespace}lock"
    assert backend.acquire_lock(lock, "a", 0.2)
    assert not backend.acquire_lock(lock, "b", 0.2)
    assert not backend.release_lock(lock, "b")  # not the owner: the lock stays
    assert not backend.acquire_lock(lock, "b", 0.2)
    time.sleep(0.35)  # longer than the lease: the server has expired it
    assert backend.acquire_lock(lock, "b", 5)
    assert not backend.release_lock(lock, "a")  # the dead owner cannot free b's lock
    assert backend.release_lock(lock, "b")
    assert backend.get(lock) is MISS


def test_publish_and_subscribe(backend: RedisBackend) -> None:
    assert isinstance(backend, SupportsPublish)
    channel = f"{backend.namespace}events"
    with backend.subscribe(channel) as messages:
        backend.publish(channel, b"invalidate:a")
        backend.publish(channel, b"\x00binary")
        assert next(messages) == b"invalidate:a"
        assert next(messages) == b"\x00binary"


def test_existing_client_is_used_and_left_open(redis_single: servers.Server) -> None:
    import redis

    client = redis.Redis(host=HOST, port=redis_single.port, db=1)
    try:
        backend = RedisBackend(host=client)
        backend.set("existing-client", b"v", 5)
        backend.close()
        assert client.get("existing-client") == b"v"  # still usable: we did not close it
        client.delete("existing-client")
    finally:
        client.close()


# -- failures: fail-open, bounded time, recovery ---------------------------------------------


def test_store_fails_open_fast_when_nothing_listens() -> None:
    with RedisBackend(host=HOST, port=servers.free_port()) as backend:
        store = Store(backend)
        started = time.monotonic()
        assert store.get("k") is MISS
        assert store.set("k", 1) is False
        assert store.get_many(["a", "b"]) == [MISS, MISS]
        assert time.monotonic() - started < 3
        assert store.stats.get(ERROR) == 3
        with pytest.raises(BackendError) as raised:
            backend.get("k")
        assert raised.value.original is not None


def test_wrong_password_fails_open_at_use_time(tmp_path: Path) -> None:
    with servers.redis_server(tmp_path, "--requirepass", "secret") as server:
        with RedisBackend(host=HOST, port=server.port, password="wrong") as backend:
            store = Store(backend)  # built fine: nothing is checked before use
            assert store.set("k", 1) is False
            assert store.get("k") is MISS
            assert store.stats.get(ERROR) == 2
        with RedisBackend(f"redis://:secret@{HOST}:{server.port}/0") as backend:
            store = Store(backend)
            assert store.set("k", 1) is True
            assert store.get("k") == 1


def test_reconnects_by_itself_after_a_restart(tmp_path: Path) -> None:
    with servers.redis_server(tmp_path) as server:
        port = server.port
        with RedisBackend(host=HOST, port=port) as backend:
            store = Store(backend)
            assert store.set("k", "before")
            server.stop()
            assert store.get("k") is MISS  # down: a miss, not an exception
            assert store.set("k", "down") is False
            assert store.stats.get(ERROR) == 2
            with servers.running(servers.redis_args(port), port, tmp_path):
                assert store.set("k", "after")  # same backend object, same pool
                assert store.get("k") == "after"
            assert store.stats.get(ERROR) == 2


# -- TLS -------------------------------------------------------------------------------------


def _tls_files(workdir: Path) -> dict[str, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    files = {name: workdir / f"{name}.pem" for name in ("ca", "ca-key", "cert", "key", "csr")}
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = [
        [openssl, "req", "-x509", *ec, "-keyout", files["ca-key"], "-out", files["ca"],
         "-days", "1", "-subj", "/CN=flask-stash-test-ca"],
        [openssl, "req", *ec, "-keyout", files["key"], "-out", files["csr"],
         "-subj", "/CN=127.0.0.1"],
    ]  # fmt: skip
    for command in run:
        subprocess.run(command, check=True, capture_output=True, timeout=30)
    ext = workdir / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    sign = [openssl, "x509", "-req", "-in", files["csr"], "-CA", files["ca"], "-CAkey",
            files["ca-key"], "-CAcreateserial", "-out", files["cert"], "-days", "1",
            "-extfile", ext]  # fmt: skip
    subprocess.run(sign, check=True, capture_output=True, timeout=30)
    return files


def test_rediss_url_connects_over_tls(tmp_path: Path) -> None:
    files = _tls_files(tmp_path)
    port = servers.free_port()
    args = servers.redis_args(0, "--tls-port", str(port), "--tls-auth-clients", "no",
                              "--tls-cert-file", str(files["cert"]),
                              "--tls-key-file", str(files["key"]),
                              "--tls-ca-cert-file", str(files["ca"]))  # fmt: skip
    with servers.running(args, port, tmp_path):
        url = f"rediss://{HOST}:{port}/0?ssl_ca_certs={files['ca']}"
        with RedisBackend(url) as backend:
            backend.set("tls", b"secure", 10)
            assert backend.get("tls") == b"secure"
            assert backend.client.get_connection_kwargs()["ssl_ca_certs"] == str(files["ca"])
        with RedisBackend(f"valkeys://{HOST}:{port}/0") as untrusted:  # default CA store
            store = Store(untrusted)
            assert store.get("tls") is MISS  # certificate refused: fail-open
            assert store.stats.get(ERROR) == 1


# -- the Flask layer -------------------------------------------------------------------------


def _app(**config: object) -> Flask:
    app = Flask(__name__)
    app.config.update(TESTING=True, **config)
    return app


def _flask_cache(server: servers.Server, cache_type: str, prefix: str) -> tuple[Flask, Cache]:
    """An app whose cache is ``cache_type`` on database 4 of ``server``, under ``prefix``."""
    app = _app()
    cache = Cache(app, config={
        "CACHE_TYPE": cache_type,
        "CACHE_REDIS_URL": f"redis://{HOST}:{server.port}/4",
        "CACHE_KEY_PREFIX": prefix,
    })  # fmt: skip
    return app, cache


def test_flask_cache_through_the_dotted_path(redis_single: servers.Server) -> None:
    prefix = unique("app")
    app, cache = _flask_cache(redis_single, "flask_stash.backends.redis.RedisCache", prefix)
    calls: list[int] = []

    @cache.memoize(60)
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    with app.app_context():
        try:
            assert isinstance(cache.cache, RedisCache)
            assert double(4) == 8
            before = command_stats(redis_single.port)
            assert double(4) == 8
            assert commands_between(before, command_stats(redis_single.port)) == {"mget": 1}
            assert calls == [4]
            cache.set("plain", {"a": 1})
            assert cache.cache._write_client.exists(f"{prefix}plain") == 1
            assert cache.unlink("plain", "absent") == ["plain", "absent"]
            assert cache.get("plain") is None
            assert cache.inc("n") == 1
            assert cache.clear() is True
            assert double(4) == 8
            assert calls == [4, 4]
        finally:
            cache.cache.close()


def test_flask_cache_url_keyword_and_config_keys(redis_single: servers.Server) -> None:
    # ``CACHE_URL = "redis://..."`` reaches the factory as kwargs["url"]; CACHE_OPTIONS does too.
    app = _app(CACHE_REDIS_HOST="ignored.invalid", CACHE_REDIS_DB=9)
    url = f"redis://{HOST}:{redis_single.port}/4"
    cache = Cache(app, config={
        "CACHE_TYPE": "flask_stash.backends.redis.RedisCache",
        "CACHE_OPTIONS": {"url": url, "socket_timeout": 2.5},
        "CACHE_DEFAULT_TIMEOUT": 30,
    })  # fmt: skip
    with app.app_context():
        try:
            kwargs = cache.cache._write_client.get_connection_kwargs()
            assert (kwargs["host"], kwargs["db"], kwargs["socket_timeout"]) == (HOST, 4, 2.5)
            assert cache.set("k", "v")
            assert cache.get("k") == "v"
            ttl = cache.cache._write_client.pttl("flask_cache_k")
            assert 29_000 < ttl <= 30_000
            cache.delete("k")
        finally:
            cache.cache.close()


def test_flask_cache_boots_while_redis_is_down() -> None:
    app = _app()
    cache = Cache(app, config={
        "CACHE_TYPE": "flask_stash.backends.redis.RedisCache",
        "CACHE_REDIS_HOST": HOST,
        "CACHE_REDIS_PORT": servers.free_port(),
    })  # fmt: skip
    calls: list[int] = []

    @cache.memoize(60)
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    with app.app_context():
        try:
            assert double(1) == 2
            assert double(1) == 2
            assert calls == [1, 1]  # computed every time, never an exception
            assert cache.stats()["errors"]
        finally:
            cache.cache.close()


def test_cache_url_scheme_once_wired(redis_single: servers.Server) -> None:
    if flask_stash.backends.RedisCache is not RedisCache:
        pytest.skip("redis:// is not wired to flask_stash.backends.redis.RedisCache yet")
    app = _app(CACHE_URL=f"redis://{HOST}:{redis_single.port}/4")
    cache = Cache(app)
    with app.app_context():
        try:
            assert isinstance(cache.cache, RedisCache)
            assert cache.set("wired", 1)
            assert cache.get("wired") == 1
            cache.delete("wired")
        finally:
            cache.cache.close()


def test_keys_with_a_lone_surrogate_are_stored_distinctly(redis_single: servers.Server) -> None:
    # A path decoded with surrogateescape can carry lone surrogates; UTF-8 cannot.
    app, cache = _flask_cache(redis_single, "RedisCache", unique("sur"))
    with app.app_context():
        try:
            assert cache.set("page/\udce9", "lone") is True
            assert cache.set("page/\udce8", "other") is True
            assert cache.set("page/é", "real") is True
            assert cache.get("page/\udce9") == "lone"
            assert cache.get("page/\udce8") == "other"
            assert cache.get("page/é") == "real"
            assert cache.delete("page/\udce9") is True
            assert cache.get("page/\udce9") is None
            assert cache.stats().get("errors", {}) == {}
        finally:
            cache.cache.close()
