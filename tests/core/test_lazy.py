"""Optional drivers imported on demand (``core/lazy.py``)."""

from __future__ import annotations

import json

import pytest

from flask_stash.core.errors import MissingDependencyError
from flask_stash.core.lazy import require


def test_an_installed_module_is_returned() -> None:
    assert require("json", extra="none") is json
    assert require("json.decoder", extra="none").__name__ == "json.decoder"


@pytest.mark.parametrize(
    ("module", "package", "named"),
    [
        ("flask_stash_absent_driver", None, "flask_stash_absent_driver"),
        ("flask_stash_absent_driver.sub", None, "flask_stash_absent_driver"),
        ("flask_stash_absent_driver", "absent-driver", "absent-driver"),
    ],
)
def test_a_missing_driver_names_the_package_and_the_extra(
    module: str, package: str | None, named: str
) -> None:
    with pytest.raises(MissingDependencyError) as info:
        require(module, extra="redis", package=package)
    assert str(info.value) == (
        f"this backend needs the {named!r} package, which is not installed: "
        "pip install 'flask-stash[redis]'"
    )
    assert isinstance(info.value.__cause__, ImportError)
