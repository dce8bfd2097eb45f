"""Which secret signs an app's cache entries, and what ``init_app`` says about it.

The key is ``CACHE_SIGNING_KEY`` if set, else the app's ``SECRET_KEY``; any length works
(the signing key is derived from it, see :mod:`flask_stash.core.signing`). Rotation:
``CACHE_SIGNING_KEY_FALLBACKS``, or Flask's ``SECRET_KEY_FALLBACKS`` when the key is
``SECRET_KEY``. At ``init_app``, at most one log line says what deserves saying:
an unsigned cache on a backend other processes can write to, or (in debug mode) a
guessable key. ``CACHE_REQUIRE_SIGNING = True`` turns "unsigned" into a start-up error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask_stash.config import CacheConfig
from flask_stash.core.api import Backend
from flask_stash.core.backends.cachelib import CachelibBackend
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.backends.null import NullBackend
from flask_stash.core.errors import ConfigurationError
from flask_stash.core.signing import SHORT_SECRET, Secret, secret_bytes
from flask_stash.core.store import Store

logger = logging.getLogger("flask_stash")

# What an unsigned entry lets a writer of the backend do, by serializer.
_RISKS = {
    "pickle": "run any code in this app (pickle executes what it loads)",
    "json": "make this app serve values of their choosing",
}
_FIX = (
    "set SECRET_KEY or CACHE_SIGNING_KEY (one long random value, the same in every process) "
    "to sign entries, or CACHE_REQUIRE_SIGNING = True to refuse to start without a key"
)


@dataclass(frozen=True)
class AppSecrets:
    """The secret entries are signed with (``None``: unsigned), its fallbacks, its name."""

    key: Secret | None
    fallbacks: tuple[Secret, ...] = ()
    source: str = ""


def app_secrets(config: CacheConfig, app: Any) -> AppSecrets:
    """``CACHE_SIGNING_KEY`` (with its fallbacks), else ``SECRET_KEY`` (with Flask's)."""
    if config.signing_key:
        return AppSecrets(
            config.signing_key, config.signing_key_fallbacks or (), "CACHE_SIGNING_KEY"
        )
    secret = getattr(app, "secret_key", None)
    if not secret:
        return AppSecrets(None)
    app_config = getattr(app, "config", {})
    fallbacks = config.signing_key_fallbacks or app_config.get("SECRET_KEY_FALLBACKS") or ()
    return AppSecrets(secret, tuple(fallbacks), "SECRET_KEY")


def check_signing(app: Any, config: CacheConfig, store: Store) -> None:
    """Refuse an unsigned cache if required; else log at most one warning about keys."""
    secrets = app_secrets(config, app)
    signed = getattr(store.serializer, "signer", None) is not None
    if not signed and config.require_signing:
        store.close()  # the app will not start: let go of the connections it opened
        raise ConfigurationError(
            f"CACHE_REQUIRE_SIGNING is set but the cache of app {app.name!r} is not signed: "
            "set SECRET_KEY or CACHE_SIGNING_KEY"
        )
    if not signed and shared_backend(store.backend):
        risk = _RISKS.get(store.serializer.name, "feed forged data to the serializer")
        logger.warning(
            "the cache of app %r stores unsigned entries in %s, which other processes can "
            "write to: whoever can write there can %s. To fix it, %s.",
            app.name,
            type(store.backend).__name__,
            risk,
            _FIX,
        )
    elif signed and secrets.key is not None and getattr(app, "debug", False):
        length = len(secret_bytes(secrets.key))
        if length < SHORT_SECRET:
            logger.warning(
                "%s is only %d bytes long: it works, but a short secret can be guessed, and "
                "whoever guesses it and can write to the cache backend can forge entries. "
                "Use a long random value outside development (python -c 'import secrets; "
                "print(secrets.token_hex(32))').",
                secrets.source,
                length,
            )


def shared_backend(backend: Backend) -> bool:
    """Whether other processes can write to ``backend`` (anything but in-process ones)."""
    if isinstance(backend, (MemoryBackend, NullBackend)):
        return False
    if isinstance(backend, CachelibBackend):
        return type(backend.cache).__name__ not in ("SimpleCache", "NullCache")
    return True
