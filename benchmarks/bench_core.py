"""Side-by-side benchmark of Flask-Stash's core against Flask-Caching and cachelib.

Run: ``.venv/bin/python benchmarks/bench_core.py [--quick] [--strict] [--json PATH]``

Contenders of one scenario are measured in one run, interleaved sample by sample
(A, B, C, then B, C, A, then C, A, B, ...), so that noise on a shared machine hits all of
them alike; the report gives medians. See ``benchmarks/README.md`` for how to read the output.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar

from cachelib import FileSystemCache, SimpleCache
from flask import Flask
from flask_caching import Cache

from flask_stash.core import memoize
from flask_stash.core.backends.filesystem import FileSystemBackend
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.backends.null import NullBackend
from flask_stash.core.serializers import JsonSerializer, PickleSerializer, Serializer
from flask_stash.core.store import Store

Op = Callable[[], object]
T = TypeVar("T")
Items = list[tuple[str, bytes]]

MAX_BATCH = 2_000  # calls per sample for the fastest operations
SAMPLE_BUDGET_NS = 3_000_000  # slower operations get fewer calls per sample
BULK_KEYS = 10_000
BULK_VALUE_SIZE = 1_024
BULK_THRESHOLD = 20_000
BULK_CHUNK = 250  # bulk contenders take turns every this many keys
STR_VALUE = "x" * 100
DICT_VALUE = {"id": 42, "name": "widget", "tags": ["a", "b"], "price": 9.99}

STASH_MEMO_MEMORY = "Flask-Stash memoize, memory"
FC_MEMO_SIMPLE = "Flask-Caching memoize, SimpleCache"
BULK_STASH = "Flask-Stash FileSystemBackend"
BULK_FC = "Flask-Caching FileSystemCache"


@dataclass(frozen=True)
class Settings:
    samples: int  # samples per contender in micro-benchmarks
    bulk_rounds: int


@dataclass
class Contender:
    name: str
    op: Op
    expect: object  # what ``op()`` must return (guards against timing misses)
    reference: str | None = None  # the contender its ratio is computed against


@dataclass
class Row:
    name: str
    median_us: float
    p25_us: float
    p75_us: float
    reference: str | None
    ratio: float | None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scenario:
    title: str
    rows: list[Row]
    notes: list[str] = field(default_factory=list)


# -- timing -----------------------------------------------------------------------------


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Collect first, then keep the collector out of the timed region."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def sample(op: Op, batch: int) -> float:
    """Nanoseconds per call of ``op``, over ``batch`` back-to-back calls."""
    calls = range(batch)
    with quiet_gc():
        start = time.perf_counter_ns()
        for _ in calls:
            op()
        elapsed = time.perf_counter_ns() - start
    return elapsed / batch


def calibrate(op: Op) -> int:
    """Calls per sample: ``MAX_BATCH``, or fewer so that a sample stays near the budget."""
    per_call = min(sample(op, 20) for _ in range(3))
    return max(10, min(MAX_BATCH, int(SAMPLE_BUDGET_NS / max(per_call, 1.0))))


def rotated(items: list[T], turn: int) -> list[T]:
    """``items`` starting at position ``turn`` (wrapping), so no one always goes first."""
    shift = turn % len(items)
    return items[shift:] + items[:shift]


def interleaved(contenders: list[Contender], samples: int) -> dict[str, list[float]]:
    """``samples`` timings (ns/op) per contender, taken in turns: A, B, C, B, C, A, ..."""
    batches = {c.name: calibrate(c.op) for c in contenders}
    timings: dict[str, list[float]] = {c.name: [] for c in contenders}
    for turn in range(samples):
        for contender in rotated(contenders, turn):
            timings[contender.name].append(sample(contender.op, batches[contender.name]))
    return timings


def check(contenders: list[Contender]) -> None:
    """Fail loudly if an operation does not do what it is supposed to measure."""
    for contender in contenders:
        got = contender.op()
        if got != contender.expect:
            raise SystemExit(f"{contender.name}: returned {got!r}, expected {contender.expect!r}")


def rows_of(timings: dict[str, list[float]], references: dict[str, str | None]) -> list[Row]:
    """One row per contender (ns timings in, µs out), with its ratio to its reference."""
    medians = {name: statistics.median(values) for name, values in timings.items()}
    rows = []
    for name, values in timings.items():
        p25, _, p75 = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
        ref = references[name]
        ratio = medians[name] / medians[ref] if ref else None
        rows.append(Row(name, medians[name] / 1e3, p25 / 1e3, p75 / 1e3, ref, ratio))
    return rows


def micro(title: str, contenders: list[Contender], settings: Settings) -> Scenario:
    check(contenders)
    timings = interleaved(contenders, settings.samples)
    return Scenario(title, rows_of(timings, {c.name: c.reference for c in contenders}))


# -- contenders -------------------------------------------------------------------------


class Env:
    """The Flask app (its context pushed) and the temp folders every contender uses."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="stash-bench-"))
        self.app = Flask("bench_core")
        self._context = self.app.app_context()
        self._context.push()
        self._dirs = 0

    def fresh_dir(self) -> str:
        self._dirs += 1
        path = self.root / f"d{self._dirs}"
        path.mkdir()
        return str(path)

    def flask_cache(self, kind: str, **config: Any) -> Cache:
        """A Flask-Caching ``Cache`` of ``CACHE_TYPE=kind`` on the shared app."""
        return Cache(self.app, config={"CACHE_TYPE": kind, **config})

    def fc_filesystem(self, cache_dir: str | None = None, **config: Any) -> Cache:
        """A Flask-Caching ``FileSystemCache`` in ``cache_dir`` (default: a fresh folder)."""
        return self.flask_cache(
            "FileSystemCache", CACHE_DIR=cache_dir or self.fresh_dir(), **config
        )

    def close(self) -> None:
        self._context.pop()
        shutil.rmtree(self.root, ignore_errors=True)


