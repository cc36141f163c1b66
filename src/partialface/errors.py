"""The project's error type for mistakes a user can make: a missing file, a bad key, a value out of range.

The command line catches :class:`PartialFaceError` alone, prints its one-line message and exits with
status 2; every other exception is a bug and keeps its traceback. It subclasses ``ValueError`` so that
code written against the earlier "bad input raises ValueError" contract keeps working.
"""

from __future__ import annotations

__all__ = ["PartialFaceError"]


class PartialFaceError(ValueError):
    """Bad input from the user. The message names the file, key or value at fault."""
