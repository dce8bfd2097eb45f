"""Module-level helpers Flask-Caching exports, for code that imports them by name.

``flask_caching.SUPPORTED_HASH_FUNCTIONS`` and ``flask_caching.function_namespace`` are
used by apps that build their own keys next to the extension's; they are available as
``flask_stash.SUPPORTED_HASH_FUNCTIONS`` and ``flask_stash.function_namespace``.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from typing import Any

from flask_stash.core.keys import encode

#: The hash constructors Flask-Caching lists as supported for ``CACHE_HASH_METHOD``
#: (any ``hashlib`` constructor works here).
SUPPORTED_HASH_FUNCTIONS = [
    hashlib.sha1,
    hashlib.sha224,
    hashlib.sha256,
    hashlib.sha384,
    hashlib.sha512,
    hashlib.md5,
]

#: Control characters removed from namespaces, as Flask-Caching does (memcached keys).
_CONTROL = dict.fromkeys(range(33))


def function_namespace(f: Callable[..., Any], args: Any = None) -> tuple[str, str | None]:
    """``(namespace of f, namespace of f for one instance or None)``, as Flask-Caching's.

    The instance comes from a bound method's ``__self__``, or from ``args[0]`` when ``f``
    takes ``self``. Unlike Flask-Caching, an instance without ``__caching_id__()`` is
    identified by a stable encoding of the object, never by its ``repr`` (which may hold
    a memory address that the next object reuses).

    Raises ``ValueError`` for a function taking ``cls`` when ``args`` does not start with
    a class, like Flask-Caching.
    """
    names = _positional_names(f)
    instance = getattr(f, "__self__", None)
    token: str | None = None
    if instance is not None and not inspect.isclass(instance):
        token = _instance_id(instance)
    elif names[:1] == ["self"] and args:
        token = _instance_id(args[0])
    if names[:1] == ["cls"] and not (args and inspect.isclass(args[0])):
        raise ValueError(
            "When using `delete_memoized` on a `@classmethod` you must provide the class "
            "as the first argument"
        )
    name = getattr(f, "__qualname__", None) or getattr(f, "__name__", repr(f))
    namespace = f"{f.__module__}.{name}".translate(_CONTROL)
    return namespace, (f"{namespace}.{token}".translate(_CONTROL) if token else None)


def _positional_names(f: Callable[..., Any]) -> list[str]:
    try:
        parameters = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]


def _instance_id(obj: object) -> str:
    caching_id = getattr(obj, "__caching_id__", None)
    return str(caching_id()) if callable(caching_id) else encode(obj)
