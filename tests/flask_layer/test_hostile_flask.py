"""Hostile bytes under a real Flask app's keys: views and memoized functions recompute,
forged integers are refused, counters stay atomic (memory, filesystem, Redis, memcached)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask, render_template_string

from flask_stash import Cache
from flask_stash.core.serializers import JsonSerializer, PickleSerializer
from flask_stash.core.stats import UNDECODABLE
from flask_stash.jinja import make_template_fragment_key

from .. import servers
from ..hostile import BLOBS

Writer = Callable[[str, bytes], None]
SECRETS = {"signed": {"SECRET_KEY": "dev"}, "unsigned": {}}
SERIALIZERS = {"pickle": {}, "json": {"CACHE_SERIALIZER": "json"}}
#: A sample of BLOBS covering each way of failing (the store tests run all of them).
SAMPLE = [
    "bare integer",
    "forged balance",
    "foreign bytes",
    "truncated pickle entry",
    "signed with another key",
    "json deep nesting",
    "json bad decimal",
    "json huge timedelta",
    "json created of wrong type",
    "json tags of wrong type",
    "pickle created of wrong type",
]


@pytest.fixture(params=["memory", "filesystem", pytest.param("redis", marks=pytest.mark.server)])
def backend_config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    if request.param == "memory":
        yield {"CACHE_TYPE": "SimpleCache", "CACHE_KEY_PREFIX": prefix}
    elif request.param == "filesystem":
        yield {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path)}
    else:
        server: servers.Server = request.getfixturevalue("redis_single")
        url = f"redis://{servers.HOST}:{server.port}/5"
        yield {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": url, "CACHE_KEY_PREFIX": prefix}


_to_close: list[Callable[[], object]] = []


@pytest.fixture(autouse=True)
def _close_connections() -> Iterator[None]:
    """Connections a test opened, closed after it (no socket left to the GC)."""
    yield
    while _to_close:
        _to_close.pop()()


def on_teardown(close: Callable[[], object]) -> None:
    _to_close.append(close)


def raw_writer(cache: Cache, config: dict[str, Any]) -> Writer:
    """Writes bytes under a backend key without going through the store."""
    if config["CACHE_TYPE"] == "RedisCache":
        client = redis.Redis.from_url(config["CACHE_REDIS_URL"])
        on_teardown(client.close)
        return lambda key, blob: client.set(key, blob)  # type: ignore[return-value]
    backend = cache.store.backend
    return lambda key, blob: backend.set(key, blob, None)


def build(config: dict[str, Any]) -> tuple[Flask, Cache, list[str]]:
    app = Flask(f"hostile-{uuid.uuid4().hex[:6]}")
    app.config.update(config)
    cache = Cache(app)
    on_teardown(cache.state(app).store.close)
    calls: list[str] = []

    @cache.memoize(timeout=3600)
    def price(item: str) -> str:
        calls.append(item)
        return f"price of {item}"

    @app.get("/page")
    @cache.cached(timeout=3600)
    def page() -> str:
        calls.append("page")
        return "fresh page"

    @app.get("/price/<item>")
    def show_price(item: str) -> str:
        return price(item)

    return app, cache, calls


def entry_keys(cache: Cache) -> list[str]:
    """The backend keys holding our entries (not version stamps or counters)."""
    backend = cache.store.backend
    keys = backend.scan(cache.store.key_prefix)  # type: ignore[attr-defined]
    return [k for k in keys if (backend.get(k) or b"")[:2] == b"fs"]


@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize("serializer", SERIALIZERS)
@pytest.mark.parametrize("name", SAMPLE)
def test_views_and_memoized_functions_recompute_over_hostile_entries(
    backend_config: dict[str, Any], secret: str, serializer: str, name: str
) -> None:
    app, cache, calls = build({**backend_config, **SECRETS[secret], **SERIALIZERS[serializer]})
    client = app.test_client()
    assert client.get("/page").text == "fresh page"
    assert client.get("/price/tea").text == "price of tea"
    with app.app_context():
        keys = entry_keys(cache)
        assert len(keys) == 2
        write = raw_writer(cache, backend_config)
        for key in keys:
            write(key, BLOBS[name])
    for _ in range(2):  # recomputed once, then served from the fresh entry
        page = client.get("/page")
        assert (page.status_code, page.text) == (200, "fresh page")
        price = client.get("/price/tea")
        assert (price.status_code, price.text) == (200, "price of tea")
    assert calls == ["page", "tea", "page", "tea"]
    with app.app_context():
        assert cache.statistics.get(UNDECODABLE) >= 2
        cache.clear()


@pytest.mark.parametrize("secret", SECRETS)
def test_a_bare_integer_under_a_view_key_is_not_a_500(
    backend_config: dict[str, Any], secret: str
) -> None:
    """``SET <prefix>view//page 7``: the issue's exact attack."""
    app, cache, calls = build({**backend_config, **SECRETS[secret]})
    with app.app_context():
        write = raw_writer(cache, backend_config)
        write(cache.store.backend_key("view//page"), b"7")
    response = app.test_client().get("/page")
    assert (response.status_code, response.text) == (200, "fresh page")
    assert calls == ["page"]
    with app.app_context():
        cache.clear()


