"""The app in ``tests/typing/flask_caching_style_app.py`` (Flask-Caching's documented
style) runs on Flask-Stash and, with its two imports pointed at Flask-Caching, on
Flask-Caching 2.5: the same scenario gives the same answers on both."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "typing" / "flask_caching_style_app.py"
IMPORTS = {
    "from flask_stash import Cache": "from flask_caching import Cache",
    "from flask_stash.backends.simplecache import SimpleCache": (
        "from flask_caching.backends.simplecache import SimpleCache"
    ),
}


def load(library: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The app module, fresh, importing ``library`` (the only lines that change)."""
    text = SOURCE.read_text()
    assert all(line in text for line in IMPORTS)  # the app names us in these lines only
    if library == "flask_caching":
        for ours, theirs in IMPORTS.items():
            text = text.replace(ours, theirs)
    assert text.count("flask_stash") == (2 if library == "flask_stash" else 0)
    name = f"style_app_{library}"
    (tmp_path / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return importlib.import_module(name)


def scenario(app_module: ModuleType) -> list[Any]:
    """What a user sees: answers, and which loads ran."""
    app = app_module.create_app()
    client = app.test_client()
    loads: list[str] = app_module.LOADS
    seen: list[Any] = []
    with app.app_context():
        seen.append(client.get("/settings").get_json())
        seen.append(client.get("/settings").get_json())
        seen.append(list(loads))  # loaded once
        seen.append(client.post("/settings/title/Board").get_json())  # deletes and reloads
        seen.append(client.get("/settings").get_json())
        seen.append(loads.count("settings"))

        posts = app_module.user_posts
        seen.append([posts(1), posts(1), posts(2), loads.count("posts:1")])
        app_module.cache.delete_memoized(posts, 1)
        seen.append([posts(1), loads.count("posts:1"), loads.count("posts:2")])
        posts.delete_memoized()
        seen.append([posts(2), loads.count("posts:2")])
        seen.append(client.get("/posts/3").get_json())
        seen.append(client.get("/posts/3").get_json())
        seen.append(loads.count("posts:3"))

        search = app.view_functions["search"]
        seen.append(client.get("/search?q=flask&page=2").get_json())
        seen.append(client.get("/search?page=2&q=flask").get_json())  # one entry
        app_module.cache.delete_cached(search, "/search", {"q": "flask", "page": 2})
        seen.append(client.get("/search?q=flask&page=2").get_json())
        seen.append(loads.count("search:flask"))
        with app.test_request_context():
            app_module.cache.delete_cached(app.view_functions["posts"], user_id=3)
        seen.append(client.get("/posts/3").get_json())
        seen.append(loads.count("posts:3"))

        python, flask = app_module.Forum("python"), app_module.Forum("flask")
        seen.append([python.topic_count(), flask.topic_count(), python.topic_count()])
        app_module.cache.delete_memoized(python.topic_count)  # that instance only
        seen.append([python.topic_count(), flask.topic_count()])
        seen.append([loads.count("topics:python"), loads.count("topics:flask")])
        seen.append(app_module.cache.cache.reads > 0)  # the subclassed backend served reads
    return seen


def test_the_app_behaves_the_same_on_both_libraries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = scenario(load("flask_stash", tmp_path, monkeypatch))
    theirs = scenario(load("flask_caching", tmp_path, monkeypatch))
    assert ours == theirs
    assert ours[2] == ["settings"]
    assert ours[3] == ours[4] == {"title": "Board"}
    assert ours[5] == 2
    assert ours[15] == 2  # the query-string page was deleted and computed again
    assert ours[-2] == [2, 1]
