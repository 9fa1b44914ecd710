"""Output locks: one dnalift job at a time per output, also across the nodes of a cluster
that share a file system (part of the last step of the data flow: -> files).

Before a command writes anything, it takes ``.NAME.lock`` next to each of its outputs: a
file created with ``O_CREAT | O_EXCL`` (atomic on local file systems and on NFS v3 and
later, unlike ``flock``/``fcntl`` locks on many NFS set-ups) that names its holder: host,
boot id, PID, the process's start time and when it took the lock. A second job for the same
output is refused (:class:`OutputLocked`, exit status 2) while the holder lives:

- holder on this machine (same host name and boot id): alive while its PID runs and has
  the recorded start time (a PID reused by another process does not count);
- holder on another machine, which cannot be probed from here: alive while it keeps the lock
  file's modification time fresh. Every holder touches its locks every
  :data:`HEARTBEAT_S` seconds from a daemon thread; a lock untouched for
  ``DNALIFT_LOCK_STALE`` seconds (default :data:`DEFAULT_STALE_S`) is stale.

A stale lock (its holder was killed, e.g. SIGKILL or a node failure) is taken over, and the
caller says so. The lock is removed when the job ends: normally, on an error, and on a
signal (the command line registers it with the job's :class:`~dnalift.fileio.OutputRegistry`,
whose clean-up removes it). Only a job that holds an output's lock treats the temporary
files of other hosts as stale (:func:`dnalift.fileio.remove_stale_temps`).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from dnalift import faults
from dnalift.errors import InputError
from dnalift.fileio import active_registry, pid_alive

LOCK_SUFFIX = ".lock"
#: Seconds between two touches of a held lock (its heartbeat).
HEARTBEAT_S = 60.0
#: Seconds without a heartbeat after which another host's lock is stale.
DEFAULT_STALE_S = 600.0
STALE_ENV = "DNALIFT_LOCK_STALE"


class OutputLocked(InputError):
    """Another live dnalift job holds the lock of an output."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: ``host``, ``boot`` id, ``pid``, the process's ``start`` time
    (clock ticks since boot, from /proc; "" where unknown) and ``since`` (ISO time)."""

    host: str
    boot: str
    pid: int
    start: str
    since: str

    def to_text(self) -> str:
        return "".join(f"{k}={getattr(self, k)}\n" for k in self.__dataclass_fields__)

    @classmethod
    def from_text(cls, text: str) -> "Holder | None":
        """The holder written by :meth:`to_text` (``None`` for an unreadable file)."""
        fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        try:
            return cls(fields["host"], fields["boot"], int(fields["pid"]), fields["start"],
                       fields["since"])
        except (KeyError, ValueError):
            return None

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, since {self.since}"


def boot_id() -> str:
    """This boot of this machine (Linux), else ""."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str:
    """Start time of process ``pid`` in clock ticks since boot (Linux /proc), else ""."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name


def this_process() -> Holder:
    """The :class:`Holder` record of the running process."""
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return Holder(socket.gethostname(), boot_id(), os.getpid(), process_start(os.getpid()),
                  now)


def lock_path(path: str | os.PathLike) -> Path:
    """``dir/name`` -> ``dir/.name.lock``."""
    path = Path(path)
    return path.with_name(f".{path.name}{LOCK_SUFFIX}")


def stale_after() -> float:
    """Seconds without heartbeat after which another host's lock is stale."""
    try:
        return float(os.environ.get(STALE_ENV, DEFAULT_STALE_S))
    except ValueError:
        raise InputError(f"{STALE_ENV}={os.environ[STALE_ENV]!r}: not a number of seconds")


def holder_alive(holder: Holder | None, age: float, me: Holder, stale_s: float) -> bool:
    """Whether the holder of a lock whose file was last touched ``age`` seconds ago still
    runs (see the module's rules; an unreadable lock counts as alive while it is fresh,
    as it may be being written)."""
    if holder is not None and (holder.host, holder.boot) == (me.host, me.boot):
        if not pid_alive(holder.pid):
            return False
        return not holder.start or process_start(holder.pid) in ("", holder.start)
    return age < stale_s


def _read(lock: Path) -> tuple[Holder | None, float]:
    """The holder recorded in ``lock`` and the seconds since it was last touched."""
    st = lock.stat()
    with contextlib.suppress(OSError, UnicodeDecodeError):
        return Holder.from_text(lock.read_text()), time.time() - st.st_mtime
    return None, time.time() - st.st_mtime


