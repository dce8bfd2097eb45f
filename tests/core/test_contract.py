"""The contract suite on every local backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from flask_stash.core.api import Backend
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.backends.null import NullBackend
from flask_stash.testing import BackendContract, FakeClock


class TestMemoryBackend(BackendContract):
    def make_backend(self, clock: FakeClock) -> Backend:
        return MemoryBackend(threshold=0, clock=clock)


class TestFileSystemBackend(BackendContract):
    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self.cache_dir = tmp_path / "cache"

    def make_backend(self, clock: FakeClock) -> Backend:
        from flask_stash.core.backends.filesystem import FileSystemBackend

        return FileSystemBackend(str(self.cache_dir), threshold=0, clock=clock)


class TestNullBackend(BackendContract):
    stores_data = False

    def make_backend(self, clock: FakeClock) -> Backend:
        return NullBackend()
