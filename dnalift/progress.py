"""Progress reporting for long jobs (a side channel of the scoring stage): a bar on a terminal
when the caller supplies one (the CLI passes click's), periodic log lines otherwise.

Progress is a log: a stream that fails (a closed pipe, a closed file) silences the reporter
for the rest of the job instead of failing the job."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, TextIO

#: ``bar(total, label, stream, rate_text) -> context manager with .update(n)``, e.g. a
#: wrapper of ``click.progressbar`` (supplied by the CLI; the library does not import click).
BarFactory = Callable[[int, str, TextIO, Callable[[], str]], Any]


def format_eta(seconds: float) -> str:
    """``h:mm:ss`` for a number of seconds (``?`` when unknown)."""
    if seconds != seconds or seconds == float("inf") or seconds < 0:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """Callable ``progress(done, total)`` that reports regions done, rate and ETA.

    On a terminal, with a ``bar`` factory, it draws that bar; otherwise (batch-system logs)
    it writes one line every ``interval`` seconds and a last line when done.

    Parameters
    ----------
    label : str
    stream : text stream, default ``sys.stderr``
    interval : float
        Seconds between log lines when not on a terminal.
    enabled : bool
        False silences all output (``--quiet``).
    clock : callable
        Time source (seconds).
    bar : callable, optional
        :data:`BarFactory` used on a terminal.
    """

    def __init__(self, label: str = "scoring", stream: TextIO | None = None,
                 interval: float = 30.0, enabled: bool = True,
                 clock: Callable[[], float] = time.monotonic,
                 bar: BarFactory | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.enabled = enabled
        self.clock = clock
        self.tty = (bar is not None and enabled and hasattr(self.stream, "isatty")
                    and self.stream.isatty())
        self._bar_factory = bar
        self._bar = None
        self._done = 0
        self._t0 = clock()
        self._last = self._t0

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        try:
            self._report(done, total)
        except (OSError, ValueError):  # the log stream is gone: stop reporting, go on
            self.enabled = False

    def _report(self, done: int, total: int | None) -> None:
        if self.tty:
            if self._bar is None:
                self._bar = self._bar_factory(total or 0, self.label, self.stream,
                                              self._rate_text)
                self._bar.__enter__()
            self._bar.update(done - self._done)
            self._done = done
            return
        self._done = done
        now = self.clock()
        if now - self._last >= self.interval or (total is not None and done >= total):
            self._last = now
            self.stream.write(self.line(done, total) + "\n")
            self.stream.flush()

    def _rate_text(self) -> str:
        elapsed = max(self.clock() - self._t0, 1e-9)
        return f"{self._done / elapsed:.1f} regions/s"

    def line(self, done: int, total: int | None) -> str:
        """One log line: ``label: done/total regions (pct), rate regions/s, ETA h:mm:ss``."""
        elapsed = max(self.clock() - self._t0, 1e-9)
        rate = done / elapsed
        if total:
            eta = (total - done) / rate if rate > 0 else float("inf")
            return (f"{self.label}: {done}/{total} regions ({100 * done / total:.1f}%), "
                    f"{rate:.1f} regions/s, ETA {format_eta(eta)}")
        return f"{self.label}: {done} regions, {rate:.1f} regions/s"

    def close(self) -> None:
        """Finish the bar (terminal only)."""
        if self._bar is not None:
            bar, self._bar = self._bar, None
            try:
                bar.__exit__(None, None, None)
            except (OSError, ValueError):
                pass
