"""Seconds from start to the first line of output, and to exit, of ``dnalift`` commands.

The "first ten minutes" cases of a new user (docs/errors.md): a scoring run on the shipped
data, and the validation errors of a missing model, a wrong sequence length, repeated task
names and a missing FASTA. Run from the repository root::

    python bench/first_output.py [--repeat 3]

Prints one TSV row per case: case, first line (s), exit (s), exit status, the first line.
"""

from __future__ import annotations

import argparse
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path("data/simulated")


def cases(tmp: Path) -> dict[str, list[str]]:
    """``name -> dnalift arguments`` of each measured case (files written under ``tmp``)."""
    short = tmp / "short.fa"
    short.write_text(">s1\n" + "ACGT" * 10 + "\n")
    model, fasta = str(DATA / "model.keras"), str(DATA / "test.fa")
    out = str(tmp / "out.h5")
    score = ["score", "--model", model, "--device", "cpu", "--output", out]
    return {
        "score (first line)": score + ["--fasta", fasta, "--force"],
        "missing model": ["score", "--model", str(tmp / "nope.keras"), "--fasta", fasta,
                          "--output", out],
        "wrong length": score + ["--fasta", str(short)],
        "task names x,x": score + ["--fasta", fasta, "--task-names", "x,x"],
        "missing FASTA": score + ["--fasta", str(tmp / "nope.fa")],
    }


def measure(args: list[str]) -> tuple[float, float, int, str]:
    """(seconds to the first line on stdout or stderr, seconds to exit, status, that line)."""
    t0 = time.monotonic()
    proc = subprocess.Popen([shutil.which("dnalift") or "dnalift", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    sel.register(proc.stderr, selectors.EVENT_READ)
    first, first_t, open_streams = "", float("nan"), 2
    while open_streams:
        for key, _ in sel.select():
            line = key.fileobj.readline()
            if not line:
                sel.unregister(key.fileobj)
                open_streams -= 1
            elif not first:
                first, first_t = line.decode(errors="replace").rstrip(), time.monotonic() - t0
    status = proc.wait()
    return first_t, time.monotonic() - t0, status, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in cases(Path(tmp)).items():
            for _ in range(opts.repeat):
                first_t, total, status, line = measure(args)
                print(f"{name}\t{first_t:.2f}\t{total:.2f}\t{status}\t{line[:100]}",
                      flush=True)


if __name__ == "__main__":
    sys.exit(main())
