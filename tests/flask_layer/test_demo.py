"""The demo app (``make demo``) behaves as its pages say."""

from __future__ import annotations

import importlib.util
import re
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


# -- the pages a browser sees ------------------------------------------------------------

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def badge(html: str) -> str:
    found = re.search(r'<span class="badge (\w+)" id="badge">([^<]*)</span>', html)
    assert found is not None, html
    return f"{found[1]}: {found[2]}"


def test_the_index_is_a_page_for_browsers_and_json_for_curl(client: FlaskClient) -> None:
    page = client.get("/", headers=HTML)
    assert page.mimetype == "text/html"
    for url in ("/ttl", "/report", "/add/2/3", "/add/10/1", "/users/1", "/fib/30", "/stats"):
        assert f'href="{url}"' in page.text
    assert '<a id="dashboard-link" href="/_stash/">' in page.text
    assert "has not run yet" in page.text
    for asked in ({}, {"headers": {"Accept": "*/*"}}, {"query_string": {"format": "json"}}):
        data = client.get("/", **asked).json  # type: ignore[arg-type]
        assert data["pages"][:2] == ["/ttl", "/report"]  # type: ignore[index]
        assert data["dashboard"] == "/_stash/"  # type: ignore[index]
    assert client.get("/?format=html").mimetype == "text/html"


def test_the_index_shows_how_often_the_cache_helped_fibonacci(client: FlaskClient) -> None:
    client.get("/fib/30")
    client.get("/fib/30")
    fib = client.get("/").json["fib"]  # type: ignore[index]
    # fib(30): fib(0..30) computed once each (31 misses); fib(n - 2) found for n = 3..30
    # (28 hits); the second fib(30): one hit.
    assert fib == {"calls": 60, "hits": 29, "misses": 31, "ratio": round(29 / 60, 3)}
    page = client.get("/", headers=HTML).text
    assert '<div class="ratio">48.3 %</div>' in page
    assert "of the 60 calls of the memoized Fibonacci" in page


@pytest.mark.parametrize("path", ["/ttl", "/add/2/3", "/users/1", "/fib/30", "/report"])
def test_every_page_says_fresh_then_cached(client: FlaskClient, path: str) -> None:
    assert badge(client.get(path, headers=HTML).text).startswith("fresh: computed now in 0.0")
    assert badge(client.get(path, headers=HTML).text).startswith("cached: from the cache")


def test_a_cached_page_says_how_old_it_is_and_json_keeps_its_own_copy(
    client: FlaskClient, clock: FakeClock
) -> None:
    first = client.get("/report", headers=HTML)
    assert first.headers["X-Cache"] == "MISS"
    clock.advance(3)
    hit = client.get("/report", headers=HTML)
    assert hit.headers["X-Cache"] == "HIT"
    assert badge(hit.text) == "cached: from the cache, computed 3 s ago"
    assert "ETag" not in hit.headers
    assert client.get("/report").json["computations"] == 2  # type: ignore[index]
    assert client.get("/report?format=json", headers=HTML).json["computations"] == 3  # type: ignore[index]


def test_the_rename_form_comes_back_to_a_fresh_read(client: FlaskClient) -> None:
    client.get("/users/1", headers=HTML)
    renamed = client.post("/users/1/rename", data={"name": "Lovelace"}, headers=HTML)
    assert renamed.status_code == 303
    assert renamed.headers["Location"] == "/users/1"
    page = client.get("/users/1", headers=HTML).text
    assert badge(page).startswith("fresh:")
    assert "<dd>Lovelace</dd>" in page
    assert 'action="/users/1/rename"' in page


def test_the_dashboard_answers_this_machine_only(client: FlaskClient) -> None:
    assert client.get("/_stash/").status_code == 200
    assert client.get("/_stash/data").json["stats"]["backend"] == "MemoryBackend"  # type: ignore[index]
    elsewhere = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/_stash/", environ_base=elsewhere).status_code == 403


def test_stats_are_the_report_as_json(client: FlaskClient) -> None:
    client.get("/add/2/3")
    stats = client.get("/stats").json
    assert stats["process"]["total"]["misses"] == 1  # type: ignore[index]
    assert stats["shared"] is False  # type: ignore[index]
