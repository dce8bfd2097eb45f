"""A hung backend costs a request at most one timeout (issue 11).

A server paused with SIGSTOP accepts connections and never answers: every call waits for
its socket timeout. Requirements: the first request of an outage adds at most 1.2 s (with
the default timeouts) over the same request uncached; once a process has seen a few failed
requests, further ones add under 50 ms; caching resumes by itself after the server comes
back; one WARNING line when a backend turns unhealthy, one INFO line when it recovers;
invalidations made during the outage are never undone by it (a value deleted while the
server hung is never served afterwards).

Requests that may outlast a requirement run in threads (``Background``): a test waits for
one only as long as the requirement allows, so it takes a few seconds even where the code
under test would take fifteen. Tests marked ``xfail(strict=True)`` state what the current
code does not do yet; remove the mark as the fix lands.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from .. import servers
from ..outage_app import Background, OutageApp, Timed, build, memcached_config, uncached
from ..outage_app import cluster_config as cluster_settings
from ..outage_app import redis_config as redis_settings

pytestmark = pytest.mark.server

FIRST_REQUEST_BUDGET = 1.2  # seconds added by the first request of an outage (defaults)
LATER_REQUEST_BUDGET = 0.05  # seconds added by each request once the backend is known down
WARM_UP_REQUESTS = 5  # "a few failed requests"
RECOVERY_DEADLINE = 5.0  # seconds after the server is back, at most, to cache again
SHORT = 0.05  # socket timeout where a test is about the logic, not the defaults


Build = Callable[..., OutageApp]


@pytest.fixture
def built() -> Iterator[Build]:
    """``built(config, prefix=None)``: the app on Flask-Stash, closed after the test."""
    apps: list[OutageApp] = []

    def make(config: dict[str, Any], prefix: str | None = None) -> OutageApp:
        apps.append(build("flask_stash", config, prefix))
        return apps[-1]

    yield make
    for app in apps:
        app.close()


def baseline(path: str = "/view/0") -> float:
    """The same request on the same app without a cache: the best of three."""
    app = uncached("flask_stash")
    return min(app.request(path).seconds for _ in range(3))


def poll(predicate: Callable[[], bool], deadline: float, what: str) -> float:
    """Seconds until ``predicate()`` holds; fails after ``deadline`` seconds."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > deadline:
            pytest.fail(f"{what}: not within {deadline}s")
        time.sleep(0.05)
    return time.monotonic() - started


def is_hit_again(app: OutageApp, path: str) -> Callable[[], bool]:
    """A predicate: ``path`` requested twice, the second time served from the cache."""

    def check() -> bool:
        app.request(path)
        before = app.runs["view"]
        return app.request(path).status == 200 and app.runs["view"] == before

    return check


def warm_up_failures(background: Background, app: OutageApp, count: int = WARM_UP_REQUESTS) -> None:
    """``count`` requests during the outage, each a new view (a miss everywhere)."""
    for n in range(count):
        timed = background.request(app, f"/view/{100 + n}", limit=10)
        assert timed is not None
        assert timed.status == 200


def later_requests_added(background: Background, app: OutageApp, base: float) -> list[float]:
    """Added seconds of three more requests (a new view each), ``inf`` if one outlasts 1 s."""
    added = []
    for n in range(3):
        timed = background.request(app, f"/view/{200 + n}", limit=1.0)
        added.append(float("inf") if timed is None else timed.seconds - base)
        assert timed is None or timed.status == 200
    return added


def levels(records: Sequence[logging.LogRecord]) -> list[str]:
    return [record.levelname for record in records if record.levelno >= logging.INFO]


# -- Redis, one server paused ----------------------------------------------------------------


def test_first_request_of_an_outage_adds_at_most_one_timeout(
    built: Build, own_redis: servers.Server
) -> None:
    app = built(redis_settings(own_redis))  # default timeouts
    base = baseline()
    assert app.request("/view/0").status == 200
    with Background() as background, servers.paused(own_redis):
        timed = background.request(app, "/view/1", limit=FIRST_REQUEST_BUDGET + base + 1)
        assert timed is not None, "the first request outlasted its budget by over a second"
        assert timed.status == 200
        assert timed.seconds - base <= FIRST_REQUEST_BUDGET


def test_a_cached_view_during_an_outage_adds_at_most_one_timeout(
    built: Build,
    own_redis: servers.Server,
) -> None:
    app = built(redis_settings(own_redis))
    base = baseline()
    app.request("/view/0")
    with Background() as background, servers.paused(own_redis):
        timed = background.request(app, "/view/0", limit=FIRST_REQUEST_BUDGET + base + 1)
        assert timed is not None
        assert timed.seconds - base <= FIRST_REQUEST_BUDGET


def test_after_a_few_failed_requests_the_backend_costs_nothing(
    built: Build, own_redis: servers.Server
) -> None:
    app = built(redis_settings(own_redis, SHORT))
    base = baseline()
    app.request("/view/0")
    with Background() as background, servers.paused(own_redis):
        warm_up_failures(background, app)
        added = later_requests_added(background, app, base)
    assert max(added) < LATER_REQUEST_BUDGET, added


