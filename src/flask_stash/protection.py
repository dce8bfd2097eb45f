"""Per-decorator stampede options on top of the app's (``CACHE_STAMPEDE_PROTECTION`` & co)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from flask_stash.core.stampede import Protection
from flask_stash.state import AppState

#: Decorator keyword -> ``Protection`` field.
FIELDS = {
    "stale": "stale",
    "early_refresh": "early_refresh",
    "fail_safe": "fail_safe",
    "jitter": "jitter",
    "stampede": "single_flight",
}


def protection_overrides(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options a decorator set explicitly, validated now (not at the first call)."""
    overrides = {
        field: options[name] for name, field in FIELDS.items() if options.get(name) is not None
    }
    dataclasses.replace(Protection(), **overrides)  # raises ValueError for bad values
    return overrides


def protection_for(overrides: Mapping[str, Any], state: AppState) -> Protection:
    base = state.config.protection
    return dataclasses.replace(base, **overrides) if overrides else base
