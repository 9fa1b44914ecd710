"""Tests of the Snakemake workflow (Snakefile, workflow/, config/, profiles/slurm).

Each test runs snakemake in a subprocess in its own ``--directory``; the end-to-end tests run
``dnalift`` (TensorFlow) in every job, so their sizes are tiny.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SNAKEFILE = REPO / "Snakefile"
SHIPPED_MODEL = REPO / "data" / "simulated" / "model.h5"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


#: The environment of local (non-SLURM) snakemake runs. The SLURM executor plugin asks
#: ``scontrol show config`` for MinJobAge when snakemake imports it, in every run: on a machine
#: with SLURM's client installed but no controller answering, that waits 9-10 s per run.
#: ``SLURM_CONF=/dev/null`` makes scontrol fail at once, so these runs do not depend on the
#: host's scheduler (tests/test_slurm.py uses the real one).
LOCAL_ENV = {**os.environ, "SLURM_CONF": os.devnull}


def snakemake(workdir: Path, *args: str, background: bool = False):
    """Run snakemake on the repository's Snakefile in ``workdir``; stdout and stderr are
    joined in ``.stdout``. ``background=True`` returns the running Popen instead."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE),
           "--directory", str(workdir), "--cores", "2", *args]
    if background:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=LOCAL_ENV)
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=600, env=LOCAL_ENV)
    if res.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{res.stdout}")
    return res


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a snakemake (dry) run."""
    table = output[output.index("Job stats:"):]
    table = table[:table.index("total")]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def synthetic_genome(path: Path) -> dict[str, int]:
    """chr1 2600 bp with Ns at 800-1100, chr2 1500 bp, chrM 500 bp (seeded)."""
    rng = np.random.default_rng(7)
    chroms = {}
    for name, length in (("chr1", 2600), ("chr2", 1500), ("chrM", 500)):
        seq = np.array(list("ACGT"))[rng.integers(0, 4, length)]
        if name == "chr1":
            seq[800:1100] = "N"
        chroms[name] = "".join(seq)
    path.write_text("".join(f">{n}\n" + "".join(s[i:i + 70] + "\n" for i in range(0, len(s), 70))
                            for n, s in chroms.items()))
    return {n: len(s) for n, s in chroms.items()}


def genome_config(tmp_path: Path, shards: int, **genome) -> dict:
    return {
        "simulated": {"enabled": False},
        "score": {"shuffles": 2, "seed": 3},
        "genome": {"enabled": True, "fasta": str(tmp_path / "genome.fa"), "shards": shards,
                   "tile": {"width": 200, "step": 100, "exclude": "^chrM$"}, **genome},
        # one thread per shard job: two shards run at once on 2 cores
        "resources": {"score": {"threads": 1, "mem_mb": 1000, "runtime": 10, "gpu": 0}},
    }


# --------------------------------------------------------------------------- config / plans

def test_config_files_validate_against_the_schema():
    from snakemake.utils import validate

    schema = str(REPO / "workflow" / "schemas" / "config.schema.yaml")
    partial: dict = {"genome": {"shards": 3}}
    validate(partial, schema)  # fills the defaults
    assert partial["results"] == "results" and partial["genome"]["tile"]["width"] == 200
    assert partial["genome"]["shards"] == 3 and partial["simulated"]["train"] is False
    assert partial["resources"]["score"] == {"threads": 2, "mem_mb": 8000, "runtime": 120,
                                             "gpu": 0}
    for name in ("config.yaml", "genome_example.yaml"):
        validate(yaml.safe_load((REPO / "config" / name).read_text()), schema)
    with pytest.raises(Exception, match="unknown_key"):
        validate({"genome": {"unknown_key": 1}}, schema)


def test_dry_run_genome_plan_has_one_job_per_shard(tmp_path):
    synthetic_genome(tmp_path / "genome.fa")
    cfg = write_config(tmp_path / "cfg.yaml", genome_config(tmp_path, shards=4))
    res = snakemake(tmp_path, "-n", "-p", "--configfile", str(cfg))
    assert job_counts(res.stdout) == {"faidx": 1, "tile": 1, "score_shard": 4,
                                      "merge_shards": 1, "all": 1}
    shard_cmds = sorted(re.findall(r"dnalift score .*--shard (\S+) --output (\S+)", res.stdout))
    assert shard_cmds == [(f"{i}/4", f"results/genome/shards/shard{i}-of-4.h5")
                          for i in range(1, 5)]
    for i in range(1, 5):
        assert f"logs/score_shard/shard{i}-of-4.log" in res.stdout
    assert "--shuffles 2 --seed 3" in res.stdout
    assert ("dnalift tile --genome " + str(tmp_path / "genome.fa") + " --width 200 --step 100"
            " --exclude '^chrM$' --max-n-fraction 0.5 --output results/genome/regions.bed"
            ) in res.stdout
    assert re.search(r"dnalift merge (results/genome/shards/shard\d-of-4.h5 ){4}"
                     r"--output results/genome/scores.h5 --bigwig results/genome/scores.bw",
                     res.stdout)

    # a BED of regions replaces the tiling
    (tmp_path / "peaks.bed").write_text("chr1\t0\t200\nchr2\t100\t300\n")
    cfg = write_config(tmp_path / "cfg2.yaml",
                       genome_config(tmp_path, shards=2, regions=str(tmp_path / "peaks.bed")))
    res = snakemake(tmp_path, "-n", "-p", "--configfile", str(cfg))
    assert job_counts(res.stdout) == {"faidx": 1, "score_shard": 2, "merge_shards": 1, "all": 1}
    assert f"--bed {tmp_path / 'peaks.bed'}" in res.stdout


def test_dry_run_genome_ensemble_of_models_on_both_strands(tmp_path):
    """genome.model as a list: every shard job scores the ensemble (--model per fold)."""
    synthetic_genome(tmp_path / "genome.fa")
    for name in ("fold0.h5", "fold1.h5"):
        (tmp_path / name).write_bytes(SHIPPED_MODEL.read_bytes())
    cfg = genome_config(tmp_path, shards=2, model=[str(tmp_path / "fold0.h5"),
                                                   str(tmp_path / "fold1.h5")])
    cfg["score"]["strands"] = "both"
    res = snakemake(tmp_path, "-n", "-p", "--configfile",
                    str(write_config(tmp_path / "cfg.yaml", cfg)))
    cmds = re.findall(r"dnalift score .*--shard \S+ .*", res.stdout)
    assert len(cmds) == 2
    for cmd in cmds:
        assert f"--model {tmp_path / 'fold0.h5'} --model {tmp_path / 'fold1.h5'} --bed" in cmd
        assert "--strands both" in cmd


def test_dry_run_simulated_plan_shipped_or_trained_model(tmp_path):
    res = snakemake(tmp_path, "-n", "-p")
    assert job_counts(res.stdout) == {"simulate": 1, "score_simulated": 1, "motifs": 1,
                                      "plot_logo": 1, "all": 1}
    assert f"dnalift score --model {SHIPPED_MODEL} --fasta results/simulated/data/test.fa" \
        in res.stdout
    assert "Empty file path" not in res.stdout
    cfg = write_config(tmp_path / "train.yaml", {"simulated": {"train": True, "epochs": 3}})
    res = snakemake(tmp_path, "-n", "-p", "--configfile", str(cfg))
    assert job_counts(res.stdout)["train"] == 1
    assert ("dnalift train --data results/simulated/data --output results/model --seed 0 "
            "--epochs 3") in res.stdout
    assert "dnalift score --model results/model/model.h5 --fasta" in res.stdout
    # the shipped model takes 200 bp: another length needs a trained model
    cfg = write_config(tmp_path / "len.yaml", {"simulated": {"length": 100}})
    with pytest.raises(AssertionError, match="simulated.length = 100: the shipped model"):
        snakemake(tmp_path, "-n", "--configfile", str(cfg))


def test_workflow_runs_as_a_module_of_another_workflow(tmp_path):
    (tmp_path / "Snakefile").write_text(f"""
