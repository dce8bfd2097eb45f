"""Tags through the Flask API: errors, private views, several apps on one backend.

The option itself is checked on every front end by the option matrix
(``test_option_matrix.py``, ``tags``); the engine's behaviour on every backend by
``tests/core/test_tags.py``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_stash import Cache


def make(config: dict[str, Any] | None = None) -> tuple[Flask, Cache]:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "tags tests"
    return app, Cache(app, config=config or {"CACHE_TYPE": "SimpleCache"})


@pytest.mark.parametrize("decorator", ["memoize", "cached"])
@pytest.mark.parametrize("tags", [42, [b"raw"], [None], [""]])
def test_bad_tags_fail_at_decoration(decorator: str, tags: Any) -> None:
    _, cache = make()
    with pytest.raises((TypeError, ValueError), match="tag"):
        getattr(cache, decorator)(60, tags=tags)


def test_a_tags_callable_that_fails_loses_no_call(caplog: pytest.LogCaptureFixture) -> None:
    app, cache = make()
    runs: list[int] = []

    def broken(user_id: int) -> Any:
        return 42  # not a tag

    @cache.memoize(60, tags=broken)
    def profile(user_id: int) -> int:
        runs.append(user_id)
        return user_id

    with app.app_context(), caplog.at_level(logging.WARNING, "flask_stash"):
        assert profile(1) == 1
        assert profile(1) == 1
    assert runs == [1, 1]  # computed every time, never stored under a wrong tag set
    assert "must return a str or an iterable of str" in caplog.text


def test_a_view_whose_tags_fail_is_served_uncached() -> None:
    app, cache = make()

    @app.get("/u/<int:user_id>")
    @cache.cached(60, tags=lambda user_id: 1 / 0)
    def page(user_id: int) -> str:
        return f"user {user_id}"

    client = app.test_client()
    assert client.get("/u/3").text == "user 3"
    assert client.get("/u/3").text == "user 3"


def test_private_pages_keep_their_tags() -> None:
    app, cache = make()
    runs: list[str] = []

    @app.get("/me/<team>")
    @cache.cached(60, private=True, tags=lambda team: f"team:{team}")
    def me(team: str) -> str:
        runs.append(team)
        return f"{team} for {len(runs)}"

    alice = app.test_client()
    alice.set_cookie("session", "alice")
    bob = app.test_client()
    bob.set_cookie("session", "bob")
    first = [client.get("/me/red").text for client in (alice, bob, alice, bob)]
    assert len(runs) == 2  # one page per user
    with app.app_context():
        cache.invalidate_tags("team:red")
    again = [client.get("/me/red").text for client in (alice, bob)]
    assert len(runs) == 4
    assert again != first[:2]


def test_another_app_on_the_backend_invalidates(tmp_path: Path) -> None:
    config = {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path)}
    web, web_cache = make(config)
    worker, worker_cache = make(config)
    with web.app_context():
        web_cache.set("report", "old", tags=["reports"])
        assert web_cache.get("report") == "old"
    with worker.app_context():
        assert worker_cache.invalidate_tags("reports", "unused")
    with web.app_context():
        assert web_cache.get("report") is None
    with worker.app_context():
        assert worker_cache.stats(everyone=False)["tag_invalidations"] == {"": 2}
