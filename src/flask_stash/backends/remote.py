"""Flask-Caching's memcached class names, until the memcached backend lands.

These names exist so that imports keep working and configuration fails early with a
clear message.
"""

from __future__ import annotations

from typing import Any

from flask_stash.backends.base import BaseCache
from flask_stash.core.errors import ConfigurationError


class _NotYetAvailable(BaseCache):
    family = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ConfigurationError(
            f"{type(self).__name__}: the {self.family} backend arrives with the shared-backends "
            "release of Flask-Stash; use SimpleCache or FileSystemCache until then"
        )


class MemcachedCache(_NotYetAvailable):
    family = "memcached"


class SASLMemcachedCache(_NotYetAvailable):
    family = "memcached"


class SpreadSASLMemcachedCache(_NotYetAvailable):
    family = "memcached"
