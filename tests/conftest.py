from __future__ import annotations

import pytest

from flask_stash.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
