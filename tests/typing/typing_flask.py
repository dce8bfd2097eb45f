"""Only type-checked (by mypy in ``make test``): Flask-layer decorators keep signatures."""

from __future__ import annotations

from flask import Flask
from typing_extensions import assert_type

from flask_stash import Cache

app = Flask(__name__)
cache = Cache(app)


@cache.memoize(timeout=60)
def add(a: int, b: int = 2) -> int:
    return a + b


@cache.memoize()
async def fetch(url: str) -> bytes:
    return url.encode()


@app.get("/report/<int:year>")
@cache.cached(timeout=30, query_string=True)
def report(year: int) -> str:
    return str(year)


class Users:
    @cache.memoize(args_to_ignore=["request_id"])
    def name(self, user_id: int, request_id: str = "") -> str:
        return str(user_id)


assert_type(add(1), int)
assert_type(report(2026), str)
assert_type(Users().name(1), str)
add("one")  # type: ignore[arg-type]
report("x")  # type: ignore[arg-type]
cache.delete_memoized(add, 1)
cache.delete_memoized_verhash(add)


async def use_fetch() -> None:
    assert_type(await fetch("x"), bytes)
