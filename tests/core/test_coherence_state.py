"""The invalidation channel's rules with a scripted subscription and a fake clock: which
messages reach the tier, when it PINGs and gives a silent connection up, the back-off
between attempts, and one log line per change of state. The same on a real Redis (lost
connections, paused servers, forks) is in ``test_tier.py``."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from types import SimpleNamespace

import pytest

from flask_stash.core import coherence
from flask_stash.core.coherence import Channel, decode, encode
from flask_stash.core.errors import BackendError
from flask_stash.testing import FakeClock

NAME = "flask_stash:tier:app:"
#: A poll step: seconds that pass, then what the poll returns (or raises).
Step = tuple[float, "bytes | BaseException | None"]


class Sink:
    def __init__(self) -> None:
        self.events: list[object] = []

    def resync(self) -> None:
        self.events.append("resync")

    def lost(self) -> None:
        self.events.append("lost")

    def invalidate(self, keys: Sequence[str] | None) -> None:
        self.events.append(None if keys is None else list(keys))


class Script:
    """One subscription's polls, in order; the channel is stopped when they run out."""

    def __init__(self, remote: Remote, steps: Sequence[Step], *, pongs: bool = True) -> None:
        self.remote = remote
        self.steps = list(steps)
        self.pongs = pongs
        self.heard_at = remote.clock()
        self.pings: list[float] = []
        self.closed = False

    def poll(self, timeout: float) -> bytes | None:
        assert timeout == coherence.POLL
        if not self.steps:
            self.remote.stop()
            return None
        seconds, outcome = self.steps.pop(0)
        self.remote.clock.advance(seconds)
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome is not None:
            self.heard_at = self.remote.clock()
        return outcome

    def ping(self) -> None:
        self.pings.append(self.remote.clock())
        if self.pongs:
            self.heard_at = self.remote.clock()

    def close(self) -> None:
        self.closed = True
        raise RuntimeError("closing failed too")  # never hides the session's outcome


class Remote:
    """A publishing backend whose subscriptions follow scripts (an exception: refused)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sessions: list[Script | BaseException] = []
        self.subscribed: list[str] = []
        self.published: list[tuple[str, bytes]] = []
        self.stop: Callable[[], None] = lambda: None

    def publish(self, channel: str, message: bytes) -> None:
        self.published.append((channel, message))

    def subscribe(self, channel: str) -> Script:
        self.subscribed.append(channel)
        if not self.sessions:
            self.stop()
            raise BackendError("no more sessions")
        session = self.sessions.pop(0)
        if isinstance(session, BaseException):
            raise session
        session.heard_at = self.clock()  # the server confirmed the subscription
        return session


class Waits(threading.Event):
    """The channel's stop event: records each back-off instead of sleeping it."""

    def __init__(self) -> None:
        super().__init__()
        self.delays: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.delays.append(timeout)
        return self.is_set()


@pytest.fixture
def remote(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Remote:
    monkeypatch.setattr(coherence, "time", SimpleNamespace(monotonic=clock))
    return Remote(clock)


def channel_of(remote: Remote) -> tuple[Channel, Sink, Waits]:
    sink = Sink()
    channel = Channel(remote, NAME, sink)  # type: ignore[arg-type]
    waits = Waits()
    channel._stop = waits  # the back-offs are recorded, not slept
    remote.stop = waits.set
    return channel, sink, waits


def run(channel: Channel, remote: Remote, *sessions: Script | BaseException) -> None:
    """The listener thread's body, run here until the sessions run out."""
    remote.sessions = list(sessions)
    channel._run()


def listen(remote: Remote, *sessions: Script | BaseException) -> tuple[Channel, Sink, Waits]:
    channel, sink, waits = channel_of(remote)
    run(channel, remote, *sessions)
    return channel, sink, waits


def message(sender: str, keys: list[str] | None) -> bytes:
    return encode(sender, keys)


# -- messages --------------------------------------------------------------------------------


def test_a_message_names_its_sender_and_keys() -> None:
    assert json.loads(encode("me", ["a", "b"])) == {"s": "me", "k": ["a", "b"]}
    assert json.loads(encode("me", None)) == {"s": "me", "k": None}
    assert json.loads(encode("me", ("t",))) == {"s": "me", "k": ["t"]}
    assert decode(encode("me", ["a", "b"])) == ("me", ["a", "b"])
    assert decode(encode("me", [])) == ("me", [])
    assert decode(encode("me", None)) == ("me", None)


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"s": "me"}',
        b'{"k": ["a"]}',
        b'{"s": 5, "k": ["a"]}',
        b'{"s": "me", "k": "a"}',
        b'{"s": "me", "k": ["a", 5]}',
        b'{"s": "me", "k": {"a": 1}}',
    ],
)
def test_a_malformed_message_reads_as_a_clear(raw: bytes) -> None:
    assert decode(raw) == ("", None)


