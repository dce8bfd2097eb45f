"""flask_stash.core must work where Flask, Werkzeug and Jinja2 are not installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_core_imports_without_flask_werkzeug_or_jinja2() -> None:
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"flask", "werkzeug", "jinja2"}:
                    raise ImportError(f"blocked: {name}")

        sys.meta_path.insert(0, Block())
        import flask_stash.core as core
        for info in pkgutil.walk_packages(core.__path__, "flask_stash.core."):
            importlib.import_module(info.name)
        banned = {"flask", "werkzeug", "jinja2"}
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in banned)
        assert not leaked, leaked
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
