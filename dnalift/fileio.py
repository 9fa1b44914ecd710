"""File output helpers used by every writer (the last step of the data flow: -> files).

Every file dnalift writes goes through :class:`AtomicPath`: data are written under a
temporary name in the final directory, ``.NAME.PID.tmp`` (``.NAME.PID.tmp.EXT`` with
``keep_suffix=True``, for libraries that pick the format from the extension), flushed to
disk (fsync) and renamed into place only when complete. On any failure the temporary file is
removed, so an interrupted job never leaves a file that looks finished, nor a stray temp file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Iterator

from dnalift.errors import InputError

TEMP_SUFFIX = ".tmp"


def temp_path(path: str | os.PathLike, *, keep_suffix: bool = False) -> Path:
    """Temporary name next to ``path`` (same file system, so the final rename is atomic).

    ``dir/name.h5`` -> ``dir/.name.h5.PID.tmp`` (``dir/.name.h5.PID.tmp.h5`` with
    ``keep_suffix``).
    """
    path = Path(path)
    tail = path.suffix if keep_suffix else ""
    return path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}{tail}")


def _fsync_file(path: Path) -> None:
    """Flush a closed file's data to disk (no-op for a path that is not a regular file)."""
    if not path.is_file():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    """Persist a rename in ``directory`` (best effort: not every platform allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class AtomicPath:
    """A temporary path that becomes ``path`` on :meth:`commit` and vanishes on :meth:`discard`.

    Use as a context manager (commit on success, discard on any exception), or call the
    two methods yourself when the writing spans several calls (e.g. a streaming writer)::

        with AtomicPath("out.tsv") as tmp:
            tmp.write_text(text)

    Parameters
    ----------
    path : path-like
        Final file name.
    keep_suffix : bool
        End the temporary name with ``path``'s suffix (e.g. ``.keras``, ``.png``).
    """

    def __init__(self, path: str | os.PathLike, *, keep_suffix: bool = False) -> None:
        self.path = Path(path)
        self.tmp = temp_path(self.path, keep_suffix=keep_suffix)

    def commit(self) -> Path:
        """fsync the temporary file, rename it to ``path`` and return ``path``."""
        try:
            _fsync_file(self.tmp)
            os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise
        _fsync_dir(self.path.parent if str(self.path.parent) else Path("."))
        return self.path

    def discard(self) -> None:
        """Delete the temporary file (if any)."""
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def atomic_output(path: str | os.PathLike, *, keep_suffix: bool = False) -> AtomicPath:
    """Context manager yielding a temporary path that is renamed to ``path`` on success and
    deleted on failure (see :class:`AtomicPath`)."""
    return AtomicPath(path, keep_suffix=keep_suffix)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; return ``path``."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


@contextlib.contextmanager
def open_atomic(path: str | os.PathLike, mode: str = "w",
                encoding: str | None = "utf-8") -> Iterator:
    """Open ``path`` for streaming writes through a temporary file (text mode by default)."""
    with atomic_output(path) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle


def check_output_path(path: str | os.PathLike) -> Path:
    """Raise :class:`InputError` unless ``path`` can be created (its directory is writable).

    Missing parent directories are created.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError(f"{path}: output path is a directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InputError(f"{path}: cannot write output, {parent} is not a directory") from None
    except OSError as err:
        raise InputError(f"{path}: cannot create output directory: {err.strerror}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{path}: output directory {parent} is not writable")
    return path


def file_sha256(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = ["AtomicPath", "atomic_output", "open_atomic", "write_text", "temp_path",
           "check_output_path", "file_sha256"]
