"""Per-user pages with the real Flask-Login: every visitor sees only their own page.

Three login flows (the session cookie, the remember-me cookie alone, a ``request_loader``
reading ``Authorization: Bearer``), two users and an anonymous visitor, over a view cached
with ``private=True``, one with ``private_key=lambda: current_user.id``, and one with the
default settings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, abort, request
from flask.testing import FlaskClient
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
)

from flask_stash import Cache
from flask_stash.testing import FakeClock

TOKENS = {"alice-token": "alice", "bob-token": "bob"}
VIEWS = ["/inbox", "/inbox-keyed", "/inbox-default"]


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def who() -> str:
    user: Any = current_user
    return str(user.id) if user.is_authenticated else "anonymous"


def make_app(clock: FakeClock, **config: Any) -> tuple[Flask, Cache, list[str]]:
    app = Flask(__name__)
    app.secret_key = "a secret key of some length"
    manager = LoginManager(app)
    manager.user_loader(lambda user_id: User(user_id) if user_id in TOKENS.values() else None)

    @manager.request_loader
    def from_token(req: Any) -> User | None:
        scheme, _, token = req.headers.get("Authorization", "").partition(" ")
        name = TOKENS.get(token) if scheme == "Bearer" else None
        return None if name is None else User(name)

    cache = Cache(app, config={"CACHE_OPTIONS": {"clock": clock}, **config})
    runs: list[str] = []

    @app.get("/login/<name>")
    def login(name: str) -> str:
        login_user(User(name), remember=request.args.get("remember") == "1")
        return "logged in"

    @app.get("/inbox")
    @cache.cached(timeout=60, private=True)
    def inbox() -> str:
        runs.append(who())
        return f"inbox of {who()}"

    @app.get("/inbox-keyed")
    @cache.cached(timeout=60, private=True, private_key=lambda: current_user.id)
    def inbox_keyed() -> str:
        runs.append(who())
        return f"inbox of {who()}"

    @app.get("/inbox-default")
    @cache.cached(timeout=60)
    def inbox_default() -> str:
        runs.append(who())
        return f"inbox of {who()}"

    @app.get("/guarded")
    @cache.cached(timeout=60, private=True, private_key=lambda: current_user.id)
    @login_required
    def guarded() -> str:
        return f"guarded page of {who()}"

    return app, cache, runs


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def visit(client: FlaskClient, path: str, **kwargs: Any) -> str:
    response = client.get(path, **kwargs)
    assert response.status_code == 200
    return response.text


def sessions(app: Flask) -> Iterator[tuple[str, FlaskClient]]:
    for name in ("alice", "bob"):
        client = app.test_client()
        client.get(f"/login/{name}")
        yield name, client


@pytest.mark.parametrize("path", VIEWS)
def test_session_logins_each_see_their_own_page(clock: FakeClock, path: str) -> None:
    app, _, _ = make_app(clock)
    users = dict(sessions(app))
    anonymous = app.test_client()
    for _ in range(2):
        assert visit(anonymous, path) == "inbox of anonymous"
        for name, client in users.items():
            assert visit(client, path) == f"inbox of {name}"
    assert visit(app.test_client(), path) == "inbox of anonymous"


@pytest.mark.parametrize("path", VIEWS)
def test_remember_me_cookie_alone_never_fills_the_anonymous_entry(
    clock: FakeClock, path: str
) -> None:
    app, _, _ = make_app(clock)
    returning = {}
    for name in ("alice", "bob"):
        client = app.test_client()
        client.get(f"/login/{name}?remember=1")
        assert client.get_cookie("remember_token") is not None
        client.delete_cookie("session")  # the browser was closed: only remember_token is left
        returning[name] = client
    for name, client in returning.items():
        assert visit(client, path) == f"inbox of {name}"  # logged in during this request
        assert visit(client, path) == f"inbox of {name}"
    # The next visitors without cookies: never the returning users' inbox.
    assert visit(app.test_client(), path) == "inbox of anonymous"
    assert visit(app.test_client(), path) == "inbox of anonymous"
    for name, client in returning.items():
        assert visit(client, path) == f"inbox of {name}"


@pytest.mark.parametrize("path", VIEWS)
def test_request_loader_tokens_each_see_their_own_page(clock: FakeClock, path: str) -> None:
    app, _, _ = make_app(clock)
    client = app.test_client()
    for _ in range(2):
        for token, name in TOKENS.items():
            page = visit(client, path, headers={"Authorization": f"Bearer {token}"})
            assert page == f"inbox of {name}"
        assert visit(client, path) == "inbox of anonymous"
        assert visit(client, path, headers={"Authorization": "Bearer forged"}) == (
            "inbox of anonymous"
        )


def test_private_pages_are_cached_per_user(clock: FakeClock) -> None:
    app, _, runs = make_app(clock)
    users = dict(sessions(app))
    for _ in range(3):
        for client in users.values():
            visit(client, "/inbox-keyed")
        visit(app.test_client(), "/inbox")
        visit(app.test_client(), "/inbox-keyed")  # private_key fails: uncached
    assert runs.count("alice") == runs.count("bob") == 1
    assert runs.count("anonymous") == 1 + 3


def test_default_settings_never_store_a_page_that_read_the_login(clock: FakeClock) -> None:
    app, _, runs = make_app(clock)
    users = dict(sessions(app))
    for _ in range(2):
        for client in users.values():
            visit(client, "/inbox-default")
    assert runs == ["alice", "bob", "alice", "bob"]


def test_a_private_key_that_raises_serves_uncached_and_logs_once(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    app, _, runs = make_app(clock)
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="flask_stash"):
        for _ in range(3):
            assert visit(client, "/inbox-keyed") == "inbox of anonymous"
    assert runs == ["anonymous"] * 3
    assert len([r for r in caplog.records if "inbox_keyed" in r.getMessage()]) == 1


def test_login_required_under_the_cache_gives_its_401_not_a_500(clock: FakeClock) -> None:
    app, _, _ = make_app(clock)
    assert app.test_client().get("/guarded").status_code == 401
    _, alice = next(sessions(app))
    assert visit(alice, "/guarded") == "guarded page of alice"


def test_abort_inside_private_key_is_the_answer(clock: FakeClock) -> None:
    app, cache, _ = make_app(clock)

    def member() -> object:
        if not current_user.is_authenticated:
            abort(403)
        return current_user.get_id()

    @app.get("/members")
    @cache.cached(timeout=60, private=True, private_key=member)
    def members() -> str:
        return f"members page for {who()}"

    assert app.test_client().get("/members").status_code == 403
    _, alice = next(sessions(app))
    assert visit(alice, "/members") == "members page for alice"


@pytest.mark.parametrize("cache_control", [True, False])
def test_private_pages_say_private_and_vary_on_misses_and_hits(
    clock: FakeClock, cache_control: bool
) -> None:
    app, _, runs = make_app(clock, CACHE_VIEW_CACHE_CONTROL=cache_control)

    @app.after_request
    def public_by_default(response: Any) -> Any:
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "public, max-age=300"
        return response

    _, alice = next(sessions(app))
    token = {"Authorization": "Bearer bob-token"}
    for label, headers in (("MISS", {}), ("HIT", {})):
        response = alice.get("/inbox", headers=headers)
        control = response.cache_control
        assert control.private, label
        assert not control.public, label
        assert "Cookie" in response.vary, label
        assert "Authorization" not in response.vary, label
        if cache_control:
            assert control.max_age is not None
    for _ in range(2):
        response = app.test_client().get("/inbox", headers=token)
        assert response.text == "inbox of bob"
        assert response.cache_control.private
        assert {"Cookie", "Authorization"} <= set(response.vary)
    assert runs == ["alice", "bob"]


def test_identity_headers_and_ignored_cookies_are_configurable(clock: FakeClock) -> None:
    app, cache, _ = make_app(
        clock,
        CACHE_VIEW_PRIVATE_HEADERS=["X-Api-Key"],
        CACHE_VIEW_PRIVATE_IGNORE_COOKIES=["_ga*"],
    )
    runs: list[str] = []

    @app.get("/account")
    @cache.cached(timeout=60, private=True)
    def account() -> str:
        runs.append(request.headers.get("X-Api-Key", "-"))
        return f"account {request.headers.get('X-Api-Key', '-')}"

    client = app.test_client()
    client.set_cookie("_ga", "1")
    assert visit(client, "/account", headers={"X-Api-Key": "k1"}) == "account k1"
    assert visit(client, "/account", headers={"X-Api-Key": "k2"}) == "account k2"
    client.set_cookie("_ga", "2")  # an analytics cookie identifies nobody: still a hit
    assert visit(client, "/account", headers={"X-Api-Key": "k1"}) == "account k1"
    assert runs == ["k1", "k2"]


def test_delete_cached_drops_one_users_page_or_everyones(clock: FakeClock) -> None:
    app, cache, runs = make_app(clock)
    users = dict(sessions(app))

    def visit_all() -> None:
        for client in users.values():
            visit(client, "/inbox-keyed")

    visit_all()
    visit_all()
    assert runs == ["alice", "bob"]
    with app.test_request_context():
        view = app.view_functions["inbox_keyed"]
        assert cache.delete_cached(view, user="alice")
    visit_all()
    assert runs == ["alice", "bob", "alice"]
    with app.test_request_context():
        assert cache.delete_cached(view)
    visit_all()
    assert runs == ["alice", "bob", "alice", "alice", "bob"]
    with app.test_request_context(), pytest.raises(ValueError, match="private_key"):
        cache.delete_cached(app.view_functions["inbox"], user="alice")


def test_delete_cached_drops_a_private_page_without_private_key(clock: FakeClock) -> None:
    app, cache, runs = make_app(clock)
    _, alice = next(sessions(app))
    visit(alice, "/inbox")
    visit(alice, "/inbox")
    with app.test_request_context():
        assert cache.delete_cached(app.view_functions["inbox"])
    visit(alice, "/inbox")
    assert runs == ["alice", "alice"]
