"""Tests of dnalift.progress with a caller-supplied terminal bar (the library has no click)."""

from __future__ import annotations

import io
import subprocess
import sys


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
    p(30, 30)
    p.close()
    (bar,) = bars
    assert (bar.total, bar.label, bar.steps) == (30, "scoring", [10, 20, "closed"])
    assert bar.rate_text() == "15.0 regions/s"


def test_no_bar_on_a_terminal_without_factory_gives_log_lines():
    from dnalift.progress import Progress
    stream = _Tty()
    now = [0.0]
    p = Progress("scoring", stream=stream, clock=lambda: now[0])
    now[0] = 1.0
    p(5, 5)
    assert stream.getvalue() == "scoring: 5/5 regions (100.0%), 5.0 regions/s, ETA 0:00:00\n"


def test_library_imports_neither_click_nor_the_simulated_task():
    code = ("import sys, dnalift.progress, dnalift.scoring, dnalift.motifs, dnalift.plots, "
            "dnalift.tiling, dnalift.sinks; "
            "print('click' in sys.modules, any(m.startswith('dnalift.simulated') "
            "for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
