"""Output locks (dnalift/locks.py): one job per output, on one machine and across hosts."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from dnalift import fileio, locks

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "data" / "simulated" / "model.h5"


@pytest.fixture
def sleeper():
    """A live process on this machine (not this one)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def holder_of(pid: int, **changes) -> locks.Holder:
    fields = {"pid": pid, "start": locks.process_start(pid), **changes}
    return dataclasses.replace(locks.this_process(), **fields)


def write_lock(output: Path, holder: locks.Holder, age: float = 0.0) -> Path:
    lock = locks.lock_path(output)
    lock.write_text(holder.to_text())
    then = time.time() - age
    os.utime(lock, (then, then))
    return lock


def test_acquire_writes_the_holder_and_release_removes_it(tmp_path):
    out = tmp_path / "o.h5"
    lock, previous = locks.acquire(out)
    assert lock == tmp_path / ".o.h5.lock" and previous is None
    holder = locks.Holder.from_text(lock.read_text())
    assert holder == dataclasses.replace(locks.this_process(), since=holder.since)
    assert holder.pid == os.getpid() and holder.start.isdigit()
    locks.release(lock)
    assert not lock.exists()


def test_a_live_holder_on_this_machine_refuses(tmp_path, sleeper):
    out = tmp_path / "o.h5"
    lock = write_lock(out, holder_of(sleeper.pid), age=10_000)  # age does not matter here
    with pytest.raises(locks.OutputLocked, match=rf"o\.h5 is being written by another "
                       rf"dnalift job \(pid {sleeper.pid} on {os.uname().nodename}"):
        locks.acquire(out)
    assert locks.Holder.from_text(lock.read_text()).pid == sleeper.pid  # untouched


def test_a_dead_holder_on_this_machine_is_taken_over(tmp_path):
    out = tmp_path / "o.h5"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = holder_of(dead.pid, start="12345")
    write_lock(out, stale)
    lock, previous = locks.acquire(out)
    assert previous == stale
    assert locks.Holder.from_text(lock.read_text()).pid == os.getpid()
    assert [p.name for p in tmp_path.iterdir()] == [".o.h5.lock"]  # nothing set aside left


def test_a_reused_pid_does_not_keep_a_lock(tmp_path, sleeper):
    """The PID runs, but it is another process than the one that took the lock."""
    out = tmp_path / "o.h5"
    write_lock(out, holder_of(sleeper.pid, start="1"))
    lock, previous = locks.acquire(out)
    assert previous is not None and previous.pid == sleeper.pid


def test_another_host_holds_while_its_heartbeat_is_fresh(tmp_path):
    out = tmp_path / "o.h5"
    other = holder_of(4242, host="node17", boot="another-boot", start="99")
    write_lock(out, other, age=30)
    with pytest.raises(locks.OutputLocked, match="pid 4242 on node17"):
        locks.acquire(out, stale_s=600)
    write_lock(out, other, age=601)
    lock, previous = locks.acquire(out, stale_s=600)
    assert previous == other


def test_stale_time_from_the_environment(monkeypatch):
    monkeypatch.setenv(locks.STALE_ENV, "30")
    assert locks.stale_after() == 30.0
    monkeypatch.setenv(locks.STALE_ENV, "soon")
    with pytest.raises(locks.InputError, match="DNALIFT_LOCK_STALE='soon'"):
        locks.stale_after()


def test_hold_beats_and_releases_on_success_and_on_error(tmp_path):
    outs = [tmp_path / "a.h5", tmp_path / "b.bw"]
    with locks.hold(outs, period=0.05) as taken_over:
        assert taken_over == []
        lock = locks.lock_path(outs[0])
        os.utime(lock, (0, 0))
        time.sleep(0.3)
        assert time.time() - lock.stat().st_mtime < 5  # touched by the heartbeat
    assert not any(p.name.endswith(".lock") for p in tmp_path.iterdir())
    with pytest.raises(RuntimeError):
        with locks.hold(outs):
            raise RuntimeError("job failed")
    assert list(tmp_path.iterdir()) == []


def test_hold_refuses_without_touching_the_other_locks(tmp_path, sleeper):
    outs = [tmp_path / "a.h5", tmp_path / "b.bw"]
    write_lock(outs[1], holder_of(sleeper.pid))
    with pytest.raises(locks.OutputLocked):
        with locks.hold(outs):
            pass
    assert [p.name for p in tmp_path.iterdir()] == [".b.bw.lock"]  # a's lock released


