"""The app ``flask_layer/test_multiworker.py`` serves with gunicorn:
``tests.multiworker_app:create_app()``.

Configured from environment variables (gunicorn's ``--env``):

- ``STASH_DB``: the SQLite file that plays the database every worker shares;
- ``STASH_CACHE_*``: becomes ``CACHE_*`` (``STASH_CACHE_TYPE``, ``STASH_CACHE_REDIS_URL``,
  ``STASH_CACHE_KEY_PREFIX``...); a value starting with ``json:`` is decoded as JSON
  (``STASH_CACHE_LOCAL_TIER=json:true``). Without any, the cache is the in-memory default,
  one per worker process.

``GET /users/<id>`` answers the (memoized, tagged ``user:<id>``) name, the worker's PID and
how many times any worker has loaded a name from the database; ``POST /users/<id>?name=...``
renames the user and forgets the memoized name with ``cache.delete_memoized`` (with
``&via=tags``: ``cache.invalidate_tags("user:<id>")``); ``GET /stats`` answers
the worker's ``cache.stats()``; ``GET /tier`` whether the worker's in-process tier (if
any) is in use.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, abort, current_app, request

from flask_stash import Cache

ENV_PREFIX = "STASH_CACHE_"
DB_ENV = "STASH_DB"

cache = Cache(with_jinja2_ext=False)


def init_db(path: Path, users: dict[int, str]) -> None:
    """Create the database: the users, and a counter of name loads."""
    with _connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        db.execute("CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        db.execute("INSERT INTO counters VALUES ('loads', 0)")
        db.executemany("INSERT INTO users VALUES (?, ?)", users.items())


@contextmanager
def _connect(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A connection in one transaction (committed on success), closed afterwards."""
    with closing(sqlite3.connect(path, timeout=10)) as db, db:
        yield db


def _database() -> str:
    return str(current_app.config["USERS_DB"])


@cache.memoize(timeout=300, tags=lambda user_id: [f"user:{user_id}"])
def user_name(user_id: int) -> str:
    """The expensive lookup the cache spares: each execution is counted in the database."""
    with _connect(_database()) as db:
        db.execute("UPDATE counters SET value = value + 1 WHERE name = 'loads'")
        row = db.execute("SELECT name FROM users WHERE id = ?", (user_id,)).fetchone()
    if row is None:
        abort(404)
    return str(row[0])


def _loads() -> int:
    with _connect(_database()) as db:
        return int(db.execute("SELECT value FROM counters WHERE name = 'loads'").fetchone()[0])


def show_user(user_id: int) -> dict[str, Any]:
    return {"name": user_name(user_id), "pid": os.getpid(), "loads": _loads()}


def rename_user(user_id: int) -> dict[str, Any]:
    name = request.args.get("name")
    if not name:
        abort(400)
    with _connect(_database()) as db:
        db.execute("UPDATE users SET name = ? WHERE id = ?", (name, user_id))
    if request.args.get("via") == "tags":
        cache.invalidate_tags(f"user:{user_id}")
    else:
        cache.delete_memoized(user_name, user_id)
    return {"name": name, "pid": os.getpid(), "loads": _loads()}


def statistics() -> dict[str, Any]:
    """This worker's figures and everyone's (``cache.stats()``), with the worker's PID."""
    return {"pid": os.getpid(), **cache.stats().as_dict()}


def tier_state() -> dict[str, Any]:
    """Whether this worker's in-process tier serves reads (``None``: no tier)."""
    return {"pid": os.getpid(), "synced": getattr(cache.store.backend, "synced", None)}


def cache_config(environ: dict[str, str]) -> dict[str, Any]:
    """``CACHE_*`` settings from the ``STASH_CACHE_*`` variables of ``environ``."""
    return {
        "CACHE_" + name.removeprefix(ENV_PREFIX): _value(value)
        for name, value in environ.items()
        if name.startswith(ENV_PREFIX)
    }


def _value(text: str) -> Any:
    return json.loads(text.removeprefix("json:")) if text.startswith("json:") else text


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["USERS_DB"] = os.environ[DB_ENV]
    cache.init_app(app, config=cache_config(dict(os.environ)))
    app.add_url_rule("/users/<int:user_id>", view_func=show_user, methods=["GET"])
    app.add_url_rule("/users/<int:user_id>", view_func=rename_user, methods=["POST"])
    app.add_url_rule("/stats", view_func=statistics, methods=["GET"])
    app.add_url_rule("/tier", view_func=tier_state, methods=["GET"])
    return app
