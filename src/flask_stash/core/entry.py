"""What the engine stores inside a backend value: the user's value plus its metadata.

Keeping the metadata with the value lets the engine, not the backend, decide freshness:
stale-while-revalidate, ``Age`` headers and invalidation stamps work on every backend.
"""

from __future__ import annotations

import itertools
import sys
from typing import NamedTuple

from flask_stash.core.errors import UndecodableEntry


class Entry(NamedTuple):
    """A stored value and when it was written, stops being fresh and stops being servable.

    ``fresh_until`` and ``stale_until`` are wall-clock timestamps (``None``: forever).
    Between them the entry is *stale*: servable while someone refreshes it.
    ``version`` is the invalidation stamp that was current when the entry was written and
    ``tags`` the ``(tag, stamp)`` pairs; a mismatch with the current stamps makes it a miss.

    A named tuple, because building one sits on every cache hit. It is stored as a plain
    tuple of its fields; a change of layout must change the serializers' format markers.
    """

    value: object
    created: float
    fresh_until: float | None = None
    stale_until: float | None = None
    version: bytes | None = None
    tags: tuple[tuple[str, str], ...] = ()
    #: Seconds the value took to compute (drives early refresh; 0 when unknown).
    cost: float = 0.0

    def is_fresh(self, now: float) -> bool:
        return self.fresh_until is None or now < self.fresh_until

    def is_servable(self, now: float) -> bool:
        """Fresh, or stale but still inside its stale window."""
        limit = self.servable_until()
        return limit is None or now < limit

    def servable_until(self) -> float | None:
        """When the entry stops being servable even as stale (``None``: never)."""
        return self.stale_until if self.stale_until is not None else self.fresh_until

    def age(self, now: float) -> float:
        return max(0.0, now - self.created)

    def remaining(self, now: float) -> float | None:
        """Seconds of freshness left (``None`` when it never expires)."""
        return None if self.fresh_until is None else max(0.0, self.fresh_until - now)

    @classmethod
    def load(cls, data: object) -> Entry:
        """The entry a serializer decoded; the format marker already vouched for the layout."""
        if type(data) is list:  # formats without tuples (a user's JSON serializer)
            data = tuple(data)
            if len(data) == len(cls._fields) and type(data[5]) is list:  # the tags
                tags = tuple(tuple(tag) if type(tag) is list else tag for tag in data[5])
                data = (*data[:5], tags, *data[6:])
        if type(data) is not tuple or len(data) != len(cls._fields):
            raise UndecodableEntry("not an entry of this layout")
        return tuple.__new__(cls, data)


_IMMUTABLE_ATOMS = frozenset({int, float, complex, str, bytes, bool, type(None), range})


def is_immutable(value: object) -> bool:
    """Whether ``value`` can be shared between readers without copying (deeply immutable)."""
    kind = type(value)
    if kind in _IMMUTABLE_ATOMS:
        return True
    if kind is tuple or kind is frozenset:
        return all(is_immutable(item) for item in value)  # type: ignore[attr-defined]
    return False


_NUMBER = (int, float)
_OPTIONAL_NUMBER = (int, float, type(None))
# The allowed types of (created, fresh_until, stale_until, version, cost), as one set: a
# single lookup checks them all, which matters on a hit.
_FIELD_TYPES = frozenset(
    itertools.product(_NUMBER, _OPTIONAL_NUMBER, _OPTIONAL_NUMBER, (type(None), bytes), _NUMBER)
)


_LARGEST = sys.float_info.max


def _computable(number: float) -> bool:
    """Whether the engine's arithmetic on ``number`` cannot raise: finite as a float.

    An integer beyond the float range (``10**400`` in JSON) overflows ``now - created`` and
    an infinity overflows ``int(age)``; NaN fails both comparisons, so it is refused too.
    """
    return -_LARGEST <= number <= _LARGEST


def is_well_formed(entry: Entry) -> bool:
    """Whether the metadata fields have the types (and finite numbers) the engine relies on.

    Signed entries were written by this library; an unsigned one may have been written by
    anyone who can reach the backend, and a wrong type or an unusable number there must be a
    miss, not an error in the middle of a request.
    """
    _, created, fresh_until, stale_until, version, tags, cost = entry
    kinds = (type(created), type(fresh_until), type(stale_until), type(version), type(cost))
    if kinds not in _FIELD_TYPES or type(tags) is not tuple:
        return False
    if not (_computable(created) and _computable(cost)):
        return False
    if not (fresh_until is None or _computable(fresh_until)):
        return False
    if not (stale_until is None or _computable(stale_until)):
        return False
    return not tags or all(
        type(tag) is tuple and len(tag) == 2 and type(tag[0]) is type(tag[1]) is str for tag in tags
    )
