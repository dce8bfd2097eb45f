"""The dashboard: a page showing what the cache does (``docs/observability.md``).

An opt-in blueprint, enabled by ``CACHE_DASHBOARD = True`` or
``cache.dashboard(app, url=..., access=...)``. Two routes under its URL (``/_stash`` by
default): the page, and ``/data`` (JSON: :meth:`Report.as_dict
<flask_stash.core.report.Report.as_dict>`, the backend's ping, the recent errors and the
last minutes' history) which the page's script reads every few seconds.

**Access.** Without an ``access`` check the dashboard answers only in debug mode (404
otherwise); with one, it answers when ``access()`` returns true (403 otherwise), debug or
not. Its figures name your views and functions and its errors name your servers: never
expose it in production without a check.

**Escaping.** The page is a fixed shell. Data reaches it as JSON (escaped for a
``<script>`` element by ``tojson``) and the script writes it with ``textContent`` only,
so a scope name cannot become markup; a Content-Security-Policy allows only the page's
own nonce-tagged script and style, and no other origin (no CDN: everything is inline).
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    jsonify,
    render_template_string,
    request,
    url_for,
)

from flask_stash.config import dashboard_url
from flask_stash.core import statsflush
from flask_stash.core.history import History

if TYPE_CHECKING:
    from flask_stash.extension import Cache

#: ``access()``: whether the current user may see the dashboard.
Access = Callable[[], bool]
#: Seconds between two refreshes of the page's figures.
REFRESH = 5
_INSTALLED = "flask-stash-dashboards"
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass
class Dashboard:
    """One cache's dashboard on one app."""

    cache: Cache
    app_name: str
    url: str
    access: Access | None
    history: History

    def guard(self) -> None:
        """Refuse the request unless debug mode is on or ``access()`` says yes."""
        if self.access is None:
            if not current_app.debug:
                abort(404)
        elif not self.access():
            abort(403)

    def page(self) -> Response:
        nonce = secrets.token_urlsafe(16)
        html = render_template_string(
            _asset("page.html"),
            nonce=nonce,
            app_name=self.app_name,
            data=self.data(),
            data_url=url_for(f"{request.blueprint}.data"),
            refresh=REFRESH,
            script=_asset("dashboard.js"),
        )
        response = Response(html, mimetype="text/html")
        response.headers["Content-Security-Policy"] = _policy(nonce)
        return response

    def data_response(self) -> Response:
        response = jsonify(self.data())
        response.headers["Content-Security-Policy"] = "default-src 'none'"
        return response

    def data(self) -> dict[str, Any]:
        """Everything the page shows, as plain JSON-ready data."""
        self.history.sample()  # the last second's events too
        store = self.cache.state().store
        return {
            "app": self.app_name,
            "generated": round(time.time(), 3),
            "refresh": REFRESH,
            "stats": self.cache.stats().as_dict(),
            "ping": self.cache.ping(),
            "errors": [error.as_dict() for error in store.policy.recent.entries()],
            "history": self.history.as_dict(),
        }


def install(
    app: Flask, cache: Cache, *, url: str | None = None, access: Access | None = None
) -> Blueprint:
    """Serve ``cache``'s dashboard on ``app`` at ``url`` (see the module docstring)."""
    state = cache.state(app)
    _, configured_url, configured_access = state.config.dashboard
    url = configured_url if url is None else dashboard_url(url, "url")
    access = configured_access if access is None else access
    if access is not None and not callable(access):
        raise TypeError(f"access must be a function returning True or False, not {access!r}")
    installed: dict[Any, str] = app.extensions.setdefault(_INSTALLED, {})
    if cache in installed:
        raise RuntimeError(f"this cache's dashboard is already served at {installed[cache]}")
    history = History(state.store.stats)
    statsflush.sample_every_round(history)
    board = Dashboard(cache, app.name, url, access, history)
    name = "flask_stash_dashboard" + (f"_{len(installed) + 1}" if installed else "")
    blueprint = Blueprint(name, __name__, url_prefix=url)
    blueprint.before_request(board.guard)
    blueprint.after_request(_secure)
    blueprint.add_url_rule("/", "page", board.page, strict_slashes=False)
    blueprint.add_url_rule("/data", "data", board.data_response)
    app.register_blueprint(blueprint)
    installed[cache] = url
    return blueprint


def _secure(response: Response) -> Response:
    for header, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(header, value)
    return response


def _policy(nonce: str) -> str:
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


@functools.cache
def _asset(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
