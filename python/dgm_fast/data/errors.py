"""The errors the data loaders raise; each message says how to fix the problem."""

from __future__ import annotations

class DatasetNotFoundError(FileNotFoundError):
    """The data files are not where they were looked for; the message says how to get them."""


class DatasetIntegrityError(ValueError):
    """A data file is corrupt or truncated; the message says how to fix it."""


class DatasetDownloadError(RuntimeError):
    """Downloading a data set failed (e.g. the package index is unreachable)."""
