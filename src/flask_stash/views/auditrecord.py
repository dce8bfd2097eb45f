"""How the key audit records what a cached view reads (see :mod:`flask_stash.views.audit`).

How it records, for the duration of the view call only (everything is put back in a
``finally``, even when the view raises; nothing here runs when the audit is off):

- ``request.args``, ``request.cookies`` and ``request.headers`` are replaced by recording
  copies (every read counts: werkzeug reading them on the view's behalf, for
  ``request.values`` or ``request.accept_languages``, is the view reading them);
- the request object's class is swapped for a recording subclass (made once per class)
  whose properties note reads of the URL, host, scheme, client address and WSGI environ.
  Werkzeug and Flask read these constantly for their own purposes (``request.url`` reads
  ``host``), so only reads by user code count: the first caller outside werkzeug, Flask and
  this package, looking through werkzeug's context-local proxies and Jinja's attribute
  lookup (a template is user code);
- ``flask.g``'s class is swapped the same way, to note reads of the attributes that were
  already set when the view started (by ``before_request`` hooks);
- the request context's URL adapter is wrapped to notice external URLs built from the
  request's host (``url_for(..., _external=True)``).

Clarity over speed: this is a debug tool.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, cast
from urllib.parse import urlsplit

from flask import Request, current_app
from flask.globals import app_ctx, request_ctx
from werkzeug.datastructures import EnvironHeaders, ImmutableMultiDict
from werkzeug.routing import MapAdapter

ALL = "*"  # the view iterated over the whole collection

# Request attributes the default key ignores, and the inputs each one is made of.
QUERY, HOST, SCHEME, CLIENT = "query", "host", "scheme", "client"
REQUEST_INPUTS: dict[str, tuple[str, ...]] = {
    "query_string": (QUERY,),
    "full_path": (QUERY,),
    "url": (SCHEME, HOST, QUERY),
    "base_url": (SCHEME, HOST),
    "root_url": (SCHEME, HOST),
    "url_root": (SCHEME, HOST),
    "host_url": (SCHEME, HOST),
    "host": (HOST,),
    "server": (HOST,),
    "scheme": (SCHEME,),
    "is_secure": (SCHEME,),
    "remote_addr": (CLIENT,),
    "access_route": (CLIENT,),
}
#: What the recording request class watches: those attributes, and the WSGI environ.
REQUEST_WATCHED = (*REQUEST_INPUTS, "environ")
# WSGI environ keys that are one of those inputs; ``HTTP_*`` keys count as headers.
ENVIRON_INPUTS = {
    "QUERY_STRING": QUERY,
    "HTTP_HOST": HOST,
    "SERVER_NAME": HOST,
    "SERVER_PORT": HOST,
    "wsgi.url_scheme": SCHEME,
    "REMOTE_ADDR": CLIENT,
    "REMOTE_PORT": CLIENT,
}
ENVIRON_KEYED = frozenset({"PATH_INFO", "SCRIPT_NAME", "REQUEST_METHOD"})  # path and method
EXTERNAL_URL = "url_for(..., _external=True)"


@dataclass
class Reads:
    """What one view call read: names per collection, and how each other input was read."""

    args: set[str] = field(default_factory=set)
    headers: set[str] = field(default_factory=set)
    cookies: set[str] = field(default_factory=set)
    #: ``query``/``host``/``scheme``/``client`` -> how it was read (``request.url``...).
    inputs: dict[str, set[str]] = field(default_factory=dict)
    #: WSGI environ keys that are none of the inputs above (middleware data, REMOTE_USER...).
    environ: set[str] = field(default_factory=set)
    #: Attributes of ``flask.g`` that were set before the view started.
    g: set[str] = field(default_factory=set)

    def note(self, kind: str, how: str) -> None:
        self.inputs.setdefault(kind, set()).add(how)

    def note_environ(self, key: str) -> None:
        if key in ENVIRON_INPUTS:
            self.note(ENVIRON_INPUTS[key], f"request.environ[{key!r}]")
        elif key.startswith("HTTP_"):
            self.headers.add(key[5:].replace("_", "-").lower())
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            self.headers.add(key.replace("_", "-").lower())
        elif key not in ENVIRON_KEYED:
            self.environ.add(key)


@dataclass
class _Watch:
    """The recording in progress in this context (the view's thread or coroutine)."""

    reads: Reads
    #: ``flask.g`` attributes set before the view and not overwritten by it since.
    g_before: set[str]


_watching: ContextVar[_Watch | None] = ContextVar("flask_stash.views.audit", default=None)
# True while a watched request property computes its value: the headers it reads on the
# way (``request.host`` reads ``Host``) are noted as that property, not as header reads.
_computing: ContextVar[bool] = ContextVar("flask_stash.views.audit.computing", default=False)

# -- whose read is it? ---------------------------------------------------------------------

_INTERNAL = ("werkzeug", "flask", "flask_stash")
#: Frames that only pass a read on: context-local proxies, Jinja's attribute lookup.
_PASS_THROUGH = ("werkzeug.local", "jinja2")


def _in_package(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == name or module.startswith(name + ".") for name in packages)


def _read_by_user(frame: FrameType | None) -> bool:
    """Whether the read made from ``frame`` comes from user code (a template included)."""
    while frame is not None:
        module = frame.f_globals.get("__name__") or ""  # compiled templates have none
        if not _in_package(module, _PASS_THROUGH):
            return not _in_package(module, _INTERNAL)
        frame = frame.f_back
    return False


def _watch_for(frame: FrameType | None) -> _Watch | None:
    """The recording to note a read in, if one is running and the reader is user code."""
    watch = _watching.get()
    return watch if watch is not None and _read_by_user(frame) else None


# -- request.args, request.cookies, request.headers ----------------------------------------


class _RecordingMultiDict(ImmutableMultiDict[str, str]):
    seen: set[str]

    def __getitem__(self, key: str) -> Any:
        self.seen.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None, type: Any = None) -> Any:  # type: ignore[override]
        self.seen.add(key)
        return super().get(key, default, type)

    def getlist(self, key: str, type: Any = None) -> Any:
        self.seen.add(key)
        return super().getlist(key, type)

    def __contains__(self, key: object) -> bool:
        self.seen.add(str(key))
        return super().__contains__(key)


