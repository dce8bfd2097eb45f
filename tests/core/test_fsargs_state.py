"""The file-system backend's argument checks: each bound exactly, and what the error says."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pytest

from flask_stash.core.backends.fsargs import check_args, digest_length, make_dir
from flask_stash.core.errors import ConfigurationError

GOOD: dict[str, Any] = {
    "threshold": 500,
    "timeout": 300,
    "mode": 0o600,
    "max_bytes": None,
    "clock": time.time,
}


def check(**changes: Any) -> int:
    return check_args(**{**GOOD, **changes})


# -- accepted at the edges ----------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0, 1, 10**9])
def test_threshold_accepts_any_int_from_zero(threshold: int) -> None:
    assert check(threshold=threshold) == 0o600


@pytest.mark.parametrize("max_bytes", [None, 1, 10**12])
def test_max_bytes_accepts_none_or_any_positive_int(max_bytes: int | None) -> None:
    assert check(max_bytes=max_bytes) == 0o600


@pytest.mark.parametrize("timeout", [None, 0, 0.5, 1, 300, 2.5e9])
def test_default_timeout_accepts_none_or_any_number_from_zero(timeout: float | None) -> None:
    assert check(timeout=timeout) == 0o600


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644, 0o660, 0o666, 0o700, 0o755, 0o777])
def test_mode_accepts_permissions_letting_the_owner_read_and_write(mode: int) -> None:
    assert check(mode=mode) == mode


def test_mode_none_means_owner_only() -> None:
    assert check(mode=None) == 0o600


# -- refused, with a message naming the argument and the value ----------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"threshold": -1}, "threshold -1: not an int >= 0"),
        ({"threshold": 1.0}, "threshold 1.0: not an int >= 0"),
        ({"threshold": True}, "threshold True: not an int >= 0"),
        ({"max_bytes": 0}, "max_bytes 0: not a positive int or None"),
        ({"max_bytes": 1.0}, "max_bytes 1.0: not a positive int or None"),
        ({"max_bytes": True}, "max_bytes True: not a positive int or None"),
        ({"timeout": -0.001}, "default_timeout -0.001: not a number >= 0 or None"),
        ({"timeout": "300"}, "default_timeout '300': not a number >= 0 or None"),
        ({"timeout": True}, "default_timeout True: not a number >= 0 or None"),
        ({"mode": 0o577}, "mode 383: not a permission int like 0o600"),
        ({"mode": 0o1000}, "mode 512: not a permission int like 0o600"),
        ({"mode": 0o400}, "mode 256: not a permission int like 0o600"),
        ({"mode": 0o200}, "mode 128: not a permission int like 0o600"),
        ({"mode": 384.0}, "mode 384.0: not a permission int like 0o600"),
        ({"mode": True}, "mode True: not a permission int like 0o600"),
        ({"clock": 12}, "clock 12: not callable"),
    ],
)
def test_bad_argument_is_named_in_the_error(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        check(**changes)
    assert str(info.value).startswith(message)


def test_mode_error_says_what_is_expected() -> None:
    with pytest.raises(ConfigurationError) as info:
        check(mode=0o444)
    expected = "mode 292: not a permission int like 0o600 that lets the owner read and write"
    assert str(info.value) == expected


# -- hash_method --------------------------------------------------------------------------


class HexOf:
    """A hash object whose hexdigest is whatever the test says."""

    def __init__(self, digest: object) -> None:
        self.digest = digest

    def hexdigest(self) -> object:
        return self.digest


@pytest.mark.parametrize(
    ("hash_method", "length"),
    [(hashlib.sha256, 64), (hashlib.md5, 32), (hashlib.sha1, 40), (lambda d: HexOf("0a9f"), 4)],
)
def test_digest_length_is_the_hex_digest_length(hash_method: Any, length: int) -> None:
    assert digest_length(hash_method) == length


@pytest.mark.parametrize(
    "digest",
    ["abc", "", "0A9F", "0a9g", "0a9f ", b"0a9f", 1234, None],
)
def test_hash_method_must_give_lowercase_hex_of_four_or_more(digest: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        digest_length(lambda data: HexOf(digest))
    assert str(info.value) == "hash_method(...).hexdigest() must return lowercase hex"


def test_hash_method_that_cannot_hash_says_why() -> None:
    with pytest.raises(ConfigurationError) as info:
        digest_length("sha256")
    expected = "hash_method must be like hashlib.sha256: 'str' object is not callable"
    assert str(info.value) == expected
    assert isinstance(info.value.__cause__, TypeError)


# -- cache_dir ----------------------------------------------------------------------------


def test_make_dir_creates_nested_folders_and_returns_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert make_dir("a/b") == str(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()
    assert make_dir(tmp_path / "a") == str(tmp_path / "a")  # existing, as a PathLike


@pytest.mark.parametrize("cache_dir", [42, b"/tmp/cache", None])
def test_make_dir_wants_a_str_path(cache_dir: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_dir(cache_dir)
    assert str(info.value) == f"cache_dir {cache_dir!r}: not a str path"


def test_make_dir_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigurationError) as info:
        make_dir(tmp_path / "f")
    assert str(info.value) == f"cache_dir {str(tmp_path / 'f')!r} is a file, not a folder"


def test_make_dir_reports_why_it_cannot_create(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    target = os.path.join(tmp_path, "f", "sub")
    with pytest.raises(ConfigurationError) as info:
        make_dir(target)
    assert str(info.value).startswith(f"cannot create cache_dir {target!r}: ")
    assert isinstance(info.value.__cause__, NotADirectoryError)
