"""The ``Cache`` extension object: Flask-Caching's API on Flask-Stash's engine."""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from flask import Blueprint, Flask, current_app, has_app_context

from flask_stash import config as config_module
from flask_stash import dashboard as dashboard_module
from flask_stash import factory, health, observe, workers
from flask_stash import memoize as memo
from flask_stash import warmup as warmups
from flask_stash.core.report import Report, report
from flask_stash.core.stats import Stats
from flask_stash.core.store import Store, Timeout
from flask_stash.registry import EXTENSION_KEY
from flask_stash.routed import redefined_methods
from flask_stash.signing import check_signing
from flask_stash.state import AppState
from flask_stash.views import decorator as views
from flask_stash.views import requestend


class Cache:
    """Caching for one or more Flask apps.

    ``Cache(app)`` or ``cache = Cache(); cache.init_app(app)``, exactly as with
    Flask-Caching. Configuration comes from the app's ``CACHE_*`` keys, then ``config``
    given here, then ``config`` given to :meth:`init_app`; it is read and validated once
    per app. State lives in ``app.extensions``, so one ``Cache`` can serve several apps.
    """

    #: The public methods (``get``, ``set``...) a subclass redefines; ``memoize`` and
    #: ``delete_memoized``/``unlink`` then go through them, as in Flask-Caching
    #: (see :mod:`flask_stash.routed`).
    redefined: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.redefined = redefined_methods(cls, Cache)

    def __init__(
        self,
        app: Flask | None = None,
        with_jinja2_ext: bool = True,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        config_module.merge({}, config, None)  # type-checks ``config`` now
        self.with_jinja2_ext = with_jinja2_ext
        self.config = config
        self._apps: list[weakref.ref[Flask]] = []
        #: The state of the only app this cache serves, if it serves exactly one: the hot
        #: paths then skip the application-context lookup.
        self.only_state: AppState | None = None
        if app is not None:
            self.init_app(app, config)

    def init_app(self, app: Flask, config: Mapping[str, Any] | None = None) -> None:
        """Configure caching for ``app``. Bad configuration raises ``ConfigurationError``."""
        merged = config_module.merge(app.config, self.config, config)
        settings = config_module.read(merged)
        _warn_like_flask_caching(settings)
        built = factory.build(app, settings)
        health.connect(built.store, settings, self)
        check_signing(app, settings, built.store)
        _check_workers(built.store)
        app.extensions.setdefault("cache", {})[self] = built.backend_object
        app.extensions.setdefault(EXTENSION_KEY, {})[self] = AppState.of(
            app, settings, built.store, built.backend_object
        )
        requestend.install(app)
        observe.install(app, self, settings, built.store)
        if self.with_jinja2_ext:
            from flask_stash.jinja import install

            install(app, self)
        self._apps = [ref for ref in self._apps if ref() is not None and ref() is not app]
        self._apps.append(weakref.ref(app))
        self.only_state = self.state(app) if len(self._apps) == 1 else None
        if settings.dashboard[0]:
            self.dashboard(app)

    # -- per-app state ----------------------------------------------------------------

    def state(self, app: Flask | None = None) -> AppState:
        """This cache's state for ``app`` (default: the current app).

        Outside an app context, the app is implied when this cache serves exactly one.
        """
        app = app or self._current_app()
        try:
            state: AppState = app.extensions[EXTENSION_KEY][self]
        except KeyError:
            raise RuntimeError(
                f"this Cache was not initialized for app {app.name!r}: call cache.init_app(app)"
            ) from None
        return state

    def _current_app(self) -> Flask:
        if has_app_context():
            return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]
        live = [app for ref in self._apps if (app := ref()) is not None]
        if len(live) == 1:
            return live[0]
        raise RuntimeError(
            "working outside of an application context, and this Cache serves "
            f"{len(live)} apps: push an app context (with app.app_context(): ...)"
        )

    @property
    def app(self) -> Flask:
        """The current app, or the only app this cache serves (Flask-Caching's ``cache.app``).

        Read-only: nothing is stored on the ``Cache`` object itself.
        """
        return self._current_app()

    @property
    def cache(self) -> Any:
        """The backend object of the current app (Flask-Caching's ``cache.cache``)."""
        return self.state().backend_object

    @property
    def store(self) -> Store:
        """The engine's store for the current app (``MISS``-aware API, statistics)."""
        return self.state().store

    def stats(self, *, everyone: bool = True) -> Report:
        """What the current app's cache did (``docs/observability.md``): this process's
        figures per cached function and view and, on a backend shared by several
        processes, the sums of all of them (one backend read; ``everyone=False`` skips it).

        As a mapping it is this process's raw counters, ``{event: {scope: count}}``.
        """
        return report(self.state().store, everyone=everyone)

    def reset_stats(self, *, everyone: bool = False) -> None:
        """Zero this process's figures (``everyone=True``: the shared sums too)."""
        store = self.state().store
        store.stats.reset()
        if everyone and store.shared_stats is not None:
            store.shared_stats.reset()

    def ping(self) -> dict[str, Any]:
        """The current app's backend health, for readiness probes (``docs/outages.md``):
        ``healthy``, ``reachable``, ``latency_ms``, ``breaker`` (closed / open /
        half-open), ``error``, ``failed_calls``, ``skipped_calls``,
        ``pending_invalidations``. Makes one real read, even while the breaker is open."""
        store = self.state().store
        probe_key = store.backend_key("__flask_stash_ping__")
        return store.gate.ping(lambda: store.backend.get(probe_key))

    def dashboard(
        self,
        app: Flask | None = None,
        *,
        url: str | None = None,
        access: Callable[[], bool] | None = None,
    ) -> Blueprint:
        """Serve a page showing what the cache does at ``url`` (``CACHE_DASHBOARD_URL``,
        ``/_stash`` by default), its figures as JSON at ``url + "/data"``.

        ``access()`` (``CACHE_DASHBOARD_ACCESS``) is called in each dashboard request and
        says whether the current user may see it (403 otherwise). Without it the dashboard
        answers in debug mode only (404 otherwise): never expose it in production without
        a check (``docs/observability.md``). ``CACHE_DASHBOARD = True`` calls this at
        :meth:`init_app`.
        """
        return dashboard_module.install(app or self._current_app(), self, url=url, access=access)

    @property
    def statistics(self) -> Stats:
        return self.state().store.stats

    # -- observability: warm-ups and metrics (docs/observability.md) --------------------

    def warmup(
        self,
        fn: warmups.WarmupFunction | None = None,
        *,
        name: str | None = None,
        length: int | None = None,
    ) -> Any:
        """Register ``fn`` for ``flask stash warm``: ``@cache.warmup`` or
        ``@cache.warmup(name=..., length=...)``. It takes no arguments, runs in the app
        context, and may yield items (each advances the progress bar; ``length`` says how
        many, when known). Returns ``fn`` unchanged."""

        def register(fn: warmups.WarmupFunction) -> warmups.WarmupFunction:
            warmups.add(self, fn, name, length)
            return fn

        return register if fn is None else register(fn)

    def add_warmup(
        self, fn: warmups.WarmupFunction, *, name: str | None = None, length: int | None = None
    ) -> None:
        """Register ``fn`` for ``flask stash warm`` (see :meth:`warmup`)."""
        warmups.add(self, fn, name, length)

    def metrics_endpoint(
        self,
        app: Flask,
        url: str = "/metrics",
        *,
        check: Callable[[], bool] | None = None,
        endpoint: str = "flask_stash_metrics",
    ) -> None:
        """Serve Prometheus metrics at ``url`` (needs ``flask-stash[prometheus]``): this
        app's caches' figures (every process's on a shared backend) plus the
        ``prometheus_client`` registry (aggregated over processes under
        ``PROMETHEUS_MULTIPROC_DIR``). ``check()`` returning false answers 403.
        ``CACHE_METRICS_URL`` does the same from configuration."""
        from flask_stash import metrics

        metrics.mount(app, url, check=check, endpoint=endpoint)

    # -- the direct API (Flask-Caching's names and return values) ----------------------

    def get(self, key: str) -> Any:
        return self.cache.get(key)

    def has(self, key: str) -> bool:
        return bool(self.cache.has(key))

    def set(
        self, key: str, value: Any, timeout: Timeout = None, *, tags: Iterable[str] = ()
    ) -> bool:
        """Store ``value`` (Flask-Caching's ``set``). ``tags``: :meth:`invalidate_tags` of
        one of them drops the entry (its ``get`` then reads the tags' stamps too)."""
        if tags:
            return bool(self.cache.set(key, value, timeout=timeout, tags=tuple(tags)))
        return bool(self.cache.set(key, value, timeout=timeout))

    def invalidate_tags(self, *tags: str) -> bool:
        """Invalidate every entry carrying one of ``tags`` (``tags=`` of ``memoize``,
        ``cached`` and ``set``), in O(1) per tag, on every process sharing the backend.
        ``False`` if the backend failed (the invalidation is queued and replayed)."""
        return self.state().store.invalidate_tags(tags)

    def add(self, key: str, value: Any, timeout: Timeout = None) -> bool:
        return bool(self.cache.add(key, value, timeout=timeout))

    def delete(self, key: str) -> bool:
        return bool(self.cache.delete(key))

    def delete_many(self, *keys: str) -> list[str]:
        return list(self.cache.delete_many(*keys))

    def get_many(self, *keys: str) -> list[Any]:
        return list(self.cache.get_many(*keys))

    def set_many(self, mapping: Mapping[str, Any], timeout: Timeout = None) -> list[Any]:
        return list(self.cache.set_many(mapping, timeout=timeout))

    def get_dict(self, *keys: str) -> dict[str, Any]:
        return dict(self.cache.get_dict(*keys))

    def clear(self) -> bool:
        return bool(self.cache.clear())

    def unlink(self, *keys: str) -> list[str]:
        """Delete ``keys`` without blocking the server where it can (Redis ``UNLINK``)."""
        unlink = getattr(self.cache, "unlink", None)
        if "delete_many" in self.redefined or not callable(unlink):
            return self.delete_many(*keys)  # Flask-Caching's unlink is delete_many
        return list(unlink(*keys))

    def inc(self, key: str, delta: int = 1) -> int | None:
        result: int | None = self.cache.inc(key, delta=delta)
        return result

    def dec(self, key: str, delta: int = 1) -> int | None:
        result: int | None = self.cache.dec(key, delta=delta)
        return result

    # -- decorators: defined in memoize.py and views/decorator.py, bound here as methods ----

    memoize = memo.memoize
    delete_memoized = memo.delete_memoized
    delete_memoized_verhash = memo.delete_memoized_verhash
    cached = views.cached

    def delete_cached(
        self,
        f: Callable[..., Any],
        path: str | None = None,
        query_args: Any = None,
        *,
        user: Any = views.EVERYONE,
        **kwargs: Any,
    ) -> bool:
        """Delete the page a ``@cached`` function stored for ``path`` (and query args).

        For a ``private=True`` view, every user's copy of that page is dropped; with
        ``user=`` (the value the view's ``private_key()`` returns for that user), only
        that user's copies are.
        """
        view = getattr(f, "__stash_cached__", None)
        if not isinstance(view, views.CachedView):
            raise ValueError(f"{f!r} is not decorated with @cache.cached")
        return view.delete(path, query_args, user, kwargs)


def _warn_like_flask_caching(settings: config_module.CacheConfig) -> None:
    if settings.type in ("NullCache", "null") and not settings.no_null_warning:
        warnings.warn(
            "Flask-Stash: CACHE_TYPE is set to NullCache, caching is effectively disabled.",
            config_module.ConfigWarning,
            stacklevel=3,
        )


def _check_workers(store: Store) -> None:
    """An in-process backend under several workers gets one warning (see workers.py)."""
    name = workers.in_process_name(store.backend)
    if name is not None:
        workers.check_in_process_cache(name)
