"""The ``{% cache %}`` Jinja tag and ``make_template_fragment_key`` (Flask-Caching's syntax).

::

    {% cache 300, "sidebar", user.id %} ... {% endcache %}
    {% cache None, "key" %} ... {% endcache %}      {# default timeout #}
    {% cache 'del', "sidebar", user.id %} ... {% endcache %}   {# drop, then render #}

Without a name, the template's file name and the tag's line number name the fragment.
The rendered fragment is cached through the same get-or-compute path as everything else,
so a backend failure renders the fragment instead of failing the page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from flask import Flask
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser

from flask_stash.config import normalize_timeout
from flask_stash.core.api import MISS
from flask_stash.core.engine import Lookup
from flask_stash.core.pipeline import Plan, fetch, is_pass
from flask_stash.core.stats import UNDECODABLE
from flask_stash.state import AppState

if TYPE_CHECKING:
    from flask_stash.extension import Cache

#: Attribute of the Jinja environment holding the ``Cache`` (Flask-Caching's name).
JINJA_CACHE_ATTR_NAME = "_template_fragment_cache"
TEMPLATE_FRAGMENT_KEY_TEMPLATE = "_template_fragment_cache_%s%s"


def make_template_fragment_key(fragment_name: str, vary_on: Sequence[Any] | None = None) -> str:
    """The cache key of a ``{% cache %}`` fragment, to read or delete it from Python."""
    if vary_on:
        fragment_name = f"{fragment_name}_"
    return TEMPLATE_FRAGMENT_KEY_TEMPLATE % (fragment_name, "_".join(map(str, vary_on or ())))


class CacheExtension(Extension):
    """Adds ``{% cache timeout[, name[, vary_on...]] %}...{% endcache %}``."""

    tags = {"cache"}  # noqa: RUF012 - Jinja's API is a plain class attribute

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        args: list[nodes.Expr] = [parser.parse_expression()]
        if parser.stream.skip_if("comma"):
            args.append(parser.parse_expression())
        else:
            args.append(nodes.Const(f"{parser.filename}{lineno}"))
        vary_on: list[nodes.Expr] = []
        while parser.stream.skip_if("comma"):
            vary_on.append(parser.parse_expression())
        args.append(nodes.List(vary_on))
        body = parser.parse_statements(("name:endcache",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_cache", args), [], [], body).set_lineno(lineno)

    def _cache(
        self, timeout: Any, fragment_name: str, vary_on: list[Any], caller: Callable[[], str]
    ) -> str:
        cache: Cache = getattr(self.environment, JINJA_CACHE_ATTR_NAME)
        key = make_template_fragment_key(fragment_name, vary_on=vary_on)
        if timeout == "del":
            cache.delete(key)
            return caller()
        seconds = None if timeout is None else normalize_timeout(timeout, "cache tag timeout")
        if cache.redefined:  # a Cache subclass's own get/set see every fragment
            found = cache.get(key)
            if isinstance(found, str):
                return found
            rendered = caller()
            cache.set(key, rendered, seconds)
            return rendered
        state = cache.state()
        plan = _fragment_plan(state)
        ticket = fetch(plan, Lookup.of(state.store, key), lambda t: t.keep(caller(), seconds))
        if ticket.ready:
            return ticket.value  # type: ignore[no-any-return]
        try:
            rendered = caller()
        except BaseException as error:
            return ticket.fail(error)  # type: ignore[no-any-return]
        return ticket.keep(rendered, seconds)


def _fragment_plan(state: AppState) -> Plan:
    """The tag's plan for ``state``: only strings are fragments (anything else under a
    fragment's key, an unsigned entry someone else wrote, is a miss)."""
    plan: Plan | None = state.helpers.get(_FRAGMENTS)
    if plan is None:
        store = state.store

        def read(where: Lookup) -> tuple[Any, bytes | None]:
            entry, version = store.read_stored(where.key, where.version_keys)
            if entry is not MISS and not isinstance(entry.value, str) and not is_pass(entry.value):
                store.stats.incr(UNDECODABLE)
                return MISS, version
            return entry, version

        plan = Plan(store, state.config.protection, "{% cache %}", read=read, spawn=state.spawn)
        store.stats.describe("{% cache %}", "template")
        state.helpers[_FRAGMENTS] = plan
    return plan


_FRAGMENTS = "jinja fragments"


def install(app: Flask, cache: Cache) -> None:
    """Register the tag on ``app``'s Jinja environment (done by ``init_app``)."""
    setattr(app.jinja_env, JINJA_CACHE_ATTR_NAME, cache)
    app.jinja_env.add_extension(CacheExtension)
