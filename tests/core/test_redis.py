"""RedisBackend on a real redis-server: what only a single server has (databases, an
existing client, passwords, restarts, TLS, ``CACHE_REDIS_*`` settings).

What Sentinel and Cluster share with it runs on all three in ``test_redis_family.py``;
configuration errors (no server needed) in ``test_redis_config.py``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from flask import Flask

from flask_stash import Cache
from flask_stash.core.api import MISS
from flask_stash.core.backends.redis import RedisBackend
from flask_stash.core.stats import ERROR
from flask_stash.core.store import Store

from .. import servers
from ..servers import HOST
from .redisfamily import unique

pytestmark = pytest.mark.server


# -- databases and clients ------------------------------------------------------------------


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


# -- failures: passwords, restarts -----------------------------------------------------------


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
