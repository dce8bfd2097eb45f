"""``flask_caching.backends.filesystemcache``'s path: the same classes, for code that imports them
from there (``from flask_stash.backends.filesystemcache import FileSystemCache``)."""

from flask_stash.backends.local import FileSystemCache

__all__ = ["FileSystemCache"]
