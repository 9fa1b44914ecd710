"""Errors raised by dnalift for bad user input.

Every error a user can cause by the files or options they pass derives from
:class:`DnaliftError`; the command line prints its message on one line and exits
with a non-zero status, never with a traceback.
"""

from __future__ import annotations


class DnaliftError(Exception):
    """Base class for user-facing errors (bad files, bad options)."""


class InputError(DnaliftError, ValueError):
    """A sequence, region, reference or model file is malformed or inconsistent.

    The message names the file, the record (or line) and the problem, e.g.
    ``regions.bed line 7: end (100) <= start (250)``.
    """


class UnsupportedLayerError(DnaliftError, TypeError):
    """The model contains a layer that the DeepLIFT engine has no rule for."""
