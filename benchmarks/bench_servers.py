"""Flask-Stash on real servers: memoize hits on Redis and memcached next to the raw client
call they cost at least, and a cached view under gunicorn, with Flask-Caching alongside.

Run: ``.venv/bin/python benchmarks/bench_servers.py [--quick] [--strict] [--json PATH]``

Starts its own redis-server, memcached and gunicorn on free loopback ports and stops them
(by PID) at exit; needs the ``redis-server``, ``memcached`` and ``wrk`` binaries (without
``wrk`` the gunicorn scenario is skipped). Reuses the interleaved sampling of
``bench_core.py`` (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack, closing
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis
from bench_core import (
    Contender,
    Env,
    Row,
    Scenario,
    Settings,
    Target,
    counted_add,
    environment,
    find_row,
    micro,
    print_environment,
    print_micro,
    print_targets,
    rotated,
    write_json,
)
from flask_caching import Cache as FlaskCachingCache
from pymemcache.client.base import PooledClient
from redis.backoff import NoBackoff
from redis.retry import Retry
from server_app import BARE_ROUTE, BODY, FC_ROUTE, RAW_ROUTE, STASH_ROUTE

from flask_stash import Cache as StashCache
from flask_stash.core import memoize
from flask_stash.core.backends._redis_options import DEFAULT_TIMEOUTS, HEALTH_CHECK_INTERVAL
from flask_stash.core.backends.memcached import MemcachedBackend, wire_key
from flask_stash.core.backends.redis import RedisBackend
from flask_stash.core.store import Store

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT) not in sys.path:  # tests/servers.py starts and stops the servers
    sys.path.insert(0, str(ROOT))

from tests import servers  # noqa: E402

Add = Callable[[int, int], int]

STASH_REDIS = "Flask-Stash memoize, Redis"
STASH_TAGGED = "Flask-Stash memoize with 2 tags, Redis"
STASH_ONE_TAG = "Flask-Stash memoize with 1 tag, Redis"
RAW_REDIS = "redis-py GET of the stored entry (floor)"
STASH_FLASK_REDIS = "Flask-Stash cache.memoize, RedisCache"
FC_REDIS = "Flask-Caching memoize, RedisCache"
STASH_MC = "Flask-Stash memoize, memcached"
RAW_MC = "pymemcache get of the stored entry (floor)"
FC_MC = "Flask-Caching memoize, MemcachedCache"
VIEW_STASH = "Flask-Stash @cached view, Redis"
VIEW_FC = "Flask-Caching @cached view, RedisCache"
VIEW_BARE = "uncached trivial route"
VIEW_RAW = "route doing one redis-py GET (floor)"

WRK_THREADS = 2
WRK_CONNECTIONS = 8
WRK_ROUNDS = 3
WORKERS = 2
MEMCACHED_OPTIONS: dict[str, Any] = {"connect_timeout": 1.0, "timeout": 1.0, "no_delay": True}


@dataclass(frozen=True)
class Plan:
    settings: Settings
    wrk_seconds: int


@dataclass
class Memo:
    """One memoized ``add`` and the log of its body's executions (a hit logs nothing)."""

    name: str
    fn: Add
    calls: list[int]

    def contender(self, reference: str | None) -> Contender:
        fn = self.fn
        return Contender(self.name, lambda: fn(1, 2), 3, reference)


def memo(name: str, decorate: Callable[[Add], Add]) -> Memo:
    calls: list[int] = []
    fn = decorate(counted_add(calls))
    fn(1, 2)  # warm-up: the miss that fills the cache
    return Memo(name, fn, calls)


def stored_key(memoized: Memo) -> str:
    """The backend key under which Flask-Stash stored ``add(1, 2)``."""
    spec = memoized.fn.__stash_memo__  # type: ignore[attr-defined]
    return str(spec.key((1, 2), {}))


def memo_scenario(title: str, raw: Contender, memos: list[Memo], settings: Settings) -> Scenario:
    scenario = micro(title, [raw, *(m.contender(raw.name) for m in memos)], settings)
    for m in memos:
        scenario.notes.append(f"{m.name}: body re-ran {len(m.calls) - 1}x while timed")
    return scenario


# -- memoize hit on Redis ---------------------------------------------------------------