def test_the_keys_of_a_write_go_out_in_batches(remote: Remote) -> None:
    channel = Channel(remote, NAME, Sink())  # type: ignore[arg-type]
    keys = [f"k{i}" for i in range(coherence.BATCH * 2 + 1)]
    channel.publish(keys)
    channel.publish(None)
    channel.publish(["one"])
    names = {name for name, _ in remote.published}
    assert names == {NAME}
    sent = [decode(raw) for _, raw in remote.published]
    assert [len(keys) if keys is not None else None for _, keys in sent] == [500, 500, 1, None, 1]
    assert [key for _, batch in sent[:3] for key in batch or ()] == keys
    assert {sender for sender, _ in sent} == {channel.sender}


def test_the_tier_hears_the_others_and_not_itself(remote: Remote) -> None:
    channel, sink, _ = channel_of(remote)
    steps: list[Step] = [
        (0.0, message("other", ["a", "b"])),
        (0.0, message(channel.sender, ["mine"])),
        (0.0, b"garbage"),
        (0.0, None),
        (0.0, message("other", None)),
    ]
    script = Script(remote, steps)
    run(channel, remote, script)
    assert sink.events == ["resync", ["a", "b"], None, None, "lost"]
    assert remote.subscribed == [NAME]
    assert script.closed
    assert script.pings == []


# -- a silent connection -----------------------------------------------------------------------


def test_a_silent_channel_is_pinged_once_per_heartbeat(remote: Remote) -> None:
    assert (coherence.HEARTBEAT, coherence.DEAD_AFTER) == (1.0, 3.0)
    start = remote.clock()
    steps: list[Step] = [(1.0, None), (0.25, None), (0.5, None), (0.5, None), (0.25, None)]
    script = Script(remote, [*steps, (1.0, None), (0.25, None)])
    _, sink, _ = listen(remote, script)
    # 1.0 s of silence is not more than a heartbeat, 1.25 s is: PING, answered at once.
    assert [at - start for at in script.pings] == [1.25, 2.5, 3.75]
    assert sink.events == ["resync", "lost"]  # answered: never lost


def test_a_ping_waits_a_heartbeat_after_the_last_one(remote: Remote) -> None:
    start = remote.clock()
    steps: list[Step] = [(1.5, None), (0.5, None), (0.5, None), (0.25, None)]
    script = Script(remote, steps, pongs=False)
    _, sink, _ = listen(remote, script)
    # Unanswered: still silent at 2.0 and 2.5 s, but the last PING is not 1 s old.
    assert [at - start for at in script.pings] == [1.5, 2.75]
    assert sink.events == ["resync", "lost"]


