"""``flask stash get|delete|delete-memoized|invalidate-tag|clear|ping``: entries and
health.

They call the backend directly, not through the fail-open gate a request uses: a
backend that fails is reported (status 1), never taken for an absent key.
"""

from __future__ import annotations

import ast
import json
from typing import Any

import click
from werkzeug.utils import ImportStringError, import_string

from flask_stash.cli.common import backend_errors, chosen, in_process_note
from flask_stash.core.api import MISS
from flask_stash.core.errors import BackendError


@click.command("get")
@click.argument("key")
def get_command(key: str) -> None:
    """Print the value cached under KEY (its repr); status 1 when there is none."""
    target = chosen()
    store = target.state.store
    in_process_note(target)
    with backend_errors(f"read {key!r}"):
        bkey = store.backend_key(key)
        entry = store.decode_value(bkey, store.backend.get(bkey))
    if entry is MISS or not entry.is_fresh(store.clock()):
        raise click.ClickException(f"no value cached under {key!r} in {target.label}")
    click.echo(repr(entry.value))


@click.command("delete")
@click.argument("key")
def delete_command(key: str) -> None:
    """Delete the entry cached under KEY."""
    target = chosen()
    store = target.state.store
    in_process_note(target)
    with backend_errors(f"delete {key!r}"):
        deleted = store.backend.delete(store.backend_key(key))
    click.echo(f"Deleted {key!r}." if deleted else f"Nothing was cached under {key!r}.")


@click.command("delete-memoized")
@click.argument("function")
@click.argument("arguments", nargs=-1)
def delete_memoized_command(function: str, arguments: tuple[str, ...]) -> None:
    """Forget what memoized FUNCTION (module:name or module.name) cached.

    Without ARGUMENTS, every entry; with them, the entry of that one call. Each argument
    is a Python literal (42, 'text', [1, 2]) or else a string; name=value passes a
    keyword argument.
    """
    fn = _imported(function)
    args, kwargs = parse_arguments(arguments)
    target = chosen()
    memo = getattr(getattr(fn, "__func__", fn), "__stash_memo__", None)
    owner = getattr(memo, "cache", None) or target.cache  # the function's own cache
    in_process_note(target)
    try:
        state = owner.state()
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        owner.delete_memoized(fn, *args, **kwargs)
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="FUNCTION") from None
    except BackendError as exc:
        raise click.ClickException(f"could not delete: the cache backend failed: {exc}") from None
    except RuntimeError as exc:  # a @cached view's key needs a request: delete KEY instead
        raise click.ClickException(f"could not delete: {str(exc).splitlines()[0]}") from None
    if state.store.gate.failed_here():
        health = state.store.gate.health()
        raise click.ClickException(
            f"could not delete: the cache backend failed: {health.last_error}"
        )
    call = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
    what = f"the entry of {function}({call})" if arguments else f"every entry of {function}"
    click.echo(f"Forgot {what}.")


@click.command("invalidate-tag")
@click.argument("tags", nargs=-1, required=True)
def invalidate_tag_command(tags: tuple[str, ...]) -> None:
    """Invalidate every entry carrying one of TAGS (tags= of memoize, cached and set)."""
    target = chosen()
    in_process_note(target)
    if not all(tags):
        raise click.BadParameter("a tag cannot be empty", param_hint="TAGS")
    if not target.state.store.invalidate_tags(tags):
        health = target.state.store.gate.health()
        raise click.ClickException(
            f"could not invalidate: the cache backend failed: {health.last_error}"
        )
    click.echo(f"Invalidated {', '.join(map(repr, tags))}.")


@click.command("clear")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def clear_command(yes: bool) -> None:
    """Delete every entry of the cache (under its key prefix, where the backend has one)."""
    target = chosen()
    store = target.state.store
    in_process_note(target)
    if not yes:
        click.confirm(f"Delete every entry of {target.label}?", abort=True)
    with backend_errors("clear the cache"):
        store.backend.clear()
    click.echo(f"Cleared {target.label}.")


@click.command("ping")
@click.option("--json", "as_json", is_flag=True, help="Print the health as JSON.")
def ping_command(as_json: bool) -> None:
    """Check the backend: one real read, its latency, the breaker; status 1 if unhealthy."""
    target = chosen()
    health: dict[str, Any] = target.cache.ping()
    if as_json:
        click.echo(json.dumps(health, indent=2))
    else:
        state = "healthy" if health["healthy"] else "UNHEALTHY"
        click.echo(f"{target.label}: {state}")
        click.echo(f"  latency:  {health['latency_ms']:.3f} ms (one read)")
        click.echo(f"  breaker:  {health['breaker']}")
        click.echo(f"  failed calls: {health['failed_calls']}, skipped: {health['skipped_calls']}")
        if health["pending_invalidations"]:
            click.echo(f"  invalidations waiting: {health['pending_invalidations']}")
        if health["error"]:
            click.echo(f"  last error: {health['error']}")
    if not health["healthy"]:
        raise click.ClickException(f"{target.label} is unhealthy: {health['error']}")


def _imported(path: str) -> Any:
    try:
        found = import_string(path)
    except ImportStringError as exc:
        raise click.BadParameter(
            f"cannot import {path!r}: {exc.exception}", param_hint="FUNCTION"
        ) from None
    if not callable(found):
        raise click.BadParameter(f"{path!r} is not a function", param_hint="FUNCTION")
    return found


def parse_arguments(given: tuple[str, ...]) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments from the command line (see delete-memoized)."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for text in given:
        name, equals, value = text.partition("=")
        if equals and name.isidentifier():
            kwargs[name] = _literal(value)
        elif kwargs:
            raise click.BadParameter(
                f"positional argument {text!r} after a keyword argument", param_hint="ARGUMENTS"
            )
        else:
            args.append(_literal(text))
    return args, kwargs


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
