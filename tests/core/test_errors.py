"""The exception family (``core/errors.py``): one base class, and the built-in classes
an application may already catch."""

from __future__ import annotations

import pytest

from flask_stash.core import errors


def test_a_backend_error_keeps_its_message_and_the_driver_error() -> None:
    original = TimeoutError("timed out")
    error = errors.BackendError("get failed", original)
    assert str(error) == "get failed"
    assert error.args == ("get failed",)
    assert error.original is original
    assert errors.BackendError("set failed").original is None


@pytest.mark.parametrize(
    ("error", "bases"),
    [
        (errors.ConfigurationError, (ValueError,)),
        (errors.MissingDependencyError, (errors.ConfigurationError, ImportError)),
        (errors.BackendError, ()),
        (errors.BackendUnavailable, (errors.BackendError,)),
        (errors.EntryTooLarge, (errors.BackendError,)),
        (errors.SerializationError, (TypeError,)),
        (errors.UndecodableEntry, ()),
        (errors.SignatureMismatch, (errors.UndecodableEntry,)),
    ],
)
def test_every_error_is_a_stash_error(error: type[Exception], bases: tuple[type, ...]) -> None:
    assert issubclass(error, errors.StashError)
    for base in bases:
        assert issubclass(error, base)
