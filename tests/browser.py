"""A real browser for tests: headless Chromium against an app served on a loopback port.

``chromium`` missing skips the test on a developer machine and fails it in CI
(``CI=true``), where ``make test`` installs the Debian package (scripts/install-servers.sh).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from .servers import HOST, free_port

#: A PNG file starts with these eight bytes.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RUN_TIMEOUT = 90.0


def require_chromium() -> str:
    """Chromium's path; skip (locally) or fail (in CI) when it is not installed."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path is not None:
            return path
    message = "chromium is not installed (Debian: apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """``app`` served by a real threaded WSGI server; yields its base URL."""
    server = make_server(HOST, free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="browser-test-app", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class Browser:
    """Headless Chromium runs, each in a profile of its own under ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.binary = require_chromium()
        self.workdir = workdir
        self._runs = 0

    def dump_dom(self, url: str, budget_ms: int = 4000) -> str:
        """The page's DOM after its scripts ran for ``budget_ms`` of virtual time."""
        return self._run("--dump-dom", f"--virtual-time-budget={budget_ms}", url).stdout

    def screenshot(self, url: str, path: Path, size: tuple[int, int] = (1280, 1500)) -> bytes:
        """A PNG of the page (``size`` in CSS pixels), saved at ``path``; its bytes."""
        self._run(
            f"--screenshot={path}",
            f"--window-size={size[0]},{size[1]}",
            "--virtual-time-budget=4000",
            "--hide-scrollbars",
            url,
        )
        return path.read_bytes()

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        self._runs += 1
        profile = self.workdir / f"profile-{self._runs}"
        command = [
            self.binary,
            "--headless",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            f"--user-data-dir={profile}",
            *args,
        ]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
        )
        assert result.returncode == 0, f"chromium failed ({result.returncode}): {result.stderr}"
        return result
