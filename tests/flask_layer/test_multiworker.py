"""Several gunicorn workers, one cache: a shared backend keeps them coherent.

gunicorn serves ``tests/multiworker_app.py`` with two sync workers. Its memoized
``user_name(id)`` reads a SQLite file that both workers share; ``POST /users/<id>`` renames
the user and calls ``cache.delete_memoized(user_name, id)`` in whichever worker took the
request. Each round renames the user, then reads it from *both* workers and counts the
answers that are not the name just written: stale reads.

Reaching both workers is deterministic, not left to the kernel's choice: a sync worker
serves one connection at a time, so the client opens two connections, sends a request
on the second only, and reads its answer while the first connection, accepted first,
keeps the other worker waiting for its request; then it sends the first request.
"""

from __future__ import annotations

import http.client
import json
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from .. import servers
from ..multiworker_app import DB_ENV, init_db
from .envs import wait_until

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 20
USER = 7
FIRST_NAME = "name-initial"
TIMEOUT = 10.0  # seconds a request may take (a worker still booting included)
PAIR_ATTEMPTS = 5


@dataclass(frozen=True)
class Reply:
    name: str
    pid: int
    loads: int  # name loads from the database so far, by all workers together


@dataclass
class Outcome:
    stale: int = 0
    reads: int = 0
    loads: int = 0
    pids: frozenset[int] = frozenset()


# -- the server ---------------------------------------------------------------------------


@contextmanager
def gunicorn(
    workdir: Path, env: dict[str, str], *, workers: int = 2, preload: bool = False
) -> Iterator[int]:
    """gunicorn with sync workers (2 by default) on the multi-worker app; yields its port.

    Its output goes to ``workdir / f"server-{port}.log"``."""
    database = workdir / "users.sqlite3"
    init_db(database, {USER: FIRST_NAME})
    port = servers.free_port()
    args = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class", "sync"]
    args += ["--preload"] if preload else []
    args += ["--bind", f"{servers.HOST}:{port}", "--chdir", str(ROOT), "--graceful-timeout", "5"]
    for name, value in {DB_ENV: str(database), **env}.items():
        args += ["--env", f"{name}={value}"]
    with servers.running([*args, "tests.multiworker_app:create_app()"], port, workdir):
        yield port


# -- the client ---------------------------------------------------------------------------


def send(conn: http.client.HTTPConnection, method: str, path: str) -> None:
    conn.request(method, path, headers={"Connection": "close"})


def receive(conn: http.client.HTTPConnection) -> Reply:
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200, body
    return Reply(**json.loads(body))


def rename(port: int, name: str) -> Reply:
    with closing(http.client.HTTPConnection(servers.HOST, port, timeout=TIMEOUT)) as conn:
        send(conn, "POST", f"/users/{USER}?name={quote(name)}")
        return receive(conn)


def read_pair(port: int) -> tuple[Reply, Reply]:
    """One read served by each of two workers (see the module docstring)."""
    path = f"/users/{USER}"
    with ExitStack() as stack:
        first, second = (
            stack.enter_context(closing(http.client.HTTPConnection(servers.HOST, port, TIMEOUT)))
            for _ in range(2)
        )
        first.connect()  # taken by one worker, which then waits for its request
        second.connect()
        send(second, "GET", path)
        answer = receive(second)  # served by the other worker
        send(first, "GET", path)
        return answer, receive(first)


def read_both(port: int) -> tuple[Reply, Reply]:
    """Read the user once from each worker (bounded attempts)."""
    for _ in range(PAIR_ATTEMPTS):
        pair = read_pair(port)
        if pair[0].pid != pair[1].pid:
            return pair
    raise AssertionError(f"2 workers did not both answer in {PAIR_ATTEMPTS} attempts")


def names_by_pid(replies: tuple[Reply, Reply]) -> dict[int, str]:
    return {reply.pid: reply.name for reply in replies}


