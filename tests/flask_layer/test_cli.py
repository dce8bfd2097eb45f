"""``flask stash``: every command against the in-memory, file system and Redis backends,
through Flask's own CLI runner (``app.test_cli_runner()``), with its exit codes: 0 done,
1 a failure (``Error:`` line), 2 a usage mistake."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask

from flask_stash import Cache
from flask_stash.core import statsflush
from flask_stash.core.errors import BackendError, ConfigurationError

from .. import servers

BACKENDS = ["memory", "filesystem", pytest.param("redis", marks=pytest.mark.server)]
cache = Cache(with_jinja2_ext=False)
computed: list[int] = []


@cache.memoize()
def double(number: int) -> int:
    """The memoized function the tests reach by its dotted path."""
    computed.append(number)
    return 2 * number


def plain(number: int) -> int:
    return number


@pytest.fixture(params=BACKENDS)
def config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The ``CACHE_*`` settings of one backend; Redis keys under a prefix of their own."""
    return backend_config(request, tmp_path)


@pytest.fixture(params=BACKENDS[1:])
def shared_config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """:func:`config` of the backends shared by several processes."""
    return backend_config(request, tmp_path)


def backend_config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "memory":
        return {"CACHE_TYPE": "SimpleCache"}
    if request.param == "filesystem":
        return {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path / "cache")}
    server: servers.Server = request.getfixturevalue("redis_single")
    return {
        "CACHE_TYPE": "RedisCache",
        "CACHE_REDIS_URL": f"redis://{server.address}/0",
        "CACHE_KEY_PREFIX": f"cli-{uuid.uuid4().hex[:8]}:",
    }


def make_app(config: dict[str, Any], owner: Cache = cache) -> Flask:
    app = Flask(__name__)
    app.config.update(config, SECRET_KEY="cli tests")
    owner.init_app(app)

    @app.route("/page")
    @owner.cached(query_string=True, query_deny=["utm_*"])
    def page() -> str:
        return "page"

    @app.route("/me")
    @owner.cached(private=True)
    def me() -> str:
        return "me"

    return app


@pytest.fixture
def app(config: dict[str, Any]) -> Iterator[Flask]:
    computed.clear()
    app = make_app(config)
    yield app
    with app.app_context():
        cache.clear()


def run(app: Flask, *args: str, **kwargs: Any) -> Result:
    return app.test_cli_runner().invoke(args=["stash", *args], **kwargs)


def shared(app: Flask) -> bool:
    return cache.state(app).store.shared_stats is not None


# -- stats -----------------------------------------------------------------------------------


def test_stats_shows_each_scope(app: Flask) -> None:
    with app.app_context():
        cache.reset_stats(everyone=True)
        double(1), double(1), double(2)
    result = run(app, "stats")
    assert result.exit_code == 0, result.output
    row = next(line.split() for line in result.output.splitlines() if "double" in line)
    # scope, kind, calls, hit ratio, hits, misses, stale, coalesced, passes, errors
    assert row[1:10] == ["memoize", "3", "33.3%", "1", "2", "0", "0", "0", "0"]
    if shared(app):
        assert "All processes" in result.output
        assert "the flask command itself, not a worker" in result.output
    else:
        assert "every process has its own entries and its own figures" in result.output


