"""Tests of the simulated GATA/TAL data set (dnalift.simulated.simulate)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from dnalift import meme, pwm
from dnalift.simulated import simulate as sim

SHIPPED = sim.default_motif_path().parent


@pytest.fixture(scope="module")
def motifs():
    return sim.load_motifs()


@pytest.fixture(scope="module")
def data(motifs):
    return sim.simulate(motifs, sim.SimulationConfig(n_sequences=2000, seed=3))


def _onehot(seq: str) -> np.ndarray:
    return np.eye(4)[["ACGT".index(c) for c in seq]][None]


def test_same_seed_same_data_other_seed_differs(motifs):
    cfg = sim.SimulationConfig(n_sequences=200, seed=11)
    a, b = sim.simulate(motifs, cfg), sim.simulate(motifs, cfg)
    c = sim.simulate(motifs, sim.SimulationConfig(n_sequences=200, seed=12))
    assert a.sequences == b.sequences
    pd.testing.assert_frame_equal(a.embedded, b.embedded)
    pd.testing.assert_frame_equal(a.labels, b.labels)
    assert a.sequences != c.sequences


def test_shipped_test_split_is_regenerated_by_the_default_seed(tmp_path, motifs):
    """The committed data/simulated/test.* are exactly what `dnalift simulate` writes."""
    result = sim.simulate(motifs, sim.SimulationConfig())
    sim.write_simulation(result, tmp_path, list(motifs.values()))
    for name in ("test.fa", "test.labels.tsv", "test.embedded.tsv", "motifs.meme"):
        assert (tmp_path / name).read_bytes() == (SHIPPED / name).read_bytes(), name


def test_class_balance_and_labels(data):
    lab = data.labels
    assert lab["class"].value_counts().to_dict() == {"none": 500, "gata": 500, "tal": 500,
                                                      "both": 500}
    counts = data.embedded.groupby(["name", "motif"]).size().unstack(fill_value=0)
    counts = counts.reindex(lab["name"], fill_value=0)
    n_gata = counts["GATA_disc1"].to_numpy()
    n_tal = counts["TAL1_known1"].to_numpy()
    assert np.array_equal(lab["gata"].to_numpy(), (n_gata > 0).astype(int))
    assert np.array_equal(lab["tal"].to_numpy(), (n_tal > 0).astype(int))
    assert np.array_equal(lab["both"].to_numpy(), ((n_gata > 0) & (n_tal > 0)).astype(int))
    total = n_gata + n_tal
    assert total.min() == 0 and total.max() == 3
    assert set(total[lab["class"] == "both"]) == {2, 3}
    assert set(total[lab["class"] == "gata"]) == {1, 2, 3}
    assert (lab["split"].value_counts() == pd.Series({"train": 1600, "valid": 200,
                                                      "test": 200})).all()
    assert len(set(data.names)) == len(data.names)


def test_background_composition(data):
    mask = [np.ones(len(s), bool) for s in data.sequences]
    index = {n: i for i, n in enumerate(data.names)}
    for r in data.embedded.itertuples():
        mask[index[r.name]][r.start:r.end] = False
    letters = np.concatenate([np.frombuffer(s.encode(), np.uint8)[m]
                              for s, m in zip(data.sequences, mask)])
    freqs = np.array([(letters == ord(c)).mean() for c in "ACGT"])
    # ~370k bases: binomial s.d. ~ 0.0008
    np.testing.assert_allclose(freqs, sim.BACKGROUND, atol=0.004)


def test_embedded_sites_score_high_on_their_strand(data, motifs):
    seqs = dict(zip(data.names, data.sequences))
    for name, motif in motifs.items():
        lo = pwm.log_odds_matrix(motif, sim.BACKGROUND)
        cut = pwm.score_threshold(lo, sim.BACKGROUND, 1e-3)
        emb = data.embedded[data.embedded["motif"] == name]
        scores = []
        for r in emb.itertuples():
            assert seqs[r.name][r.start:r.end] == r.sequence
            assert r.end - r.start == motif.width
            s = pwm.scan(_onehot(r.sequence), lo)[0, 0]
            scores.append(s[0] if r.strand == "+" else s[1])
        scores = np.array(scores)
        assert scores.min() >= cut  # every instance passes the p <= 1e-3 hit threshold
        assert scores.mean() > 10.0  # bits; random windows average well below 0


def test_instances_do_not_overlap_and_use_both_strands(data):
    for _, grp in data.embedded.groupby("name"):
        spans = grp.sort_values("start")[["start", "end"]].to_numpy()
        assert np.all(spans[1:, 0] >= spans[:-1, 1])
    for _, grp in data.embedded.groupby("motif"):
        frac_minus = (grp["strand"] == "-").mean()
        assert 0.4 < frac_minus < 0.6


def test_meme_round_trip_through_biopython(tmp_path, motifs):
    path = tmp_path / "m.meme"
    meme.write_meme(path, list(motifs.values()), sim.BACKGROUND, source="test", url="http://x")
    back, bg = meme.read_meme(path)
    assert list(back) == list(motifs)
    np.testing.assert_allclose(bg, sim.BACKGROUND)
    for name, motif in motifs.items():
        np.testing.assert_allclose(back[name].probs, motif.probs, atol=1e-6)
        assert back[name].nsites == motif.nsites
        assert back[name].description.split()[0] == motif.description.split()[0]


def test_encode_source_file_matches_shipped_meme(tmp_path):
    """The shipped MEME file holds the ENCODE matrices with integral nsites."""
    shipped, bg = meme.read_meme(SHIPPED / "motifs.meme")
    assert {m: (v.width, v.nsites) for m, v in shipped.items()} == {
        "GATA_disc1": (10, 189), "TAL1_known1": (16, 100)}
    np.testing.assert_allclose(bg, sim.BACKGROUND)
    # GATA_disc1 row 4 is a certain G, TAL1_known1 row 6 a certain C
    assert shipped["GATA_disc1"].probs[3].tolist() == [0, 0, 1, 0]
    assert shipped["TAL1_known1"].probs[5].tolist() == [0, 1, 0, 0]
    assert "Kheradpour" in (SHIPPED / "motifs.meme").read_text()


def test_cli_simulate_writes_all_files(tmp_path):
    from dnalift.cli.simulate import simulate

    res = CliRunner().invoke(simulate, ["-n", "40", "--seed", "5",
                                   "--output", str(tmp_path)])
    assert res.exit_code == 0, res.output
    lab = pd.read_csv(tmp_path / "test.labels.tsv", sep="\t")
    assert list(lab.columns) == ["name", "split", "class", "both", "gata", "tal"]
    assert len(lab) == 4
    assert (tmp_path / "test.fa").read_text().count(">") == 4
    bad = CliRunner().invoke(simulate, ["--motifs", str(tmp_path / "nope.meme"),
                                        "--output", str(tmp_path)])
    assert bad.exit_code == 2 and "nope.meme' does not exist" in bad.output
    assert not (tmp_path / "nope.meme").exists()
