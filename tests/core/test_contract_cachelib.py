"""The contract suite on :class:`CachelibBackend` over real cachelib caches.

cachelib reads ``time.time()`` itself; its modules' ``time`` is pointed at the suite's fake
clock, so expiry is tested deterministically, as for our own backends.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flask_stash.core.api import Backend
from flask_stash.core.backends.cachelib import CachelibBackend
from flask_stash.testing import BackendContract, FakeClock

cachelib = pytest.importorskip("cachelib")


class CachelibContract(BackendContract):
    module = ""

    @pytest.fixture(autouse=True)
    def _cachelib_follows_the_clock(
        self, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(f"cachelib.{self.module}.time", clock)


class TestCachelibSimpleCache(CachelibContract):
    module = "simple"

    def make_backend(self, clock: FakeClock) -> Backend:
        return CachelibBackend(cachelib.SimpleCache(threshold=10_000))


class TestCachelibFileSystemCache(CachelibContract):
    module = "file"

    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self.cache_dir = tmp_path / "cachelib"

    def make_backend(self, clock: FakeClock) -> Backend:
        return CachelibBackend(cachelib.FileSystemCache(str(self.cache_dir), threshold=0))
