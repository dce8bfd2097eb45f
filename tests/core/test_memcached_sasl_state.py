"""SASLMemcachedBackend's own wiring (pylibmc options, its pool, its errors, TTLs), on a
real memcached without authentication: pylibmc skips SASL when no user is given, and a
plain server lets a text-protocol client look behind the backend. The SASL handshake
itself is checked in test_contract_sasl_memcached.py.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymemcache.client.base import Client

from flask_stash.core.backends.memcached import SASLMemcachedBackend, wire_key
from flask_stash.core.errors import (
    BackendError,
    ConfigurationError,
    EntryTooLarge,
    MissingDependencyError,
)

from .. import servers
from .memcachedkit import remaining_ttl, text_client

# As in test_contract_sasl_memcached.py: pylibmc reads SASL_PATH once, when imported.
DEBIAN_SASL_PLUGINS = "/usr/lib/x86_64-linux-gnu/sasl2"
if Path(DEBIAN_SASL_PLUGINS).is_dir():
    os.environ.setdefault("SASL_PATH", DEBIAN_SASL_PLUGINS)
if os.environ.get("CI") != "true":  # `make test` installs it: a missing one fails in CI
    pytest.importorskip("pylibmc", reason="the SASL backend needs pylibmc")
pytestmark = pytest.mark.server


@pytest.fixture
def node(memcached_pair: list[servers.Server]) -> servers.Server:
    return memcached_pair[0]


@pytest.fixture
def backend(node: servers.Server) -> Iterator[SASLMemcachedBackend]:
    with contextlib.closing(SASLMemcachedBackend([node.address])) as made:
        yield made


@pytest.fixture
def raw(node: servers.Server) -> Iterator[Client]:
    """A text-protocol client on the same server, to read what the backend stored."""
    with text_client(node) as client:
        yield client


@pytest.fixture
def key() -> str:
    return f"sasl:{uuid.uuid4().hex}"


def closed_address() -> str:
    return f"{servers.HOST}:{servers.free_port()}"


# -- configuration ----------------------------------------------------------------------------


def test_missing_pylibmc_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pylibmc", None)  # import pylibmc -> ImportError
    with pytest.raises(MissingDependencyError) as caught:
        SASLMemcachedBackend(["127.0.0.1:11211"])
    assert str(caught.value) == "SASLMemcachedCache needs pylibmc: pip install pylibmc"


def test_url_reaches_the_server(node: servers.Server, raw: Client, key: str) -> None:
    with contextlib.closing(SASLMemcachedBackend(url=f"memcached://{node.address}")) as made:
        assert made.servers == [node.address]
        made.set(key, b"via url", 60)
    assert raw.get(wire_key(key)) == b"via url"


def test_given_behaviors_keep_compare_and_set(node: servers.Server, key: str) -> None:
    """A caller's ``behaviors`` are added to the ``cas`` the backend needs, not replacing
    it: negative counters and lock release go through gets/cas."""
    given = SASLMemcachedBackend([node.address], behaviors={"tcp_nodelay": True})
    with contextlib.closing(given) as made:
        assert made.incr(key, -2, 60) == -2
        assert made.incr(key, 5, 60) == 3
        assert made.acquire_lock(key, "me", 5)
        assert made.release_lock(key, "me")
        assert made.acquire_lock(key, "next", 5)  # the release freed it


def test_unknown_options_are_refused(node: servers.Server) -> None:
    with pytest.raises(TypeError, match="bogus"):
        SASLMemcachedBackend([node.address], bogus=1)


@pytest.mark.parametrize("size", [0, -1, 1.5, True])
def test_bad_pool_size_is_named(node: servers.Server, size: object) -> None:
    with pytest.raises(ConfigurationError, match=r"^pool_size must be an integer >= 1"):
        SASLMemcachedBackend([node.address], pool_size=size)  # type: ignore[arg-type]


# -- sizes and errors ---------------------------------------------------------------------


def test_max_value_size_is_checked_before_sending(node: servers.Server, key: str) -> None:
    with contextlib.closing(SASLMemcachedBackend([node.address], max_value_size=10)) as made:
        with pytest.raises(EntryTooLarge, match="limit of 10"):
            made.set(key, b"x" * 11, 60)
        made.set(key, b"x" * 10, 60)
        assert made.get(key) == b"x" * 10


def test_server_size_refusal_is_entry_too_large(node: servers.Server, key: str) -> None:
    import pylibmc

    # Our own limit let it through; the server's (-I 1m) does not.
    roomy = SASLMemcachedBackend([node.address], max_value_size=4 * 1024 * 1024)
    with contextlib.closing(roomy) as made:
        with pytest.raises(EntryTooLarge) as caught:
            made.set(key, b"x" * (2 * 1024 * 1024), 60)
        assert str(caught.value).startswith("memcached refused a value")
        assert isinstance(caught.value.original, pylibmc.TooBig)
        made.set(key, b"fine", 60)  # the connection is still good
        assert made.get(key) == b"fine"


def test_unreachable_server_is_a_backend_error() -> None:
    import pylibmc

    made = SASLMemcachedBackend([closed_address()])
    with contextlib.closing(made), pytest.raises(BackendError) as caught:
        made.get("k")
    assert str(caught.value).startswith("pylibmc: ")
    assert isinstance(caught.value.original, pylibmc.Error)


def test_failed_clear_names_the_servers() -> None:
    addresses = [closed_address(), closed_address()]
    made = SASLMemcachedBackend(addresses)
    with contextlib.closing(made), pytest.raises(BackendError) as caught:
        made.clear()
    assert str(caught.value).startswith(f"flush_all failed on {','.join(addresses)}: pylibmc: ")


# -- the connection pool ------------------------------------------------------------------


def test_pool_holds_pool_size_connections(node: servers.Server) -> None:
    """``pool_size`` callers can each hold a connection at once, without waiting (an empty
    pool would make every call wait forever)."""
    with contextlib.closing(SASLMemcachedBackend([node.address], pool_size=2)) as made:
        pool = made._client._pool
        with pool.reserve(block=False) as one, pool.reserve(block=False) as two:
            assert one is not two
        assert pool.qsize() == 2  # both given back


def call_while_the_pool_is_taken(made: SASLMemcachedBackend, key: str) -> tuple[bool, Any]:
    """``made.get(key)`` in another thread while this one holds a pooled connection:
    whether that call was still waiting after a moment, and its outcome."""
    outcome: list[Any] = []

    def reader() -> None:
        try:
            outcome.append(made.get(key))
        except Exception as exc:  # reported to the test, not lost in the thread
            outcome.append(exc)

    worker = threading.Thread(target=reader)
    with made._client._pool.reserve():
        worker.start()
        worker.join(0.3)
        waited = worker.is_alive()
    worker.join(10)
    return waited, outcome[0]


def test_default_pool_is_one_connection_that_callers_wait_for(
    backend: SASLMemcachedBackend, key: str
) -> None:
    backend.set(key, b"v", 60)
    waited, outcome = call_while_the_pool_is_taken(backend, key)
    assert waited  # one connection, held: the call waits for it instead of failing
    assert outcome == b"v"


def test_exhausted_non_blocking_pool_is_a_backend_error(node: servers.Server, key: str) -> None:
    impatient = SASLMemcachedBackend([node.address], pool_size=1, pool_blocking=False)
    with contextlib.closing(impatient) as made:
        _, outcome = call_while_the_pool_is_taken(made, key)
    assert isinstance(outcome, BackendError)  # counted and failed open, like an outage
    assert str(outcome) == "pylibmc: no free connection in the pool"
    assert isinstance(outcome.original, queue.Empty)


# -- TTLs and counters, as the server holds them ---------------------------------------------


def test_ttls_reach_the_server(backend: SASLMemcachedBackend, raw: Client, key: str) -> None:
    backend.set(key + "s", b"v", 100)
    backend.set_many({key + "m1": b"1", key + "m2": b"2"}, 200)
    assert backend.add(key + "a", b"v", 300)
    backend.set(key + "forever", b"v", None)
    assert remaining_ttl(raw, wire_key(key + "s")) in range(98, 101)
    assert remaining_ttl(raw, wire_key(key + "m1")) in range(198, 201)
    assert remaining_ttl(raw, wire_key(key + "m2")) in range(198, 201)
    assert remaining_ttl(raw, wire_key(key + "a")) in range(298, 301)
    assert remaining_ttl(raw, wire_key(key + "forever")) == -1


def test_native_increment_keeps_the_expiry(
    backend: SASLMemcachedBackend, raw: Client, key: str
) -> None:
    assert backend.incr(key, 3, 60) == 3  # absent: created with the TTL
    assert backend.incr(key, 4, None) == 7  # memcached's incr: the expiry stays
    assert remaining_ttl(raw, wire_key(key)) in range(58, 61)
    assert raw.get(wire_key(key)) == b"7"


def test_negative_counter_keeps_counting_and_the_server_usable(
    backend: SASLMemcachedBackend, key: str
) -> None:
    """memcached's binary ``incr`` refuses "-2"; libmemcached then marked the server failed,
    and every call failed for two seconds: the compare-and-set fallback included."""
    assert backend.incr(key, -2, 60) == -2
    assert backend.incr(key, 5, 60) == 3
    backend.set(key + "other", b"v", 60)
    assert backend.get(key + "other") == b"v"
    backend.set(key + "text", b"abc", 60)
    with pytest.raises(TypeError, match="integer"):
        backend.incr(key + "text", 1, 60)
    assert backend.get(key) == b"3"
