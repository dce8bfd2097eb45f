"""Warm-up functions: what ``flask stash warm`` runs to fill the cache before traffic.

Registered on a :class:`~flask_stash.Cache` with ``@cache.warmup`` or
``cache.add_warmup(fn)``. A warm-up takes no arguments and runs inside the app context;
it may return (or be a generator of) an iterable: each item it yields advances the
progress bar by one, so a long warm-up shows how far it got.

.. code-block:: python

    @cache.warmup
    def products():
        for product_id in Product.ids():
            price(product_id)  # a memoized function: computed and stored now
            yield product_id
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask_stash.core.stats import readable_name

#: A warm-up function: no arguments; ``None``, or an iterable consumed item by item.
WarmupFunction = Callable[[], Iterable[Any] | None]


@dataclass(frozen=True)
class Warmup:
    """One registered warm-up."""

    name: str
    fn: WarmupFunction
    #: How many items it yields, when known in advance (sizes the progress bar).
    length: int | None = None


_registered: weakref.WeakKeyDictionary[Any, dict[str, Warmup]] = weakref.WeakKeyDictionary()


def add(owner: object, fn: WarmupFunction, name: str | None, length: int | None) -> Warmup:
    """Register ``fn`` on ``owner`` (a ``Cache``); a second warm-up with the same name
    replaces the first (a module imported twice registers once)."""
    if not callable(fn):
        raise TypeError(f"a warm-up must be a function taking no arguments, not {fn!r}")
    if length is not None and (isinstance(length, bool) or not isinstance(length, int)):
        raise TypeError(f"length must be an int or None, not {length!r}")
    warmup = Warmup(name or readable_name(fn), fn, length)
    _registered.setdefault(owner, {})[warmup.name] = warmup
    return warmup


def registered(owner: object) -> list[Warmup]:
    """``owner``'s warm-ups, in registration order."""
    return list(_registered.get(owner, {}).values())
