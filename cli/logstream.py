"""stderr of a ``dnalift`` process as a log stream that never blocks the job nor fails it.

A log reader can die (``dnalift score ... 2>&1 | tee log`` and ``tee`` is killed) or stop
reading (its pipe fills up). Writes to stderr then fail with EPIPE or would block forever.
Neither may hang or crash the job: a log line that cannot be written is dropped.

* :func:`nonblocking_fd`: a descriptor of the same pipe opened anew with ``O_NONBLOCK`` (its
  own open file description, so the flags of the descriptor shared with the parent and the
  children are untouched); a full pipe answers EAGAIN instead of blocking.
* :class:`LogWriter`: the raw layer of :func:`best_effort_stderr` (installed as
  ``sys.stderr`` by the console entry point): writes to file descriptor 2, through such a
  descriptor while fd 2 is a pipe, and drops what the system refuses.
* :func:`say`: one last line in the signal path, bounded in time whatever fd 2 is.
* :func:`reserve_standard_fds`: a closed stdin/stdout/stderr becomes ``/dev/null``, so that
  no file the job opens later gets descriptor 2 (and log lines written into it).
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
import threading

#: Seconds :func:`say` waits for a write before giving up on it.
SAY_TIMEOUT = 1.0


def reserve_standard_fds() -> None:
    """Open ``/dev/null`` on each of descriptors 0, 1 and 2 that is closed."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: fd, or below
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def nonblocking_fd(fd: int) -> int:
    """A new descriptor writing where ``fd`` does: for a pipe, opened again through
    ``/proc/self/fd`` with ``O_NONBLOCK``; otherwise (or where that fails, e.g. a pipe with no
    reader left, which cannot block anyway) a plain duplicate; -1 (writes dropped) for a
    closed ``fd``. The caller closes it."""
    with contextlib.suppress(OSError):
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            return os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        return os.dup(fd)
    except OSError:
        return -1


def write_quietly(fd: int, data: bytes) -> int:
    """``os.write`` that reports a refused write (EPIPE, EAGAIN, EBADF, ...) as done: the
    bytes are dropped. Returns the count written or dropped."""
    try:
        return os.write(fd, data)
    except OSError:
        return len(data)


class LogWriter(io.RawIOBase):
    """Raw, best-effort writer to file descriptor 2 (see the module docstring).

    fd 2 is followed as it changes (``dnalift.cli.tflog`` points it at ``/dev/null`` while
    TensorFlow loads); while it is a pipe the writes go through :func:`nonblocking_fd`.
    """

    def __init__(self, fd: int = 2) -> None:
        super().__init__()
        self._fd = fd
        self._pipe: tuple[int, int] | None = None  # (st_dev, st_ino) of the pipe
        self._pipe_fd = -1

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        try:
            return os.isatty(self._fd)
        except OSError:
            return False

    def _target(self) -> int:
        """fd 2, or the non-blocking descriptor of the pipe fd 2 is now."""
        try:
            st = os.fstat(self._fd)
        except OSError:
            return self._fd
        if not stat.S_ISFIFO(st.st_mode):
            return self._fd
        if self._pipe != (st.st_dev, st.st_ino):
            self._close_pipe()
            self._pipe, self._pipe_fd = (st.st_dev, st.st_ino), nonblocking_fd(self._fd)
        return self._pipe_fd

    def _close_pipe(self) -> None:
        if self._pipe_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._pipe_fd)
        self._pipe, self._pipe_fd = None, -1

    def write(self, data: bytes | bytearray | memoryview) -> int:
        return write_quietly(self._target(), bytes(data))

    def close(self) -> None:
        self._close_pipe()
        super().close()


def best_effort_stderr(fd: int = 2) -> io.TextIOWrapper:
    """A line-buffered text stream over :class:`LogWriter` (encoding of the current
    ``sys.stderr``): never blocks on a full pipe, never raises on a dead one."""
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    return io.TextIOWrapper(io.BufferedWriter(LogWriter(fd)), encoding=encoding,
                            errors="backslashreplace", line_buffering=True,
                            write_through=True)


def say(fd: int, text: str, timeout: float = SAY_TIMEOUT) -> None:
    """Write ``text`` to ``fd`` at most ``timeout`` seconds long, errors ignored (a terminal
    stopped with Ctrl-S or a full socket can still block a write; the caller goes on)."""
    writer = threading.Thread(target=write_quietly, args=(fd, text.encode()), daemon=True,
                              name="dnalift-say")
    writer.start()
    writer.join(timeout)