def test_a_channel_silent_past_the_limit_counts_as_lost(
    remote: Remote, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flask_stash")
    exact = Script(remote, [(3.0, None), (0.0, BackendError("reset"))], pongs=False)
    past = Script(remote, [(2.0, None), (1.25, None), (5.0, None)], pongs=False)
    _, sink, _ = listen(remote, exact, past)
    assert exact.closed
    assert past.closed
    assert len(past.steps) == 1  # given up at 3.25 s, before the next poll
    assert sink.events == ["resync", "lost", "resync", "lost", "lost", "lost"]
    assert [r.getMessage() for r in caplog.records] == [
        f"in-process tier bypassed: invalidation channel {NAME!r} unavailable (reset)",
        f"in-process tier: invalidation channel {NAME!r} is back; tier emptied",
        f"in-process tier bypassed: invalidation channel {NAME!r} unavailable "
        "(no reply on the invalidation channel for 3.2 s)",
    ]


# -- reconnecting ------------------------------------------------------------------------------


def test_attempts_back_off_up_to_a_limit(remote: Remote) -> None:
    refusals = [BackendError("refused") for _ in range(8)]
    _, sink, waits = listen(remote, *refusals)
    assert waits.delays == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    assert sink.events == ["lost"] * 10  # each attempt, and the end


def test_a_channel_that_worked_a_while_retries_at_once(remote: Remote) -> None:
    broke = BackendError("connection reset")
    long = Script(remote, [(2.5, None), (0.0, broke)])
    brief = Script(remote, [(2.0, None), (0.0, broke)])
    _, _, waits = listen(remote, BackendError("refused"), BackendError("refused"), long, brief)
    # Subscribed 2.5 s (> 2 s): the next attempt is as prompt as the first; 2.0 s is not.
    assert waits.delays == [0.05, 0.1, 0.05, 0.1, 0.2]


def test_one_log_line_per_change_of_state(remote: Remote, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="flask_stash")
    first = Script(remote, [(0.0, BackendError("connection reset"))])
    second = Script(remote, [(0.0, BackendError("connection reset"))])
    listen(remote, first, BackendError("refused"), BackendError("refused"), second)
    lines = [(r.levelname, r.getMessage(), bool(r.exc_info)) for r in caplog.records]
    assert lines == [
        (
            "WARNING",
            f"in-process tier bypassed: invalidation channel {NAME!r} unavailable "
            "(connection reset)",
            False,
        ),
        ("INFO", f"in-process tier: invalidation channel {NAME!r} is back; tier emptied", False),
        (
            "WARNING",
            f"in-process tier bypassed: invalidation channel {NAME!r} unavailable "
            "(connection reset)",
            False,
        ),
    ]


def test_a_surprise_is_logged_with_its_traceback(
    remote: Remote, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flask_stash")
    listen(remote, RuntimeError("driver bug"))
    (record, *rest) = caplog.records
    assert record.getMessage().endswith("unavailable (driver bug)")
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError
    assert rest == []
    assert [r.levelname for r in caplog.records] == ["WARNING"]


def test_the_tier_is_left_bypassed_whatever_ends_the_listener(remote: Remote) -> None:
    sink = Sink()
    channel = Channel(remote, NAME, sink)  # type: ignore[arg-type]
    remote.sessions = [KeyboardInterrupt()]  # not an Exception: not caught, not retried
    with pytest.raises(KeyboardInterrupt):
        channel._run()
    assert sink.events == ["lost"]


# -- the thread ----------------------------------------------------------------------------------


def test_start_runs_one_listener_and_close_stops_it(clock: FakeClock) -> None:
    subscribed = threading.Event()
    release = threading.Event()

    class Blocking(Remote):
        def subscribe(self, channel: str) -> Script:
            subscribed.set()
            assert release.wait(5)
            raise BackendError("refused")

    remote = Blocking(clock)
    sink = Sink()
    channel = Channel(remote, NAME, sink)  # type: ignore[arg-type]
    channel.start()
    thread = channel._thread
    channel.start()
    assert channel._thread is thread
    assert thread is not None
    assert thread.daemon
    assert thread.name == f"flask-stash-tier:{NAME}"
    assert subscribed.wait(5)
    release.set()
    channel.close(timeout=5)
    assert not thread.is_alive()
    assert sink.events[-1] == "lost"
    channel.start()  # closed: stays closed
    assert channel._thread is thread


def test_a_forked_child_listens_on_its_own_as_someone_else(clock: FakeClock) -> None:
    channel = Channel(Remote(clock), NAME, Sink())  # type: ignore[arg-type]
    sender = channel.sender
    channel._thread = threading.current_thread()  # the parent's listener
    channel.after_fork()
    assert channel.sender != sender
    assert len(channel.sender) == len(sender) == 32
    assert channel._thread is None
    assert not channel._stop.is_set()
    closed = Channel(Remote(clock), NAME, Sink())  # type: ignore[arg-type]
    closed.close()
    closed.after_fork()
    closed.start()
    assert closed._thread is None  # a closed channel stays closed in the child


def test_the_first_ping_whatever_the_clock_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(start=0.0)  # a monotonic clock may start anywhere, 0 included
    monkeypatch.setattr(coherence, "time", SimpleNamespace(monotonic=clock))
    remote = Remote(clock)
    script = Script(remote, [(1.25, None)], pongs=False)
    listen(remote, script)
    assert script.pings == [1.25]


def test_close_waits_at_most_a_second_for_a_stuck_listener(clock: FakeClock) -> None:
    class Stuck:
        def __init__(self) -> None:
            self.joined: list[float] = []

        def join(self, timeout: float) -> None:
            self.joined.append(timeout)

    channel = Channel(Remote(clock), NAME, Sink())  # type: ignore[arg-type]
    stuck = Stuck()
    channel._thread = stuck  # type: ignore[assignment]
    channel.close()
    assert stuck.joined == [1.0]
    channel._thread = threading.current_thread()  # closed from the listener itself
    channel.close()  # no self-join
    assert stuck.joined == [1.0]
