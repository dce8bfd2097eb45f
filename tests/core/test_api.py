"""The backend contract's own rules: the miss marker and TTL validation at its boundaries."""

from __future__ import annotations

import math

import pytest

from flask_stash.core.api import MISS, check_ttl


def test_miss_is_falsy_and_says_what_it_is() -> None:
    assert not MISS
    assert repr(MISS) == "MISS"
    assert MISS is not None


@pytest.mark.parametrize("ttl", [None, 5e-324, 0.001, 1, 10**12, 1.5])
def test_positive_finite_ttls_and_none_pass_unchanged(ttl: float | None) -> None:
    assert check_ttl(ttl) is ttl


@pytest.mark.parametrize("ttl", [0, 0.0, -0.0, -1, -(10**-9), math.inf, -math.inf, math.nan])
def test_zero_negative_infinite_and_nan_ttls_are_refused(ttl: float) -> None:
    with pytest.raises(ValueError, match=r"^ttl must be a positive, finite number of seconds"):
        check_ttl(ttl)


@pytest.mark.parametrize(("ttl", "name"), [(True, "bool"), ("5", "str"), (b"5", "bytes")])
def test_non_numbers_are_type_errors(ttl: object, name: str) -> None:
    with pytest.raises(TypeError, match=rf"^ttl must be a number of seconds or None, not {name}$"):
        check_ttl(ttl)  # type: ignore[arg-type]
