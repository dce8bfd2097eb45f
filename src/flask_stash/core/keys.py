"""Canonical cache keys for function calls.

``f(1, 2)``, ``f(1, b=2)``, ``f(b=2, a=1)`` and ``f(1)`` (when ``b`` defaults to 2) are one
call, so they make one key. Values are encoded by type, so ``0``, ``False``, ``0.0``,
``"0"`` and ``None`` never collide. Objects are identified by a ``__caching_id__()`` hook or
a stable structural form; an object with neither gets a token of its own for as long as it
lives, never its memory address (an address is reused by the next object and would serve
one object's result for another).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import hashlib
import inspect
import re
import threading
import types
import uuid
import weakref
from collections.abc import Callable, Collection
from decimal import Decimal
from typing import Any

HashMethod = Callable[[bytes], Any]

_ATOMS = frozenset({int, str, float, bool, type(None), bytes})
_REPR_STABLE = (dt.datetime, dt.date, dt.time, dt.timedelta, uuid.UUID, Decimal, complex, range)
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
_REQUIRED = object()


def hash_text(text: str, hash_method: HashMethod = hashlib.sha256) -> str:
    """Hex digest of ``text``: fixed length, safe for every backend's key rules."""
    digest: str = hash_method(text.encode("utf-8", "surrogatepass")).hexdigest()
    return digest


def qualified_name(obj: Any) -> str:
    """``module.qualname`` of a function or class: stable across processes and restarts."""
    module = getattr(obj, "__module__", None) or "?"
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)
    return f"{module}.{name}"


def encode(value: object) -> str:
    """Deterministic, type-distinguishing text for ``value`` (the input of a key hash)."""
    kind = type(value)
    if kind in _ATOMS:
        return repr(value)
    if kind is tuple or kind is list:
        return _encode_sequence(value)  # type: ignore[arg-type]
    if kind is dict:
        items = sorted(f"{encode(k)}:{encode(v)}" for k, v in value.items())  # type: ignore[attr-defined]
        return "{" + ",".join(items) + "}"
    if kind is set or kind is frozenset:
        return kind.__name__ + "{" + ",".join(sorted(map(encode, value))) + "}"  # type: ignore[call-overload]
    return _encode_object(value)


def _encode_sequence(value: tuple[object, ...] | list[object]) -> str:
    for item in value:
        if type(item) not in _ATOMS:
            break
    else:  # only atoms: repr is already canonical, and the fastest encoding
        return repr(value)
    open_, close = ("(", ",)") if type(value) is tuple else ("[", "]")
    return open_ + ",".join(map(encode, value)) + close


def _encode_object(value: object) -> str:
    kind = type(value)
    hook = getattr(value, "__caching_id__", None)
    if hook is not None and not isinstance(value, type):
        return f"<{qualified_name(kind)}#{encode(hook())}>"
    if isinstance(value, type) or inspect.isroutine(value):
        return _encode_callable(value)
    if isinstance(value, enum.Enum):
        return f"<{qualified_name(kind)}.{value.name}>"
    if isinstance(value, _REPR_STABLE):
        return f"<{qualified_name(kind)}:{value!r}>"
    if isinstance(value, (tuple, list, dict, set, frozenset)):  # subclasses of containers
        fields = getattr(kind, "_fields", None)  # a named tuple's field names are its layout
        layout = "" if fields is None else encode(fields)
        return f"<{qualified_name(kind)}{layout}:{encode(_builtin_copy(value))}>"
    if dataclasses.is_dataclass(value):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return f"<{qualified_name(kind)}:{encode(fields)}>"
    if kind.__repr__ is not object.__repr__:
        text = repr(value)
        if not _ADDRESS.search(text):
            return f"<{qualified_name(kind)}:{text}>"
    return f"<{qualified_name(kind)}@{instance_token(value)}>"


