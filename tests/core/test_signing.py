"""Signing keys, sealed counters and the "workers do not share a key" alarm (core level)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading

import pytest

from flask_stash.core.api import MISS
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.errors import ConfigurationError, SignatureMismatch, UndecodableEntry
from flask_stash.core.serializers import CustomSerializer, JsonSerializer, PickleSerializer
from flask_stash.core.signing import (
    COUNTER_SCALE,
    CounterSeal,
    MismatchAlarm,
    Signer,
    derive_key,
    parse_integer,
    secret_bytes,
)
from flask_stash.core.stats import KEY_MISMATCH, UNDECODABLE
from flask_stash.core.store import Store
from flask_stash.testing import FakeClock

SERIALIZERS = [PickleSerializer, JsonSerializer]


def test_derived_keys_depend_on_secret_and_label() -> None:
    assert derive_key("dev", b"a") == derive_key(b"dev", b"a")
    assert len(derive_key("dev", b"a")) == 32
    assert derive_key("dev", b"a") != derive_key("dev", b"b")
    assert derive_key("dev", b"a") != derive_key("dew", b"a")
    assert derive_key("dev", b"a") != b"dev"


@pytest.mark.parametrize("make", SERIALIZERS)
def test_every_format_is_authenticated(make: type[PickleSerializer]) -> None:
    serializer = make(signing_key="dev")
    blob = bytearray(serializer.dumps(("value", 1)))
    assert serializer.loads(bytes(blob)) == ("value", 1)
    blob[-2] ^= 0x01
    with pytest.raises(SignatureMismatch):
        serializer.loads(bytes(blob))
    with pytest.raises(UndecodableEntry, match="unsigned"):
        serializer.loads(make().dumps(("value", 1)))


def test_a_mac_for_one_format_is_worthless_for_another() -> None:
    as_json = JsonSerializer(signing_key="dev").dumps([1, 2])
    relabelled = b"fs2s" + as_json[4:]  # the JSON entry's MAC under the pickle marker
    with pytest.raises(SignatureMismatch):
        PickleSerializer(signing_key="dev").loads(relabelled)


def test_custom_serializers_are_signed_too() -> None:
    import json

    serializer = CustomSerializer(json, signing_key="dev")
    assert serializer.signed
    blob = serializer.dumps([1, "a"])
    assert serializer.loads(blob) == [1, "a"]
    with pytest.raises(SignatureMismatch):
        CustomSerializer(json, signing_key="other").loads(blob)


@pytest.mark.parametrize("make", SERIALIZERS)
def test_rotation_reads_entries_signed_with_a_fallback_key(make: type[PickleSerializer]) -> None:
    old = make(signing_key="old")
    rotated = make(signing_key="new", fallback_keys=["old"])
    assert rotated.loads(old.dumps("kept")) == "kept"
    with pytest.raises(SignatureMismatch):
        make(signing_key="old").loads(rotated.dumps("new"))  # written with the new key


# -- sealed counters --------------------------------------------------------------------


def test_counter_seals_depend_on_key_and_backend_key() -> None:
    seal = CounterSeal(Signer.from_secrets("dev", (), b"counter"))
    other = CounterSeal(Signer.from_secrets("other", (), b"counter"))
    raw = parse_integer(seal.encode("p:hits", 41))
    assert raw is not None
    assert raw != 41
    assert seal.decode("p:hits", raw) == 41
    assert seal.decode("p:hits", raw + 3 * COUNTER_SCALE) == 44  # what INCRBY does
    assert seal.decode("p:other", raw) is None  # copied from another key
    assert other.decode("p:hits", raw) is None  # sealed with another secret
    assert seal.decode("p:hits", 999999) is None  # forged
    assert seal.decode("p:hits", parse_integer(seal.encode("p:hits", -7)) or 0) == -7


def test_counters_without_a_key_are_plain_integers() -> None:
    seal = CounterSeal(None)
    assert seal.encode("k", 7) == b"7"
    assert seal.decode("k", 999999) == 999999


@pytest.mark.parametrize(
    ("blob", "expected"),
    [(b"7", 7), (b"-12", -12), (b"0", 0), (b"", None), (b"-", None), (b"1.5", None),
     (b" 7", None), (b"\xd9\xa3", None), (b"9" * 21, None), (b"fs1p7", None)],
)  # fmt: skip
def test_parse_integer(blob: bytes, expected: int | None) -> None:
    assert parse_integer(blob) == expected


@pytest.mark.parametrize("make", SERIALIZERS)
def test_store_counters_round_trip_and_refuse_forged_integers(
    make: type[PickleSerializer],
) -> None:
    backend = MemoryBackend()
    store = Store(backend, serializer=make(signing_key="dev"), key_prefix="p:")
    assert store.incr("hits") == 1
    assert store.incr("hits", 5) == 6
    assert store.incr("hits", -10) == -4
    assert store.get("hits") == -4
    assert store.get_many(["hits"]) == [-4]
    backend.set("p:balance", b"999999", None)  # forged by whoever can write to the backend
    assert store.get("balance") is MISS
    assert store.stats.get(UNDECODABLE) == 1
    # An increment replaces the forged integer with a counter of ours.
    assert store.incr("balance", 2) == 2
    assert store.get("balance") == 2


def test_set_then_incr_converts_the_entry_to_a_counter() -> None:
    store = Store(MemoryBackend(), serializer=PickleSerializer(signing_key="dev"))
    store.set("n", 5)
    assert store.incr("n") == 6
    assert store.get("n") == 6
    store.set("s", "text")
    with pytest.raises(TypeError, match="does not hold an integer"):
        store.incr("s")


def test_counters_survive_key_rotation() -> None:
    backend = MemoryBackend()
    old = Store(backend, serializer=PickleSerializer(signing_key="old"))
    old.incr("n", 3)
    rotated = Store(backend, serializer=PickleSerializer(signing_key="new", fallback_keys=["old"]))
    assert rotated.get("n") == 3
    assert rotated.incr("n") == 4
    retired = Store(backend, serializer=PickleSerializer(signing_key="new"))
    assert retired.get("n") is MISS  # the old key is gone: its counters are not trusted
    assert retired.incr("n") == 1  # and start again


def test_concurrent_increments_are_not_lost() -> None:
    store = Store(MemoryBackend(), serializer=PickleSerializer(signing_key="dev"))
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        for _ in range(200):
            store.incr("n")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get("n") == 1600


# -- the mismatch alarm -------------------------------------------------------------------


def test_alarm_fires_once_when_mismatches_keep_coming(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    alarm = MismatchAlarm(clock, threshold=3, window=10)
    with caplog.at_level(logging.WARNING, "flask_stash"):
        alarm.record()
        clock.advance(20)  # spread out: a rotation's stragglers, not a misconfiguration
        alarm.record()
        clock.advance(20)
        alarm.record()
        assert not alarm.fired
        assert not caplog.records
        alarm.record()
        alarm.record()  # three within 10 s
        for _ in range(50):
            alarm.record()
    assert alarm.fired
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "do not share a signing key" in message
    assert "CACHE_SIGNING_KEY" in message


@pytest.mark.parametrize("make", SERIALIZERS)
def test_entries_signed_with_another_key_are_counted_and_alarm(
    make: type[PickleSerializer], caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    shared = MemoryBackend(clock=clock)
    worker_a = Store(shared, serializer=make(signing_key=b"\x01" * 24), clock=clock)
    worker_b = Store(shared, serializer=make(signing_key=b"\x02" * 24), clock=clock)
    with caplog.at_level(logging.WARNING, "flask_stash"):
        for i in range(30):
            worker_a.set(f"k{i}", i)
            assert worker_b.get(f"k{i}") is MISS
            clock.advance(1)
    assert worker_b.stats.get(KEY_MISMATCH) == 30
    assert worker_b.stats.get(UNDECODABLE) == 30
    assert worker_b.key_alarm.fired
    assert len([r for r in caplog.records if "signing key" in r.getMessage()]) == 1


# -- pinned derivations: entries and counters written by one release are read by the next --


def _hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869, written out in full (any length), to check ``derive_key`` against."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    block, okm = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


def test_derived_keys_are_hkdf_sha256_of_the_secret() -> None:
    # RFC 5869, test case 1: the reference implementation above is HKDF.
    okm = _hkdf_sha256(b"\x0b" * 22, bytes(range(13)), bytes(range(0xF0, 0xFA)), 42)
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )
    salt = b"flask-stash signing key v1"
    assert derive_key("dev", b"entry:pickle") == _hkdf_sha256(b"dev", salt, b"entry:pickle", 32)
    assert derive_key("dev", b"entry:pickle").hex() == (
        "9de89c559a0a7dd785e18abb19125d6a2a9bb80aa185ca67c94488b00860bd54"
    )


def test_a_derived_signer_has_a_key_per_label_and_per_rotated_key() -> None:
    signer = Signer.from_secrets("new", ["old"], b"entry:pickle")
    derived = signer.derive(b"counter")
    assert derived.keys == tuple(
        hmac.new(k, b"counter", hashlib.sha256).digest() for k in signer.keys
    )
    assert derived.key == derived.keys[0]
    assert signer.derive(b"other").keys[0] != derived.keys[0]


def test_counter_seals_are_pinned_and_never_zero() -> None:
    seal = CounterSeal(Signer.from_secrets("dev", ["old"], b"counter"))
    assert seal.seals("p:hits") == (5637509, 2164817)  # the current key's, then the old one's
    assert seal.encode("p:hits", 5) == b"89523589"  # 5 * 2**24 + 5637509
    assert seal.seals("p:\udcff") == (13373316, 14628654)  # any key, even one not UTF-8
    for bkey in (f"k{i}" for i in range(200)):
        assert all(1 <= s < COUNTER_SCALE for s in seal.seals(bkey))


@pytest.mark.parametrize(
    ("blob", "expected"),
    [(b"9" * 20, int("9" * 20)), (b"-" + b"9" * 20, -int("9" * 20)), (b"-" + b"1" * 21, None),
     (b"--5", None), (b"-x5", None), (b"+5", None)],
)  # fmt: skip
def test_parse_integer_bounds(blob: bytes, expected: int | None) -> None:
    assert parse_integer(blob) == expected


@pytest.mark.parametrize(("secret", "kind"), [("", "str"), (b"", "bytes"), (1234, "int")])
def test_signing_keys_must_be_non_empty_text(secret: object, kind: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        secret_bytes(secret)
    assert str(info.value) == f"a signing key must be a non-empty str or bytes, not {kind}"


def test_the_alarm_defaults_to_twenty_mismatches_in_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    alarm = MismatchAlarm(clock)
    assert alarm.fired is False
    with caplog.at_level(logging.WARNING, "flask_stash"):
        for _ in range(19):
            alarm.record()
        clock.advance(60)  # the first of twenty exactly a minute ago: still within
        assert not alarm.fired
        alarm.record()
    assert alarm.fired
    assert [r.getMessage() for r in caplog.records] == [
        "20 cache entries in 60 s were signed with a different key: the processes sharing "
        "this cache backend do not share a signing key (a SECRET_KEY generated at start-up, "
        "such as os.urandom(24), differs in every worker), so none can read the others' "
        "entries and every request recomputes. Give every process the same key: set "
        "CACHE_SIGNING_KEY (or a fixed SECRET_KEY) from configuration."
    ]
    late = MismatchAlarm(clock)
    for _ in range(19):
        late.record()
    clock.advance(60.5)  # the first of twenty more than a minute ago
    late.record()
    assert not late.fired


def test_the_alarm_window_runs_from_the_oldest_of_the_last_mismatches() -> None:
    clock = FakeClock()
    alarm = MismatchAlarm(clock, threshold=3, window=60)
    for step in (0, 50, 11):  # at 0, 50 and 61: the oldest is 61 s back
        clock.advance(step)
        alarm.record()
    assert not alarm.fired
    clock.advance(9)  # at 50, 61 and 70: within 20 s
    alarm.record()
    assert alarm.fired
