"""The SLURM path on a real scheduler: profiles/slurm, scripts/slurm_array.sh, resume.

Marked ``slurm`` and left out of the default run (setup.cfg: ``-m "not slurm"``); they need
a SLURM cluster whose jobs see this directory, e.g. the one-node cluster of
``scripts/slurm-local start`` (what ``.ci/run`` starts), and skip when ``sinfo`` does not
answer. Run them with ``python3 -m pytest -m slurm tests/test_slurm.py``.

Every scoring job scores the synthetic genome of tests/test_workflow.py (37 windows of
200 bp) with the shipped model, 1 CPU and no GPU, so the whole module takes a few minutes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from test_scoring import assert_rows_close
from test_workflow import (REPO, SHIPPED_MODEL, SNAKEFILE, genome_config, synthetic_genome,
                           write_config)

PROFILE = REPO / "profiles" / "slurm"
ARRAY = REPO / "scripts" / "slurm_array.sh"
SCORE_OPTIONS = ["--shuffles", "2", "--seed", "3"]  # as genome_config's score section


def _cluster_up() -> bool:
    if not shutil.which("sinfo"):
        return False
    res = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return res.returncode == 0 and any(
        s.strip("*~#") in ("idle", "mixed", "allocated") for s in res.stdout.split())


pytestmark = pytest.mark.slurm


@pytest.fixture(autouse=True, scope="module")
def _cluster() -> None:
    """Skip unless a cluster answers. Asked when the first test runs, not when the module is
    collected: without a controller ``sinfo`` waits ~9 s, and the default run (``-m "not
    slurm"``) deselects these tests but still collects this module in every worker."""
    if not _cluster_up():
        pytest.skip("no SLURM cluster answers (start one with: sudo scripts/slurm-local start)")


# --------------------------------------------------------------------------- helpers

def squeue(*args: str) -> list[list[str]]:
    """``squeue --states=all`` rows of job id, name, state, comment (``|``-separated)."""
    out = subprocess.run(["squeue", "-h", "--states=all", "-o", "%i|%j|%T|%k", *args],
                         capture_output=True, text=True, check=True).stdout
    return [line.split("|") for line in out.splitlines()]


def wait_for(predicate, timeout: float, what: str, step: float = 0.5):
    """The first truthy value of ``predicate()``, polled until ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def leftovers(directory: Path) -> list[Path]:
    """Temporary and partial files dnalift or snakemake left under ``directory``."""
    return [p for p in directory.rglob("*")
            if p.name.endswith((".tmp", ".tmp.h5", ".tmp.bw")) or ".tmp." in p.name]


def cluster_config(tmp_path: Path, shards: int, **cluster) -> Path:
    """The genome workflow on the synthetic genome, shard jobs of 1 CPU in the default
    partition; ``resources.score.gpu`` is 1 as in config/genome_example.yaml, so only
    ``cluster.gpus`` decides whether a shard asks for a GPU."""
    config = genome_config(tmp_path, shards=shards)
    config["resources"] = {"score": {"threads": 1, "mem_mb": 2000, "runtime": 10, "gpu": 1},
                           "light": {"threads": 1, "mem_mb": 1000, "runtime": 10}}
    config["cluster"] = {"gpus": False, **cluster}
    return write_config(tmp_path / "cfg.yaml", config)


def profile_run(workdir: Path, cfg: Path, *extra: str, background: bool = False):
    """snakemake with ``--profile profiles/slurm`` (as a cluster user runs it), status
    checks every 2 s instead of the plugin's 40 s start delay."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE),
           "--directory", str(workdir), "--profile", str(PROFILE), "--configfile", str(cfg),
           "--slurm-init-seconds-before-status-checks", "2",
           "--seconds-between-status-checks", "2", "--latency-wait", "5", *extra]
    if background:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory) -> Path:
    """One local, unsharded `dnalift score` of the synthetic genome's 37 windows: what every
    cluster run must reproduce (HDF5 rows within tests/test_scoring.BATCH_TOL = 5e-6 of
    the largest value, the tolerance measured for float32 shards on three kernel sets)."""
    work = tmp_path_factory.mktemp("unsharded")
    synthetic_genome(work / "genome.fa")
    subprocess.run(["dnalift", "tile", "--genome", str(work / "genome.fa"), "--width", "200",
                    "--step", "100", "--exclude", "^chrM$", "--output", str(work / "w.bed")],
                   check=True, capture_output=True, timeout=300)
    subprocess.run(["dnalift", "score", "--model", str(SHIPPED_MODEL), "--bed",
                    str(work / "w.bed"), "--genome", str(work / "genome.fa"), *SCORE_OPTIONS,
                    "--output", str(work / "one.h5"), "--quiet"],
                   check=True, capture_output=True, timeout=300)
    return work


