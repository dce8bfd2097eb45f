"""HTTP-aware view caching: what is stored, variants, validators and caching headers."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, Response, abort, request, session, stream_with_context

from flask_stash import Cache
from flask_stash.testing import FakeClock
from flask_stash.views.audit import KeyAuditWarning


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, **config: Any) -> tuple[Flask, Cache, list[str]]:
    app = Flask(__name__)
    app.secret_key = "test-secret-key-of-some-length"
    cache = Cache(app, config={"CACHE_OPTIONS": {"clock": clock}, **config})
    return app, cache, []


def test_head_misses_are_not_stored_and_head_hits_read_the_get_entry(clock: FakeClock) -> None:
    app, cache, runs = make(clock)

    @app.get("/page")
    @cache.cached(timeout=60)
    def page() -> str:
        runs.append(request.method)
        return "" if request.method == "HEAD" else "full body"  # a view that skips HEAD bodies

    client = app.test_client()
    head = client.head("/page")
    assert head.status_code == 200
    assert head.data == b""
    assert client.get("/page").data == b"full body"
    hit = client.head("/page")
    assert hit.data == b""
    assert hit.headers["Content-Length"] == "9"
    assert client.get("/page").data == b"full body"
    assert runs == ["HEAD", "GET"]


def test_other_methods_are_never_cached(clock: FakeClock) -> None:
    app, cache, runs = make(clock)

    @app.route("/form", methods=["GET", "POST"])
    @cache.cached(timeout=60)
    def form() -> str:
        runs.append(request.method)
        return f"{request.method} #{len(runs)}"

    client = app.test_client()
    assert client.post("/form").text == "POST #1"
    assert client.post("/form").text == "POST #2"
    assert client.get("/form").text == "GET #3"
    assert client.get("/form").text == "GET #3"


@pytest.mark.parametrize(
    "outcome",
    [lambda: ("boom", 500), lambda: abort(404), lambda: ("gone", 410), lambda: abort(503)],
)
def test_error_responses_are_served_not_stored(clock: FakeClock, outcome: Any) -> None:
    app, cache, runs = make(clock)

    @app.get("/e")
    @cache.cached(timeout=60)
    def error_view() -> Any:
        runs.append("run")
        return outcome()

    client = app.test_client()
    first, second = client.get("/e"), client.get("/e")
    assert first.status_code == second.status_code >= 400
    assert runs == ["run", "run"]


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda r: r.set_cookie("tracking", "abc"), "Set-Cookie"),
        (lambda r: r.headers.__setitem__("Cache-Control", "private"), "private"),
        (lambda r: r.headers.__setitem__("Cache-Control", "no-store"), "no-store"),
        (lambda r: r.headers.__setitem__("Vary", "*"), "Vary: *"),
    ],
)
def test_unshareable_responses_are_not_stored(clock: FakeClock, build: Any, reason: str) -> None:
    app, cache, runs = make(clock)

    @app.get("/r")
    @cache.cached(timeout=60)
    def view() -> Response:
        runs.append("run")
        response = Response(f"#{len(runs)}")
        build(response)
        return response

    client = app.test_client()
    assert client.get("/r").text == "#1"
    assert client.get("/r").text == "#2", reason


def test_a_response_built_from_the_session_is_not_stored(clock: FakeClock) -> None:
    app, cache, runs = make(clock)

    @app.get("/me")
    @cache.cached(timeout=60)
    def me() -> str:
        runs.append("run")
        return f"hello {session.get('user', 'anonymous')}"

    client = app.test_client()
    client.get("/me")
    client.get("/me")
    assert runs == ["run", "run"]


def test_two_users_never_see_each_other_with_default_settings(clock: FakeClock) -> None:
    app, cache, _ = make(clock)

    @app.post("/login/<name>")
    def login(name: str) -> str:
        session["user"] = name
        return "ok"

    @app.get("/dashboard")
    @cache.cached(timeout=600)
    def dashboard() -> str:
        return f"private data of {session.get('user')}"

    alice, bob = app.test_client(), app.test_client()
    alice.post("/login/alice")
    bob.post("/login/bob")
    for _ in range(3):
        assert alice.get("/dashboard").text == "private data of alice"
        assert bob.get("/dashboard").text == "private data of bob"


def test_private_views_are_cached_per_user(clock: FakeClock) -> None:
    app, cache, runs = make(clock)

    @app.post("/login/<name>")
    def login(name: str) -> str:
        session["user"] = name
        return "ok"

    @app.get("/inbox")
    @cache.cached(timeout=600, private=True, private_key=lambda: session.get("user"))
    def inbox() -> str:
        runs.append(session.get("user", ""))
        return f"inbox of {session.get('user')}"

    alice, bob = app.test_client(), app.test_client()
    alice.post("/login/alice")
    bob.post("/login/bob")
    for _ in range(2):
        assert alice.get("/inbox").text == "inbox of alice"
        assert bob.get("/inbox").text == "inbox of bob"
    assert sorted(runs) == ["alice", "bob"]


def test_vary_keeps_variants_apart(clock: FakeClock) -> None:
    app, cache, runs = make(clock)

    @app.get("/greet")
    @cache.cached(timeout=60)
    def greet() -> Response:
        language = request.headers.get("Accept-Language", "en")[:2]
        runs.append(language)
        response = Response({"fr": "bonjour", "de": "hallo"}.get(language, "hello"))
        response.headers["Vary"] = "Accept-Language"
        return response

    client = app.test_client()
    for _ in range(2):
        assert client.get("/greet", headers={"Accept-Language": "fr"}).text == "bonjour"
        assert client.get("/greet", headers={"Accept-Language": "de"}).text == "hallo"
        assert client.get("/greet").text == "hello"
    assert runs == ["fr", "de", "en"]


def test_etag_and_if_none_match_give_304(clock: FakeClock) -> None:
    app, cache, _ = make(clock)

    @app.get("/doc")
    @cache.cached(timeout=60)
    def doc() -> str:
        return "document body"

    client = app.test_client()
    first = client.get("/doc")
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    assert first.headers["Last-Modified"]
    again = client.get("/doc", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    other = client.get("/doc", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200
    assert other.data == b"document body"
    since = client.get("/doc", headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert since.status_code == 304


def test_age_grows_with_the_clock_and_hits_stay_byte_identical(clock: FakeClock) -> None:
    app, cache, _ = make(clock)

    @app.get("/a")
    @cache.cached(timeout=60)
    def a() -> Response:
        return Response("body", headers={"X-Custom": "1"}, status=201)

    client = app.test_client()
    miss = client.get("/a")
    assert "Age" not in miss.headers
    clock.advance(7)
    hit = client.get("/a")
    assert hit.headers["Age"] == "7"
    assert (hit.status_code, hit.data, hit.headers["X-Custom"]) == (201, b"body", "1")
    clock.advance(5)
    assert client.get("/a").headers["Age"] == "12"


def test_x_cache_and_cache_control_headers(clock: FakeClock) -> None:
    app, cache, _ = make(clock, CACHE_VIEW_X_CACHE=True, CACHE_VIEW_CACHE_CONTROL=True)

    @app.get("/h")
    @cache.cached(timeout=60)
    def h() -> str:
        return "x"

    client = app.test_client()
    miss = client.get("/h")
    assert miss.headers["X-Cache"] == "MISS"
    assert miss.headers["Cache-Control"] == "public, max-age=60"
    clock.advance(20)
    hit = client.get("/h")
    assert hit.headers["X-Cache"] == "HIT"
    assert hit.headers["Cache-Control"] == "public, max-age=60"  # stored with the response


@pytest.mark.parametrize(("honor", "expected"), [(False, "#1"), (True, "#2")])
def test_no_cache_requests_bypass_the_read_only_when_configured(
    clock: FakeClock, honor: bool, expected: str
) -> None:
    app, cache, runs = make(clock, CACHE_VIEW_HONOR_NO_CACHE=honor)

    @app.get("/n")
    @cache.cached(timeout=60)
    def n() -> str:
        runs.append("run")
        return f"#{len(runs)}"

    client = app.test_client()
    client.get("/n")
    assert client.get("/n", headers={"Cache-Control": "no-cache"}).text == expected


def test_query_deny_list_stops_tracking_parameters_fragmenting(clock: FakeClock) -> None:
    app, cache, runs = make(clock)

    @app.get("/list")
    @cache.cached(timeout=60, query_string=True, query_deny=["utm_*", "fbclid"])
    def listing() -> str:
        runs.append(request.query_string.decode())
        return f"page {request.args.get('page', '1')}"

    client = app.test_client()
    assert client.get("/list?page=2&utm_source=x").text == "page 2"
    assert client.get("/list?utm_medium=y&page=2&fbclid=z").text == "page 2"
    assert client.get("/list?page=3").text == "page 3"
    assert len(runs) == 2


def test_query_allow_list(clock: FakeClock) -> None:
    app, cache, runs = make(clock)

    @app.get("/s")
    @cache.cached(timeout=60, query_string=True, query_allow=["q"])
    def search() -> str:
        runs.append("run")
        return request.args.get("q", "")

    client = app.test_client()
    client.get("/s?q=a&session_tag=1")
    client.get("/s?q=a&session_tag=2")
    client.get("/s?q=b")
    assert len(runs) == 2


def test_small_streams_are_buffered_and_big_ones_pass_through(clock: FakeClock) -> None:
    app, cache, runs = make(clock, CACHE_VIEW_MAX_BUFFER=100)

    def stream(size: int) -> Response:
        runs.append(str(size))

        def chunks() -> Iterator[str]:
            for _ in range(size // 10):
                yield "x" * 10

        return Response(stream_with_context(chunks()))

    @app.get("/small")
    @cache.cached(timeout=60)
    def small() -> Response:
        return stream(50)

    @app.get("/big")
    @cache.cached(timeout=60)
    def big() -> Response:
        return stream(500)

    client = app.test_client()
    assert client.get("/small").data == b"x" * 50
    assert client.get("/small").data == b"x" * 50
    assert client.get("/big").data == b"x" * 500
    assert client.get("/big").data == b"x" * 500
    assert runs == ["50", "500", "500"]


# -- the rules of issue 9: read on the final response, after after_request handlers -------


@pytest.mark.parametrize(
    "header",
    [
        ("Cache-Control", "no-cache"),
        ("Cache-Control", "max-age=0"),
        ("Cache-Control", "public, s-maxage=0"),
        ("Pragma", "no-cache"),
    ],
)
@pytest.mark.parametrize("where", ["view", "after_request"])
def test_responses_that_forbid_reuse_are_not_stored(
    clock: FakeClock, header: tuple[str, str], where: str
) -> None:
    app, cache, runs = make(clock)

    @app.get("/fresh")
    @cache.cached(timeout=60)
    def fresh() -> Response:
        runs.append("run")
        response = Response("fresh")
        if where == "view":
            response.headers[header[0]] = header[1]
        return response

    @app.after_request
    def late(response: Response) -> Response:
        if where == "after_request":
            response.headers[header[0]] = header[1]
        return response

    client = app.test_client()
    assert client.get("/fresh").text == "fresh"
    assert client.get("/fresh").text == "fresh"
    assert runs == ["run", "run"]


def test_a_cookie_set_by_an_after_request_handler_prevents_storing(clock: FakeClock) -> None:
    app, cache, runs = make(clock)

    @app.get("/tracked")
    @cache.cached(timeout=60)
    def tracked() -> str:
        runs.append("run")
        return "page"

    @app.after_request
    def tracker(response: Response) -> Response:
        response.set_cookie("visitor", str(len(runs)))
        return response

    client = app.test_client()
    client.get("/tracked")
    client.get("/tracked")
    assert runs == ["run", "run"]


def test_vary_added_by_an_after_request_handler_keeps_variants_apart(clock: FakeClock) -> None:
    app, cache, runs = make(clock)

    @app.get("/hello")
    @cache.cached(timeout=60)
    def hello() -> str:
        language = request.accept_languages.best_match(["en", "fr"]) or "en"
        runs.append(language)
        return {"en": "hello", "fr": "bonjour"}[language]

    @app.after_request
    def vary(response: Response) -> Response:
        response.vary.add("Accept-Language")
        return response

    client = app.test_client()
    for _ in range(2):
        assert client.get("/hello", headers={"Accept-Language": "fr"}).text == "bonjour"
        assert client.get("/hello", headers={"Accept-Language": "en"}).text == "hello"
    assert runs == ["fr", "en"]


def test_range_requests_and_206_answers_are_never_stored(clock: FakeClock) -> None:
    app, cache, runs = make(clock)

    @app.get("/file")
    @cache.cached(timeout=60)
    def file() -> Response:
        runs.append(request.headers.get("Range", "full"))
        response = Response("0123456789")
        return response.make_conditional(request, accept_ranges=True, complete_length=10)

    client = app.test_client()
    partial = client.get("/file", headers={"Range": "bytes=0-3"})
    assert partial.status_code == 206
    assert partial.data == b"0123"
    full = client.get("/file")
    assert full.status_code == 200
    assert full.data == b"0123456789"
    assert client.get("/file").data == b"0123456789"
    assert runs == ["bytes=0-3", "full"]


def test_a_stream_sends_its_first_byte_before_the_generator_finishes(clock: FakeClock) -> None:
    app, cache, _ = make(clock, CACHE_VIEW_MAX_BUFFER=1 << 20)
    released = threading.Event()
    finished: list[bool] = []

    @app.get("/events")
    @cache.cached(timeout=60)
    def events() -> Response:
        def generate() -> Iterator[str]:
            yield "data: first\n\n"
            released.wait(5)  # a buffering cache would block here before sending anything
            finished.append(True)
            yield "data: second\n\n"

        return Response(generate(), mimetype="text/event-stream")

    response = app.test_client().get("/events", buffered=False)
    chunks = iter(response.response)
    assert next(chunks) == b"data: first\n\n"
    assert finished == []
    released.set()
    assert b"".join(chunks) == b"data: second\n\n"
    response.close()


def test_an_after_request_error_stores_nothing(clock: FakeClock) -> None:
    app, cache, runs = make(clock)
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/fragile")
    @cache.cached(timeout=60)
    def fragile() -> str:
        runs.append("run")
        return "fragile"

    @app.after_request
    def broken(response: Response) -> Response:
        if len(runs) == 1:
            raise RuntimeError("after_request failed")
        return response

    client = app.test_client()
    assert client.get("/fragile").status_code == 500
    assert client.get("/fragile").text == "fragile"
    assert runs == ["run", "run"]


def test_a_view_that_calls_itself_does_not_wait_on_its_own_claim(clock: FakeClock) -> None:
    app, cache, runs = make(clock)

    @app.get("/self")
    @cache.cached(timeout=60)
    def itself() -> str:
        runs.append("run")
        if len(runs) == 1:
            inner = itself()  # the view path answers with a response
            return f"outer({inner.get_data(as_text=True)})"
        return "inner"

    assert app.test_client().get("/self").text == "outer(inner)"
    assert app.test_client().get("/self").text == "outer(inner)"
    assert runs == ["run", "run"]


def test_a_generator_view_that_fails_midway_releases_its_claim(clock: FakeClock) -> None:
    app, cache, runs = make(clock)
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/gen")
    @cache.cached(timeout=60)
    def gen() -> Iterator[str]:
        runs.append("run")
        yield "a"
        if len(runs) == 1:
            raise RuntimeError("broken halfway")
        yield "b"

    client = app.test_client()
    assert client.get("/gen").status_code == 500
    with app.app_context():
        assert len(cache.store.stampede.flights) == 0  # nobody will wait for a dead computation
    assert client.get("/gen").text == "ab"
    assert client.get("/gen").text == "ab"
    assert runs == ["run", "run"]


def test_an_audit_warning_raised_as_an_error_still_releases_the_claim(clock: FakeClock) -> None:
    app, cache, runs = make(clock, CACHE_KEY_AUDIT=True)
    app.debug = True

    @app.get("/lang")
    @cache.cached(timeout=60)
    def lang() -> str:
        runs.append("run")
        return request.headers.get("Accept-Language", "en")

    client = app.test_client()
    with warnings.catch_warnings():
        warnings.simplefilter("error", KeyAuditWarning)
        with pytest.raises(KeyAuditWarning, match=r"(?i)accept-language"):
            client.get("/lang", headers={"Accept-Language": "fr"})
    with app.app_context():
        assert len(cache.store.stampede.flights) == 0


def test_a_response_replaced_by_an_after_request_handler_is_not_stored(clock: FakeClock) -> None:
    app, cache, runs = make(clock)

    @app.get("/wrapped")
    @cache.cached(timeout=60)
    def wrapped() -> str:
        runs.append("run")
        return "inner"

    @app.after_request
    def replace(response: Response) -> Response:
        return Response(f"wrapped {response.get_data(as_text=True)}")

    client = app.test_client()
    assert client.get("/wrapped").text == "wrapped inner"
    with app.app_context():
        assert len(cache.store.stampede.flights) == 0  # the claim ended with the request
    assert client.get("/wrapped").text == "wrapped inner"
    assert runs == ["run", "run"]


def test_a_view_called_directly_in_a_request_context_stores_nothing(clock: FakeClock) -> None:
    app, cache, runs = make(clock)

    @app.get("/direct")
    @cache.cached(timeout=60)
    def direct() -> str:
        runs.append("run")
        return "direct"

    with app.test_request_context("/direct"):
        assert direct().get_data(as_text=True) == "direct"  # type: ignore[attr-defined]
        assert direct().get_data(as_text=True) == "direct"  # type: ignore[attr-defined]
    with app.app_context():
        assert len(cache.store.stampede.flights) == 0
    assert app.test_client().get("/direct").text == "direct"
    assert app.test_client().get("/direct").text == "direct"
    assert runs == ["run", "run", "run"]
