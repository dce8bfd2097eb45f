"""Tags: invalidate a group of entries ("everything about user 42") in O(1).

A tag is a string. Each tag has a version stamp in the backend, like a memoized
function's family stamp (:mod:`flask_stash.core.store`): an entry written while it carried
tag ``t`` records ``t``'s stamp, and :meth:`Store.invalidate_tags
<flask_stash.core.store.Store.invalidate_tags>` replaces that stamp, so every such entry
becomes a miss at once, without any scan. Memoized functions and cached views know their
tags before reading (from the call's arguments), so their stamps come in the same
multi-get as the entry: a tagged hit is still one round trip on one node.

:class:`Tags` is the ``tags=`` option of the decorators: fixed strings and callables of
the call's arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

#: What ``tags=`` accepts: a tag, a callable of the call's arguments returning tags, or an
#: iterable of either.
TagSource = str | Callable[..., str | Iterable[str]]
TagsOption = TagSource | Iterable[TagSource] | None

#: The user-level key prefix of tag stamps (each passes through ``Store.backend_key``).
STAMP_PREFIX = "stash-tag:"


class Tags:
    """The tags of a cached function's calls: fixed strings plus callables that receive
    the call's arguments (``tags=lambda user_id: f"user:{user_id}"``)."""

    __slots__ = ("dynamic", "fixed")

    def __init__(self, option: TagsOption) -> None:
        fixed: list[str] = []
        dynamic: list[Callable[..., Any]] = []
        for item in _items(option):
            if isinstance(item, str):
                fixed.append(checked(item))
            elif callable(item):
                dynamic.append(item)
            else:
                raise TypeError(
                    f"tags are strings or callables of the call's arguments, not {item!r}"
                )
        self.fixed = tuple(dict.fromkeys(fixed))
        self.dynamic = tuple(dynamic)

    def __bool__(self) -> bool:
        return bool(self.fixed or self.dynamic)

    def of(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, ...]:
        """The tags of one call, in order, without repeats."""
        if not self.dynamic:
            return self.fixed
        return tuple(dict.fromkeys(self.fixed + self.of_call(args, kwargs)))

    def of_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, ...]:
        """The tags the callables give for one call (the fixed ones left out)."""
        found: list[str] = []
        for source in self.dynamic:
            produced = source(*args, **kwargs)
            if type(produced) is str and produced:  # the common case, checked at once
                found.append(produced)
                continue
            items = [produced] if isinstance(produced, str) else produced
            try:
                found.extend(checked(tag, source) for tag in items)
            except TypeError as exc:
                if "not iterable" not in str(exc):
                    raise
                raise TypeError(_wrong_output(source, produced)) from None
        return tuple(found)


def tags_of(option: TagsOption) -> Tags | None:
    """:class:`Tags` for a decorator's ``tags=`` (``None`` when there are none)."""
    tags = Tags(option)
    return tags if tags else None


def checked(tag: object, source: object = None) -> str:
    """``tag`` if it is a non-empty string, else a clear error."""
    if not isinstance(tag, str):
        raise TypeError(_wrong_output(source, tag) if source else f"a tag is a str, not {tag!r}")
    if not tag:
        raise ValueError("a tag cannot be empty")
    return tag


def _items(option: TagsOption) -> Iterable[object]:
    if option is None:
        return ()
    if isinstance(option, str) or callable(option):
        return (option,)
    if isinstance(option, (bytes, dict)) or not isinstance(option, Iterable):
        raise TypeError(f"tags are strings or callables of the call's arguments, not {option!r}")
    return tuple(option)


def _wrong_output(source: object, produced: object) -> str:
    name = getattr(source, "__qualname__", None) or repr(source)
    return f"the tags callable {name} must return a str or an iterable of str, not {produced!r}"
