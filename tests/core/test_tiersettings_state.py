"""``CACHE_LOCAL_TIER`` read into :class:`TierSettings`: what each value means, and the
error a wrong one gets at ``init_app`` (it names the setting and the value)."""

from __future__ import annotations

import re

import pytest

from flask_stash.core.errors import ConfigurationError
from flask_stash.core.tiersettings import TierSettings


@pytest.mark.parametrize("off", [None, False])
def test_none_and_false_mean_no_tier(off: object) -> None:
    assert TierSettings.parse(off) is None


def test_true_means_the_documented_defaults() -> None:
    settings = TierSettings.parse(True)
    assert settings == TierSettings(max_entries=10_000, max_bytes=64 * 2**20, ttl=60.0)
    assert settings is not None
    assert settings.channel is None


def test_a_dict_sets_some_fields_and_keeps_the_others() -> None:
    settings = TierSettings.parse({"max_entries": 1, "channel": "app-tier"})
    assert settings == TierSettings(max_entries=1, channel="app-tier")
    assert TierSettings.parse({"max_bytes": None}) == TierSettings(max_bytes=None)


@pytest.mark.parametrize("value", [0, 1, "yes", [("ttl", 5)]])
def test_anything_else_is_refused(value: object) -> None:
    message = f"expected None, True, False or a dict of settings, not {value!r}"
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        TierSettings.parse(value)


def test_unknown_settings_are_named_with_the_known_ones() -> None:
    message = "unknown setting(s) ['size', 'ttl_cap'] (known: max_entries, max_bytes, ttl, channel)"
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        TierSettings.parse({"ttl_cap": 5, "size": 3, "ttl": 5})


def test_the_ttl_cap_is_kept_in_float_seconds() -> None:
    settings = TierSettings(ttl=5)
    assert settings.ttl == 5.0
    assert isinstance(settings.ttl, float)
    assert TierSettings.parse({"ttl": 0.25}) == TierSettings(ttl=0.25)


@pytest.mark.parametrize(
    ("ttl", "message"),
    [
        (None, "the in-process tier needs a ttl cap (seconds), not None"),
        (0, "in-process tier ttl: ttl must be a positive, finite number of seconds, got 0"),
        ("5", "in-process tier ttl: ttl must be a number of seconds or None, not str"),
    ],
)
def test_a_bad_ttl_cap_is_refused(ttl: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        TierSettings(ttl=ttl)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["max_entries", "max_bytes"])
def test_one_is_the_smallest_bound(field: str) -> None:
    settings = TierSettings(**{field: 1})  # type: ignore[arg-type]
    assert getattr(settings, field) == 1


@pytest.mark.parametrize("field", ["max_entries", "max_bytes"])
@pytest.mark.parametrize("value", [0, -1, True, 2.5, "10"])
def test_a_bound_must_be_a_positive_integer(field: str, value: object) -> None:
    message = f"in-process tier {field} must be a positive integer: {value!r}"
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        TierSettings(**{field: value})  # type: ignore[arg-type]


def test_max_entries_cannot_be_unbounded() -> None:
    with pytest.raises(ConfigurationError, match="max_entries must be a positive integer"):
        TierSettings(max_entries=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("channel", ["", 5, b"tier"])
def test_a_channel_must_be_a_name(channel: object) -> None:
    message = f"in-process tier channel must be a name: {channel!r}"
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        TierSettings(channel=channel)  # type: ignore[arg-type]
