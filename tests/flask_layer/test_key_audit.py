"""The key audit (``CACHE_KEY_AUDIT``): every request input a cached view reads that its
key ignores is flagged once; what the key covers, and what Flask and werkzeug read for
themselves, is not; the request, ``g`` and the URL adapter are put back after the view."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import (
    Flask,
    Request,
    Response,
    g,
    render_template_string,
    request,
    url_for,
)
from flask.globals import app_ctx, request_ctx

from flask_stash import Cache
from flask_stash.testing import FakeClock
from flask_stash.views.audit import KeyAuditWarning
from flask_stash.views.auditrecord import REQUEST_INPUTS


def make(clock: FakeClock, debug: bool = True, **config: Any) -> tuple[Flask, Cache]:
    app = Flask(__name__)
    app.secret_key = "test-secret-key-of-some-length"
    app.debug = debug
    settings = {"CACHE_OPTIONS": {"clock": clock}, "CACHE_KEY_AUDIT": True, **config}
    return app, Cache(app, config=settings)


def cached_view(clock: FakeClock, body: Callable[[], Any], **options: Any) -> tuple[Flask, Cache]:
    """An app whose ``/page`` (cached with ``options``) returns ``body()``; ``g.user`` is
    set before every request, as a login hook would."""
    app, cache = make(clock)
    app.config.update(options.pop("app_config", {}))

    @app.before_request
    def load_user() -> None:
        g.user = "alice"

    @app.get("/page")
    @cache.cached(timeout=60, **options)
    def page() -> Any:
        return body()

    @app.get("/other")
    def other() -> str:
        return "other"

    return app, cache


def quietly(client_call: Callable[[], Any]) -> Any:
    """Run a request and check that the audit said nothing.

    Recorded, not raised: the audit reports at the end of the request, where an exception
    is logged, not propagated.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = client_call()
    assert [str(warning.message) for warning in caught] == []
    return result


def findings(client_call: Callable[[], Any]) -> list[str]:
    """The key audit's warnings during one request (any other warning is an error)."""
    with pytest.warns(KeyAuditWarning) as caught:
        assert client_call().status_code == 200
    return [str(warning.message) for warning in caught]


