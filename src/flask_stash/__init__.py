"""Flask-Stash: caching for Flask.

The Flask layer is imported lazily (see ``__getattr__``) so that ``flask_stash.core`` can be
used, and tested, without Flask installed.
"""

from __future__ import annotations

__version__ = "0.1.0.dev0"
