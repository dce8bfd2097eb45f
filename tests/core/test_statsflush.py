"""The statistics' background round, unit by unit: what a round drains, pushes and samples,
which failures it swallows (and logs), when the thread is started (once per process, again
after a fork) and how the loop paces itself. The thread is replaced by a recording fake,
so nothing here runs in the background."""

from __future__ import annotations

import logging
import os
import weakref
from typing import Any, ClassVar

import pytest

from flask_stash.core import statsflush


class FakeThread:
    made: ClassVar[list[FakeThread]] = []

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.started = False
        FakeThread.made.append(self)

    def start(self) -> None:
        self.started = True


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> list[FakeThread]:
    """A module state of its own for each test, and threads that never run."""
    FakeThread.made = []
    monkeypatch.setattr(statsflush, "_state", {"thread": None, "pid": None})
    monkeypatch.setattr(statsflush, "_stores", weakref.WeakSet())
    monkeypatch.setattr(statsflush, "_samplers", weakref.WeakSet())
    monkeypatch.setattr(statsflush.threading, "Thread", FakeThread)
    return FakeThread.made


class Shared:
    def __init__(self, answer: Any = True, error: Exception | None = None) -> None:
        self.answer, self.error = answer, error
        self.pushed: list[Any] = []

    def push(self, stats: Any) -> Any:
        self.pushed.append(stats)
        if self.error is not None:
            raise self.error
        return self.answer


class FakeStore:
    def __init__(self, shared: Shared | None) -> None:
        self.shared_stats = shared
        self.stats = object()


class Sampler:
    def __init__(self, error: Exception | None = None) -> None:
        self.samples = 0
        self.error = error

    def sample(self) -> None:
        self.samples += 1
        if self.error is not None:
            raise self.error


class Drained:
    def __init__(self) -> None:
        self.drains = 0

    def drain(self) -> None:
        self.drains += 1


def test_the_round_interval_is_a_second() -> None:
    assert statsflush.INTERVAL == 1.0


def test_the_thread_starts_once_per_process(isolated: list[FakeThread]) -> None:
    statsflush.ensure_running()
    [thread] = isolated
    assert thread.options == {"target": statsflush._loop, "name": "flask-stash-stats",
                              "daemon": True}  # fmt: skip
    assert thread.started
    assert statsflush._state == {"thread": thread, "pid": os.getpid()}
    statsflush.ensure_running()
    assert len(isolated) == 1


def test_a_child_process_starts_its_own_thread(isolated: list[FakeThread]) -> None:
    statsflush._state.update(thread=object(), pid=os.getpid() + 1)  # the parent's
    statsflush.ensure_running()
    assert len(isolated) == 1
    assert statsflush._state == {"thread": isolated[0], "pid": os.getpid()}


def test_a_thread_started_while_waiting_for_the_lock_is_not_doubled(
    isolated: list[FakeThread], monkeypatch: pytest.MonkeyPatch
) -> None:
    already = object()

    class Raced:
        """Another caller starts the thread while this one waits for the lock."""

        def __enter__(self) -> None:
            statsflush._state.update(thread=already, pid=os.getpid())

        def __exit__(self, *exc: object) -> None:
            pass

    monkeypatch.setattr(statsflush, "_start_lock", Raced())
    statsflush.ensure_running()
    assert isolated == []
    assert statsflush._state["thread"] is already


