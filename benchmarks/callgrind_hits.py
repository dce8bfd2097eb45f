"""Instructions per cache hit, counted by callgrind: immune to a shared machine's noise.

Run: ``.venv/bin/python benchmarks/callgrind_hits.py`` (needs ``valgrind``). Each case runs
N and 2N hits under ``valgrind --tool=callgrind`` with ``PYTHONHASHSEED=0``; the difference
divided by N is the cost of one hit, start-up excluded:

- ``cachetools``: ``cachetools.cached(TTLCache)``, the yardstick for a memoize hit;
- ``memoize``: ``flask_stash.core`` memoize over ``Store(MemoryBackend())``;
- ``memoize (tier)``: the same over the in-process tier (``TieredBackend``; its remote, a
  file-system backend, is not touched by a hit, as Redis would not be);
- ``bare`` / ``view`` / ``private view``: a Flask test-client request to an uncached
  route, to a ``@cache.cached`` view and to a ``private=True`` one (the difference between
  a view and ``bare`` is the cache's own share of a request); ``view (tier)``: the view
  with ``CACHE_LOCAL_TIER`` in front of a file-system backend, next to ``bare (tier app)``,
  the uncached route of that same app.

Compare two checkouts by running it with ``PYTHONPATH=<checkout>/src``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

CASES = ("cachetools", "memoize", "memoize (tier)", "bare", "view", "private view",
         "bare (tier app)", "view (tier)")  # fmt: skip
CALLS = {"cachetools": 2000, "memoize": 2000, "memoize (tier)": 2000, "bare": 300, "view": 300,
         "private view": 300, "bare (tier app)": 300, "view (tier)": 300}  # fmt: skip
MEMOIZE_CASES = ("cachetools", "memoize", "memoize (tier)")


def run_case(case: str, count: int) -> None:
    """The measured loop (run inside valgrind)."""
    call = _memoized(case) if case in MEMOIZE_CASES else _request(case)
    for _ in range(50):  # warm: the first calls compute and fill caches
        call()
    for _ in range(count):
        call()


def _memoized(case: str) -> Any:
    if case == "cachetools":
        from cachetools import TTLCache, cached

        @cached(TTLCache(maxsize=1024, ttl=600))
        def double(x: int) -> int:
            return x * 2

    else:
        import tempfile

        from flask_stash.core.backends.filesystem import FileSystemBackend
        from flask_stash.core.backends.memory import MemoryBackend
        from flask_stash.core.memoize import memoize
        from flask_stash.core.store import Store
        from flask_stash.core.tier import TieredBackend

        backend: Any = MemoryBackend()
        if case == "memoize (tier)":
            backend = TieredBackend(FileSystemBackend(tempfile.mkdtemp()))

        @memoize(Store(backend), 600)
        def double(x: int) -> int:
            return x * 2

    return lambda: double(7)


def _request(case: str) -> Any:
    from flask import Flask

    from flask_stash import Cache

    app = Flask(__name__)
    app.secret_key = "k" * 32
    if case in ("view (tier)", "bare (tier app)"):
        import tempfile

        tiered = {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": tempfile.mkdtemp()}
        cache = Cache(app, config={**tiered, "CACHE_LOCAL_TIER": True})
        case = case.split(" (")[0]
    else:
        cache = Cache(app)

    @app.get("/bare")
    def bare() -> str:
        return "hello"

    @app.get("/view")
    @cache.cached(timeout=600)
    def view() -> str:
        return "hello"

    @app.get("/private-view")
    @cache.cached(timeout=600, private=True)
    def private_view() -> str:
        return "hello"

    client = app.test_client()
    client.set_cookie("session", "abc")
    path = "/" + case.replace(" ", "-")
    return lambda: client.get(path)


def instructions(case: str, count: int) -> int:
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, __file__, "--run", case, str(count),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    for line in done.stderr.splitlines():
        if "refs:" in line:
            return int(line.rsplit(maxsplit=1)[-1].replace(",", ""))
    raise RuntimeError(f"no instruction count in valgrind's output for {case!r}")


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--run":
        run_case(sys.argv[2], int(sys.argv[3]))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    per_hit = {}
    for case in CASES:
        n = CALLS[case]
        per_hit[case] = (instructions(case, 2 * n) - instructions(case, n)) / n
    print("| case | instructions per hit |\n|---|---|")
    for case, cost in per_hit.items():
        print(f"| {case} | {cost:,.0f} |")
    print(f"\nmemoize / cachetools: {per_hit['memoize'] / per_hit['cachetools']:.2f}x")
    print(f"memoize: tier / memory: {per_hit['memoize (tier)'] / per_hit['memoize']:.2f}x")
    print(f"the cache's share of a view hit: {per_hit['view'] - per_hit['bare']:,.0f}")
    tier_share = per_hit["view (tier)"] - per_hit["bare (tier app)"]
    print(f"  with the tier (vs the bare route of the same app): {tier_share:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
