"""File output helpers used by every writer (the last step of the data flow: -> files).

Every file dnalift writes goes through :class:`AtomicPath`: data are written under a
temporary name in the final directory, ``.NAME.PID.tmp`` (``.NAME.PID.tmp.EXT`` with
``keep_suffix=True``, for libraries that pick the format from the extension), flushed to
disk (fsync) and renamed into place only when complete. On any failure the temporary file is
removed, so an interrupted job never leaves a file that looks finished, nor a stray temp file.

Output directories: a missing directory above an output is created (with its parents) when
the first file is written into it, i.e. after every check of the command (:func:`make_parents`);
a failed job removes the directories it created (when empty). Messages never show temporary
names (:func:`public_names`).

A command-line job also owns an :class:`OutputRegistry` (installed with
:func:`track_outputs`; the one process-level slot of this module): every temporary name is
registered when it is chosen and every final rename happens under the registry's lock, so a
signal handler holding that lock sees either "nothing committed" or "committed" and can
remove everything the job wrote (:meth:`OutputRegistry.remove_all`). Temporary files of dead
processes (after SIGKILL) are found and removed by :func:`remove_stale_temps`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import threading
from pathlib import Path
from typing import Iterator, Mapping, Sequence, Union

from dnalift import faults
from dnalift.errors import InputError

TEMP_SUFFIX = ".tmp"

#: One path, several (a repeated option, an argument list) or none (an option not given).
PathArg = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]], None]


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


class OutputRegistry:
    """The files of one job: temporary names in use and final paths already committed.

    The command line creates one per process and installs it with :func:`track_outputs`;
    :class:`AtomicPath` registers its temporary name on creation and renames under
    :attr:`lock`. Whoever holds the lock (the signal watcher, or the exit path) sees a
    consistent state: a rename either has not started or is complete and recorded.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.temps: set[Path] = set()
        self.committed: list[Path] = []
        self.created_dirs: list[Path] = []
        self.locks: dict[Path, Path] = {}  # output -> its lock file (dnalift.locks)
        self.children: set[int] = set()  # process groups of tools the job runs

    def add_child(self, pgid: int) -> None:
        """Record a child tool's process group (sent SIGTERM by :meth:`remove_all`)."""
        with self.lock:
            self.children.add(pgid)

    def drop_child(self, pgid: int) -> None:
        with self.lock:
            self.children.discard(pgid)

    def add_lock(self, output: Path, lock: Path) -> None:
        """Record the lock file this job holds for ``output`` (removed by :meth:`remove_all`)."""
        with self.lock:
            self.locks[Path(os.path.abspath(output))] = Path(lock)

    def drop_lock(self, lock: Path) -> None:
        with self.lock:
            self.locks = {o: k for o, k in self.locks.items() if k != Path(lock)}

    def holds_lock(self, output: str | os.PathLike) -> bool:
        """Whether this job holds the lock of ``output`` (see dnalift.locks)."""
        with self.lock:
            return Path(os.path.abspath(output)) in self.locks

    def add_dirs(self, dirs: Sequence[Path]) -> None:
        """Record directories this job created (removed by :meth:`remove_all` if empty)."""
        with self.lock:
            self.created_dirs.extend(dirs)

    def add_temp(self, tmp: Path) -> None:
        with self.lock:
            self.temps.add(Path(tmp))

    def drop_temp(self, tmp: Path) -> None:
        with self.lock:
            self.temps.discard(Path(tmp))

    def rename(self, tmp: Path, path: Path) -> None:
        """``os.replace(tmp, path)`` under the lock, recording ``path`` as committed."""
        with self.lock:
            faults.inject("rename", len(self.committed))
            os.replace(tmp, path)
            self.temps.discard(Path(tmp))
            self.committed.append(Path(path))

    def remove_all(self) -> list[Path]:
        """Stop the child tools still running (SIGTERM to their process groups), delete
        every registered temporary file and every committed output; return the committed
        outputs that were deleted. Call with :attr:`lock` held to keep it final."""
        with self.lock:
            for pgid in self.children:
                with contextlib.suppress(OSError):
                    os.killpg(pgid, signal.SIGTERM)
            self.children.clear()
            for tmp in list(self.temps):
                _remove(tmp)
            removed = []
            for path in self.committed:
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path)
            for lock in self.locks.values():
                with contextlib.suppress(OSError):
                    lock.unlink()
            for directory in reversed(self.created_dirs):  # deepest first
                with contextlib.suppress(OSError):
                    directory.rmdir()
            self.locks.clear()
            self.temps.clear()
            self.committed.clear()
            self.created_dirs.clear()
            return removed


