"""Stack depth helpers for the recursion tests (Flask-free, shared with the Flask layer's)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable


def stack_depth() -> int:
    """Python frames on the current thread's stack."""
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back  # type: ignore[assignment]
    return depth


def without_overflow(run: Callable[[], int]) -> int | str:
    """``run()``, or the text ``"RecursionError"``: a short failure instead of a thousand-frame
    traceback, and the frames freed (with what they held) before the test ends."""
    try:
        return run()
    except RecursionError:
        pass
    gc.collect()
    return "RecursionError"