def test_stats_json_is_the_report(app: Flask) -> None:
    with app.app_context():
        cache.reset_stats(everyone=True)
        double(5), double(5)
    result = run(app, "stats", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["shared"] is shared(app)
    figures = data["everyone"] if shared(app) else data["process"]
    (scope,) = figures["scopes"]
    assert (scope["hits"], scope["misses"], scope["calls"]) == (1, 1, 2)
    assert scope["scope"].endswith("test_cli.double")


def test_stats_of_a_shared_backend_include_other_processes(shared_config: dict[str, Any]) -> None:
    """Another process (here another app on the same backend and prefix) pushed its
    counts: the command shows them under all processes, not under its own."""
    config = shared_config
    app, worker_cache = make_app(config), Cache(with_jinja2_ext=False)
    worker = Flask("worker")
    worker.config.update(config)
    worker_cache.init_app(worker)
    store = worker_cache.state(worker).store
    with app.app_context():
        cache.reset_stats(everyone=True)
    worker_cache.state(worker).store.stats.incr("hits", "elsewhere.fn", 7)
    assert statsflush.push_now(store)
    data = json.loads(run(app, "stats", "--json").output)
    (scope,) = data["everyone"]["scopes"]
    assert (scope["scope"], scope["hits"]) == ("elsewhere.fn", 7)
    assert data["process"]["scopes"] == []


# -- get, delete, clear ------------------------------------------------------------------------


def test_get_prints_the_repr(app: Flask) -> None:
    with app.app_context():
        cache.set("greeting", {"text": "hi", "n": (1, 2)})
        cache.set("nothing", None)
    assert run(app, "get", "greeting").output.splitlines()[-1] == "{'text': 'hi', 'n': (1, 2)}"
    result = run(app, "get", "nothing")  # a cached None is a value, not an absence
    assert (result.exit_code, result.output.splitlines()[-1]) == (0, "None")


def test_get_of_an_absent_key_fails(app: Flask) -> None:
    result = run(app, "get", "absent")
    assert result.exit_code == 1
    assert "Error: no value cached under 'absent' in cache 'default'" in result.output


def test_delete(app: Flask) -> None:
    with app.app_context():
        cache.set("doomed", 1)
    assert "Deleted 'doomed'." in run(app, "delete", "doomed").output
    with app.app_context():
        assert cache.get("doomed") is None
    result = run(app, "delete", "doomed")
    assert (result.exit_code, "Nothing was cached under 'doomed'." in result.output) == (0, True)


def test_clear_asks_first(app: Flask) -> None:
    with app.app_context():
        cache.set("kept", 1)
    refused = run(app, "clear", input="n\n")
    assert refused.exit_code == 1
    assert "Delete every entry of cache 'default'" in refused.output
    assert "Aborted" in refused.output
    with app.app_context():
        assert cache.get("kept") == 1
    assert run(app, "clear", input="y\n").exit_code == 0
    with app.app_context():
        assert cache.get("kept") is None
        cache.set("kept", 2)
    result = run(app, "clear", "--yes")
    assert (result.exit_code, "Cleared cache 'default'" in result.output) == (0, True)
    with app.app_context():
        assert cache.get("kept") is None


# -- delete-memoized ---------------------------------------------------------------------------


@pytest.mark.parametrize("separator", [":", "."])
def test_delete_memoized_one_call_or_all(app: Flask, separator: str) -> None:
    path = f"{__name__}{separator}double"
    with app.app_context():
        double(1), double(2), double(1), double(2)
    assert computed == [1, 2]
    result = run(app, "delete-memoized", path, "1")
    assert result.exit_code == 0, result.output
    assert f"Forgot the entry of {path}(1)." in result.output
    with app.app_context():
        double(1), double(2)
    assert computed == [1, 2, 1]  # only double(1) was forgotten
    assert run(app, "delete-memoized", path, "number=2").exit_code == 0
    assert "Forgot every entry" in run(app, "delete-memoized", path).output
    with app.app_context():
        double(1), double(2)
    assert computed == [1, 2, 1, 1, 2]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no_such_module_here:fn", "cannot import 'no_such_module_here:fn'"),
        (f"{__name__}:missing", "cannot import"),
        (f"{__name__}:plain", "is not memoized"),
        (f"{__name__}:BACKENDS", "is not a function"),
    ],
)
def test_delete_memoized_usage_errors(app: Flask, path: str, message: str) -> None:
    result = run(app, "delete-memoized", path)
    assert result.exit_code == 2
    assert "Error: Invalid value for FUNCTION" in result.output
    assert message in result.output


def test_invalidate_tag(app: Flask) -> None:
    with app.app_context():
        cache.set("a", 1, tags=["team:1"])
        cache.set("b", 2, tags=["team:2"])
    result = run(app, "invalidate-tag", "team:1", "team:3")
    assert result.exit_code == 0, result.output
    assert "Invalidated 'team:1', 'team:3'." in result.output
    with app.app_context():
        assert cache.get("a") is None
        assert cache.get("b") == 2
    assert run(app, "invalidate-tag").exit_code == 2  # at least one tag
    empty = run(app, "invalidate-tag", "")
    assert empty.exit_code == 2
    assert "a tag cannot be empty" in empty.output


def test_invalidate_tag_on_a_failing_backend_is_an_error(
    shared_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: Any) -> Any:
        raise BackendError("connection refused")

    app = make_app(shared_config)  # stamps in the backend (the memory backend's cannot fail)
    monkeypatch.setattr(cache.state(app).store.backend, "set", fail)
    result = run(app, "invalidate-tag", "team:1")
    assert result.exit_code == 1
    assert "could not invalidate: the cache backend failed" in result.output


# -- ping, and a failing backend -----------------------------------------------------------------


def test_ping(app: Flask) -> None:
    result = run(app, "ping")
    assert result.exit_code == 0, result.output
    assert "cache 'default'" in result.output
    assert "healthy" in result.output
    data = json.loads(run(app, "ping", "--json").output)
    assert data["healthy"] is True
    assert data["latency_ms"] >= 0


def failing(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any) -> Any:
        raise BackendError("connection refused")

    backend = cache.state(app).store.backend
    for name in ("get", "delete", "clear"):
        monkeypatch.setattr(backend, name, fail)