configfile: "config.yaml"

module dnalift:
    snakefile: "{SNAKEFILE}"
    config: config["dnalift"]

use rule * from dnalift as dnalift_*

rule all:
    default_target: True
    input: rules.dnalift_all.input
""")
    synthetic_genome(tmp_path / "genome.fa")
    write_config(tmp_path / "config.yaml", {"dnalift": {
        "results": "out/dnalift", "simulated": {"n_sequences": 500},
        "genome": {"enabled": True, "fasta": "genome.fa", "shards": 2}}})
    res = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "1"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env=LOCAL_ENV)
    assert res.returncode == 0, res.stdout + res.stderr
    assert job_counts(res.stdout) == {
        "dnalift_simulate": 1, "dnalift_score_simulated": 1, "dnalift_motifs": 1,
        "dnalift_plot_logo": 1, "dnalift_faidx": 1, "dnalift_tile": 1,
        "dnalift_score_shard": 2, "dnalift_merge_shards": 1, "all": 1}
    # the shipped model is found in the dnalift checkout, not in the including workflow
    assert f"--model {SHIPPED_MODEL} --fasta out/dnalift/simulated/data/test.fa" in res.stdout
    assert "--shard 2/2 --output out/dnalift/genome/shards/shard2-of-2.h5" in res.stdout


SHARD_RESOURCES = {"threads": 4, "mem_mb": 16000, "runtime": 240, "gpu": 1}


@pytest.mark.parametrize("cluster, expected, absent", [
    ({"gpu_partition": "gpu", "cpu_partition": "cpu"},
     ("-p gpu", "--gpus=1", "--mem 16000", "-t 240", "--cpus-per-task=4"), ()),
    ({"gpus": False, "gpu_partition": "gpu", "cpu_partition": "cpu"},
     ("-p cpu", "--mem 16000", "-t 240", "--cpus-per-task=4"), ("--gpus", "-p gpu")),
], ids=["gpu-cluster", "cpu-only-cluster"])
def test_slurm_profile_submits_shard_jobs(tmp_path, cluster, expected, absent):
    """The profile parses and the SLURM plugin turns the config's `resources` and
    `cluster` keys into the expected sbatch call (a fake sbatch on PATH records the call
    and refuses the job); `cluster.gpus: false` drops the GPU request of a GPU config."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["slurm-status-command"] == "squeue"
    assert "set-resources" not in profile  # what jobs request lives in the config
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "sbatch.log"
    (bindir / "sbatch").write_text(f'#!/bin/sh\necho "$@" >> {log}\nexit 1\n')
    for tool in ("sacct", "squeue", "scontrol", "sinfo", "sacctmgr"):
        (bindir / tool).write_text("#!/bin/sh\nexit 1\n")
    for tool in bindir.iterdir():
        tool.chmod(0o755)
    work = tmp_path / "work"
    regions = work / "results" / "genome" / "regions.bed"
    regions.parent.mkdir(parents=True)
    synthetic_genome(work / "genome.fa")
    (work / "genome.fa.fai").write_text("")  # existing and newer: no faidx job
    regions.write_text("chr1\t0\t200\n")
    config = {**genome_config(work, shards=2), "cluster": cluster,
              "resources": {"score": SHARD_RESOURCES}}
    cfg = write_config(tmp_path / "cfg.yaml", config)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE),
           "--directory", str(work), "--profile", str(REPO / "profiles" / "slurm"),
           "--configfile", str(cfg), "--retries", "0",
           "--slurm-init-seconds-before-status-checks", "1",
           "results/genome/shards/shard2-of-2.h5"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode != 0  # the fake sbatch refused the job
    call = log.read_text()
    assert "--comment rule_score_shard" in call
    for flag in expected:
        assert f" {flag} " in f" {call} ", (flag, call)
    for flag in absent:
        assert flag not in call, (flag, call)
    assert "--target-jobs 'score_shard:shard=2'" in call