#: The registry of the running command-line job (None in library use); see track_outputs.
_REGISTRY: list[OutputRegistry] = []


@contextlib.contextmanager
def track_outputs(registry: OutputRegistry) -> Iterator[OutputRegistry]:
    """Record every :class:`AtomicPath` of this process in ``registry`` while in the block.

    Only the command-line entry point does this (one job per process); library calls
    without it behave exactly the same, untracked.
    """
    _REGISTRY.append(registry)
    try:
        yield registry
    finally:
        _REGISTRY.remove(registry)


def active_registry() -> OutputRegistry | None:
    """The registry of the running command-line job (None in library use)."""
    return _REGISTRY[-1] if _REGISTRY else None


def _remove(path: Path) -> None:
    """Delete a temporary file or scratch directory (no error if absent)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove temporary files of ``path`` left by dead processes (e.g. after SIGKILL).

    Matches ``.NAME.PID.tmp`` and ``.NAME.PID.tmp.EXT`` (files, or scratch directories of
    :func:`temp_directory`) next to ``path`` whose PID is not a running process on this
    machine (nor this process); returns the removed paths. When this job holds the lock
    of ``path`` (:mod:`dnalift.locks`), every other process's temporary file is stale,
    whatever its PID: a live writer, on any host, would hold the lock.
    """
    registry = active_registry()
    locked = registry is not None and registry.holds_lock(path)
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    pattern = re.compile(re.escape(f".{path.name}.") + r"(\d+)" + re.escape(TEMP_SUFFIX) +
                         r"(\.[^.]+)?")
    removed = []
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            m = pattern.fullmatch(entry.name)
            if not m or int(m.group(1)) == os.getpid() or (
                    not locked and pid_alive(int(m.group(1)))):
                continue
            _remove(entry)
            if not entry.exists():
                removed.append(entry)
    return removed


def make_parents(path: str | os.PathLike) -> list[Path]:
    """Create the missing directories above ``path`` (outermost first) and return them; a
    tracking job records them, so that a failed job removes them again."""
    missing = []
    parent = Path(path).parent
    while str(parent) not in ("", ".") and not parent.exists():
        missing.append(parent)
        parent = parent.parent
    created = []
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            continue
        created.append(directory)
    registry = active_registry()
    if registry is not None and created:
        registry.add_dirs(created)
    return created


_TEMP_NAME = re.compile(r"(?:(?<=/)|(?<=^)|(?<=[\s'\"]))\.([^/\s'\"]+?)\.\d+" +
                        re.escape(TEMP_SUFFIX) + r"(?:\.d|\.[A-Za-z0-9]+)?(?=$|[\s'\":,)])")


def public_names(text: str) -> str:
    """``text`` with every temporary name of :func:`temp_path` / :func:`temp_directory`
    replaced by its final name (``dir/.o.tsv.123.tmp`` -> ``dir/o.tsv``), for messages."""
    return _TEMP_NAME.sub(r"\1", text)


