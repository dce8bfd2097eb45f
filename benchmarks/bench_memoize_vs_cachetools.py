"""A memoize hit on the memory backend against ``cachetools.cached(TTLCache)``, same run.

Run: ``.venv/bin/python benchmarks/bench_memoize_vs_cachetools.py [--quick] [--redis-url URL]``

Contenders, each calling ``add(1, 2)`` after one warm-up call filled its cache:

- the plain function (the floor);
- ``cachetools.cached(TTLCache(maxsize=1024, ttl=300))`` (the reference of the ratios);
- ``flask_stash.core.memoize`` over ``Store(MemoryBackend())``;
- the Flask layer's ``@cache.memoize`` with ``CACHE_TYPE = "SimpleCache"``, inside a pushed
  app context.

They are timed in interleaved rounds (the order rotates each round) so that noise on a
shared machine hits all of them alike; the report gives medians in microseconds per call
and the ratio to cachetools (issue 10's target: Flask-Stash at most 1.5x).

It also counts the Redis commands of one memoize miss (``INFO commandstats`` before and
after), on the server at ``--redis-url``, or on a ``redis-server`` it starts on a free
loopback port when that binary is installed.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from typing import Any

from cachetools import TTLCache, cached
from flask import Flask

import flask_stash
from flask_stash import Cache
from flask_stash.core import MemoryBackend, Store, memoize

Op = Callable[[], object]
REFERENCE = "cachetools.cached(TTLCache)"


def add(a: int, b: int) -> int:
    return a + b


def contenders() -> tuple[dict[str, Op], Callable[[], None]]:
    """Name -> one hit, and a function that closes what the contenders opened."""
    stash_core = memoize(Store(MemoryBackend()), 300)(add)
    reference = cached(TTLCache(maxsize=1024, ttl=300))(add)
    app = Flask(__name__)
    cache = Cache(app, config={"CACHE_TYPE": "SimpleCache"})
    stash_flask = cache.memoize(timeout=300)(add)
    context = app.app_context()
    context.push()
    ops: dict[str, Op] = {
        "plain function": lambda: add(1, 2),
        REFERENCE: lambda: reference(1, 2),
        "flask_stash.core memoize, MemoryBackend": lambda: stash_core(1, 2),
        "Flask layer cache.memoize, SimpleCache": lambda: stash_flask(1, 2),
    }
    for name, op in ops.items():  # warm up, and check every contender answers
        if op() != 3:
            raise SystemExit(f"{name} returned {op()!r}, not 3")
    return ops, lambda: context.pop()


def time_batch(op: Op, calls: int) -> float:
    """Microseconds per call over ``calls`` calls."""
    started = time.perf_counter_ns()
    for _ in range(calls):
        op()
    return (time.perf_counter_ns() - started) / calls / 1000


def measure(ops: dict[str, Op], rounds: int, calls: int) -> dict[str, float]:
    """Median microseconds per call of each contender, over interleaved rounds."""
    names = list(ops)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(time_batch(ops[name], calls))
    return {name: statistics.median(values) for name, values in samples.items()}


def report(medians: dict[str, float]) -> str:
    reference = medians[REFERENCE]
    width = max(map(len, medians))
    lines = [f"{'contender':<{width}}  median us/call  x cachetools"]
    lines += [
        f"{name:<{width}}  {median:14.3f}  {median / reference:11.2f}x"
        for name, median in medians.items()
    ]
    return "\n".join(lines)


# -- Redis: commands of one memoize miss -----------------------------------------------------


def command_counts(client: Any) -> dict[str, int]:
    stats = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(fields["calls"])
        for name, fields in stats.items()
        if name != "cmdstat_info"
    }


def redis_miss_commands(url: str) -> dict[str, int]:
    """Commands the server ran for one cold ``@cache.memoize`` call (a miss, then stored)."""
    import redis

    app = Flask(__name__)
    app.secret_key = "benchmark-secret-key-of-some-length"  # signed entries, as advised
    prefix = f"bench{time.monotonic_ns()}:"
    cache = Cache(app, config={"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": url,
                               "CACHE_KEY_PREFIX": prefix})  # fmt: skip
    memoized = cache.memoize(timeout=300)(add)
    client = redis.Redis.from_url(url)
    try:
        with app.app_context():
            cache.get("connect")  # the connection's own handshake is not the miss's cost
            before = command_counts(client)
            assert memoized(1, 2) == 3
            after = command_counts(client)
            assert memoized(1, 2) == 3  # and a hit reads what the miss stored
            hit = command_counts(client)
    finally:
        client.close()
    miss = {name: after[name] - before.get(name, 0) for name in after}
    hits = {name: hit[name] - after.get(name, 0) for name in hit}
    return {**{k: v for k, v in miss.items() if v}, "(hit after it)": sum(hits.values())}


@contextmanager
def local_redis() -> Iterator[str | None]:
    """A throwaway ``redis-server`` on a free loopback port, stopped by PID; ``None`` if the
    binary is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as workdir:
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", workdir]  # fmt: skip
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a smoke test")
    parser.add_argument("--redis-url", help="count a miss's commands on this server")
    options = parser.parse_args()
    rounds, calls = (20, 500) if options.quick else (200, 2_000)
    print(f"Python {platform.python_version()}, {platform.machine()}; flask-stash "
          f"{flask_stash.__version__} ({flask_stash.__file__}), cachetools "
          f"{version('cachetools')}, Flask {version('flask')}")  # fmt: skip
    print(f"memoize hit, in-memory: {rounds} interleaved rounds of {calls} calls each\n")
    ops, close = contenders()
    try:
        print(report(measure(ops, rounds, calls)))
    finally:
        close()
    print("\nRedis, one memoize miss (INFO commandstats difference):")
    if options.redis_url:
        print(f"  {redis_miss_commands(options.redis_url)}")
        return
    with local_redis() as url:
        print("  redis-server not installed: skipped" if url is None
              else f"  {redis_miss_commands(url)}")  # fmt: skip


if __name__ == "__main__":
    main()
