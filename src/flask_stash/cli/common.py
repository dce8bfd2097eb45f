"""What the ``flask stash`` commands share: choosing the cache, backend errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click
from flask import Flask, current_app

from flask_stash import registry, workers
from flask_stash.core.breaker import describe
from flask_stash.core.errors import BackendError
from flask_stash.state import AppState

if TYPE_CHECKING:
    from flask_stash.extension import Cache

CACHE_META = "flask_stash.cache"


@dataclass(frozen=True)
class Chosen:
    """The cache a command works on."""

    app: Flask
    name: str
    cache: Cache
    state: AppState

    @property
    def label(self) -> str:
        return f"cache {self.name!r} ({self.state.store.gate.name})"

    @property
    def in_process(self) -> bool:
        """Whether the backend lives in this process: the command sees its own copy."""
        return workers.in_process_name(self.state.store.backend) is not None


def chosen() -> Chosen:
    """The cache chosen with ``--cache`` (default: the app's first)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    named = registry.caches(app)
    wanted = click.get_current_context().meta.get(CACHE_META)
    if not named:
        raise click.UsageError(f"app {app.name!r} has no Flask-Stash cache")
    if wanted is None:
        wanted = next(iter(named))
    if wanted not in named:
        known = ", ".join(repr(name) for name in named)
        raise click.BadParameter(
            f"app {app.name!r} has no cache named {wanted!r}; its caches: {known}",
            param_hint="'--cache'",
        )
    cache, state = named[wanted]
    return Chosen(app, wanted, cache, state)


@contextmanager
def backend_errors(doing: str) -> Iterator[None]:
    """A backend failure while ``doing`` something: an ``Error:`` line, exit status 1."""
    try:
        yield
    except BackendError as exc:
        message = f"could not {doing}: the cache backend failed: {describe(exc)}"
        raise click.ClickException(message) from None


def in_process_note(chosen: Chosen) -> None:
    """Say that an in-process backend seen from the command is not the workers' cache."""
    if chosen.in_process:
        click.echo(
            f"Note: {chosen.label} keeps its entries in each process's memory: this command "
            "sees its own, new cache, not the one of the app's running processes.",
            err=True,
        )