@contextlib.contextmanager
def temp_directory(path: str | os.PathLike) -> Iterator[Path]:
    """A scratch directory ``.NAME.PID.tmp.d`` next to ``path`` (registered with the job's
    registry like a temporary file), removed when the block ends."""
    tmp = temp_path(path)
    tmp = tmp.with_name(tmp.name + ".d")
    make_parents(tmp)
    registry = active_registry()
    if registry is not None:
        registry.add_temp(tmp)
    tmp.mkdir()
    try:
        yield tmp
    finally:
        _remove(tmp)
        if registry is not None:
            registry.drop_temp(tmp)


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
        make_parents(self.path)
        self._registry = active_registry()
        if self._registry is not None:
            self._registry.add_temp(self.tmp)

    def commit(self) -> Path:
        """fsync the temporary file, rename it to ``path`` and return ``path`` (the rename
        under the job's registry lock, when one is tracking)."""
        try:
            _fsync_file(self.tmp)
            if self._registry is not None:
                self._registry.rename(self.tmp, self.path)
            else:
                os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise
        _fsync_dir(self.path.parent if str(self.path.parent) else Path("."))
        return self.path

    def discard(self) -> None:
        """Delete the temporary file (if any)."""
        self.tmp.unlink(missing_ok=True)
        if self._registry is not None:
            self._registry.drop_temp(self.tmp)

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


def output_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be written (``None`` when it can): its nearest existing ancestor
    is not a directory, is not writable, or is on a read-only file system. Nothing is created
    (see :func:`make_parents`)."""
    ancestor = Path(os.path.abspath(os.fspath(path))).parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"directory {ancestor} is not writable"
    with contextlib.suppress(OSError):
        if os.statvfs(ancestor).f_flag & os.ST_RDONLY:
            return f"directory {ancestor} is on a read-only file system"
    return None


def check_output_path(path: str | os.PathLike) -> Path:
    """Raise :class:`InputError` unless ``path`` can be written (not a directory; see
    :func:`output_problem`). Missing directories are made when the first file is written."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: output path is a directory")
    problem = output_problem(path)
    if problem is not None:
        raise InputError(f"{path}: cannot write output, {problem}")
    return path


def file_identity(path: str | os.PathLike) -> tuple:
    """What makes two names one file: ``(st_dev, st_ino)`` of an existing file (after
    symbolic links; hard links share it), else the path with every symbolic link resolved."""
    try:
        st = os.stat(path)
    except OSError:
        return ("path", os.path.realpath(path))
    return ("inode", st.st_dev, st.st_ino)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two names are one file (see :func:`file_identity`)."""
    return file_identity(a) == file_identity(b)


def labelled_paths(paths: Mapping[str, PathArg]) -> list[tuple[str, str]]:
    """``(label, path)`` pairs of a ``label -> path(s)`` mapping, ``None`` values skipped."""
    pairs = []
    for label, value in paths.items():
        if value is None:
            continue
        values = [value] if isinstance(value, (str, os.PathLike)) else value
        pairs.extend((label, os.fspath(v)) for v in values if v is not None)
    return pairs


def check_distinct(inputs: Mapping[str, PathArg], outputs: Mapping[str, PathArg]) -> None:
    """Raise :class:`InputError` if an output is the same file as an input or as another
    output (same name, a symbolic link or a hard link to it).

    Parameters
    ----------
    inputs, outputs : mapping
        Label (the option, e.g. ``"--fasta"``) -> path, paths or None.

    Examples
    --------
    ``check_distinct({"--fasta": "a.fa"}, {"--bigwig": "a.fa"})`` raises ``--bigwig a.fa
    is the same file as --fasta a.fa; refusing to overwrite an input``.
    """
    read = [(label, path, file_identity(path)) for label, path in labelled_paths(inputs)]
    written: list[tuple[str, str, tuple]] = []
    for label, path in labelled_paths(outputs):
        key = file_identity(path)
        for other, other_path, other_key in read:
            if key == other_key:
                raise InputError(f"{label} {path} is the same file as {other} {other_path}; "
                                 "refusing to overwrite an input")
        for other, other_path, other_key in written:
            if key == other_key:
                raise InputError(f"{label} {path} is the same file as {other} {other_path}; "
                                 "refusing to write two outputs to one file")
        written.append((label, path, key))


def file_sha256(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = ["OutputRegistry", "track_outputs", "remove_stale_temps", "temp_directory",
           "AtomicPath", "atomic_output", "open_atomic", "write_text", "temp_path",
           "check_output_path", "make_parents", "output_problem", "public_names", "file_sha256", "file_identity",
           "same_file", "check_distinct", "pid_alive", "active_registry",
           "labelled_paths"]
