"""How a ``dnalift`` process starts and ends (above the whole data flow): signals and exit.

The console script enters at :func:`main`, which, before TensorFlow/Keras/JAX are imported
and before any other thread starts, blocks SIGINT, SIGTERM and SIGHUP in the main thread
(threads created later, TensorFlow's included, inherit the mask) and starts one watcher
thread that waits for them with :func:`signal.sigwait`. No Python signal handler ever runs,
so no exception is raised inside a native import or a compiled kernel. On a signal the
watcher takes the job's output-registry lock (:class:`dnalift.fileio.OutputRegistry`,
under which every final rename happens), deletes the job's temporary files and any output
it already committed, writes one line (``dnalift: interrupted by SIGTERM; no output
written``) and ends the process with ``128 + signum`` (SIGHUP 129, SIGINT 130, SIGTERM 143).

The normal end goes through :meth:`SignalGuard.exit` under the same lock: a signal that
arrived before it is handled as above; a failed command (non-zero status) also deletes
what it committed. So at every moment a run ends either with its complete outputs and
status 0, or with no output, no temporary file and a non-zero status.

Nothing of a run stays in ``$TMPDIR`` either: :func:`private_tmpdir` gives the process its
own directory there (``dnalift-PID@HOST.XXXXXXXX``, which becomes ``TMPDIR`` and
``tempfile.tempdir`` before TensorFlow loads, so TensorFlow's autograph files and the tools'
scratch files land in it) and every exit path removes it; Python's ``atexit`` cleanup never
runs after ``os._exit``. The directories of processes that were killed (SIGKILL) are removed
by the next run on the same host (:func:`remove_stale_tmpdirs`).

Before anything imports Keras, :func:`dnalift.cli.kerasload.lean_keras` has it imported
without its optional scikit-learn, pandas and matplotlib integrations (~1.1 s less start-up).

stderr is a log, never a reason to hang or fail (:mod:`dnalift.cli.logstream`): ``sys.stderr``
drops what a dead or full pipe refuses, the signal watcher writes its line on a non-blocking
descriptor after the cleanup and waits for it at most a second, and SIGPIPE is ignored.

Library use (notebooks, click's ``CliRunner``) never comes here and keeps Python's normal
behaviour (KeyboardInterrupt).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Sequence

from dnalift import faults
from dnalift.cli.logstream import best_effort_stderr, nonblocking_fd, reserve_standard_fds, say
from dnalift.fileio import OutputRegistry, pid_alive, track_outputs

#: The signals that end a job cleanly (batch-system cancel / time limit, Ctrl-C, hang-up).
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _silence_fd(fd: int) -> None:
    """Point ``fd`` at ``/dev/null`` (best effort: errors ignored)."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
    except OSError:
        pass


class SignalGuard:
    """The watcher thread of one process and the way the process exits.

    Parameters
    ----------
    registry : OutputRegistry
        The job's files: removed on a signal or a failed exit.

    Attributes
    ----------
    scratch : Path or None
        The process's private temporary directory, removed on every exit (set it while
        holding ``registry.lock``).
    """

    def __init__(self, registry: OutputRegistry) -> None:
        self.registry = registry
        self.received: int | None = None
        self.scratch: Path | None = None
        # the real stderr, even while fd 2 is silenced; non-blocking when it is a pipe
        self._stderr = nonblocking_fd(2)
        self._thread = threading.Thread(target=self._watch, daemon=True,
                                        name="dnalift-signals")

    def start(self) -> None:
        """Block :data:`SIGNALS` (inherited by every later thread) and start watching.

        Threads started before (e.g. a BLAS pool, when :func:`main` is entered after heavy
        imports) do not block them: a signal they receive reaches Python's handler in the
        main thread, which only forwards it to the watcher.
        """
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        self._thread.start()
        for signum in SIGNALS:
            signal.signal(signum, self._forward)

    def _forward(self, signum: int, frame: object) -> None:
        signal.pthread_kill(self._thread.ident, signum)

    def _watch(self) -> None:
        signum = signal.sigwait(SIGNALS)
        self.received = signum
        self.registry.lock.acquire()  # never released: the process ends here
        self._interrupted(signum)

    def _clean(self, failed: bool) -> None:
        """Remove the private temporary directory and, for a failed job, its outputs."""
        try:
            if failed:
                self.registry.remove_all()
        finally:
            if self.scratch is not None:
                remove_tree(self.scratch)

    def _interrupted(self, signum: int) -> None:
        """Remove the job's files, say so on one line (best effort) and exit (the lock is
        held). Nothing here may raise or block before ``os._exit``. fd 2 is pointed at
        ``/dev/null`` first: the job's other threads run on until the exit (TensorFlow may
        still log, e.g. about the temporary directory removed under it), and the one line,
        written to the saved descriptor, is the last word on the real stderr."""
        try:
            _silence_fd(2)
            self._clean(failed=True)
        finally:
            try:
                name = signal.Signals(signum).name
                say(self._stderr, f"dnalift: interrupted by {name}; no output written\n")
            finally:
                os._exit(128 + signum)

    def _pending(self) -> int | None:
        """A signal received or pending but not handled yet."""
        if self.received is not None:
            return self.received
        return next((s for s in SIGNALS if s in signal.sigpending()), None)

    def exit(self, code: int) -> None:
        """End the process with ``code`` under the registry lock (never returns).

        A signal that arrived before this point wins (its status, outputs removed); a
        non-zero ``code`` removes what the job committed. The streams are flushed first,
        without the lock: a slow reader of stdout cannot keep a signal from ending the job.
        """
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        self.registry.lock.acquire()
        signum = self._pending()
        if signum is not None:
            self._interrupted(signum)
        try:
            self._clean(failed=code != 0)
        finally:
            os._exit(code)


