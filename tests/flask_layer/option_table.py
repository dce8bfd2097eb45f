"""The option x front end table: which cell is tested how (data only, no test code).

``tests/flask_layer/test_option_matrix.py`` runs one test per cell from this table, and
``scripts/option_matrix.py`` prints it as a Markdown table with the test id of each cell.
Change a cell here (say, when ``@cached`` starts accepting ``early_refresh``) and both follow.

How a cell is given its option:

- ``DECORATOR``: as a keyword of the decorator; the option's behaviour is checked.
- ``TAG``: in the ``{% cache %}`` tag's own syntax (its timeout); behaviour checked.
- ``CONFIG``: through the app's ``CACHE_*`` setting, the only way the tag takes it;
  behaviour checked.
- ``NO_EFFECT``: accepted for Flask-Caching compatibility, meaningless there (a view never
  returns ``None``); the test checks that responses are stored exactly as without it.
- ``REJECTED``: not accepted; giving it must fail at once, at decoration (``TypeError``) or
  when the template is compiled (``TemplateSyntaxError``), never be silently ignored.
"""

from __future__ import annotations

DECORATOR = "decorator"
TAG = "tag"
CONFIG = "config"
NO_EFFECT = "no effect"
REJECTED = "rejected"

#: Front end id -> what it is.
FRONTS = {
    "memoize": "@cache.memoize",
    "routed": "routed @cache.cached (the request's view)",
    "function": "non-routed @cache.cached (a function called in a request)",
    "jinja": "{% cache %} tag",
}

OPTIONS = (
    "timeout",
    "unless",
    "forced_update",
    "is_stale",
    "response_filter",
    "cache_none",
    "stale",
    "fail_safe",
    "jitter",
    "early_refresh",
    "stampede",
    "source_check",
    "hash_method",
    "make_name",
    "key_prefix",
    "make_cache_key",
    "tags",
)

#: The ``CACHE_*`` setting behind each option the tag takes from the configuration.
CONFIG_KEYS = {
    "stale": "CACHE_DEFAULT_STALE",
    "fail_safe": "CACHE_FAIL_SAFE",
    "jitter": "CACHE_TTL_JITTER",
    "early_refresh": "CACHE_EARLY_REFRESH",
    "stampede": "CACHE_STAMPEDE_PROTECTION",
}

_PROTECTION = ("stale", "fail_safe", "jitter", "early_refresh", "stampede")
_CALLBACKS = ("unless", "forced_update", "is_stale", "response_filter")
_KEYS = ("source_check", "hash_method")


def _column(front: str) -> dict[str, str]:
    if front == "jinja":
        column = dict.fromkeys(OPTIONS, REJECTED)
        column["timeout"] = TAG
        column.update(dict.fromkeys(_PROTECTION, CONFIG))
        return column
    column = dict.fromkeys(
        ("timeout", *_CALLBACKS, "cache_none", *_PROTECTION, *_KEYS, "tags"), DECORATOR
    )
    if front == "memoize":
        column.update(make_name=DECORATOR, key_prefix=REJECTED, make_cache_key=REJECTED)
    else:
        # @cached has no early_refresh today: pinned as rejected until it is added.
        column.update(early_refresh=REJECTED, make_name=REJECTED)
        column.update(key_prefix=DECORATOR, make_cache_key=DECORATOR)
    if front == "routed":
        column["cache_none"] = NO_EFFECT
    return {option: column[option] for option in OPTIONS}


#: (front, option) -> how the cell is tested.
CELLS: dict[tuple[str, str], str] = {
    (front, option): kind for front in FRONTS for option, kind in _column(front).items()
}


def cell_test_id(front: str, option: str) -> str:
    """The pytest id of a cell's test."""
    return f"tests/flask_layer/test_option_matrix.py::test_cell[{front}-{option}]"