@pytest.mark.parametrize("gpus", [True, False])
def test_dry_run_shows_what_each_job_requests(tmp_path, gpus):
    """`snakemake -n` prints every job's resources: a shard asks for one GPU in the GPU
    partition, or for none in the CPU partition when cluster.gpus is false."""
    synthetic_genome(tmp_path / "genome.fa")
    config = {**genome_config(tmp_path, shards=2), "resources": {"score": SHARD_RESOURCES},
              "cluster": {"gpus": gpus, "gpu_partition": "gpu", "cpu_partition": "cpu"}}
    cfg = write_config(tmp_path / "cfg.yaml", config)
    res = snakemake(tmp_path, "-n", "--configfile", str(cfg))
    shard = res.stdout[res.stdout.index("rule score_shard:"):]
    shard = shard[:shard.index("\n\n")]
    line = next(l for l in shard.splitlines() if "resources:" in l)
    assert "mem_mb=16000" in line and "runtime=240" in line, line
    if gpus:
        assert "gpu=1" in line and "slurm_partition=gpu" in line, line
    else:
        assert "gpu=" not in line and "slurm_partition=cpu" in line, line
    tile = res.stdout[res.stdout.index("rule tile:"):]
    tile = next(l for l in tile.splitlines() if "resources:" in l)
    assert "slurm_partition=cpu" in tile and "gpu=" not in tile, tile


