"""Print the option x front end matrix as a Markdown table, from the table the tests use.

Each cell says how the option is given there (decorator keyword, tag syntax, ``CACHE_*``
setting, accepted without effect, or rejected) and which test covers it. Whether the cell
passes comes from pytest, not from here::

    .venv/bin/python scripts/option_matrix.py
    .venv/bin/python -m pytest tests/flask_layer/test_option_matrix.py -q
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.flask_layer.option_table import (
    CELLS,
    CONFIG,
    CONFIG_KEYS,
    FRONTS,
    OPTIONS,
    cell_test_id,
)


def cell_text(front: str, option: str) -> str:
    kind = CELLS[(front, option)]
    how = f"{kind} (`{CONFIG_KEYS[option]}`)" if kind == CONFIG else kind
    return f"{how}: `{cell_test_id(front, option).rsplit('::', 1)[1]}`"


def markdown() -> str:
    lines = [
        "| option | " + " | ".join(FRONTS.values()) + " |",
        "|---" * (len(FRONTS) + 1) + "|",
    ]
    lines += [
        f"| `{option}` | " + " | ".join(cell_text(front, option) for front in FRONTS) + " |"
        for option in OPTIONS
    ]
    lines.append("")
    lines.append("Tests: `tests/flask_layer/test_option_matrix.py` (one per cell).")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())
