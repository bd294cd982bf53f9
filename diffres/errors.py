"""Exception hierarchy of the library.

Every error a person can cause (bad audio, bad parameters, a wrong checkpoint, a broken
dataset) is a :class:`DiffResError` and also a :class:`ValueError`; its message says what
is wrong, the value received, and what to do.  The app shows these messages verbatim.
"""

from __future__ import annotations

__all__ = [
    "DiffResError",
    "ParameterError",
    "AudioError",
    "CheckpointError",
    "DatasetError",
]


class DiffResError(ValueError):
    """Root of the library's exceptions; its message is fit to show a person."""


class ParameterError(DiffResError):
    """An argument is outside its allowed range or of the wrong kind."""


class AudioError(DiffResError):
    """Audio could not be read or is unusable (corrupt, empty, non-finite, too long...)."""


class CheckpointError(DiffResError):
    """A checkpoint file is not a DiffRes Explorer checkpoint, is corrupt, or is unsafe."""


class DatasetError(DiffResError):
    """A dataset (built-in or user-supplied) cannot be built, read or used."""
