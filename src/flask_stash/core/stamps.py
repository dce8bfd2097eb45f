"""Version stamps kept in the process, beside an in-process backend's entries.

A memoized function's entries carry the stamp of their family (the function, an instance);
invalidating the family replaces the stamp. A shared backend keeps stamps with the entries
so that every process sees the same ones, and a hit reads entry and stamp in one round
trip. An in-process backend has nothing to share: keeping its stamps in a plain table
saves a hit the second lookup (about a fifth of a memoize hit on the memory backend), and
keeps hot stamps out of the entries' LRU, so a busy cache no longer evicts a function's
stamp (which invalidated the whole family).

Stores over one backend share its table. The table is bounded: past ``limit`` stamps the
oldest created goes, which invalidates its family, exactly as an evicted stamp did.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence

#: Stamps kept per backend: every memoized function has one, plus one per instance whose
#: entries were invalidated or written with ``per_instance`` keys.
STAMP_LIMIT = 4096


class LocalStamps:
    """The stamps of one in-process backend, by backend key."""

    def __init__(self, limit: int = STAMP_LIMIT) -> None:
        if limit < 2:  # an entry can depend on two stamps (its function's, its instance's)
            raise ValueError(f"limit must be at least 2, got {limit!r}")
        self.limit = limit
        #: Backend key -> stamp. Read it directly (the hot path); write through the methods.
        self.tokens: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def version(self, vkeys: Sequence[str]) -> bytes | None:
        """The version of an entry of these families: their stamps joined, ``None`` when
        one is missing (an entry never matches a missing stamp)."""
        tokens = self.tokens
        if len(vkeys) == 1:
            return tokens.get(vkeys[0])
        stamps = [tokens.get(vkey) for vkey in vkeys]
        if None in stamps:
            return None
        return b"|".join(stamps)  # type: ignore[arg-type]

    def create(self, vkeys: Sequence[str]) -> bytes:
        """:meth:`version`, creating the stamps that are missing."""
        with self._lock:
            for vkey in vkeys:
                if vkey not in self.tokens:
                    self._set(vkey)
            return b"|".join(self.tokens[vkey] for vkey in vkeys)

    def bump(self, vkey: str) -> None:
        """Give ``vkey`` a new stamp: every entry written under the old one is a miss."""
        with self._lock:
            self._set(vkey)

    def __len__(self) -> int:
        return len(self.tokens)

    def _set(self, vkey: str) -> None:
        self.tokens.pop(vkey, None)
        self.tokens[vkey] = uuid.uuid4().hex.encode()
        while len(self.tokens) > self.limit:
            self.tokens.popitem(last=False)
