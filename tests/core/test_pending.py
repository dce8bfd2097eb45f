"""The queue of invalidations replayed after an outage (``core/pending.py``).

Its use by the gate is tested in ``test_gate_outage.py``.
"""

from __future__ import annotations

from flask_stash.core.pending import PendingInvalidations


def test_a_replay_running_inside_another_runs_every_call_and_drops_none() -> None:
    """Two replays at once (two threads seeing the backend answer again): a call the other
    replay already made and removed is not removed a second time, nor the one after it."""
    runs: list[str] = []
    pending = PendingInvalidations()

    def call(name: str) -> None:
        runs.append(name)
        if runs == ["a"]:
            pending.replay()  # the other replay, finishing first

    for name in "ab":
        pending.add(call, (name,))
    pending.replay()
    assert runs == ["a", "a", "b"]
    assert len(pending) == 0
    pending.add(call, ("c",))
    assert len(pending) == 1  # "c" was not dropped as if it were "a"


def test_an_overflow_without_a_clear_drops_the_queue() -> None:
    done: list[int] = []
    pending = PendingInvalidations(limit=1)
    pending.add(done.append, (1,))
    pending.add(done.append, (2,))
    assert pending.overflowed
    pending.replay()
    assert (done, len(pending), pending.overflowed) == ([], 0, False)
    pending.add(done.append, (3,))  # a fresh queue after the overflow
    pending.replay()
    assert done == [3]