def counted_add(calls: list[int]) -> Callable[[int, int], int]:
    """A fresh ``add`` whose body records each real execution in ``calls``."""

    def add(a: int, b: int) -> int:
        calls.append(1)
        return a + b

    return add


def memoized(decorate: Callable[[Callable[..., int]], Callable[..., int]], calls: list[int]) -> Op:
    add = decorate(counted_add(calls))
    add(1, 2)  # warm-up: the miss that fills the cache
    return lambda: add(1, 2)


@dataclass
class MemoCase:
    """One memoize contender plus the body-execution log that proves it only hits."""

    contender: Contender
    calls: list[int]


def memo_case(name: str, decorate: Callable[..., Any], reference: str | None) -> MemoCase:
    calls: list[int] = []
    return MemoCase(Contender(name, memoized(decorate, calls), 3, reference), calls)


def add(a: int, b: int) -> int:
    """The undecorated function: its call is the floor no cache can beat."""
    return a + b


def memoize_scenario(
    title: str, cases: list[MemoCase], settings: Settings, *, floor: bool = False
) -> Scenario:
    contenders = [case.contender for case in cases]
    if floor:
        bare = Contender("bare function call (floor)", lambda: add(1, 2), 3, contenders[0].name)
        contenders.insert(0, bare)
    scenario = micro(title, contenders, settings)
    for case in cases:
        recomputed = len(case.calls) - 1
        scenario.notes.append(f"{case.contender.name}: body re-ran {recomputed}x while timed")
    return scenario


def memoize_memory(env: Env, settings: Settings) -> Scenario:
    cases = [
        memo_case(STASH_MEMO_MEMORY, memoize(Store(MemoryBackend()), 300), None),
        memo_case(FC_MEMO_SIMPLE, env.flask_cache("SimpleCache").memoize(300), STASH_MEMO_MEMORY),
    ]
    return memoize_scenario("memoize hit, in-memory: add(1, 2)", cases, settings, floor=True)


def memoize_filesystem(env: Env, settings: Settings) -> Scenario:
    stash = "Flask-Stash memoize, filesystem"
    cases = [
        memo_case(stash, memoize(Store(FileSystemBackend(env.fresh_dir())), 300), None),
        memo_case(
            "Flask-Caching memoize, FileSystemCache", env.fc_filesystem().memoize(300), stash
        ),
    ]
    return memoize_scenario("memoize hit, filesystem: add(1, 2)", cases, settings)


