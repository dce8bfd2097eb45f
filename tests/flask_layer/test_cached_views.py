"""``@cache.cached`` on views and plain functions, with every Flask-Caching option."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import (
    Blueprint,
    Flask,
    abort,
    make_response,
    render_template_string,
    request,
    stream_template_string,
    stream_with_context,
)
from flask.views import MethodView, View

from flask_stash import Cache, CachedResponse
from flask_stash.testing import FakeClock

from .conftest import make_app

Calls = list[Any]


@pytest.fixture
def env(clock: FakeClock) -> tuple[Flask, Cache]:
    app = make_app(CACHE_TYPE="SimpleCache")
    cache = Cache(app, config={"CACHE_OPTIONS": {"clock": clock}})
    return app, cache


def counter() -> Callable[[], int]:
    return itertools.count(1).__next__


# -- keys ----------------------------------------------------------------------------------


def test_view_is_keyed_on_request_path(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    calls: Calls = []

    @app.route("/item/<int:item_id>")
    @cache.cached(timeout=50)
    def item(item_id: int) -> str:
        calls.append(item_id)
        return f"item {item_id} #{len(calls)}"

    client = app.test_client()
    assert client.get("/item/1").text == "item 1 #1"
    assert client.get("/item/1").text == "item 1 #1"
    assert client.get("/item/2").text == "item 2 #2"
    assert client.get("/item/2").text == "item 2 #2"
    assert calls == [1, 2]
    with app.app_context():
        assert cache.has("view//item/1")
        assert cache.has("view//item/2")
        assert not cache.has("view//item/3")


def test_deleting_the_view_key_invalidates(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    next_n = counter()

    @app.route("/page")
    @cache.cached()
    def page() -> str:
        return str(next_n())

    client = app.test_client()
    assert client.get("/page").text == "1"
    with app.app_context():
        assert cache.delete("view//page") is True
    assert client.get("/page").text == "2"
    assert client.get("/page").text == "2"


def test_key_prefix_with_placeholder(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    next_n = counter()

    @app.route("/p/<name>")
    @cache.cached(key_prefix="custom/%s")
    def p(name: str) -> str:
        return f"{name}{next_n()}"

    client = app.test_client()
    assert client.get("/p/x").text == "x1"
    assert client.get("/p/x").text == "x1"
    with app.app_context():
        assert cache.has("custom//p/x")
        assert not cache.has("view//p/x")


def test_constant_key_prefix_shares_one_entry_across_paths(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    next_n = counter()

    @app.route("/a/<name>")
    @cache.cached(key_prefix="constant")
    def a(name: str) -> str:
        return f"{name}{next_n()}"

    client = app.test_client()
    assert client.get("/a/one").text == "one1"
    assert client.get("/a/two").text == "one1"
    with app.app_context():
        assert cache.has("constant")


def test_callable_key_prefix(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    next_n = counter()

    @app.route("/me")
    @cache.cached(key_prefix=lambda: f"user/{request.args['u']}")
    def me() -> str:
        return f"{request.args['u']}{next_n()}"

    client = app.test_client()
    assert client.get("/me?u=ann").text == "ann1"
    assert client.get("/me?u=bob").text == "bob2"
    assert client.get("/me?u=ann").text == "ann1"
    with app.app_context():
        assert cache.has("user/ann")
        assert cache.has("user/bob")


def test_make_cache_key_callable(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    seen: list[dict[str, Any]] = []
    next_n = counter()

    def key(*args: Any, **kwargs: Any) -> str:
        seen.append(kwargs)
        return f"mykey/{kwargs['name']}/{request.args.get('v', '')}"

    @app.route("/k/<name>")
    @cache.cached(make_cache_key=key)
    def k(name: str) -> str:
        return f"{name}{next_n()}"

    client = app.test_client()
    assert client.get("/k/a?v=1").text == "a1"
    assert client.get("/k/a?v=1").text == "a1"
    assert client.get("/k/a?v=2").text == "a2"
    assert seen[0] == {"name": "a"}
    with app.app_context():
        assert cache.has("mykey/a/1")
        assert cache.has("mykey/a/2")


def test_query_string_keys_ignore_argument_order(env: tuple[Flask, Cache]) -> None:
    app, _ = env
    cache = env[1]
    next_n = counter()

    @app.route("/search")
    @cache.cached(query_string=True)
    def search() -> str:
        return f"{sorted(request.args.items())}#{next_n()}"

    client = app.test_client()
    first = client.get("/search?a=1&b=2").text
    assert first.endswith("#1")
    assert client.get("/search?b=2&a=1").text == first
    assert client.get("/search?a=1&b=3").text.endswith("#2")
    assert client.get("/search?a=1").text.endswith("#3")
    assert client.get("/search").text.endswith("#4")
    assert client.get("/search?a=1&b=2").text == first


def test_query_string_distinguishes_repeated_arguments(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    next_n = counter()

    @app.route("/multi")
    @cache.cached(query_string=True)
    def multi() -> str:
        return f"{request.args.getlist('t')}#{next_n()}"

    client = app.test_client()
    assert client.get("/multi?t=1&t=2").text == "['1', '2']#1"
    assert client.get("/multi?t=1").text == "['1']#2"
    # The order of a repeated argument is what getlist() returns: a different page.
    assert client.get("/multi?t=2&t=1").text == "['2', '1']#3"


def test_query_string_key_includes_key_prefix(env: tuple[Flask, Cache]) -> None:
    """Flask-Caching 2.5: the prefix (with the path) comes before the query hash."""
    app, cache = env

    @app.route("/q")
    @cache.cached(query_string=True)
    def q() -> str:
        return "q"

    app.test_client().get("/q?x=1")
    digest = hashlib.sha256(str((("x", "1"),)).encode()).hexdigest()
    with app.app_context():
        assert cache.has("view//q" + digest)


def test_source_check_changes_the_key() -> None:
    app = make_app(CACHE_TYPE="SimpleCache")
    cache = Cache(app)

    def one() -> str:
        return "one"

    def two() -> str:
        return "two"

    with app.test_request_context("/"):
        first = cache.cached(key_prefix="shared", source_check=True)(one)
        second = cache.cached(key_prefix="shared", source_check=True)(two)
        assert first() == "one"
        assert second() == "two"  # other source code: other key
        plain1 = cache.cached(key_prefix="plain")(one)
        plain2 = cache.cached(key_prefix="plain")(two)
        assert plain1() == "one"
        assert plain2() == "one"  # same key without source_check


def test_cache_source_check_setting_is_the_default() -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_SOURCE_CHECK=True)
    cache = Cache(app)

    def one() -> str:
        return "one"

    def two() -> str:
        return "two"

    with app.test_request_context("/"):
        assert cache.cached(key_prefix="s")(one)() == "one"
        assert cache.cached(key_prefix="s")(two)() == "two"
        # source_check=False on the decorator wins over the setting
        assert cache.cached(key_prefix="t", source_check=False)(one)() == "one"
        assert cache.cached(key_prefix="t", source_check=False)(two)() == "one"


def test_hash_method_is_used_for_query_string_keys(env: tuple[Flask, Cache]) -> None:
    app, cache = env

    @app.route("/h")
    @cache.cached(query_string=True, hash_method=hashlib.md5)
    def h() -> str:
        return "h"

    app.test_client().get("/h?x=1")
    digest = hashlib.md5(str((("x", "1"),)).encode()).hexdigest()
    with app.app_context():
        assert cache.has("view//h" + digest)


# -- options -------------------------------------------------------------------------------


def test_unless_without_arguments(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    next_n = counter()

    @app.route("/u")
    @cache.cached(unless=lambda: request.args.get("nocache") == "1")
    def u() -> str:
        return str(next_n())

    client = app.test_client()
    assert client.get("/u").text == "1"
    assert client.get("/u?nocache=1").text == "2"
    assert client.get("/u?nocache=1").text == "3"
    assert client.get("/u").text == "1"


def test_unless_with_arguments_gets_function_and_view_args(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    seen: list[tuple[Any, ...]] = []
    next_n = counter()

    def unless(f: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        seen.append((f, args, kwargs))
        return kwargs["name"] == "skip"

    @app.route("/ua/<name>")
    @cache.cached(unless=unless)
    def ua(name: str) -> str:
        return f"{name}{next_n()}"

    client = app.test_client()
    assert client.get("/ua/keep").text == "keep1"
    assert client.get("/ua/keep").text == "keep1"
    assert client.get("/ua/skip").text == "skip2"
    assert client.get("/ua/skip").text == "skip3"
    assert seen[0][0] is ua.uncached  # type: ignore[attr-defined]
    assert seen[0][2] == {"name": "keep"}


def test_unless_must_return_true_exactly(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    next_n = counter()

    @app.route("/truthy")
    @cache.cached(unless=lambda: 1)
    def truthy() -> str:
        return str(next_n())

    client = app.test_client()
    assert client.get("/truthy").text == "1"
    assert client.get("/truthy").text == "1"


def test_forced_update(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    next_n = counter()
    force = {"on": False}

    @app.route("/f")
    @cache.cached(forced_update=lambda: force["on"])
    def f() -> str:
        return str(next_n())

    client = app.test_client()
    assert client.get("/f").text == "1"
    assert client.get("/f").text == "1"
    force["on"] = True
    assert client.get("/f").text == "2"
    assert client.get("/f").text == "3"
    force["on"] = False
    assert client.get("/f").text == "3"  # the forced result was stored


def test_forced_update_with_view_arguments(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    next_n = counter()

    @app.route("/fa/<name>")
    @cache.cached(forced_update=lambda name: name == "fresh")
    def fa(name: str) -> str:
        return f"{name}{next_n()}"

    client = app.test_client()
    assert client.get("/fa/x").text == "x1"
    assert client.get("/fa/x").text == "x1"
    assert client.get("/fa/fresh").text == "fresh2"
    assert client.get("/fa/fresh").text == "fresh3"


def test_is_stale_on_a_function_gets_the_cached_value() -> None:
    app = make_app(CACHE_TYPE="SimpleCache")
    cache = Cache(app)
    seen: list[Any] = []
    next_n = counter()

    def is_stale(value: Any) -> bool:
        seen.append(value)
        return value == [1]

    @cache.cached(key_prefix="stale-fn", is_stale=is_stale)
    def numbers() -> list[int]:
        return [next_n()]

    with app.test_request_context("/"):
        assert numbers() == [1]
        assert numbers() == [2]  # [1] was stale
        assert numbers() == [2]
    assert seen == [[1], [2]]


def test_is_stale_on_a_view_gets_the_views_value(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    seen: list[Any] = []
    next_n = counter()

    def is_stale(value: Any) -> bool:
        seen.append(value)
        return False

    @app.route("/sv")
    @cache.cached(is_stale=is_stale)
    def sv() -> str:
        return f"body{next_n()}"

    client = app.test_client()
    client.get("/sv")
    assert client.get("/sv").text == "body1"
    (value,) = seen
    text = value if isinstance(value, str) else value.get_data(as_text=True)
    assert text == "body1"


def test_is_stale_on_a_view_recomputes(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    next_n = counter()
    stale = {"on": False}

    @app.route("/st")
    @cache.cached(is_stale=lambda value: stale["on"])
    def st() -> str:
        return str(next_n())

    client = app.test_client()
    assert client.get("/st").text == "1"
    assert client.get("/st").text == "1"
    stale["on"] = True
    assert client.get("/st").text == "2"
    stale["on"] = False
    assert client.get("/st").text == "2"


def test_is_stale_with_view_arguments(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    next_n = counter()
    seen: list[dict[str, Any]] = []

    def is_stale(value: Any, **kwargs: Any) -> bool:
        seen.append(kwargs)
        return kwargs["name"] == "old"

    # ``is_stale(value, *args)`` form: a second positional parameter.
    def is_stale_args(value: Any, name: str) -> bool:
        return is_stale(value, name=name)

    @app.route("/sa/<name>")
    @cache.cached(is_stale=is_stale_args)
    def sa(name: str) -> str:
        return f"{name}{next_n()}"

    client = app.test_client()
    assert client.get("/sa/new").text == "new1"
    assert client.get("/sa/new").text == "new1"
    assert client.get("/sa/old").text == "old2"
    assert client.get("/sa/old").text == "old3"
    assert seen[0] == {"name": "new"}


def test_response_filter_keeps_rejected_values_out(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    next_n = counter()
    seen: list[Any] = []

    def accept(rv: Any) -> bool:
        seen.append(rv)
        return "error" not in rv

    @app.route("/rf/<word>")
    @cache.cached(response_filter=accept)
    def rf(word: str) -> str:
        return f"{word}{next_n()}"

    client = app.test_client()
    assert client.get("/rf/error").text == "error1"
    assert client.get("/rf/error").text == "error2"
    assert client.get("/rf/fine").text == "fine3"
    assert client.get("/rf/fine").text == "fine3"
    assert seen[0] == "error1"  # the view's return value, as in Flask-Caching


def test_response_filter_on_tuple_return(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    next_n = counter()

    @app.route("/rt")
    @cache.cached(response_filter=lambda rv: rv[1] == 200)
    def rt() -> tuple[str, int]:
        n = next_n()
        return str(n), 200 if n > 1 else 203

    client = app.test_client()
    assert client.get("/rt").status_code == 203
    assert client.get("/rt").text == "2"
    assert client.get("/rt").text == "2"


def test_cache_none_on_function() -> None:
    app = make_app(CACHE_TYPE="SimpleCache")
    cache = Cache(app)
    calls: Calls = []

    @cache.cached(key_prefix="none-default")
    def nothing() -> None:
        calls.append("default")

    @cache.cached(key_prefix="none-kept", cache_none=True)
    def nothing_kept() -> None:
        calls.append("kept")

    with app.test_request_context("/"):
        assert nothing() is None
        assert nothing() is None
        assert nothing_kept() is None
        assert nothing_kept() is None
    assert calls == ["default", "default", "kept"]


def test_response_hit_indication(env: tuple[Flask, Cache]) -> None:
    app, cache = env

    @app.route("/hit")
    @cache.cached(response_hit_indication=True)
    def hit() -> str:
        return "hit"

    @app.route("/plain")
    @cache.cached()
    def plain() -> str:
        return "plain"

    client = app.test_client()
    first = client.get("/hit")
    assert "hit_cache" not in first.headers
    second = client.get("/hit")
    assert second.text == "hit"
    assert second.headers.get("hit_cache") == "True"
    client.get("/plain")
    assert "hit_cache" not in client.get("/plain").headers


@pytest.mark.parametrize(
    ("decorate", "seconds"),
    [
        (lambda cache: cache.cached(timeout=10), 10),
        (lambda cache: cache.cached(timeout=dt.timedelta(minutes=1)), 60),
        (lambda cache: cache.cached(20), 20),  # positionally, as Flask-Caching allows
    ],
)
def test_timeout_expires_on_the_fake_clock(
    env: tuple[Flask, Cache], clock: FakeClock, decorate: Any, seconds: int
) -> None:
    app, cache = env
    next_n = counter()

    @app.route("/t")
    @decorate(cache)
    def t() -> str:
        return str(next_n())

    client = app.test_client()
    assert client.get("/t").text == "1"
    clock.advance(seconds - 1)
    assert client.get("/t").text == "1"
    clock.advance(2)
    assert client.get("/t").text == "2"


def test_default_timeout_applies(clock: FakeClock) -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_DEFAULT_TIMEOUT=30)
    cache = Cache(app, config={"CACHE_OPTIONS": {"clock": clock}})
    next_n = counter()

    @app.route("/d")
    @cache.cached()
    def d() -> str:
        return str(next_n())

    client = app.test_client()
    assert client.get("/d").text == "1"
    clock.advance(29)
    assert client.get("/d").text == "1"
    clock.advance(2)
    assert client.get("/d").text == "2"


def test_negative_timeout_is_rejected_at_decoration(env: tuple[Flask, Cache]) -> None:
    _, cache = env
    with pytest.raises(ValueError):
        cache.cached(timeout=-5)


# -- wrapper attributes --------------------------------------------------------------------


def test_wrapper_attributes(env: tuple[Flask, Cache]) -> None:
    app, cache = env

    def original() -> str:
        return "x"

    wrapped = cache.cached(timeout=42)(original)
    assert wrapped.uncached is original  # type: ignore[attr-defined]
    assert wrapped.cache_timeout == 42  # type: ignore[attr-defined]
    assert wrapped.__name__ == "original"
    assert wrapped.__wrapped__ is original  # type: ignore[attr-defined]
    app.add_url_rule("/orig", view_func=wrapped)
    with app.app_context():
        assert wrapped.make_cache_key(path="/orig") == "view//orig"  # type: ignore[attr-defined]
    with app.test_request_context("/somewhere"):
        assert wrapped.make_cache_key() == "view//orig"  # type: ignore[attr-defined]


def test_default_cache_timeout_attribute_is_none(env: tuple[Flask, Cache]) -> None:
    _, cache = env
    wrapped = cache.cached()(lambda: "x")
    assert wrapped.cache_timeout is None  # type: ignore[attr-defined]


def test_changing_cache_timeout_affects_later_stores(
    env: tuple[Flask, Cache], clock: FakeClock
) -> None:
    app, cache = env
    next_n = counter()

    @app.route("/ct")
    @cache.cached(timeout=100)
    def ct() -> str:
        return str(next_n())

    ct.cache_timeout = 5  # type: ignore[attr-defined]
    client = app.test_client()
    assert client.get("/ct").text == "1"
    clock.advance(6)
    assert client.get("/ct").text == "2"


def test_uncached_bypasses_the_cache(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    next_n = counter()

    @cache.cached(key_prefix="unc")
    def f() -> int:
        return next_n()

    with app.test_request_context("/"):
        assert f() == 1
        assert f.uncached() == 2  # type: ignore[attr-defined]
        assert f() == 1


# -- delete_cached -------------------------------------------------------------------------


def test_delete_cached_with_path(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    next_n = counter()

    @app.route("/dc/<name>")
    @cache.cached()
    def dc(name: str) -> str:
        return f"{name}{next_n()}"

    client = app.test_client()
    assert client.get("/dc/a").text == "a1"
    assert client.get("/dc/b").text == "b2"
    with app.app_context():
        assert cache.delete_cached(dc, "/dc/a") is True
        assert cache.delete_cached(dc, "/dc/a") is False
    assert client.get("/dc/a").text == "a3"
    assert client.get("/dc/b").text == "b2"


def test_delete_cached_with_view_arguments(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    next_n = counter()

    @app.route("/dv/<name>")
    @cache.cached()
    def dv(name: str) -> str:
        return f"{name}{next_n()}"

    client = app.test_client()
    assert client.get("/dv/a").text == "a1"
    with app.test_request_context("/"):
        assert cache.delete_cached(dv, name="a") is True
    assert client.get("/dv/a").text == "a2"


@pytest.mark.parametrize(
    "query_args",
    ["a=1&b=2", "?b=2&a=1", {"a": "1", "b": "2"}, [("b", "2"), ("a", "1")]],
)
def test_delete_cached_with_query_args(env: tuple[Flask, Cache], query_args: Any) -> None:
    app, cache = env
    next_n = counter()

    @app.route("/works")
    @cache.cached(query_string=True)
    def works() -> str:
        return str(next_n())

    client = app.test_client()
    assert client.get("/works?a=1&b=2").text == "1"
    assert client.get("/works?a=9").text == "2"
    with app.app_context():
        assert cache.delete_cached(works, "/works", query_args) is True
    assert client.get("/works?a=1&b=2").text == "3"
    assert client.get("/works?a=9").text == "2"


def test_make_cache_key_with_query_args_outside_request(env: tuple[Flask, Cache]) -> None:
    app, cache = env

    @app.route("/mk")
    @cache.cached(query_string=True)
    def mk() -> str:
        return "mk"

    app.test_client().get("/mk?limit=15&mock=true")
    with app.app_context():
        key = mk.make_cache_key(path="/mk", query_args="mock=true&limit=15")  # type: ignore[attr-defined]
        assert cache.has(key)


def test_delete_cached_rejects_undecorated_function(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    with app.app_context(), pytest.raises((ValueError, AttributeError)):
        cache.delete_cached(lambda: "x", "/x")


# -- what is stored ------------------------------------------------------------------------


def test_status_and_headers_are_replayed(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    next_n = counter()

    @app.route("/hdr")
    @cache.cached()
    def hdr() -> Any:
        response = make_response(f"created {next_n()}", 201)
        response.headers["X-Thing"] = "yes"
        response.mimetype = "text/csv"
        return response

    client = app.test_client()
    first = client.get("/hdr")
    second = client.get("/hdr")
    assert second.status_code == 201
    assert second.text == first.text == "created 1"
    assert second.headers["X-Thing"] == "yes"
    assert second.mimetype == "text/csv"


def test_json_view_is_replayed(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    next_n = counter()

    @app.route("/json")
    @cache.cached()
    def json_view() -> dict[str, int]:
        return {"n": next_n()}

    client = app.test_client()
    assert client.get("/json").json == {"n": 1}
    second = client.get("/json")
    assert second.json == {"n": 1}
    assert second.mimetype == "application/json"


def test_cached_response_sets_its_own_timeout(env: tuple[Flask, Cache], clock: FakeClock) -> None:
    app, cache = env
    next_n = counter()

    @app.route("/short")
    @cache.cached(timeout=100)
    def short() -> CachedResponse:
        return CachedResponse(make_response(str(next_n())), timeout=5)

    @app.route("/long")
    @cache.cached(timeout=100)
    def long() -> CachedResponse:
        return CachedResponse(make_response(f"L{next_n()}"), timeout=None)

    client = app.test_client()
    assert client.get("/short").text == "1"
    assert client.get("/long").text == "L2"
    clock.advance(4)
    assert client.get("/short").text == "1"
    clock.advance(2)
    assert client.get("/short").text == "3"
    assert client.get("/long").text == "L2"  # no own timeout: the decorator's 100 s
    clock.advance(100)
    assert client.get("/long").text == "L4"


def test_cached_response_keeps_the_response(env: tuple[Flask, Cache]) -> None:
    app, _ = env
    with app.test_request_context("/"):
        base = make_response("body", 202)
        base.headers["X-A"] = "1"
        wrapped = CachedResponse(base, timeout=dt.timedelta(seconds=30))
        assert wrapped.status_code == 202
        assert wrapped.get_data() == b"body"
        assert wrapped.headers["X-A"] == "1"
        assert wrapped.timeout == 30


def test_generator_view_is_joined_and_cached(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    calls: Calls = []

    @app.route("/gen")
    @cache.cached()
    def gen() -> Iterator[str]:
        calls.append(1)
        yield "a"
        yield "b"
        yield "c"

    client = app.test_client()
    assert client.get("/gen").text == "abc"
    assert client.get("/gen").text == "abc"
    assert len(calls) == 1


def test_streamed_response_passes_through_unless_the_view_buffers_it(
    env: tuple[Flask, Cache],
) -> None:
    app, cache = env
    calls: Calls = []

    @app.route("/passing")
    @cache.cached()
    def passing() -> Any:
        calls.append(1)
        return app.response_class(stream_with_context(iter(["a", "b"])), mimetype="text/plain")

    @app.route("/stream")
    @cache.cached(max_buffer=1024)
    def stream() -> Any:
        calls.append(1)

        def generate() -> Iterator[str]:
            yield "path="
            yield request.path

        return app.response_class(stream_with_context(generate()), mimetype="text/plain")

    client = app.test_client()
    assert client.get("/passing").text == "ab"
    assert client.get("/passing").text == "ab"
    assert len(calls) == 2
    calls.clear()
    assert client.get("/stream").text == "path=/stream"
    second = client.get("/stream")
    assert second.text == "path=/stream"
    assert second.mimetype == "text/plain"
    assert len(calls) == 1


def test_stream_template_output_is_cached_and_replayed(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    calls: Calls = []

    @app.route("/tpl")
    @cache.cached()
    def tpl() -> Any:
        calls.append(1)
        return stream_template_string("{% for i in items %}{{ i }},{% endfor %}", items=[1, 2])

    client = app.test_client()
    assert client.get("/tpl").text == "1,2,"
    assert client.get("/tpl").text == "1,2,"
    assert len(calls) == 1


def test_rendered_template_view(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    calls: Calls = []

    @app.route("/rendered")
    @cache.cached()
    def rendered() -> str:
        calls.append(1)
        return render_template_string("<p>{{ n }}</p>", n=len(calls))

    client = app.test_client()
    assert client.get("/rendered").text == "<p>1</p>"
    assert client.get("/rendered").text == "<p>1</p>"


def test_class_based_view(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    calls: Calls = []

    class Report(View):
        decorators = [cache.cached(timeout=50)]  # noqa: RUF012

        def dispatch_request(self) -> str:
            calls.append(1)
            return f"report {len(calls)}"

    app.add_url_rule("/report", view_func=Report.as_view("report"))
    client = app.test_client()
    assert client.get("/report").text == "report 1"
    assert client.get("/report").text == "report 1"
    with app.app_context():
        assert cache.has("view//report")


def test_method_view(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    calls: Calls = []

    class Items(MethodView):
        decorators = [cache.cached(timeout=50)]  # noqa: RUF012

        def get(self, item_id: int) -> str:
            calls.append(item_id)
            return f"item {item_id} #{len(calls)}"

    app.add_url_rule("/items/<int:item_id>", view_func=Items.as_view("items"))
    client = app.test_client()
    assert client.get("/items/1").text == "item 1 #1"
    assert client.get("/items/1").text == "item 1 #1"
    assert client.get("/items/2").text == "item 2 #2"
    assert calls == [1, 2]


# -- errors and statuses -------------------------------------------------------------------


def test_abort_is_served_but_not_stored(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    calls: Calls = []

    @app.route("/missing")
    @cache.cached()
    def missing() -> str:
        calls.append(1)
        abort(404)

    client = app.test_client()
    assert client.get("/missing").status_code == 404
    assert client.get("/missing").status_code == 404
    assert len(calls) == 2
    with app.app_context():
        assert not cache.has("view//missing")


def test_error_status_return_is_served_but_not_stored(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    calls: Calls = []

    @app.route("/boom")
    @cache.cached()
    def boom() -> tuple[str, int]:
        calls.append(1)
        return "x", 500

    client = app.test_client()
    first = client.get("/boom")
    assert (first.status_code, first.text) == (500, "x")
    assert client.get("/boom").status_code == 500
    assert len(calls) == 2


def test_redirects_are_not_stored_by_default(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    calls: Calls = []

    @app.route("/go")
    @cache.cached()
    def go() -> Any:
        calls.append(1)
        return app.redirect("/elsewhere")

    client = app.test_client()
    assert client.get("/go").status_code == 302
    assert client.get("/go").status_code == 302
    assert len(calls) == 2


def test_statuses_allows_negative_caching_of_abort(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    calls: Calls = []
    handled: Calls = []

    @app.errorhandler(404)
    def not_found(error: Exception) -> tuple[str, int]:
        handled.append(1)
        return f"custom not found ({error.description})", 404  # type: ignore[attr-defined]

    @app.route("/gone/<name>")
    @cache.cached(statuses=[200, 404])
    def gone(name: str) -> str:
        calls.append(name)
        if name == "x":
            abort(404, description="no x")
        return name

    client = app.test_client()
    first = client.get("/gone/x")
    second = client.get("/gone/x")
    assert first.status_code == second.status_code == 404
    assert second.text == "custom not found (no x)"
    assert calls == ["x"]
    assert len(handled) == 2  # the error handler runs on hits too
    assert client.get("/gone/ok").text == "ok"
    assert client.get("/gone/ok").text == "ok"
    assert calls == ["x", "ok"]


def test_statuses_stores_returned_error_status(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    calls: Calls = []

    @app.route("/nf")
    @cache.cached(statuses=[404])
    def nf() -> tuple[str, int]:
        calls.append(1)
        return "nope", 404

    client = app.test_client()
    assert client.get("/nf").status_code == 404
    second = client.get("/nf")
    assert (second.status_code, second.text) == (404, "nope")
    assert len(calls) == 1


def test_cache_view_statuses_setting(clock: FakeClock) -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_VIEW_STATUSES=[200, 404])
    cache = Cache(app)
    calls: Calls = []

    @app.route("/cfg404")
    @cache.cached()
    def cfg404() -> str:
        calls.append(1)
        abort(404)

    client = app.test_client()
    assert client.get("/cfg404").status_code == 404
    assert client.get("/cfg404").status_code == 404
    assert len(calls) == 1


def test_response_filter_sees_abort_response(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    seen: list[Any] = []
    calls: Calls = []

    def accept(rv: Any) -> bool:
        seen.append(rv)
        return False

    @app.route("/fa404")
    @cache.cached(statuses=[404], response_filter=accept)
    def fa404() -> str:
        calls.append(1)
        abort(404)

    client = app.test_client()
    client.get("/fa404")
    client.get("/fa404")
    assert len(calls) == 2
    assert seen[0].status_code == 404


def test_view_exception_propagates_and_nothing_is_stored(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    calls: Calls = []

    @app.route("/raise")
    @cache.cached()
    def raising() -> str:
        calls.append(1)
        raise LookupError("broken view")

    client = app.test_client()
    with pytest.raises(LookupError):
        client.get("/raise")
    with pytest.raises(LookupError):
        client.get("/raise")
    assert len(calls) == 2


# -- plain functions -----------------------------------------------------------------------


def test_cached_helper_function_caches_its_value(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    calls: Calls = []

    @cache.cached(key_prefix="MyCachedList")
    def get_list() -> list[int]:
        calls.append(1)
        return [1, 2, 3]

    @app.route("/uses-helper")
    def uses_helper() -> str:
        return str(sum(get_list()))

    client = app.test_client()
    assert client.get("/uses-helper").text == "6"
    assert client.get("/uses-helper").text == "6"
    with app.test_request_context("/other"):
        assert get_list() == [1, 2, 3]
    assert len(calls) == 1
    with app.app_context():
        assert cache.get("MyCachedList") == [1, 2, 3]


def test_cached_helper_inside_another_cached_view(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    helper_calls: Calls = []

    @cache.cached(key_prefix="inner")
    def inner() -> list[str]:
        helper_calls.append(1)
        return ["a"]

    @app.route("/outer/<name>")
    @cache.cached()
    def outer(name: str) -> str:
        return name + "".join(inner())

    client = app.test_client()
    assert client.get("/outer/x").text == "xa"
    assert client.get("/outer/y").text == "ya"
    assert len(helper_calls) == 1
    with app.app_context():
        assert cache.get("inner") == ["a"]


# -- async views ---------------------------------------------------------------------------


def test_async_view_is_cached(env: tuple[Flask, Cache]) -> None:
    pytest.importorskip("asgiref", reason="async views need flask[async] (asgiref)")
    app, cache = env
    calls: Calls = []

    @app.route("/async")
    @cache.cached()
    async def async_view() -> str:
        calls.append(1)
        return f"async {len(calls)}"

    client = app.test_client()
    assert client.get("/async").text == "async 1"
    assert client.get("/async").text == "async 1"
    assert len(calls) == 1


# -- broken key functions ------------------------------------------------------------------


def _exploding_prefix() -> str:
    raise KeyError("no user in session")


def test_key_prefix_that_raises_still_serves_and_counts_error(
    env: tuple[Flask, Cache], caplog: pytest.LogCaptureFixture
) -> None:
    app, cache = env
    calls: Calls = []

    @app.route("/kp")
    @cache.cached(key_prefix=_exploding_prefix)
    def kp() -> str:
        calls.append(1)
        return "served"

    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="flask_stash"):
        assert client.get("/kp").status_code == 200
        assert client.get("/kp").text == "served"
    assert len(calls) == 2
    with app.app_context():
        errors = cache.stats()["errors"]
    assert sum(errors.values()) == 2
    assert any("no user in session" in r.getMessage() for r in caplog.records)


def test_key_prefix_that_raises_propagates_when_not_failing_open(clock: FakeClock) -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_FAIL_OPEN=False)
    cache = Cache(app)

    @app.route("/kp2")
    @cache.cached(key_prefix=_exploding_prefix)
    def kp2() -> str:
        return "served"

    with pytest.raises(KeyError, match="no user in session"):
        app.test_client().get("/kp2")


def test_make_cache_key_that_raises_still_serves(env: tuple[Flask, Cache]) -> None:
    app, cache = env

    def bad_key(*args: Any, **kwargs: Any) -> str:
        raise ValueError("bad key")

    @app.route("/mkbad")
    @cache.cached(make_cache_key=bad_key)
    def mkbad() -> str:
        return "ok"

    assert app.test_client().get("/mkbad").text == "ok"
    with app.app_context():
        assert sum(cache.stats()["errors"].values()) == 1


def test_bad_key_prefix_type_is_rejected(env: tuple[Flask, Cache]) -> None:
    _, cache = env
    with pytest.raises(TypeError):
        cache.cached(key_prefix=42)  # type: ignore[arg-type]


def test_cached_on_a_class_is_rejected(env: tuple[Flask, Cache]) -> None:
    _, cache = env
    with pytest.raises(TypeError):
        cache.cached()(dict)


# -- more of Flask-Caching's documented behaviour ------------------------------------------


def test_reassigned_make_cache_key_attribute_is_used(env: tuple[Flask, Cache]) -> None:
    app, cache = env

    @app.route("/reassigned")
    @cache.cached()
    def reassigned() -> str:
        return "r"

    reassigned.make_cache_key = lambda *args, **kwargs: "custom-key"  # type: ignore[attr-defined]
    app.test_client().get("/reassigned")
    with app.app_context():
        assert cache.has("custom-key")


def test_unstorable_result_of_cached_function_is_still_returned(env: tuple[Flask, Cache]) -> None:
    import threading

    app, cache = env

    @cache.cached(key_prefix="lock")
    def make_lock() -> Any:
        return threading.Lock()

    with app.test_request_context("/"):
        assert make_lock() is not None


def test_head_request_first_does_not_store_an_empty_body(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    calls: Calls = []

    @app.route("/head")
    @cache.cached()
    def head() -> str:
        calls.append(1)
        return "full body"

    client = app.test_client()
    assert client.head("/head").status_code == 200
    response = client.get("/head")
    assert response.text == "full body"
    assert response.headers["Content-Length"] == str(len("full body"))


def test_blueprint_view(env: tuple[Flask, Cache]) -> None:
    from flask import Blueprint

    app, cache = env
    bp = Blueprint("shop", __name__, url_prefix="/shop")
    calls: Calls = []

    @bp.route("/item/<int:item_id>")
    @cache.cached()
    def item(item_id: int) -> str:
        calls.append(item_id)
        return f"shop item {item_id}"

    app.register_blueprint(bp)
    client = app.test_client()
    assert client.get("/shop/item/1").text == "shop item 1"
    assert client.get("/shop/item/1").text == "shop item 1"
    assert calls == [1]
    with app.app_context():
        assert cache.delete_cached(item, "/shop/item/1") is True


def test_send_file_view_is_served_correctly(env: tuple[Flask, Cache], tmp_path: Any) -> None:
    from flask import send_file

    app, cache = env
    path = tmp_path / "data.txt"
    path.write_text("file contents", encoding="utf-8")

    @app.route("/file")
    @cache.cached()
    def file_view() -> Any:
        return send_file(path)

    client = app.test_client()
    for _ in range(2):
        response = client.get("/file")
        assert (response.status_code, response.data) == (200, b"file contents")
        response.close()


def test_after_request_handlers_run_on_hits(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    stamps = itertools.count(1)

    @app.after_request
    def stamp(response: Any) -> Any:
        response.headers["X-Request"] = str(next(stamps))
        return response

    @app.route("/ar")
    @cache.cached()
    def ar() -> str:
        return "ar"

    client = app.test_client()
    assert client.get("/ar").headers["X-Request"] == "1"
    assert client.get("/ar").headers["X-Request"] == "2"


def test_session_cookie_is_not_replayed_to_other_clients(env: tuple[Flask, Cache]) -> None:
    from flask import session

    app, cache = env
    app.secret_key = "test-secret"

    @app.route("/login/<name>")
    def login(name: str) -> str:
        session["user"] = name
        return "ok"

    @app.route("/home")
    @cache.cached()
    def home() -> str:
        session["seen"] = True
        return "home"

    alice = app.test_client()
    alice.get("/login/alice")
    assert alice.get("/home").text == "home"
    bob = app.test_client()
    bob.get("/home")
    with bob.session_transaction() as bob_session:
        assert bob_session.get("user") is None


def test_timeout_zero_never_expires(env: tuple[Flask, Cache], clock: FakeClock) -> None:
    app, cache = env
    next_n = counter()

    @app.route("/forever")
    @cache.cached(timeout=0)
    def forever() -> str:
        return str(next_n())

    client = app.test_client()
    assert client.get("/forever").text == "1"
    clock.advance(10**8)
    assert client.get("/forever").text == "1"


# -- delete_cached and make_cache_key with Flask-Caching 2.5's semantics --------------------


def test_delete_cached_of_a_query_string_view_outside_a_request(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    next_n = counter()

    @app.route("/works")
    @cache.cached(query_string=True)
    def view_works() -> str:
        return f"{sorted(request.args.items())}#{next_n()}"

    client = app.test_client()
    first = client.get("/works?limit=15&offset=0").text
    assert client.get("/works?offset=0&limit=15").text == first
    with app.app_context():  # outside a request: path and query_args, as the docs say
        assert cache.delete_cached(view_works, "/works", {"limit": 15, "offset": 0})
    assert client.get("/works?limit=15&offset=0").text != first
    second = client.get("/works?limit=15&offset=0").text
    with app.app_context():
        assert cache.delete_cached(view_works, "/works", "limit=15&offset=0")
    assert client.get("/works?limit=15&offset=0").text != second


def test_delete_cached_builds_the_path_from_view_arguments(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    next_n = counter()
    bp = Blueprint("shop", __name__)

    @bp.route("/item/<int:item_id>")
    @cache.cached()
    def item(item_id: int) -> str:
        return f"item {item_id}#{next_n()}"

    app.register_blueprint(bp)
    client = app.test_client()
    first = client.get("/item/5").text
    assert client.get("/item/5").text == first
    with app.app_context():  # no request: url_for must not build an external URL
        assert item.make_cache_key(item_id=5) == "view//item/5"  # type: ignore[attr-defined]
        assert item.make_cache_key(5) == "view//item/5"  # type: ignore[attr-defined]
        assert cache.delete_cached(item, item_id=5)
    assert client.get("/item/5").text != first
