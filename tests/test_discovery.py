"""Tests of motif naming (dnalift.motifmatch), the discovery glue (dnalift.discovery), its
figures and ``dnalift discover``, without the optional tools (a hand-made TF-MoDISco-like
file), plus the memelite method where it is installed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from dnalift import discovery, meme, motifmatch, plots, scoring
from dnalift.cli.main import cli
from dnalift.references import ReferenceSpec

from test_scoring import MODEL, TEST_FA, _records, write_fasta

REPO = Path(__file__).resolve().parents[1]
MEME = REPO / "data" / "simulated" / "motifs.meme"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
UNIFORM = np.full((1, 4), 0.25)


def _db() -> dict[str, meme.Motif]:
    return meme.read_meme(MEME)[0]


def _rc(m: np.ndarray) -> np.ndarray:
    return m[::-1, ::-1]


def fake_modisco(path: Path, patterns: dict[str, np.ndarray], n_seqlets=(50, 20)) -> Path:
    """A TF-MoDISco-like results file: pos_patterns/pattern_i with ``sequence`` (the PPM),
    ``contrib_scores`` (PPM x information content, so trimming keeps the motif) and
    ``seqlets/n_seqlets``."""
    with h5py.File(path, "w") as f:
        for i, (_, ppm) in enumerate(patterns.items()):
            g = f.create_group(f"pos_patterns/pattern_{i}")
            g["sequence"] = ppm
            g["contrib_scores"] = plots.information_matrix(ppm)
            g["hypothetical_contribs"] = plots.information_matrix(ppm)
            g["seqlets/n_seqlets"] = np.array([n_seqlets[i]])
    return path


def _planted() -> dict[str, np.ndarray]:
    """TAL forward and GATA reverse-complemented, each with 4 uniform flank columns."""
    db = _db()
    flank = np.repeat(UNIFORM, 4, axis=0)
    return {"tal": np.vstack([flank, db["TAL1_known1"].probs, flank]),
            "gata": np.vstack([flank, _rc(db["GATA_disc1"].probs), flank])}


# --------------------------------------------------------------------------- motifmatch
def test_column_pearson_and_alignment():
    rng = np.random.default_rng(0)
    q, t = rng.dirichlet(np.ones(4), 6), rng.dirichlet(np.ones(4), 9)
    r = motifmatch.column_pearson(q, t)
    assert r[2, 5] == pytest.approx(np.corrcoef(q[2], t[5])[0, 1])
    assert motifmatch.column_pearson(UNIFORM, t)[0, 0] == 0.0  # constant column
    # a query cut from the target at column 3, and its reverse complement
    target = rng.dirichlet(np.full(4, 0.3), 12)
    score, offset, strand, overlap = motifmatch.best_alignment(target[3:9], target)
    assert (offset, strand, overlap) == (3, "+", 6) and score == pytest.approx(6.0)
    score, offset, strand, overlap = motifmatch.best_alignment(_rc(target[3:9]), target)
    assert (offset, strand, overlap) == (3, "-", 6)
    p_true = motifmatch.permutation_pvalue(target[2:10], target, n_null=200)
    p_rand = motifmatch.permutation_pvalue(rng.dirichlet(np.ones(4), 8), target, n_null=200)
    assert p_true <= 2 / 201 and p_rand > 0.05


def test_benjamini_hochberg_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.5])
    # sorted 0.01, 0.03, 0.04, 0.5 -> 0.04, 0.06, 0.0533, 0.5 -> monotone 0.04, 0.0533, 0.0533, 0.5
    np.testing.assert_allclose(motifmatch.benjamini_hochberg(p),
                               [0.04, 0.16 / 3, 0.16 / 3, 0.5])


def test_name_patterns_of_a_handmade_modisco_file(tmp_path):
    path = fake_modisco(tmp_path / "modisco.h5", _planted())
    patterns = discovery.read_patterns(path)
    assert [p.name for p in patterns] == ["pos_patterns.pattern_0", "pos_patterns.pattern_1"]
    assert discovery.trim_bounds(patterns[0].cwm) == (4 + 4, 4 + 13)  # TAL's informative core
    table, pairs = discovery.name_patterns(patterns, _db(), method="dnalift", n_null=300)
    assert list(table["match"]) == ["TAL1_known1", "GATA_disc1"]
    assert list(table["strand"]) == ["+", "-"]
    # TAL1_known1 columns 4-12 have >= 0.6 bits (0.3 x the 2-bit maximum); the E-box CAGATG
    assert table["consensus"][0] == "ACAGATGGT"
    assert (table["qvalue"] < 0.05).all() and len(pairs) == 4
    wrong = pairs[(pairs["query"] == "pos_patterns.pattern_0") &
                  (pairs["target"] == "GATA_disc1")]
    assert float(wrong["pvalue"].iloc[0]) > float(table["pvalue"][0])


def test_memelite_names_the_same_patterns(tmp_path):
    pytest.importorskip("memelite")
    patterns = discovery.read_patterns(fake_modisco(tmp_path / "m.h5", _planted()))
    table, _ = discovery.name_patterns(patterns, _db(), method="memelite")
    assert list(table["match"]) == ["TAL1_known1", "GATA_disc1"]
    assert (table["method"] == "memelite").all() and (table["pvalue"] < 0.01).all()


# --------------------------------------------------------------------------- hits
def test_hits_to_bed_flips_minus_strand_regions():
    coords = {"chrom": np.array(["chr1", "chr2", "chr1"], dtype=object),
              "start": np.array([100, 50, 1000]), "end": np.array([300, 250, 1200]),
              "strand": np.array(["+", "-", "+"], dtype=object),
              "name": np.array(["a", "b", "c"], dtype=object)}
    hits = pd.DataFrame({"peak_id": [1, 0, 2], "start": [10, 20, 0], "end": [16, 30, 5],
                         "motif_name": ["p0", "p1", "p0"], "strand": ["+", "-", "+"],
                         "hit_coefficient": [1.5, 2.0, 0.5]})
    bed = discovery.hits_to_bed(hits, coords, {"p0": "TAL1_known1"})
    assert bed[["chrom", "start", "end", "name", "strand", "region"]].values.tolist() == [
        ["chr1", 120, 130, "p1", "-", "a"],
        ["chr1", 1000, 1005, "TAL1_known1", "+", "c"],
        ["chr2", 250 - 16, 250 - 10, "TAL1_known1", "-", "b"]]
    region_b = {k: v[1] for k, v in coords.items()}
    assert discovery.region_positions(bed[bed["region"] == "b"], region_b) == \
        [(10, 16, "TAL1_known1")]


@pytest.fixture(scope="module")
def small_scores(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("disc")
    fa = write_fasta(d / "s.fa", _records(TEST_FA, 3))
    out = d / "s.h5"
    scoring.score(MODEL, scoring.open_inputs(fasta=fa), scoring.OutputSpec(out),
                  reference=ReferenceSpec("shuffle", k=2))
    return out


def test_task_view_links_one_task(small_scores, tmp_path):
    view = discovery.task_view(small_scores, "tal", tmp_path / "sub" / "tal.h5")
    with h5py.File(view, "r") as v, h5py.File(small_scores, "r") as f:
        np.testing.assert_array_equal(v["hyp_scores"][:], f["tasks/tal/hyp_scores"][:])
        np.testing.assert_array_equal(v["input_seqs"][:], f["input_seqs"][:])
    assert os.path.getsize(view) < 10_000  # links, not copies


def test_missing_tool_is_one_line_naming_the_extra(small_scores, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no modisco / finemo here
    with pytest.raises(discovery.MissingToolError, match=r"dnalift\[motifs\]"):
        discovery.require_tool("modisco")
    res = CliRunner().invoke(cli, ["discover", "modisco", "--h5", str(small_scores),
                                   "--output", str(tmp_path / "m.h5")])
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0 and "pip install 'dnalift[motifs]'" in res.output
    assert not (tmp_path / "m.h5").exists()


# --------------------------------------------------------------------------- figures
def test_pattern_and_track_pngs(small_scores, tmp_path):
    db = _db()
    path = fake_modisco(tmp_path / "m.h5", _planted())
    res = CliRunner().invoke(cli, ["discover", "name", "--modisco", str(path), "--motifs",
                                   str(MEME), "--output", str(tmp_path / "patterns.tsv"),
                                   "--logos", str(tmp_path / "logos"), "--method", "dnalift"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    for name in ("pos_patterns.pattern_0", "pos_patterns.pattern_1"):
        png = (tmp_path / "logos" / f"{name}.png").read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 10_000
    size = plots.plot_pattern_match(db["GATA_disc1"].probs, None, tmp_path / "alone.png")
    assert size[0] > 0 and (tmp_path / "alone.png").stat().st_size > 5_000
    # a track with one hit on the first region
    region = _records(TEST_FA, 1)[0][0]
    (tmp_path / "hits.bed").write_text(f"{region}\t40\t50\tGATA_disc1\t3.0\t+\t{region}\n")
    res = CliRunner().invoke(cli, ["discover", "track", "--h5", str(small_scores), "--hits",
                                   str(tmp_path / "hits.bed"), "--region", region,
                                   "--start", "20", "--end", "120", "--output",
                                   str(tmp_path / "track.png")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "1 hits" in res.output
    png = (tmp_path / "track.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000


# --------------------------------------------------------------------------- child tools

FAKE_TOOL = """#!{python}
import os, subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open({pids!r}, "w").write(f"{{os.getpid()}} {{worker.pid}}")
time.sleep(120)
"""


def _gone(pid: int) -> bool:
    """No such process, or a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_child_tools_die_with_dnalift(small_scores, tmp_path, signum):
    """`dnalift discover modisco` killed while its tool runs (here a stand-in `modisco` on
    PATH that starts a worker process): the tool and its worker end within seconds, so an
    scancel leaves no orphan; on SIGTERM/SIGINT the one line, exit 128+N, no temporary
    directory; on SIGKILL the kernel's parent-death signal stops the tool."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    pids = tmp_path / "pids"
    tool = bindir / "modisco"
    tool.write_text(FAKE_TOOL.format(python=sys.executable, pids=str(pids)))
    tool.chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    job = subprocess.Popen([sys.executable, "-m", "dnalift.cli.process", "discover", "modisco",
                            "--h5", str(small_scores), "--task", "tal",
                            "--output", str(out / "m.h5")],
                           stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not (pids.exists() and len(pids.read_text().split()) == 2):
        assert time.monotonic() < deadline and job.poll() is None, job.stderr.read()
        time.sleep(0.05)
    tool_pid, worker_pid = map(int, pids.read_text().split())
    os.kill(job.pid, signum)
    code = job.wait(timeout=30)
    start = time.monotonic()
    while not _gone(tool_pid) or (signum != signal.SIGKILL and not _gone(worker_pid)):
        assert time.monotonic() - start < 10, "the tool outlived dnalift"
        time.sleep(0.05)
    if signum == signal.SIGKILL:
        assert code == -signal.SIGKILL
        with contextlib.suppress(ProcessLookupError):  # a worker the tool did not stop
            os.kill(worker_pid, signal.SIGKILL)
    else:
        assert code == 128 + signum
        assert job.stderr.read().strip().splitlines()[-1] == (
            f"dnalift: interrupted by {signal.Signals(signum).name}; no output written")
        assert list(out.iterdir()) == []  # no task view, no temporary results file
