"""Redis single, Sentinel and Cluster behind one parametrized fixture (``redisfamily.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flask_stash.core.backends.redis import RedisCommands

from . import redisfamily
from .redisfamily import Flavour


@pytest.fixture(params=redisfamily.NAMES)
def redis_flavour(request: pytest.FixtureRequest) -> Flavour:
    """Each flavour on the session's servers, started only when a test asks for it."""
    name = request.param
    if name == "single":
        return redisfamily.single(request.getfixturevalue("redis_single"))
    if name == "sentinel":
        return redisfamily.sentinel(request.getfixturevalue("redis_sentinel"))
    return redisfamily.cluster(request.getfixturevalue("redis_cluster"))


@pytest.fixture
def redis_backend(redis_flavour: Flavour) -> Iterator[RedisCommands[Any]]:
    """A backend of each flavour under a namespace of its own, cleared afterwards."""
    with redis_flavour.make(redisfamily.unique()) as backend:
        yield backend
        backend.clear()
