"""A lookup's backend keys: what every front end hands the pipeline."""

from __future__ import annotations

from flask_stash.core.engine import Lookup
from flask_stash.core.store import Store
from flask_stash.testing import FakeClock

from .pipelinekit import Scripted, make_store


def test_a_lookup_of_user_keys_holds_their_backend_keys(clock: FakeClock) -> None:
    store = make_store(Scripted(), clock)
    assert Lookup.of(store, "k", ("fn", "fn:obj"), "scope") == (
        "p:k",
        ("p:fn", "p:fn:obj"),
        "scope",
    )


def test_a_lookups_defaults(clock: FakeClock) -> None:
    store = make_store(Scripted(), clock)
    assert Lookup.of(store, "k") == Lookup("p:k", (), "")
    assert Lookup("raw") == ("raw", (), "")


def test_long_keys_are_hashed_alike_for_the_entry_and_its_stamps() -> None:
    backend = Scripted()
    backend.max_key_length = 100  # type: ignore[attr-defined]
    store = Store(backend, key_prefix="p:")
    long = "x" * 200
    where = Lookup.of(store, long, (long,))
    assert where.key == store.backend_key(long)
    assert where.key.startswith("p:#")
    assert where.version_keys == (where.key,)