# --------------------------------------------------------------------------- end to end

def test_simulated_pipeline_end_to_end(tmp_path):
    cfg = write_config(tmp_path / "cfg.yaml", {
        "simulated": {"n_sequences": 100},
        "score": {"shuffles": 2},
        "resources": {"score": {"threads": 2, "mem_mb": 1000, "runtime": 10, "gpu": 0}},
    })
    snakemake(tmp_path, "--configfile", str(cfg))
    sim = tmp_path / "results" / "simulated"
    n_test = sum(1 for line in open(sim / "data" / "test.fa") if line.startswith(">"))
    assert n_test == 10
    with h5py.File(sim / "scores.h5", "r") as f:
        assert f["hyp_scores"].shape == (n_test, 200, 4)
        assert f["input_seqs"].shape == (n_test, 200, 4)
        assert f["contrib_scores"].shape == (n_test, 200)
        assert np.all(f["input_seqs"][()].sum(axis=2) == 1)
        assert np.isfinite(f["hyp_scores"][()]).all() and np.abs(f["hyp_scores"][()]).max() > 0
    hits = pd.read_csv(sim / "motifs" / "hits.tsv", sep="\t")
    summary = pd.read_csv(sim / "motifs" / "summary.tsv", sep="\t")
    assert len(hits) > 0 and {"motif", "name"} <= set(hits.columns)
    assert set(summary["motif"]) == {"GATA_disc1", "TAL1_known1"}
    for png in ("hits.png", "logo.png"):
        assert (sim / "figures" / png).read_bytes()[:8] == PNG_MAGIC
    for log in ("simulate", "score_simulated", "motifs", "plot_logo"):
        assert (tmp_path / "logs" / f"{log}.log").exists()
    # everything is up to date: a second run has nothing to do
    assert "Nothing to be done" in snakemake(tmp_path, "--configfile", str(cfg)).stdout