def raw_redis(port: int) -> redis.Redis:
    """A client with the settings RedisBackend gives its own (timeouts, health checks, retry)."""
    retry = Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,))
    return redis.Redis(
        host=servers.HOST,
        port=port,
        db=0,
        **DEFAULT_TIMEOUTS,
        health_check_interval=HEALTH_CHECK_INTERVAL,
        retry=retry,
    )


def commands_per_call(client: redis.Redis, op: Callable[[], object], calls: int = 100) -> str:
    """The Redis commands one ``op()`` sends, from ``INFO commandstats``."""

    def counts() -> dict[str, int]:
        stats = client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}

    before = counts()
    for _ in range(calls):
        op()
    after = counts()
    diff = {name: (after[name] - before.get(name, 0)) / calls for name in after}
    diff.pop("info", None)
    return ", ".join(f"{n:g} {name.upper()}" for name, n in sorted(diff.items()) if n)


def redis_memoize(stack: ExitStack, env: Env, port: int, settings: Settings) -> Scenario:
    url = f"redis://{servers.HOST}:{port}/0"
    backend = RedisBackend(url)
    stack.callback(backend.close)
    stash = memo(STASH_REDIS, memoize(Store(backend), 300))
    raw_client = raw_redis(port)
    stack.callback(raw_client.close)
    key = stored_key(stash)
    raw = Contender(RAW_REDIS, lambda: raw_client.get(key), raw_client.get(key))
    stash_ext = StashCache(
        env.app,
        with_jinja2_ext=False,
        config={"CACHE_TYPE": "flask_stash.backends.redis.RedisCache", "CACHE_REDIS_URL": url},
    )
    stack.callback(lambda: stash_ext.store.close())
    fc = env.flask_cache("RedisCache", CACHE_REDIS_URL=url)
    stack.callback(lambda: fc.cache._write_client.close())
    # Two tags: one fixed, one from the arguments; their stamps come in the entry's MGET.
    tagged = memoize(Store(backend), 300, name="tagged_add",
                     tags=["sums", lambda a, b: f"operand:{a}"])  # fmt: skip
    one_tag = memoize(Store(backend), 300, name="one_tag_add", tags=lambda a, b: f"operand:{a}")
    memos = [
        stash,
        memo(STASH_ONE_TAG, one_tag),
        memo(STASH_TAGGED, tagged),
        memo(STASH_FLASK_REDIS, stash_ext.memoize(300)),
        memo(FC_REDIS, fc.memoize(300)),
    ]
    scenario = memo_scenario("memoize hit, Redis on loopback: add(1, 2)", raw, memos, settings)
    for item in (raw, *(m.contender(None) for m in memos)):
        scenario.notes.append(f"{item.name}: {commands_per_call(raw_client, item.op)} per call")
    return scenario


# -- memoize hit on memcached -----------------------------------------------------------


def flask_caching_memcached(env: Env, address: str) -> tuple[FlaskCachingCache | None, str]:
    """Flask-Caching's MemcachedCache, or ``None`` and why (it needs pylibmc or
    python-memcached; it cannot use pymemcache)."""
    try:
        return env.flask_cache("MemcachedCache", CACHE_MEMCACHED_SERVERS=[address]), ""
    except (ImportError, RuntimeError) as exc:
        return None, f"{FC_MC}: not run ({exc}; it needs pylibmc, python-memcached or libmc)"


def disconnect(client: Any) -> None:
    """Close a pylibmc or python-memcached client (Flask-Caching's memcached driver)."""
    close = getattr(client, "disconnect_all", None)
    if callable(close):
        close()


def memcached_memoize(stack: ExitStack, env: Env, address: str, settings: Settings) -> Scenario:
    backend = MemcachedBackend([address])
    stack.callback(backend.close)
    stash = memo(STASH_MC, memoize(Store(backend), 300))
    host, port = address.rsplit(":", 1)
    raw_client = PooledClient((host, int(port)), **MEMCACHED_OPTIONS)
    stack.callback(raw_client.close)
    key = wire_key(stored_key(stash))
    raw = Contender(RAW_MC, lambda: raw_client.get(key), raw_client.get(key))
    memos = [stash]
    fc, why_not = flask_caching_memcached(env, address)
    if fc is not None:
        stack.callback(disconnect, fc.cache._client)
        memos.append(memo(FC_MC, fc.memoize(300)))
    scenario = memo_scenario("memoize hit, memcached on loopback: add(1, 2)", raw, memos, settings)
    if why_not:
        scenario.notes.append(why_not)
    return scenario


