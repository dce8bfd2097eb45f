"""The dashboard blueprint: who may see it, what its JSON says, and that it escapes."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from flask import Flask, request

from flask_stash import Cache, ConfigurationError
from flask_stash.core.errors import BackendError

from .conftest import make_app

HOSTILE = "</script><img src=x onerror=alert(1)>"


def dashboard_app(**config: Any) -> tuple[Flask, Cache]:
    app = make_app(CACHE_DASHBOARD=True, **config)
    return app, Cache(app)


# -- who may see it ----------------------------------------------------------------------


def test_off_by_default() -> None:
    app = make_app(DEBUG=True)
    Cache(app)
    assert app.test_client().get("/_stash/").status_code == 404
    assert not [name for name in app.blueprints if "dashboard" in name]


@pytest.mark.parametrize("path", ["/_stash", "/_stash/", "/_stash/data"])
def test_without_a_check_it_answers_in_debug_mode_only(path: str) -> None:
    app, _ = dashboard_app()
    client = app.test_client()
    assert client.get(path).status_code == 404
    app.debug = True
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("debug", [False, True])
def test_with_a_check_the_check_decides_debug_or_not(debug: bool) -> None:
    def access() -> bool:
        return request.headers.get("X-Admin") == "yes"

    app = make_app(DEBUG=debug)
    cache = Cache(app)
    cache.dashboard(app, access=access)
    client = app.test_client()
    assert client.get("/_stash/").status_code == 403
    assert client.get("/_stash/data").status_code == 403
    assert client.get("/_stash/", headers={"X-Admin": "yes"}).status_code == 200
    assert client.get("/_stash/data", headers={"X-Admin": "yes"}).status_code == 200


def test_url_and_check_from_the_configuration() -> None:
    app, _ = dashboard_app(CACHE_DASHBOARD_URL="/admin/cache/", CACHE_DASHBOARD_ACCESS=lambda: True)
    client = app.test_client()
    assert client.get("/admin/cache/").status_code == 200
    assert client.get("/admin/cache/data").status_code == 200
    assert client.get("/_stash/").status_code == 404


def test_explicit_arguments_win_over_the_configuration() -> None:
    app, cache = make_app(CACHE_DASHBOARD_URL="/one"), None
    cache = Cache(app)
    with app.app_context():
        cache.dashboard(url="/two", access=lambda: True)  # the current app
    client = app.test_client()
    assert client.get("/two/").status_code == 200
    assert client.get("/one/").status_code == 404


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("CACHE_DASHBOARD", "yes", "CACHE_DASHBOARD must be True or False"),
        ("CACHE_DASHBOARD_URL", "stash", "CACHE_DASHBOARD_URL must be a path"),
        ("CACHE_DASHBOARD_URL", "/", "CACHE_DASHBOARD_URL must be a path"),
        ("CACHE_DASHBOARD_ACCESS", True, "CACHE_DASHBOARD_ACCESS must be a function"),
    ],
)
def test_bad_settings_fail_at_init_app(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Cache(make_app(**{key: value}))


def test_bad_arguments_and_a_second_dashboard_are_refused() -> None:
    app, cache = dashboard_app()
    with pytest.raises(ConfigurationError, match="url must be a path"):
        cache.dashboard(app, url="nope")
    with pytest.raises(TypeError, match="access must be a function"):
        cache.dashboard(app, access="admin")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="already served at /_stash"):
        cache.dashboard(app, url="/other")


def test_two_caches_two_dashboards() -> None:
    app = make_app(DEBUG=True)
    first, second = Cache(app), Cache(app)
    first.dashboard(app, url="/first")
    second.dashboard(app, url="/second")

    @app.get("/page")
    @second.cached()
    def page() -> str:
        return "page"

    client = app.test_client()
    client.get("/page")
    scopes = client.get("/second/data").json["stats"]["process"]["scopes"]  # type: ignore[index]
    assert [s["scope"] for s in scopes] == ["page"]
    assert client.get("/first/data").json["stats"]["process"]["scopes"] == []  # type: ignore[index]


# -- what it shows -----------------------------------------------------------------------


def busy_app() -> tuple[Flask, Cache]:
    app, cache = dashboard_app(DEBUG=True)

    @cache.memoize()
    def square(n: int) -> int:
        return n * n

    @app.get("/report")
    @cache.cached()
    def report() -> str:
        return str(square(3) + square(3))

    client = app.test_client()
    for _ in range(3):
        client.get("/report")
    return app, cache


def test_the_json_holds_figures_health_errors_and_history() -> None:
    app, cache = busy_app()
    cache.store.policy.handle(BackendError("Connection refused"), "get", quiet=True)
    response = app.test_client().get("/_stash/data")
    assert response.headers["Cache-Control"] == "no-store"
    data: dict[str, Any] = response.json  # type: ignore[assignment]
    assert set(data) == {"app", "generated", "refresh", "stats", "ping", "errors", "history"}
    scopes = {s["scope"]: s for s in data["stats"]["process"]["scopes"]}
    assert scopes["report"]["kind"] == "view"
    assert (scopes["report"]["hits"], scopes["report"]["misses"]) == (2, 1)
    square = scopes[f"{__name__}.busy_app.square"]
    assert (square["kind"], square["hits"], square["misses"]) == ("memoize", 1, 1)
    assert data["ping"]["healthy"] is True
    assert data["stats"]["health"]["state"] == "closed"
    assert [(e["operation"], e["message"], e["count"]) for e in data["errors"]] == [
        ("get", "BackendError: Connection refused", 1)
    ]
    points = data["history"]["points"]
    assert len(points) == 180  # 15 minutes of 5 s
    assert sum(p["hits"] for p in points) == 3
    assert sum(p["misses"] for p in points) == 2


def test_the_page_is_a_self_contained_shell_under_a_strict_policy() -> None:
    app, _ = busy_app()
    response = app.test_client().get("/_stash/")
    html = response.text
    policy = response.headers["Content-Security-Policy"]
    nonce = re.search(r"script-src 'nonce-([^']+)'", policy)
    assert nonce is not None
    assert f'<script nonce="{nonce[1]}" id="dashboard-script" data-url="/_stash/data">' in html
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    links = html.replace('"http://www.w3.org/2000/svg"', "")  # the SVG namespace's name
    assert "http://" not in links
    assert "https://" not in links  # nothing fetched from elsewhere
    assert "src=" not in html  # no external script or image
    initial = re.search(r'<script type="application/json" id="initial-data">(.*?)</script>', html)
    assert initial is not None
    assert json.loads(initial[1])["app"] == app.name


def test_nonces_differ_per_response() -> None:
    app, _ = dashboard_app(DEBUG=True)
    client = app.test_client()
    first = client.get("/_stash/").headers["Content-Security-Policy"]
    assert first != client.get("/_stash/").headers["Content-Security-Policy"]


def hostile_app() -> tuple[Flask, Cache]:
    """Scope names and an error message that are markup (they come from user code)."""
    app, cache = dashboard_app(DEBUG=True)

    def lookup(n: int) -> int:
        return n

    lookup.__module__, lookup.__qualname__ = "__main__", HOSTILE
    memoized = cache.memoize()(lookup)

    def view() -> str:
        return str(memoized(1) + memoized(1))

    app.add_url_rule("/evil", endpoint='"><svg onload=alert(2)>', view_func=cache.cached()(view))
    app.test_client().get("/evil")
    cache.store.policy.handle(BackendError("<b onmouseover=alert(3)>down</b>"), "get", quiet=True)
    return app, cache


def test_hostile_names_never_reach_the_page_as_markup() -> None:
    app, _ = hostile_app()
    client = app.test_client()
    html = client.get("/_stash/").text
    for raw in (HOSTILE, "<img", "<svg onload", "<b onmouseover", "</script><"):
        assert raw not in html
    assert "\\u003c/script\\u003e\\u003cimg src=x onerror=alert(1)\\u003e" in html
    scopes = client.get("/_stash/data").json["stats"]["process"]["scopes"]  # type: ignore[index]
    assert {s["scope"] for s in scopes} == {HOSTILE, '"><svg onload=alert(2)>'}


@pytest.mark.server
def test_on_a_shared_backend_it_shows_every_processs_figures(redis_single: Any) -> None:
    app, cache = dashboard_app(
        DEBUG=True,
        CACHE_URL=f"redis://{redis_single.address}/5",
        CACHE_KEY_PREFIX=f"dashboard-{uuid.uuid4().hex}:",
    )

    @app.get("/page")
    @cache.cached()
    def page() -> str:
        return "page"

    client = app.test_client()
    client.get("/page")
    client.get("/page")
    data: dict[str, Any] = client.get("/_stash/data").json  # type: ignore[assignment]
    assert data["stats"]["shared"] is True
    assert data["stats"]["backend"].startswith("Redis")
    everyone = {s["scope"]: s for s in data["stats"]["everyone"]["scopes"]}
    assert (everyone["page"]["hits"], everyone["page"]["misses"]) == (1, 1)
    assert data["ping"]["reachable"] is True
    with app.app_context():
        cache.clear()
        cache.reset_stats(everyone=True)
