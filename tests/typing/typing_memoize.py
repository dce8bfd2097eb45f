"""Only type-checked (by mypy in ``make test``): decorators keep signatures."""

from __future__ import annotations

from typing_extensions import assert_type

from flask_stash.core import MemoryBackend, Store, memoize

store = Store(MemoryBackend())


@memoize(store, 60)
def add(a: int, b: int = 2) -> int:
    return a + b


@memoize(store)
async def fetch(url: str) -> bytes:
    return url.encode()


class Repo:
    @memoize(store)
    def name(self, suffix: str) -> str:
        return suffix


assert_type(add(1), int)
assert_type(add(1, b=3), int)


async def use_fetch() -> None:
    assert_type(await fetch("x"), bytes)


assert_type(Repo().name("!"), str)
add("one")  # type: ignore[arg-type]
Repo().name(1)  # type: ignore[arg-type]
