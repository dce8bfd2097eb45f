"""``flask stash``: look at and act on an app's cache from the command line.

``init_app`` adds the group to ``app.cli``. Commands: ``stats``, ``get``, ``delete``,
``delete-memoized``, ``clear``, ``ping``, ``warm`` and ``audit`` (see
``docs/observability.md``). As with Flask's own commands, a usage mistake (a bad
argument, an unknown cache name) exits with status 2 and a failure (an absent key, a
failing backend, a failed warm-up) with status 1, each with an ``Error:`` line.
"""

from __future__ import annotations

import click
from flask.cli import AppGroup, with_appcontext

from flask_stash.cli import audit, entries, stats, warm
from flask_stash.cli.common import CACHE_META


@click.group("stash", cls=AppGroup)
@click.option(
    "--cache",
    "cache_name",
    metavar="NAME",
    default=None,
    help="Which cache of the app (its CACHE_NAME); default: the first one.",
)
@click.pass_context
def stash(ctx: click.Context, cache_name: str | None) -> None:
    """Flask-Stash: statistics, entries, health, warm-up and key audit of the cache."""
    ctx.meta[CACHE_META] = cache_name


for command in (
    stats.stats_command,
    entries.get_command,
    entries.delete_command,
    entries.delete_memoized_command,
    entries.invalidate_tag_command,
    entries.clear_command,
    entries.ping_command,
    warm.warm_command,
    audit.audit_command,
):
    # What AppGroup.command does for commands defined on the group: run in the app context.
    assert command.callback is not None
    command.callback = with_appcontext(command.callback)
    stash.add_command(command)

__all__ = ["stash"]
