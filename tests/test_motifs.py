"""Tests of PWM scanning, hit tables and contribution summaries (dnalift.motifs)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dnalift import meme, pwm, scorefile
from dnalift import motifs as mo
from dnalift.errors import InputError

UNIFORM = (0.25, 0.25, 0.25, 0.25)
# A 3-long motif "AGT": 0.7 on the consensus letter, 0.1 elsewhere, from 10 sites.
AGT = meme.Motif("AGT", np.array([[0.7, 0.1, 0.1, 0.1],
                                [0.1, 0.1, 0.7, 0.1],
                                [0.1, 0.1, 0.1, 0.7]]), "toy", nsites=10)
# Hand-derived log-odds with pseudocount 0.1 spread over a uniform background:
MATCH = math.log2((0.7 * 10 + 0.1 * 0.25) / 10.1 / 0.25)  # 1.476...
MISMATCH = math.log2((0.1 * 10 + 0.1 * 0.25) / 10.1 / 0.25)  # -1.300...


def onehot(*seqs: str) -> np.ndarray:
    return np.stack([np.eye(4, dtype=np.float32)[["ACGT".index(c) for c in s]] for s in seqs])


def test_log_odds_matrix_by_hand():
    lo = pwm.log_odds_matrix(AGT, UNIFORM, pseudocount=0.1)
    assert lo[0, 0] == pytest.approx(MATCH) and lo[1, 2] == pytest.approx(MATCH)
    assert lo[0, 1] == pytest.approx(MISMATCH) and lo[2, 0] == pytest.approx(MISMATCH)


def test_planted_motif_found_at_its_position_and_strand():
    x = onehot("CCCCCAGTCCCC", "CCACTCCCCCCC")  # AGT at 5 (+); ACT = revcomp(AGT) at 2 (-)
    hits = pwm.find_hits(x, ["fwd", "rev"], {"AGT": AGT}, background=UNIFORM, min_score=4.0)
    assert hits[["name", "start", "end", "strand"]].values.tolist() == [
        ["fwd", 5, 8, "+"], ["rev", 2, 5, "-"]]
    np.testing.assert_allclose(hits["score"], 3 * MATCH)
    # P(score >= 3 matches) under a uniform background is 1/4**3
    np.testing.assert_allclose(hits["pvalue"], 1 / 64, rtol=1e-9)


def test_scan_scores_every_window_both_strands():
    x = onehot("AGTC")
    s = pwm.scan(x, pwm.log_odds_matrix(AGT, UNIFORM))
    assert s.shape == (1, 2, 2)
    assert s[0, 0, 0] == pytest.approx(3 * MATCH)  # AGT, + strand
    assert s[0, 1, 0] == pytest.approx(3 * MISMATCH)  # GTC vs AGT
    # the - strand reads the reverse complement of the window: GTC -> GAC (no match with AGT),
    # AGT -> ACT (A and T match, C does not)
    assert s[0, 1, 1] == pytest.approx(3 * MISMATCH)
    assert s[0, 0, 1] == pytest.approx(2 * MATCH + MISMATCH)


def test_exact_pvalues_and_threshold():
    lo = pwm.log_odds_matrix(AGT, UNIFORM)
    p = pwm.score_pvalues(np.array([3 * MATCH, 2 * MATCH + MISMATCH, 3 * MISMATCH]), lo, UNIFORM)
    np.testing.assert_allclose(p, [1 / 64, 10 / 64, 1.0], rtol=1e-9)
    assert pwm.score_threshold(lo, UNIFORM, 1 / 64) == pytest.approx(3 * MATCH, abs=1e-3)
    assert pwm.score_threshold(lo, UNIFORM, 1 / 100) == math.inf


def test_nonoverlapping_keeps_one_hit_of_a_palindrome():
    at = meme.Motif("AT", np.array([[0.97, 0.01, 0.01, 0.01], [0.01, 0.01, 0.01, 0.97]]), nsites=100)
    x = onehot("CCATCCCCAT")
    kw = dict(background=UNIFORM, min_score=2.0)
    all_hits = pwm.find_hits(x, ["s"], {"AT": at}, nonoverlapping=False, **kw)
    kept = pwm.find_hits(x, ["s"], {"AT": at}, **kw)
    assert sorted(zip(all_hits["start"], all_hits["strand"])) == [
        (2, "+"), (2, "-"), (8, "+"), (8, "-")]
    assert kept["start"].tolist() == [2, 8]


def _toy():
    """Two sequences, one task; embedded AGT at 2 (seq a) and 10 (seq b)."""
    names = ["a", "b"]
    hits = pd.DataFrame({"name": ["a", "a", "b", "b"], "motif": "AGT",
                         "start": [2, 12, 10, 16], "end": [5, 15, 13, 19],
                         "strand": "+", "score": 5.0, "pvalue": 0.01})
    embedded = pd.DataFrame({"name": ["a", "b"], "motif": "AGT", "start": [2, 11],
                             "end": [5, 14], "strand": "+", "sequence": "AGT"})
    contrib = np.zeros((2, 1, 20))
    contrib[0, 0, 2:5] = 1.0  # embedded hit of a: 3
    contrib[0, 0, 12:15] = [0.5, 0.5, 1.0]  # background hit of a: 2
    contrib[1, 0, 10:13] = [0.0, 0.5, 0.5]  # embedded hit of b (overlaps 11-14): 1
    contrib[1, 0, 16] = 0.0  # background hit of b: 0
    contrib[1, 0, 0] = 5.0  # top window of b at 0: not on its motif
    return names, hits, embedded, {"m": contrib}


def test_summary_on_a_toy_case_with_known_answer(tmp_path):
    names, hits, embedded, contribs = _toy()
    table = mo.add_contributions(mo.mark_embedded(hits, embedded), names, contribs, ["t"])
    assert table["embedded"].tolist() == [True, False, True, False]
    np.testing.assert_allclose(table["contrib.m.t"], [3.0, 2.0, 1.0, 0.0])
    summary = mo.summarize(table, contribs, names, ["t"], embedded, {"AGT": AGT})
    row = summary.iloc[0]
    assert (row["task"], row["motif"], row["method"]) == ("t", "AGT", "m")
    assert (row["n_embedded"], row["n_background"]) == (2, 2)
    assert row["mean_embedded"] == pytest.approx(2.0)
    assert row["mean_background"] == pytest.approx(1.0)
    # embedded {3, 1} vs background {2, 0}: 3 of 4 pairs ordered -> 0.75
    assert row["auroc"] == pytest.approx(0.75)
    assert row["top_window_fraction"] == pytest.approx(0.5) and row["n_sequences"] == 2
    # TSV round trip through pandas
    mo.write_tsv(table, tmp_path / "hits.tsv")
    back = pd.read_csv(tmp_path / "hits.tsv", sep="\t")
    pd.testing.assert_frame_equal(back, table, check_dtype=False)


def test_hits_on_another_motifs_instance_are_not_background():
    names, hits, embedded, contribs = _toy()
    other = pd.DataFrame({"name": ["b"], "motif": "OTHER", "start": [17], "end": [25],
                          "strand": "+", "sequence": "N"})
    table = mo.add_contributions(mo.mark_embedded(hits, pd.concat([embedded, other])),
                                 names, contribs, ["t"])
    assert table["overlaps_other"].tolist() == [False, False, False, True]
    row = mo.summarize(table, contribs, names, ["t"], embedded, {"AGT": AGT}).iloc[0]
    assert (row["n_embedded"], row["n_background"]) == (2, 1)
    assert row["mean_background"] == pytest.approx(2.0)
    assert row["auroc"] == pytest.approx(0.5)  # {3, 1} vs {2}
    sub = mo.summarize(table, contribs, names, ["t"], embedded, {"AGT": AGT}, subset=["a"])
    assert sub.iloc[0][["n_embedded", "n_background", "n_sequences"]].tolist() == [1, 1, 1]


def test_contributions_shape_is_checked():
    names, hits, _, contribs = _toy()
    with pytest.raises(InputError, match="expected"):
        mo.add_contributions(hits, names, {"m": contribs["m"][:1]}, ["t"])


@pytest.mark.parametrize("text, problem", [
    ("this is not a motif file\n", "not a MEME motif file|no motifs"),
    ("MEME version 4\n\nALPHABET= ACGT\n\n", "no motifs|not a MEME"),
    (">X\nA 0.5 0.5 0.5 0.5\n", "line 2: probabilities"),
])
def test_bad_motif_files_raise_input_error(tmp_path, text, problem):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=problem) as err:
        meme.load_motifs(path)
    assert "bad.txt" in str(err.value)
    with pytest.raises(InputError, match="not found"):
        meme.load_motifs(tmp_path / "missing.meme")


def write_scores_h5(path, names, x, contrib, tasks, mode="revealcancel"):
    """A score file in the layout of dnalift.scorefile.HDF5Writer (the `dnalift score` output)."""
    from types import SimpleNamespace

    from dnalift.scorefile import HDF5Writer

    n, t, length = contrib.shape
    regions = [SimpleNamespace(chrom=nm, start=0, end=length, strand="+", name=nm) for nm in names]
    att = SimpleNamespace(hypothetical=x[:, None] * contrib[..., None], actual=contrib,
                          delta=np.zeros((n, t, 1)), residual=np.zeros((n, t, 1)),
                          prediction=np.zeros((n, t)))
    with HDF5Writer(path, n=n, length=length, tasks=tasks, n_references=1,
                    attrs={"mode": mode, "tasks": list(tasks)}) as w:
        w.write(regions, x, att)


def test_read_scores_h5_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (3, 20))]
    contrib = rng.normal(size=(3, 2, 20)).astype(np.float32)
    write_scores_h5(tmp_path / "s.h5", ["r0", "r1", "r/2"], x, contrib, ["both", "a/b"])
    got = scorefile.read_scores_h5(tmp_path / "s.h5")
    assert got.names == ["r0", "r1", "r/2"] and got.tasks == ["both", "a/b"]
    np.testing.assert_array_equal(got.x, x)
    np.testing.assert_allclose(got.contributions["revealcancel"], contrib)
    with pytest.raises(InputError, match="not found"):
        scorefile.read_scores_h5(tmp_path / "missing.h5")


def test_cli_motifs_from_h5_writes_hits_and_summary(tmp_path):
    from click.testing import CliRunner

    from dnalift.cli.motifs import motifs as motifs_cmd

    meme_path = tmp_path / "agt.meme"
    meme.write_meme(meme_path, [AGT], UNIFORM)
    x = onehot("CCCCCAGTCCCC", "CCACTCCCCAGT")
    contrib = np.zeros((2, 12), np.float32)
    contrib[0, 5:8] = 1.0
    contrib[1, 9:12] = -1.0
    write_scores_h5(tmp_path / "s.h5", ["a", "b"], x, contrib[:, None], ["t"], mode="rescale")
    pd.DataFrame({"name": ["a", "b"], "start": [5, 2], "end": [8, 5], "motif": "AGT"}).to_csv(
        tmp_path / "emb.tsv", sep="\t", index=False)
    res = CliRunner().invoke(motifs_cmd, [
        "--motifs", str(meme_path), "--h5", str(tmp_path / "s.h5"), "--min-score", "4",
        "--embedded", str(tmp_path / "emb.tsv"), "--output", str(tmp_path / "hits.tsv"),
        "--summary", str(tmp_path / "sum.tsv")])
    assert res.exit_code == 0, res.output
    hits = pd.read_csv(tmp_path / "hits.tsv", sep="\t")
    assert hits[["name", "start", "strand", "embedded"]].values.tolist() == [
        ["a", 5, "+", True], ["b", 2, "-", True], ["b", 9, "+", False]]
    np.testing.assert_allclose(hits["contrib.rescale.t"], [3.0, 0.0, -3.0])
    summary = pd.read_csv(tmp_path / "sum.tsv", sep="\t")
    assert summary[["mean_embedded", "mean_background", "auroc"]].values.tolist() == [
        [1.5, -3.0, 1.0]]


def test_cli_motifs_computes_contributions_with_the_engine(tmp_path):
    """`dnalift motifs --model --fasta`: hits of the shipped data with in-process scores."""
    pytest.importorskip("dnalift.deeplift")
    from click.testing import CliRunner

    from dnalift.simulated import simulate as sim
    from dnalift.cli.motifs import motifs as motifs_cmd

    data = sim.default_motif_path().parent
    names, seqs, _ = sim.read_split(data, "test")
    fasta = tmp_path / "few.fa"
    fasta.write_text("".join(f">{n}\n{s}\n" for n, s in zip(names[:12], seqs[:12])))
    res = CliRunner().invoke(motifs_cmd, [
        "--model", str(data / "model.h5"), "--fasta", str(fasta), "--method", "rescale",
        "--method", "gradient_x_input", "--embedded", str(data / "test.embedded.tsv"),
        "--output", str(tmp_path / "hits.tsv"), "--summary", str(tmp_path / "sum.tsv")])
    assert res.exit_code == 0, res.output
    hits = pd.read_csv(tmp_path / "hits.tsv", sep="\t")
    assert set(hits["name"]) <= set(names[:12])
    assert {f"contrib.{m}.{t}" for m in ("rescale", "gradient_x_input")
            for t in sim.TASKS} <= set(hits.columns)
    # every embedded instance of these sequences is found (all pass p <= 1e-3)
    emb = mo.read_embedded(data / "test.embedded.tsv")
    assert int(hits["embedded"].sum()) == int(emb["name"].isin(names[:12]).sum())
    summary = pd.read_csv(tmp_path / "sum.tsv", sep="\t")
    assert len(summary) == 2 * 3 * 2
