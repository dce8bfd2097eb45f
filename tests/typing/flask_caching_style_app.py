"""An app written the way Flask-Caching's documentation shows, checked by mypy --strict.

Only the two imports below name Flask-Stash: ``tests/flask_layer/test_flask_caching_style_app.py``
runs it as it is, then with those imports pointed at Flask-Caching, and expects the same
behaviour. It uses a subclassed backend with a ``factory``, typed decorators and their
attributes, ``delete_memoized`` on a cached class method and on memoized methods.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from typing_extensions import assert_type

from flask_stash import Cache
from flask_stash.backends.simplecache import SimpleCache

cache = Cache()
SETTINGS = {"title": "Forum"}
LOADS: list[str] = []


class CountingCache(SimpleCache):
    """A custom backend: counts reads (Flask-Caching's "custom cache backends" recipe)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads = 0

    def get(self, key: str) -> Any:
        self.reads += 1
        return super().get(key)

    @classmethod
    def factory(
        cls, app: Flask, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> CountingCache:
        kwargs.update(threshold=config["CACHE_THRESHOLD"])
        return cls(*args, **kwargs)


class Setting:
    @classmethod
    @cache.cached(timeout=60, key_prefix="settings")
    def as_dict(cls) -> dict[str, str]:
        LOADS.append("settings")
        return dict(SETTINGS)


def current_settings() -> dict[str, str]:
    # mypy does not bind ``cls`` through a callable object under @classmethod (the same
    # with Flask-Caching 2.5's protocols), hence the one ignore.
    return Setting.as_dict()  # type: ignore[call-arg]


@cache.memoize(timeout=50)
def user_posts(user_id: int) -> list[str]:
    LOADS.append(f"posts:{user_id}")
    return [f"post {user_id}.{n}" for n in range(2)]


class Forum:
    def __init__(self, slug: str) -> None:
        self.slug = slug

    def __repr__(self) -> str:  # Flask-Caching's documented way to key instances
        return f"Forum({self.slug!r})"

    @cache.memoize()
    def topic_count(self) -> int:
        LOADS.append(f"topics:{self.slug}")
        return len(self.slug)


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(
        CACHE_TYPE=f"{__name__}.CountingCache",
        CACHE_DEFAULT_TIMEOUT=300,
        CACHE_THRESHOLD=100,
    )
    app.config["SECRET_KEY"] = "dev"  # Flask's tutorial key: any length works
    cache.init_app(app)

    @app.get("/settings")
    def show_settings() -> ResponseReturnValue:
        return jsonify(current_settings())

    @app.post("/settings/<name>/<value>")
    def update_setting(name: str, value: str) -> ResponseReturnValue:
        SETTINGS[name] = value
        cache.delete_memoized(Setting.as_dict, Setting)
        return jsonify(current_settings())

    @app.get("/posts/<int:user_id>")
    @cache.cached(timeout=30)
    def posts(user_id: int) -> ResponseReturnValue:
        return jsonify(user_posts(user_id))

    @app.get("/search")
    @cache.cached(timeout=30, query_string=True)
    def search() -> ResponseReturnValue:
        LOADS.append(f"search:{request.args.get('q')}")
        return jsonify(sorted(request.args.items()))

    return app


def typed_uses() -> None:
    """What typed code does with the decorated functions (checked, not run)."""
    assert_type(user_posts(1), list[str])
    assert_type(user_posts.uncached(1), list[str])
    timeout = user_posts.cache_timeout
    key: str = user_posts.make_cache_key(user_posts.uncached, 1)
    user_posts.delete_memoized()
    forum = Forum("python")
    assert_type(forum.topic_count(), int)
    forum.topic_count.delete_memoized()
    assert_type(Forum.topic_count.uncached(forum), int)
    assert_type(current_settings(), dict[str, str])
    cache.delete_memoized(Setting.as_dict, Setting)
    cache.delete_memoized(user_posts, 1)
    print(timeout, key)
