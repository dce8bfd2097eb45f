"""Signing keys derived from any secret, MACs over stored bytes, and sealed counters.

Any secret works, whatever its length (Flask's tutorial ``SECRET_KEY = "dev"`` included):
the key that signs entries is derived from it with HKDF-SHA256 (RFC 5869) and a fixed
context label per use. The app's secret itself never signs anything, and each format has
its own key, so a MAC made for one format is worthless for another.

A short secret still works but can be guessed; the Flask layer says so in debug mode.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import logging
import threading
from collections.abc import Callable, Iterable

from flask_stash.core.errors import ConfigurationError

logger = logging.getLogger("flask_stash")

#: Below this many bytes a secret is guessable: it works, but gets a warning in debug mode.
SHORT_SECRET = 16
MAC_SIZE = hashlib.sha256().digest_size
# HKDF's salt: fixed, it only separates our keys from other uses of the same secret.
_SALT = b"flask-stash signing key v1"

Secret = str | bytes


def derive_key(secret: Secret, label: bytes) -> bytes:
    """A 32-byte key for the use named ``label``, from ``secret`` of any length."""
    prk = hmac.new(_SALT, secret_bytes(secret), hashlib.sha256).digest()  # HKDF-Extract
    return hmac.new(prk, label + b"\x01", hashlib.sha256).digest()  # HKDF-Expand, 1 block


def secret_bytes(secret: object) -> bytes:
    """``secret`` as bytes; a clear error for anything that is not a non-empty str/bytes."""
    raw = secret.encode() if isinstance(secret, str) else secret
    if not isinstance(raw, bytes) or not raw:
        raise ConfigurationError(
            f"a signing key must be a non-empty str or bytes, not {type(secret).__name__}"
        )
    return raw


class Signer:
    """HMAC-SHA256 with the current key; verification also accepts the fallback keys, so
    a key can be rotated without dropping every entry at once."""

    def __init__(self, keys: tuple[bytes, ...]) -> None:
        self.keys = keys
        self.key = keys[0]

    @classmethod
    def from_secrets(cls, secret: Secret, fallbacks: Iterable[Secret], label: bytes) -> Signer:
        return cls(tuple(derive_key(s, label) for s in (secret, *fallbacks)))

    def derive(self, label: bytes) -> Signer:
        """A signer for another use, keyed from this one's keys (rotation included)."""
        return Signer(tuple(hmac.new(k, label, hashlib.sha256).digest() for k in self.keys))

    def sign(self, payload: bytes | memoryview) -> bytes:
        return hmac.new(self.key, payload, hashlib.sha256).digest()

    def verify(self, mac: bytes, payload: bytes | memoryview) -> bool:
        if hmac.compare_digest(mac, hmac.new(self.key, payload, hashlib.sha256).digest()):
            return True
        return any(
            hmac.compare_digest(mac, hmac.new(k, payload, hashlib.sha256).digest())
            for k in self.keys[1:]
        )


#: A sealed counter holds ``value * COUNTER_SCALE + seal``: a backend increments it by
#: ``delta * COUNTER_SCALE`` atomically (Redis INCRBY, memcached incr) and the seal stays.
#: The seal (24 bits of an HMAC of the key) tells a counter this cache made from a forged
#: integer; the price is a range of +-2**39 (about 5.5e11) within Redis's 64 bits.
COUNTER_SCALE = 1 << 24


class CounterSeal:
    """Encodes integers that the backend itself increments, so that forged ones are refused.

    A backend's atomic increment works on plain ASCII integers, which cannot carry a MAC.
    Instead each counter's value is scaled and offset by a seal derived from the signing
    key and the counter's backend key: someone without the key who writes ``999999`` has
    one chance in 2**24 of producing a valid counter, and a counter copied from another key
    is refused. Whoever can write to the backend can still add to an existing counter (the
    backend does the arithmetic): a counter is no more trustworthy than its backend.
    Without a key (``signer=None``) counters are plain integers, as in Flask-Caching.
    """

    def __init__(self, signer: Signer | None) -> None:
        self._signer = signer
        self.scale = COUNTER_SCALE if signer is not None else 1

    def seals(self, bkey: str) -> tuple[int, ...]:
        """The valid seals of ``bkey``: the current key's first, then the fallbacks'."""
        if self._signer is None:
            return (0,)
        data = bkey.encode("utf-8", "surrogatepass")
        # Never 0: a counter the backend creates from nothing starts unsealed at 0.
        return tuple(
            int.from_bytes(hmac.new(k, data, hashlib.sha256).digest()[:4], "big")
            % (COUNTER_SCALE - 1)
            + 1
            for k in self._signer.keys
        )

    def encode(self, bkey: str, value: int) -> bytes:
        return str(value * self.scale + self.seals(bkey)[0]).encode()

    def decode(self, bkey: str, raw: int) -> int | None:
        """The counter's value, or ``None`` if ``raw`` is not a counter sealed for ``bkey``."""
        value, seal = divmod(raw, self.scale)
        return value if seal in self.seals(bkey) else None


def parse_integer(blob: bytes) -> int | None:
    """The integer a backend counter holds (ASCII digits, optional minus), else ``None``."""
    digits = blob[1:] if blob[:1] == b"-" else blob
    if not digits.isdigit() or len(digits) > 20:
        return None
    return int(blob)


class MismatchAlarm:
    """Says once, loudly, when entries signed with another key keep arriving.

    One such entry is normal after a key rotation; ``threshold`` of them within ``window``
    seconds mean the processes sharing the backend sign with different keys (a random
    ``SECRET_KEY`` per worker), so none can read the others' entries.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        threshold: int = 20,
        window: float = 60.0,
        log: logging.Logger = logger,
    ) -> None:
        self.clock = clock
        self.threshold = threshold
        self.window = window
        self.fired = False
        self._log = log
        self._times: collections.deque[float] = collections.deque(maxlen=threshold)
        self._lock = threading.Lock()

    def record(self) -> None:
        if self.fired:
            return
        now = self.clock()
        with self._lock:
            times = self._times
            times.append(now)
            if self.fired or len(times) < self.threshold or now - times[0] > self.window:
                return
            self.fired = True
        self._log.warning(
            "%d cache entries in %g s were signed with a different key: the processes "
            "sharing this cache backend do not share a signing key (a SECRET_KEY generated "
            "at start-up, such as os.urandom(24), differs in every worker), so none can read "
            "the others' entries and every request recomputes. Give every process the same "
            "key: set CACHE_SIGNING_KEY (or a fixed SECRET_KEY) from configuration.",
            self.threshold,
            self.window,
        )