@dataclass(frozen=True)
class KV:
    """get/set of one cache, whatever its API."""

    name: str
    get: Callable[[str], object]
    set: Callable[[str, object], object]
    reference: str | None


def key_value_caches(env: Env) -> list[KV]:
    mem = Store(MemoryBackend())
    fs = Store(FileSystemBackend(env.fresh_dir()))
    simple, files = SimpleCache(), FileSystemCache(env.fresh_dir())
    fc_simple, fc_files = env.flask_cache("SimpleCache"), env.fc_filesystem()
    stash_mem, stash_fs = "Flask-Stash Store(MemoryBackend)", "Flask-Stash Store(FileSystemBackend)"
    return [
        KV(stash_mem, mem.get, mem.set, None),
        KV("cachelib SimpleCache", simple.get, simple.set, stash_mem),
        KV("Flask-Caching SimpleCache", fc_simple.get, fc_simple.set, stash_mem),
        KV(stash_fs, fs.get, fs.set, None),
        KV("cachelib FileSystemCache", files.get, files.set, stash_fs),
        KV("Flask-Caching FileSystemCache", fc_files.get, fc_files.set, stash_fs),
    ]


def getter(kv: KV, key: str, value: object) -> Contender:
    kv.set(key, value)
    return Contender(kv.name, lambda: kv.get(key), value, kv.reference)


def setter(kv: KV, key: str, value: object) -> Contender:
    def op() -> bool:
        kv.set(key, value)
        return True

    return Contender(kv.name, op, True, kv.reference)


def get_set_scenarios(env: Env, settings: Settings) -> list[Scenario]:
    caches = key_value_caches(env)
    scenarios = []
    for label, value in (("100-byte str", STR_VALUE), ("small dict", DICT_VALUE)):
        for verb, make in (("get (hit)", getter), ("set", setter)):
            key = f"bench:{verb}:{label}"
            contenders = [make(kv, key, value) for kv in caches]
            scenarios.append(micro(f"{verb}, {label}", contenders, settings))
    return scenarios


# -- filesystem bulk set ----------------------------------------------------------------


@dataclass(frozen=True)
class BulkTarget:
    set: Callable[[str, bytes], object]
    get: Callable[[str], object]


def stash_bulk(env: Env, cache_dir: str) -> BulkTarget:
    store = Store(FileSystemBackend(cache_dir, threshold=BULK_THRESHOLD))
    return BulkTarget(store.set, store.get)


def flask_caching_bulk(env: Env, cache_dir: str) -> BulkTarget:
    cache = env.fc_filesystem(cache_dir, CACHE_THRESHOLD=BULK_THRESHOLD)
    return BulkTarget(cache.set, cache.get)


def cachelib_bulk(env: Env, cache_dir: str) -> BulkTarget:
    cache = FileSystemCache(cache_dir, threshold=BULK_THRESHOLD)
    return BulkTarget(cache.set, cache.get)


BULK_CONTENDERS: dict[str, Callable[[Env, str], BulkTarget]] = {
    BULK_STASH: stash_bulk,
    BULK_FC: flask_caching_bulk,
    "cachelib FileSystemCache": cachelib_bulk,
}


