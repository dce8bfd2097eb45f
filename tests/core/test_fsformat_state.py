"""The file-system backend's on-disk format, byte by byte, and its file helpers.

Files in a cache folder may be written by another version, cut short by a crash, or be
anything at all: every malformed record must decode to ``None``, never to an exception or
to a value.
"""

from __future__ import annotations

import math
import os
import stat
import struct
import threading
from pathlib import Path

import pytest

from flask_stash.core.backends import fsformat
from flask_stash.core.backends.fsformat import (
    CREATE_FLAGS,
    LOCK_SUFFIX,
    TEMP_PREFIX,
    Record,
    decode_record,
    discard,
    encode_record,
    is_live,
    key_bytes,
    link_file,
    list_dir,
    peek,
    shard_dirs,
    size_of,
    slurp,
    temp_name,
    unlink_file,
    write_all,
)

HEADER_SIZE = 28


def header(
    expires: float,
    key_len: int,
    value_len: int,
    *,
    magic: bytes = b"STSH",
    version: int = 1,
    pad: bytes = b"\0\0\0",
) -> bytes:
    return (
        magic
        + bytes([version])
        + pad
        + struct.pack("<d", expires)
        + struct.pack("<I", key_len)
        + struct.pack("<Q", value_len)
    )


# -- encoding -----------------------------------------------------------------------------


def test_record_layout_byte_by_byte() -> None:
    data = encode_record("ké", b"\x00value", 1_700_000_012.5)
    assert data == (
        b"STSH"  # magic
        + b"\x01"  # format version
        + b"\x00\x00\x00"  # padding
        + struct.pack("<d", 1_700_000_012.5)  # expiry, little-endian double
        + b"\x03\x00\x00\x00"  # key length in bytes (UTF-8), 4 bytes
        + b"\x06\x00\x00\x00\x00\x00\x00\x00"  # value length, 8 bytes
        + b"k\xc3\xa9"
        + b"\x00value"
    )
    assert len(header(0, 0, 0)) == HEADER_SIZE


def test_no_expiry_is_stored_as_zero() -> None:
    assert encode_record("k", b"v", 0.0)[8:16] == b"\0" * 8


def test_lone_surrogates_in_keys_are_kept() -> None:
    assert key_bytes("a\udc80") == b"a\xed\xb2\x80"
    assert decode_record(encode_record("a\udc80", b"v", 0)) == Record(0, b"a\xed\xb2\x80", b"v")


@pytest.mark.parametrize("value", ["text", bytearray(b"v"), memoryview(b"v"), None])
def test_values_must_be_exactly_bytes(value: object) -> None:
    with pytest.raises(TypeError) as info:
        encode_record("k", value, 0)  # type: ignore[arg-type]
    assert str(info.value) == f"backend values are bytes, not {type(value).__name__}"


@pytest.mark.parametrize("key", [b"k", 1, None])
def test_keys_must_be_str(key: object) -> None:
    with pytest.raises(TypeError) as info:
        key_bytes(key)  # type: ignore[arg-type]
    assert str(info.value) == f"backend keys are str, not {type(key).__name__}"


# -- decoding -----------------------------------------------------------------------------


def test_decode_round_trips() -> None:
    record = decode_record(encode_record("key", b"value", 12.25))
    assert record == Record(12.25, b"key", b"value")
    assert decode_record(encode_record("", b"", 0)) == Record(0.0, b"", b"")


def test_every_truncation_is_malformed() -> None:
    data = encode_record("key", b"value", 5)
    for size in range(len(data)):
        assert decode_record(data[:size]) is None, size


def test_trailing_bytes_are_malformed() -> None:
    assert decode_record(encode_record("key", b"value", 5) + b"\0") is None


@pytest.mark.parametrize(
    "head",
    [
        header(0, 1, 1, magic=b"STSX"),
        header(0, 1, 1, magic=b"stsh"),
        header(0, 1, 1, version=0),
        header(0, 1, 1, version=2),
        header(-1.0, 1, 1),
        header(-0.001, 1, 1),
        header(math.inf, 1, 1),
        header(math.nan, 1, 1),
        header(0, 2, 1),  # lengths that do not add up to the size
        header(0, 0, 1),
        header(0, 1, 0),
        header(0, 2**32 - 1, 2**64 - 1),
    ],
)
def test_malformed_headers_are_none(head: bytes) -> None:
    assert decode_record(head + b"kv") is None