def _reading_everything(name: str) -> Any:
    """``_RecordingMultiDict``'s ``name``, noting that the whole collection was read."""

    def method(self: _RecordingMultiDict, *args: Any, **kwargs: Any) -> Any:
        self.seen.add(ALL)
        return getattr(super(_RecordingMultiDict, self), name)(*args, **kwargs)

    method.__name__ = name
    return method


# Everything that reveals the whole collection (``dict(args)`` goes through ``keys``).
for _name in ("__iter__", "__len__", "keys", "values", "items", "lists", "listvalues",
              "to_dict", "copy", "__copy__", "__deepcopy__"):  # fmt: skip
    setattr(_RecordingMultiDict, _name, _reading_everything(_name))
del _name


class _RecordingHeaders(EnvironHeaders):
    seen: set[str]

    # A lookup by name goes through ``_get_key`` on Werkzeug >= 3.1 and through
    # ``__getitem__`` on 3.0: note it in both (noting twice is harmless).
    def __getitem__(self, key: str, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        self._note(key)
        return super().__getitem__(key, *args, **kwargs)

    def _get_key(self, key: str) -> str:
        self._note(key)
        return super()._get_key(key)

    def getlist(self, key: str, type: Any = None) -> Any:
        self._note(key)
        # Werkzeug walks every header for this: a plain view keeps that walk from
        # counting as reading them all.
        return EnvironHeaders(self.environ).getlist(key, type)

    def _note(self, key: object) -> None:
        if isinstance(key, str) and not _computing.get():
            self.seen.add(key.lower())

    def __iter__(self) -> Iterator[tuple[str, str]]:
        self.seen.add(ALL)
        return super().__iter__()


def _recorder(kind: type[_RecordingMultiDict], data: Any, seen: set[str]) -> Any:
    copy = kind(data.items(multi=True))
    copy.seen = seen
    return copy


@contextmanager
def _recording_collections(request: Request, reads: Reads) -> Iterator[None]:
    saved = {name: request.__dict__.get(name) for name in ("args", "cookies", "headers")}
    args = _recorder(_RecordingMultiDict, request.args, reads.args)
    cookies = _recorder(_RecordingMultiDict, request.cookies, reads.cookies)
    headers = _RecordingHeaders(request.environ)
    headers.seen = reads.headers
    request.__dict__.update(args=args, cookies=cookies, headers=headers)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                request.__dict__.pop(name, None)
            else:
                request.__dict__[name] = value


# -- request.url, request.host, request.environ... -----------------------------------------


class _RecordingEnviron(MutableMapping[str, Any]):
    """The WSGI environ as user code sees it during the view: reads noted, writes passed on."""

    def __init__(self, environ: dict[str, Any], reads: Reads) -> None:
        self._environ = environ
        self._reads = reads

    def __getitem__(self, key: str) -> Any:
        self._reads.note_environ(key)
        return self._environ[key]

    def __contains__(self, key: object) -> bool:
        self._reads.note_environ(str(key))
        return key in self._environ

    def __iter__(self) -> Iterator[str]:
        self._reads.environ.add(ALL)
        return iter(self._environ)

    def __len__(self) -> int:
        self._reads.environ.add(ALL)
        return len(self._environ)

    def __setitem__(self, key: str, value: Any) -> None:
        self._environ[key] = value

    def __delitem__(self, key: str) -> None:
        del self._environ[key]

    def copy(self) -> dict[str, Any]:
        self._reads.environ.add(ALL)
        return dict(self._environ)


def _watched(cls: type, name: str) -> property:
    """A property noting user reads of ``name``, then reading it as ``cls`` would.

    ``name`` is either a plain instance attribute (``scheme``, ``environ``...) or one of
    ``cls``'s descriptors (werkzeug's cached properties keep their value in the instance
    ``__dict__`` under the same name, so restoring the class keeps what was computed).
    """
    inner = inspect.getattr_static(cls, name, None)
    is_descriptor = hasattr(inner, "__get__")

    def get(self: Any) -> Any:
        watch = _watch_for(sys._getframe(1))
        computing = _computing.set(True)
        try:
            value = (
                inner.__get__(self, type(self)) if is_descriptor else _instance_value(self, name)
            )
        finally:
            _computing.reset(computing)
        if watch is None:
            return value
        if name == "environ":
            return _RecordingEnviron(value, watch.reads)
        for kind in REQUEST_INPUTS[name]:
            watch.reads.note(kind, f"request.{name}")
        return value

    def set(self: Any, value: Any) -> None:
        if hasattr(inner, "__set__"):
            inner.__set__(self, value)
        else:
            self.__dict__[name] = value

    def delete(self: Any) -> None:
        if hasattr(inner, "__delete__"):
            inner.__delete__(self)
        else:
            del self.__dict__[name]

    return property(get, set, delete)


def _instance_value(obj: Any, name: str) -> Any:
    try:
        return obj.__dict__[name]
    except KeyError:
        raise AttributeError(name) from None


_recording_classes: dict[type, type] = {}


def _recording_class(cls: type, mixin: type | None, watched: tuple[str, ...] = ()) -> type:
    """The recording subclass of ``cls`` (made once per class): ``mixin`` first, and a
    :func:`_watched` property for each of the ``watched`` attributes.

    It keeps ``cls``'s name, so that ``repr(request)`` and error pages look as usual, and its
    memory layout (no slots of its own), which ``__class__`` assignment requires.
    """
    if cls in _recording_classes.values():  # a cached view called during another's miss
        return cls
    found = _recording_classes.get(cls)
    if found is None:
        name = {"__slots__": (), "__module__": cls.__module__, "__qualname__": cls.__qualname__}
        bases = (cls,) if mixin is None else (mixin, cls)
        attributes = {attribute: _watched(cls, attribute) for attribute in watched}
        found = _recording_classes[cls] = type(cls.__name__, bases, {**attributes, **name})
    return found


@contextmanager
def _swapped_class(obj: Any, recording: type) -> Iterator[None]:
    original = type(obj)
    # Past the class's own __setattr__: flask.g's would store "__class__" as an attribute.
    object.__setattr__(obj, "__class__", recording)
    try:
        yield
    finally:
        object.__setattr__(obj, "__class__", original)


# -- flask.g ---------------------------------------------------------------------------------


def _note_globals(names: Iterable[str], frame: FrameType | None) -> None:
    watch = _watching.get()
    if watch is None:
        return
    before = watch.g_before.intersection(names)
    if before and _read_by_user(frame):
        watch.reads.g.update(before)


class _GlobalsRecorder:
    """Mixed into ``flask.g``'s class during the view: notes reads of pre-set attributes.

    No ``__slots__``: with its ``__dict__`` and ``__weakref__`` the subclass keeps the
    memory layout of ``g``'s class, which ``__class__`` assignment requires.
    """

    def __getattribute__(self, name: str) -> Any:
        _note_globals((name,), sys._getframe(1))
        return super().__getattribute__(name)

    def __setattr__(self, name: str, value: Any) -> None:
        watch = _watching.get()
        if watch is not None:  # set by the view itself: reading it back is no request input
            watch.g_before.discard(name)
        super().__setattr__(name, value)

    def get(self, name: str, default: Any = None) -> Any:
        _note_globals((name,), sys._getframe(1))
        return super().get(name, default)  # type: ignore[misc]

    def pop(self, name: str, *default: Any) -> Any:
        _note_globals((name,), sys._getframe(1))
        return super().pop(name, *default)  # type: ignore[misc]

    def setdefault(self, name: str, default: Any = None) -> Any:
        _note_globals((name,), sys._getframe(1))
        return super().setdefault(name, default)  # type: ignore[misc]

    def __contains__(self, name: str) -> bool:
        _note_globals((name,), sys._getframe(1))
        return bool(super().__contains__(name))  # type: ignore[misc]

    def __iter__(self) -> Iterator[str]:
        names = list(super().__iter__())  # type: ignore[misc]
        _note_globals(names, sys._getframe(1))
        return iter(names)


# -- url_for(..., _external=True) --------------------------------------------------------------


class _RecordingAdapter:
    """The request's URL adapter, noting URLs built with the request's host and scheme."""

    def __init__(self, adapter: MapAdapter, reads: Reads, host_fixed: bool) -> None:
        self._adapter = adapter
        self._reads = reads
        self._host_fixed = host_fixed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)

    def build(self, *args: Any, **kwargs: Any) -> str:
        url = self._adapter.build(*args, **kwargs)
        if urlsplit(url).netloc:
            if not self._host_fixed:
                self._reads.note(HOST, EXTERNAL_URL)
            if kwargs.get("url_scheme") is None:
                self._reads.note(SCHEME, EXTERNAL_URL)
        return url


