"""The one door to a backend: every call the engine makes to it passes through here.

A backend call that fails with :class:`~flask_stash.core.errors.BackendError` is handed to
the error policy (counted, raised when not failing open) and the caller gets the value
that operation returns on failure (a miss, ``False``, ``None``...). Because every call
passes here, three rules about a failing backend hold for all of them:

- **a budget per request**: once a call failed in a request (the gate's ``scope``, given
  by the Flask layer), the rest of that request does not call the backend again: it
  computes and serves without reading, locking or storing;
- **a circuit breaker** (:mod:`flask_stash.core.breaker`): after a few failures in a row
  no call is made at all until a probe succeeds;
- **no lost invalidations** (:mod:`flask_stash.core.pending`): deletes, clears and stamp
  bumps that could not be made are replayed, in order, before any other call once the
  backend answers again.

The logs say what changed, not what every request saw: one WARNING when the backend
turns unhealthy, one INFO when it recovers (with the failed and skipped calls in
between); each failed call is logged at DEBUG. Listeners (the Flask layer's signals) hear
the same two events.

All of that costs a healthy backend one attribute read per call (:attr:`troubled`).
:meth:`Store.read_stored <flask_stash.core.store.Store.read_stored>` (every memoize hit)
inlines :meth:`BackendGate.call`.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from flask_stash.core.breaker import CLOSED, HALF_OPEN, Breaker, Health, describe
from flask_stash.core.errors import BackendError, BackendUnavailable
from flask_stash.core.pending import INVALIDATIONS, PendingInvalidations
from flask_stash.core.policy import ErrorPolicy
from flask_stash.core.stats import BACKEND_SKIP, OUTAGE

logger = logging.getLogger("flask_stash")

R = TypeVar("R")
F = TypeVar("F")
#: ``listener(event, backend name, health)``; ``event`` is ``"unhealthy"`` or ``"recovered"``.
Listener = Callable[[str, str, Health], None]


class BackendGate:
    """Runs backend calls under one :class:`~flask_stash.core.policy.ErrorPolicy`,
    a failure budget per request and a :class:`~flask_stash.core.breaker.Breaker`."""

    def __init__(
        self,
        policy: ErrorPolicy,
        *,
        name: str = "backend",
        breaker: Breaker | None = None,
        pending: PendingInvalidations | None = None,
        scope: Callable[[], object] | None = None,
    ) -> None:
        self.policy = policy
        self.name = name
        self.breaker = breaker or Breaker()
        # Not ``pending or ...``: an empty queue is falsy (``__len__``), and it is empty here.
        self.pending = pending if pending is not None else PendingInvalidations()
        #: ``scope()``: the current request (any object that can be weakly referenced),
        #: or ``None`` outside one. ``None``: no budget, the breaker alone.
        self.scope = scope
        self.listeners: list[Listener] = []
        #: Whether anything is wrong: a failure not yet followed by a success, an open
        #: breaker, a request that saw a failure, invalidations to replay. The only
        #: attribute a call reads while the backend is healthy.
        self.troubled = False
        self._failed_in: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
        self._replaying = threading.Lock()
        self._replay_after = 0.0

    def call(self, operation: str, failed: F, method: Callable[..., R], *args: Any) -> R | F:
        """``method(*args)``, or ``failed`` if the backend failed or was skipped.

        ``method`` is a backend method, or a store routine made of backend calls only
        (a counter increment, the creation of version stamps): one operation, one failure.
        """
        if self.troubled and not self.admit(operation, method, args):
            return failed
        try:
            result = method(*args)
        except BackendError as exc:
            self.failed(exc, operation, method, args)
            return failed
        except BaseException:
            if self.troubled:  # a probe that ended in another error proves nothing
                self.breaker.release_probe()
            raise
        if self.troubled:
            self.succeeded()
        return result

    def run(self, operation: str, method: Callable[..., object], *args: Any) -> bool:
        """:meth:`call` for a method whose result is nothing: whether it went through."""
        return self.call(operation, False, _ran, method, *args)

    def failed_here(self) -> bool:
        """Whether the backend failed for the current request (or is skipped by an open
        breaker): a caller that computed then counts as a backend failure."""
        if not self.troubled:
            return False
        scope = self.scope() if self.scope is not None else None
        return (scope is not None and scope in self._failed_in) or self.breaker.state != CLOSED

    # -- the troubled path -----------------------------------------------------------------

    def admit(self, operation: str, method: Callable[..., object], args: tuple[Any, ...]) -> bool:
        """Whether a call may be made now; a call that may not is counted (and queued if
        it invalidates), and raises when not failing open."""
        scope = self.scope() if self.scope is not None else None
        allowed = (scope is None or scope not in self._failed_in) and self.breaker.admit()
        if allowed and self.pending and self._replay_due() and not self._replay():
            self.breaker.release_probe()  # when this call was the probe
            allowed = False
        if allowed:
            return True
        if operation in INVALIDATIONS:
            self.pending.add(method, args)
        self.policy.stats.incr(BACKEND_SKIP, operation)
        if not self.policy.fail_open:
            health = self.breaker.health()
            raise BackendUnavailable(
                f"cache backend {self.name} is unavailable ({health.state}): {health.last_error}"
            )
        return False

    def failed(
        self,
        error: BackendError,
        operation: str,
        method: Callable[..., object] | None = None,
        args: tuple[Any, ...] = (),
    ) -> None:
        """What a failed backend call does: spend the request's budget, count it towards
        the breaker, queue it if it invalidated, then the policy (count, raise unless
        failing open)."""
        scope = self.scope() if self.scope is not None else None
        if scope is not None:
            self._failed_in[scope] = True
        self.troubled = True
        if method is not None and operation in INVALIDATIONS:
            self.pending.add(method, args)
        if self.breaker.failed(error) and self.whole:
            # (A backend that leaves failing nodes out says so per node instead: here its
            # failures and successes on other nodes would alternate.)
            self.policy.stats.incr(OUTAGE)
            logger.warning(
                "cache backend %s is failing (%s); %s",
                self.name,
                describe(error),
                "serving uncached until it recovers"
                if self.policy.fail_open
                else "requests that use the cache raise errors until it recovers "
                "(CACHE_FAIL_OPEN is False)",
            )
            self._tell("unhealthy", self.breaker.health())
        self.policy.handle(error, operation, quiet=True)

    def succeeded(self) -> None:
        """A call went through while troubled: close the breaker if it was not, and say
        that the backend recovered."""
        ended = self.breaker.succeeded()
        self.troubled = bool(self._failed_in) or bool(self.pending)
        if ended is not None and self.whole:
            logger.info(
                "cache backend %s recovered after %.1f s (%d failed and %d skipped calls)",
                self.name,
                ended.failing_for,
                ended.failures,
                ended.skipped,
            )
            self._tell("recovered", ended)

    @property
    def whole(self) -> bool:
        """Whether the backend fails as a whole (``False``: node by node, as Redis
        Cluster and memcached with several servers do; then one failing node must not
        hold up the others, and the breaker never opens)."""
        return self.breaker.threshold is not None

    def health(self) -> Health:
        return self.breaker.health()

    def ping(self, probe: Callable[[], object]) -> dict[str, Any]:
        """The backend's health for a readiness probe: the breaker's view plus one real
        call (``probe``, made even while the breaker is open; it changes no state)."""
        started = time.perf_counter()
        try:
            probe()
            error = ""
        except BackendError as exc:
            error = describe(exc)
        latency = (time.perf_counter() - started) * 1000
        health = self.breaker.health()
        return {
            "backend": self.name,
            "reachable": not error,
            "latency_ms": round(latency, 3),
            "error": error or health.last_error,
            "breaker": health.state,
            "healthy": not error and health.healthy,
            "failed_calls": health.failures,
            "skipped_calls": health.skipped,
            "pending_invalidations": len(self.pending),
        }

    def _replay(self) -> bool:
        """Replay the queued invalidations before anything else; ``False`` if they could
        not all be made (another thread is replaying, or the backend failed again)."""
        if not self._replaying.acquire(blocking=False):
            return False
        try:
            self.pending.replay()
        except BackendError as exc:
            if not self.whole:  # a node is still out: the others go on meanwhile
                self._replay_after = self.breaker.clock() + self.breaker.backoff
            self.failed(exc, "replay")  # not re-queued: the queue kept what is left
            return False
        finally:
            self._replaying.release()
        if self.breaker.state == HALF_OPEN:
            return True  # the probe goes on: its success closes the breaker
        if self.breaker.state == CLOSED:
            self.succeeded()
        return True

    def _replay_due(self) -> bool:
        # A backend failing as a whole is held up until its queue is replayed (its breaker
        # spaces the attempts). One failing node by node must not hold up the others:
        # its queue is tried again at most once per back-off, by one request.
        return self.whole or self.breaker.clock() >= self._replay_after

    def _tell(self, event: str, health: Health) -> None:
        for listener in self.listeners:
            listener(event, self.name, health)


def backend_name(backend: object) -> str:
    """How logs name a backend: its ``repr`` when it has a telling one, else its class."""
    if type(backend).__repr__ is not object.__repr__:
        return repr(backend)
    return type(backend).__name__


def _ran(method: Callable[..., object], *args: Any) -> bool:
    method(*args)
    return True
