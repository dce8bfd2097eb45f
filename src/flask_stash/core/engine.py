"""Where a cached result lives: :class:`Lookup`, the backend keys every front end hands
the get-or-compute pipeline (:mod:`flask_stash.core.pipeline`).

A hit costs one backend read: the entry and, when the key belongs to a family that can be
invalidated as a whole, the family's version stamp, fetched together in one ``get_many``.
"""

from __future__ import annotations

from typing import NamedTuple

from flask_stash.core.store import Store


class Lookup(NamedTuple):
    """Where a cached result lives, as backend keys (see :meth:`Store.backend_key`).

    ``version_keys`` name the stamps of the families the entry belongs to (all calls of one
    function, all calls on one instance); changing a stamp invalidates its family in O(1).
    ``scope`` labels the statistics.
    """

    key: str
    version_keys: tuple[str, ...] = ()
    scope: str = ""

    @classmethod
    def of(
        cls, store: Store, key: str, version_keys: tuple[str, ...] = (), scope: str = ""
    ) -> Lookup:
        """A lookup for user-level keys (prefixed and length-checked here)."""
        vkeys = tuple(store.backend_key(k) for k in version_keys)
        return cls(store.backend_key(key), vkeys, scope)
