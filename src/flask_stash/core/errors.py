"""Exceptions raised by Flask-Stash.

Every error the library raises derives from :class:`StashError`, so an application can
catch the whole family in one place.
"""

from __future__ import annotations


class StashError(Exception):
    """Base class of every Flask-Stash error."""


class ConfigurationError(StashError, ValueError):
    """The cache was configured with a value it cannot work with.

    Raised when the cache is built (``init_app`` or a backend constructor), never in the
    middle of a request.
    """


class MissingDependencyError(ConfigurationError, ImportError):
    """An optional driver is not installed; the message names the extra to install."""


class BackendError(StashError):
    """A storage backend failed (server down, disk full, protocol error...).

    The driver's own exception is kept as ``__cause__`` and as :attr:`original`.
    """

    def __init__(self, message: str, original: BaseException | None = None) -> None:
        super().__init__(message)
        self.original = original


class BackendUnavailable(BackendError):
    """A backend call was not made: the backend's circuit breaker is open, or this
    request already saw it fail. Raised only when not failing open."""


class SerializationError(StashError, TypeError):
    """A value cannot be serialized by the configured serializer (nothing was stored)."""


class UndecodableEntry(StashError):
    """A stored blob cannot be read back: corrupt, tampered, unsigned or foreign format.

    The engine treats it as a miss and counts it; it never reaches application code.
    """


class EntryTooLarge(BackendError):
    """The store refused a value above its size limit (memcached's item size, say).

    Counted and logged like any backend error; the value is simply not cached.
    """


class SignatureMismatch(UndecodableEntry):
    """A signed entry whose MAC does not verify: tampered with, or signed with another key.

    Counted apart (``key_mismatch``): a steady stream of them means processes that share
    the backend do not share the signing key.
    """