def test_no_lock_in_a_directory_not_made_yet(tmp_path):
    assert locks.acquire(tmp_path / "new" / "o.h5") == (None, None)
    assert not (tmp_path / "new").exists()


def test_holding_the_lock_makes_every_other_temp_stale(tmp_path, sleeper):
    """A temporary file named with a live PID (another host's job, whose PID means nothing
    here) is kept unless this job holds the output's lock."""
    out = tmp_path / "o.h5"
    tmp = tmp_path / f".o.h5.{sleeper.pid}.tmp"
    tmp.write_text("partial")
    registry = fileio.OutputRegistry()
    with fileio.track_outputs(registry):
        assert fileio.remove_stale_temps(out) == [] and tmp.exists()
        with locks.hold([out]):
            assert registry.holds_lock(out)
            assert fileio.remove_stale_temps(out) == [tmp] and not tmp.exists()
        assert not registry.holds_lock(out)


# ------------------------------------------------------------------- two real processes

def score_cmd(fasta: Path, out: Path) -> list[str]:
    """`dnalift score` of ``fasta`` into ``out`` (2 references), as a console user runs it."""
    return [sys.executable, "-m", "dnalift.cli.process", "score", "--model", str(MODEL),
            "--fasta", str(fasta), "--shuffles", "2", "--output", str(out), "--quiet"]


@pytest.fixture
def fasta(tmp_path) -> Path:
    lines = (REPO / "data" / "simulated" / "test.fa").read_text().splitlines()
    path = tmp_path / "four.fa"
    records = [i for i, line in enumerate(lines) if line.startswith(">")]
    path.write_text("\n".join(lines[:records[4]]) + "\n")
    return path


def test_two_jobs_for_one_output_one_refused(tmp_path, fasta):
    """The second job is refused in one line with exit 2 while the first runs; the first
    finishes with the same scores as a job alone, and neither leaves a lock or temp file."""
    out = tmp_path / "o.h5"
    first = subprocess.Popen(score_cmd(fasta, out), stderr=subprocess.PIPE, text=True)
    lock = locks.lock_path(out)
    deadline = time.monotonic() + 60
    while not lock.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    start = time.monotonic()
    second = subprocess.run(score_cmd(fasta, out), capture_output=True, text=True, timeout=120)
    refused_in = time.monotonic() - start
    assert second.returncode == 2, second.stderr
    assert second.stderr.strip().splitlines() == [
        f"dnalift: error: {out} is being written by another dnalift job (pid {first.pid} on "
        f"{os.uname().nodename}, since " + second.stderr.split(", since ")[1].strip()]
    assert f"if that job is dead remove {lock}" in second.stderr
    assert refused_in < 30
    assert first.wait(timeout=300) == 0, first.stderr.read()
    alone = tmp_path / "alone.h5"
    subprocess.run(score_cmd(fasta, alone), check=True, timeout=300)
    with h5py.File(out, "r") as a, h5py.File(alone, "r") as b:
        assert a["hyp_scores"].shape[0] == 4
        np.testing.assert_array_equal(a["hyp_scores"][()], b["hyp_scores"][()])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone.h5", "four.fa", "four.fa.fai",
                                                          "o.h5"]


def test_lock_removed_on_sigterm_and_taken_over_after_sigkill(tmp_path, fasta):
    out = tmp_path / "o.h5"
    env = {**os.environ, "DNALIFT_FAULT": "loaded:SIGTERM"}
    res = subprocess.run(score_cmd(fasta, out), capture_output=True, text=True, env=env,
                         timeout=300)
    assert res.returncode == 143 and not locks.lock_path(out).exists()
    env["DNALIFT_FAULT"] = "loaded:SIGKILL"
    killed = subprocess.run(score_cmd(fasta, out), capture_output=True, text=True, env=env,
                            timeout=300)
    assert killed.returncode == -9
    dead = locks.Holder.from_text(locks.lock_path(out).read_text())
    assert dead is not None and dead.host == os.uname().nodename
    res = subprocess.run(score_cmd(fasta, out), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (f"dnalift: took over the lock of {out} from pid {dead.pid} on {dead.host}, since "
            f"{dead.since} (no longer running)") in res.stderr
    assert out.exists() and not locks.lock_path(out).exists()
