"""The demo app (``make demo``) behaves as its pages say."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from flask_stash.testing import FakeClock

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo_app.py"


def load_demo() -> Any:
    spec = importlib.util.spec_from_file_location("demo_app", DEMO)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo_app"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def client(clock: FakeClock) -> FlaskClient:
    app = load_demo().create_app(slow_seconds=0, clock=clock)
    return app.test_client()


def test_hand_made_ttl_cache(client: FlaskClient, clock: FakeClock) -> None:
    assert client.get("/ttl").json == {"value": 81, "source": "computed"}
    assert client.get("/ttl").json == {"value": 81, "source": "cached"}
    clock.advance(5)
    assert client.get("/ttl").json["source"] == "computed"  # type: ignore[index]


def test_report_is_cached_for_five_seconds(client: FlaskClient, clock: FakeClock) -> None:
    first = client.get("/report").json
    assert first["computations"] == 1  # type: ignore[index]
    clock.advance(4)
    assert client.get("/report").json == first
    clock.advance(2)
    assert client.get("/report").json["computations"] == 2  # type: ignore[index]


def test_add_computes_once_per_argument_set(client: FlaskClient) -> None:
    assert client.get("/add/2/3").json == {"result": 5, "computations_so_far": 1}
    assert client.get("/add/2/3").json == {"result": 5, "computations_so_far": 1}
    assert client.get("/add/10/1").json == {"result": 11, "computations_so_far": 2}


def test_rename_invalidates_the_cached_name(client: FlaskClient) -> None:
    assert client.get("/users/1").json["source"] == "db"  # type: ignore[index]
    assert client.get("/users/1").json == {"id": 1, "name": "Ada", "source": "cache"}
    renamed = client.post("/users/1/rename?name=Lovelace")
    assert renamed.json == {"id": 1, "name": "Lovelace", "invalidated": True}
    assert client.get("/users/1").json == {"id": 1, "name": "Lovelace", "source": "db"}
    assert client.get("/users/2").json["source"] == "db"  # type: ignore[index]


def test_rename_rejects_bad_input(client: FlaskClient) -> None:
    assert client.post("/users/1/rename").status_code == 400
    assert client.post("/users/9/rename?name=X").status_code == 404
    assert client.get("/users/9").status_code == 404


def test_fibonacci_reports_how_often_the_cache_helped(client: FlaskClient) -> None:
    first = client.get("/fib/30").json
    assert first["value"] == 832040  # type: ignore[index]
    assert first["computations"] == 31  # one per distinct n: 0..30  # type: ignore[index]
    second = client.get("/fib/30").json
    assert second["computations"] == 31  # type: ignore[index]
    assert second["hits"] == first["hits"] + 1  # type: ignore[index]
    assert second["hit_ratio"] > first["hit_ratio"]  # type: ignore[index]
    assert client.get("/fib/501").status_code == 400


@pytest.mark.parametrize(("env", "port"), [(None, 5000), ("8123", 8123)])
def test_main_serves_on_port_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: str | None,
    port: int,
) -> None:
    demo = load_demo()
    served: dict[str, Any] = {}
    if env is None:
        monkeypatch.delenv("PORT", raising=False)
    else:
        monkeypatch.setenv("PORT", env)
    monkeypatch.setattr(demo.Flask, "run", lambda app, **kwargs: served.update(kwargs))
    demo.main()
    assert served == {"host": "127.0.0.1", "port": port}
    assert f"http://127.0.0.1:{port}/report" in capsys.readouterr().out
