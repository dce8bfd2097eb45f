"""What a newcomer meets first: the README, the license, the package metadata and the
documentation samples say true things."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from flask_stash import Cache
from flask_stash.core.backends._urls import sentinel_url_options

ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = "https://github.com/flask-stash/flask-stash"

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")


def test_readme_installs_from_the_repository_until_a_release() -> None:
    readme = (ROOT / "README.md").read_text()
    assert f'pip install "flask-stash @ git+{REPOSITORY}.git"' in readme
    assert "not on PyPI yet" in readme
    assert "\npip install flask-stash\n" not in readme


def test_readme_links_are_absolute() -> None:
    # A package index shows the README without the repository around it.
    links = re.findall(r"\]\(([^)]+)\)", (ROOT / "README.md").read_text())
    assert links
    assert [link for link in links if not link.startswith(("https://", "#"))] == []
    assert all(link.startswith(REPOSITORY) for link in links if "github.com" in link)


def test_license_file_and_metadata_agree() -> None:
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("BSD 3-Clause License")
    assert "Flask-Stash contributors" in license_text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "BSD-3-Clause"
    assert project["license-files"] == ["LICENSE"]
    assert project["urls"]["Source"] == REPOSITORY


def test_every_file_the_package_reads_ships_in_the_wheel() -> None:
    # Files that are not Python (the dashboard's page and script) are package data: a
    # pattern in pyproject.toml must name each, or an installed package lacks them
    # (READMEs are for readers of the source, not read at run time).
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = config["package-data"]["flask_stash"]
    package = ROOT / "src" / "flask_stash"
    data = [
        path.relative_to(package)
        for path in package.rglob("*")
        if path.is_file()
        and path.suffix not in (".py", ".pyc", ".md")
        and "__pycache__" not in path.parts
    ]
    assert {"dashboard/page.html", "dashboard/dashboard.js"} <= {p.as_posix() for p in data}
    assert [p for p in data if not any(p.match(pattern) for pattern in patterns)] == []


def test_sentinel_samples_configure_the_same_passwords() -> None:
    docs = (ROOT / "docs" / "backends.md").read_text()
    sample = docs.split("### Sentinel", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    app = types.SimpleNamespace(config={})
    exec(sample, {"app": app})  # the doc's own code
    _, url_options, _ = sentinel_url_options(app.config["CACHE_URL"])
    assert url_options["password"] == app.config["CACHE_REDIS_PASSWORD"]
    assert url_options["sentinel_password"] == app.config["CACHE_REDIS_SENTINEL_PASSWORD"]


def test_cache_app_is_what_migrating_md_says() -> None:
    from flask import Flask

    app = Flask(__name__)
    cache = Cache(app)
    assert cache.app is app  # outside an app context: the only app it serves
    with pytest.raises(AttributeError):
        cache.app = app  # type: ignore[misc]
    assert "`cache.app` is read-only" in (ROOT / "docs" / "migrating.md").read_text()


def test_docs_give_get_or_compute_its_stale_window_through_protection() -> None:
    import inspect

    from flask_stash.core import MemoryBackend, Protection, Store, get_or_compute

    assert "stale" not in inspect.signature(get_or_compute).parameters
    for page in (ROOT / "docs").glob("*.md"):
        for line in page.read_text().splitlines():
            if "get_or_compute" in line:
                assert not re.search(r"(?<!Protection\()\bstale=", line), (page, line)
    store = Store(MemoryBackend())
    assert get_or_compute(store, "k", lambda: 1, 10, protect=Protection(stale=5)) == 1
