"""Tags on every backend: ``invalidate_tags`` drops exactly the entries carrying a tag, in
O(1), and a tagged hit stays one round trip on one Redis node (its stamps come in the
entry's multi-get)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flask_stash.core import MemoryBackend, Store, memoize
from flask_stash.core.api import MISS
from flask_stash.core.backends.filesystem import FileSystemBackend
from flask_stash.core.backends.memcached import MemcachedBackend
from flask_stash.core.stats import TAG_INVALIDATION
from flask_stash.core.tags import Tags, tags_of

from .. import servers
from . import redisfamily
from .redisfamily import Flavour

BACKENDS = ["memory", "filesystem", "redis single", "redis sentinel", "redis cluster",
            "memcached one node", "memcached two nodes"]  # fmt: skip
FLAVOURS = {
    "redis single": ("redis_single", redisfamily.single),
    "redis sentinel": ("redis_sentinel", redisfamily.sentinel),
    "redis cluster": ("redis_cluster", redisfamily.cluster),
}


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    name = request.param
    prefix = f"tags{uuid.uuid4().hex[:8]}:"
    if name == "memory":
        backend: Any = MemoryBackend()
    elif name == "filesystem":
        backend = FileSystemBackend(str(tmp_path))
    elif name in FLAVOURS:
        fixture, flavour = FLAVOURS[name]
        backend = flavour(request.getfixturevalue(fixture)).make(prefix)
    else:
        nodes: list[servers.Server] = request.getfixturevalue("memcached_pair")
        count = 1 if name == "memcached one node" else 2
        backend = MemcachedBackend([node.address for node in nodes[:count]])
    with contextlib.closing(backend):
        yield Store(backend, key_prefix=prefix)


class Users:
    """A memoized "database" whose loads are counted."""

    def __init__(self, store: Store) -> None:
        self.loads: list[Any] = []

        @memoize(store, 60, tags=["users", lambda user_id, detail="": f"user:{user_id}"])
        def profile(user_id: int, detail: str = "") -> dict[str, Any]:
            self.loads.append((user_id, detail))
            return {"id": user_id, "detail": detail}

        self.profile = profile


def test_invalidating_a_tag_drops_exactly_its_entries(store: Store) -> None:
    users = Users(store)
    for user_id in (1, 2):
        users.profile(user_id)
        users.profile(user_id, detail="full")
    assert len(users.loads) == 4
    store.invalidate_tags(["user:1"])
    for user_id in (1, 2):
        users.profile(user_id)
        users.profile(user_id, detail="full")
    assert users.loads[4:] == [(1, ""), (1, "full")]  # user 2's entries still served
    store.invalidate_tags(["users"])  # a tag every call carries
    users.profile(2)
    assert users.loads[-1] == (2, "")
    assert store.stats.get(TAG_INVALIDATION) == 2


def test_tagged_values_of_the_direct_api(store: Store) -> None:
    assert store.set("a", "alpha", tags=["letters", "first"])
    assert store.set("b", "beta", tags=["letters"])
    assert store.set("c", "plain")
    assert store.get_many(["a", "b", "c"]) == ["alpha", "beta", "plain"]
    assert store.invalidate_tags(["first"])
    assert store.get("a") is MISS
    assert store.get("b") == "beta"
    assert store.invalidate_tags(["letters"])
    assert store.get_many(["a", "b", "c"]) == [MISS, MISS, "plain"]
    assert store.set("a", "again", tags=["letters"])  # written under the new stamp
    assert store.get("a") == "again"


def test_an_invalidation_during_a_computation_wins(store: Store) -> None:
    runs: list[int] = []

    @memoize(store, 60, tags="feed")
    def feed() -> int:
        runs.append(1)
        if len(runs) == 1:
            store.invalidate_tags(["feed"])  # the data changed while we computed
        return len(runs)

    assert feed() == 1
    assert feed() == 2  # the first result was computed before the invalidation: a miss
    assert feed() == 2


def test_a_forgotten_stamp_invalidates_rather_than_resurrects(store: Store) -> None:
    assert store.set("a", "alpha", tags=["t"])
    if store.local_stamps is not None:  # an in-process backend keeps stamps beside it
        store.local_stamps.tokens.pop(store.tag_key("t"))
    else:
        store.backend.delete(store.tag_key("t"))  # an evicted stamp
    assert store.get("a") is MISS


@pytest.mark.server
def test_a_tagged_hit_is_one_round_trip_on_one_node(redis_flavour: Flavour) -> None:
    backend = redis_flavour.make(f"rt{uuid.uuid4().hex[:8]}:")
    with contextlib.closing(backend):
        users = Users(Store(backend))
        users.profile(7)  # the miss creates the stamps and stores the entry
        before = redis_flavour.command_stats()
        assert users.profile(7) == {"id": 7, "detail": ""}
        commands = redis_flavour.commands_since(before)
        if redis_flavour.name == "cluster":
            # The entry and its function stamp share a slot; each tag stamp has its own:
            # at most one MGET per node holding one of the three keys.
            assert set(commands) == {"mget"}
            assert commands["mget"] <= min(3, len(redis_flavour.ports))
        else:
            assert commands == {"mget": 1}
        assert len(users.loads) == 1


def test_tags_option_accepts_strings_and_callables() -> None:
    tags = Tags(["a", lambda x: [f"x:{x}", "a"], lambda x: f"y:{x}"])
    assert tags.of((1,), {}) == ("a", "x:1", "y:1")
    assert Tags("solo").of((), {}) == ("solo",)
    assert tags_of(None) is None
    assert tags_of([]) is None


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (42, "not 42"),
        ([b"bytes"], "not b'bytes'"),
        ({"a": 1}, "not {'a': 1}"),
    ],
)
def test_bad_tags_are_refused_at_decoration(option: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Tags(option)


def test_an_empty_tag_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        Tags([""])


@pytest.mark.parametrize("produced", [42, [1], None])
def test_a_callable_returning_something_else_is_a_clear_error(produced: Any) -> None:
    def bad(user_id: int) -> Any:
        return produced

    with pytest.raises(TypeError, match="must return a str or an iterable of str"):
        Tags(bad).of((1,), {})


def test_invalidate_tags_refuses_non_strings() -> None:
    store = Store(MemoryBackend())
    with pytest.raises(TypeError, match="a tag is a str"):
        store.invalidate_tags([1])  # type: ignore[list-item]


Call = Callable[..., Any]