# Each blind spot: what the view reads, the request, and what the warning must say.
BLIND_SPOTS = {
    "host": (lambda: request.host, "/page", "the host (request.host)"),
    "url_root": (lambda: request.url_root, "/page", "the host (request.url_root)"),
    "host_url": (lambda: request.host_url, "/page", "the host (request.host_url)"),
    "root_url": (lambda: request.root_url, "/page", "the host (request.root_url)"),
    "base_url": (lambda: request.base_url, "/page", "the host (request.base_url)"),
    "url": (lambda: request.url, "/page?a=1", "the query string (request.url)"),
    "url host": (lambda: request.url, "/page?a=1", "the host (request.url)"),
    "full_path": (lambda: request.full_path, "/page?a=1", "the query string (request.full_path)"),
    "query_string": (
        lambda: request.query_string.decode(),
        "/page?a=1",
        "the query string (request.query_string)",
    ),
    "remote_addr": (
        lambda: request.remote_addr,
        "/page",
        "the client address (request.remote_addr)",
    ),
    "access_route": (
        lambda: ",".join(request.access_route),
        "/page",
        "the client address (request.access_route)",
    ),
    "server": (lambda: request.server, "/page", "the host (request.server)"),
    "host header": (
        lambda: request.headers["Host"],
        "/page",
        "the host (request.headers['Host'])",
    ),
    "scheme": (lambda: request.scheme, "/page", "the URL scheme (request.scheme)"),
    "is_secure": (lambda: str(request.is_secure), "/page", "the URL scheme (request.is_secure)"),
    "environ header": (
        lambda: request.environ.get("HTTP_X_TENANT", ""),
        "/page",
        "headers ['x-tenant']",
    ),
    "environ host": (
        lambda: request.environ["HTTP_HOST"],
        "/page",
        "the host (request.environ['HTTP_HOST'])",
    ),
    "environ query": (
        lambda: request.environ["QUERY_STRING"],
        "/page?a=1",
        "the query string (request.environ['QUERY_STRING'])",
    ),
    "environ other": (
        lambda: request.environ.get("REMOTE_USER", "nobody"),
        "/page",
        "WSGI environ keys ['REMOTE_USER']",
    ),
    "whole environ": (lambda: len(dict(request.environ)), "/page", "WSGI environ keys ['*'"),
    "external url": (
        lambda: url_for("other", _external=True),
        "/page",
        "the host (url_for(..., _external=True)): a request with a forged Host header",
    ),
    "external url scheme": (
        lambda: url_for("other", _external=True),
        "/page",
        "the URL scheme (url_for(..., _external=True))",
    ),
    "g attribute": (lambda: g.user, "/page", "attributes of flask.g set before the view ['user']"),
    "g.get": (lambda: g.get("user"), "/page", "attributes of flask.g set before the view ['user']"),
    "in g": (lambda: "user" in g, "/page", "attributes of flask.g set before the view ['user']"),
    "getattr g": (
        lambda: getattr(g, "user", None),
        "/page",
        "attributes of flask.g set before the view ['user']",
    ),
    "template reads g": (
        lambda: render_template_string("{{ g.user }}"),
        "/page",
        "attributes of flask.g set before the view ['user']",
    ),
    "template reads host": (
        lambda: render_template_string("{{ request.host_url }}"),
        "/page",
        "the host (request.host_url)",
    ),
    "args.copy": (lambda: request.args.copy(), "/page?a=1", "query arguments ['*']"),
    "args.values": (lambda: list(request.args.values()), "/page?a=1", "query arguments ['*']"),
    "args.lists": (lambda: list(request.args.lists()), "/page?a=1", "query arguments ['*']"),
    "args.keys": (lambda: list(request.args.keys()), "/page?a=1", "query arguments ['*']"),
    "args.listvalues": (
        lambda: list(request.args.listvalues()),
        "/page?a=1",
        "query arguments ['*']",
    ),
    "len(args)": (lambda: len(request.args), "/page?a=1", "query arguments ['*']"),
    "dict(args)": (lambda: dict(request.args), "/page?a=1", "query arguments ['*'"),
}


@pytest.mark.parametrize("case", BLIND_SPOTS, ids=list(BLIND_SPOTS))
def test_each_blind_spot_is_flagged(clock: FakeClock, case: str) -> None:
    body, url, expected = BLIND_SPOTS[case]
    app, _ = cached_view(clock, lambda: str(body()))
    messages = findings(lambda: app.test_client().get(url, headers={"X-Tenant": "acme"}))
    assert [m for m in messages if m.startswith(f"cached view page read {expected}")], messages


def test_every_watched_request_attribute_is_tested() -> None:
    tested = {case.split()[0] for case in BLIND_SPOTS}
    assert set(REQUEST_INPUTS) <= tested