def _create(lock: Path, me: Holder) -> bool:
    """Create ``lock`` naming ``me``; False if it exists."""
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(me.to_text())
    return True


def _take_over(lock: Path, stale: Holder | None, me: Holder) -> bool:
    """Remove a stale ``lock`` that still names ``stale`` (moved aside first, so that of two
    jobs taking over at once only one removes it; a lock taken meanwhile by a live job is
    put back)."""
    aside = lock.with_name(f"{lock.name}.{me.host}.{me.pid}.stale")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return True  # gone already: try to create it again
    try:
        current = Holder.from_text(aside.read_text())
    except OSError:
        current = None
    if current != stale:  # someone else's fresh lock: put it back
        with contextlib.suppress(OSError):
            os.link(aside, lock)
        aside.unlink(missing_ok=True)
        return False
    aside.unlink(missing_ok=True)
    return True


def acquire(path: str | os.PathLike, me: Holder | None = None,
            stale_s: float | None = None) -> tuple[Path | None, Holder | None]:
    """Take the lock of output ``path``.

    Returns
    -------
    (lock, previous) : (Path or None, Holder or None)
        The lock file now held (``None`` where none can be made: a directory that does not
        exist yet, which no job has written into, or an unwritable one, which the command
        reports itself), and the stale holder taken over, if any.

    Raises
    ------
    OutputLocked
        While another live job holds it.
    """
    me = me or this_process()
    stale_s = stale_after() if stale_s is None else stale_s
    lock = lock_path(path)
    previous = None
    for _ in range(10):
        if not lock.parent.is_dir():
            return None, None
        try:
            if _create(lock, me):
                return lock, previous
            holder, age = _read(lock)
        except FileNotFoundError:
            continue  # released between the two calls
        except OSError:
            return None, None
        if holder_alive(holder, age, me, stale_s):
            who = holder.describe() if holder else f"lock file written {age:.0f} s ago"
            raise OutputLocked(
                f"{path} is being written by another dnalift job ({who}); wait for it to end, "
                f"or if that job is dead remove {lock}")
        if _take_over(lock, holder, me):
            previous = holder
    raise OutputLocked(f"{path}: cannot take its lock {lock}, other jobs keep taking it")


def release(lock: Path, me: Holder | None = None) -> None:
    """Remove ``lock`` if it still names ``me`` (this process)."""
    me = me or this_process()
    with contextlib.suppress(OSError):
        holder = Holder.from_text(lock.read_text())
        if holder is not None and (holder.host, holder.pid) == (me.host, me.pid):
            lock.unlink()


def _heartbeat(locks: Sequence[Path], stop: threading.Event, period: float) -> None:
    while not stop.wait(period):
        for lock in locks:
            with contextlib.suppress(OSError):
                os.utime(lock)


@contextlib.contextmanager
def hold(paths: Sequence[str | os.PathLike], period: float = HEARTBEAT_S
         ) -> Iterator[list[tuple[Path, Holder]]]:
    """Hold the locks of every output in ``paths`` for the block (see :func:`acquire`),
    touching them every ``period`` seconds; yields the ``(path, stale holder)`` pairs of the
    locks taken over. All are released at the end, and on an error while acquiring. The
    job's :class:`~dnalift.fileio.OutputRegistry`, if one tracks this process, also removes
    them when a signal ends the job."""
    me = this_process()
    registry = active_registry()
    # under the registry's lock, a signal's clean-up sees a lock file either not made yet or
    # registered, and either registered or released (acquire and release never wait)
    atomic = registry.lock if registry is not None else contextlib.nullcontext()
    held: list[Path] = []
    taken_over = []
    stop = threading.Event()
    try:
        for i, path in enumerate(dict.fromkeys(os.fspath(p) for p in paths)):
            with atomic:
                lock, previous = acquire(path, me)
                if lock is None:
                    continue
                faults.inject("lock", i)
                held.append(lock)
                if registry is not None:
                    registry.add_lock(Path(path), lock)
            if previous is not None:
                taken_over.append((Path(path), previous))
        if held:  # a command without lockable outputs runs no heartbeat thread
            threading.Thread(target=_heartbeat, args=(held, stop, period), daemon=True).start()
        yield taken_over
    finally:
        stop.set()
        for lock in held:
            with atomic:
                release(lock, me)
                if registry is not None:
                    registry.drop_lock(lock)


__all__ = ["OutputLocked", "Holder", "acquire", "release", "hold", "lock_path",
           "holder_alive", "this_process", "HEARTBEAT_S", "DEFAULT_STALE_S", "STALE_ENV"]
