"""What ``init_app`` installs to observe a cache: the ``flask stash`` command, the metrics
endpoint (``CACHE_METRICS_URL``) and OpenTelemetry spans (``CACHE_TRACING``)."""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

from flask import Flask

from flask_stash import registry, workers
from flask_stash.config import CacheConfig
from flask_stash.core.errors import MissingDependencyError
from flask_stash.core.store import Store

logger = logging.getLogger("flask_stash")


def install(app: Flask, cache: Any, settings: CacheConfig, store: Store) -> None:
    """Called by ``init_app`` once ``cache``'s state is in ``app.extensions``."""
    from flask_stash.cli import stash

    registry.check_names(app)
    app.cli.add_command(stash)
    if settings.metrics_url is not None:
        from flask_stash import metrics

        metrics.mount(app, settings.metrics_url)
    if traced(settings, store):
        from flask_stash.core import tracing

        tracing.instrument(store)


def traced(settings: CacheConfig, store: Store) -> bool:
    """Whether ``store``'s backend calls get spans (``CACHE_TRACING``). Decided once,
    here: without OpenTelemetry nothing is wrapped and backend calls cost what they did."""
    if settings.tracing is False:
        return False
    # (the namespace package first: find_spec of a submodule imports its parent)
    available = importlib.util.find_spec("opentelemetry") is not None and (
        importlib.util.find_spec("opentelemetry.trace") is not None
    )
    if settings.tracing is True:
        if not available:
            raise MissingDependencyError(
                "CACHE_TRACING = True needs the 'opentelemetry-api' package, which is not "
                "installed: pip install 'flask-stash[otel]'"
            )
        return True
    # Automatic: spans for calls that leave the process (a dict lookup in a span would cost
    # more than the lookup), once a tracer provider is set up: spans of the API's no-op
    # proxy would cost every call ~8 us to record nothing.
    return available and out_of_process(store) and provider_configured()


def provider_configured() -> bool:
    """Whether a real OpenTelemetry tracer provider (an SDK's) is set globally."""
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def out_of_process(store: Store) -> bool:
    """Whether ``store``'s calls leave the process (not the in-memory or null backend)."""
    from flask_stash.core.backends.null import NullBackend

    backend = store.backend
    return workers.in_process_name(backend) is None and not isinstance(backend, NullBackend)