def test_a_finding_says_what_to_do_and_goes_to_the_log(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = cached_view(clock, lambda: request.host + url_for("other", _external=True))
    with (
        caplog.at_level(logging.WARNING, logger="flask_stash"),
        pytest.warns(KeyAuditWarning) as caught,
    ):
        app.test_client().get("/page")
    host = [str(w.message) for w in caught if "the host" in str(w.message)]
    assert host == [
        "cached view page read the host (request.host, url_for(..., _external=True)): a "
        "request with a forged Host header would be stored and served to everyone (set "
        "SERVER_NAME so that external URLs never come from the request, send Vary: Host, "
        "or include request.host in a key_prefix callable; TRUSTED_HOSTS limits the host "
        "names accepted, not their port); its cache key ignores them"
    ]
    assert host[0] in caplog.messages


def test_async_views_are_audited(clock: FakeClock) -> None:
    app, cache = make(clock)

    @app.get("/page")
    @cache.cached(timeout=60)
    async def page() -> str:
        return request.host + str(g.get("missing"))

    messages = findings(lambda: app.test_client().get("/page"))
    assert [m.split(" (")[0] for m in messages] == ["cached view page read the host"]


def test_findings_are_reported_once_per_view(clock: FakeClock) -> None:
    app, cache = cached_view(clock, lambda: request.remote_addr)
    client = app.test_client()
    with pytest.warns(KeyAuditWarning):
        client.get("/page")
    cache.clear()
    quietly(lambda: client.get("/page"))


# -- quiet when the key covers the input -----------------------------------------------------

QUERY_READS = {
    "full_path": lambda: request.full_path,
    "query_string": lambda: request.query_string.decode(),
    "environ": lambda: request.environ["QUERY_STRING"],
    "args.copy": lambda: request.args.copy(),
    "args.values": lambda: list(request.args.values()),
    "args.lists": lambda: list(request.args.lists()),
    "args.keys": lambda: list(request.args.keys()),
    "args.listvalues": lambda: list(request.args.listvalues()),
    "len(args)": lambda: len(request.args),
    "dict(args)": lambda: dict(request.args),
    "args.get": lambda: request.args.get("a"),
}


@pytest.mark.parametrize("case", QUERY_READS, ids=list(QUERY_READS))
def test_query_reads_are_quiet_with_query_string(clock: FakeClock, case: str) -> None:
    body = QUERY_READS[case]
    app, _ = cached_view(clock, lambda: str(body()), query_string=True)
    assert quietly(lambda: app.test_client().get("/page?a=1")).status_code == 200


def test_url_with_query_string_is_flagged_only_for_host_and_scheme(clock: FakeClock) -> None:
    app, _ = cached_view(clock, lambda: request.url, query_string=True)
    with pytest.warns(KeyAuditWarning) as caught:
        app.test_client().get("/page?a=1")
    messages = [str(w.message) for w in caught]
    assert [m.split(" (")[0] for m in messages] == [
        "cached view page read the host",
        "cached view page read the URL scheme",
    ]


@pytest.mark.parametrize(
    "body",
    [lambda: g.user, lambda: g.get("user"), lambda: "user" in g, lambda: list(g)],
    ids=["attribute", "get", "in", "iter"],
)
def test_g_reads_are_quiet_for_private_views(clock: FakeClock, body: Callable[[], Any]) -> None:
    app, _ = cached_view(clock, lambda: str(body()), private=True)
    assert quietly(lambda: app.test_client().get("/page")).status_code == 200


def test_g_set_by_the_view_itself_is_not_a_request_input(clock: FakeClock) -> None:
    def body() -> str:
        g.page_title = "Home"
        g.user = "overwritten by the view"
        return f"{g.page_title} {g.user}"

    app, _ = cached_view(clock, body)
    assert quietly(lambda: app.test_client().get("/page")).text == "Home overwritten by the view"


def test_host_reads_are_quiet_with_vary_host(clock: FakeClock) -> None:
    def body() -> Response:
        response = Response(request.host + request.headers["Host"])
        response.headers["Vary"] = "Host"
        return response

    app, _ = cached_view(clock, body)
    assert quietly(lambda: app.test_client().get("/page")).status_code == 200


def test_external_urls_are_quiet_with_server_name_and_a_fixed_scheme(clock: FakeClock) -> None:
    app, _ = cached_view(
        clock,
        lambda: url_for("other", _external=True, _scheme="https"),
        app_config={"SERVER_NAME": "example.com"},
    )
    # The request comes in under SERVER_NAME: Flask 3.0 answers 404 to any other Host.
    response = quietly(lambda: app.test_client().get("/page"))
    assert response.text == "https://example.com/other"


def test_server_name_fixes_external_urls_not_the_scheme(clock: FakeClock) -> None:
    app, _ = cached_view(
        clock, lambda: url_for("other", _external=True), app_config={"SERVER_NAME": "example.com"}
    )
    with pytest.warns(KeyAuditWarning) as caught:
        app.test_client().get("/page")
    assert [str(w.message).split(" (")[0] for w in caught] == [
        "cached view page read the URL scheme"
    ]


def test_cookie_header_is_keyed_for_private_views(clock: FakeClock) -> None:
    app, _ = cached_view(clock, lambda: request.headers.get("Cookie", ""), private=True)
    client = app.test_client()
    client.set_cookie("theme", "dark")
    assert quietly(lambda: client.get("/page")).text == "theme=dark"


# -- Flask and werkzeug reading for themselves -------------------------------------------------


def test_no_false_positive_from_flask_and_werkzeug_internals(clock: FakeClock) -> None:
    app, cache = make(clock)
    template = "{{ request.path }} {{ url_for('page', x=1) }} {{ request.args.get('q') }}"

    @app.before_request
    def before() -> None:  # reads outside the view are not the view's
        g.user = "alice"
        _ = request.host, request.url, request.remote_addr

    @app.get("/page")
    @cache.cached(timeout=60, query_string=True)
    def page() -> str:
        assert repr(request) == "<Request 'http://localhost/page?q=1' [GET]>"  # reads url, host
        return render_template_string(template) + url_for("page") + request.path

    response = quietly(lambda: app.test_client().get("/page?q=1"))
    assert response.text == "/page /page?x=1 1/page/page"


def test_template_only_view_is_quiet(clock: FakeClock) -> None:
    app, cache = make(clock)

    @app.get("/page")
    @cache.cached(timeout=60)
    def page() -> str:
        return render_template_string("<h1>{{ title }}</h1>", title="Home")

    assert quietly(lambda: app.test_client().get("/page")).text == "<h1>Home</h1>"


# -- the request object, g and the URL adapter are put back ----------------------------------


def snapshot() -> tuple[Any, ...]:
    real = request._get_current_object()  # type: ignore[attr-defined]
    return (
        type(real),
        dict(vars(real)),
        type(app_ctx.g),
        dict(vars(app_ctx.g)),
        request_ctx.url_adapter,
    )


def restoring_app(clock: FakeClock, fail: bool) -> tuple[Flask, list[tuple[Any, ...]]]:
    app, cache = make(clock)
    seen: list[tuple[Any, ...]] = []

    @app.before_request
    def before() -> None:
        g.user = "alice"
        for name in REQUEST_INPUTS:  # computed before the view: nothing left to cache later
            getattr(request, name)
        _ = request.args, request.cookies
        seen.append(snapshot())

    @app.teardown_request
    def after(error: BaseException | None) -> None:
        seen.append(snapshot())

    @app.get("/page")
    @cache.cached(timeout=60)
    def page() -> str:
        inside = type(request._get_current_object())  # type: ignore[attr-defined]
        seen.append((inside, type(app_ctx.g), request_ctx.url_adapter))
        read = [str(getattr(request, name)) for name in REQUEST_INPUTS]
        read.append(request.environ["PATH_INFO"] + str(g.user) + str(dict(request.args)))
        read.append(url_for("page", _external=True))
        if fail:
            raise RuntimeError("the view failed")
        return " ".join(read)

    return app, seen


@pytest.mark.parametrize("fail", [False, True], ids=["returns", "raises"])
def test_request_g_and_url_adapter_are_restored(clock: FakeClock, fail: bool) -> None:
    app, seen = restoring_app(clock, fail)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KeyAuditWarning)
        if fail:
            with pytest.raises(RuntimeError, match="the view failed"):
                app.test_client().get("/page?a=1")
        else:
            assert app.test_client().get("/page?a=1").status_code == 200
    before, during, after = seen
    assert during[0] is not Request
    assert issubclass(during[0], Request)
    assert during[1] is not before[2]
    assert during[2] is not before[4]
    assert before[0] is Request
    assert after == before
    for earlier, later in ((before[1], after[1]), (before[3], after[3])):  # the same objects
        assert all(later[name] is value for name, value in earlier.items())