def test_padding_and_small_expiry_are_not_checked() -> None:
    # The pad bytes are reserved: a later writer may use them.
    assert decode_record(header(5e-324, 1, 1, pad=b"xyz") + b"kv") == Record(5e-324, b"k", b"v")


def test_key_and_value_are_split_at_the_key_length() -> None:
    data = header(0, 3, 2) + b"abcde"
    assert decode_record(data) == Record(0, b"abc", b"de")


# -- expiry -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expires", "now", "live"),
    [
        (0, 10**12, True),  # never expires
        (100.0, 99.999, True),
        (100.0, 100.0, False),  # expired at exactly its expiry
        (100.0, 100.001, False),
    ],
)
def test_is_live(expires: float, now: float, live: bool) -> None:
    assert is_live(expires, now) is live


# -- reading files ------------------------------------------------------------------------


def test_slurp_missing_file(tmp_path: Path) -> None:
    assert slurp(str(tmp_path / "nope")) is None


def test_slurp_returns_contents_and_stat(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100_000)
    found = slurp(str(path))
    assert found is not None
    assert found[0] == b"x" * 100_000
    assert found[1].st_size == 100_000
    assert os.path.samestat(found[1], path.stat())


def test_slurp_survives_short_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f"
    path.write_bytes(bytes(range(256)) * 1_000)
    real_read = os.read
    monkeypatch.setattr(fsformat.os, "read", lambda fd, n: real_read(fd, min(n, 1_000)))
    found = slurp(str(path))
    assert found is not None
    assert found[0] == bytes(range(256)) * 1_000


def test_slurp_closes_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    opened, closed = spy_on_files(monkeypatch)
    slurp(str(path))
    assert len(opened) == 1
    assert opened[0] in closed


def spy_on_files(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[int]]:
    """File descriptors opened and closed from now on."""
    opened: list[int] = []
    closed: list[int] = []
    real_open, real_close = os.open, os.close

    def open_(path: str, flags: int, *args: int) -> int:
        opened.append(real_open(path, flags, *args))
        return opened[-1]

    def close(fd: int) -> None:
        closed.append(fd)
        real_close(fd)

    monkeypatch.setattr(fsformat.os, "open", open_)
    monkeypatch.setattr(fsformat.os, "close", close)
    return opened, closed


