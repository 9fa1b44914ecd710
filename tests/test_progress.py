"""Tests of dnalift.progress with a caller-supplied terminal bar (the library has no click)."""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import subprocess
import sys
import time

from dnalift.cli.logstream import best_effort_stderr, nonblocking_fd, say


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Bar:
    def __init__(self, total, label, stream, rate_text):
        self.total, self.label, self.rate_text, self.steps = total, label, rate_text, []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.steps.append("closed")

    def update(self, n):
        self.steps.append(n)


def test_terminal_bar_from_the_caller():
    from dnalift.progress import Progress
    bars = []
    now = [0.0]
    p = Progress("scoring", stream=_Tty(), clock=lambda: now[0],
                 bar=lambda *a: bars.append(_Bar(*a)) or bars[-1])
    now[0] = 2.0
    p(10, 30)
    now[0] = 4.0
    p(30, 30)
    p.close()
    (bar,) = bars
    assert (bar.total, bar.label, bar.steps) == (30, "scoring", [10, 20, "closed"])
    assert bar.rate_text() == "10.0 regions/s"  # since the first batch: 20 regions in 2 s


def test_no_bar_on_a_terminal_without_factory_gives_log_lines():
    from dnalift.progress import Progress
    stream = _Tty()
    now = [0.0]
    p = Progress("scoring", stream=stream, clock=lambda: now[0])
    now[0] = 1.0
    p(5, 5)
    assert stream.getvalue() == "scoring: 5/5 regions (100.0%), 5.0 regions/s, ETA 0:00:00\n"


def test_first_line_after_the_first_batch_and_eta_without_warm_up():
    """The first batch (model load, compile, warm-up: 60 s here) is reported at once, but is
    not a rate: the ETA counts from its end (90 regions in 30 s -> 3/s, 10 left -> 3 s)."""
    from dnalift.progress import Progress
    stream = io.StringIO()
    now = [0.0]
    p = Progress("scoring", stream=stream, interval=30.0, clock=lambda: now[0])
    now[0] = 60.0
    p(10, 110)
    assert stream.getvalue() == "scoring: 10/110 regions (9.1%), 0.2 regions/s, ETA ?\n"
    now[0] = 61.0
    p(20, 110)  # within the interval: no line
    now[0] = 90.0
    p(100, 110)
    assert stream.getvalue().splitlines()[1:] == [
        "scoring: 100/110 regions (90.9%), 3.0 regions/s, ETA 0:00:03"]


def test_library_imports_neither_click_nor_the_simulated_task():
    code = ("import sys, dnalift.progress, dnalift.scoring, dnalift.motifs, dnalift.plots, "
            "dnalift.tiling, dnalift.sinks; "
            "print('click' in sys.modules, any(m.startswith('dnalift.simulated') "
            "for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


# ----------------------------------------------------- a log stream that is gone or full
def _full_pipe() -> tuple[int, int]:
    """A pipe nobody reads, its buffer full: a blocking write to it never returns."""
    read_end, write_end = os.pipe()
    flags = fcntl.fcntl(write_end, fcntl.F_GETFL)
    fcntl.fcntl(write_end, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(write_end, b"x" * 4096)
    fcntl.fcntl(write_end, fcntl.F_SETFL, flags)  # blocking again, as a real stderr
    return read_end, write_end


def test_log_stream_drops_what_a_full_or_dead_pipe_refuses():
    read_end, write_end = _full_pipe()
    stream = best_effort_stderr(write_end)
    t0 = time.monotonic()
    for i in range(2000):
        stream.write(f"progress line {i}\n")  # 36 kB more than the pipe holds
    stream.flush()
    assert time.monotonic() - t0 < 2
    assert fcntl.fcntl(write_end, fcntl.F_GETFL) & os.O_NONBLOCK == 0  # the shared fd unchanged
    os.read(read_end, 65536)  # room again: the next lines get through
    stream.write("after\n")
    assert os.read(read_end, 65536).endswith(b"after\n")
    os.close(read_end)  # the reader dies: EPIPE, dropped
    stream.write("nobody reads this\n")
    stream.flush()
    stream.close()
    os.close(write_end)


def test_say_is_bounded_on_a_full_pipe():
    read_end, write_end = _full_pipe()
    t0 = time.monotonic()
    say(write_end, "dnalift: interrupted by SIGTERM; no output written\n", timeout=0.5)
    assert time.monotonic() - t0 < 1.5  # a blocking descriptor: given up after the timeout
    fd = nonblocking_fd(write_end)
    t0 = time.monotonic()
    say(fd, "dnalift: interrupted by SIGTERM; no output written\n")
    assert time.monotonic() - t0 < 0.5  # the pipe opened anew without blocking: EAGAIN
    for f in (fd, write_end, read_end):
        os.close(f)


def test_progress_survives_a_closed_stream():
    from dnalift.progress import Progress
    stream = io.StringIO()
    progress = Progress("scoring", stream=stream, interval=0.0)
    progress(1, 4)
    stream.close()  # ValueError on write, like an OSError from a dead pipe
    progress(2, 4)
    progress(4, 4)
    progress.close()
    assert progress.enabled is False
