"""Fault injection: real ``dnalift`` processes signalled, killed, starved of disk, given bad
shards, writing their log to a dead or full pipe. Invariant of every run: either complete,
valid outputs and exit status 0, or no output, no temporary file and a non-zero status
(signals: 128 + signum and exactly one line on stderr, when stderr can take it); and in both
cases nothing left in ``$TMPDIR`` (a fresh directory per test). Exact moments come from the
test-only ``DNALIFT_FAULT`` hook (:mod:`dnalift.faults`); random moments from a seeded
generator.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pyBigWig
import pytest

from test_scoring import MODEL, TEST_FA, _records, write_fasta

N = 12  # sequences per job: 4 batches of 3 with 2 shuffles and --batch-size 6
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
COUNTS: collections.Counter = collections.Counter()


def _dnalift() -> str:
    exe = Path(sys.executable).parent / "dnalift"
    return str(exe) if exe.exists() else shutil.which("dnalift")


@pytest.fixture(scope="module")
def fasta(tmp_path_factory) -> Path:
    path = write_fasta(tmp_path_factory.mktemp("faults") / "in.fa", _records(TEST_FA, N))
    subprocess.run([sys.executable, "-c", "import pyfaidx, sys; pyfaidx.Faidx(sys.argv[1])",
                    str(path)], check=True)  # the index exists before any run
    return path


@dataclass
class Run:
    """One finished ``dnalift`` process, the files in its output directory and what it left
    in its ``$TMPDIR``."""

    returncode: int
    stderr: str
    files: list[str]
    seconds: float
    tmp_files: list[str]


def tmpdir_for(out: Path) -> Path:
    """The ``$TMPDIR`` of the runs writing to ``out``: a directory of its own, beside it."""
    tmp = out.parent / f"{out.name}.TMPDIR"
    tmp.mkdir(exist_ok=True)
    return tmp


def _env(tmp: Path, fault: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DNALIFT_FAULT",
                                                            "TF_CPP_MIN_LOG_LEVEL")}
    env["CUDA_VISIBLE_DEVICES"] = ""
    env["TMPDIR"] = str(tmp)
    if fault:
        env["DNALIFT_FAULT"] = fault
    return env


def score_args(fasta: Path, out: Path) -> list[str]:
    return ["score", "--model", str(MODEL), "--fasta", str(fasta), "--shuffles", "2",
            "--batch-size", "6", "--output", str(out / "o.h5"), "--bigwig", str(out / "o.bw"),
            "-q"]


def launch(args: list[str], out: Path, *, fault: str | None = None,
           signal_after: float | None = None, signum: int = signal.SIGTERM) -> Run:
    """Run ``dnalift ARGS`` (optionally signalled ``signal_after`` seconds after start)."""
    t0 = time.monotonic()
    tmp = tmpdir_for(out)
    proc = subprocess.Popen([_dnalift()] + args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(tmp, fault))
    if signal_after is not None:
        try:
            proc.wait(signal_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signum)
    _, err = proc.communicate(timeout=300)
    return Run(proc.returncode, err, sorted(p.name for p in out.iterdir()),
               time.monotonic() - t0, sorted(p.name for p in tmp.iterdir()))


def check_complete(out: Path) -> None:
    """Both outputs exist, are complete and readable; no temporary file."""
    with h5py.File(out / "o.h5", "r") as f:
        assert f.attrs["n_regions"] == N
        assert f["hyp_scores"].shape == (N, 200, 4)
        assert np.isfinite(f["contrib_scores"][:]).all()
        assert np.abs(f["tasks/both/residual"][:]).max() < 1e-3
    bw = pyBigWig.open(str(out / "o.bw"))
    assert bw.chroms()["seq14401"] == 200 and bw.stats("seq14401")[0] is not None
    bw.close()


def classify(run: Run, out: Path, signum: int | None = None) -> str:
    """Check the invariant for one run and name its outcome."""
    temps = [f for f in run.files if f.startswith(".")]
    assert temps == [], (temps, run.stderr)
    assert run.tmp_files == [], (run.tmp_files, run.stderr)  # nothing left in $TMPDIR
    if run.returncode == 0:
        check_complete(out)
        assert set(run.files) == {"o.h5", "o.bw"}, run.files
        return "complete, exit 0"
    assert run.files == [], (run.files, run.returncode, run.stderr)
    if signum is not None and run.returncode == -signum:
        return "killed before dnalift started, no output"  # default action, nothing written
    if signum is not None:
        assert run.returncode == 128 + signum, (run.returncode, run.stderr)
        name = signal.Signals(signum).name
        assert run.stderr == f"dnalift: interrupted by {name}; no output written\n", run.stderr
        return f"interrupted, exit {128 + signum}"
    lines = run.stderr.strip().splitlines()
    assert run.returncode in (1, 2) and len(lines) == 1, (run.returncode, run.stderr)
    assert lines[0].startswith("dnalift: error: "), run.stderr
    return f"error, exit {run.returncode}"


def _record(kind: str, outcome: str) -> None:
    COUNTS[(kind, outcome)] += 1


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    total = sum(COUNTS.values())
    print(f"\nfault injection: {total} runs")
    for (kind, outcome), n in sorted(COUNTS.items()):
        print(f"  {kind:28s} {outcome:42s} {n:3d}")


def test_complete_run_and_signals_at_random_moments(fasta, tmp_path):
    """A clean run gives the job's duration T; then signals at seeded random moments in
    [0, 1.1 T]: start-up (imports, tracing), batches, writing, renames, exit."""
    ref = tmp_path / "ref"
    ref.mkdir()
    run = launch(score_args(fasta, ref), ref)
    assert classify(run, ref) == "complete, exit 0" and run.stderr == ""
    _record("clean run", "complete, exit 0")
    rng = np.random.default_rng(13)
    plan = [(i, SIGNALS[i % 3], float(rng.uniform(0, 1.1 * run.seconds))) for i in range(18)]

    def one(item):
        i, signum, delay = item
        out = tmp_path / f"r{i}"
        out.mkdir()
        return signum, delay, out, launch(score_args(fasta, out), out, signal_after=delay,
                                          signum=signum)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(one, plan))
    for signum, delay, out, run in results:
        outcome = classify(run, out, signum)
        _record(f"random {signal.Signals(signum).name}", outcome)
    interrupted = sum("interrupted" in classify(r, o, s) for s, _, o, r in results)
    assert interrupted >= 6  # most moments fall inside the job


MOMENTS = ["start", "loaded", "write@0", "write@2", "rename@0", "rename@1", "lock@0", "lock@1"]


@pytest.mark.parametrize("point", MOMENTS)
def test_signal_at_exact_moments(point, fasta, tmp_path):
    """start-up, first batch, mid-run, the HDF5 rename and the bigWig rename (the final
    one): the signal always wins, nothing is left."""
    signum = SIGNALS[MOMENTS.index(point) % 3]
    run = launch(score_args(fasta, tmp_path), tmp_path,
                 fault=f"{point}:{signal.Signals(signum).name}")
    outcome = classify(run, tmp_path, signum)
    assert outcome == f"interrupted, exit {128 + signum}", run
    _record(f"{point} {signal.Signals(signum).name}", outcome)


@pytest.mark.parametrize("point", ["write@1", "rename@1"])
def test_sigkill_then_rerun(point, fasta, tmp_path):
    """SIGKILL mid-run leaves a temp file (after the HDF5 rename: the HDF5 file); the re-run
    removes the stale temp file with one notice, or reuses the finished HDF5 file."""
    killed = launch(score_args(fasta, tmp_path), tmp_path, fault=f"{point}:SIGKILL")
    assert killed.returncode == -signal.SIGKILL
    assert len(killed.tmp_files) == 1 and killed.tmp_files[0].startswith("dnalift-")
    _record(f"{point} SIGKILL", "killed")
    rerun = launch(score_args(fasta, tmp_path), tmp_path)
    assert classify(rerun, tmp_path) == "complete, exit 0"
    locks = [".o.bw.lock", ".o.h5.lock"]  # a SIGKILLed job cannot remove its locks ...
    assert [f for f in killed.files if f.endswith(".lock")] == locks
    left = [f for f in killed.files if not f.endswith(".lock")]
    took_over = [line for line in rerun.stderr.splitlines() if "took over the lock" in line]
    assert len(took_over) == 2  # ... the re-run takes them over, one line each
    if point == "write@1":
        assert left == [".o.h5.%s.tmp" % left[0].split(".")[3]]
        assert "removed" in rerun.stderr and left[0] in rerun.stderr
        assert len(rerun.stderr.strip().splitlines()) == 1 + len(took_over)
    else:  # the HDF5 file is in place; the bigWig's temp file and scratch directory remain
        pid = left[0].split(".")[3]
        assert left == [f".o.bw.{pid}.tmp", f".o.bw.{pid}.tmp.d", "o.h5"]
        assert rerun.stderr.count("removed") == 2
    _record(f"re-run after {point} SIGKILL", "complete, exit 0")


@pytest.mark.parametrize("point", ["write@1", "rename@1"])
def test_disk_full(point, fasta, tmp_path):
    """ENOSPC while writing the HDF5 file, and while committing the bigWig (after the
    HDF5 file was renamed into place): one line, exit 1, nothing left."""
    run = launch(score_args(fasta, tmp_path), tmp_path, fault=f"{point}:ENOSPC")
    outcome = classify(run, tmp_path)
    assert outcome == "error, exit 1" and "No space left on device" in run.stderr
    _record(f"{point} ENOSPC", outcome)


def test_unwritable_output(fasta, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = tmp_path / "out"
    out.mkdir()
    args = score_args(fasta, out)
    args[args.index("--output") + 1] = str(blocker / "o.h5")
    run = launch(args, out)
    assert classify(run, out) == "error, exit 2" and "not a directory" in run.stderr
    _record("unwritable output", "error, exit 2")


def test_corrupted_shards_given_to_merge(fasta, tmp_path):
    shards = []
    for i in (1, 2):
        d = tmp_path / f"s{i}"
        d.mkdir()
        args = score_args(fasta, d)[:-3] + ["--shard", f"{i}/2", "-q"]
        assert launch(args, d).returncode == 0
        shards.append(d / "o.h5")
    out = tmp_path / "m"
    out.mkdir()
    merge = ["merge", str(shards[0]), str(shards[1]), "--output", str(out / "o.h5"),
             "--bigwig", str(out / "o.bw")]
    good = tmp_path / "good.h5"
    shutil.copy(shards[1], good)
    # 1. a damaged dataset chunk (header intact): zero the first compressed chunk
    with h5py.File(shards[1], "r") as f:
        info = f["tasks/both/hyp_scores"].id.get_chunk_info(0)
    data = bytearray(good.read_bytes())
    data[info.byte_offset:info.byte_offset + info.size] = bytes(info.size)
    shards[1].write_bytes(bytes(data))
    run = launch(merge, out)
    assert classify(run, out) == "error, exit 2" and str(shards[1]) in run.stderr
    assert "corrupted" in run.stderr
    _record("merge, damaged shard", "error, exit 2")
    # 2. truncated shard
    shards[1].write_bytes(good.read_bytes()[:2000])
    run = launch(merge, out)
    assert classify(run, out) == "error, exit 2" and str(shards[1]) in run.stderr
    _record("merge, truncated shard", "error, exit 2")
    # 3. a shard of another job (other seed) next to a valid one
    shutil.copy(good, shards[1])
    with h5py.File(shards[1], "r+") as f:
        f.attrs["seed"] = 7
    run = launch(merge, out)
    assert classify(run, out) == "error, exit 2" and "seed" in run.stderr
    _record("merge, shard of another job", "error, exit 2")


# ------------------------------------------------------------------ stderr to a dead or full pipe
LONG = 600  # sequences: scoring outlasts the moment the signal is sent


@pytest.fixture(scope="module")
def long_fasta(tmp_path_factory) -> Path:
    return write_fasta(tmp_path_factory.mktemp("long") / "long.fa", _records(TEST_FA, LONG))


def log_pipe(kind: str) -> tuple[int | None, int]:
    """``(read end or None, write end)`` of stderr for a run: ``dead``, the reader is gone
    (EPIPE); ``full``, nobody reads and the buffer is full (a blocking write waits forever);
    ``closed`` (see :func:`_close_stderr`), the write end of a dead pipe."""
    read_end, write_end = os.pipe()
    if kind in ("dead", "closed"):
        os.close(read_end)
        return None, write_end
    flags = fcntl.fcntl(write_end, fcntl.F_GETFL)
    fcntl.fcntl(write_end, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(write_end, b"x" * 4096)
    fcntl.fcntl(write_end, fcntl.F_SETFL, flags)
    return read_end, write_end


def _close_stderr() -> None:
    os.close(2)  # in the child, before exec: dnalift starts with no descriptor 2


def _wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def launch_with_log_pipe(args: list[str], out: Path, kind: str,
                         signum: int | None = None) -> tuple[Run, float | None]:
    """Run ``dnalift ARGS`` with stderr to a ``kind`` pipe (:func:`log_pipe`); with
    ``signum``, send it once the HDF5 writer has started (its temporary file exists). Returns
    the run and the seconds from the signal to the exit; a process alive 60 s after the
    signal (or 300 s after start) is killed and fails the test."""
    read_end, write_end = log_pipe(kind)
    tmp = tmpdir_for(out)
    t0 = time.monotonic()
    proc = subprocess.Popen([_dnalift()] + args, stdout=subprocess.DEVNULL, stderr=write_end,
                            env=_env(tmp), preexec_fn=_close_stderr if kind == "closed" else None)
    os.close(write_end)
    try:
        waited = None
        if signum is not None:
            _wait_for(lambda: any(out.glob(".o.h5.*.tmp")) or proc.poll() is not None, 300)
            t_signal = time.monotonic()
            proc.send_signal(signum)
            proc.wait(timeout=60)
            waited = time.monotonic() - t_signal
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if read_end is not None:
            os.close(read_end)
    return Run(proc.returncode, "", sorted(p.name for p in out.iterdir()),
               time.monotonic() - t0, sorted(p.name for p in tmp.iterdir())), waited


@pytest.mark.parametrize("kind, signum", [("dead", signal.SIGTERM), ("dead", signal.SIGHUP),
                                          ("full", signal.SIGTERM), ("full", signal.SIGHUP),
                                          ("closed", signal.SIGTERM)])
def test_signal_while_the_log_pipe_is_dead_or_full(kind, signum, long_fasta, tmp_path):
    """The one-line message cannot be written (EPIPE, the pipe is full, no stderr): the job still
    removes its files and exits with 128 + signum at once."""
    run, waited = launch_with_log_pipe(score_args(long_fasta, tmp_path), tmp_path, kind,
                                       signum)
    assert run.returncode == 128 + signum, run
    assert waited < 5, waited
    assert run.files == [] and run.tmp_files == [], run
    _record(f"{kind} log pipe, {signal.Signals(signum).name}", f"interrupted, exit {128 + signum}")


@pytest.mark.parametrize("kind", ["dead", "full", "closed"])
def test_progress_to_a_dead_or_full_log_pipe(kind, fasta, tmp_path):
    """Without -q (progress and summary lines): a log that cannot be written is dropped,
    the job completes."""
    args = [a for a in score_args(fasta, tmp_path) if a != "-q"]
    run, _ = launch_with_log_pipe(args, tmp_path, kind)
    assert classify(run, tmp_path) == "complete, exit 0"
    _record(f"{kind} log pipe, progress", "complete, exit 0")


def test_stale_private_tmpdirs_of_dead_processes_are_removed(tmp_path):
    """Only this host's ``dnalift-PID@HOST.XXXXXXXX`` of a PID that no longer runs."""
    import socket

    from dnalift.cli.process import remove_stale_tmpdirs

    host = socket.gethostname()
    dead = subprocess.Popen(["true"])
    dead.wait()
    names = {"dead": f"dnalift-{dead.pid}@{host}.abcd_123",
             "alive": f"dnalift-1@{host}.abcd_123",
             "other host": f"dnalift-{dead.pid}@{host}x.abcd_123",
             "not ours": f"dnalift-{dead.pid}@{host}.abcd_123.keep"}
    for name in names.values():
        (tmp_path / name).mkdir()
        (tmp_path / name / "__autograph_generated_file0.py").write_text("")
    assert remove_stale_tmpdirs(tmp_path) == [tmp_path / names["dead"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        n for k, n in names.items() if k != "dead")
