"""What a span of a traced backend call tells a tracing backend: the instrumentation scope,
the backend family (``db.system.name``) and which backend (``flask_stash.backend``)."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import flask_stash
from flask_stash.core import tracing
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.backends.redis import RedisBackend
from flask_stash.core.backends.redis_cluster import RedisClusterBackend
from flask_stash.core.backends.redis_sentinel import RedisSentinelBackend
from flask_stash.core.store import Store


class Shelf(MemoryBackend):
    """A backend with a telling ``repr``: spans name it so."""

    def __repr__(self) -> str:
        return "Shelf('attic')"


def traced_calls(backend: MemoryBackend) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert tracing.instrument(Store(backend), tracer_provider=provider)
    backend.set("k", b"v", None)
    assert backend.get("k") == b"v"
    return exporter


def test_spans_come_from_the_flask_stash_scope_at_its_version() -> None:
    spans = traced_calls(Shelf()).get_finished_spans()
    assert [span.name for span in spans] == ["flask_stash set", "flask_stash get"]
    for span in spans:
        assert span.instrumentation_scope is not None
        assert span.instrumentation_scope.name == "flask_stash"
        assert span.instrumentation_scope.version == flask_stash.__version__


def test_spans_name_the_backend_by_its_repr_or_else_its_class() -> None:
    (named, _) = traced_calls(Shelf()).get_finished_spans()
    assert named.attributes is not None
    assert named.attributes["flask_stash.backend"] == "Shelf('attic')"
    assert named.attributes["db.system.name"] == "test_tracing_state"  # its module
    (plain, _) = traced_calls(MemoryBackend()).get_finished_spans()
    assert plain.attributes is not None
    assert dict(plain.attributes) == {
        "db.system.name": "memory",
        "flask_stash.backend": "MemoryBackend",
        "db.operation.name": "set",
    }


@pytest.mark.parametrize(
    ("backend", "system"),
    [
        (lambda: RedisBackend(host="127.0.0.1", port=1), "redis"),
        (lambda: RedisClusterBackend(startup_nodes="127.0.0.1:1"), "redis"),
        (lambda: RedisSentinelBackend(sentinels="127.0.0.1:1"), "redis"),
    ],
    ids=["redis", "cluster", "sentinel"],
)
def test_every_redis_flavour_is_the_redis_system(backend: object, system: str) -> None:
    made = backend()  # type: ignore[operator]
    assert tracing.family(made) == system  # built lazily: nothing connects
    made.close()


def test_the_sasl_memcached_backend_is_the_memcached_system() -> None:
    pytest.importorskip("pylibmc")
    from flask_stash.core.backends.memcached import SASLMemcachedBackend

    backend = SASLMemcachedBackend(["127.0.0.1:1"], username="u", password="p")
    assert tracing.family(backend) == "memcached"


def test_a_backend_of_a_top_level_module_is_named_after_that_module() -> None:
    custom = type("Custom", (MemoryBackend,), {"__module__": "shopcache"})
    assert tracing.family(custom()) == "shopcache"
