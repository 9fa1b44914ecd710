"""Tests of ``dnalift score`` and ``dnalift merge`` through click and as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from dnalift import scorefile, scoring
from dnalift.fileio import file_sha256
from dnalift.references import ReferenceSpec
from dnalift.cli.main import cli

from test_scoring import (MODEL, TEST_FA, K, _records, write_fasta, assert_rows_close,
                          rel_diff, BATCH_TOL)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def small_fasta(tmp_path_factory) -> Path:
    return write_fasta(tmp_path_factory.mktemp("fa") / "small.fa", _records(TEST_FA, 5))


@pytest.fixture(scope="module")
def genome(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("g")
    rng = np.random.default_rng(2)
    write_fasta(d / "g.fa", [("chr1", "".join(rng.choice(list("ACGT"), 800)))])
    (d / "r.bed").write_text("chr1\t100\t250\ta\nchr1\t300\t480\tb\t0\t-\nchr1\t500\t760\tc\n")
    return d / "g.fa", d / "r.bed"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_cli_score_fasta_equals_library(small_fasta, tmp_path):
    res = run("score", "--model", MODEL, "--fasta", small_fasta, "--output", tmp_path / "c.h5",
              "--bigwig", tmp_path / "c.bw", "--shuffles", K, "--seed", 3, "-q")
    assert res.exit_code == 0, res.output
    scoring.score(str(MODEL), scoring.open_inputs(fasta=small_fasta), tmp_path / 'l.h5',
                  reference=ReferenceSpec(k=K, seed=3))
    with h5py.File(tmp_path / "c.h5", "r") as c, h5py.File(tmp_path / "l.h5", "r") as lib:
        for name in scorefile.row_datasets(lib):
            np.testing.assert_array_equal(c[name][:], lib[name][:], err_msg=name)
        attrs = scorefile.read_attrs(c)
        assert attrs["seed"] == 3 and attrs["command_line"].startswith("dnalift")
    assert (tmp_path / "c.bw").stat().st_size > 0
    # rerun with the same parameters: no-op, the job's announcement and one log line
    stamp = (tmp_path / "c.h5").stat().st_mtime_ns
    res = run("score", "--model", MODEL, "--fasta", small_fasta, "--output", tmp_path / "c.h5",
              "--shuffles", K, "--seed", 3)
    assert res.exit_code == 0
    announced, reused = res.stderr.strip().splitlines()
    assert announced.startswith(f"dnalift: scoring 5 regions of {small_fasta} with {MODEL}: ")
    assert "already exists" in reused
    assert (tmp_path / "c.h5").stat().st_mtime_ns == stamp


def test_cli_bed_width_shards_and_merge(genome, tmp_path):
    fa, bed = genome
    base = ["score", "--model", MODEL, "--bed", bed, "--genome", fa, "--width", 200,
            "--shuffles", K, "-q"]
    assert run(*base, "--output", tmp_path / "all.h5", "--bigwig", tmp_path / "all.bw",
               "--batch-size", 2 * K).exit_code == 0
    for i in (1, 2):
        res = run(*base, "--shard", f"{i}/2", "--output", tmp_path / f"s{i}.h5")
        assert res.exit_code == 0, res.output
    res = run("merge", tmp_path / "s2.h5", tmp_path / "s1.h5", "--output", tmp_path / "m.h5",
              "--bigwig", tmp_path / "m.bw")
    assert res.exit_code == 0, res.output
    import pyBigWig
    with h5py.File(tmp_path / "all.h5", "r") as a, h5py.File(tmp_path / "m.h5", "r") as m:
        assert list(a["coords/start"][:]) == [75, 290, 530]  # resized around the centres
        assert_rows_close(a, m)
    u, m = pyBigWig.open(str(tmp_path / "all.bw")), pyBigWig.open(str(tmp_path / "m.bw"))
    ub, mb = (np.nan_to_num(np.array(t.values("chr1", 0, 800))) for t in (u, m))
    assert rel_diff(ub, mb) <= BATCH_TOL
    res = run("merge", tmp_path / "s1.h5", "--output", tmp_path / "bad.h5")
    assert res.exit_code == 2 and "shard 2/2 missing" in res.stderr
    assert not (tmp_path / "bad.h5").exists()


def _bad_cases(tmp: Path, fasta: Path, fa: Path, bed: Path):
    short = write_fasta(tmp / "short.fa", [("s1", "ACGT" * 30)])
    corrupt = tmp / "corrupt.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8)
    blocker = tmp / "blocker"
    blocker.write_text("")
    missing_chrom = tmp / "missing.bed"
    missing_chrom.write_text("chr1\t0\t200\nchrZ\t0\t200\n")
    header_bed = tmp / "header.bed"
    header_bed.write_text("chrom\tstart\tend\nchr1\t0\t200\n")
    ro = tmp / "ro"
    ro.mkdir()
    ro_fasta = write_fasta(ro / "x.fa", [("s1", "ACGT" * 50)])
    (ro / "x.fa.fai").mkdir()  # an index that can be neither read nor written
    m = ["--model", MODEL]
    out = ["--output", tmp / "out" / "o.h5"]
    return {
        "length": (m + ["--fasta", short] + out, "length 120"),
        "task name": (m + ["--fasta", fasta, "--task", "nope"] + out, "'nope'"),
        "task index": (m + ["--fasta", fasta, "--task", "7"] + out, "7"),
        "unwritable": (m + ["--fasta", fasta, "--output", blocker / "o.h5"], "not a directory"),
        "corrupt model": (["--model", corrupt, "--fasta", fasta] + out, "corrupt.h5"),
        "missing model": (["--model", tmp / "none.h5", "--fasta", fasta] + out, "none.h5"),
        "bed chrom": (m + ["--bed", missing_chrom, "--genome", fa] + out, "chrZ"),
        "shard range": (m + ["--fasta", fasta, "--shard", "4/3"] + out, "--shard"),
        "shard zero": (m + ["--fasta", fasta, "--shard", "0/3"] + out, "numbered from 1"),
        "shard malformed": (m + ["--fasta", fasta, "--shard", "two"] + out, "--shard"),
        "both inputs": (m + ["--fasta", fasta, "--bed", bed, "--genome", fa] + out,
                        "exactly one"),
        "no input": (m + out, "exactly one"),
        "bed no genome": (m + ["--bed", bed] + out, "--genome"),
        # issue 13
        "shard count zero": (m + ["--fasta", fasta, "--shard", "3/0"] + out,
                             "--shard 3/0: the number of shards N must be >= 1"),
        "same task twice": (m + ["--fasta", fasta, "--task", "0", "--task", "both"] + out,
                            "--task 0 and --task both select the same task 'both'"),
        "shuffles zero": (m + ["--fasta", fasta, "--shuffles", "0"] + out,
                          "Invalid value for '--shuffles': 0 is not in the range 1<=x"),
        "batch size zero": (m + ["--fasta", fasta, "--batch-size", "0"] + out,
                            "Invalid value for '--batch-size': 0 is not in the range 1<=x"),
        "reference fasta alone": (m + ["--fasta", fasta, "--reference", "fasta"] + out,
                                  "--reference fasta needs --reference-fasta FILE"),
        "freqs with shuffle": (m + ["--fasta", fasta, "--reference", "shuffle", "--freqs",
                                    "0.25,0.25,0.25,0.25"] + out,
                               "--freqs does not apply to --reference shuffle"),
        "bed region length": (m + ["--bed", bed, "--genome", fa] + out,
                              f"{bed} line 1: region chr1:100-250 is 150 bp but the model "
                              "takes 200; resize regions with --width 200"),
        "bed header line": (m + ["--bed", header_bed, "--genome", fa] + out,
                            "line 1 (a column-header line? start it with '#' or remove it)"),
        "read-only fai": (m + ["--fasta", ro_fasta] + out, "samtools faidx"),
    }


@pytest.mark.parametrize("case", ["length", "task name", "task index", "unwritable",
                                  "corrupt model", "missing model", "bed chrom", "shard range",
                                  "shard zero", "shard malformed", "both inputs", "no input",
                                  "bed no genome", "shard count zero", "same task twice",
                                  "shuffles zero", "batch size zero", "reference fasta alone",
                                  "freqs with shuffle", "bed region length", "bed header line",
                                  "read-only fai"])
def test_bad_input_one_line_error_no_output(case, small_fasta, genome, tmp_path):
    fa, bed = genome
    args, needle = _bad_cases(tmp_path, small_fasta, fa, bed)[case]
    before = set(tmp_path.rglob("*"))
    res = run("score", "--shuffles", K, "-q", *args)
    assert res.exit_code == 2, (res.output, res.exception)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dnalift: error: "), res.stderr
    assert needle in lines[0], lines[0]
    new = {p for p in set(tmp_path.rglob("*")) - before
           if p.is_file() and p.suffix != ".fai"}  # FASTA indexes are not outputs
    assert new == set(), new


def test_cli_maxpool_gradient_is_the_library_rule_and_recorded(small_fasta, tmp_path):
    """``--maxpool gradient`` (the original DeepLIFT's rule) gives the library's
    ``DeepLift(maxpool="gradient")`` scores, which differ from the default on the shipped
    max-pool model, and is recorded."""
    from dnalift import deeplift, references
    from dnalift.sequences import one_hot_encode
    res = run("score", "--model", MODEL, "--fasta", small_fasta, "--output", tmp_path / "g.h5",
              "--shuffles", K, "--maxpool", "gradient", "--task", "tal", "-q")
    assert res.exit_code == 0, res.stderr
    x = one_hot_encode([s for _, s in _records(small_fasta, 5)])
    refs = references.make_references("shuffle", x, k=K, seed=0)
    model = deeplift.load_model(MODEL)
    names = deeplift.read_sidecar_task_names(MODEL)
    want = {rule: deeplift.DeepLift(model, maxpool=rule, task_names=names, tasks=["tal"])
            .attribute(x, refs).hypothetical[:, 0] for rule in ("gradient", "rescale")}
    with h5py.File(tmp_path / "g.h5", "r") as f:
        assert f.attrs["maxpool"] == "gradient"
        got = f["hyp_scores"][:]
    assert rel_diff(want["gradient"], got) <= BATCH_TOL
    assert rel_diff(want["rescale"], got) > 1e-3  # the option changes the scores


def test_rerun_reuses_only_an_output_made_with_the_same_parameters(small_fasta, tmp_path):
    out = tmp_path / "r.h5"
    base = ["score", "--model", MODEL, "--fasta", small_fasta, "--output", out, "--shuffles", K,
            "-q"]
    assert run(*base).exit_code == 0
    stamp = out.stat().st_mtime_ns
    refused = {  # issue 13: each of these used to exit 0 and keep the old scores
        ("--mode", "rescale"): "mode 'genomics_default' (now 'rescale')",
        ("--seed", "5"): "seed 0 (now 5)",
        ("--task", "gata"): "tasks ['both', 'gata', 'tal'] (now ['gata'])",
        ("--shard", "1/2"): "shard_count 1 (now 2)",
        ("--float16",): "score_dtype 'float32' (now 'float16')",
        ("--maxpool", "gradient"): "maxpool 'rescale' (now 'gradient')",
    }
    for extra, needle in refused.items():
        res = run(*base, *extra)
        assert res.exit_code == 2, (extra, res.stderr)
        assert res.stderr.startswith(f"dnalift: error: {out} exists but was made with "
                                     "different parameters: ") and needle in res.stderr
        assert "use --force" in res.stderr and len(res.stderr.splitlines()) == 1
    other = write_fasta(tmp_path / "other.fa", _records(TEST_FA, 5))
    res = run(*base[:4], other, *base[5:])
    assert res.exit_code == 2 and "source" in res.stderr
    # invalid requests are errors even though the output exists
    for extra, needle in {("--task", "zzz"): "'zzz'", ("--reference", "zero"):
                          "--shuffles does not apply to --reference zero"}.items():
        res = run(*base, *extra)
        assert res.exit_code == 2 and needle in res.stderr, res.stderr
    res = run("score", "--model", tmp_path / "none.h5", *base[3:])
    assert res.exit_code == 2 and "none.h5" in res.stderr
    assert out.stat().st_mtime_ns == stamp
    # the same parameters: reused; a stale temp file of a dead process is removed first
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".r.h5.{dead.pid}.tmp"
    stale.write_bytes(b"x" * 100)
    alive = tmp_path / f".r.h5.{os.getppid()}.tmp"
    alive.write_bytes(b"y")
    res = run(*base)
    assert res.exit_code == 0 and out.stat().st_mtime_ns == stamp
    assert not stale.exists() and alive.exists()
    assert f"removed {stale}, a temporary file left by an interrupted run" in res.stderr
    # --force recomputes with the new parameters
    assert run(*base, "--mode", "rescale", "--force").exit_code == 0
    with h5py.File(out, "r") as f:
        assert f.attrs["mode"] == "rescale"
    # plot: an empty interval is named as such
    res = run("plot", "--h5", out, "--sequence", _records(small_fasta, 1)[0][0], "--start",
              150, "--end", 100, "--output", tmp_path / "p.png")
    assert res.exit_code == 2 and "end must be greater than start" in res.stderr


def test_fasta_reference_is_one_reference_and_shuffle_settings_only_when_used(small_fasta,
                                                                              tmp_path):
    """Issue 13: --reference fasta gave K = --shuffles; --freqs was recorded with shuffles."""
    out = tmp_path / "f.h5"
    res = run("score", "--model", MODEL, "--fasta", small_fasta, "--reference", "fasta",
              "--reference-fasta", small_fasta, "--batch-size", 4, "--output", out, "-q")
    assert res.exit_code == 0, res.stderr
    with h5py.File(out, "r") as f:
        attrs = scorefile.read_attrs(f)
        assert attrs["n_references"] == 1 and attrs["reference"] == "fasta"
        assert attrs["reference_freqs"] == [] and attrs["reference_fasta"] == str(small_fasta)
        assert f["tasks/both/delta"].shape == (5, 1)
        assert f["input_seqs"].chunks[0] == 4  # batches of 4 sequences (4 pairs // K=1)
        # x against itself: delta 0 and every contribution 0
        np.testing.assert_allclose(f["tasks/both/delta"][:], 0, atol=1e-6)
        np.testing.assert_allclose(f["contrib_scores"][:], 0, atol=1e-6)
    out = tmp_path / "s.h5"
    assert run("score", "--model", MODEL, "--fasta", small_fasta, "--shuffles", K,
               "--output", out, "-q").exit_code == 0
    with h5py.File(out, "r") as f:
        attrs = scorefile.read_attrs(f)
        assert attrs["reference_freqs"] == [] and attrs["n_references"] == K


def test_unsupported_layer_error_names_the_model_file(small_fasta, tmp_path):
    import keras
    model = keras.Sequential([keras.Input((200, 4)), keras.layers.LSTM(2),
                              keras.layers.Dense(1)])
    path = tmp_path / "lstm.keras"
    model.save(path)
    res = run("score", "--model", path, "--fasta", small_fasta, "--output", tmp_path / "o.h5")
    assert res.exit_code == 2
    announced, error = res.stderr.splitlines()  # the job's announcement, then the error
    assert announced.startswith("dnalift: scoring 5 regions of ")
    assert error.startswith(f"dnalift: error: {path}: ") and "LSTM" in error


def test_merge_reuses_only_its_own_merge(genome, tmp_path):
    fa, bed = genome
    base = ["score", "--model", MODEL, "--bed", bed, "--genome", fa, "--width", 200,
            "--shuffles", K, "-q"]
    for i in (1, 2):
        assert run(*base, "--shard", f"{i}/2", "--output", tmp_path / f"s{i}.h5").exit_code == 0
    assert run(*base, "--seed", 4, "--output", tmp_path / "other.h5").exit_code == 0
    shards = [tmp_path / "s1.h5", tmp_path / "s2.h5"]
    assert run("merge", *shards, "--output", tmp_path / "m.h5").exit_code == 0
    res = run("merge", *shards, "--output", tmp_path / "m.h5", "--bigwig", tmp_path / "m.bw")
    assert res.exit_code == 0 and "wrote the missing" in res.stderr
    assert (tmp_path / "m.bw").stat().st_size > 0
    res = run("merge", *shards, "--output", tmp_path / "other.h5")
    assert res.exit_code == 2 and "is not the merge of these shards" in res.stderr


def test_device_option(small_fasta, tmp_path):
    import tensorflow as tf
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    res = run("score", "--model", MODEL, "--fasta", small_fasta, "--shuffles", K, "-q",
              "--device", "gpu", "--output", tmp_path / "g.h5")
    assert res.exit_code == (0 if has_gpu else 2)
    assert (tmp_path / "g.h5").exists() == has_gpu


def test_help_does_not_import_tensorflow():
    code = ("import sys; from dnalift.cli.main import cli; import dnalift.cli.score, "
            "dnalift.cli.merge; assert 'tensorflow' not in sys.modules, 'tf imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def _script() -> list[str]:
    return [sys.executable, "-c", "from dnalift.cli.main import main; main()"]


def test_subprocess_on_shipped_test_fa(tmp_path):
    out = tmp_path / "sub.h5"
    proc = subprocess.run(_script() + ["score", "--model", str(MODEL), "--fasta", str(TEST_FA),
                                       "--shard", "1/200", "--shuffles", str(K),
                                       "--output", str(out), "--bigwig", str(tmp_path / "s.bw")],
                          capture_output=True, text=True, env={**os.environ,
                                                               "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr
    assert "scored 8 regions" in proc.stderr
    assert "scoring: 8/8 regions" in proc.stderr  # plain progress line when not a terminal
    with h5py.File(out, "r") as f:
        attrs = scorefile.read_attrs(f)
        assert (attrs["shard_index"], attrs["shard_count"], attrs["n_total"]) == (1, 200, 1600)
        assert f["hyp_scores"].shape == (8, 200, 4)
        names = [n for n, _ in _records(TEST_FA, 8)]
        assert list(f["coords/name"].asstr()[:]) == names


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_leaves_no_finished_output(sig, tmp_path):
    out = tmp_path / "killed.h5"
    proc = subprocess.Popen(_script() + ["score", "--model", str(MODEL), "--fasta",
                                         str(TEST_FA), "--shuffles", str(K), "--batch-size",
                                         str(4 * K), "--output", str(out), "-q"],
                            stderr=subprocess.PIPE, env={**os.environ,
                                                         "CUDA_VISIBLE_DEVICES": ""})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any(p.name.startswith(".killed.h5.") for p in tmp_path.iterdir()):
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()
    time.sleep(0.3)  # let it write a few batches
    proc.send_signal(sig)
    proc.wait(60)
    assert proc.returncode != 0
    assert not out.exists()
    left = [p.name for p in tmp_path.iterdir()]
    if sig == signal.SIGTERM:
        assert left == []  # SIGTERM (batch-system time limit) removes the temporary file
    else:
        assert ".killed.h5.lock" in left  # SIGKILL: the next run takes the lock over
        assert all(n.startswith(".killed.h5.") and n.endswith(".tmp")
                   for n in left if n != ".killed.h5.lock")


def test_progress_log_lines_when_not_a_terminal():
    import io
    from dnalift.progress import Progress, format_eta
    now = [0.0]
    stream = io.StringIO()
    p = Progress("scoring", stream=stream, interval=30, clock=lambda: now[0])
    now[0] = 10.0
    p(100, 1000)  # the first batch is always reported; no rate after it yet
    now[0] = 40.0
    p(400, 1000)  # 10 regions/s since the first batch, 600 left -> 60 s
    now[0] = 100.0
    p(1000, 1000)  # the end is always reported
    assert stream.getvalue().splitlines() == [
        "scoring: 100/1000 regions (10.0%), 10.0 regions/s, ETA ?",
        "scoring: 400/1000 regions (40.0%), 10.0 regions/s, ETA 0:01:00",
        "scoring: 1000/1000 regions (100.0%), 10.0 regions/s, ETA 0:00:00"]
    assert format_eta(3725) == "1:02:05"
    quiet = io.StringIO()
    Progress(stream=quiet, enabled=False)(5, 5)
    assert quiet.getvalue() == ""
