"""Where :class:`KeyAuditWarning` was first documented; the key audit lives in
:mod:`flask_stash.views.audit`."""

from flask_stash.views.audit import KeyAuditWarning

__all__ = ["KeyAuditWarning"]