def test_a_failing_backend_is_an_error_not_an_absence(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing(app, monkeypatch)
    for args in (["get", "k"], ["delete", "k"], ["clear", "--yes"]):
        result = run(app, *args)
        assert result.exit_code == 1, args
        assert "the cache backend failed: BackendError: connection refused" in result.output
    result = run(app, "ping")
    assert result.exit_code == 1
    assert "UNHEALTHY" in result.output
    assert "Error: cache 'default'" in result.output


# -- warm --------------------------------------------------------------------------------------


def test_warm_runs_every_warmup(app: Flask) -> None:
    ran: list[str] = []
    owner = Cache(with_jinja2_ext=False)
    owner.init_app(app, config={"CACHE_NAME": "warm"})

    @owner.warmup
    def numbers() -> Iterator[int]:
        for number in range(4):
            double(number)
            yield number
        ran.append("numbers")

    def listed() -> list[int]:
        ran.append("listed")
        return [1, 2, 3]

    owner.add_warmup(listed, name="a-list")
    owner.warmup(name="plain")(lambda: ran.append("plain"))
    result = run(app, "--cache", "warm", "warm")
    assert result.exit_code == 0, result.output
    assert ran == ["numbers", "listed", "plain"]
    assert "Ran 3 warm-ups." in result.output
    assert computed == [0, 1, 2, 3]
    listing = run(app, "--cache", "warm", "warm", "--list").output.split()
    assert listing == [f"{__name__}.test_warm_runs_every_warmup.numbers", "a-list", "plain"]
    assert run(app, "--cache", "warm", "warm", "plain").exit_code == 0
    assert ran[-1] == "plain"


def test_a_failed_warmup_fails_the_command_after_the_others(app: Flask) -> None:
    owner = Cache(with_jinja2_ext=False)
    owner.init_app(app, config={"CACHE_NAME": "warm"})
    ran: list[str] = []

    @owner.warmup(name="broken")
    def broken() -> Iterator[int]:
        yield 1
        raise RuntimeError("database is down")

    owner.add_warmup(lambda: ran.append("after"), name="after")
    result = run(app, "--cache", "warm", "warm")
    assert result.exit_code == 1
    assert "warm-up broken failed: RuntimeError: database is down" in result.output
    assert "Error: 1 of 2 warm-ups failed: broken" in result.output
    assert ran == ["after"]


def test_warm_errors(app: Flask) -> None:
    result = run(app, "warm")
    assert result.exit_code == 1
    assert "has no warm-up: register one with @cache.warmup" in result.output
    owner = Cache(with_jinja2_ext=False)
    owner.init_app(app, config={"CACHE_NAME": "warm"})
    owner.add_warmup(lambda: None, name="only")
    result = run(app, "--cache", "warm", "warm", "nope")
    assert result.exit_code == 2
    assert "no warm-up named 'nope'; registered: only" in result.output


def test_warm_figures_reach_everyone(shared_config: dict[str, Any]) -> None:
    """The command's own counts are pushed before it exits: other processes see them."""
    computed.clear()
    app = make_app(shared_config)
    with app.app_context():
        cache.reset_stats(everyone=True)
    owner = Cache(with_jinja2_ext=False)
    owner.init_app(app, config={"CACHE_NAME": "warm", "CACHE_KEY_PREFIX": "other:"})
    owner.add_warmup(lambda: [double(n) for n in range(3)], name="three")
    assert run(app, "--cache", "warm", "warm").exit_code == 0
    store = cache.state(app).store
    assert store.shared_stats is not None
    found = store.shared_stats.read()
    assert found is not None
    assert sum(r.events for (event, _), r in found.items() if event == "misses") == 3


# -- audit -------------------------------------------------------------------------------------


def test_audit_lists_cached_views_and_their_keys(app: Flask) -> None:
    result = run(app, "audit")
    assert result.exit_code == 0, result.output
    assert "page  /page  [GET, HEAD]" in result.output
    assert "every argument except those matching ['utm_*']" in result.output
    assert "per user (private=True): every cookie, headers ['Authorization']" in result.output
    views = json.loads(run(app, "audit", "--json").output)
    assert [view["endpoint"] for view in views] == ["me", "page"]
    assert views[1]["key"]["path"] == "request.path, as key_prefix 'view/%s'"
    assert views[0]["cache"] == "default"


# -- several caches --------------------------------------------------------------------------


def test_several_caches_by_name(app: Flask) -> None:
    other = Cache(with_jinja2_ext=False)
    other.init_app(app, config={"CACHE_NAME": "sessions", "CACHE_KEY_PREFIX": "sessions:"})
    with app.app_context():
        other.set("token", "abc")
    assert run(app, "get", "token").exit_code == 1  # the default cache: the first one
    result = run(app, "--cache", "sessions", "get", "token")
    assert result.output.splitlines()[-1] == "'abc'"
    unknown = run(app, "--cache", "nope", "stats")
    assert unknown.exit_code == 2
    assert "no cache named 'nope'; its caches: 'default', 'sessions'" in unknown.output
    with pytest.raises(ConfigurationError, match="several caches named 'sessions'"):
        Cache(with_jinja2_ext=False).init_app(app, config={"CACHE_NAME": "sessions"})


def test_unnamed_caches_are_numbered() -> None:
    app = Flask(__name__)
    first, second = Cache(with_jinja2_ext=False), Cache(with_jinja2_ext=False)
    first.init_app(app)
    second.init_app(app)
    from flask_stash import registry

    assert list(registry.caches(app)) == ["default", "cache2"]
    assert registry.name_of(app, second) == "cache2"


def test_the_group_is_registered_by_init_app() -> None:
    app = Flask(__name__)
    assert "stash" not in app.cli.commands
    Cache(app)
    assert "stash" in app.cli.commands
