"""Prometheus metrics: ``pip install flask-stash[prometheus]``, then ``CACHE_METRICS_URL =
"/metrics"`` or ``cache.metrics_endpoint(app)``.

Which numbers, and why a custom collector rather than ``prometheus_client`` counters
incremented on every call: the cache already counts every outcome exactly
(:mod:`flask_stash.core.stats`), and on a shared backend (Redis, memcached, file system)
every process adds its counts to one record in the backend within a second
(:mod:`flask_stash.core.statshare`). So :class:`StashCollector` reads ``cache.stats()`` at
scrape time and exposes **every process's** figures: whichever worker answers the scrape,
the counters are the same exact sums, and nothing is counted twice or written to
``PROMETHEUS_MULTIPROC_DIR``. The hot paths pay nothing for metrics.

On an in-process backend (the in-memory default) only the answering process's figures
exist: they carry a ``pid`` label, and under several workers each scrape sees one of
them (use a shared backend there; the app already warns about an in-process cache under
several workers).

The endpoint also serves the ``prometheus_client`` registry (the app's own metrics):
aggregated over the processes by ``MultiProcessCollector`` when
``PROMETHEUS_MULTIPROC_DIR`` is set (gunicorn's multiprocess mode), else the default one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Response, abort

from flask_stash import registry
from flask_stash.core.lazy import require
from flask_stash.core.report import Report, report
from flask_stash.core.stats import ERROR

#: The ``outcome`` label of ``flask_stash_calls_total``, per :class:`ScopeFigures` field.
OUTCOMES = {
    "hits": "hit",
    "misses": "miss",
    "stale": "stale",
    "coalesced": "coalesced",
    "passes": "pass",
    "errors": "error",
}
MULTIPROC_ENV = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")


def _prometheus() -> Any:
    return require("prometheus_client", extra="prometheus", needed_by="the metrics endpoint")


class StashCollector:
    """A ``prometheus_client`` collector of the figures of every cache of ``app``.

    ``registry.register(StashCollector(app))`` adds them to a registry of your own.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._core = require("prometheus_client.core", extra="prometheus")

    def collect(self) -> Iterator[Any]:
        families = self._families()
        for name, (_, state) in registry.caches(self.app).items():
            self._add(families, name, report(state.store))
        yield from families.values()

    def _families(self) -> dict[str, Any]:
        counter, gauge = self._core.CounterMetricFamily, self._core.GaugeMetricFamily
        scoped = ["cache", "scope", "kind", "pid"]
        return {
            "calls": counter(
                "flask_stash_calls",
                "Calls of cached functions and views, by outcome (one per call).",
                labels=[*scoped, "outcome"],
            ),
            "saved": counter(
                "flask_stash_time_saved_seconds",
                "Compute time the answers served from the cache saved.",
                labels=scoped,
            ),
            "stored": counter(
                "flask_stash_stored_bytes", "Bytes written to the backend.", labels=scoped
            ),
            "errors": counter(
                "flask_stash_backend_errors",
                "Backend calls that failed, by operation.",
                labels=["cache", "operation", "pid"],
            ),
            "evictions": counter(
                "flask_stash_evictions",
                "Entries the backend evicted to make room (where it can tell).",
                labels=["cache"],
            ),
            "healthy": gauge(
                "flask_stash_backend_healthy",
                "1 while the backend answers, 0 while it fails (breaker open or failing).",
                labels=["cache", "backend"],
            ),
            "shared": gauge(
                "flask_stash_figures_shared",
                "1: the figures are every process's (shared backend); 0: one process's.",
                labels=["cache"],
            ),
        }

    def _add(self, families: dict[str, Any], name: str, found: Report) -> None:
        healthy = 1.0 if found.health.get("healthy", True) else 0.0
        families["healthy"].add_metric([name, found.backend], healthy)
        families["shared"].add_metric([name], 1.0 if found.shared else 0.0)
        if found.evictions is not None:
            families["evictions"].add_metric([name], float(found.evictions))
        figures = found.everyone if found.shared else found.process
        if figures is None:
            return  # unreadable now: no sample rather than one process's (a false reset)
        pid = "" if found.shared else str(found.pid)
        for scope in figures.by_calls():
            labels = [name, scope.scope, scope.kind, pid]
            for field, outcome in OUTCOMES.items():
                families["calls"].add_metric([*labels, outcome], float(getattr(scope, field)))
            families["saved"].add_metric(labels, scope.time_saved)
            families["stored"].add_metric(labels, float(scope.bytes_stored))
        for operation, count in sorted(figures.events.get(ERROR, {}).items()):
            families["errors"].add_metric([name, operation, pid], float(count))


class _Forward:
    """Another registry's metrics, through this one (no ``describe``: no name checks)."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def collect(self) -> Iterator[Any]:
        yield from self.source.collect()


def metrics_registry(app: Flask) -> Any:
    """The registry the endpoint serves: the cache figures, plus the app's own metrics."""
    prometheus = _prometheus()
    served = prometheus.CollectorRegistry()
    if any(os.environ.get(name) for name in MULTIPROC_ENV):
        multiprocess = require("prometheus_client.multiprocess", extra="prometheus")
        multiprocess.MultiProcessCollector(served)
    else:
        served.register(_Forward(prometheus.REGISTRY))
    served.register(StashCollector(app))
    return served


def mount(
    app: Flask,
    url: str = "/metrics",
    *,
    check: Callable[[], bool] | None = None,
    endpoint: str = "flask_stash_metrics",
) -> None:
    """Serve ``app``'s metrics at ``url`` (once per app: a second call is ignored)."""
    if endpoint in app.view_functions:
        return
    prometheus = _prometheus()
    served = metrics_registry(app)

    def metrics() -> Response:
        if check is not None and not check():
            abort(403)
        body = prometheus.generate_latest(served)
        return Response(body, content_type=prometheus.CONTENT_TYPE_LATEST)

    app.add_url_rule(url, endpoint, metrics, methods=["GET"])
