"""RedisSentinelBackend's configuration, no server needed: where the data nodes' and the
sentinels' options go, and what the defaults are (Flask-Caching's)."""

from __future__ import annotations

from typing import Any

import pytest

from flask_stash.core.backends.redis_sentinel import RedisSentinelBackend
from flask_stash.core.errors import ConfigurationError


def test_defaults_are_a_local_sentinel_and_mymaster() -> None:
    with RedisSentinelBackend() as backend:  # nothing is connected before use
        sentinel = backend.sentinel.sentinels[0].get_connection_kwargs()
        assert (sentinel["host"], sentinel["port"]) == ("127.0.0.1", 26379)
        pool = backend.client.connection_pool
        assert pool.service_name == "mymaster"
        assert (pool.connection_kwargs["db"], pool.connection_kwargs["password"]) == (0, None)
        assert backend.namespace == ""
        assert backend.reads_from_replicas is False
        assert backend.reader is backend.client


def test_data_nodes_and_sentinels_get_their_own_settings() -> None:
    backend = RedisSentinelBackend(
        sentinels="s1:26380",
        service="cache",
        db=3,
        password="data-pw",
        sentinel_password="sentinel-pw",
        read_from_replicas=True,
        socket_timeout=2.5,
        sentinel_options={"socket_connect_timeout": 0.5},
    )
    with backend:
        watcher = backend.sentinel.sentinels[0].get_connection_kwargs()
        assert watcher["password"] == "sentinel-pw"
        assert (watcher["socket_timeout"], watcher["socket_connect_timeout"]) == (1.0, 0.5)
        for client in (backend.client, backend.reader):
            kwargs = client.connection_pool.connection_kwargs
            assert (kwargs["db"], kwargs["password"]) == (3, "data-pw")
            assert kwargs["socket_timeout"] == 2.5
            assert client.connection_pool.service_name == "cache"
        assert backend.reader is not backend.client
        assert backend.reads_from_replicas is True


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bogus": 1}, "RedisSentinelBackend: unknown Redis option(s) bogus"),
        ({"sentinel_options": {"bogus": 1}}, "sentinel_options: unknown Redis option(s) bogus"),
    ],
)
def test_unknown_options_are_named_with_where_they_went(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        RedisSentinelBackend(sentinels="s1", **options)
    assert str(raised.value) == message
