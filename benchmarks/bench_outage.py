"""What a hung backend costs a request: Flask-Stash and Flask-Caching side by side.

Run: ``.venv/bin/python benchmarks/bench_outage.py [--rounds N] [--quick]``

Starts its own redis-server, two memcached nodes and a 3-master Redis Cluster on free
loopback ports (``tests/servers.py``), builds the same Flask-Caching-style app
(``tests/outage_app.py``) on each library with 1 s socket timeouts, pauses one server of
each kind with SIGSTOP (a hung host: connections accepted, never answered) and measures the
time the 1st, 2nd, 5th and 20th request of the outage add over the same request uncached
(``NullCache``). Then it resumes the servers and measures how long each app takes to serve
a cached view again. Servers are always resumed and stopped, whatever happens.

Scenarios: Redis paused with a view calling two memoized functions (a new view every
request), with a view cached before the pause, and with one memoize miss; one of two
memcached nodes paused, under the view cached on it; one Cluster master paused, under the
view cached on it and under six views cached before the pause (request n asks view n mod 6).

Today's code can take 15 s per request, so every contender of a round runs at once, each in
its own thread, during one outage: a round lasts as long as the slowest contender, not the
sum. The threads mostly wait on sockets; a millisecond figure may still carry a little of
the others' CPU time. Cluster nodes run with a long ``cluster-node-timeout`` so a long pause
never makes the others mark the node failed. The table shows medians over the rounds.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT) not in sys.path:  # tests/servers.py and tests/outage_app.py
    sys.path.insert(0, str(ROOT))

from tests import outage_app, servers  # noqa: E402
from tests.outage_app import OutageApp  # noqa: E402

TIMEOUT = 1.0  # socket and connect timeout, both libraries
MEASURED = (1, 2, 5, 20)  # which requests of the outage the table shows
RECOVERY_DEADLINE = 120.0
LIBRARIES = {"flask_stash": "Flask-Stash", "flask_caching": "Flask-Caching"}


@dataclass
class Contender:
    scenario: str
    implementation: str
    app: OutageApp
    path: Callable[[int], str]  # the n-th request's path (n from 1)
    baseline: float = 0.0
    added: dict[int, float] = field(default_factory=dict)
    recovery: float = float("nan")
    error: str = ""

    def run_outage(self, count: int) -> None:
        try:
            for n in range(1, count + 1):
                timed = self.app.request(self.path(n))
                if timed.status != 200:
                    self.error = f"request {n}: status {timed.status}"
                if n in MEASURED:
                    self.added[n] = timed.seconds - self.baseline
        except Exception as exc:  # a benchmark reports, it does not stop
            self.error = f"{type(exc).__name__}: {exc}"

    def run_recovery(self, resumed: float) -> None:
        """Seconds from the resume until a new view is stored, then served from the cache."""
        path = f"/view/{900_000 + int(resumed * 1000) % 99_999}"
        while time.monotonic() - resumed < RECOVERY_DEADLINE:
            self.app.request(path)
            before = self.app.runs["view"]
            if self.app.request(path).status == 200 and self.app.runs["view"] == before:
                self.recovery = time.monotonic() - resumed
                return
            time.sleep(0.05)


def baseline(implementation: str, path: str) -> float:
    plain = outage_app.uncached(implementation)
    return statistics.median(plain.request(path).seconds for _ in range(7))


def redis_keys(node: servers.Server, prefix: str) -> str:
    return servers.redis_cli("-p", str(node.port), "--scan", "--pattern", f"{prefix}*")


def memcached_keys(node: servers.Server, prefix: str) -> str:
    text = servers.memcached_dump(node)
    return " ".join(word for word in text.split() if prefix in word)


def view_on(node: servers.Server, keys: Callable[[servers.Server, str], str], prefix: str) -> int:
    """A view (0-9, cached already) whose entry lives on ``node``."""
    stored = keys(node, prefix).split()
    for view in range(10):
        if any(key.endswith(f"view/{view}") for key in stored):
            return view
    raise RuntimeError(f"none of the cached views lives on port {node.port}")


def contenders(
    redis: servers.Server, pair: list[servers.Server], cluster: list[servers.Server]
) -> tuple[list[Contender], list[tuple[servers.Server, list[servers.Server]]]]:
    """Every (scenario, library), warmed up, and the servers to pause (with their cluster)."""
    made: list[Contender] = []
    mc_node, cl_node = pair[0], cluster[0]
    for implementation in LIBRARIES:
        redis_settings = outage_app.redis_config(redis, TIMEOUT)
        new_view = outage_app.build(implementation, redis_settings)
        made.append(Contender("Redis paused: new view, 2 memoized calls", implementation,
                              new_view, lambda n: f"/view/{1000 + n}"))  # fmt: skip
        cached = outage_app.build(implementation, redis_settings)
        cached.request("/view/0")
        made.append(Contender("Redis paused: view cached before", implementation, cached,
                              lambda n: "/view/0"))  # fmt: skip
        memo = outage_app.build(implementation, redis_settings)
        made.append(Contender("Redis paused: one memoize miss", implementation, memo,
                              lambda n: f"/miss/{n}"))  # fmt: skip

        # The paused node is the same for both libraries; each asks a view cached on it.
        prefix = f"bm{time.monotonic_ns()}:"
        settings = outage_app.memcached_config(implementation, pair, TIMEOUT)
        mc = outage_app.build(implementation, settings, prefix)
        for view in range(10):
            mc.request(f"/view/{view}")
        on_node = view_on(mc_node, memcached_keys, prefix)
        made.append(Contender("memcached 1 of 2 nodes paused: 1 view", implementation, mc,
                              lambda n, v=on_node: f"/view/{v}"))  # fmt: skip

        for views in (1, 6):
            prefix = f"bc{time.monotonic_ns()}:"
            app = outage_app.build(
                implementation, outage_app.cluster_config(cluster, TIMEOUT), prefix
            )
            for view in range(10):
                app.request(f"/view/{view}")
            first = view_on(cl_node, redis_keys, prefix)
            order = [first, *(view for view in range(10) if view != first)][:views]
            scenario = f"Cluster 1 master paused: {views} view(s)"
            made.append(Contender(scenario, implementation, app,
                                  lambda n, o=order: f"/view/{o[(n - 1) % len(o)]}"))  # fmt: skip
    for contender in made:
        contender.baseline = baseline(contender.implementation, contender.path(1))
    return made, [(redis, []), (mc_node, []), (cl_node, cluster)]


def run_in_threads(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=target, daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def one_round(
    redis: servers.Server,
    pair: list[servers.Server],
    cluster: list[servers.Server],
    requests: int,
) -> list[Contender]:
    made, outages = contenders(redis, pair, cluster)
    try:
        with ExitStack() as stack:
            for node, nodes in outages:
                stack.enter_context(servers.paused(node, nodes))
            run_in_threads([lambda c=c: c.run_outage(requests) for c in made])
        resumed = time.monotonic()  # every server answers again, the cluster is ok
        run_in_threads([lambda c=c: c.run_recovery(resumed) for c in made])
    finally:
        for contender in made:
            contender.app.close()
    return made


def table(rounds: list[list[Contender]]) -> str:
    head = ["scenario", "library", *(f"req {n} (ms)" for n in MEASURED), "recovery (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for index, first in enumerate(rounds[0]):
        runs = [round_[index] for round_ in rounds]
        cells = [first.scenario, LIBRARIES[first.implementation]]
        for n in MEASURED:
            values = [run.added[n] for run in runs if n in run.added]
            cells.append(f"{statistics.median(values) * 1000:,.0f}" if values else "-")
        recoveries = [run.recovery for run in runs]
        cells.append(f"{statistics.median(recoveries):.2f}")
        errors = {run.error for run in runs if run.error}
        if errors:
            cells[-1] += " (" + "; ".join(sorted(errors)) + ")"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="outages per scenario")
    parser.add_argument("--quick", action="store_true", help="one round")
    parser.add_argument("--requests", type=int, default=max(MEASURED))
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    for name in ("flask_stash", "flask_caching"):  # one line per failed call: not the point
        logging.getLogger(name).setLevel(logging.CRITICAL)
    print(f"# Outage benchmark: {rounds} round(s), {args.requests} requests per outage")
    print(
        f"Python {sys.version.split()[0]}, Flask-Stash {version('flask-stash')} (this checkout "
        f"if on PYTHONPATH), Flask-Caching {version('flask-caching')}, redis-py "
        f"{version('redis')}, pymemcache {version('pymemcache')}, pylibmc {version('pylibmc')}"
    )
    print(f"Socket timeouts {TIMEOUT} s. Added time over the same request uncached, medians.\n")
    results: list[list[Contender]] = []
    with tempfile.TemporaryDirectory(prefix="bench-outage-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        redis = stack.enter_context(servers.redis_server(work))
        pair = stack.enter_context(servers.memcached_nodes(work, 2))
        cluster = stack.enter_context(
            servers.redis_cluster(work, 3, "--cluster-node-timeout", "600000")
        )
        for number in range(rounds):
            started = time.monotonic()
            results.append(one_round(redis, pair, cluster, args.requests))
            print(f"round {number + 1}: {time.monotonic() - started:.0f} s", file=sys.stderr)
    print(table(results))


if __name__ == "__main__":
    main()
