"""The in-process cache warning outside gunicorn (which ``test_multiworker.py`` runs for
real): a fork after ``init_app``, and uWSGI's worker numbers."""

from __future__ import annotations

import logging
import os
import types
import warnings

import pytest

from flask_stash import Cache, workers

from .conftest import make_app

TEXT = "every worker has its own cache"


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "_state", workers._State())


def fork_child() -> None:
    with warnings.catch_warnings():  # Python 3.12 warns about fork() with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if TEXT in r.getMessage()]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_second_fork_after_init_app_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    Cache(make_app())
    with caplog.at_level(logging.WARNING, logger="flask_stash"):
        fork_child()
        assert warnings_in(caplog) == []  # one child: a single worker
        fork_child()
        fork_child()
    (record,) = warnings_in(caplog)
    assert record.levelno == logging.WARNING
    assert "#shared-backends" in record.getMessage()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forks_with_a_shared_backend_are_silent(
    caplog: pytest.LogCaptureFixture, tmp_path: object
) -> None:
    Cache(make_app(CACHE_TYPE="FileSystemCache", CACHE_DIR=str(tmp_path)))
    with caplog.at_level(logging.WARNING, logger="flask_stash"):
        fork_child()
        fork_child()
    assert warnings_in(caplog) == []


@pytest.mark.parametrize(
    ("numproc", "worker_id", "warns"),
    [(4, 0, True), (4, 1, True), (4, 2, False), (1, 1, False)],
)
def test_uwsgi_workers(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    numproc: int,
    worker_id: int,
    warns: bool,
) -> None:
    # uWSGI's embedded module exists only inside uWSGI: its two functions used here.
    fake = types.SimpleNamespace(numproc=numproc, worker_id=lambda: worker_id)
    monkeypatch.setitem(__import__("sys").modules, "uwsgi", fake)
    with caplog.at_level(logging.WARNING, logger="flask_stash"):
        Cache(make_app())
        Cache(make_app())  # a second app or cache: still one warning
    assert len(warnings_in(caplog)) == (1 if warns else 0)
    if warns:
        assert f"uWSGI runs {numproc} workers" in warnings_in(caplog)[0].getMessage()