@pytest.mark.parametrize(
    ("config", "debug"),
    [({}, False), ({"CACHE_KEY_AUDIT": False}, True)],
    ids=["production", "off"],
)
def test_nothing_is_swapped_when_the_audit_is_off(
    clock: FakeClock, config: dict[str, Any], debug: bool
) -> None:
    app, cache = make(clock, debug=debug, **config)
    seen: list[Any] = []

    @app.get("/page")
    @cache.cached(timeout=60)
    def page() -> str:
        seen.append(type(request._get_current_object()))  # type: ignore[attr-defined]
        seen.append(type(request.args))
        return request.host + str(request.remote_addr)

    quietly(lambda: app.test_client().get("/page"))
    assert seen == [Request, type(Request({"QUERY_STRING": ""}).args)]


# -- moved from test_http_views -----------------------------------------------------------------


def test_key_audit_warns_once_for_an_unkeyed_header(clock: FakeClock) -> None:
    app, cache = make(clock)

    @app.get("/lang")
    @cache.cached(timeout=60)
    def lang() -> str:
        return request.headers.get("Accept-Language", "en")

    client = app.test_client()
    with pytest.warns(KeyAuditWarning, match=r"lang read headers \['accept-language'\]"):
        client.get("/lang", headers={"Accept-Language": "fr"})
    cache.clear()
    quietly(lambda: client.get("/lang"))  # the same finding is not repeated


