"""A user's serializer (cachelib's ``dumps``/``loads`` objects) behind our format marker,
signed with the same keys as the format it replaces."""

from __future__ import annotations

from typing import Any

from flask_stash.core.serializers import CustomSerializer


def is_serializer(candidate: object) -> bool:
    """Whether ``candidate`` has callable ``dumps`` and ``loads`` (cachelib's protocol)."""
    return callable(getattr(candidate, "dumps", None)) and callable(
        getattr(candidate, "loads", None)
    )


def user_serializer(inner: Any, replacing: object = None) -> CustomSerializer:
    """``inner`` behind our marker: entries written otherwise (by another serializer, or
    forged) are misses; signed when the serializer it replaces was."""
    signing_key, fallbacks = getattr(replacing, "secrets", (None, ()))
    return CustomSerializer(inner, signing_key, fallbacks)