# -- cached view under gunicorn + wrk ---------------------------------------------------

ROUTES = {VIEW_STASH: STASH_ROUTE, VIEW_BARE: BARE_ROUTE, VIEW_FC: FC_ROUTE, VIEW_RAW: RAW_ROUTE}


def gunicorn_args(port: int, redis_url: str) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--worker-class", "sync",
        "--bind", f"{servers.HOST}:{port}", "--chdir", str(BENCH_DIR),
        "--env", f"BENCH_REDIS_URL={redis_url}", "server_app:create_app()",
    ]  # fmt: skip


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def wrk(url: str, seconds: int) -> float:
    """Requests per second ``wrk`` measured on ``url``; exits on any non-2xx answer."""
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    found = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if done.returncode != 0 or found is None or "Non-2xx" in done.stdout:
        raise SystemExit(f"wrk on {url} failed:\n{done.stdout}{done.stderr}")
    return float(found.group(1))


def throughputs(base: str, seconds: int) -> dict[str, list[float]]:
    """``WRK_ROUNDS`` runs per route, in turns whose first route rotates."""
    results: dict[str, list[float]] = {name: [] for name in ROUTES}
    for turn in range(WRK_ROUNDS):
        for name in rotated(list(ROUTES), turn):
            results[name].append(wrk(base + ROUTES[name], seconds))
    return results


def throughput_rows(results: dict[str, list[float]]) -> list[Row]:
    """Rows in µs per request (over the whole server) with ratio = req/s ÷ uncached req/s."""
    medians = {name: statistics.median(values) for name, values in results.items()}
    rows = []
    for name, values in results.items():
        ref = None if name == VIEW_BARE else VIEW_BARE
        ratio = medians[name] / medians[VIEW_BARE] if ref else None
        extra = {"requests_per_s": values, "median_requests_per_s": medians[name]}
        spread = (1e6 / max(values), 1e6 / min(values))
        rows.append(Row(name, 1e6 / medians[name], *spread, ref, ratio, extra))
    return rows


def view_scenario(stack: ExitStack, workdir: Path, redis_port: int, seconds: int) -> Scenario:
    port = servers.free_port()
    redis_url = f"redis://{servers.HOST}:{redis_port}/0"
    stack.enter_context(servers.running(gunicorn_args(port, redis_url), port, workdir))
    base = f"http://{servers.HOST}:{port}"
    for route in ROUTES.values():
        if fetch(base + route) != BODY:
            raise SystemExit(f"{route} did not answer the expected body")
        wrk(base + route, 1)  # warm-up: both workers connected, the entries stored
    with closing(raw_redis(redis_port)) as client:
        writes_before = count_writes(client)
        results = throughputs(base, seconds)
        writes = count_writes(client) - writes_before
    title = (
        f"cached view under gunicorn ({WORKERS} sync workers), wrk -t{WRK_THREADS} "
        f"-c{WRK_CONNECTIONS} -d{seconds}s, {WRK_ROUNDS} rounds per route"
    )
    rows = throughput_rows(results)
    notes = [f"Redis writes while timed: {writes} (0: every cached request was a hit)"]
    notes += floor_notes(rows)
    return Scenario(title, rows, notes)


def floor_notes(rows: list[Row]) -> list[str]:
    """Each cached view's req/s next to the plain-GET route's: the library's own share."""
    rps = {row.name: row.extra["median_requests_per_s"] for row in rows}
    return [
        f"{name}: {rps[name] / rps[VIEW_RAW]:.2f}x the req/s of the plain-GET floor route"
        for name in (VIEW_STASH, VIEW_FC)
    ]


def count_writes(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("set", "setex"))