def assert_equals_unsharded(merged: Path, unsharded: Path) -> None:
    with h5py.File(merged, "r") as m, h5py.File(unsharded / "one.h5", "r") as s:
        assert m["hyp_scores"].shape == s["hyp_scores"].shape == (37, 200, 4)
        assert np.abs(s["hyp_scores"][()]).max() > 0
        assert_rows_close(s, m)


# --------------------------------------------------------------------------- Snakemake profile

def test_profile_run_on_cpu_only_cluster_equals_unsharded(tmp_path, unsharded):
    """The genome workflow through sbatch jobs (cluster.gpus: false although the config
    asks for one GPU per shard): the merged HDF5 equals the unsharded local run."""
    synthetic_genome(tmp_path / "genome.fa")
    res = profile_run(tmp_path, cluster_config(tmp_path, shards=3))
    assert res.returncode == 0, res.stdout[-4000:]
    assert "--gpus" not in res.stdout and "gpu=" not in res.stdout
    assert_equals_unsharded(tmp_path / "results/genome/scores.h5", unsharded)
    assert not leftovers(tmp_path)


def test_scancel_of_a_shard_is_retried_and_the_run_finishes(tmp_path, unsharded):
    """`scancel` of a running shard job: the profile's squeue status command sees
    CANCELLED, `retries` resubmits the job, the run finishes by itself with the outputs of
    an unsharded run and no temporary file (sacct's 'CANCELLED by 0' used to hang it)."""
    synthetic_genome(tmp_path / "genome.fa")
    cfg = cluster_config(tmp_path, shards=2)
    run = profile_run(tmp_path, cfg, background=True)
    try:
        def running_shard():
            rows = [r for r in squeue() if r[2] == "RUNNING" and "score_shard" in r[3]]
            return rows[0][0] if rows else None
        job = wait_for(running_shard, 300, "a running shard job")
        time.sleep(3)  # inside dnalift by now (TensorFlow loading or scoring)
        subprocess.run(["scancel", job], check=True)
        out, _ = run.communicate(timeout=900)
    finally:
        run.kill()
    assert run.returncode == 0, out[-4000:]
    assert job in out and "CANCELLED" in out  # the plugin saw the cancelled job fail
    state = [r[2] for r in squeue("-j", job)]
    assert state == ["CANCELLED"], state
    assert_equals_unsharded(tmp_path / "results/genome/scores.h5", unsharded)
    assert not leftovers(tmp_path)


def test_gpu_request_on_a_cluster_without_gpus_fails_at_once(tmp_path):
    """A shard that asks for a GPU on a cluster without GPUs: sbatch refuses it and the run
    stops with the scheduler's reason within seconds, instead of a job pending forever."""
    synthetic_genome(tmp_path / "genome.fa")
    cfg = cluster_config(tmp_path, shards=2, gpus=True)
    start = time.monotonic()
    res = profile_run(tmp_path, cfg, "--retries", "0", "results/genome/shards/shard1-of-2.h5")
    took = time.monotonic() - start
    assert res.returncode != 0
    assert "Invalid generic resource (gres) specification" in res.stdout, res.stdout[-3000:]
    assert took < 120, took
    assert not [r for r in squeue() if r[2] == "PENDING" and "score_shard" in r[3]]


# --------------------------------------------------------------------------- plain array script

