"""Version stamps kept beside an in-process backend (``core/stamps.py``)."""

from __future__ import annotations

import pytest

from flask_stash.core.stamps import STAMP_LIMIT, LocalStamps


def test_a_missing_stamp_is_no_version() -> None:
    stamps = LocalStamps()
    assert stamps.version(["f"]) is None
    assert stamps.version(["f", "i"]) is None
    assert len(stamps) == 0


def test_create_makes_the_missing_stamps_and_keeps_the_others() -> None:
    stamps = LocalStamps()
    first = stamps.create(["f"])
    assert stamps.version(["f"]) == first
    both = stamps.create(["f", "i"])
    assert both == first + b"|" + stamps.tokens["i"]
    assert stamps.version(["f", "i"]) == both
    assert stamps.create(["f", "i"]) == both
    assert stamps.version(["f", "absent"]) is None


def test_bump_gives_a_new_stamp() -> None:
    stamps = LocalStamps()
    before = stamps.create(["f"])
    stamps.bump("f")
    assert stamps.version(["f"]) not in (None, before)
    stamps.bump("new")  # bumping a stamp that never existed creates it
    assert stamps.version(["new"]) is not None


def test_past_the_limit_the_oldest_stamp_goes() -> None:
    stamps = LocalStamps(limit=2)
    stamps.create(["a"])
    stamps.create(["b"])
    stamps.bump("a")  # a is now the newest
    stamps.create(["c"])
    assert stamps.version(["b"]) is None
    assert stamps.version(["a"]) is not None
    assert stamps.version(["c"]) is not None
    assert len(stamps) == 2


def test_the_limit_holds_an_entry_s_two_stamps() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        LocalStamps(limit=1)
    assert LocalStamps().limit == STAMP_LIMIT