def bulk_data() -> Items:
    """Distinct keys with distinct 1 KB values, so a mixed-up read is caught too."""
    filler = bytes(range(256)) * (BULK_VALUE_SIZE // 256)
    return [(f"bulk:{i}", i.to_bytes(8, "big") + filler[8:]) for i in range(BULK_KEYS)]


def timed_sets(put: Callable[[str, bytes], object], items: Items) -> int:
    """Nanoseconds to store every item."""
    with quiet_gc():
        start = time.perf_counter_ns()
        for key, value in items:
            put(key, value)
        return time.perf_counter_ns() - start


def bulk_round(env: Env, data: Items) -> dict[str, tuple[float, int]]:
    """Per contender: seconds to set every item, then how many items fail to read back.

    Every contender gets a fresh folder; they take turns chunk by chunk, so a burst of
    disk activity from elsewhere lands on all of them rather than on whoever ran then.
    """
    folders = {name: tempfile.mkdtemp(prefix="bulk-", dir=env.root) for name in BULK_CONTENDERS}
    targets = {name: make(env, folders[name]) for name, make in BULK_CONTENDERS.items()}
    elapsed = dict.fromkeys(targets, 0)
    for turn, start in enumerate(range(0, len(data), BULK_CHUNK)):
        chunk = data[start : start + BULK_CHUNK]
        for name in rotated(list(targets), turn):
            elapsed[name] += timed_sets(targets[name].set, chunk)
    result = {name: (elapsed[name] / 1e9, count_lost(targets[name], data)) for name in targets}
    for folder in folders.values():
        shutil.rmtree(folder, ignore_errors=True)
    return result


def count_lost(target: BulkTarget, data: Items) -> int:
    """Items that do not read back as written (none was evicted or expired: all are live)."""
    return sum(1 for key, value in data if target.get(key) != value)


def bulk_scenario(env: Env, settings: Settings) -> Scenario:
    data = bulk_data()
    seconds: dict[str, list[float]] = {name: [] for name in BULK_CONTENDERS}
    lost = dict.fromkeys(BULK_CONTENDERS, 0)
    for _ in range(settings.bulk_rounds):
        for name, (took, missing) in bulk_round(env, data).items():
            seconds[name].append(took)
            lost[name] = max(lost[name], missing)
    return bulk_result(seconds, lost)


def bulk_result(seconds: dict[str, list[float]], lost: dict[str, int]) -> Scenario:
    per_op = {name: [s * 1e9 / BULK_KEYS for s in values] for name, values in seconds.items()}
    rows = rows_of(per_op, {name: None if name == BULK_STASH else BULK_STASH for name in per_op})
    for row in rows:
        row.extra = {
            "total_s": statistics.median(seconds[row.name]),
            "rounds_s": seconds[row.name],
            "live_keys_lost": lost[row.name],
        }
    title = (
        f"filesystem bulk set: {BULK_KEYS:,} distinct keys x {BULK_VALUE_SIZE:,}-byte values, "
        f"threshold {BULK_THRESHOLD:,}"
    )
    return Scenario(title, rows, [f"live keys lost: {lost[n]}  ({n})" for n in seconds])


# -- report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    label: str
    value: float
    shown: str  # ``value`` as printed
    goal: str
    passed: bool


def environment(settings: Settings, quick: bool) -> dict[str, Any]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "flask_caching": version("flask-caching"),
        "cachelib": version("cachelib"),
        "flask": version("flask"),
        "flask_stash": version("flask-stash"),
        "temp_dir": tempfile.gettempdir(),
        "mode": "quick" if quick else "full",
        "samples": settings.samples,
        "bulk_rounds": settings.bulk_rounds,
    }


def print_environment(env: dict[str, Any]) -> None:
    print("Flask-Stash core benchmark")
    for key, value in env.items():
        print(f"  {key:<14} {value}")
    print("  medians of interleaved samples; ratio = median / median of the row named 'ref'")


def print_micro(scenario: Scenario) -> None:
    print(f"\n== {scenario.title} ==")
    print(f"  {'contender':<40} {'median µs/op':>12} {'p25..p75 µs':>17} {'ratio':>8}  vs")
    for row in scenario.rows:
        spread = f"{row.p25_us:.2f}..{row.p75_us:.2f}"
        line = f"  {row.name:<40} {row.median_us:>12.2f} {spread:>17} {_ratio(row):>8}"
        print(f"{line}  {_ref(row)}".rstrip())
    for note in scenario.notes:
        print(f"  {note}")


def print_bulk(scenario: Scenario) -> None:
    print(f"\n== {scenario.title} ==")
    print(f"  {'contender':<40} {'total s':>8} {'µs/op':>8} {'ratio':>8}  vs")
    for row in scenario.rows:
        total = row.extra["total_s"]
        line = f"  {row.name:<40} {total:>8.3f} {row.median_us:>8.1f} {_ratio(row):>8}"
        print(f"{line}  {_ref(row)}".rstrip())
    for note in scenario.notes:
        print(f"  {note}")


def _ratio(row: Row) -> str:
    if row.ratio is None:
        return "ref"
    return f"{row.ratio:.3f}x" if row.ratio < 0.1 else f"{row.ratio:.2f}x"