def test_forged_balance_is_refused_with_a_key(backend_config: dict[str, Any]) -> None:
    app, cache, _ = build({**backend_config, "SECRET_KEY": "dev"})
    with app.app_context():
        write = raw_writer(cache, backend_config)
        cache.set("balance", 100)
        write(cache.store.backend_key("balance"), b"999999")
        assert cache.get("balance") is None
        assert cache.get_many("balance") == [None]
        assert not cache.has("balance")
        assert cache.inc("visits") == 1
        write(cache.store.backend_key("visits"), b"999999")
        assert cache.get("visits") is None
        # A counter's value copied from another key is refused too.
        assert cache.inc("other") == 1
        raw_other = cache.store.backend.get(cache.store.backend_key("other"))
        write(cache.store.backend_key("balance"), raw_other)  # type: ignore[arg-type]
        assert cache.get("balance") is None
        cache.clear()


def test_counters_round_trip_through_get(backend_config: dict[str, Any]) -> None:
    app, cache, _ = build({**backend_config, "SECRET_KEY": "dev"})
    with app.app_context():
        assert cache.inc("n") == 1
        assert cache.inc("n", 10) == 11
        assert cache.dec("n", 20) == -9
        assert cache.get("n") == -9
        assert cache.get_dict("n", "missing") == {"n": -9, "missing": None}
        cache.set("s", 5)
        assert cache.inc("s") == 6
        assert cache.get("s") == 6
        cache.clear()


def concurrent_increments(cache: Cache, app: Flask, threads: int = 8, each: int = 50) -> None:
    barrier = threading.Barrier(threads)

    def work() -> None:
        with app.app_context():
            barrier.wait()
            for _ in range(each):
                assert cache.inc("hits") is not None

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    with app.app_context():
        assert cache.get("hits") == threads * each


