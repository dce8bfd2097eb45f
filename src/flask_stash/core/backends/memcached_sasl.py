"""memcached with SASL authentication, through pylibmc (binary protocol).

pymemcache speaks the text protocol, which has no authentication, so SASL needs pylibmc,
as in Flask-Caching. The backend is :class:`~flask_stash.core.backends.memcached.
MemcachedBackend` over a pool of pylibmc clients that answers pymemcache's calls.
"""

from __future__ import annotations

import importlib
import queue
from collections.abc import Callable, Sequence
from typing import Any

from flask_stash.core.backends._urls import location_label, memcached_location
from flask_stash.core.backends.memcached import (
    DEFAULT_MAX_VALUE_SIZE,
    MemcachedBackend,
    checked_count,
)
from flask_stash.core.errors import BackendError, EntryTooLarge, MissingDependencyError

try:  # the error the backend's increment falls back to CAS on
    from pymemcache.exceptions import MemcacheClientError
except ImportError:  # pragma: no cover - exercised only where pymemcache is missing
    MemcacheClientError = OSError


class SASLMemcachedBackend(MemcachedBackend):
    """memcached with SASL authentication, through pylibmc (binary protocol).

    pymemcache speaks the text protocol, which has no authentication, so SASL needs
    pylibmc, as in Flask-Caching. ``pool_size`` connections are shared between threads;
    ``pool_blocking`` makes a thread wait for a free one instead of failing. Other
    keyword arguments go to ``pylibmc.Client`` (``behaviors``...).
    """

    def __init__(
        self,
        servers: str | Sequence[str | tuple[str, int]] | None = None,
        *,
        url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        pool_size: int = 1,
        pool_blocking: bool = True,
        max_value_size: int = DEFAULT_MAX_VALUE_SIZE,
        **client_options: Any,
    ) -> None:
        try:
            pylibmc = importlib.import_module("pylibmc")
        except ImportError as exc:
            message = "SASLMemcachedCache needs pylibmc: pip install pylibmc"
            raise MissingDependencyError(message) from exc
        nodes, url_user, url_password = memcached_location(servers, url)
        behaviors = {"cas": True, **client_options.pop("behaviors", {})}  # for gets/cas
        labels = [location_label(node) for node in nodes]
        master = pylibmc.Client(
            labels, binary=True, username=username or url_user,
            password=password or url_password, behaviors=behaviors, **client_options,
        )  # fmt: skip
        size = checked_count("pool_size", pool_size, minimum=1)
        client = _PylibmcClient(pylibmc, master, labels, size, pool_blocking)
        super().__init__(max_value_size=max_value_size, client=client)


class _IncrRefused(MemcacheClientError):  # type: ignore[misc]
    """pylibmc refused an increment (not a counter): the backend falls back to CAS."""


class _PylibmcClient:
    """The pymemcache calls the backend makes, on a pool of pylibmc clients; pylibmc's
    errors become :class:`BackendError` here (``native_errors`` are pymemcache's)."""

    def __init__(
        self, pylibmc: Any, master: Any, servers: list[str], pool_size: int, blocking: bool
    ) -> None:
        self._lib, self._master, self._blocking = pylibmc, master, blocking
        self.servers, self.server = servers, ",".join(servers)  # server: named by clear()
        self._pool = pylibmc.ClientPool(master, pool_size)

    def _run(self, call: Callable[[Any], Any]) -> Any:
        try:
            with self._pool.reserve(block=self._blocking) as mc:
                return call(mc)
        except queue.Empty as exc:  # pool_blocking=False and every connection in use
            raise BackendError("pylibmc: no free connection in the pool", exc) from exc
        except getattr(self._lib, "TooBig", ()) as exc:
            raise EntryTooLarge(f"memcached refused a value: {exc}", exc) from exc
        except self._lib.Error as exc:
            raise BackendError(f"pylibmc: {exc}", exc) from exc

    # pymemcache's signatures; ``noreply`` has no pylibmc equivalent (replies are awaited).
    def get(self, key: bytes) -> Any:
        return self._run(lambda mc: mc.get(key))

    def get_many(self, keys: list[bytes]) -> Any:
        return self._run(lambda mc: mc.get_multi(keys))

    def set(self, key: bytes, value: bytes, expire: int, noreply: bool) -> Any:
        return self._run(lambda mc: mc.set(key, value, time=expire))

    def set_many(self, values: dict[bytes, bytes], expire: int, noreply: bool) -> Any:
        return self._run(lambda mc: mc.set_multi(values, time=expire))  # the keys not stored

    def add(self, key: bytes, value: bytes, expire: int, noreply: bool) -> Any:
        return self._run(lambda mc: mc.add(key, value, time=expire))

    def delete(self, key: bytes, noreply: bool) -> Any:
        return self._run(lambda mc: mc.delete(key))

    def gets(self, key: bytes) -> Any:
        return self._run(lambda mc: mc.gets(key))

    def cas(self, key: bytes, value: bytes, cas: Any, expire: int, noreply: bool) -> Any:
        return self._run(lambda mc: mc.cas(key, value, cas, time=expire))

    def flush_all(self, noreply: bool) -> Any:
        return self._run(lambda mc: mc.flush_all())

    def incr(self, key: bytes, delta: int, noreply: bool) -> Any:
        return self._run(lambda mc: self._incr(mc, key, delta))

    def _incr(self, mc: Any, key: bytes, delta: int) -> Any:
        try:
            return mc.incr(key, delta)
        except self._lib.NotFound:
            return None
        except self._lib.Error as exc:  # not a counter: the backend falls back to CAS
            # libmemcached cannot read the binary protocol's refusal and marks the server
            # failed: every call on this client would fail for its retry_timeout (2 s).
            # Disconnecting clears that; the next call reconnects (and authenticates).
            mc.disconnect_all()
            raise _IncrRefused(str(exc)) from exc

    def close(self) -> None:
        # Disconnect the idle clients but keep them pooled: libmemcached reconnects on
        # the next call, where draining the pool would leave later callers waiting.
        for mc in list(self._pool.queue):
            mc.disconnect_all()
        self._master.disconnect_all()