def test_caching_resumes_by_itself_after_sigcont(built: Build, own_redis: servers.Server) -> None:
    app = built(redis_settings(own_redis, SHORT))
    app.request("/view/0")
    with Background() as background, servers.paused(own_redis):
        warm_up_failures(background, app)
    poll(is_hit_again(app, "/view/1"), RECOVERY_DEADLINE, "a hit after the server came back")
    assert app.request("/view/0").status == 200


def test_one_warning_per_outage_and_one_info_on_recovery(
    built: Build, own_redis: servers.Server, caplog: pytest.LogCaptureFixture
) -> None:
    app = built(redis_settings(own_redis, SHORT))
    app.request("/view/0")
    caplog.set_level(logging.INFO, logger="flask_stash")
    caplog.clear()
    for _ in range(2):  # two outages
        with Background() as background, servers.paused(own_redis):
            warm_up_failures(background, app)
        poll(is_hit_again(app, "/view/1"), RECOVERY_DEADLINE, "a hit after the outage")
    ours = [record for record in caplog.records if record.name.startswith("flask_stash")]
    assert levels(ours) == ["WARNING", "INFO", "WARNING", "INFO"], [
        (record.levelname, record.getMessage()[:80]) for record in ours
    ]


# -- Redis killed and restarted on its port ----------------------------------------------------


def test_killed_redis_first_and_later_requests_are_cheap_and_succeed(
    built: Build,
    own_redis: servers.Server,
) -> None:
    app = built(redis_settings(own_redis))  # default timeouts
    base = baseline()
    app.request("/view/0")
    with Background() as background, servers.killed(own_redis):
        first = background.request(app, "/view/1", limit=FIRST_REQUEST_BUDGET + base + 1)
        assert first is not None
        assert first.status == 200
        assert first.seconds - base <= FIRST_REQUEST_BUDGET
        warm_up_failures(background, app)
        added = later_requests_added(background, app, base)
        assert max(added) < LATER_REQUEST_BUDGET, added


def test_killed_redis_caching_resumes_after_restart(
    built: Build, own_redis: servers.Server
) -> None:
    app = built(redis_settings(own_redis))
    app.request("/view/0")
    with Background() as background, servers.killed(own_redis):
        warm_up_failures(background, app)
        servers.restart(own_redis)
        poll(is_hit_again(app, "/view/1"), RECOVERY_DEADLINE, "a hit after the restart")


def test_killed_redis_one_warning_and_one_info(
    built: Build, own_redis: servers.Server, caplog: pytest.LogCaptureFixture
) -> None:
    app = built(redis_settings(own_redis))
    app.request("/view/0")
    caplog.set_level(logging.INFO, logger="flask_stash")
    caplog.clear()
    with Background() as background, servers.killed(own_redis):
        warm_up_failures(background, app)
        servers.restart(own_redis)
        poll(is_hit_again(app, "/view/1"), RECOVERY_DEADLINE, "a hit after the restart")
    ours = [record for record in caplog.records if record.name.startswith("flask_stash")]
    assert levels(ours) == ["WARNING", "INFO"], [
        (record.levelname, record.getMessage()[:80]) for record in ours
    ]


# -- Redis Cluster, one master paused; memcached, one of two nodes paused ----------------------


def redis_holder(nodes: Sequence[servers.Server], prefix: str, needle: str) -> servers.Server:
    """The node storing a key under ``prefix`` that contains ``needle``."""
    for node in nodes:
        keys = servers.redis_cli("-p", str(node.port), "--scan", "--pattern", f"{prefix}*")
        if any(needle in key for key in keys.split()):
            return node
    raise AssertionError(f"no node holds a key with {needle!r}")


def memcached_holder(nodes: Sequence[servers.Server], needle: str) -> servers.Server:
    """The node storing a key that contains ``needle``."""
    for node in nodes:
        if needle in servers.memcached_dump(node):
            return node
    raise AssertionError(f"no node holds a key with {needle!r}")


def first_request(app: OutageApp, outage: Any, base: float) -> Timed:
    """The first request of the outage: the view cached before it."""
    with Background() as background, outage:
        timed = background.request(app, "/view/0", limit=FIRST_REQUEST_BUDGET + base + 1)
    assert timed is not None, "the first request outlasted its budget by over a second"
    assert timed.status == 200
    return timed


def later_requests(app: OutageApp, outage: Any, base: float) -> list[float]:
    with Background() as background, outage:
        warm_up_failures(background, app)
        return later_requests_added(background, app, base)


def failed_requests(app: OutageApp, outage: Any, count: int = 2) -> None:
    with Background() as background, outage:
        warm_up_failures(background, app, count)


def cluster_app(
    built: Build, nodes: list[servers.Server], timeout: float | None
) -> tuple[OutageApp, Any]:
    """The app on the cluster, its view cached, and an outage of the master holding it."""
    prefix = f"cl{time.monotonic_ns()}:"
    app = built(cluster_settings(nodes, timeout), prefix)
    assert app.request("/view/0").status == 200
    return app, servers.paused(redis_holder(nodes, prefix, "view/0"), nodes)


