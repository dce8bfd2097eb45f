"""OpenTelemetry spans around backend calls (``pip install flask-stash[otel]``).

Zero cost unless enabled: nothing here is imported unless the Flask layer (or the
engine's user) calls :func:`instrument` for a store, which it decides once, when the app
is configured (``CACHE_TRACING``). :func:`instrument` replaces the backend object's call
methods with traced ones *on that instance* (instance attributes shadow the class's), so
every caller that reaches the backend through ``store.backend`` (the gate, the inlined
hit path of :meth:`Store.read_stored <flask_stash.core.store.Store.read_stored>`, locks,
invalidation replays) gets spans without one extra branch for the backends left alone,
and capability checks (``isinstance(backend, SupportsLock)``) see the same object.

Each span is a ``CLIENT`` span named ``flask_stash <operation>`` (``flask_stash get``)
with ``db.system.name`` (the backend family), ``db.operation.name`` and
``flask_stash.backend``; a failed call records its exception and an error status. Keys
are not recorded (they can carry user data). Statistics pushes are not traced.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask_stash.core.backends.base import BACKEND_CALLS
from flask_stash.core.gate import backend_name

#: Backend methods that get a span, when the backend has them.
TRACED = tuple(name for name in BACKEND_CALLS if name != "close")
#: Marks a backend already instrumented (``init_app`` twice must not nest spans).
MARK = "__flask_stash_traced__"


def instrument(store: Any, tracer_provider: Any = None) -> bool:
    """Trace the calls ``store`` makes to its backend; ``False`` if they already were.

    ``tracer_provider``: an OpenTelemetry ``TracerProvider`` (default: the global one,
    which may be configured later: the API's proxy tracer follows it).
    """
    from opentelemetry import trace

    backend = store.shared_backend  # behind a tier, the calls that leave the process
    if getattr(backend, MARK, False):
        return False
    tracer = trace.get_tracer("flask_stash", _version(), tracer_provider=tracer_provider)
    attributes = {
        "db.system.name": family(backend),
        "flask_stash.backend": backend_name(backend),
    }
    for operation in TRACED:
        method = getattr(backend, operation, None)
        if callable(method):
            span_attributes = {**attributes, "db.operation.name": operation}
            setattr(backend, operation, _traced(tracer, operation, span_attributes, method))
    setattr(backend, MARK, True)
    return True


def family(backend: object) -> str:
    """The backend family for ``db.system.name``: ``redis``, ``memcached``, ``filesystem``..."""
    module = type(backend).__module__.rsplit(".", 1)[-1]
    return {"redis_cluster": "redis", "redis_sentinel": "redis", "memcached_sasl": "memcached"}.get(
        module, module
    )


def _traced(
    tracer: Any, operation: str, attributes: dict[str, str], method: Callable[..., Any]
) -> Callable[..., Any]:
    from opentelemetry.trace import SpanKind

    start = tracer.start_as_current_span
    name, kind = f"flask_stash {operation}", SpanKind.CLIENT

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with start(name, kind=kind, attributes=attributes):
            return method(*args, **kwargs)

    return call


def _version() -> str:
    from flask_stash import __version__

    return __version__
