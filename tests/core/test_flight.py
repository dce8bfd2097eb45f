"""Single-flight bookkeeping (``core/flight.py``), step by step.

Concurrent callers sharing one computation are tested through the engine in
``test_stampede.py``.
"""

from __future__ import annotations

import asyncio

from flask_stash.core.flight import (
    GAVE_UP,
    PASSED,
    AsyncSingleFlight,
    Outcome,
    SingleFlight,
)


def test_the_first_caller_leads_and_the_next_wait() -> None:
    flights = SingleFlight()
    flight, leads = flights.begin("k")
    assert leads
    assert flights.begin("k") == (flight, False)
    assert flights.begin("other")[1]
    assert len(flights) == 2
    flights.end("k", flight, PASSED)
    assert flight.done.is_set()
    assert flight.outcome is PASSED
    assert len(flights) == 1
    assert flights.begin("k")[0] is not flight  # a new flight, not the ended one


def test_a_released_claim_tells_its_waiters_to_start_over() -> None:
    flights = SingleFlight()
    assert flights.try_lead("a")
    assert flights.try_lead("b")  # another key: free
    assert not flights.try_lead("a")
    flight, leads = flights.begin("a")
    assert not leads
    flights.release("a")
    assert flight.done.is_set()
    assert flight.outcome is GAVE_UP
    assert flight.outcome.kind == "retry"
    assert flights.try_lead("a")
    flights.release("missing")  # nothing to release: no error
    assert len(flights) == 2


def test_an_ended_flight_does_not_forget_its_successor() -> None:
    flights = SingleFlight()
    first, _ = flights.begin("k")
    flights.release("k")
    second, leads = flights.begin("k")
    assert leads
    flights.end("k", first, PASSED)  # the old leader ends late
    assert flights.begin("k") == (second, False)


def test_async_waiters_get_the_outcome_or_give_up_after_their_timeout() -> None:
    async def main() -> tuple[Outcome | None, Outcome | None, bool]:
        flights = AsyncSingleFlight()
        future, leads = flights.begin("k")
        assert leads
        assert flights.begin("k") == (future, False)
        gave_up = await asyncio.wait_for(AsyncSingleFlight.wait(future, 0), 5)
        cancelled = future.cancelled()  # shielded: the flight goes on
        flights.end("k", future, PASSED)
        assert len(flights) == 0
        return gave_up, await AsyncSingleFlight.wait(future, None), cancelled

    assert asyncio.run(main()) == (None, PASSED, False)
