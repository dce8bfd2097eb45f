"""Behaviours a Flask-Caching app relies on: unstorable values fail open in the direct API,
a misspelled ``CACHE_TYPE`` gets a suggestion."""

from __future__ import annotations

import logging
import threading

import pytest

from flask_stash import Cache
from flask_stash.core.errors import ConfigurationError, SerializationError

from .conftest import make_app


@pytest.mark.parametrize("serializer", [None, "json"])
def test_set_of_an_unpicklable_value_fails_open(
    serializer: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_SERIALIZER=serializer)
    cache = Cache(app)
    with app.app_context(), caplog.at_level(logging.WARNING, logger="flask_stash"):
        assert cache.set("lock", threading.Lock()) is False
        assert cache.add("lock", threading.Lock()) is False
        assert cache.set_many({"lock": threading.Lock(), "n": 1}) == ["n"]
        assert cache.get("lock") is None
        assert cache.get("n") == 1
        assert cache.stats()["errors"] == {"set": 1, "add": 1, "set_many": 1}
    assert any("cache set failed" in r.getMessage() for r in caplog.records)


def test_set_of_an_unpicklable_value_raises_when_not_failing_open() -> None:
    app = make_app(CACHE_TYPE="SimpleCache", CACHE_FAIL_OPEN=False)
    cache = Cache(app)
    with app.app_context(), pytest.raises(SerializationError):
        cache.set("lock", threading.Lock())


def test_a_failing_user_serializer_fails_open_too() -> None:
    class Refusing:
        def dumps(self, value: object) -> bytes:
            raise ValueError("no")

        def loads(self, data: bytes) -> object:
            return data

    app = make_app(CACHE_TYPE="SimpleCache", CACHE_SERIALIZER=Refusing())
    cache = Cache(app)
    with app.app_context():
        assert cache.set("k", 1) is False


@pytest.mark.parametrize(
    ("given", "suggested"),
    [
        ("SimpleCach", "SimpleCache"),
        ("RedisCahce", "RedisCache"),
        ("filesytem", "filesystem"),
        ("Memcache", "memcached"),
    ],
)
def test_misspelled_cache_type_suggests_the_closest_name(given: str, suggested: str) -> None:
    with pytest.raises(ConfigurationError, match=f"did you mean '{suggested}'"):
        Cache(make_app(CACHE_TYPE=given))


def test_unrelated_cache_type_gets_the_list_without_a_guess() -> None:
    with pytest.raises(ConfigurationError, match="known names") as caught:
        Cache(make_app(CACHE_TYPE="zzz"))
    assert "did you mean" not in str(caught.value)
