"""The invalidation channel that keeps the in-process tiers of several processes coherent.

Every :class:`~flask_stash.core.tier.TieredBackend` on a backend with publish/subscribe
(the Redis family) publishes the keys each of its writes changed, and listens, in one
daemon thread per process, for the keys the others changed. Redis 6 client-side caching
(``CLIENT TRACKING``) would do the same without explicit messages, but redis-py 5.0.1
(the lowest version supported) has only the raw command, no cache or invalidation
handling, and tracking needs RESP3 or a redirect connection per pooled connection and per
cluster node; explicit messages work the same on a single server, Sentinel and Cluster.

The channel's promise: while :attr:`Sink.synced` holds, the server has confirmed the
subscription and the connection answered within :data:`DEAD_AFTER` seconds, so every
invalidation published since is delivered or the tier has been told it is lost. The
listener reconnects by itself (with back-off) and empties the tier before using it again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Protocol

from flask_stash.core.api import SupportsPublish
from flask_stash.core.errors import BackendError

logger = logging.getLogger("flask_stash")

#: Seconds each wait for a message lasts (bounds how long :meth:`Channel.close` waits).
POLL = 0.1
#: Seconds of silence after which the listener sends a PING on its connection.
HEARTBEAT = 1.0
#: Seconds without any reply after which the connection counts as lost (a peer that
#: vanished without closing the socket, a network partition).
DEAD_AFTER = 3.0
#: Back-off between attempts to subscribe again.
RETRY_MIN, RETRY_MAX = 0.05, 2.0
#: Keys per invalidation message.
BATCH = 500


class Listening(Protocol):
    """A confirmed subscription (see :class:`~flask_stash.core.backends.redis.Subscription`)."""

    heard_at: float

    def poll(self, timeout: float) -> bytes | None: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


class Sink(Protocol):
    """What the channel tells the tier."""

    def resync(self) -> None:
        """The subscription is (again) established: empty the tier and use it."""

    def lost(self) -> None:
        """The subscription is gone: bypass the tier until :meth:`resync`."""

    def invalidate(self, keys: Sequence[str] | None) -> None:
        """Another process changed ``keys`` (``None``: cleared everything)."""


def encode(sender: str, keys: Sequence[str] | None) -> bytes:
    """One message: who sent it and the keys it changed (``None``: all of them)."""
    return json.dumps({"s": sender, "k": None if keys is None else list(keys)}).encode()


def decode(raw: bytes) -> tuple[str, list[str] | None]:
    """``(sender, keys)``; anything malformed reads as a clear (the safe answer)."""
    try:
        message = json.loads(raw)
        sender, keys = message["s"], message["k"]
        if isinstance(sender, str) and (
            keys is None or (isinstance(keys, list) and all(isinstance(k, str) for k in keys))
        ):
            return sender, keys
    except (ValueError, TypeError, KeyError):
        pass
    return "", None


class Channel:
    """Publishes this process's invalidations and feeds the others' to ``sink``."""

    def __init__(self, remote: SupportsPublish, name: str, sink: Sink) -> None:
        self.remote = remote
        self.name = name
        self.sink = sink
        #: Tells this tier's messages from the others' (renewed in a forked child).
        self.sender = uuid.uuid4().hex
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._start_lock = threading.Lock()
        #: ``None`` until the first attempt; then whether the last attempt worked (logs
        #: say what changed, never what every attempt saw).
        self._healthy: bool | None = None

    def publish(self, keys: Sequence[str] | None) -> None:
        """Tell the other processes that ``keys`` changed (``None``: everything)."""
        if keys is None:
            self.remote.publish(self.name, encode(self.sender, None))
            return
        for start in range(0, len(keys), BATCH):
            self.remote.publish(self.name, encode(self.sender, keys[start : start + BATCH]))

    def start(self) -> None:
        """Start the listener thread unless it runs (cheap: called on bypassed reads)."""
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                thread = threading.Thread(
                    target=self._run, name=f"flask-stash-tier:{self.name}", daemon=True
                )
                thread.start()
                self._thread = thread

    def after_fork(self) -> None:
        """In a forked child: the parent's thread is gone and its sender id is not ours."""
        self.sender = uuid.uuid4().hex
        self._thread = None
        if not self._stop.is_set():  # a closed channel stays closed
            self._stop = threading.Event()
        self._start_lock = threading.Lock()
        self._healthy = None

    def close(self, timeout: float = 1.0) -> None:
        """Stop listening (the thread ends within about :data:`POLL` seconds)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- the listener thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            delay = RETRY_MIN
            while not self._stop.is_set():
                lasted = self._session()
                if lasted > RETRY_MAX:  # a channel that worked a while: retry at once
                    delay = RETRY_MIN
                self._stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX)
        finally:  # stopped, or a bug: either way the tier must not be used unwatched
            self.sink.lost()

    def _session(self) -> float:
        """Subscribe and listen until the channel fails; the seconds it was subscribed."""
        try:
            subscription: Listening = self.remote.subscribe(self.name)  # type: ignore[assignment]
        except Exception as exc:  # BackendError, or a driver's surprise: retried alike
            self._failed(exc)
            return 0.0
        started = time.monotonic()
        try:
            self._listen(subscription)
        except Exception as exc:
            self._failed(exc)
        finally:
            with contextlib.suppress(Exception):
                subscription.close()
        return time.monotonic() - started

    def _listen(self, subscription: Listening) -> None:
        self.sink.resync()
        if self._healthy is False:
            logger.info("in-process tier: invalidation channel %r is back; tier emptied", self.name)
        self._healthy = True
        pinged = 0.0
        while not self._stop.is_set():
            raw = subscription.poll(POLL)
            if raw is not None:
                sender, keys = decode(raw)
                if sender != self.sender:
                    self.sink.invalidate(keys)
            now = time.monotonic()
            silent = now - subscription.heard_at
            if silent > DEAD_AFTER:
                raise BackendError(f"no reply on the invalidation channel for {silent:.1f} s")
            if silent > HEARTBEAT and now - pinged > HEARTBEAT:
                subscription.ping()
                pinged = now

    def _failed(self, exc: Exception) -> None:
        self.sink.lost()
        if self._healthy is not False:
            logger.warning(
                "in-process tier bypassed: invalidation channel %r unavailable (%s)",
                self.name,
                exc,
                exc_info=not isinstance(exc, BackendError),  # a surprise: show where
            )
        self._healthy = False