def memcached_app(
    built: Build, nodes: list[servers.Server], timeout: float | None
) -> tuple[OutageApp, Any]:
    """The app on two memcached nodes, its view cached, and an outage of the node holding it."""
    app = built(memcached_config("flask_stash", nodes, timeout))
    assert app.request("/view/0").status == 200
    return app, servers.paused(memcached_holder(nodes, "view/0"))


def test_cluster_first_request_adds_at_most_one_timeout(
    built: Build,
    redis_cluster: list[servers.Server],
) -> None:
    base = baseline()
    app, outage = cluster_app(built, redis_cluster, None)  # default timeouts
    assert first_request(app, outage, base).seconds - base <= FIRST_REQUEST_BUDGET


def test_cluster_later_requests_cost_nothing(
    built: Build, redis_cluster: list[servers.Server]
) -> None:
    base = baseline()
    app, outage = cluster_app(built, redis_cluster, SHORT)
    added = later_requests(app, outage, base)
    assert max(added) < LATER_REQUEST_BUDGET, added


def test_cluster_caching_resumes_after_sigcont(
    built: Build, redis_cluster: list[servers.Server]
) -> None:
    app, outage = cluster_app(built, redis_cluster, SHORT)
    failed_requests(app, outage)
    poll(is_hit_again(app, "/view/300"), RECOVERY_DEADLINE, "a hit after the outage")


def test_cluster_one_warning_and_one_info_per_node_outage(
    built: Build, redis_cluster: list[servers.Server], caplog: pytest.LogCaptureFixture
) -> None:
    app, outage = cluster_app(built, redis_cluster, SHORT)
    caplog.set_level(logging.INFO, logger="flask_stash")
    caplog.clear()
    with Background() as background, outage:
        warm_up_failures(background, app)
        for n in range(6):  # views on the other masters succeed meanwhile
            background.request(app, f"/view/{400 + n}", limit=1.0)
    poll(is_hit_again(app, "/view/0"), RECOVERY_DEADLINE, "the paused master's view again")
    ours = [record for record in caplog.records if record.name.startswith("flask_stash")]
    assert levels(ours) == ["WARNING", "INFO"], [
        (record.levelname, record.getMessage()[:80]) for record in ours
    ]
    assert "Redis Cluster node" in ours[0].getMessage()


# Not strict: today the request takes one timeout per call that reaches the paused node
# before pymemcache marks it dead, so 1.0-2.1 s depending on where the hash ring puts the
# request's keys (the ports, hence the ring, change every run). Make it strict once fixed.
def test_memcached_first_request_adds_at_most_one_timeout(
    built: Build,
    memcached_pair: list[servers.Server],
) -> None:
    base = baseline()
    app, outage = memcached_app(built, memcached_pair, None)  # default timeouts
    assert first_request(app, outage, base).seconds - base <= FIRST_REQUEST_BUDGET


def test_memcached_later_requests_cost_nothing(
    built: Build, memcached_pair: list[servers.Server]
) -> None:
    base = baseline()
    app, outage = memcached_app(built, memcached_pair, SHORT)
    added = later_requests(app, outage, base)
    assert max(added) < LATER_REQUEST_BUDGET, added


def test_memcached_caching_resumes_after_sigcont(
    built: Build,
    memcached_pair: list[servers.Server],
) -> None:
    app, outage = memcached_app(built, memcached_pair, SHORT)
    failed_requests(app, outage)
    poll(is_hit_again(app, "/view/300"), RECOVERY_DEADLINE, "a hit after the outage")


# -- invalidations made while the server hung --------------------------------------------------


def test_an_invalidation_during_the_outage_is_never_undone(
    built: Build, own_redis: servers.Server
) -> None:
    app = built(redis_settings(own_redis, SHORT))
    cache, price = app.cache, app.functions["price"]
    with app.app.app_context():
        assert cache.set("setting", "old")
        assert price(1) == "price1@0"
    assert app.request("/view/0").status == 200  # the view and its price(0), stock(0)

    with Background() as background, servers.paused(own_redis):
        for invalidate, args in [
            (cache.delete, ("setting",)),
            (cache.delete_memoized, (price,)),
            (cache.delete, ("view//view/0",)),  # the view's key, as Flask-Caching builds it
        ]:
            done, _ = background.call(lambda f=invalidate, a=args: app.call(f, *a), limit=10)
            assert not done  # False (failed) or None (still waiting): it did not go through
        app.generation = 1
    poll(is_hit_again(app, "/view/5"), RECOVERY_DEADLINE, "a hit after the outage")

    served = []
    with app.app.app_context():
        for _ in range(5):
            served += [cache.get("setting"), price(1), price(0)]
    assert "old" not in served
    assert not any(isinstance(value, str) and "@0" in value for value in served), served
    # The view was invalidated, and price with it; stock never was, so its entry stays.
    assert app.request("/view/0").body == "price0@1 stock0@0 view@1"