def _tmpdir_prefix(pid: int | str, host: str) -> str:
    """``dnalift-PID@HOST.``, the start of a process's private temporary directory."""
    return f"dnalift-{pid}@{host}."


def remove_stale_tmpdirs(parent: str | os.PathLike) -> list[Path]:
    """Remove the private temporary directories in ``parent`` of dead ``dnalift`` processes
    of this host (killed with SIGKILL: no exit path ran); return them."""
    host = socket.gethostname()
    pattern = re.compile(r"dnalift-(\d+)@" + re.escape(host) + r"\.[a-z0-9_]{8}")
    removed = []
    try:
        entries = list(Path(parent).iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if (m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1)))
                and entry.is_dir() and not entry.is_symlink()):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def private_tmpdir() -> Path | None:
    """Create this process's temporary directory in the user's ``$TMPDIR`` and make it the
    temporary directory of the process and its children (``TMPDIR``, ``tempfile.tempdir``);
    None (nothing changed) where it cannot be created. Stale ones are removed first."""
    try:
        parent = tempfile.gettempdir()  # OSError: no usable temporary directory at all
        remove_stale_tmpdirs(parent)
        path = Path(tempfile.mkdtemp(prefix=_tmpdir_prefix(os.getpid(), socket.gethostname()),
                                     dir=parent))
    except OSError:
        return None
    os.environ["TMPDIR"] = str(path)
    tempfile.tempdir = str(path)
    return path


def _exit_code(code: object) -> int:
    """The process status of a :class:`SystemExit` code (a message is printed, status 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def remove_tree(path: str, attempts: int = 5) -> None:
    """``shutil.rmtree`` again while ``path`` exists (a thread still running, e.g. TensorFlow
    tracing, may add a file during the removal); errors ignored, bounded."""
    for _ in range(attempts):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.lexists(path):
            return
        time.sleep(0.02)


def run_cli(argv: Sequence[str] | None = None) -> int:
    """Run the click command line and return its exit status (1 with a traceback for an
    unexpected error)."""
    from dnalift.cli.main import cli  # heavy imports only after the signals are blocked
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="dnalift")
    except SystemExit as err:
        return _exit_code(err.code)
    except Exception:
        traceback.print_exc()
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """The ``dnalift`` console script: guard the signals, run the command, exit."""
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # a dead reader: EPIPE, never death
    reserve_standard_fds()
    guard = SignalGuard(OutputRegistry())
    guard.start()
    with guard.registry.lock:  # a signal now finds either no directory or its name
        guard.scratch = private_tmpdir()
    sys.stderr = best_effort_stderr()
    from dnalift.cli.kerasload import lean_keras
    from dnalift.cli.tflog import quiet_tensorflow
    quiet_tensorflow()
    lean_keras()
    faults.inject("start")
    code = 1
    try:
        with track_outputs(guard.registry):
            code = run_cli(argv)
    finally:
        guard.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
