"""Flask-Stash's framework-free engine: backends, serializers, keys, get-or-compute.

Nothing under ``flask_stash.core`` imports Flask, Werkzeug or Jinja2 (a test enforces it),
so the engine can cache any Python code and be tested without a web framework.
"""

from flask_stash.core.api import (
    MISS,
    TTL,
    Backend,
    SupportsAtomicAdd,
    SupportsIncrement,
    SupportsLock,
    SupportsPublish,
    SupportsScan,
)
from flask_stash.core.backends import create_backend
from flask_stash.core.backends.memory import MemoryBackend
from flask_stash.core.backends.null import NullBackend
from flask_stash.core.engine import Lookup
from flask_stash.core.entry import Entry
from flask_stash.core.errors import (
    BackendError,
    ConfigurationError,
    MissingDependencyError,
    SerializationError,
    StashError,
    UndecodableEntry,
)
from flask_stash.core.memoize import memoize
from flask_stash.core.pipeline import aget_or_compute, get_or_compute
from flask_stash.core.serializers import JsonSerializer, PickleSerializer, Serializer
from flask_stash.core.stampede import Protection
from flask_stash.core.stats import Stats
from flask_stash.core.store import Store
from flask_stash.core.tier import TieredBackend

__all__ = [
    "MISS",
    "TTL",
    "Backend",
    "BackendError",
    "ConfigurationError",
    "Entry",
    "JsonSerializer",
    "Lookup",
    "MemoryBackend",
    "MissingDependencyError",
    "NullBackend",
    "PickleSerializer",
    "Protection",
    "SerializationError",
    "Serializer",
    "StashError",
    "Stats",
    "Store",
    "SupportsAtomicAdd",
    "SupportsIncrement",
    "SupportsLock",
    "SupportsPublish",
    "SupportsScan",
    "TieredBackend",
    "UndecodableEntry",
    "aget_or_compute",
    "create_backend",
    "get_or_compute",
    "memoize",
]
