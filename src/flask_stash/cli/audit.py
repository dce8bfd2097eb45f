"""``flask stash audit``: every cached view of the app and what its cache key is made of.

What a key covers decides who may receive a stored page: an input a view reads that its
key leaves out (a query argument, a header, a cookie) serves one visitor's page to the
next. This command lists what each ``@cache.cached`` view's key holds, from its options;
what the views actually read is checked while they run, by the key audit
(``CACHE_KEY_AUDIT = True`` in debug mode, :mod:`flask_stash.views.audit`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click
from flask import Flask

from flask_stash import registry
from flask_stash.cli.common import CACHE_META, chosen
from flask_stash.views.decorator import CachedView

#: Decorator layers looked through to find the ``@cached`` wrapper of a view.
MAX_LAYERS = 32


@click.command("audit")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def audit_command(as_json: bool) -> None:
    """List the cached views and the inputs their cache keys are made of."""
    target = chosen()
    only = target.cache if click.get_current_context().meta.get(CACHE_META) else None
    views = cached_views(target.app, only)
    if as_json:
        click.echo(json.dumps(views, indent=2))
        return
    if not views:
        click.echo("No cached view: no route is decorated with @cache.cached.")
    for view in views:
        click.echo(f"{view['endpoint']}  {view['rule']}  [{', '.join(view['methods'])}]")
        for name, value in view["key"].items():
            click.echo(f"    {name + ':':<14}{value}")
    audit = "on" if target.state.config.key_audit else "off"
    click.echo(
        f"\nKey audit (CACHE_KEY_AUDIT, debug mode only): {audit}. It checks, on each miss, "
        "that a view's key covers every request input the view reads."
    )


def cached_views(app: Flask, only: Any = None) -> list[dict[str, Any]]:
    """The app's routes served by a ``@cache.cached`` view (of cache ``only``, if given)."""
    names = {id(cache): name for name, (cache, _) in registry.caches(app).items()}
    found = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        view = cached_view(app.view_functions.get(rule.endpoint))
        if view is None or (only is not None and view.cache is not only):
            continue
        methods = sorted((rule.methods or set()) - {"OPTIONS"})
        found.append(
            {
                "endpoint": rule.endpoint,
                "rule": rule.rule,
                "methods": methods,
                "scope": view.scope,
                "cache": names.get(id(view.cache), "(another app's cache)"),
                "key": key_inputs(app, view),
            }
        )
    return found


def cached_view(fn: Callable[..., Any] | None) -> CachedView | None:
    """The ``@cached`` application behind a view function, through other decorators."""
    for _ in range(MAX_LAYERS):
        if fn is None:
            return None
        view = getattr(fn, "__stash_cached__", None)
        if isinstance(view, CachedView):
            return view
        fn = getattr(fn, "__wrapped__", None)
    return None


def key_inputs(app: Flask, view: CachedView) -> dict[str, str]:
    """What the view's key holds, in words."""
    inputs = {"path": _path(view), "query string": _query(view)}
    inputs["headers"] = "those the response lists in Vary (one variant per value)"
    inputs["user"] = _user(app, view)
    if view.custom_key is not None:
        inputs = {"key": f"make_cache_key={_name(view.custom_key)} (nothing else)"}
    if view.source_check or (view.source_check is None and _config(app, view, "source_check")):
        inputs["source"] = "a hash of the view's source code"
    timeout = view.wrapper.cache_timeout if view.wrapper is not None else None
    inputs["timeout"] = "the default (CACHE_DEFAULT_TIMEOUT)" if timeout is None else f"{timeout} s"
    return inputs


def _path(view: CachedView) -> str:
    prefix = view.key_prefix
    if callable(prefix):
        return f"not included: key_prefix={_name(prefix)}() makes the key"
    if "%s" not in prefix:
        return f"not included: every URL of this route shares the key {prefix!r}"
    return f"request.path, as key_prefix {prefix!r}"


def _query(view: CachedView) -> str:
    if not view.query_string:
        return "ignored (query_string=False): ?a=1 and ?a=2 share one entry"
    if view.query_allow is not None:
        return f"only arguments matching {list(view.query_allow)}"
    if view.query_deny:
        return f"every argument except those matching {list(view.query_deny)}"
    return "every argument (canonical order)"


def _user(app: Flask, view: CachedView) -> str:
    if not view.http.private:
        return "none: one entry serves every visitor"
    headers = _config(app, view, "view_private_headers") or ()
    ignored = _config(app, view, "view_private_ignore_cookies") or ()
    said = "every cookie" + (f" except {list(ignored)}" if ignored else "")
    said += f", headers {list(headers)}" if headers else ""
    if view.http.private_key is not None:
        said += f", private_key={_name(view.http.private_key)}()"
    return f"per user (private=True): {said}"


def _config(app: Flask, view: CachedView, name: str) -> Any:
    try:
        return getattr(view.cache.state(app).config, name)
    except RuntimeError:  # the view's cache serves another app
        return None


def _name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn))
