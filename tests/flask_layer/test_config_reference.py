"""``docs/configuration.md`` is generated from the code; this fails when it is stale."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from flask_stash.config import DEFAULTS
from flask_stash.settings_doc import SECTIONS, SETTINGS

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "config_reference.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("config_reference", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_setting_is_documented_once() -> None:
    assert set(SETTINGS) == set(DEFAULTS)
    assert {doc.section for doc in SETTINGS.values()} <= set(SECTIONS)
    assert all(doc.type and doc.meaning.endswith((".", ")")) for doc in SETTINGS.values())


def test_configuration_md_is_up_to_date() -> None:
    script = load_script()
    assert script.TARGET.read_text() == script.render(), (
        "docs/configuration.md is out of date: run .venv/bin/python scripts/config_reference.py"
    )
    assert script.main(["--check"]) == 0


def test_the_check_fails_on_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = load_script()
    stale = tmp_path / "configuration.md"
    stale.write_text(script.render().replace("`300`", "`600`"))
    monkeypatch.setattr(script, "TARGET", stale)
    assert script.main(["--check"]) == 1
    assert script.main([]) == 0  # regenerates it
    assert stale.read_text() == script.render()


def test_every_default_is_rendered() -> None:
    text = load_script().render()
    for name in DEFAULTS:
        assert f"| `{name}` |" in text
