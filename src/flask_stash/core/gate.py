"""The one door to a backend: every call the engine makes to it passes through here.

A backend call that fails with :class:`~flask_stash.core.errors.BackendError` is handed to
the error policy (counted, logged rate-limited, raised when not failing open) and the
caller gets the value that operation returns on failure (a miss, ``False``, ``None``...).
Deciding that here, once, is what lets a later rule about backend calls (a failure budget
per request, a circuit breaker per backend) apply to every one of them.

The gate takes bound methods rather than holding the backend, so a store whose backend is
swapped (tests count round trips that way) needs no second change. Operation names are the
ones counted in ``stats`` and named in the logs: ``get``, ``set``, ``lock``...

:meth:`Store.read_stored <flask_stash.core.store.Store.read_stored>` (every memoize hit)
inlines :meth:`BackendGate.call` to save a call frame; its failure still goes through
:meth:`BackendGate.failed`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask_stash.core.errors import BackendError
from flask_stash.core.policy import ErrorPolicy

R = TypeVar("R")
F = TypeVar("F")


class BackendGate:
    """Runs backend calls under one :class:`~flask_stash.core.policy.ErrorPolicy`."""

    __slots__ = ("policy",)

    def __init__(self, policy: ErrorPolicy) -> None:
        self.policy = policy

    def call(self, operation: str, failed: F, method: Callable[..., R], *args: Any) -> R | F:
        """``method(*args)``, or ``failed`` if the backend failed (see :meth:`failed`).

        ``method`` is a backend method, or a store routine made of backend calls only
        (a counter increment, the creation of version stamps): one operation, one failure.
        """
        try:
            return method(*args)
        except BackendError as exc:
            self.failed(exc, operation)
            return failed

    def run(self, operation: str, method: Callable[..., object], *args: Any) -> bool:
        """:meth:`call` for a method whose result is nothing: whether it went through."""
        return self.call(operation, False, _ran, method, *args)

    def failed(self, error: BackendError, operation: str) -> None:
        """What a failed backend call does: count and log it, raise it unless failing open."""
        self.policy.handle(error, operation)


def _ran(method: Callable[..., object], *args: Any) -> bool:
    method(*args)
    return True
