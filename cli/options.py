"""Option types shared by the ``dnalift`` commands: checked number ranges and input/output paths.

Every numeric option of every command uses :class:`Int` or :class:`Float` (click's
``IntRange`` / ``FloatRange``: ``--help`` shows the range); every file option uses
:class:`InputFile` or :class:`OutputFile` (directories: :class:`OutputDir`). They reject a
bad value while click parses the command line, before any file is read, TensorFlow is
imported or a model is built, with click's :class:`click.BadParameter` (exit status 2),
which :class:`dnalift.cli.main._Group` prints on one line naming the option.
"""

from __future__ import annotations

import math
import os
import stat
from typing import Any

import click

#: Largest value of an integer option (int64: HDF5 attributes, numpy indices).
INT64_MAX = 2**63 - 1
#: Largest seed of ``dnalift train`` (numpy's legacy global seed is 32-bit).
SEED32_MAX = 2**32 - 1


class Int(click.IntRange):
    """An integer in ``[min, max]`` (``max`` defaults to :data:`INT64_MAX`).

    Parameters
    ----------
    min, max : int, optional
        Bounds (inclusive unless ``min_open`` / ``max_open``).
    """

    def __init__(self, min: int | None = None, max: int | None = INT64_MAX,
                 min_open: bool = False, max_open: bool = False) -> None:
        super().__init__(min, max, min_open=min_open, max_open=max_open)

    def _describe_range(self) -> str:
        return super()._describe_range().replace(str(INT64_MAX), "2^63-1").replace(
            str(SEED32_MAX), "2^32-1")


class Float(click.FloatRange):
    """A finite float in ``[min, max]``: click's ``FloatRange`` without NaN and infinities
    (which it lets through when a bound is open-ended)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)

    def _describe_range(self) -> str:
        if self.min is None and self.max is None:
            return "finite"
        return super()._describe_range()


#: Non-negative seed stored in int64 HDF5 attributes and JSON.
SEED = Int(0)
#: A count of at least one (batch sizes, references, epochs).
COUNT = Int(1)


class InputFile(click.Path):
    """A file that is read: it exists, is a regular file (not a directory, pipe or
    device), is readable and is not empty.

    Parameters
    ----------
    what : str
        What the file holds, for messages (``"FASTA"``, ``"HDF5 score file"``).
    """

    def __init__(self, what: str = "file") -> None:
        super().__init__(exists=True, dir_okay=False, readable=True)
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            self.fail(f"{os.fspath(value)!r} is not a regular file: a {self.what} must be a "
                      "regular file that can be read more than once (and indexed); to use a "
                      "pipe, write it to a file first (e.g. `cat > input.fa`) and pass that.",
                      param, ctx)
        if os.path.getsize(path) == 0:
            self.fail(f"{os.fspath(value)!r} is empty (0 bytes), not a {self.what}.", param, ctx)
        return path


class _Output(click.Path):
    """A path that is written: its nearest existing ancestor must be a writable directory
    (:func:`dnalift.fileio.output_problem`; missing directories are created when the first
    file is written, after every check)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        from dnalift.fileio import output_problem
        path = super().convert(value, param, ctx)
        problem = output_problem(path)
        if problem is not None:
            self.fail(f"cannot write {os.fspath(value)!r}: {problem}.", param, ctx)
        return path


class OutputFile(_Output):
    """A file that is written: it may exist (replaced atomically) but must not be a
    directory."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False)


class OutputDir(_Output):
    """A directory that is written (created when missing); an existing file is refused."""

    def __init__(self) -> None:
        super().__init__(file_okay=False)


class InputDir(click.Path):
    """An existing directory that is read."""

    def __init__(self) -> None:
        super().__init__(exists=True, file_okay=False)
