"""The project's own error types.

Every error a user can trigger with bad input (a missing file, a malformed CIF, a negative pixel size,
an array of the wrong shape) is raised as :class:`StemgrainsError` (or a subclass) with a one-line
message that names the file or the parameter and says what was expected. The CLI prints that line and
exits with status 2 instead of showing a traceback.
"""

from __future__ import annotations

__all__ = ["StemgrainsError", "InputError", "FileFormatError", "ParameterError"]


class StemgrainsError(Exception):
    """Base class of every error stemgrains raises on purpose."""


class InputError(StemgrainsError, ValueError):
    """Bad input data: wrong shape, dtype, non-finite values, inconsistent arrays."""


class FileFormatError(InputError):
    """A file is missing, truncated, corrupt, or not in the expected format."""


class ParameterError(InputError):
    """A parameter is out of its valid range or of the wrong kind."""
