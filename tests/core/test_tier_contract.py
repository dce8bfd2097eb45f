"""The backend contract on the in-process tier, over every kind of remote backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from flask_stash.core.api import Backend
from flask_stash.core.backends.filesystem import FileSystemBackend
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.tier import TieredBackend
from flask_stash.testing import BackendContract, FakeClock

from . import test_memcached, test_redis_family
from .test_memcached import big_item_nodes  # noqa: F401 (the memcached contract's servers)
from .tierkit import synced

pytestmark = pytest.mark.server


class TestTierOverMemory(BackendContract):
    """No channel: the tier, its clock and its bounds alone (the remote follows the clock)."""

    def make_backend(self, clock: FakeClock) -> Backend:
        return TieredBackend(MemoryBackend(threshold=0, clock=clock), clock=clock)


class TestTierOverFileSystem(BackendContract):
    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self.cache_dir = tmp_path / "cache"

    def make_backend(self, clock: FakeClock) -> Backend:
        remote = FileSystemBackend(str(self.cache_dir), threshold=0, clock=clock)
        return TieredBackend(remote, clock=clock)


class TestTierOverRedisFamily(test_redis_family.TestRedisFamilyContract):
    def make_backend(self, clock: FakeClock) -> Backend:
        tier = TieredBackend(self.flavour.make(self.namespace))
        synced(tier)
        return tier


class TestTierOverMemcached(test_memcached.TestMemcachedTwoNodes):
    def make_backend(self, clock: FakeClock) -> Backend:
        return TieredBackend(super().make_backend(clock))

    def test_capabilities(self, backend: Backend) -> None:
        super().test_capabilities(backend)
        assert isinstance(backend, TieredBackend)
        assert backend.channel is None
        assert backend.synced
