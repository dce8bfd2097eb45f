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
from flask_stash.core.tags import Tags, checked, tags_of

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


# The option's rules, unit by unit: order, repeats, exact messages.

NOT_A_TAG = "tags are strings or callables of the call's arguments, not "


def test_fixed_tags_keep_their_order_without_repeats() -> None:
    tags = Tags(["b", "a", "b", "c", "a"])
    assert tags.fixed == ("b", "a", "c")
    assert tags.dynamic == ()
    assert tags.of((1,), {"x": 2}) == ("b", "a", "c")
    assert Tags(tag for tag in ["g", "h"]).fixed == ("g", "h")  # any iterable, read once


def test_a_tags_object_is_true_when_it_holds_any_tag() -> None:
    assert not Tags(None)
    assert not Tags([])
    assert Tags("a")
    assert Tags(lambda: "a")  # callables only
    only_callables = tags_of(lambda: "a")
    assert only_callables is not None
    assert only_callables.fixed == ()
    assert tags_of("a") is not None


def test_a_single_callable_is_one_source() -> None:
    tags = Tags(lambda user_id, *, detail: [f"user:{user_id}", f"detail:{detail}"])
    assert tags.fixed == ()
    assert tags.of((3,), {"detail": "full"}) == ("user:3", "detail:full")


def test_callables_receive_the_call_arguments_and_every_one_counts() -> None:
    tags = Tags(["x", lambda a, b=0: f"a:{a}", lambda a, b=0: f"b:{b}", lambda a, b=0: "x"])
    assert tags.of_call((1,), {"b": 2}) == ("a:1", "b:2", "x")  # the fixed ones left out
    assert tags.of((1,), {"b": 2}) == ("x", "a:1", "b:2")  # fixed first, without repeats


def test_a_str_subclass_is_one_tag_not_its_characters() -> None:
    class Name(str):
        pass

    assert Tags(lambda: Name("user")).of((), {}) == ("user",)
    assert Tags(lambda: [Name("ab"), "c"]).of((), {}) == ("ab", "c")


def test_a_callable_returning_an_empty_tag_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^a tag cannot be empty$"):
        Tags(lambda: "").of((), {})
    with pytest.raises(ValueError, match=r"^a tag cannot be empty$"):
        Tags(lambda: ["a", ""]).of((), {})


def named_source(user_id: int) -> Any:
    return [user_id]


@pytest.mark.parametrize(
    ("produced", "shown"), [(42, "42"), ([1], "1"), (None, "None"), (["a", 2.5], "2.5")]
)
def test_the_callables_error_names_it_and_what_was_wrong(produced: Any, shown: str) -> None:
    def source(user_id: int) -> Any:
        return produced

    with pytest.raises(TypeError) as caught:
        Tags(source).of((1,), {})
    assert str(caught.value) == (
        "the tags callable test_the_callables_error_names_it_and_what_was_wrong.<locals>"
        f".source must return a str or an iterable of str, not {shown}"
    )
    assert caught.value.__cause__ is None


def test_a_callable_without_a_qualified_name_is_shown_by_its_repr() -> None:
    class Source:
        def __call__(self, user_id: int) -> Any:
            return 7

        def __repr__(self) -> str:
            return "<Source>"

    with pytest.raises(TypeError) as caught:
        Tags(Source()).of((1,), {})
    assert str(caught.value) == (
        "the tags callable <Source> must return a str or an iterable of str, not 7"
    )


def test_a_type_error_inside_the_tags_iterable_is_not_hidden() -> None:
    def broken() -> Any:
        yield "a"
        raise TypeError("the data layer failed")

    with pytest.raises(TypeError, match=r"^the data layer failed$"):
        Tags(broken).of((), {})


@pytest.mark.parametrize(
    ("option", "shown"),
    [(42, "42"), ([b"x"], "b'x'"), (b"x", "b'x'"), ({"a": 1}, "{'a': 1}"), (["a", 3], "3")],
)
def test_bad_options_are_refused_with_the_exact_message(option: Any, shown: str) -> None:
    with pytest.raises(TypeError) as caught:
        Tags(option)
    assert str(caught.value) == NOT_A_TAG + shown


def test_checked_messages() -> None:
    assert checked("t") == "t"
    with pytest.raises(TypeError) as caught:
        checked(1)
    assert str(caught.value) == "a tag is a str, not 1"
    with pytest.raises(TypeError) as caught:
        checked(1, named_source)
    assert str(caught.value) == (
        "the tags callable named_source must return a str or an iterable of str, not 1"
    )
    with pytest.raises(ValueError) as empty:
        checked("", named_source)
    assert str(empty.value) == "a tag cannot be empty"


def test_the_tags_of_simple_arguments_are_remembered() -> None:
    store = Store(MemoryBackend())
    asked: list[int] = []

    def tag_of(user_id: int) -> str:
        asked.append(user_id)
        return f"user:{user_id}"

    computed: list[int] = []

    @memoize(store, 60, tags=tag_of)
    def profile(user_id: int) -> int:
        computed.append(user_id)
        return user_id

    for _ in range(3):
        profile(1)
    assert asked == [1]  # the stamps of profile(1) are built once
    store.invalidate_tags(["user:1"])
    profile(1)
    assert asked == [1]  # the stamp keys are the same; their values changed
    assert computed == [1, 1]
