"""What each ``CACHE_*`` setting means: the source of ``docs/configuration.md``.

``scripts/config_reference.py`` renders this table with the defaults of
:data:`flask_stash.config.DEFAULTS`; ``tests/test_config_reference.py`` fails when a setting
has no entry here or when the rendered file is out of date.
"""

from __future__ import annotations

from typing import NamedTuple


class SettingDoc(NamedTuple):
    """The accepted type (as text), the documentation section, and the meaning."""

    type: str
    section: str
    meaning: str


BACKEND = "Backend"
BEHAVIOUR = "Behaviour"
VIEWS = "Views"
STAMPEDE = "Stampede protection"
REDIS = "Redis"
MEMCACHED = "memcached"
OBSERVABILITY = "Observability"

SECTIONS = (BACKEND, BEHAVIOUR, VIEWS, STAMPEDE, OBSERVABILITY, REDIS, MEMCACHED)

SETTINGS: dict[str, SettingDoc] = {
    "CACHE_TYPE": SettingDoc(
        "str | class | factory | None",
        BACKEND,
        "The backend: a Flask-Caching class name (`SimpleCache`, `RedisCache`...), an old "
        "alias (`simple`, `redis`...), a dotted path to a backend class or factory, a "
        "`cachelib.*` class, or a URL. `None` (Flask-Caching: `NullCache`) is the in-memory "
        "backend; a misspelled name fails at `init_app` with a suggestion.",
    ),
    "CACHE_URL": SettingDoc(
        "str | None",
        BACKEND,
        "The backend as a URL: `memory://`, `file:///dir`, `null://`, `redis://`, "
        "`rediss://`, `valkey://`, `unix://`, `redis+sentinel://`, `redis+cluster://`, "
        "`memcached://h1,h2`. Used when `CACHE_TYPE` is not set.",
    ),
    "CACHE_DEFAULT_TIMEOUT": SettingDoc(
        "seconds (int, float, numeric str, timedelta)",
        BEHAVIOUR,
        "Timeout of entries stored without one; `0` never expires. "
        "`CACHE_OPTIONS['default_timeout']` wins over it, as in Flask-Caching.",
    ),
    "CACHE_KEY_PREFIX": SettingDoc(
        "str",
        BEHAVIOUR,
        "Prepended to every key, so several apps can share one server; on Redis, "
        "`clear()` deletes the keys under it. It wins over a `key_prefix` in "
        "`CACHE_OPTIONS` or `CACHE_ARGS` unless it is empty (Flask-Caching's precedence); a "
        "per-call prefix (a function) is accepted there by the Redis backends.",
    ),
    "CACHE_THRESHOLD": SettingDoc(
        "int >= 0",
        BACKEND,
        "Most entries the in-memory (`0` means 500, as cachelib) and filesystem (`0`: no "
        "bound) backends keep; expired entries go first, then the least recently used.",
    ),
    "CACHE_DIR": SettingDoc(
        "str | None", BACKEND, "The folder of the filesystem backend (`FileSystemCache`)."
    ),
    "CACHE_OPTIONS": SettingDoc(
        "dict | None",
        BACKEND,
        "Keyword arguments for the backend class (`max_bytes`, `socket_timeout`, "
        "`read_from_replicas`, `check_connection`...); they win over the backend's own "
        "`CACHE_*` keys and the URL's options.",
    ),
    "CACHE_ARGS": SettingDoc(
        "list",
        BACKEND,
        "Positional arguments for the backend class; they win over `CACHE_OPTIONS` and the "
        "backend's `CACHE_*` keys for the parameters they fill.",
    ),
    "CACHE_HASH_METHOD": SettingDoc(
        "hashlib constructor or its name",
        BEHAVIOUR,
        "Hashes argument lists into memoize keys and query strings into view keys.",
    ),
    "CACHE_FILE_HASH_METHOD": SettingDoc(
        "hashlib constructor or its name",
        BACKEND,
        "Hashes keys into file names for the filesystem backend.",
    ),
    "CACHE_SOURCE_CHECK": SettingDoc(
        "bool",
        BEHAVIOUR,
        "Put a digest of the function's source in its keys, so changed code never reads "
        "results of the old code (per decorator: `source_check=`).",
    ),
    "CACHE_ENABLE_SIGNALS": SettingDoc(
        "bool",
        BEHAVIOUR,
        "Send `cache_view_hit`/`_miss` and `cache_memoize_hit`/`_miss` (blinker signals).",
    ),
    "CACHE_SERIALIZER": SettingDoc(
        "'pickle' | 'json' | serializer object or class | None",
        BEHAVIOUR,
        "How values are stored: signed pickle (`None`, the default), lossless JSON that "
        "never runs code, or an object with `dumps`/`loads` (a cachelib serializer).",
    ),
    "CACHE_IGNORE_ERRORS": SettingDoc(
        "bool",
        BEHAVIOUR,
        "`delete_many` returns the keys it could delete instead of raising `RuntimeError` "
        "for the others (Flask-Caching's meaning).",
    ),
    "CACHE_NO_NULL_WARNING": SettingDoc(
        "bool", BEHAVIOUR, "Silence the warning given when `CACHE_TYPE` is `NullCache`."
    ),
    "CACHE_FAIL_OPEN": SettingDoc(
        "bool",
        BEHAVIOUR,
        "A failing backend, or a value that cannot be serialized, is counted and logged "
        "and the request goes on uncached. `False` raises instead.",
    ),
    "CACHE_SIGNING_KEY": SettingDoc(
        "str | bytes | None",
        BEHAVIOUR,
        "Key that authenticates stored entries, any length (the signing keys are derived "
        "from it); by default the app's `SECRET_KEY`.",
    ),
    "CACHE_SIGNING_KEY_FALLBACKS": SettingDoc(
        "list of str | bytes | None",
        BEHAVIOUR,
        "Older keys whose entries are still accepted while keys rotate; by default "
        "`SECRET_KEY_FALLBACKS` when the key comes from `SECRET_KEY`.",
    ),
    "CACHE_REQUIRE_SIGNING": SettingDoc(
        "bool",
        BEHAVIOUR,
        "Refuse to start without a signing key (instead of one warning at `init_app` for "
        "backends other processes can write to).",
    ),
    "CACHE_VIEW_STATUSES": SettingDoc(
        "list of ints | None",
        VIEWS,
        "Response statuses a cached view stores; `None` is 200-299 (per view: `statuses=`).",
    ),
    "CACHE_VIEW_HONOR_NO_CACHE": SettingDoc(
        "bool",
        VIEWS,
        "A request with `Cache-Control: no-cache` skips the cache (per view: `honor_no_cache=`).",
    ),
    "CACHE_VIEW_CACHE_CONTROL": SettingDoc(
        "bool",
        VIEWS,
        "Add `Cache-Control: public, max-age` from the remaining timeout (per view: "
        "`cache_control=`).",
    ),
    "CACHE_VIEW_X_CACHE": SettingDoc(
        "bool", VIEWS, "Add `X-Cache: HIT|MISS|STALE` to cached views (per view: `x_cache=`)."
    ),
    "CACHE_VIEW_MAX_BUFFER": SettingDoc(
        "int >= 0 (bytes)",
        VIEWS,
        "Longest streamed body a cached view buffers and stores; longer streams pass "
        "through, and `0` lets every stream through unstored (per view: `max_buffer=`).",
    ),
    "CACHE_VIEW_PRIVATE_IGNORE_COOKIES": SettingDoc(
        "list of shell patterns",
        VIEWS,
        "Cookies that identify nobody (`_ga*`, `cookie_consent`), left out of the keys of "
        "`private=True` views.",
    ),
    "CACHE_VIEW_PRIVATE_HEADERS": SettingDoc(
        "list of header names",
        VIEWS,
        "Request headers carrying credentials, part of the keys of `private=True` views.",
    ),
    "CACHE_KEY_AUDIT": SettingDoc(
        "bool",
        VIEWS,
        "In debug mode, check on every miss that the view's key covers every input it reads.",
    ),
    "CACHE_STAMPEDE_PROTECTION": SettingDoc(
        "bool",
        STAMPEDE,
        "Concurrent misses of one key compute once, in a process and across processes "
        "(per decorator: `stampede=`).",
    ),
    "CACHE_LOCAL_TIER": SettingDoc(
        "bool | dict | None",
        BACKEND,
        "An in-process tier (a bounded LRU in each worker) in front of a shared backend, "
        "for memory-speed hits. `True`: 10000 entries, 64 MiB, copies kept at most 60 s; "
        "or a dict of `max_entries`, `max_bytes` (`None`: no byte bound), `ttl` (the cap, "
        "seconds) and `channel` (Redis pub/sub channel; default "
        "`flask_stash:tier:<CACHE_KEY_PREFIX>`). On Redis, writes are published and every "
        "worker drops its copies; on memcached and the file system copies live at most "
        "`ttl`. Refused for the in-memory and null backends. See docs/tags-and-tiers.md.",
    ),
    "CACHE_BREAKER_THRESHOLD": SettingDoc(
        "int",
        BEHAVIOUR,
        "Failed backend calls in a row after which the backend is left alone (served "
        "uncached) until a probe succeeds; see docs/outages.md.",
    ),
    "CACHE_BREAKER_BACKOFF": SettingDoc(
        "seconds",
        BEHAVIOUR,
        "Wait before the first probe of a failing backend; doubled after each failed probe.",
    ),
    "CACHE_BREAKER_MAX_BACKOFF": SettingDoc(
        "seconds", BEHAVIOUR, "Longest wait between two probes of a failing backend."
    ),
    "CACHE_NAME": SettingDoc(
        "str | None",
        OBSERVABILITY,
        "The cache's name for `flask stash --cache NAME` and the `cache` label of the "
        "metrics. Default: `default` for an app's first cache, `cache2`, `cache3`... for "
        "the others (in `init_app` order); two caches of one app cannot share a name.",
    ),
    "CACHE_METRICS_URL": SettingDoc(
        "str | None",
        OBSERVABILITY,
        "Serve Prometheus metrics at this path (`/metrics`); needs "
        "`pip install flask-stash[prometheus]`. See docs/observability.md#metrics.",
    ),
    "CACHE_TRACING": SettingDoc(
        "bool | None",
        OBSERVABILITY,
        "OpenTelemetry spans around backend calls. `None`: on for shared backends "
        "(Redis, memcached, file system) when `opentelemetry-api` is installed and a "
        "tracer provider is set up at `init_app`, off otherwise; `True`: on for every "
        "backend (fails at `init_app` without `opentelemetry-api`); `False`: off.",
    ),
    "CACHE_DASHBOARD": SettingDoc(
        "bool",
        OBSERVABILITY,
        "Serve the dashboard (`docs/observability.md`) at `CACHE_DASHBOARD_URL`. It answers "
        "only in debug mode unless `CACHE_DASHBOARD_ACCESS` is set: never expose it in "
        "production without an access check.",
    ),
    "CACHE_DASHBOARD_URL": SettingDoc(
        "str (a path)", OBSERVABILITY, "Where the dashboard is served (its JSON under `/data`)."
    ),
    "CACHE_DASHBOARD_ACCESS": SettingDoc(
        "callable | None",
        OBSERVABILITY,
        "`access()`, called in each dashboard request, returns whether the current user may "
        "see it (`False`: 403). Set, it is required in debug mode too; unset, the dashboard "
        "answers only in debug mode (404 otherwise).",
    ),
    "CACHE_LOCK_LEASE": SettingDoc(
        "seconds", STAMPEDE, "Lease of the cross-process lock held while computing."
    ),
    "CACHE_LOCK_WAIT": SettingDoc(
        "seconds",
        STAMPEDE,
        "Longest wait for another process's computation before computing anyway.",
    ),
    "CACHE_DEFAULT_STALE": SettingDoc(
        "seconds",
        STAMPEDE,
        "Stale-while-revalidate window: an expired entry is served this much longer while "
        "one background refresh runs (per decorator: `stale=`).",
    ),
    "CACHE_EARLY_REFRESH": SettingDoc(
        "float >= 0 (beta)",
        STAMPEDE,
        "Refresh hot entries before they expire (probabilistic early expiration); `0` off.",
    ),
    "CACHE_FAIL_SAFE": SettingDoc(
        "seconds",
        STAMPEDE,
        "Keep entries this much longer and serve them if recomputing fails.",
    ),
    "CACHE_TTL_JITTER": SettingDoc(
        "float in [0, 1)",
        STAMPEDE,
        "Take up to this fraction off each timeout at random, so entries written together "
        "do not expire together.",
    ),
    "CACHE_REDIS_HOST": SettingDoc(
        "str | redis.Redis", REDIS, "`RedisCache`'s host, or an existing redis-py client."
    ),
    "CACHE_REDIS_PORT": SettingDoc("int", REDIS, "`RedisCache`'s port."),
    "CACHE_REDIS_PASSWORD": SettingDoc("str | None", REDIS, "The Redis servers' password."),
    "CACHE_REDIS_DB": SettingDoc("int", REDIS, "The Redis database number."),
    "CACHE_REDIS_URL": SettingDoc(
        "str | None",
        REDIS,
        "A Redis URL for the Redis classes; wins over host, port, password and db.",
    ),
    "CACHE_REDIS_SENTINELS": SettingDoc(
        "list of (host, port) | 'h1:p1,h2:p2' | None",
        REDIS,
        "The sentinels of `RedisSentinelCache`.",
    ),
    "CACHE_REDIS_SENTINEL_MASTER": SettingDoc(
        "str | None", REDIS, "The service name the sentinels watch (default `mymaster`)."
    ),
    "CACHE_REDIS_SENTINEL_PASSWORD": SettingDoc(
        "str | None", REDIS, "The sentinels' own password, if any."
    ),
    "CACHE_REDIS_CLUSTER": SettingDoc(
        "'h1:p1,h2:p2' | None", REDIS, "The startup nodes of `RedisClusterCache`."
    ),
    "CACHE_MEMCACHED_SERVERS": SettingDoc(
        "list of 'host:port' | None",
        MEMCACHED,
        "The memcached servers (`None`: 127.0.0.1:11211); several are sharded.",
    ),
    "CACHE_MEMCACHED_USERNAME": SettingDoc(
        "str | None", MEMCACHED, "SASL user name (`SASLMemcachedCache`, needs pylibmc)."
    ),
    "CACHE_MEMCACHED_PASSWORD": SettingDoc("str | None", MEMCACHED, "SASL password."),
}