def run_rounds(port: int) -> Outcome:
    """Warm both workers, then ``ROUNDS`` times: rename, read from both, count stale reads."""
    warm = read_both(port)
    assert [reply.name for reply in warm] == [FIRST_NAME, FIRST_NAME]  # both cached it
    outcome = Outcome(pids=frozenset(reply.pid for reply in warm))
    for number in range(ROUNDS):
        latest = f"name-{number}"
        assert rename(port, latest).name == latest
        replies = read_both(port)
        outcome.stale += sum(reply.name != latest for reply in replies)
        outcome.reads += len(replies)
        again = read_both(port)  # both workers hit now: nothing is loaded again
        assert names_by_pid(again) == names_by_pid(replies)
        assert {r.loads for r in again} == {replies[1].loads}
        outcome.pids |= {reply.pid for reply in (*replies, *again)}
        outcome.loads = again[1].loads
    return outcome


def check_workers(outcome: Outcome) -> None:
    assert len(outcome.pids) == 2, outcome.pids  # no worker died and was replaced
    assert outcome.reads == 2 * ROUNDS


# -- the tests ----------------------------------------------------------------------------


def assert_coherent(outcome: Outcome) -> None:
    """No stale read, and the database read once per rename: the first read after it
    loads the name, the other worker hits the entry that read stored."""
    check_workers(outcome)
    assert outcome.stale == 0
    assert outcome.loads == 1 + ROUNDS


def unique_prefix() -> str:
    return f"multiworker-{uuid.uuid4().hex[:8]}:"


def test_redis_keeps_workers_coherent(tmp_path: Path, redis_single: servers.Server) -> None:
    """One Redis for both workers: a rename is seen by every worker at once."""
    env = {
        "STASH_CACHE_TYPE": "flask_stash.backends.redis.RedisCache",
        "STASH_CACHE_REDIS_URL": f"redis://{redis_single.address}/0",
        "STASH_CACHE_KEY_PREFIX": unique_prefix(),
    }
    with gunicorn(tmp_path, env) as port:
        assert_coherent(run_rounds(port))


def test_statistics_add_up_across_workers(tmp_path: Path, redis_single: servers.Server) -> None:
    """Each call counted once, in the worker that served it; the shared figures are the
    exact sum of both workers' (pushed in the background, within about a second)."""
    env = {
        "STASH_CACHE_TYPE": "flask_stash.backends.redis.RedisCache",
        "STASH_CACHE_REDIS_URL": f"redis://{redis_single.address}/0",
        "STASH_CACHE_KEY_PREFIX": unique_prefix(),
    }
    with gunicorn(tmp_path, env) as port:
        outcome = run_rounds(port)
        workers = read_stats_of_both(port)
        assert_coherent(outcome)
        scope = "tests.multiworker_app.user_name"
        mine = [worker["process"]["scopes"] for worker in workers]
        summed = {
            name: sum(_scope(scopes, scope)[name] for scopes in mine)
            for name in ("calls", "hits", "misses", "stale", "coalesced", "passes", "errors")
        }
        # warm-up: 2 reads; each round: 2 reads after the rename, 2 more that hit.
        calls = 2 + 4 * ROUNDS
        assert summed == {"calls": calls, "hits": calls - outcome.loads, "misses": outcome.loads,
                          "stale": 0, "coalesced": 0, "passes": 0, "errors": 0}  # fmt: skip

        def shared_matches() -> bool:
            everyone = fetch_stats(port)["everyone"]
            found = _scope(everyone["scopes"], scope)
            return all(found[name] == value for name, value in summed.items())

        assert wait_until(shared_matches, limit=TIMEOUT), fetch_stats(port)["everyone"]


def fetch_stats(port: int) -> dict[str, Any]:
    with closing(http.client.HTTPConnection(servers.HOST, port, timeout=TIMEOUT)) as conn:
        send(conn, "GET", "/stats")
        response = conn.getresponse()
        assert response.status == 200
        return json.loads(response.read())  # type: ignore[no-any-return]


def read_stats_of_both(port: int) -> list[dict[str, Any]]:
    """``/stats`` from each worker (as :func:`read_pair` reaches both)."""
    for _ in range(PAIR_ATTEMPTS):
        with ExitStack() as stack:
            first, second = (
                stack.enter_context(closing(http.client.HTTPConnection(servers.HOST, port,
                                                                        TIMEOUT)))
                for _ in range(2)
            )  # fmt: skip
            first.connect()
            second.connect()
            send(second, "GET", "/stats")
            answers = [json.loads(second.getresponse().read())]
            send(first, "GET", "/stats")
            answers.append(json.loads(first.getresponse().read()))
        if answers[0]["pid"] != answers[1]["pid"]:
            return answers
    raise AssertionError(f"2 workers did not both answer in {PAIR_ATTEMPTS} attempts")