def _ref(row: Row) -> str:
    return row.reference or ""


def find_row(scenario: Scenario, name: str) -> Row:
    return next(row for row in scenario.rows if row.name == name)


def targets(memo: Scenario, bulk: Scenario) -> list[Target]:
    hit = find_row(memo, STASH_MEMO_MEMORY).median_us
    vs_fc = find_row(memo, FC_MEMO_SIMPLE).ratio or 0.0
    bulk_fc = find_row(bulk, BULK_FC).ratio or 0.0
    lost = find_row(bulk, BULK_STASH).extra["live_keys_lost"]
    return [
        Target("memoize hit, memory backend", hit, f"{hit:.2f} µs", "<= 3 µs", hit <= 3),
        faster("memoize hit vs Flask-Caching SimpleCache memoize", vs_fc, 30),
        faster(f"filesystem {BULK_KEYS:,} x 1 KB set vs Flask-Caching", bulk_fc, 5),
        Target("live keys lost by Flask-Stash (bulk set)", lost, str(lost), "0", lost == 0),
    ]


def faster(label: str, ratio: float, goal: float) -> Target:
    """Flask-Stash must be at least ``goal`` times faster (``ratio`` = their time / ours)."""
    return Target(label, ratio, f"{ratio:.1f}x", f">= {goal:g}x faster", ratio >= goal)


def print_targets(results: list[Target]) -> None:
    print("\n== Targets ==")
    for target in results:
        verdict = "PASS" if target.passed else "FAIL"
        print(f"  {verdict}  {target.label:<62} {target.shown:>9}  (goal {target.goal})")


def write_json(
    path: str, env: dict[str, Any], scenarios: list[Scenario], goals: list[Target]
) -> None:
    report = {
        "environment": env,
        "scenarios": [asdict(scenario) for scenario in scenarios],
        "targets": [asdict(goal) for goal in goals],
    }
    Path(path).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


# -- main -------------------------------------------------------------------------------


SIGNING_KEY = "bench-signing-key-0123456789abcdef"
DECODERS: dict[str, Callable[[], Serializer]] = {
    "pickle": PickleSerializer,
    "pickle, signed": lambda: PickleSerializer(signing_key=SIGNING_KEY),
    "json": JsonSerializer,
    "json, signed": lambda: JsonSerializer(signing_key=SIGNING_KEY),
}


def decode_scenario(settings: Settings) -> Scenario:
    """What a hit on a shared backend pays to turn the stored bytes into an entry (the
    in-memory backend decodes an immutable entry once and reuses it)."""
    contenders = [
        Contender(name, decoding(make()), 3, None if name == "pickle" else "pickle")
        for name, make in DECODERS.items()
    ]
    return micro("decoding one memoize entry (each hit on a shared backend)", contenders, settings)


def decoding(serializer: Serializer) -> Op:
    store = Store(NullBackend(), serializer=serializer)
    blob = serializer.dumps((3, 1.0, None, None, None, (), 0.0))
    return lambda: store.decode(blob).value  # type: ignore[union-attr]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, 1 bulk round")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target fails")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return parser.parse_args(argv)


def run(env: Env, settings: Settings) -> list[Scenario]:
    scenarios = [memoize_memory(env, settings), memoize_filesystem(env, settings)]
    for scenario in scenarios:
        print_micro(scenario)
    for scenario in [*get_set_scenarios(env, settings), decode_scenario(settings)]:
        print_micro(scenario)
        scenarios.append(scenario)
    bulk = bulk_scenario(env, settings)
    print_bulk(bulk)
    return [*scenarios, bulk]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings(samples=30, bulk_rounds=1) if args.quick else Settings(200, 3)
    info = environment(settings, args.quick)
    print_environment(info)
    env = Env()
    try:
        scenarios = run(env, settings)
    finally:
        env.close()
    goals = targets(scenarios[0], scenarios[-1])
    print_targets(goals)
    if args.json:
        write_json(args.json, info, scenarios, goals)
    return 1 if args.strict and not all(goal.passed for goal in goals) else 0


if __name__ == "__main__":
    sys.exit(main())
