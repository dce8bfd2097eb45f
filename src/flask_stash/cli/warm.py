"""``flask stash warm``: run the registered warm-ups (``@cache.warmup``), with a progress
bar each; a warm-up that fails is reported and the others still run (status 1 at the end).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sized

import click

from flask_stash import registry, warmup
from flask_stash.cli.common import chosen, in_process_note
from flask_stash.core import statsflush

logger = logging.getLogger("flask_stash")


@click.command("warm")
@click.argument("names", nargs=-1)
@click.option("--list", "listing", is_flag=True, help="List the warm-ups, run none.")
def warm_command(names: tuple[str, ...], listing: bool) -> None:
    """Run the cache's warm-ups (all, or those NAMES), each with a progress bar."""
    target = chosen()
    found = warmup.registered(target.cache)
    if listing:
        for item in found:
            click.echo(item.name)
        return
    if not found:
        raise click.ClickException(
            f"{target.label} has no warm-up: register one with @cache.warmup "
            "(docs/observability.md#warming-the-cache)"
        )
    selected = _selected(found, names)
    in_process_note(target)
    failed = [item.name for item in selected if not run(item)]
    for _, state in registry.caches(target.app).values():  # the figures, in everyone's now
        statsflush.push_now(state.store)
    if failed:
        raise click.ClickException(
            f"{len(failed)} of {len(selected)} warm-ups failed: {', '.join(failed)}"
        )
    click.echo(f"Ran {len(selected)} warm-up{'s' if len(selected) != 1 else ''}.")


def run(item: warmup.Warmup) -> bool:
    """Run one warm-up; ``False`` if it raised (said on stderr; the traceback is logged)."""
    try:
        produced = item.fn()
        if isinstance(produced, Iterable) and not isinstance(produced, (str, bytes)):
            length = item.length
            if length is None and isinstance(produced, Sized):
                length = len(produced)
            with click.progressbar(produced, length=length, label=item.name) as bar:
                for _ in bar:
                    pass
        else:
            click.echo(f"{item.name}: done")
    except Exception as exc:
        logger.error("warm-up %s failed", item.name, exc_info=True)
        click.echo(f"Error: warm-up {item.name} failed: {type(exc).__name__}: {exc}", err=True)
        return False
    return True


def _selected(found: list[warmup.Warmup], names: tuple[str, ...]) -> list[warmup.Warmup]:
    if not names:
        return found
    by_name = {item.name: item for item in found}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise click.BadParameter(
            f"no warm-up named {unknown[0]!r}; registered: {', '.join(by_name) or 'none'}",
            param_hint="NAMES",
        )
    return [by_name[name] for name in names]
