"""The settings of the in-process tier (``CACHE_LOCAL_TIER``), checked when read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from flask_stash.core.api import check_ttl
from flask_stash.core.errors import ConfigurationError

#: Defaults of ``CACHE_LOCAL_TIER = True``.
MAX_ENTRIES = 10_000
MAX_BYTES = 64 * 2**20
TTL_CAP = 60.0


@dataclass(frozen=True)
class TierSettings:
    """The tier's bounds, checked when made (``CACHE_LOCAL_TIER`` reads into one)."""

    max_entries: int = MAX_ENTRIES
    max_bytes: int | None = MAX_BYTES
    ttl: float = TTL_CAP
    channel: str | None = None

    def __post_init__(self) -> None:
        positive_int("max_entries", self.max_entries)
        if self.max_bytes is not None:
            positive_int("max_bytes", self.max_bytes)
        object.__setattr__(self, "ttl", checked_cap(self.ttl))
        if self.channel is not None and (not isinstance(self.channel, str) or not self.channel):
            raise ConfigurationError(f"in-process tier channel must be a name: {self.channel!r}")

    @classmethod
    def parse(cls, value: object) -> TierSettings | None:
        """``None``/``False``: no tier; ``True``: the defaults; a dict: some of the fields."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if not isinstance(value, Mapping):
            raise ConfigurationError(
                f"expected None, True, False or a dict of settings, not {value!r}"
            )
        unknown = sorted(set(value) - {f.name for f in fields(cls)})
        if unknown:
            known = ", ".join(f.name for f in fields(cls))
            raise ConfigurationError(f"unknown setting(s) {unknown} (known: {known})")
        return cls(**value)


def checked_cap(ttl: object) -> float:
    if ttl is None:
        raise ConfigurationError("the in-process tier needs a ttl cap (seconds), not None")
    try:
        return float(check_ttl(ttl))  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"in-process tier ttl: {exc}") from None


def positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"in-process tier {name} must be a positive integer: {value!r}")
    return value