@contextmanager
def _recording_links(reads: Reads) -> Iterator[None]:
    adapter = request_ctx.url_adapter
    if adapter is None:
        yield
        return
    app = current_app
    # With SERVER_NAME (and no host matching) Flask builds external URLs from it.
    host_fixed = app.config["SERVER_NAME"] is not None and not app.url_map.host_matching
    request_ctx.url_adapter = cast(MapAdapter, _RecordingAdapter(adapter, reads, host_fixed))
    try:
        yield
    finally:
        request_ctx.url_adapter = adapter


# -- the recording as a whole --------------------------------------------------------------------


@contextmanager
def recording(request: Request) -> Iterator[Reads]:
    """Record what the code inside reads from the request and ``flask.g`` (see the module)."""
    target = _unproxied(request)
    g = app_ctx.g
    reads = Reads()
    token = _watching.set(_Watch(reads, set(vars(g))))
    try:
        with ExitStack() as undo:
            undo.enter_context(_recording_collections(target, reads))
            request_class = _recording_class(type(target), None, REQUEST_WATCHED)
            undo.enter_context(_swapped_class(target, request_class))
            undo.enter_context(_swapped_class(g, _recording_class(type(g), _GlobalsRecorder)))
            undo.enter_context(_recording_links(reads))
            yield reads
    finally:
        _watching.reset(token)


def _unproxied(obj: Any) -> Any:
    """The object behind a werkzeug ``LocalProxy`` (``flask.request``), or ``obj`` itself."""
    unwrap = getattr(obj, "_get_current_object", None)
    return obj if unwrap is None else unwrap()