@pytest.mark.server
def test_sealed_counters_are_atomic_on_redis(redis_single: servers.Server) -> None:
    url = f"redis://{servers.HOST}:{redis_single.port}/5"
    prefix = f"atomic-{uuid.uuid4().hex[:8]}:"
    apps = []
    for _ in range(2):  # two processes' worth of clients on one counter
        app = Flask("atomic")
        app.config.update(
            SECRET_KEY="dev", CACHE_TYPE="RedisCache", CACHE_REDIS_URL=url, CACHE_KEY_PREFIX=prefix
        )
        cache = Cache(app)
        on_teardown(cache.state(app).store.close)
        apps.append((app, cache))
    barrier = threading.Barrier(2)

    def work(app: Flask, cache: Cache) -> None:
        with app.app_context():
            barrier.wait()
            for _ in range(200):
                cache.inc("hits")

    threads = [threading.Thread(target=work, args=pair) for pair in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    app, cache = apps[0]
    with app.app_context():
        assert cache.get("hits") == 400
        client = redis.Redis.from_url(url)
        on_teardown(client.close)
        stored = client.get(f"{prefix}hits")
        assert stored is not None
        assert int(stored) != 400
        cache.clear()


@pytest.mark.server
def test_sealed_counters_are_atomic_on_memcached(memcached_pair: list[servers.Server]) -> None:
    app = Flask("atomic")
    app.config.update(
        SECRET_KEY="dev",
        CACHE_TYPE="MemcachedCache",
        CACHE_MEMCACHED_SERVERS=[memcached_pair[0].address],
        CACHE_KEY_PREFIX=f"atomic-{uuid.uuid4().hex[:8]}:",
    )
    cache = Cache(app)
    on_teardown(cache.state(app).store.close)
    concurrent_increments(cache, app)
    with app.app_context():
        assert cache.dec("hits", 500) == -100  # below zero: memcached's CAS path
        assert cache.get("hits") == -100
        cache.store.backend.set(cache.store.backend_key("forged"), b"999999", None)
        assert cache.get("forged") is None


#: Well-formed unsigned entries whose value is not a response the view stored.
VIEW_VALUES: dict[str, object] = {
    "an integer": 7,
    "a list": [1, 2],
    "None": None,
    "a short tuple": ("r", 1),
    "a response of wrong types": ("flask-stash/response", "200", (), "body"),
    "a response with bad headers": ("flask-stash/response", 200, ((1, 2),), b"body"),
    "a truncated response": ("flask-stash/response", 200),
    "an abort with an unknown code": ("flask-stash/abort", 999, None),
    "a vary marker with bad names": ("flask-stash/vary", 5, None),
    "a vary marker naming nothing": ("flask-stash/vary", (1,), None),
}


@pytest.mark.parametrize("serializer", [JsonSerializer, PickleSerializer])
@pytest.mark.parametrize("name", VIEW_VALUES)
def test_unsigned_entries_of_the_wrong_shape_under_a_view_key_are_misses(
    backend_config: dict[str, Any], serializer: type[JsonSerializer], name: str
) -> None:
    """Without a key anyone who can write to the backend can store a well-formed entry;
    a view still answers 200 with a fresh page."""
    choice = "json" if serializer is JsonSerializer else "pickle"
    app, cache, calls = build({**backend_config, "CACHE_SERIALIZER": choice})
    entry = (VIEW_VALUES[name], 1.0, None, None, None, (), 0.0)
    with app.app_context():
        write = raw_writer(cache, backend_config)
        write(cache.store.backend_key("view//page"), serializer().dumps(entry))
    for _ in range(2):
        response = app.test_client().get("/page")
        assert (response.status_code, response.text) == (200, "fresh page")
    assert calls == ["page"]
    with app.app_context():
        assert cache.statistics.get(UNDECODABLE) >= 1  # read again under the miss's lock
        cache.clear()


@pytest.mark.parametrize("value", [7, None, [1], b"x"], ids=repr)
def test_template_fragment_over_an_unsigned_entry_of_the_wrong_type(value: object) -> None:
    app = Flask("fragments")
    cache = Cache(app)
    template = "{% cache 60, 'frag' %}fresh{% endcache %}"
    with app.test_request_context():
        key = cache.store.backend_key(make_template_fragment_key("frag"))
        entry = (value, 1.0, None, None, None, (), 0.0)
        cache.store.backend.set(key, PickleSerializer().dumps(entry), None)
        assert render_template_string(template) == "fresh"
        assert cache.get(make_template_fragment_key("frag")) == "fresh"  # stored over it
        assert cache.statistics.get(UNDECODABLE) >= 1  # read again under the miss's lock


def test_a_forged_response_under_a_cached_function_key_is_recomputed() -> None:
    from flask import Flask

    from flask_stash import Cache

    app = Flask(__name__)
    cache = Cache(app)  # no key: entries are unsigned

    @cache.cached(timeout=60, key_prefix="helper")
    def helper() -> str:
        return "computed"

    with app.app_context():
        cache.set("helper", ("flask-stash/response", "not a status", (), b""))
        with app.test_request_context("/elsewhere"):
            assert helper() == "computed"
