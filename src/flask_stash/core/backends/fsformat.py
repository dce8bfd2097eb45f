"""The file-system backend's on-disk entry format and the small file utilities it uses.

An entry file is a fixed header (:data:`_HEADER`), the key, then the value. Temp files
(:data:`TEMP_PREFIX`) are written first and then renamed or linked into place; lock files
are entries named with :data:`LOCK_SUFFIX`. See :mod:`flask_stash.core.backends.filesystem`.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import stat
import struct
import threading
from typing import NamedTuple

#: magic, format version, 3 pad bytes, expiry (Unix seconds, 0 = never), key length,
#: value length. The lengths must add up to the file size, which catches truncation.
_HEADER = struct.Struct("<4sB3xdIQ")
_MAGIC = b"STSH"
_VERSION = 1

_BINARY: int = getattr(os, "O_BINARY", 0)
# Non-blocking, so that a FIFO planted under an entry's name cannot hang a read forever
# (regular files ignore the flag); anything but a regular file is then read as damaged.
_READ = os.O_RDONLY | _BINARY | getattr(os, "O_NONBLOCK", 0)
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY
HEX_DIGITS = frozenset("0123456789abcdef")
TEMP_PREFIX = ".tmp-"
LOCK_SUFFIX = ".lock"
_temp_counter = itertools.count()


class Record(NamedTuple):
    """An entry (or lock) file's contents: expiry (0: never), key, value."""

    expires: float
    key: bytes
    value: bytes


# -- entry format ---------------------------------------------------------------------------


def encode_record(key: str, value: bytes, expires: float) -> bytes:
    if type(value) is not bytes:
        raise TypeError(f"backend values are bytes, not {type(value).__name__}")
    raw_key = key_bytes(key)
    header = _HEADER.pack(_MAGIC, _VERSION, expires, len(raw_key), len(value))
    return b"".join((header, raw_key, value))


def _parse_header(head: bytes, file_size: int) -> tuple[float, int] | None:
    """(expiry, key length) from a well-formed header, else None."""
    if len(head) < _HEADER.size:
        return None
    magic, version, expires, key_len, value_len = _HEADER.unpack_from(head)
    if magic != _MAGIC or version != _VERSION or not 0 <= expires < math.inf:
        return None
    return (expires, key_len) if _HEADER.size + key_len + value_len == file_size else None


def decode_record(data: bytes) -> Record | None:
    parsed = _parse_header(data, len(data))
    if parsed is None:
        return None
    end = _HEADER.size + parsed[1]
    return Record(parsed[0], data[_HEADER.size : end], data[end:])


def is_live(expires: float, now: float) -> bool:
    return not expires or expires > now


def key_bytes(key: str) -> bytes:
    if type(key) is not str:
        raise TypeError(f"backend keys are str, not {type(key).__name__}")
    return key.encode("utf-8", "surrogatepass")


# -- file helpers ---------------------------------------------------------------------------


def slurp(path: str) -> tuple[bytes, os.stat_result] | None:
    """Contents and stat of the file at ``path``, or None if there is none."""
    try:
        fd = os.open(path, _READ)
    except FileNotFoundError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return b"", info
        data = os.read(fd, info.st_size)
        if len(data) < info.st_size:  # short reads are legal (network file systems)
            data += b"".join(iter(lambda: os.read(fd, 1 << 16), b""))
        return data, info
    finally:
        os.close(fd)


def peek(path: str) -> tuple[float, bytes, os.stat_result] | None:
    """(expiry, key, stat) without reading the value; expiry -1 for a damaged file."""
    try:
        fd = os.open(path, _READ)
    except FileNotFoundError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return -1.0, b"", info
        head = os.read(fd, _HEADER.size + 256)
        parsed = _parse_header(head, info.st_size)
        if parsed is None:
            return -1.0, b"", info
        key = head[_HEADER.size : _HEADER.size + parsed[1]]
        if len(key) < parsed[1]:  # a long key: fetch the rest
            key += os.read(fd, parsed[1] - len(key))
        return parsed[0], key, info
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def link_file(source: str, target: str) -> bool:
    """Give ``source`` the name ``target`` unless that is taken; never replaces."""
    try:
        os.link(source, target)
    except (FileExistsError, FileNotFoundError):  # taken, or a clear() took our temp
        return False
    return True


def size_of(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None


def unlink_file(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def discard(path: str) -> None:
    # Best-effort cleanup: must not replace the error that is being raised.
    with contextlib.suppress(OSError):
        os.unlink(path)


def temp_name() -> str:
    return f"{TEMP_PREFIX}{os.getpid()}-{threading.get_ident()}-{next(_temp_counter)}"


def list_dir(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except FileNotFoundError:
        return []


def shard_dirs(path: str) -> list[os.DirEntry[str]]:
    return [
        item
        for item in list_dir(path)
        if len(item.name) == 2
        and not set(item.name) - HEX_DIGITS
        and item.is_dir(follow_symlinks=False)
    ]
