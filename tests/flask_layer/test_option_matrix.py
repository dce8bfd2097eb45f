"""Every option on every front end: one test per cell of ``option_table.CELLS``.

Each accepted cell checks what the option does (not only that it is accepted), the same
scenario on every front end; each rejected cell checks that the option fails loudly.
Time is a fake clock; every deployment of a test shares one in-memory backend, so a
scenario can "redeploy" (a second app on the same data) to see which keys are shared.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, render_template_string
from jinja2 import TemplateSyntaxError

from flask_stash import Cache
from flask_stash.core import MemoryBackend
from flask_stash.testing import FakeClock

from .envs import wait_until
from .option_table import CELLS, CONFIG, CONFIG_KEYS, NO_EFFECT, REJECTED

Call = Callable[..., Any]  # call(variant=0, query="") -> the value the caller sees


class Source:
    """The computation behind every front end: what it returns, or raises, and its runs."""

    def __init__(self) -> None:
        self.value: Any = "v1"
        self.error: Exception | None = None
        self.runs = 0
        self.cost = 0.0  # seconds of busy work (early refresh weighs compute time)
        self.gate: threading.Event | None = None  # computations wait on it when set
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, variant: int) -> Any:
        with self._lock:
            self.runs += 1
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        started = time.perf_counter()
        while time.perf_counter() - started < self.cost:
            pass
        if self.error is not None:
            raise self.error
        return self.value


ACTIVE: dict[str, Source] = {}


def compute(variant: int) -> Any:
    return ACTIVE["source"](variant)


def compute_changed(variant: int) -> Any:  # "the same function after a code change"
    value = ACTIVE["source"](variant)
    return value


compute_changed.__name__ = compute_changed.__qualname__ = "compute"


# -- front ends ----------------------------------------------------------------------------


def _memoize(app: Flask, cache: Cache, options: dict[str, Any], fn: Call) -> Call:
    memoized = cache.memoize(**options)(fn)

    def call(variant: int = 0, query: str = "") -> Any:
        with app.app_context():
            return memoized(variant)

    return call


def _routed(app: Flask, cache: Cache, options: dict[str, Any], fn: Call) -> Call:
    app.add_url_rule("/r/<int:variant>", view_func=cache.cached(**options)(fn))

    def call(variant: int = 0, query: str = "") -> Any:
        return app.test_client().get(f"/r/{variant}{query}").get_data(as_text=True)

    return call


def _function(app: Flask, cache: Cache, options: dict[str, Any], fn: Call) -> Call:
    helper = cache.cached(**options)(fn)

    def call(variant: int = 0, query: str = "") -> Any:
        with app.test_request_context(f"/n/{variant}{query}"):
            return helper(variant)

    return call


def _jinja(app: Flask, cache: Cache, options: dict[str, Any], fn: Call) -> Call:
    timeout = options.get("timeout")
    template = (
        f"{{% cache {timeout!r}, 'fragment', variant %}}{{{{ compute(variant) }}}}{{% endcache %}}"
    )

    def call(variant: int = 0, query: str = "") -> Any:
        with app.app_context():
            return render_template_string(template, compute=fn, variant=variant)

    return call


BUILDERS = {"memoize": _memoize, "routed": _routed, "function": _function, "jinja": _jinja}


class Case:
    """One cell: ``make(**options)`` deploys the front end with the option (a new app on
    the shared backend each time) and returns its ``call``."""

    def __init__(self, front: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
        self.front, self.clock, self.monkeypatch = front, clock, monkeypatch
        self.source = ACTIVE["source"] = Source()
        self.backend = MemoryBackend(clock=clock)
        self.deployments = 0

    def make(self, fn: Call = compute, **options: Any) -> Call:
        self.deployments += 1
        app = Flask(f"deployment{self.deployments}")
        app.config["TESTING"] = True
        config: dict[str, Any] = {"CACHE_TYPE": lambda *_: self.backend}
        if self.front == "jinja":  # the tag takes these from the configuration only
            for option in [name for name in options if name in CONFIG_KEYS]:
                config[CONFIG_KEYS[option]] = options.pop(option)
        cache = Cache(app, config=config)
        return BUILDERS[self.front](app, cache, options, fn)

    def invalidate_tags(self, *tags: str) -> None:
        """Invalidate ``tags`` from another deployment (the stamps live in the backend)."""
        app = Flask("invalidator")
        cache = Cache(app, config={"CACHE_TYPE": lambda *_: self.backend})
        with app.app_context():
            assert cache.invalidate_tags(*tags)


# -- scenarios, one per option -------------------------------------------------------------


def timeout(case: Case) -> None:
    call = case.make(timeout=10)
    assert call() == "v1"
    case.source.value = "v2"
    assert call() == "v1"
    case.clock.advance(11)
    assert call() == "v2"


def unless(case: Case) -> None:
    skip = [True]
    call = case.make(timeout=60, unless=lambda: skip[0])
    call()
    call()
    assert case.source.runs == 2  # skipped: not read, not stored
    skip[0] = False
    call()
    call()
    assert case.source.runs == 3


def forced_update(case: Case) -> None:
    forced = [False]
    call = case.make(timeout=60, forced_update=lambda: forced[0])
    assert call() == "v1"
    case.source.value = "v2"
    assert call() == "v1"
    forced[0] = True
    assert call() == "v2"  # recomputed although fresh
    forced[0] = False
    case.source.value = "v3"
    assert call() == "v2"  # and stored


def is_stale(case: Case) -> None:
    judged_stale = [False]
    call = case.make(timeout=60, is_stale=lambda value: judged_stale[0])
    assert call() == "v1"
    case.source.value = "v2"
    assert call() == "v1"
    judged_stale[0] = True
    assert call() == "v2"
    judged_stale[0] = False
    case.source.value = "v3"
    assert call() == "v2"


def response_filter(case: Case) -> None:
    call = case.make(timeout=60, response_filter=lambda value: "bad" not in str(value))
    for value in ("bad 1", "bad 2", "good"):
        case.source.value = value
        assert call() == value  # "bad" values are served, not stored
    case.source.value = "later"
    assert call() == "good"


def cache_none(case: Case) -> None:
    case.source.value = None
    plain = case.make(timeout=60)
    plain()
    plain()
    assert case.source.runs == 2  # by default a None is not stored
    stores_none = case.make(timeout=60, cache_none=True)
    assert stores_none() is None
    assert stores_none() is None
    assert case.source.runs == 3


def cache_none_on_views(case: Case) -> None:
    case.source.value = ""  # a view's "nothing": an empty page, stored like any other
    call = case.make(timeout=60, cache_none=True)
    assert call() == ""
    assert call() == ""
    assert case.source.runs == 1


def stale(case: Case) -> None:
    call = case.make(timeout=10, stale=30)
    assert call() == "v1"
    case.source.value = "v2"
    case.clock.advance(11)
    assert call() == "v1"  # past the timeout, in the stale window: served at once
    assert wait_until(lambda: call() == "v2"), "the background refresh never stored"


def fail_safe(case: Case) -> None:
    call = case.make(timeout=10, fail_safe=60)
    assert call() == "v1"
    case.source.error = RuntimeError("upstream down")
    case.clock.advance(11)
    assert call() == "v1"  # the recomputation failed: the last good value
    case.clock.advance(61)
    with pytest.raises(RuntimeError, match="upstream down"):
        call()


def jitter(case: Case) -> None:
    """Written together with a 100 s timeout and ``jitter=0.5``, entries live 50 to 100 s:
    75 s later some, not all, have expired (all 200 on one side: p = 2**-199)."""
    call = case.make(timeout=100, jitter=0.5)
    entries = 200
    for variant in range(entries):
        call(variant)
    case.clock.advance(75)
    for variant in range(entries):
        call(variant)
    expired = case.source.runs - entries
    assert 0 < expired < entries, f"{expired} of {entries} expired"


def early_refresh(case: Case) -> None:
    case.monkeypatch.setattr("random.random", lambda: 0.5)  # XFetch's draw, made certain
    case.source.cost = 0.005
    call = case.make(timeout=10, early_refresh=1.0)
    assert call() == "v1"
    case.source.value = "v2"
    case.clock.advance(10 - 0.001)  # fresh, 1 ms before expiry: worth refreshing early
    assert call() == "v1"
    assert wait_until(lambda: call() == "v2"), "no early refresh"


def stampede(case: Case) -> None:
    for protected, variant, expected_runs in ((True, 0, 1), (False, 1, 2)):
        case.source.runs = 0
        case.source.entered.clear()
        case.source.gate = threading.Event()
        call = case.make(timeout=60, stampede=protected)
        threads = [threading.Thread(target=call, args=(variant,)) for _ in range(2)]
        threads[0].start()
        assert case.source.entered.wait(10)
        threads[1].start()
        if protected:
            time.sleep(0.2)  # time for the second caller to reach its wait
        else:
            assert wait_until(lambda: case.source.runs == 2), "unprotected callers must not wait"
        assert case.source.runs == expected_runs
        case.source.gate.set()
        for thread in threads:
            thread.join(10)
        assert case.source.runs == expected_runs


def source_check(case: Case) -> None:
    assert case.make(compute, timeout=60, source_check=True)() == "v1"
    case.source.value = "v2"
    assert case.make(compute_changed, timeout=60, source_check=True)() == "v2"  # new code
    assert case.make(compute, timeout=60, source_check=True)() == "v1"  # the same code
    assert case.make(compute_changed, timeout=60)() == "v2"
    case.source.value = "v3"
    assert case.make(compute, timeout=60)() == "v2"  # unchecked: one key for both codes


def hash_method(case: Case) -> None:
    hashed: list[bytes] = []

    def spy(data: bytes = b"") -> Any:
        hashed.append(data)
        return hashlib.md5(data)

    keyed = {} if case.front == "memoize" else {"query_string": True}
    query = "" if case.front == "memoize" else "?page=2"
    call = case.make(timeout=60, hash_method=spy, **keyed)
    assert call(0, query) == "v1"
    assert hashed, "the hash method was never used"
    case.source.value = "v2"
    assert call(0, query) == "v1"
    assert case.make(timeout=60, **keyed)(0, query) == "v2"  # sha256 keys: not shared


def _tenant_keys(case: Case, option: str) -> None:
    tenant = [1]
    keyer: Call = (
        (lambda name: f"{name}:{tenant[0]}")
        if option == "make_name"
        else (lambda *args, **kwargs: f"tenant-{tenant[0]}")
    )
    call = case.make(timeout=60, **{option: keyer})
    assert call() == "v1"
    case.source.value = "v2"
    tenant[0] = 2
    assert call() == "v2"
    tenant[0] = 1
    assert call() == "v1"


def make_name(case: Case) -> None:
    _tenant_keys(case, "make_name")


def make_cache_key(case: Case) -> None:
    _tenant_keys(case, "make_cache_key")


def key_prefix(case: Case) -> None:
    call = case.make(timeout=60, key_prefix="one-key")
    assert call(0) == "v1"
    case.source.value = "v2"
    assert call(1) == "v1"  # another path or argument, the same key


def tags(case: Case) -> None:
    call = case.make(timeout=60, tags=["everything", lambda variant: f"variant:{variant}"])
    call(0), call(1), call(0), call(1)
    assert case.source.runs == 2
    case.source.value = "v2"
    case.invalidate_tags("variant:1")  # only variant 1 carries it
    assert (call(0), call(1)) == ("v1", "v2")
    case.source.value = "v3"
    case.invalidate_tags("everything")
    assert (call(0), call(1)) == ("v3", "v3")
    assert case.source.runs == 5


SCENARIOS: dict[str, Callable[[Case], None]] = {
    fn.__name__: fn
    for fn in (
        timeout,
        unless,
        forced_update,
        is_stale,
        response_filter,
        cache_none,
        stale,
        fail_safe,
        jitter,
        early_refresh,
        stampede,
        source_check,
        hash_method,
        make_name,
        key_prefix,
        make_cache_key,
        tags,
    )
}
EXAMPLE_VALUES: dict[str, Any] = {
    "key_prefix": "prefix",
    "make_cache_key": lambda *args, **kwargs: "key",
    "make_name": lambda name: name,
    "tags": "tag",
    "early_refresh": 1.0,
}


def _rejected(front: str, option: str) -> None:
    if front == "jinja":
        app = Flask(__name__)
        Cache(app, config={"CACHE_TYPE": "SimpleCache"})
        with pytest.raises(TemplateSyntaxError):
            app.jinja_env.from_string(f"{{% cache 60, 'f', {option}=1 %}}x{{% endcache %}}")
        return
    cache = Cache()
    decorator = cache.memoize if front == "memoize" else cache.cached
    with pytest.raises(TypeError, match=option):
        decorator(**{option: EXAMPLE_VALUES.get(option, 1)})


@pytest.mark.parametrize(
    ("front", "option"), list(CELLS), ids=[f"{front}-{option}" for front, option in CELLS]
)
def test_cell(front: str, option: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    kind = CELLS[(front, option)]
    if kind == REJECTED:
        _rejected(front, option)
        return
    case = Case(front, clock, monkeypatch)
    scenario = cache_none_on_views if kind == NO_EFFECT else SCENARIOS[option]
    assert kind != CONFIG or option in CONFIG_KEYS
    scenario(case)