def test_a_thread_of_another_process_seen_under_the_lock_is_replaced(
    isolated: list[FakeThread], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Raced:
        def __enter__(self) -> None:
            statsflush._state.update(thread=object(), pid=os.getpid() + 1)

        def __exit__(self, *exc: object) -> None:
            pass

    monkeypatch.setattr(statsflush, "_start_lock", Raced())
    statsflush.ensure_running()
    assert len(isolated) == 1


def test_watching_keeps_only_shared_stores(isolated: list[FakeThread]) -> None:
    shared, local = FakeStore(Shared()), FakeStore(None)
    statsflush.watch(local)
    assert list(statsflush._stores) == []
    assert len(isolated) == 1  # local figures are drained too: the thread runs
    statsflush.watch(shared)
    assert list(statsflush._stores) == [shared]


def test_samplers_are_registered_and_the_thread_started(isolated: list[FakeThread]) -> None:
    sampler = Sampler()
    statsflush.sample_every_round(sampler)
    assert list(statsflush._samplers) == [sampler]
    assert len(isolated) == 1


def test_a_round_drains_pushes_and_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    live = [Drained(), Drained()]
    monkeypatch.setattr(statsflush.stats_module, "live", lambda: live)
    monkeypatch.setattr(statsflush, "AUTO_PUSH", True)
    stores = [FakeStore(Shared()), FakeStore(Shared())]
    samplers = [Sampler(), Sampler()]
    for store in stores:
        statsflush._stores.add(store)
    for sampler in samplers:
        statsflush._samplers.add(sampler)
    statsflush.run_once()
    assert [stats.drains for stats in live] == [1, 1]
    assert [store.shared_stats.pushed for store in stores] == [  # type: ignore[union-attr]
        [stores[0].stats],
        [stores[1].stats],
    ]
    assert [sampler.samples for sampler in samplers] == [1, 1]


def test_a_round_without_auto_push_pushes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statsflush.stats_module, "live", lambda: [])
    monkeypatch.setattr(statsflush, "AUTO_PUSH", False)
    store, sampler = FakeStore(Shared()), Sampler()
    statsflush._stores.add(store)
    statsflush._samplers.add(sampler)
    statsflush.run_once()
    assert store.shared_stats.pushed == []  # type: ignore[union-attr]
    assert sampler.samples == 1


def test_a_failing_sampler_does_not_end_the_round(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="flask_stash")
    monkeypatch.setattr(statsflush.stats_module, "live", lambda: [])
    broken, working = Sampler(RuntimeError("boom")), Sampler()
    statsflush._samplers.add(broken)
    statsflush._samplers.add(working)
    statsflush.run_once()
    assert (broken.samples, working.samples) == (1, 1)
    [record] = caplog.records
    assert (record.levelno, record.name) == (logging.DEBUG, "flask_stash")
    assert record.getMessage() == "sampling statistics failed"
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "boom"


def test_push_now(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="flask_stash")
    assert statsflush.push_now(FakeStore(None)) is False
    store = FakeStore(Shared(answer=1))
    assert statsflush.push_now(store) is True
    assert store.shared_stats.pushed == [store.stats]  # type: ignore[union-attr]
    assert statsflush.push_now(FakeStore(Shared(answer=0))) is False
    assert caplog.records == []
    assert statsflush.push_now(FakeStore(Shared(error=ConnectionError("down")))) is False
    [record] = caplog.records
    assert (record.levelno, record.name) == (logging.DEBUG, "flask_stash")
    assert record.getMessage() == "pushing shared statistics failed"
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "down"


def test_the_loop_sleeps_a_round_apart_until_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[Any] = []

    class Time:
        @staticmethod
        def sleep(seconds: float) -> None:
            events.append(("sleep", seconds))

    def round_() -> None:
        events.append("round")
        if events.count("round") == 3:
            statsflush._state["thread"] = object()  # a newer thread took over

    monkeypatch.setattr(statsflush, "time", Time)
    monkeypatch.setattr(statsflush, "run_once", round_)
    statsflush._state["thread"] = statsflush.threading.current_thread()
    statsflush._loop()
    assert events == [("sleep", 1.0), "round"] * 3


def test_after_a_fork_the_child_restarts_only_when_stats_live(
    isolated: list[FakeThread], monkeypatch: pytest.MonkeyPatch
) -> None:
    statsflush._state.update(thread=object(), pid=12345)
    monkeypatch.setattr(statsflush.stats_module, "live", lambda: [])
    statsflush._after_fork()
    assert statsflush._state == {"thread": None, "pid": None}
    assert isolated == []
    monkeypatch.setattr(statsflush.stats_module, "live", lambda: [Drained()])
    statsflush._after_fork()
    assert len(isolated) == 1
    assert statsflush._state == {"thread": isolated[0], "pid": os.getpid()}
