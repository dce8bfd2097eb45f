"""Flask layer benchmark: ``@cache.memoize`` and ``@cache.cached`` hits, Flask-Stash vs
Flask-Caching (``SimpleCache``), side by side in one run.

Run: ``.venv/bin/python benchmarks/bench_flask.py [--quick] [--strict] [--json PATH]
[--signing-key KEY] [--serializer pickle|json]`` (the last two configure Flask-Stash's app:
signed entries, and the JSON serializer).

Reuses the interleaved sampling of ``bench_core.py`` (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from bench_core import (
    Contender,
    Scenario,
    Settings,
    Target,
    environment,
    faster,
    find_row,
    micro,
    print_environment,
    print_micro,
    print_targets,
    write_json,
)
from flask import Flask
from flask_caching import Cache as FlaskCachingCache

from flask_stash import Cache as StashCache

STASH_MEMO = "Flask-Stash memoize (Flask layer)"
FC_MEMO = "Flask-Caching memoize, SimpleCache"
STASH_VIEW = "Flask-Stash @cached view hit"
FC_VIEW = "Flask-Caching @cached view hit"
BARE_VIEW = "uncached trivial route"
BODY = "hello, cached world " * 20


def make_app(cache_class: type[Any], config: dict[str, Any]) -> tuple[Flask, Any]:
    app = Flask(f"bench-{cache_class.__module__}")
    cache = cache_class(app, config=config)

    @app.get("/cached")
    @cache.cached(timeout=3600)
    def cached_view() -> str:
        return BODY

    @app.get("/bare")
    def bare_view() -> str:
        return BODY

    return app, cache


def memoized_add(cache: Any) -> Callable[[int, int], int]:
    @cache.memoize(timeout=3600)
    def add(a: int, b: int) -> int:
        return a + b

    return add  # type: ignore[no-any-return]


def memoize_scenario(stack: ExitStack, apps: dict[str, tuple[Flask, Any]], s: Settings) -> Scenario:
    stash_add = memoized_add(apps["stash"][1])
    fc_add = memoized_add(apps["fc"][1])
    for app, _ in apps.values():  # both libraries want an app context around memoize
        stack.enter_context(app.app_context())
    stash_add(1, 2)
    fc_add(1, 2)
    return micro(
        "memoize hit through the Flask extension: add(1, 2)",
        [
            Contender(STASH_MEMO, lambda: stash_add(1, 2), 3),
            Contender(FC_MEMO, lambda: fc_add(1, 2), 3, STASH_MEMO),
        ],
        s,
    )


def view_scenario(apps: dict[str, tuple[Flask, Any]], s: Settings) -> Scenario:
    stash = apps["stash"][0].test_client()
    fc = apps["fc"][0].test_client()
    stash.get("/cached")
    fc.get("/cached")

    def body(client: Any, path: str) -> Callable[[], str]:
        return lambda: client.get(path).get_data(as_text=True)

    return micro(
        "@cached view hit, Flask test client (µs per request)",
        [
            Contender(STASH_VIEW, body(stash, "/cached"), BODY),
            Contender(FC_VIEW, body(fc, "/cached"), BODY, STASH_VIEW),
            Contender(BARE_VIEW, body(stash, "/bare"), BODY, STASH_VIEW),
        ],
        s,
    )


def targets(memo: Scenario, view: Scenario) -> list[Target]:
    return [
        faster(
            "memoize hit vs Flask-Caching memoize (Flask layer)",
            find_row(memo, FC_MEMO).ratio or 0,
            30,
        ),
        faster("@cached view throughput vs Flask-Caching", find_row(view, FC_VIEW).ratio or 0, 1.1),
    ]


def stash_config(secret_key: str | None, serializer: str) -> dict[str, Any]:
    config: dict[str, Any] = {"CACHE_SERIALIZER": serializer}
    if secret_key:
        config["CACHE_SIGNING_KEY"] = secret_key
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target fails")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--signing-key", help="CACHE_SIGNING_KEY of the Flask-Stash app (signed entries)"
    )
    parser.add_argument("--serializer", choices=["pickle", "json"], default="pickle")
    args = parser.parse_args(argv)
    settings = Settings(samples=30, bulk_rounds=0) if args.quick else Settings(200, 0)
    info = environment(settings, args.quick)
    print_environment(info)
    apps = {
        "stash": make_app(StashCache, stash_config(args.signing_key, args.serializer)),
        "fc": make_app(FlaskCachingCache, {"CACHE_TYPE": "SimpleCache"}),
    }
    with ExitStack() as stack:
        memo = memoize_scenario(stack, apps, settings)
    view = view_scenario(apps, settings)
    for scenario in (memo, view):
        print_micro(scenario)
    goals = targets(memo, view)
    print_targets(goals)
    if args.json:
        write_json(args.json, info, [memo, view], goals)
    return 1 if args.strict and not all(goal.passed for goal in goals) else 0


if __name__ == "__main__":
    sys.exit(main())
