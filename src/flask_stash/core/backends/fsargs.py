"""Checks of the file-system backend's constructor arguments.

Each raises :class:`~flask_stash.core.errors.ConfigurationError` on a bad argument, so that
misconfiguration fails when the backend is built, not at its first read or write.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from flask_stash.core.backends.fsformat import HEX_DIGITS
from flask_stash.core.errors import ConfigurationError


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigurationError(message)


def check_args(
    threshold: int,
    timeout: float | None,
    mode: int | None,
    max_bytes: int | None,
    clock: Callable[[], float],
) -> int:
    """Validate the constructor's plain arguments; return the file mode to use."""
    _require(_is_int(threshold) and threshold >= 0, f"threshold {threshold!r}: not an int >= 0")
    _require(
        max_bytes is None or (_is_int(max_bytes) and max_bytes > 0),
        f"max_bytes {max_bytes!r}: not a positive int or None",
    )
    _require(
        timeout is None or ((_is_int(timeout) or isinstance(timeout, float)) and timeout >= 0),
        f"default_timeout {timeout!r}: not a number >= 0 or None",
    )
    mode = 0o600 if mode is None else mode  # None is cachelib's default
    _require(
        _is_int(mode) and 0o600 <= mode <= 0o777 and mode & 0o600 == 0o600,
        f"mode {mode!r}: not a permission int like 0o600 that lets the owner read and write",
    )
    _require(callable(clock), f"clock {clock!r}: not callable")
    return mode


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def make_dir(cache_dir: object) -> str:
    path = os.fspath(cache_dir) if isinstance(cache_dir, (str, os.PathLike)) else None
    if not isinstance(path, str):
        raise ConfigurationError(f"cache_dir {cache_dir!r}: not a str path")
    path = os.path.abspath(path)
    _require(not os.path.isfile(path), f"cache_dir {path!r} is a file, not a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot create cache_dir {path!r}: {exc}") from exc
    return path


def digest_length(hash_method: object) -> int:
    try:
        digest = hash_method(b"flask-stash").hexdigest()  # type: ignore[operator]
    except Exception as exc:
        raise ConfigurationError(f"hash_method must be like hashlib.sha256: {exc}") from exc
    ok = isinstance(digest, str) and len(digest) >= 4 and not set(digest) - HEX_DIGITS
    _require(ok, "hash_method(...).hexdigest() must return lowercase hex")
    return len(digest)
