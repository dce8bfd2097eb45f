"""The dashboard in headless Chromium: it renders, the charts draw, names stay text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser import PNG_SIGNATURE, Browser, serving

from .test_dashboard import HOSTILE, busy_app, hostile_app

pytestmark = pytest.mark.browser


@pytest.fixture
def browser(tmp_path: Path) -> Browser:
    return Browser(tmp_path)


def test_the_page_renders_and_the_charts_draw(browser: Browser, tmp_path: Path) -> None:
    app, _ = busy_app()
    with serving(app) as base:
        dom = browser.dump_dom(base + "/_stash/")
        png = browser.screenshot(base + "/_stash/", tmp_path / "dashboard.png")
    assert '<body data-drawn="yes">' in dom  # the script ran to its end
    bars = re.findall(r'<rect [^>]*class="seg (\w+)"', dom)
    assert {"hits", "misses"} <= set(bars)  # the calls chart stacked this minute's outcomes
    ratio = re.search(r'<path d="(M[^"]+)"[^>]*class="line ratio"', dom)
    assert ratio is not None
    assert re.search(r'<circle [^>]*class="dot"', dom)  # the hit ratio's point
    assert re.search(r'<path d="M[^"]+ L[^"]+"[^>]*class="line saved"', dom)
    rows = re.findall(r'<tr class="scope"><td class="name">([^<]+) <span class="kind">(\w+)', dom)
    assert ("report", "view") in rows
    assert any(name.endswith("busy_app.square") and kind == "memoize" for name, kind in rows)
    assert 'class="badge ok">closed<' in dom
    assert "No errors." in dom
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 20_000  # a page, not a blank image


def test_hostile_names_show_as_text(browser: Browser, tmp_path: Path) -> None:
    app, _ = hostile_app()
    with serving(app) as base:
        dom = browser.dump_dom(base + "/_stash/")
        png = browser.screenshot(base + "/_stash/", tmp_path / "hostile.png")
    assert '<body data-drawn="yes">' in dom
    escaped = HOSTILE.replace("<", "&lt;").replace(">", "&gt;")
    assert f'<td class="name">{escaped} <span class="kind">memoize' in dom
    assert "&lt;b onmouseover=alert(3)&gt;down&lt;/b&gt;" in dom
    assert "<img" not in dom
    assert "<svg onload" not in dom
    assert "<b onmouseover" not in dom
    assert png.startswith(PNG_SIGNATURE)
