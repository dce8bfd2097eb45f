"""Importing optional drivers only when a backend that needs them is built."""

from __future__ import annotations

import importlib
from types import ModuleType

from flask_stash.core.errors import MissingDependencyError


def require(
    module: str, *, extra: str, package: str | None = None, needed_by: str = "this backend"
) -> ModuleType:
    """Import ``module`` or fail with the ``pip install`` command that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        dist = package or module.split(".")[0]
        raise MissingDependencyError(
            f"{needed_by} needs the {dist!r} package, which is not installed: "
            f"pip install 'flask-stash[{extra}]'"
        ) from exc
