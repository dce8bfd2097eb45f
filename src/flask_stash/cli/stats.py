"""``flask stash stats``: what the cache did, as a table per cached function and view.

On a shared backend the table that matters is every process's (the workers'): the
``flask`` command is a process of its own that served nothing. On an in-process backend
only this process's figures exist, and the command says so.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from flask_stash.cli.common import Chosen, chosen
from flask_stash.core.report import Figures, Report, ScopeFigures

COLUMNS = (
    "scope",
    "kind",
    "calls",
    "hit ratio",
    "hits",
    "misses",
    "stale",
    "coalesced",
    "passes",
    "errors",
    "time saved",
    "stored",
)


@click.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print cache.stats().as_dict() as JSON.")
def stats_command(as_json: bool) -> None:
    """Hits, misses, stale serves, time saved... per cached function and view."""
    target = chosen()
    report = target.cache.stats()
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, sort_keys=True))
        return
    for line in render(target, report):
        click.echo(line)


def render(target: Chosen, report: Report) -> list[str]:
    """The report as lines of text."""
    lines = [f"{target.label}: {_health(report)}"]
    if report.evictions is not None:
        lines.append(f"Evictions: {report.evictions}")
    mine = f"this process (pid {report.pid}: the flask command itself, not a worker)"
    if not report.shared:
        lines += [
            "",
            "The backend lives in each process: every process has its own entries and its "
            f"own figures. These are the figures of {mine}; read a running process's "
            "figures in the app (cache.stats(), the dashboard, the metrics endpoint).",
        ]
        return [*lines, "", *table(report.process)]
    if report.everyone is None:
        lines += ["", "Every process's figures could not be read from the backend."]
    else:
        lines += ["", "All processes (every process adds its counts within a second):"]
        lines += table(report.everyone)
    lines += ["", f"Of which {mine}:"]
    return lines + table(report.process)


def table(figures: Figures) -> list[str]:
    """One row per scope, busiest first, and the total."""
    scopes = figures.by_calls()
    if not scopes:
        return ["  (no calls counted)"]
    rows = [_row(f) for f in scopes]
    rows.append(_row(figures.total, "total"))
    return _aligned([list(COLUMNS), *rows])


def _row(f: ScopeFigures, scope: str | None = None) -> list[str]:
    ratio = "-" if f.hit_ratio is None else f"{f.hit_ratio:.1%}"
    counts = (f.calls, f.hits, f.misses, f.stale, f.coalesced, f.passes, f.errors)
    calls, *outcomes = (str(n) for n in counts)
    label = scope if scope is not None else (f.scope or "(no scope)")
    kind = "" if scope is not None else f.kind
    return [label, kind, calls, ratio, *outcomes, seconds(f.time_saved), size(f.bytes_stored)]


def _aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for number, row in enumerate(rows):
        cells = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  " + "  ".join(cells).rstrip())
        if number == 0 or number == len(rows) - 2:
            out.append("  " + "  ".join("-" * width for width in widths))
    return out


def _health(report: Report) -> str:
    health = report.health
    if not health:
        return "health unknown"
    if health.get("healthy"):
        return f"healthy (breaker {health.get('state')})"
    error = health.get("last_error") or "no error recorded"
    return f"UNHEALTHY (breaker {health.get('state')}; {error})"


def seconds(value: float) -> str:
    """``0 s``, ``12.3 ms``, ``4.56 s``, ``1.2 h``."""
    if value <= 0:
        return "0 s"
    if value < 1:
        return f"{value * 1000:.1f} ms"
    if value < 3600:
        return f"{value:.2f} s"
    return f"{value / 3600:.1f} h"


def size(value: int) -> str:
    """``0 B``, ``512 B``, ``1.5 KiB``, ``3.0 MiB``..."""
    if value < 1024:
        return f"{value} B"
    amount, unit = value / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if amount < 1024:
            break
        amount, unit = amount / 1024, bigger
    return f"{amount:.1f} {unit}"
