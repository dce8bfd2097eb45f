"""The HTTP rules of cached views (``flask_stash.views.http``), function by function.

``test_http_views.py`` checks them end to end through ``@cache.cached``; here each rule is
pinned on its own: the exact reason a response is refused, the exact headers written (and
their spelling), and the exact variant digest, so that a changed rule fails a test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, Response, request, session
from flask.globals import request_ctx
from flask.sessions import SessionInterface

from flask_stash.views import http


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__)
    app.secret_key = "test-secret-key-of-some-length"
    return app


def response(*headers: tuple[str, str], status: int = 200) -> Response:
    built = Response("body", status=status)
    for name, value in headers:
        built.headers.add(name, value)
    return built


def names(built: Response) -> list[str]:
    """The header names as they go on the wire, in order."""
    return [name for name, _ in built.headers.to_wsgi_list()]


# -- requests ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "headers", "honor", "cacheable", "may_store"),
    [
        ("GET", {}, True, True, True),
        ("HEAD", {}, True, True, False),
        ("POST", {}, False, False, False),
        ("PUT", {}, True, False, False),
        ("GET", {"Cache-Control": "no-cache"}, True, False, True),
        ("GET", {"Cache-Control": "no-cache"}, False, True, True),
        ("GET", {"Range": "bytes=0-1"}, True, True, False),
    ],
)
def test_which_requests_read_and_store(
    app: Flask,
    method: str,
    headers: dict[str, str],
    honor: bool,
    cacheable: bool,
    may_store: bool,
) -> None:
    with app.test_request_context("/", method=method, headers=headers):
        assert http.request_is_cacheable(request, honor_no_cache=honor) is cacheable
        assert http.request_may_store(request) is may_store


# -- the session -----------------------------------------------------------------------------


class _Session(dict):  # type: ignore[type-arg]
    """A custom session class, with only the flags it is given."""

    def __init__(self, **flags: bool) -> None:
        super().__init__()
        for name, value in flags.items():
            setattr(self, name, value)


class _Interface(SessionInterface):
    def __init__(self, made: _Session) -> None:
        self.made = made

    def open_session(self, app: Flask, request: Any) -> _Session:
        return self.made

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        pass


def test_an_untouched_session_is_not_touched(app: Flask) -> None:
    with app.test_request_context("/"):
        assert http.session_touched() is False
        session.get("user")
        assert http.session_touched() is True


def test_without_a_secret_key_there_is_no_session_to_touch() -> None:
    app = Flask(__name__)
    with app.test_request_context("/"):
        assert session.get("user") is None  # the null session, read
        assert http.session_touched() is False


@pytest.mark.parametrize(
    ("flags", "touched"),
    [
        ({}, True),  # cannot tell: the safe answer
        ({"modified": False}, True),
        ({"accessed": False}, False),
        ({"accessed": False, "modified": False}, False),
        ({"accessed": False, "modified": True}, True),
        ({"accessed": True, "modified": False}, True),
    ],
)
def test_custom_sessions_without_flags_count_as_touched(
    app: Flask, flags: dict[str, bool], touched: bool
) -> None:
    app.session_interface = _Interface(_Session(**flags))
    with app.test_request_context("/"):
        assert http.session_touched() is touched


@pytest.fixture
def flask_3_0_context(app: Flask) -> Iterator[dict[str, Any]]:
    """A request context laid out as Flask 3.0 keeps it: the session under ``session``."""
    with app.test_request_context("/"):
        state = vars(request_ctx._get_current_object())  # type: ignore[attr-defined]
        saved = dict(state)
        state.pop("_session", None)
        try:
            yield state
        finally:
            state.clear()
            state.update(saved)


@pytest.mark.parametrize(("accessed", "touched"), [(True, True), (False, False)])
def test_the_session_is_found_where_flask_3_0_keeps_it(
    flask_3_0_context: dict[str, Any], accessed: bool, touched: bool
) -> None:
    flask_3_0_context["session"] = _Session(accessed=accessed, modified=False)
    assert http.session_touched() is touched


# -- what may be stored ------------------------------------------------------------------------

PAGE_REFUSALS = [
    ([("Set-Cookie", "a=1")], 200, "it sets a cookie"),
    ([("Set-Cookie", "a=1"), ("Cache-Control", "no-store")], 200, "it sets a cookie"),
    ([], 206, "it answers a range request"),
    ([("Content-Range", "bytes 0-1/4")], 200, "it answers a range request"),
    ([("Cache-Control", "no-store")], 200, "Cache-Control: no-store"),
    ([("Cache-Control", "no-cache")], 200, "Cache-Control: no-cache"),
    ([("Cache-Control", "max-age=0")], 200, "Cache-Control: max-age=0"),
    ([("Cache-Control", "public, s-maxage=0")], 200, "Cache-Control: max-age=0"),
    ([("Cache-Control", "private, max-age=60")], 200, "Cache-Control: private"),
    ([("Pragma", "no-cache")], 200, "Pragma: no-cache"),
    ([("Cache-Control", "max-age=60"), ("Pragma", "No-Cache")], 200, "Pragma: no-cache"),
    ([("Vary", "*")], 200, "Vary: *"),
    ([("Vary", "Accept, *")], 200, "Vary: *"),
    ([("Cache-Control", "max-age=60"), ("Pragma", "x")], 200, None),
    ([("Cache-Control", "public, max-age=60")], 200, None),
    ([("Vary", "Accept")], 200, None),
    ([], 200, None),
    ([], 203, None),
]


@pytest.mark.parametrize(("headers", "status", "reason"), PAGE_REFUSALS)
def test_refusal_reasons(headers: list[tuple[str, str]], status: int, reason: str | None) -> None:
    built = response(*headers, status=status)
    assert http.refusal(built, private=False, touched_session=False) == reason


def test_private_views_may_store_private_pages_and_session_reads() -> None:
    private_page = response(("Cache-Control", "private, max-age=60"))
    assert http.refusal(private_page, private=True, touched_session=True) is None
    assert http.refusal(response(), private=True, touched_session=True) is None
    assert http.refusal(response(), private=False, touched_session=True) == (
        "it was built while the session was read (use private=True to cache per user)"
    )


def test_a_streamed_file_is_not_stored() -> None:
    built = response()
    built.direct_passthrough = True
    assert http.refusal(built, private=False, touched_session=False) == "it streams a file"


# -- variants ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vary", "expected"),
    [
        (None, ()),
        ("Accept", ("accept",)),
        ("Cookie, accept-encoding ,  , Accept", ("accept", "accept-encoding", "cookie")),
        ("accept, Accept", ("accept",)),
    ],
)
def test_vary_names_are_lower_cased_sorted_and_unique(
    vary: str | None, expected: tuple[str, ...]
) -> None:
    built = response() if vary is None else response(("Vary", vary))
    assert http.vary_names(built) == expected


def test_the_variant_digest_is_pinned(app: Flask) -> None:
    """Keys written by one release are found by the next."""
    with app.test_request_context("/", headers={"Accept": "text/html"}):
        digest = http.variant(request, ["accept", "x-missing"])
        assert digest == hashlib.sha256(b"accept:text/html\nx-missing:").hexdigest()[:32]
        assert http.variant(request, []) == hashlib.sha256(b"").hexdigest()[:32]
        # A name that is not valid UTF-8 (a lone surrogate) still hashes.
        odd = "x-\udcff"
        assert (
            http.variant(request, [odd])
            == (hashlib.sha256(f"{odd}:".encode("utf-8", "surrogatepass")).hexdigest()[:32])
        )


# -- headers written ------------------------------------------------------------------------------


def test_validators_are_a_body_etag_and_the_storing_time() -> None:
    built = response()
    http.add_validators(built, b"abc", now=0.0)
    assert built.headers["ETag"] == '"' + hashlib.sha256(b"abc").hexdigest()[:40] + '"'
    assert built.headers["Last-Modified"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert names(built)[-2:] == ["ETag", "Last-Modified"]


def test_a_views_own_validators_are_kept() -> None:
    built = response(("ETag", '"mine"'), ("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT"))
    http.add_validators(built, b"abc", now=0.0)
    assert built.headers.getlist("ETag") == ['"mine"']
    assert built.headers.getlist("Last-Modified") == ["Wed, 21 Oct 2015 07:28:00 GMT"]


@pytest.mark.parametrize(
    ("remaining", "stale", "private", "expected"),
    [
        (59.9, 0, False, "public, max-age=59"),
        (60, 30, False, "public, max-age=60, stale-while-revalidate=30"),
        (60, 1, False, "public, max-age=60, stale-while-revalidate=1"),
        (60, 2.5, True, "private, max-age=60, stale-while-revalidate=2"),
        (0, 0, True, "private, max-age=0"),
        (None, 30, False, None),
    ],
)
def test_freshness_from_the_remaining_time(
    remaining: float | None, stale: float, private: bool, expected: str | None
) -> None:
    built = response()
    http.add_freshness(built, remaining, stale, private=private)
    assert built.headers.get("Cache-Control") == expected
    if expected is not None:
        assert names(built)[-1] == "Cache-Control"


def test_freshness_is_public_by_default_and_never_replaces_the_views_own() -> None:
    built = response()
    http.add_freshness(built, 10, 0)
    assert built.headers["Cache-Control"] == "public, max-age=10"
    own = response(("Cache-Control", "max-age=5"))
    http.add_freshness(own, 10, 0)
    assert own.headers.getlist("Cache-Control") == ["max-age=5"]


@pytest.mark.parametrize(
    ("label", "added"), [("HIT", [("Age", "12"), ("X-Cache", "HIT")]), (None, [("Age", "12")])]
)
def test_a_hit_gets_age_and_its_label(
    app: Flask, label: str | None, added: list[tuple[str, str]]
) -> None:
    built = response()
    before = built.headers.to_wsgi_list()
    with app.test_request_context("/"):
        answer = http.finish_hit(built, request, 12.9, label)
    assert answer is built
    assert answer.headers.to_wsgi_list() == before + added


def test_a_hit_the_client_has_is_304(app: Flask) -> None:
    built = response(("ETag", '"v1"'))
    with app.test_request_context("/", headers={"If-None-Match": '"v1"'}):
        assert http.finish_hit(built, request, 0, "HIT").status_code == 304


def test_mark_labels_responses_only() -> None:
    built = response()
    http.mark(built, "MISS")
    assert built.headers["X-Cache"] == "MISS"
    for label in (None, ""):
        unlabelled = response()
        http.mark(unlabelled, label)
        assert "X-Cache" not in unlabelled.headers
    http.mark("a plain string", "MISS")  # not a Response: left alone


# -- private pages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "control", "vary"),
    [
        ([], ["private"], ["Cookie"]),
        ([("Cache-Control", "public, max-age=60")], ["private, max-age=60"], ["Cookie"]),
        ([("Cache-Control", "max-age=60")], ["private, max-age=60"], ["Cookie"]),
        ([("Cache-Control", "Public, private")], ["private"], ["Cookie"]),
        ([("Cache-Control", 'public="a=b", max-age=60')], ["private, max-age=60"], ["Cookie"]),
        (
            [("Cache-Control", "public"), ("Cache-Control", "max-age=60")],
            ["private, max-age=60"],
            ["Cookie"],
        ),
        ([("Vary", "Accept-Encoding")], ["private"], ["Accept-Encoding, Cookie"]),
        ([("Vary", "Cookie, Accept")], ["private"], ["Cookie, Accept"]),
        ([("Vary", "Accept"), ("Vary", "cookie")], ["private"], ["Accept", "cookie"]),
    ],
)
def test_private_pages_say_private_and_vary_on_cookie(
    app: Flask, headers: list[tuple[str, str]], control: list[str], vary: list[str]
) -> None:
    built = response(*headers)
    with app.test_request_context("/"):
        http.mark_private(built, request, ["Authorization"])
    assert built.headers.getlist("Cache-Control") == control
    assert built.headers.getlist("Vary") == vary
    assert "Cache-Control" in names(built)


@pytest.mark.parametrize(
    "controls",
    [
        ["private"],
        ["private, max-age=60"],
        ["private,max-age=60"],  # not rewritten, not even to normalise the spacing
        ["private", "max-age=60"],  # nor joined
        ['private="Set-Cookie", max-age=5'],
        ['private="a=b"'],
    ],
)
def test_a_page_already_private_is_left_alone(app: Flask, controls: list[str]) -> None:
    built = response(*[("Cache-Control", value) for value in controls], ("Vary", "Cookie"))
    before = built.headers.to_wsgi_list()
    with app.test_request_context("/"):
        http.mark_private(built, request, ["Authorization"])
    assert built.headers.to_wsgi_list() == before


@pytest.mark.parametrize(
    ("environ_headers", "vary"),
    [
        ({}, ["Cookie"]),
        ({"Authorization": "Bearer x"}, ["Cookie, Authorization"]),
        ({"Authorization": "Bearer x", "X-Api-Key": "k"}, ["Cookie, Authorization, X-Api-Key"]),
        ({"X-Api-Key": "k"}, ["Cookie, X-Api-Key"]),
    ],
)
def test_private_pages_vary_on_the_credentials_the_request_carried(
    app: Flask, environ_headers: dict[str, str], vary: list[str]
) -> None:
    built = response()
    with app.test_request_context("/", headers=environ_headers):
        http.mark_private(built, request, ["Authorization", "X-Api-Key"])
    assert built.headers.getlist("Vary") == vary
    assert names(built)[-1] == "Vary"


def test_credentials_already_in_vary_are_not_repeated(app: Flask) -> None:
    built = response(("Cache-Control", "private"), ("Vary", "authorization"))
    with app.test_request_context("/", headers={"Authorization": "Bearer x"}):
        http.mark_private(built, request, ["Authorization"])
    assert built.headers.getlist("Vary") == ["authorization, Cookie"]
