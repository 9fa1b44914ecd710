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
    it writes a line after the first batch, one every ``interval`` seconds and a last line
    when done.

    The rate and ETA count from the end of the first batch: its time (loading, compiling the
    engine, warming up) is not a scoring rate. Until a second batch is done the ETA is ``?``.

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
        #: (done, time) at the end of the first batch: the origin of rates and ETAs.
        self._warm: tuple[int, float] | None = None

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        try:
            self._report(done, total)
        except (OSError, ValueError):  # the log stream is gone: stop reporting, go on
            self.enabled = False

    def _report(self, done: int, total: int | None) -> None:
        first = self._warm is None
        if first:
            self._warm = (done, self.clock())
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
        if first or now - self._last >= self.interval or (total is not None and done >= total):
            self._last = now
            self.stream.write(self.line(done, total) + "\n")
            self.stream.flush()

    def rate(self, done: int) -> float:
        """Regions per second since the end of the first batch; before a second batch, the
        rate over the whole time so far (NaN before any region)."""
        now = self.clock()
        if self._warm is not None and done > self._warm[0]:
            return (done - self._warm[0]) / max(now - self._warm[1], 1e-9)
        return done / max(now - self._t0, 1e-9) if done else float("nan")

    def eta(self, done: int, total: int) -> float:
        """Seconds left at the rate since the first batch (NaN until a second batch)."""
        if done >= total:
            return 0.0
        if self._warm is None or done <= self._warm[0]:
            return float("nan")
        return (total - done) / self.rate(done)

    def _rate_text(self) -> str:
        rate = self.rate(self._done)
        return "" if rate != rate else f"{rate:.1f} regions/s"

    def line(self, done: int, total: int | None) -> str:
        """One log line: ``label: done/total regions (pct), rate regions/s, ETA h:mm:ss``
        (ETA ``?`` after the first batch)."""
        rate = self.rate(done)
        rate_text = "? regions/s" if rate != rate else f"{rate:.1f} regions/s"
        if total:
            return (f"{self.label}: {done}/{total} regions ({100 * done / total:.1f}%), "
                    f"{rate_text}, ETA {format_eta(self.eta(done, total))}")
        return f"{self.label}: {done} regions, {rate_text}"

    def close(self) -> None:
        """Finish the bar (terminal only)."""
        if self._bar is not None:
            bar, self._bar = self._bar, None
            try:
                bar.__exit__(None, None, None)
            except (OSError, ValueError):
                pass
