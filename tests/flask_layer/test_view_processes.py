"""Two "processes" (two apps, each with its own cache state) on one shared backend: a
view's miss holds the backend lock until its response is judged at the end of the request,
so the other process waits for it and reads what it stored, or runs the view itself when
the final response was refused (a cookie set by an ``after_request`` handler)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response

from flask_stash import Cache

from .. import servers


def shared_config(request: Any, tmp_path: Path) -> dict[str, Any]:
    if request.param == "filesystem":
        return {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path / "shared")}
    server: servers.Server = request.getfixturevalue("redis_single")
    return {
        "CACHE_TYPE": "RedisCache",
        "CACHE_REDIS_URL": f"redis://{server.address}/0",
        "CACHE_KEY_PREFIX": f"procs{time.monotonic_ns()}:",
    }


@pytest.fixture(params=["filesystem", pytest.param("redis", marks=pytest.mark.server)])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    return shared_config(request, tmp_path)


@pytest.mark.parametrize("sets_cookie", [False, True])
def test_the_other_process_waits_for_the_end_of_the_request(
    config: dict[str, Any], sets_cookie: bool
) -> None:
    runs: list[str] = []
    started, release = threading.Event(), threading.Event()

    def make(name: str) -> tuple[Flask, Cache]:
        app = Flask(name)
        cache = Cache(app, config=config)

        @app.get("/report")
        @cache.cached(timeout=60)
        def report() -> str:
            runs.append(name)
            started.set()
            release.wait(10)
            return f"report by {name}"

        @app.after_request
        def cookie(response: Response) -> Response:
            if sets_cookie:
                response.set_cookie("seen", "1")
            return response

        return app, cache

    (first_app, first_cache), (second_app, second_cache) = make("first"), make("second")
    answers: dict[str, str] = {}
    first = threading.Thread(
        target=lambda: answers.update(first=first_app.test_client().get("/report").text)
    )
    first.start()
    assert started.wait(10)
    polls: list[float] = []

    def sleep(seconds: float) -> None:  # the first request ends while the second polls
        polls.append(seconds)
        if len(polls) == 2:
            release.set()
            first.join(10)

    second_cache.state(second_app).store.stampede.sleep = sleep  # type: ignore[method-assign]
    answers["second"] = second_app.test_client().get("/report").text
    assert answers["first"] == "report by first"
    if sets_cookie:  # refused at the end of the request: the second ran the view itself
        assert answers["second"] == "report by second"
        assert runs == ["first", "second"]
    else:
        assert answers["second"] == "report by first"
        assert runs == ["first"]
    assert len(polls) >= 2
    first_cache.state(first_app).store.close()
    second_cache.state(second_app).store.close()


def test_a_key_whose_response_was_refused_is_never_waited_for(config: dict[str, Any]) -> None:
    """Hit-for-miss: after a refused response, the next requests run the view at once,
    even while another process holds the key's lock, and a storable answer is stored."""
    runs: list[str] = []
    storable: list[bool] = [False]

    def make(name: str) -> tuple[Flask, Cache]:
        app = Flask(name)
        cache = Cache(app, config=config)

        @app.get("/profile")
        @cache.cached(timeout=60)
        def profile() -> Response:
            runs.append(name)
            response = Response(f"profile by {name}")
            if not storable[0]:
                response.set_cookie("visitor", name)
            return response

        return app, cache

    (first_app, first_cache), (second_app, second_cache) = make("first"), make("second")
    assert first_app.test_client().get("/profile").text == "profile by first"
    second_store = second_cache.state(second_app).store
    key = second_store.backend_key("view//profile") + ":lock"
    assert second_store.backend.acquire_lock(key, "someone else", 30)  # type: ignore[attr-defined]

    def sleep(seconds: float) -> None:
        raise AssertionError("waited for a computation whose result cannot be stored")

    second_store.stampede.sleep = sleep  # type: ignore[method-assign]
    assert second_app.test_client().get("/profile").text == "profile by second"
    storable[0] = True
    assert second_app.test_client().get("/profile").text == "profile by second"
    assert first_app.test_client().get("/profile").text == "profile by second"  # stored
    assert runs == ["first", "second", "second"]
    second_store.backend.release_lock(key, "someone else")  # type: ignore[attr-defined]
    first_cache.state(first_app).store.close()
    second_store.close()
