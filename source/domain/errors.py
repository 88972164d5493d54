"""The errors the domain raises on purpose, each with a message written for the learner.

A page shows ``str(error)`` as it is: these are sentences, not codes. Failures that are not the
domain's (a server gone away, a timeout) are explained by :func:`source.platform.errors.explain`.
"""

from __future__ import annotations


class LabError(Exception):
    """An error with a message meant for the learner, raised on purpose."""


class InvalidInput(LabError):
    """The input cannot be used as given (format, range, emptiness)."""


class NotFound(LabError):
    """The row the learner pointed at does not exist (any more)."""


class DuplicateEmail(LabError):
    """``users.email`` is UNIQUE: the database refused a second row with this email."""