def print_throughput(scenario: Scenario) -> None:
    print(f"\n== {scenario.title} ==")
    print(f"  {'contender':<40} {'median req/s':>12} {'min..max req/s':>17} {'ratio':>8}  vs")
    for row in scenario.rows:
        values = row.extra["requests_per_s"]
        spread = f"{min(values):.0f}..{max(values):.0f}"
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "ref"
        median = row.extra["median_requests_per_s"]
        line = f"  {row.name:<40} {median:>12.0f} {spread:>17} {ratio:>8}  {row.reference or ''}"
        print(line.rstrip())
    print("  ratio here = req/s ÷ req/s of 'vs' (higher is better)")
    for note in scenario.notes:
        print(f"  {note}")


# -- report and main --------------------------------------------------------------------


def at_most(label: str, ratio: float, goal: float) -> Target:
    return Target(label, ratio, f"{ratio:.2f}x", f"<= {goal:g}x", ratio <= goal)


def at_least(label: str, ratio: float, goal: float) -> Target:
    return Target(label, ratio, f"{ratio:.2f}x", f">= {goal:g}x", ratio >= goal)


def targets(redis_memo: Scenario, mc_memo: Scenario, view: Scenario | None) -> list[Target]:
    goals = [
        at_most("Redis memoize hit vs raw redis-py GET", ratio(redis_memo, STASH_REDIS), 1.25),
        at_most("1-tag Redis memoize hit vs raw GET", ratio(redis_memo, STASH_ONE_TAG), 1.3),
        at_most("2-tag Redis memoize hit vs raw GET", ratio(redis_memo, STASH_TAGGED), 1.3),
        at_most("memcached memoize hit vs raw pymemcache get", ratio(mc_memo, STASH_MC), 1.25),
    ]
    if view is not None:
        label = "gunicorn @cached view (Redis) req/s vs uncached route"
        goals.append(at_least(label, ratio(view, VIEW_STASH), 0.85))
    return goals


def ratio(scenario: Scenario, name: str) -> float:
    return find_row(scenario, name).ratio or 0.0


def server_versions() -> dict[str, str]:
    def first_line(*command: str) -> str:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
        return (done.stdout or done.stderr).splitlines()[0].strip()

    found = {
        "redis_py": version("redis"),
        "pymemcache": version("pymemcache"),
        "gunicorn": version("gunicorn"),
        "redis_server": first_line("redis-server", "--version"),
        "memcached": first_line("memcached", "-V"),
    }
    if shutil.which("wrk"):
        found["wrk"] = first_line("wrk", "-v").split(" [")[0]
    return found


def run(stack: ExitStack, plan: Plan) -> list[Scenario]:
    env = Env()
    stack.callback(env.close)  # registered first: runs after the servers have stopped
    workdir = env.root / "servers"
    workdir.mkdir()
    redis_server = stack.enter_context(servers.redis_server(workdir))
    (memcached,) = stack.enter_context(servers.memcached_nodes(workdir, 1))
    scenarios = [
        redis_memoize(stack, env, redis_server.port, plan.settings),
        memcached_memoize(stack, env, memcached.address, plan.settings),
    ]
    for scenario in scenarios:
        print_micro(scenario)
    if shutil.which("wrk") is None:
        print("\n(wrk is not installed: the gunicorn scenario is skipped)")
        return scenarios
    view = view_scenario(stack, workdir, redis_server.port, plan.wrk_seconds)
    print_throughput(view)
    return [*scenarios, view]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, 2 s wrk runs")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target fails")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [name for name in ("redis-server", "memcached") if shutil.which(name) is None]
    if missing:
        print(f"not installed: {', '.join(missing)} (Debian: apt-get install {' '.join(missing)})")
        return 2
    plan = Plan(Settings(30, 0), 2) if args.quick else Plan(Settings(200, 0), 5)
    info = {**environment(plan.settings, args.quick), **server_versions()}
    info["wrk_seconds"] = plan.wrk_seconds
    info["load_average"] = " ".join(f"{load:.2f}" for load in os.getloadavg())
    print_environment(info)
    with ExitStack() as stack:
        scenarios = run(stack, plan)
    view = scenarios[2] if len(scenarios) > 2 else None
    goals = targets(scenarios[0], scenarios[1], view)
    print_targets(goals)
    if args.json:
        write_json(args.json, info, scenarios, goals)
    return 1 if args.strict and not all(goal.passed for goal in goals) else 0


if __name__ == "__main__":
    sys.exit(main())