def test_peek_reads_expiry_and_key(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(encode_record("key", b"v" * 10_000, 42.5))
    found = peek(str(path))
    assert found is not None
    assert found[:2] == (42.5, b"key")
    assert found[2].st_size == HEADER_SIZE + 3 + 10_000


@pytest.mark.parametrize("key_length", [255, 256, 257, 1_000, 70_000])
def test_peek_reads_a_long_key_whole(tmp_path: Path, key_length: int) -> None:
    key = "".join(chr(ord("a") + i % 26) for i in range(key_length))
    path = tmp_path / "f"
    path.write_bytes(encode_record(key, b"value", 0))
    found = peek(str(path))
    assert found is not None
    assert found[:2] == (0.0, key.encode())


def test_peek_missing_file(tmp_path: Path) -> None:
    assert peek(str(tmp_path / "nope")) is None


@pytest.mark.parametrize(
    "data",
    [b"", b"STSH", encode_record("key", b"value", 1)[:-1], header(math.nan, 1, 1) + b"kv"],
)
def test_peek_marks_a_damaged_file(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "f"
    path.write_bytes(data)
    found = peek(str(path))
    assert found is not None
    assert found[:2] == (-1.0, b"")
    assert found[2].st_size == len(data)


def test_peek_closes_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f"
    path.write_bytes(encode_record("k", b"v", 0))
    opened, closed = spy_on_files(monkeypatch)
    peek(str(path))
    assert len(opened) == 1
    assert opened[0] in closed


# -- writing files ------------------------------------------------------------------------


def test_write_all_survives_short_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    monkeypatch.setattr(fsformat.os, "write", lambda fd, data: real_write(fd, data[:7]))
    path = tmp_path / "f"
    fd = os.open(path, CREATE_FLAGS, 0o600)
    try:
        write_all(fd, bytes(range(100)))
    finally:
        os.close(fd)
    assert path.read_bytes() == bytes(range(100))


def test_create_flags_refuse_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(FileExistsError):
        os.open(tmp_path / "f", CREATE_FLAGS, 0o600)


def test_link_file_gives_a_second_name(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"data")
    assert link_file(str(tmp_path / "a"), str(tmp_path / "b")) is True
    assert os.path.samefile(tmp_path / "a", tmp_path / "b")


def test_link_file_never_replaces(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"new")
    (tmp_path / "b").write_bytes(b"old")
    assert link_file(str(tmp_path / "a"), str(tmp_path / "b")) is False
    assert (tmp_path / "b").read_bytes() == b"old"


def test_link_file_without_a_source(tmp_path: Path) -> None:
    assert link_file(str(tmp_path / "gone"), str(tmp_path / "b")) is False
    assert not (tmp_path / "b").exists()


def test_size_of(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"12345")
    assert size_of(str(tmp_path / "f")) == 5
    assert size_of(str(tmp_path / "nope")) is None


def test_unlink_file_ignores_only_a_missing_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    unlink_file(str(tmp_path / "f"))
    assert not (tmp_path / "f").exists()
    unlink_file(str(tmp_path / "f"))
    (tmp_path / "d").mkdir()
    with pytest.raises(OSError):
        unlink_file(str(tmp_path / "d"))


def test_discard_ignores_every_os_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    discard(str(tmp_path / "f"))
    assert not (tmp_path / "f").exists()
    discard(str(tmp_path / "f"))
    (tmp_path / "d").mkdir()
    discard(str(tmp_path / "d"))
    assert (tmp_path / "d").is_dir()


def test_temp_names_are_unique_and_say_who_wrote_them() -> None:
    names = [temp_name() for _ in range(3)]
    assert len(set(names)) == 3
    prefix = f".tmp-{os.getpid()}-{threading.get_ident()}-"
    assert all(name.startswith(prefix) for name in names)
    numbers = [int(name.removeprefix(prefix)) for name in names]
    assert numbers == sorted(numbers)
    assert TEMP_PREFIX == ".tmp-"
    assert LOCK_SUFFIX == ".lock"


# -- folders ------------------------------------------------------------------------------


def test_list_dir(tmp_path: Path) -> None:
    assert list_dir(str(tmp_path / "nope")) == []
    (tmp_path / "a").write_bytes(b"")
    (tmp_path / "b").mkdir()
    assert sorted(item.name for item in list_dir(str(tmp_path))) == ["a", "b"]


def test_shard_dirs_are_two_lowercase_hex_digit_folders(tmp_path: Path) -> None:
    for name in ("00", "a9", "ff", "AB", "0g", "abc", "a", ".tmp"):
        (tmp_path / name).mkdir()
    (tmp_path / "be").write_bytes(b"a file, not a shard")
    (tmp_path / "cd").symlink_to(tmp_path / "00")
    assert sorted(item.name for item in shard_dirs(str(tmp_path))) == ["00", "a9", "ff"]
    assert shard_dirs(str(tmp_path / "nope")) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_reads_as_damaged_without_waiting(tmp_path: Path) -> None:
    path = tmp_path / "fifo"
    os.mkfifo(path)  # a blocking open would wait for a writer forever
    found = slurp(str(path))
    assert found is not None
    assert found[0] == b""
    assert stat.S_ISFIFO(found[1].st_mode)
    peeked = peek(str(path))
    assert peeked is not None
    assert peeked[:2] == (-1.0, b"")


def test_regular_files_read_whole_despite_non_blocking_opens(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(encode_record("k", b"v" * 1_000, 0))
    found = slurp(str(path))
    assert found is not None
    assert decode_record(found[0]) == Record(0, b"k", b"v" * 1_000)


def test_a_folder_reads_as_damaged(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    found = slurp(str(tmp_path / "d"))
    assert found is not None
    assert found[0] == b""
    assert stat.S_ISDIR(found[1].st_mode)
    peeked = peek(str(tmp_path / "d"))
    assert peeked is not None
    assert peeked[:2] == (-1.0, b"")