def test_key_audit_reports_query_arguments_and_cookies(clock: FakeClock) -> None:
    app, cache = make(clock)

    @app.get("/q")
    @cache.cached(timeout=60)
    def q() -> str:
        return request.args.get("page", "1") + request.cookies.get("theme", "")

    with pytest.warns(KeyAuditWarning) as caught:
        app.test_client().get("/q?page=2")
    messages = " ".join(str(w.message) for w in caught)
    assert "query arguments ['page']" in messages
    assert "cookies ['theme']" in messages


def test_key_audit_is_quiet_when_the_key_covers_the_inputs(clock: FakeClock) -> None:
    app, cache = make(clock)

    @app.get("/ok")
    @cache.cached(timeout=60, query_string=True)
    def ok() -> Response:
        response = Response(request.args.get("page", "1") + request.headers.get("Accept", ""))
        response.headers["Vary"] = "Accept"
        return response

    quietly(lambda: app.test_client().get("/ok?page=2"))


def test_key_audit_is_off_outside_debug(clock: FakeClock) -> None:
    app, cache = make(clock, debug=False)

    @app.get("/lang")
    @cache.cached(timeout=60)
    def lang() -> str:
        return request.headers.get("Accept-Language", "en") + request.host + str(g.get("x"))

    quietly(lambda: app.test_client().get("/lang"))


# -- the test-suite recipe of docs/key-audit.md --------------------------------------------------


@contextmanager
def no_key_audit_findings() -> Iterator[None]:
    """The documented fixture body: record KeyAuditWarnings, fail on any."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", KeyAuditWarning)
        yield
    findings = [str(w.message) for w in caught if issubclass(w.category, KeyAuditWarning)]
    assert not findings, "\n".join(findings)


def test_the_documented_recipe_fails_a_test_that_finds_something(clock: FakeClock) -> None:
    app, _ = cached_view(clock, lambda: request.host)
    with (
        pytest.raises(AssertionError, match=r"read the host \(request.host\)"),
        no_key_audit_findings(),
    ):
        assert app.test_client().get("/page").status_code == 200


def test_the_documented_recipe_passes_a_clean_view(clock: FakeClock) -> None:
    app, _ = cached_view(clock, lambda: request.path)
    with no_key_audit_findings():
        assert app.test_client().get("/page").text == "/page"


def test_a_g_attribute_that_is_not_a_request_input_can_be_silenced(clock: FakeClock) -> None:
    def app_with_a_connection() -> Flask:
        app, cache = make(clock)

        @app.before_request
        def connect() -> None:
            g.db = "connection"

        @app.get("/page")
        @cache.cached(timeout=60)
        def page() -> str:
            return str(g.db)

        return app

    messages = findings(lambda: app_with_a_connection().test_client().get("/page"))
    assert [m.split(" (")[0] for m in messages] == [
        "cached view page read attributes of flask.g set before the view ['db']"
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings(  # the filter of docs/key-audit.md
            "ignore",
            r"cached view \w+ read attributes of flask\.g set before the view \['db'\]",
            KeyAuditWarning,
        )
        assert app_with_a_connection().test_client().get("/page").text == "connection"
    assert caught == []
