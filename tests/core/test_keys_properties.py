"""Canonical keys, property-based: two calls share a key if and only if they are the same call.

Functions are generated as signatures (positional-only, positional-or-keyword with and
without defaults, ``*args``, keyword-only, ``**kwargs``); calls as the values bound to each
parameter; spellings as every legal way of passing those values (positionally or by keyword,
defaults given or left out, keywords in any order). ``tests/keymodel.py`` says, independently
of the key module, when two argument values are the same.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import given, note
from hypothesis import strategies as st

import flask_stash
from flask_stash.core.keys import CallKey, encode

from .. import keymodel
from ..keymodel import canon, clone

P = inspect.Parameter

# -- values -----------------------------------------------------------------------------------

atoms = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=6),
    st.binary(max_size=4),
)
# The few live identity-keyed objects a test run shares (so "the same object" happens).
IDENTITY_POOL = [cls() for cls in keymodel.IDENTITY_CLASSES for _ in range(2)]


def _objects(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(keymodel.Point, children, children),
        st.builds(keymodel.OtherPoint, children, children),
        st.tuples(st.sampled_from(keymodel.NAMED_TUPLES), children, children).map(
            lambda t: t[0](t[1], t[2])
        ),
        st.sampled_from([*keymodel.Tag, *keymodel.OtherTag]),
        st.builds(keymodel.Hooked, children),
        st.builds(keymodel.OtherHooked, children),
        st.builds(keymodel.Shown, st.integers(-3, 3)),
        st.sampled_from(IDENTITY_POOL + keymodel.CALLABLES),
    )


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    hashable = st.one_of(atoms, st.sampled_from([*keymodel.Tag]))
    return st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.lists(children, max_size=3).map(keymodel.MyList),
        st.dictionaries(hashable, children, max_size=3),
        st.sets(hashable, max_size=3),
        st.frozensets(hashable, max_size=3),
        _objects(children),
    )


values = st.recursive(atoms, _containers, max_leaves=6)
# Small alphabets make equal values (and so equal calls) common enough to test "if".
small_values = st.one_of(
    st.sampled_from([0, 1, False, True, None, "", "a", 0.0, -0.0, b""]),
    st.lists(st.sampled_from([0, 1, "a"]), max_size=2),
    st.lists(st.sampled_from([0, 1, "a"]), max_size=2).map(tuple),
    st.sampled_from([*keymodel.Tag, *keymodel.OtherTag, *IDENTITY_POOL, *keymodel.CALLABLES]),
    st.builds(keymodel.Point, st.integers(0, 1), st.integers(0, 1)),
    st.builds(keymodel.OtherPoint, st.integers(0, 1), st.integers(0, 1)),
    st.builds(keymodel.Pair, st.integers(0, 1), st.integers(0, 1)),
    st.builds(keymodel.Couple, st.integers(0, 1), st.integers(0, 1)),
    st.builds(keymodel.RowAB, st.integers(0, 1), st.integers(0, 1)),
    st.builds(keymodel.RowCD, st.integers(0, 1), st.integers(0, 1)),
    st.builds(keymodel.Hooked, st.integers(0, 1)),
    st.builds(keymodel.OtherHooked, st.integers(0, 1)),
)
any_value = st.one_of(small_values, values)

# -- functions and calls ----------------------------------------------------------------------


@st.composite
def signatures(draw: st.DrawFn) -> inspect.Signature:
    params: list[P] = []
    defaulted = False
    for i in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from([P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD]))
        if params and params[-1].kind is P.POSITIONAL_OR_KEYWORD:
            kind = P.POSITIONAL_OR_KEYWORD  # positional-only parameters come first
        defaulted = defaulted or draw(st.booleans())
        default = draw(small_values) if defaulted else P.empty
        params.append(P(f"p{i}", kind, default=default))
    if draw(st.booleans()):
        params.append(P("args", P.VAR_POSITIONAL))
    for i in range(draw(st.integers(0, 2))):
        default = draw(small_values) if draw(st.booleans()) else P.empty
        params.append(P(f"k{i}", P.KEYWORD_ONLY, default=default))
    if draw(st.booleans()):
        params.append(P("kwargs", P.VAR_KEYWORD))
    return inspect.Signature(params)


def function_with(signature: inspect.Signature) -> Callable[..., Any]:
    def fn(*args: Any, **kwargs: Any) -> None: ...

    fn.__signature__ = signature  # type: ignore[attr-defined]
    return fn


Call = dict[str, Any]  # parameter name -> bound value (a tuple for *args, a dict for **kwargs)


@st.composite
def calls(draw: st.DrawFn, signature: inspect.Signature) -> Call:
    call: Call = {}
    for param in signature.parameters.values():
        if param.kind is P.VAR_POSITIONAL:
            call[param.name] = tuple(draw(st.lists(any_value, max_size=2)))
        elif param.kind is P.VAR_KEYWORD:
            names = st.sampled_from(["x", "y", "zz"])
            call[param.name] = draw(st.dictionaries(names, any_value, max_size=2))
        elif param.default is not P.empty and draw(st.booleans()):
            call[param.name] = draw(st.sampled_from([param.default, clone(param.default)]))
        else:
            call[param.name] = draw(any_value)
    return call


@st.composite
def related_calls(draw: st.DrawFn, signature: inspect.Signature, first: Call) -> Call:
    """A second call: the same one rebuilt from new objects, one argument changed, or any."""
    how = draw(st.sampled_from(["same", "one changed", "independent"]))
    if how == "independent":
        return draw(calls(signature))
    second = {name: clone(value) for name, value in first.items()}
    if how == "one changed" and second:
        name = draw(st.sampled_from(sorted(second)))
        second[name] = draw(calls(signature))[name]
    return second


def is_default(param: P, value: object) -> bool:
    return param.default is not P.empty and canon(value) == canon(param.default)


@st.composite
def spellings(
    draw: st.DrawFn, signature: inspect.Signature, call: Call
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """One legal way of writing ``call`` as ``f(*args, **kwargs)``."""
    params = list(signature.parameters.values())
    positional = [p for p in params if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    var_args = call.get("args", ())
    # The shortest positional prefix: up to the last positional-only argument that must
    # be given (it has no keyword form), or every one when *args carries values.
    needed = 0
    for i, param in enumerate(positional):
        if param.kind is P.POSITIONAL_ONLY and not is_default(param, call[param.name]):
            needed = i + 1
    if var_args:
        needed = len(positional)
    cut = draw(st.integers(needed, len(positional)))
    args = [call[p.name] for p in positional[:cut]] + list(var_args)
    keywords: dict[str, Any] = {}
    for param in positional[cut:] + [p for p in params if p.kind is P.KEYWORD_ONLY]:
        value = call[param.name]
        leave_out = is_default(param, value) and draw(st.booleans())
        if param.kind is P.POSITIONAL_ONLY or leave_out:
            continue  # positional-only past the cut: at its default, so left out
        keywords[param.name] = value
    keywords.update(call.get("kwargs", {}))
    order = draw(st.permutations(sorted(keywords)))
    return tuple(args), {name: keywords[name] for name in order}


def model(signature: inspect.Signature, call: Call, ignore: frozenset[str] = frozenset()) -> object:
    out = []
    for name, value in call.items():
        if name in ignore:
            continue
        kind = signature.parameters[name].kind
        if kind is P.VAR_POSITIONAL:
            out.append(("*", tuple(canon(v) for v in value)))
        elif kind is P.VAR_KEYWORD:
            out.append(("**", frozenset((k, canon(v)) for k, v in value.items())))
        else:
            out.append((name, canon(value)))
    return tuple(out)


# -- properties -------------------------------------------------------------------------------


@given(st.data())
def test_two_calls_share_a_key_iff_they_are_the_same_call(data: st.DataObject) -> None:
    signature = data.draw(signatures(), label="signature")
    call_key = CallKey(function_with(signature))
    first = data.draw(calls(signature), label="first call")
    second = data.draw(related_calls(signature, first), label="second call")
    args1, kwargs1 = data.draw(spellings(signature, first), label="first spelling")
    args2, kwargs2 = data.draw(spellings(signature, second), label="second spelling")
    key1, key2 = call_key.text(args1, kwargs1), call_key.text(args2, kwargs2)
    note(f"keys: {key1!r} / {key2!r}")
    assert (key1 == key2) == (model(signature, first) == model(signature, second))


@given(st.data())
def test_every_spelling_of_one_call_is_one_key(data: st.DataObject) -> None:
    signature = data.draw(signatures(), label="signature")
    call_key = CallKey(function_with(signature))
    call = data.draw(calls(signature), label="call")
    args1, kwargs1 = data.draw(spellings(signature, call), label="one spelling")
    args2, kwargs2 = data.draw(spellings(signature, call), label="another")
    assert call_key.text(args1, kwargs1) == call_key.text(args2, kwargs2)


@given(st.data())
def test_args_to_ignore_drops_exactly_the_named_arguments(data: st.DataObject) -> None:
    signature = data.draw(signatures(), label="signature")
    names = sorted(signature.parameters)
    ignore = frozenset(data.draw(st.lists(st.sampled_from(names)) if names else st.just([])))
    call_key = CallKey(function_with(signature), ignore=ignore)
    first = data.draw(calls(signature), label="first call")
    second = data.draw(related_calls(signature, first), label="second call")
    key1 = call_key.text(*data.draw(spellings(signature, first)))
    key2 = call_key.text(*data.draw(spellings(signature, second)))
    same = model(signature, first, ignore) == model(signature, second, ignore)
    assert (key1 == key2) == same


@given(any_value, any_value)
def test_values_share_an_encoding_iff_they_are_the_same_argument(a: Any, b: Any) -> None:
    assert (encode(a) == encode(b)) == (canon(a) == canon(b))
    assert encode(clone(a)) == encode(a)


def test_keys_are_the_same_in_another_process() -> None:
    """Keys must match across workers and restarts: no addresses, tokens or hash seeds."""
    source_root = Path(flask_stash.__file__).resolve().parent.parent  # the code under test
    repo_root = Path(__file__).resolve().parents[2]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(source_root), str(repo_root)]),
        PYTHONHASHSEED="12345",  # sets and str hashes iterate in another order
    )
    child = subprocess.run(
        [sys.executable, "-c", "from tests.keymodel import main; main()"],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(child.stdout) == keymodel.sample_keys()


CALLABLE_ARGUMENTS = st.sampled_from(keymodel.CALLABLES)


@given(CALLABLE_ARGUMENTS, CALLABLE_ARGUMENTS)
def test_functions_as_arguments_share_a_key_iff_they_are_the_same_function(a: Any, b: Any) -> None:
    assert (encode(a) == encode(b)) == (canon(a) == canon(b))
