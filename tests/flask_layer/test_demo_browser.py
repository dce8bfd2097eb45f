"""The demo in headless Chromium: the index renders with its links, pages say fresh or cached."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flask_stash.testing import FakeClock
from tests.browser import PNG_SIGNATURE, Browser, serving

from .test_demo import load_demo

pytestmark = pytest.mark.browser


@pytest.fixture
def browser(tmp_path: Path) -> Browser:
    return Browser(tmp_path)


def test_the_index_renders_with_every_lesson_linked(browser: Browser, tmp_path: Path) -> None:
    app = load_demo().create_app(slow_seconds=0, clock=FakeClock())
    with serving(app) as base:
        browser.dump_dom(base + "/fib/30")  # so the index has a hit ratio to show
        dom = browser.dump_dom(base + "/")
        png = browser.screenshot(base + "/", tmp_path / "demo-index.png", size=(1100, 1200))
    links = re.findall(r'<li id="lesson-\d"><a href="([^"]+)">', dom)
    assert links == ["/ttl", "/report", "/add/2/3", "/add/10/1", "/users/1", "/fib/30"]
    assert '<a id="dashboard-link" href="/_stash/">' in dom
    assert '<div class="ratio">47.5 %</div>' in dom  # 28 hits in 59 calls
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 20_000


def test_a_page_is_fresh_then_from_the_cache(browser: Browser, tmp_path: Path) -> None:
    app = load_demo().create_app(slow_seconds=0.05)
    with serving(app) as base:
        first = browser.dump_dom(base + "/report")
        second = browser.dump_dom(base + "/report")
        png = browser.screenshot(base + "/report", tmp_path / "demo-report.png", size=(1100, 800))
    assert re.search(r'class="badge fresh" id="badge">computed now in 0\.\d\d s<', first)
    assert re.search(r'class="badge cached" id="badge">from the cache, computed \d+ s ago<', second)
    assert png.startswith(PNG_SIGNATURE)
