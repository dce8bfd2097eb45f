"""Flask-Caching's module name for the Jinja tag (``flask_caching.jinja2ext``)."""

from flask_stash.jinja import (
    JINJA_CACHE_ATTR_NAME,
    CacheExtension,
    make_template_fragment_key,
)

__all__ = ["JINJA_CACHE_ATTR_NAME", "CacheExtension", "make_template_fragment_key"]
