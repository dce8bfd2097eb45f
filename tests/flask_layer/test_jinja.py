"""The ``{% cache %}`` Jinja tag and ``make_template_fragment_key``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from flask import Flask, render_template, render_template_string
from jinja2 import TemplateSyntaxError

from flask_stash import Cache, make_template_fragment_key
from flask_stash.testing import FakeClock

from .conftest import make_app


@pytest.fixture
def env(clock: FakeClock, tmp_path: Path) -> tuple[Flask, Cache]:
    app = Flask(__name__, template_folder=str(tmp_path))
    app.config.update(TESTING=True, CACHE_TYPE="SimpleCache", CACHE_DEFAULT_TIMEOUT=30)
    cache = Cache(app, config={"CACHE_OPTIONS": {"clock": clock}})
    return app, cache


def render(app: Flask, source: str, **context: object) -> str:
    with app.test_request_context("/"):
        return render_template_string(source, **context)


def test_named_fragment_is_cached(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    source = "{% cache 60, 'sidebar' %}n={{ n }}{% endcache %}|{{ n }}"
    assert render(app, source, n=1) == "n=1|1"
    assert render(app, source, n=2) == "n=1|2"
    with app.app_context():
        assert cache.get(make_template_fragment_key("sidebar")) == "n=1"


def test_fragment_timeout_expires(env: tuple[Flask, Cache], clock: FakeClock) -> None:
    app, _ = env
    source = "{% cache 10, 'short' %}{{ n }}{% endcache %}"
    assert render(app, source, n=1) == "1"
    clock.advance(9)
    assert render(app, source, n=2) == "1"
    clock.advance(2)
    assert render(app, source, n=3) == "3"


def test_timeout_expression(env: tuple[Flask, Cache], clock: FakeClock) -> None:
    app, _ = env
    source = "{% cache 60 * 5, 'expr' %}{{ n }}{% endcache %}"
    assert render(app, source, n=1) == "1"
    clock.advance(299)
    assert render(app, source, n=2) == "1"
    clock.advance(2)
    assert render(app, source, n=3) == "3"


def test_vary_on_values(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    source = "{% cache 60, 'user', user_id, lang %}{{ user_id }}-{{ lang }}-{{ n }}{% endcache %}"
    assert render(app, source, user_id=1, lang="en", n=1) == "1-en-1"
    assert render(app, source, user_id=1, lang="en", n=2) == "1-en-1"
    assert render(app, source, user_id=2, lang="en", n=3) == "2-en-3"
    assert render(app, source, user_id=1, lang="fr", n=4) == "1-fr-4"
    key = make_template_fragment_key("user", vary_on=["1", "en"])
    with app.app_context():
        assert cache.get(key) == "1-en-1"
        assert cache.get(make_template_fragment_key("user", vary_on=["2", "en"])) == "2-en-3"


def test_make_template_fragment_key_format() -> None:
    assert make_template_fragment_key("name") == "_template_fragment_cache_name"
    assert make_template_fragment_key("name", vary_on=["a", "b"]) == (
        "_template_fragment_cache_name_a_b"
    )
    assert make_template_fragment_key("name", vary_on=[]) == "_template_fragment_cache_name"


def test_make_template_fragment_key_matches_flask_caching() -> None:
    flask_caching = pytest.importorskip("flask_caching")
    for name, vary_on in [("n", None), ("n", ["a", "b"]), ("side bar", ["1"])]:
        assert make_template_fragment_key(name, vary_on) == (
            flask_caching.make_template_fragment_key(name, vary_on)
        )


def test_make_template_fragment_key_equals_the_tags_key(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    render(app, "{% cache 60, 'name', 'a', 'b' %}fragment{% endcache %}")
    key = make_template_fragment_key("name", vary_on=["a", "b"])
    with app.app_context():
        assert cache.get(key) == "fragment"


def test_unnamed_fragment_is_keyed_by_file_and_line(
    env: tuple[Flask, Cache], tmp_path: Path
) -> None:
    app, cache = env
    (tmp_path / "page.html").write_text(
        "<h1>{{ n }}</h1>\n{% cache 60 %}body {{ n }}{% endcache %}\n", encoding="utf-8"
    )
    with app.test_request_context("/"):
        assert render_template("page.html", n=1) == "<h1>1</h1>\nbody 1"
        assert render_template("page.html", n=2) == "<h1>2</h1>\nbody 1"
    filename = os.path.normpath(str(tmp_path / "page.html"))
    with app.app_context():
        assert cache.get(make_template_fragment_key(f"{filename}2")) == "body 1"


def test_two_unnamed_fragments_do_not_collide(env: tuple[Flask, Cache], tmp_path: Path) -> None:
    app, _ = env
    (tmp_path / "two.html").write_text(
        "{% cache 60 %}a{{ n }}{% endcache %}\n{% cache 60 %}b{{ n }}{% endcache %}",
        encoding="utf-8",
    )
    with app.test_request_context("/"):
        assert render_template("two.html", n=1) == "a1\nb1"
        assert render_template("two.html", n=2) == "a1\nb1"


def test_none_timeout_uses_the_default_timeout(env: tuple[Flask, Cache], clock: FakeClock) -> None:
    """``{% cache None, 'k' %}``: Flask-Caching stores with the default timeout."""
    app, _ = env
    source = "{% cache None, 'k' %}{{ n }}{% endcache %}"
    assert render(app, source, n=1) == "1"
    clock.advance(29)
    assert render(app, source, n=2) == "1"
    clock.advance(2)  # CACHE_DEFAULT_TIMEOUT is 30 here
    assert render(app, source, n=3) == "3"


def test_del_drops_the_fragment_and_renders(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    cached = "{% cache 60, 'k' %}{{ n }}{% endcache %}"
    delete = "{% cache 'del', 'k' %}{{ n }}{% endcache %}"
    assert render(app, cached, n=1) == "1"
    assert render(app, delete, n=2) == "2"
    with app.app_context():
        assert cache.get(make_template_fragment_key("k")) is None
    assert render(app, cached, n=3) == "3"
    assert render(app, cached, n=4) == "3"


def test_del_with_vary_on(env: tuple[Flask, Cache]) -> None:
    app, _ = env
    cached = "{% cache 60, 'k', v %}{{ n }}{% endcache %}"
    assert render(app, cached, v="x", n=1) == "1"
    assert render(app, cached, v="y", n=2) == "2"
    render(app, "{% cache 'del', 'k', v %}{% endcache %}", v="x")
    assert render(app, cached, v="x", n=3) == "3"
    assert render(app, cached, v="y", n=4) == "2"


def test_deleting_the_key_from_python_invalidates(env: tuple[Flask, Cache]) -> None:
    app, cache = env
    source = "{% cache 60, 'user', uid %}{{ n }}{% endcache %}"
    assert render(app, source, uid=5, n=1) == "1"
    with app.app_context():
        assert cache.delete(make_template_fragment_key("user", vary_on=["5"])) is True
    assert render(app, source, uid=5, n=2) == "2"


def test_fragment_inside_a_loop_with_vary_on(env: tuple[Flask, Cache]) -> None:
    app, _ = env
    source = (
        "{% for item in items %}{% cache 60, 'row', item %}[{{ item }}{{ n }}]"
        "{% endcache %}{% endfor %}"
    )
    assert render(app, source, items=[1, 2], n="a") == "[1a][2a]"
    assert render(app, source, items=[1, 2, 3], n="b") == "[1a][2a][3b]"


def test_fragment_in_a_template_file_rendered_by_a_view(
    env: tuple[Flask, Cache], tmp_path: Path
) -> None:
    app, _ = env
    (tmp_path / "view.html").write_text(
        "{% cache 60, 'view-frag' %}{{ n }}{% endcache %}", encoding="utf-8"
    )
    counter = iter(range(1, 100))

    @app.route("/frag")
    def frag() -> str:
        return render_template("view.html", n=next(counter))

    client = app.test_client()
    assert client.get("/frag").text == "1"
    assert client.get("/frag").text == "1"


def test_jinja_extension_is_registered_with_flask_cachings_attribute(
    env: tuple[Flask, Cache],
) -> None:
    from flask_stash.jinja2ext import JINJA_CACHE_ATTR_NAME, CacheExtension

    app, cache = env
    assert JINJA_CACHE_ATTR_NAME == "_template_fragment_cache"
    assert getattr(app.jinja_env, JINJA_CACHE_ATTR_NAME) is cache
    assert any(isinstance(ext, CacheExtension) for ext in app.jinja_env.extensions.values())


def test_with_jinja2_ext_false_does_not_install_the_tag() -> None:
    app = make_app(CACHE_TYPE="SimpleCache")
    Cache(app, with_jinja2_ext=False)
    assert not hasattr(app.jinja_env, "_template_fragment_cache")
    with app.test_request_context("/"), pytest.raises(TemplateSyntaxError):
        render_template_string("{% cache 60, 'k' %}x{% endcache %}")


def test_two_apps_render_into_their_own_caches(clock: FakeClock) -> None:
    cache = Cache()
    app1 = make_app(CACHE_TYPE="SimpleCache")
    app2 = make_app(CACHE_TYPE="SimpleCache")
    cache.init_app(app1)
    cache.init_app(app2)
    source = "{% cache 60, 'shared' %}{{ n }}{% endcache %}"
    assert render(app1, source, n=1) == "1"
    assert render(app2, source, n=2) == "2"
    assert render(app1, source, n=3) == "1"
