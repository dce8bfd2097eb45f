"""OpenTelemetry spans around backend calls (``CACHE_TRACING``), recorded with the SDK's
in-memory exporter; and nothing at all when tracing is off or OpenTelemetry absent."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from flask_stash import Cache, observe
from flask_stash.core import tracing
from flask_stash.core.errors import BackendError, MissingDependencyError


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def file_app(tmp_path: Path, **config: Any) -> tuple[Flask, Cache]:
    app = Flask(__name__)
    app.config.update(
        CACHE_TYPE="FileSystemCache", CACHE_DIR=str(tmp_path), SECRET_KEY="s", **config
    )
    return app, Cache(app, with_jinja2_ext=False)


def test_backend_calls_get_client_spans(
    tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    app, cache = file_app(tmp_path, CACHE_TRACING=False)
    store = cache.state(app).store
    assert tracing.instrument(store, tracer_provider=provider)
    assert not tracing.instrument(store, tracer_provider=provider)  # never twice

    @cache.memoize()
    def double(n: int) -> int:
        return 2 * n

    with app.app_context():
        double(1)
        exporter.clear()
        assert double(1) == 2  # a hit: one read of the entry with its stamp
    (span,) = exporter.get_finished_spans()
    assert span.name == "flask_stash get_many"
    assert span.kind is SpanKind.CLIENT
    assert span.attributes is not None
    assert span.attributes["db.system.name"] == "filesystem"
    assert span.attributes["db.operation.name"] == "get_many"


def test_a_failed_call_is_an_error_span(
    tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    app, cache = file_app(tmp_path, CACHE_TRACING=False)
    store = cache.state(app).store

    def broken(key: str) -> Any:
        raise BackendError("disk gone")

    store.backend.get = broken  # type: ignore[method-assign]
    tracing.instrument(store, tracer_provider=provider)
    with app.app_context():
        assert cache.get("k") is None  # fail-open: a miss for the caller
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]


def test_automatic_tracing_only_for_backends_out_of_process(
    tmp_path: Path, provider: TracerProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    unset, cache = file_app(tmp_path / "unset")  # CACHE_TRACING = None: automatic
    assert "get" not in vars(cache.state(unset).store.backend)  # no provider: no spans
    monkeypatch.setattr("opentelemetry.trace.get_tracer_provider", lambda: provider)
    app, cache = file_app(tmp_path)
    assert "get" in vars(cache.state(app).store.backend)  # the instance's own, traced
    plain = Flask(__name__)
    memory = Cache(plain, with_jinja2_ext=False)
    backend = memory.state(plain).store.backend
    assert "get" not in vars(backend)  # the class's method: not one frame more
    forced = Flask(__name__)
    forced.config["CACHE_TRACING"] = True
    traced = Cache(forced, with_jinja2_ext=False)
    assert "get" in vars(traced.state(forced).store.backend)
    off_app, off = file_app(tmp_path / "off", CACHE_TRACING=False)
    assert "get" not in vars(off.state(off_app).store.backend)


def test_without_opentelemetry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Absent: nothing is wrapped, and asking for it fails at init_app with the extra."""
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name.startswith("opentelemetry") else real(name, *args)

    monkeypatch.setattr(observe.importlib.util, "find_spec", find_spec)
    app, cache = file_app(tmp_path)
    assert "get" not in vars(cache.state(app).store.backend)
    with pytest.raises(MissingDependencyError, match=r"pip install 'flask-stash\[otel\]'"):
        file_app(tmp_path / "forced", CACHE_TRACING=True)