def submit_array(tmp_path: Path, out: Path, *options: str, **variables: str) -> str:
    env = {**os.environ, "DNALIFT_GPUS": "0", "DNALIFT_CPUS": "1", "DNALIFT_MEM": "2G",
           "DNALIFT_MERGE_MEM": "1G", **variables}
    res = subprocess.run([str(ARRAY), "submit", "2", str(SHIPPED_MODEL), str(tmp_path / "w.bed"),
                          str(tmp_path / "genome.fa"), str(out), *options],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout


def job_ids(stdout: str) -> dict[str, str]:
    """{'array': id, 'merge': id} from the script's 'submitted ...' lines."""
    ids = {}
    for line in stdout.splitlines():
        if line.startswith("submitted shard tasks"):
            ids["array"] = line.split(" as array job ")[1].strip()
        elif line.startswith("submitted merge job"):
            ids["merge"] = line.split()[3].rstrip(":")
    return ids


def wait_finished(job: str, timeout: float) -> list[str]:
    """States of every task of ``job`` once none is pending or running."""
    def done():
        states = [r[2] for r in squeue("-j", job)]
        return states if states and not {"PENDING", "RUNNING", "COMPLETING"} & set(states) \
            else None
    return wait_for(done, timeout, f"job {job} to finish", step=1)


def test_array_script_as_documented_equals_unsharded(tmp_path, unsharded):
    """scripts/slurm_array.sh submit, as its header documents, on a CPU-only cluster: the
    genome is indexed once, both shards and the merge run, the merged HDF5 equals the
    unsharded run; submitting again resubmits nothing but the merge."""
    synthetic_genome(tmp_path / "genome.fa")
    shutil.copy(unsharded / "w.bed", tmp_path / "w.bed")
    out = tmp_path / "out"
    stdout = submit_array(tmp_path, out, *SCORE_OPTIONS)
    assert "indexing" in stdout and (tmp_path / "genome.fa.fai").exists()
    ids = job_ids(stdout)
    assert wait_finished(ids["array"], 600) == ["COMPLETED", "COMPLETED"]
    assert wait_finished(ids["merge"], 300) == ["COMPLETED"]
    assert_equals_unsharded(out / "scores.h5", unsharded)
    assert (out / "scores.bw").stat().st_size > 0 and not leftovers(out)
    again = submit_array(tmp_path, out, *SCORE_OPTIONS)
    assert "all 2 shards are finished" in again and "indexing" not in again


def test_array_task_killed_by_its_time_limit_then_resubmitted(tmp_path, unsharded):
    """Shard tasks that outlive --time (1 minute), stopped in the middle of writing: SLURM
    kills them (TIMEOUT; SIGCONT + SIGTERM, then SIGKILL), they leave no shard and no
    temporary file, and the merge job is removed (--kill-on-invalid-dep) instead of pending
    forever. The same submit command, run again, finishes with the unsharded run's scores:
    nothing of the killed run is in the way."""
    synthetic_genome(tmp_path / "genome.fa")
    shutil.copy(unsharded / "w.bed", tmp_path / "w.bed")
    out = tmp_path / "out"
    # each task stops itself (SIGSTOP) after writing its first batch to its temporary file:
    # a job that outlives its limit whatever the machine's speed
    ids = job_ids(submit_array(tmp_path, out, *SCORE_OPTIONS, DNALIFT_TIME="1",
                               DNALIFT_FAULT="write@0:SIGSTOP"))
    assert wait_finished(ids["array"], 240) == ["TIMEOUT", "TIMEOUT"]
    merge = wait_finished(ids["merge"], 120)
    assert merge == ["CANCELLED"], merge
    assert not list((out / "shards").iterdir()) and not leftovers(out)
    logs = "".join(p.read_text() for p in (out / "logs").glob("shard-*.log"))
    assert logs.count("DUE TO TIME LIMIT") == 2
    assert logs.count("dnalift: interrupted by SIGTERM; no output written") == 2
    ids = job_ids(submit_array(tmp_path, out, *SCORE_OPTIONS, DNALIFT_TIME="1"))
    assert wait_finished(ids["array"], 600) == ["COMPLETED", "COMPLETED"]
    assert wait_finished(ids["merge"], 300) == ["COMPLETED"]
    assert_equals_unsharded(out / "scores.h5", unsharded)
    assert not leftovers(out)
