"""The in-process tier (``CACHE_LOCAL_TIER``) on Redis: its hits next to the in-memory
backend's, and a cached view with it under gunicorn next to an uncached route.

Run: ``.venv/bin/python benchmarks/bench_tier.py [--quick]``

Starts its own redis-server and gunicorn (2 sync workers) on free loopback ports and stops
them (by PID) at exit; the gunicorn scenario needs ``wrk``. Samples are interleaved as in
``bench_core.py`` (see ``benchmarks/README.md``). Goals (issue 14): a tier hit at most
1.5x an in-memory backend hit; the tiered view at least 0.95x the uncached route's req/s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from bench_core import Contender, Settings, micro, print_micro, rotated
from bench_servers import WRK_CONNECTIONS, WRK_THREADS, fetch, wrk
from tier_app import BARE_ROUTE, BODY, MEMORY_ROUTE, REDIS_ROUTE, TIER_ROUTE

from flask_stash.core import memoize
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.backends.redis import RedisBackend
from flask_stash.core.serializers import PickleSerializer
from flask_stash.core.store import Store
from flask_stash.core.tier import TieredBackend

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests import servers  # noqa: E402

MEMORY = "memoize hit, MemoryBackend"
TIER = "memoize hit, tier on Redis"
REDIS = "memoize hit, Redis alone"
MEMORY_DICT = "memoize hit (dict), MemoryBackend"
TIER_DICT = "memoize hit (dict), tier on Redis"
WORKERS = 2
WRK_ROUNDS = 5


ROW = {"a": [1, 2, 3], "b": "x" * 20}


def add(a: int, b: int) -> int:
    return a + b


def row(a: int, b: int) -> dict[str, object]:
    return dict(ROW)  # mutable: each hit decodes its own copy


def memoized(store: Store, fn: Callable[[int, int], object]) -> Callable[[], object]:
    cached = memoize(store, 300)(fn)
    cached(1, 2)  # the miss that fills the cache
    return lambda: cached(1, 2)


def hit_scenario(redis_url: str, settings: Settings) -> tuple[list[Contender], TieredBackend]:
    serializer = PickleSerializer(signing_key=b"benchmark-secret-key-of-some-length")
    memory = Store(MemoryBackend(threshold=0), serializer=serializer)
    tier = TieredBackend(RedisBackend(redis_url, namespace="bench-tier:"))
    assert tier.wait_synced(5), "the tier never subscribed"
    tiered = Store(tier, serializer=serializer, key_prefix="bench-tier:")
    remote = Store(RedisBackend(redis_url), serializer=serializer, key_prefix="bench-redis:")
    contenders = [
        Contender(MEMORY, memoized(memory, add), 3),
        Contender(TIER, memoized(tiered, add), 3, MEMORY),
        Contender(REDIS, memoized(remote, add), 3, MEMORY),
        Contender(MEMORY_DICT, memoized(memory, row), ROW),
        Contender(TIER_DICT, memoized(tiered, row), ROW, MEMORY_DICT),
    ]
    return contenders, tier


def gunicorn_args(port: int, redis_url: str) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--worker-class", "sync",
        "--bind", f"{servers.HOST}:{port}", "--chdir", str(BENCH_DIR),
        "--env", f"BENCH_REDIS_URL={redis_url}", "tier_app:create_app()",
    ]  # fmt: skip


def views(stack: ExitStack, workdir: Path, redis_url: str, seconds: int) -> None:
    port = servers.free_port()
    stack.enter_context(servers.running(gunicorn_args(port, redis_url), port, workdir))
    base = f"http://{servers.HOST}:{port}"
    routes = {"tiered view (Redis + tier)": TIER_ROUTE, "cached view (Redis alone)": REDIS_ROUTE,
              "cached view (in-memory, floor)": MEMORY_ROUTE,
              "uncached trivial route": BARE_ROUTE}  # fmt: skip
    for route in routes.values():
        if fetch(base + route) != BODY:
            raise SystemExit(f"{route} did not answer the expected body")
        wrk(base + route, 1)  # warm-up: both workers subscribed, the entries in their tiers
    results: dict[str, list[float]] = {name: [] for name in routes}
    for turn in range(WRK_ROUNDS):
        for name in rotated(list(routes), turn):
            results[name].append(wrk(base + routes[name], seconds))
    bare = statistics.median(results["uncached trivial route"])
    print(f"\n== gunicorn ({WORKERS} sync workers), wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} "
          f"-d{seconds}s, {WRK_ROUNDS} rounds per route ==")  # fmt: skip
    for name, values in results.items():
        median = statistics.median(values)
        print(f"  {name:<30} {median:>9.0f} req/s (min {min(values):.0f}, max {max(values):.0f})"
              f"  {median / bare:.2f}x the uncached route")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, 2 s wrk runs")
    options = parser.parse_args()
    settings = Settings(samples=30 if options.quick else 200, bulk_rounds=1)
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        redis_server = stack.enter_context(servers.redis_server(workdir))
        url = f"redis://{servers.HOST}:{redis_server.port}/0"
        contenders, tier = hit_scenario(url, settings)
        print_micro(micro("memoize hits, same run (signed pickle)", contenders, settings))
        print(f"  tier synced throughout: {tier.synced}")
        tier.close()
        if shutil.which("wrk") is None:
            print("\n(wrk is not installed: the gunicorn scenario is skipped)")
            return 0
        views(stack, workdir, url, 2 if options.quick else 5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