def _scope(scopes: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [figures for figures in scopes if figures["scope"] == name]
    return found[0] if found else dict.fromkeys(("calls", "hits", "misses"), 0)


def test_memcached_keeps_workers_coherent(
    tmp_path: Path, memcached_pair: list[servers.Server]
) -> None:
    """One memcached for both workers: the same coherence as with Redis."""
    env = {
        "STASH_CACHE_TYPE": "flask_stash.backends.memcached.MemcachedCache",
        "STASH_CACHE_MEMCACHED_SERVERS": memcached_pair[0].address,
        "STASH_CACHE_KEY_PREFIX": unique_prefix(),
    }
    with gunicorn(tmp_path, env) as port:
        assert_coherent(run_rounds(port))


def test_filesystem_keeps_workers_of_one_machine_coherent(tmp_path: Path) -> None:
    """One cache folder for both workers: coherent too, on a single machine."""
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    env = {"STASH_CACHE_TYPE": "FileSystemCache", "STASH_CACHE_DIR": str(cache_dir)}
    with gunicorn(tmp_path, env) as port:
        assert_coherent(run_rounds(port))


def test_memory_backend_serves_stale_reads(tmp_path: Path) -> None:
    """The in-memory default under 2 workers: stale reads, as the docs warn.

    Each worker process has its own dict. ``delete_memoized`` runs in the worker that
    took the ``POST`` and empties that worker's dict only; the other worker keeps
    answering the name it cached before, until the entry expires. So every round has
    exactly one stale read, and every worker loads the name itself. A cache that
    several processes serve must be shared: Redis or memcached, or the filesystem
    backend when all the workers run on one machine.
    """
    with gunicorn(tmp_path, {}) as port:
        outcome = run_rounds(port)
    check_workers(outcome)
    assert outcome.stale > 0
    assert outcome.stale == ROUNDS  # the worker that did not take the rename, each round
    assert outcome.loads == 2 + ROUNDS


# -- the warning about in-process caches under several workers ------------------------------

WARNING_TEXT = "every worker has its own cache"


def warnings_logged(workdir: Path, port: int) -> list[str]:
    log = (workdir / f"server-{port}.log").read_text(errors="replace")
    return [line for line in log.splitlines() if WARNING_TEXT in line]


@pytest.mark.parametrize("preload", [False, True], ids=["per-worker", "preload"])
def test_memory_backend_under_two_workers_warns_once(tmp_path: Path, preload: bool) -> None:
    """The in-memory default under 2 workers: one warning naming the docs section, whether
    the app is loaded in each worker or once in the arbiter before it forks."""
    with gunicorn(tmp_path, {}, preload=preload) as port:
        read_both(port)  # both workers have loaded the app and answered
    (line,) = warnings_logged(tmp_path, port)
    assert "gunicorn runs 2 workers" in line
    assert "docs/backends.md#shared-backends" in line


@pytest.mark.parametrize("preload", [False, True], ids=["per-worker", "preload"])
def test_memory_backend_under_one_worker_is_silent(tmp_path: Path, preload: bool) -> None:
    with (
        gunicorn(tmp_path, {}, workers=1, preload=preload) as port,
        closing(http.client.HTTPConnection(servers.HOST, port, timeout=TIMEOUT)) as conn,
    ):
        send(conn, "GET", f"/users/{USER}")
        assert receive(conn).name == FIRST_NAME
    assert warnings_logged(tmp_path, port) == []


def test_a_shared_backend_under_two_workers_is_silent(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    env = {"STASH_CACHE_TYPE": "FileSystemCache", "STASH_CACHE_DIR": str(cache_dir)}
    with gunicorn(tmp_path, env, preload=True) as port:
        read_both(port)
    assert warnings_logged(tmp_path, port) == []
