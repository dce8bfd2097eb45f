"""Prometheus metrics (``CACHE_METRICS_URL``, ``cache.metrics_endpoint``): the figures of
``cache.stats()`` as counters, in one process and scraped under two gunicorn workers."""

from __future__ import annotations

import http.client
import time
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from flask_stash import Cache

from .. import servers
from .test_multiworker import USER, gunicorn, read_both

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    """The one sample of ``name`` whose labels include ``labels``."""
    (match,) = [v for (n, ls), v in found.items() if n == name and set(labels.items()) <= ls]
    return match


def test_the_endpoint_serves_this_process_figures_on_an_in_process_backend() -> None:
    app = Flask(__name__)
    app.config["CACHE_METRICS_URL"] = "/metrics"
    cache = Cache(app, with_jinja2_ext=False)

    @cache.memoize()
    def square(n: int) -> int:
        return n * n

    with app.app_context():
        square(2), square(2), square(3)
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    found = samples(response.get_data(as_text=True))
    scope = next(ls for (n, ls) in found if n == "flask_stash_calls_total")
    pid = dict(scope)["pid"]
    assert pid.isdigit()  # one process's figures: they say whose
    assert value(found, "flask_stash_calls_total", outcome="hit") == 1
    assert value(found, "flask_stash_calls_total", outcome="miss") == 2
    assert value(found, "flask_stash_calls_total", outcome="stale") == 0
    assert value(found, "flask_stash_stored_bytes_total", cache="default") > 0
    assert value(found, "flask_stash_figures_shared", cache="default") == 0
    assert value(found, "flask_stash_backend_healthy", cache="default") == 1
    assert any(name == "python_info" for name, _ in found)  # the default registry too


def test_metrics_endpoint_with_an_access_check() -> None:
    app = Flask(__name__)
    cache = Cache(app, with_jinja2_ext=False)
    allowed = [False]
    cache.metrics_endpoint(app, "/internal/metrics", check=lambda: allowed[0])
    client = app.test_client()
    assert client.get("/internal/metrics").status_code == 403
    allowed[0] = True
    assert client.get("/internal/metrics").status_code == 200
    cache.metrics_endpoint(app, "/internal/metrics")  # a second call is ignored


def test_a_bad_metrics_url_fails_at_init_app() -> None:
    from flask_stash import ConfigurationError

    app = Flask(__name__)
    app.config["CACHE_METRICS_URL"] = "metrics"
    with pytest.raises(ConfigurationError, match="CACHE_METRICS_URL must be a URL path"):
        Cache(app)


# -- two gunicorn workers on Redis ----------------------------------------------------------

DEADLINE = 15.0  # seconds for every worker's counts to reach the backend (pushed each second)


def scrape(port: int) -> Samples:
    with closing(http.client.HTTPConnection(servers.HOST, port, timeout=10)) as conn:
        conn.request("GET", "/metrics", headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read().decode()
        assert response.status == 200, body
    return samples(body)


@pytest.mark.server
def test_two_workers_on_redis_are_counted_exactly(
    tmp_path: Path, redis_single: servers.Server
) -> None:
    """Both workers call the memoized ``user_name``: the first call misses, every other one
    hits the entry in Redis. Whichever worker answers the scrape, the counters are the
    sums of both workers' calls, exactly: never more, and all of them within the deadline
    (a worker pushes its counts once a second)."""
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    env = {
        "STASH_CACHE_TYPE": "RedisCache",
        "STASH_CACHE_REDIS_URL": f"redis://{redis_single.address}/0",
        "STASH_CACHE_KEY_PREFIX": f"metrics-{uuid.uuid4().hex[:8]}:",
        "STASH_CACHE_METRICS_URL": "/metrics",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
    }
    rounds = 5
    scope = "tests.multiworker_app.user_name"
    with gunicorn(tmp_path, env) as port:
        pids: set[int] = set()
        for _ in range(rounds):
            pids |= {reply.pid for reply in read_both(port)}
        assert len(pids) == 2
        calls = {"hit": 2 * rounds - 1, "miss": 1}
        seen: dict[str, Any] = {}
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            found = scrape(port)
            seen = {
                outcome: value(found, "flask_stash_calls_total", scope=scope, outcome=outcome)
                for outcome in calls
            }
            assert all(seen[o] <= calls[o] for o in calls), seen  # never counted twice
            if seen == calls:
                break
            time.sleep(0.1)  # polling for the workers' pushes, not timing anything
        assert seen == calls
        assert value(found, "flask_stash_figures_shared", cache="default") == 1
        assert value(found, "flask_stash_calls_total", scope=scope, outcome="error") == 0
        assert dict(next(ls for (n, ls) in found if n == "flask_stash_calls_total"))["pid"] == ""
    assert USER  # the user the replies are about
