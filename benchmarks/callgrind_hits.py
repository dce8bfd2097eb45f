"""Instructions per cache hit, counted by callgrind: immune to a shared machine's noise.

Run: ``.venv/bin/python benchmarks/callgrind_hits.py`` (needs ``valgrind``). Each case runs
N and 2N hits under ``valgrind --tool=callgrind`` with ``PYTHONHASHSEED=0``; the difference
divided by N is the cost of one hit, start-up excluded:

- ``cachetools``: ``cachetools.cached(TTLCache)``, the yardstick for a memoize hit;
- ``memoize``: ``flask_stash.core`` memoize over ``Store(MemoryBackend())``;
- ``bare`` / ``view`` / ``private view``: a Flask test-client request to an uncached
  route, to a ``@cache.cached`` view and to a ``private=True`` one (the difference between
  a view and ``bare`` is the cache's own share of a request).

Compare two checkouts by running it with ``PYTHONPATH=<checkout>/src``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

CASES = ("cachetools", "memoize", "bare", "view", "private view")
CALLS = {"cachetools": 2000, "memoize": 2000, "bare": 300, "view": 300, "private view": 300}


def run_case(case: str, count: int) -> None:
    """The measured loop (run inside valgrind)."""
    call = _memoized(case) if case in ("cachetools", "memoize") else _request(case)
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
        from flask_stash.core.backends.memory import MemoryBackend
        from flask_stash.core.memoize import memoize
        from flask_stash.core.store import Store

        @memoize(Store(MemoryBackend()), 600)
        def double(x: int) -> int:
            return x * 2

    return lambda: double(7)


def _request(case: str) -> Any:
    from flask import Flask

    from flask_stash import Cache

    app = Flask(__name__)
    app.secret_key = "k" * 32
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
    print(f"the cache's share of a view hit: {per_hit['view'] - per_hit['bare']:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