def _find_process(needle: list[bytes], timeout: float) -> int | None:
    """Pid of a process whose command line contains every byte string of ``needle``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if all(n in cmdline for n in needle) and b"export TF_" not in cmdline:
                return int(proc.name)
        time.sleep(0.05)
    return None


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the shard job")
def test_genome_shards_killed_resumed_and_merged_equal_unsharded(tmp_path):
    import pyBigWig

    sizes = synthetic_genome(tmp_path / "genome.fa")
    cfg = write_config(tmp_path / "cfg.yaml", genome_config(tmp_path, shards=3))
    shards = [tmp_path / f"results/genome/shards/shard{i}-of-3.h5" for i in (1, 2, 3)]

    # first run: shard 2's dnalift process is killed; --keep-going finishes the others
    run = snakemake(tmp_path, "--configfile", str(cfg), "--keep-going", background=True)
    pid = _find_process([b"dnalift", b"--shard\x002/3", str(tmp_path).encode()], timeout=240)
    assert pid is not None, "shard 2 job not seen"
    os.kill(pid, signal.SIGKILL)
    out, _ = run.communicate(timeout=600)
    assert run.returncode != 0, out
    assert shards[0].exists() and shards[2].exists()
    assert not shards[1].exists()  # never a half-written shard under the final name
    assert not (tmp_path / "results/genome/scores.h5").exists()
    mtimes = [shards[0].stat().st_mtime_ns, shards[2].stat().st_mtime_ns]

    # rerun: only shard 2 and the merge run
    res = snakemake(tmp_path, "--configfile", str(cfg))
    counts = job_counts(res.stdout)
    assert counts == {"score_shard": 1, "merge_shards": 1, "all": 1}, res.stdout
    assert [shards[0].stat().st_mtime_ns, shards[2].stat().st_mtime_ns] == mtimes

    # the merged bigWig equals one unsharded `dnalift score` of the same regions
    one = tmp_path / "one"
    subprocess.run(["dnalift", "score", "--model", str(SHIPPED_MODEL),
                    "--bed", str(tmp_path / "results/genome/regions.bed"),
                    "--genome", str(tmp_path / "genome.fa"), "--shuffles", "2", "--seed", "3",
                    "--output", f"{one}.h5", "--bigwig", f"{one}.bw", "--quiet"],
                   check=True, capture_output=True, timeout=300)
    merged = pyBigWig.open(str(tmp_path / "results/genome/scores.bw"))
    single = pyBigWig.open(f"{one}.bw")
    assert merged.chroms() == single.chroms() == sizes
    n_windows = sum(1 for _ in open(tmp_path / "results/genome/regions.bed"))
    assert n_windows == 23 + 14  # chr1: 25 windows, 2 with > 50 % N; chr2: 14; chrM excluded
    for chrom in ("chr1", "chr2"):
        a = np.array(merged.values(chrom, 0, sizes[chrom]))
        b = np.array(single.values(chrom, 0, sizes[chrom]))
        covered = ~np.isnan(b)
        assert covered.sum() > 0.8 * sizes[chrom] and np.abs(b[covered]).max() > 0
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert np.isnan(merged.values("chrM", 0, 500)).all()
    with h5py.File(tmp_path / "results/genome/scores.h5", "r") as m, h5py.File(f"{one}.h5") as s:
        assert m["hyp_scores"].shape == s["hyp_scores"].shape == (n_windows, 200, 4)
        np.testing.assert_allclose(m["hyp_scores"][()], s["hyp_scores"][()], rtol=1e-5,
                                   atol=1e-6)


# --------------------------------------------------------------------------- plain SLURM script

def _fake_tools(bindir: Path, log: Path) -> dict[str, str]:
    """Fake sbatch (records its arguments, prints job id 77) and dnalift (records them);
    both append the partition / GPU / thread variables they see to ``log``.env."""
    bindir.mkdir()
    seen = ("SBATCH_PARTITION=$SBATCH_PARTITION SBATCH_GPUS=$SBATCH_GPUS "
            "TF_NUM_INTRAOP_THREADS=$TF_NUM_INTRAOP_THREADS OMP_NUM_THREADS=$OMP_NUM_THREADS")
    for tool, reply in (("sbatch", "echo 77"), ("dnalift", "true")):
        (bindir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n'
                                   f'echo "{tool} {seen}" >> {log}.env\n{reply}\n')
        (bindir / tool).chmod(0o755)
    return {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}


def test_slurm_array_script_submits_missing_shards_then_merge(tmp_path):
    script = str(REPO / "scripts" / "slurm_array.sh")
    log = tmp_path / "calls.log"
    env = _fake_tools(tmp_path / "bin", log)
    for name in ("m.h5", "r.bed"):
        (tmp_path / name).write_text("x")
    (tmp_path / "g.fa").write_text(">chr1\nACGTACGTAC\n")
    out = tmp_path / "out"
    args = [script, "submit", "3", str(tmp_path / "m.h5"), str(tmp_path / "r.bed"),
            str(tmp_path / "g.fa"), str(out), "--shuffles", "5"]

    def submit(**variables: str) -> list[str]:
        log.unlink(missing_ok=True)
        subprocess.run(args, check=True, env={**env, **variables}, capture_output=True,
                       timeout=60)
        return log.read_text().splitlines()

    array, merge = submit()
    assert (tmp_path / "g.fa.fai").read_text() == "chr1\t10\t6\t10\t11\n"  # indexed once
    assert array == (f"sbatch --parsable --array=1,2,3 --cpus-per-task=4 --mem=16G "
                     f"--time=04:00:00 --gpus=1 --output={out}/logs/shard-%A_%a.log "
                     f"{script} shard 3 {tmp_path}/m.h5 {tmp_path}/r.bed {tmp_path}/g.fa {out} "
                     "--shuffles 5")
    shards = [f"{out}/shards/shard{i}-of-3.h5" for i in (1, 2, 3)]
    assert merge.startswith("sbatch --parsable --dependency=afterok:77 --kill-on-invalid-dep=yes"
                            " --job-name=dnalift-merge --cpus-per-task=1 --mem=16G"
                            " --time=01:00:00 --output="), merge
    assert merge.endswith(f"--wrap=dnalift merge {' '.join(shards)} --output {out}/scores.h5 "
                          f"--bigwig {out}/scores.bw ")

    # a CPU-only cluster and smaller nodes: no --gpus; SBATCH_PARTITION=gpu reaches the
    # shard tasks but not the merge job, which has its own partition
    array, merge = submit(DNALIFT_GPUS="0", DNALIFT_CPUS="2", DNALIFT_MEM="3G",
                          DNALIFT_TIME="0:10:00", DNALIFT_MERGE_PARTITION="short",
                          SBATCH_PARTITION="gpu")
    assert "--gpus" not in array and " --cpus-per-task=2 --mem=3G --time=0:10:00 " in array
    assert " --partition=short " in merge and "--gpus" not in merge
    seen = (tmp_path / "calls.log.env").read_text().splitlines()[-2:]
    assert seen[0].startswith("sbatch SBATCH_PARTITION=gpu ")  # the array
    assert seen[1].startswith("sbatch SBATCH_PARTITION= SBATCH_GPUS= ")  # the merge
    with pytest.raises(subprocess.CalledProcessError):
        submit(DNALIFT_GPUS="one")

    # resume: shards 1 and 3 are finished, only task 2 is submitted
    Path(shards[0]).write_text("done")
    Path(shards[2]).write_text("done")
    array, merge = submit()
    assert " --array=2 " in array and "--dependency=afterok:77" in merge
    Path(shards[1]).write_text("done")
    (merge,) = submit()  # all finished: only the merge, without dependency
    assert "--dependency" not in merge and "--wrap=dnalift merge" in merge

    # what one array task runs, with TensorFlow's threads capped to the task's CPUs
    log.unlink()
    subprocess.run([script, "shard", *args[2:]], check=True, timeout=60,
                   env={**env, "SLURM_ARRAY_TASK_ID": "2", "SLURM_CPUS_PER_TASK": "3"})
    assert log.read_text() == (
        f"dnalift score --model {tmp_path}/m.h5 --bed {tmp_path}/r.bed --genome "
        f"{tmp_path}/g.fa --shard 2/3 --output {out}/shards/shard2-of-3.h5 --shuffles 5\n")
    assert (tmp_path / "calls.log.env").read_text().splitlines()[-1].endswith(
        "TF_NUM_INTRAOP_THREADS=3 OMP_NUM_THREADS=3")


@pytest.mark.skipif(not (shutil.which("modisco") and shutil.which("finemo")),
                    reason="needs the motifs extra: pip install 'dnalift[motifs]'")
def test_discovery_names_gata_and_tal_on_the_shipped_example(tmp_path):
    """config/discovery.yaml end to end: TF-MoDISco on task `both` of the 1,600 shipped test
    sequences finds the two motifs, named GATA_disc1 and TAL1_known1 with q < 0.05; Fi-NeMo
    hits lie on embedded instances of the motif they are named after."""
    cfg = yaml.safe_load((REPO / "config" / "discovery.yaml").read_text())
    cfg["discovery"]["hit_regions"] = 100
    snakemake(tmp_path, "--configfile", str(write_config(tmp_path / "d.yaml", cfg)))
    out = tmp_path / "results" / "discovery" / "both"
    table = pd.read_csv(out / "patterns.tsv", sep="\t")
    named = table[table["qvalue"] < 0.05]
    assert {"GATA_disc1", "TAL1_known1"} <= set(named["match"])
    assert (out / "report" / "report.html").stat().st_size > 1000
    for png in [out / "track.png", *sorted((out / "logos").glob("*.png"))]:
        assert png.read_bytes().startswith(PNG_MAGIC) and png.stat().st_size > 10_000
    bed = pd.read_csv(out / "hits.bed", sep="\t", header=None,
                      names=["chrom", "start", "end", "name", "score", "strand", "region"])
    emb = pd.read_csv(REPO / "data" / "simulated" / "test.embedded.tsv", sep="\t")
    named_hits = bed[bed["name"].isin(["GATA_disc1", "TAL1_known1"])]
    assert len(named_hits) >= 50
    on_instance = [((emb["name"] == h.chrom) & (emb["motif"] == h.name) & (emb["start"] < h.end)
                    & (emb["end"] > h.start)).any() for h in named_hits.itertuples()]
    assert np.mean(on_instance) > 0.7  # 0.77 measured (100 regions); instances cover ~20 %