def _encode_callable(value: Any) -> str:
    """A function or class by name; a bound method with its object; a lambda or a function
    or class defined inside a function by the object itself (its name is not unique: two
    closures from one factory share it and may compute different things)."""
    name = qualified_name(value)
    owner = getattr(value, "__self__", None)
    if owner is not None and not isinstance(owner, types.ModuleType):
        return f"<{name} of {encode(owner)}>"
    if "<" in name:  # "<lambda>", "f.<locals>.g"
        return f"<{name}@{instance_token(value)}>"
    return f"<{name}>"


def _builtin_copy(value: object) -> object:
    for base in (tuple, list, dict, set, frozenset):
        if isinstance(value, base):
            return base(value)
    raise AssertionError(value)


class _InstanceTokens:
    """A random token per live object, forgotten when the object dies.

    ``id()`` alone is unsafe: CPython reuses the address of a dead object for the next one.
    The weak reference's callback drops the token when the object is collected, before its
    address can be reused.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[int, tuple[weakref.ref[Any], str]] = {}

    def __call__(self, obj: object) -> str:
        oid = id(obj)
        with self._lock:
            known = self._tokens.get(oid)
            if known is not None and known[0]() is obj:
                return known[1]
            try:
                ref = weakref.ref(obj, functools.partial(self._forget, oid))
            except TypeError:
                raise TypeError(
                    f"cannot build a cache key for {type(obj).__qualname__!r} instances: "
                    "define __caching_id__(self) returning a value that identifies the object, "
                    "or a __repr__ that does"
                ) from None
            token = uuid.uuid4().hex
            self._tokens[oid] = (ref, token)
            return token

    def _forget(self, oid: int, _ref: object = None) -> None:
        with self._lock:
            known = self._tokens.get(oid)
            if known is not None and known[0]() is None:
                del self._tokens[oid]


instance_token = _InstanceTokens()


class CallKey:
    """Builds the canonical argument text of calls to one function.

    The common case (positional arguments only, no ``*args``/``**kwargs`` in the signature,
    nothing ignored) takes a fast path without ``inspect.Signature.bind``; it yields exactly
    what the slow path yields for the same call.
    """

    def __init__(self, fn: Callable[..., Any], ignore: Collection[str] = ()) -> None:
        self.signature = inspect.signature(fn)
        params = list(self.signature.parameters.values())
        unknown = set(ignore) - {p.name for p in params}
        if unknown:
            raise ValueError(f"args_to_ignore names no parameter of {fn!r}: {sorted(unknown)}")
        self._ignore = frozenset(ignore)
        plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self._fast = not ignore and all(p.kind in plain for p in params)
        self._defaults = tuple(
            _REQUIRED if p.default is inspect.Parameter.empty else p.default for p in params
        )

    def arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        """The call's arguments in canonical form (defaults applied, keywords placed)."""
        if self._fast and not kwargs and len(args) <= len(self._defaults):
            if len(args) == len(self._defaults):
                return args
            tail = self._defaults[len(args) :]
            if _REQUIRED not in tail:
                return args + tail
        return self._bind(args, kwargs)

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        bound = self.signature.bind(*args, **kwargs)  # raises TypeError like the call would
        bound.apply_defaults()
        out: list[Any] = []
        for name, value in bound.arguments.items():
            if name in self._ignore:
                continue
            kind = self.signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                out.append(("*", *value))
            elif kind is inspect.Parameter.VAR_KEYWORD:
                out.append(("**", *sorted(value.items())))
            elif kind is inspect.Parameter.KEYWORD_ONLY:
                out.append((name, value))
            else:
                out.append(value)
        return tuple(out)

    def text(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """Canonical text of a call: equal for every spelling of the same call."""
        if self._fast and not kwargs and len(args) == len(self._defaults):
            for arg in args:
                if type(arg) not in _ATOMS:
                    break
            else:  # the hot path: every argument given positionally, all atoms
                return repr(args)
        return encode(self.arguments(args, kwargs))
