"""The DeepLIFT paper's genomics result, recomputed on the shipped model.

Shrikumar et al. (2017), simulated GATA/TAL task: with DeepLIFT-RevealCancel, in sequences that
carry both motifs,
- task "both" (needs both motifs): GATA and TAL embedded hits get positive contributions, well
  above those of background hits;
- task "gata": GATA hits score high, TAL hits stay near background; task "tal": the mirror.

Contributions are computed here with the engine (expected-frequency reference
0.3/0.2/0.2/0.3, as in the paper) on the first sequences of the shipped test split; nothing is
read from a stored result.
"""

from __future__ import annotations

import numpy as np
import pytest

from dnalift.simulated import simulate as sim
from dnalift.simulated.evaluation import METHODS, paper_summary

N_SEQUENCES = 400  # first 400 test sequences: ~110 carry both motifs
#: One worker computes the module's summary (scores of every method, 15 s) for all its tests.
pytestmark = pytest.mark.xdist_group("test_paper_result")


@pytest.fixture(scope="module")
def summary():
    pytest.importorskip("dnalift.deeplift")
    table, subset, tasks = paper_summary(n_sequences=N_SEQUENCES, methods=METHODS)
    assert tasks == list(sim.TASKS)
    assert len(subset) > 80
    return table.set_index(["task", "motif", "method"])


def _row(summary, task, motif, method="revealcancel"):
    return summary.loc[(task, motif, method)]


def _gap(row) -> float:
    """Mean contribution of embedded hits minus that of background hits."""
    return float(row["mean_embedded"] - row["mean_background"])


@pytest.mark.parametrize("motif", sim.MOTIF_NAMES)
def test_both_task_credits_both_motifs(summary, motif):
    row = _row(summary, "both", motif)
    assert row["n_embedded"] > 100 and row["n_background"] > 10
    assert row["mean_embedded"] > 0
    assert _gap(row) > 1.0
    assert row["auroc"] > 0.8


@pytest.mark.parametrize("task, own, other", [("gata", "GATA_disc1", "TAL1_known1"),
                                              ("tal", "TAL1_known1", "GATA_disc1")])
def test_single_motif_task_credits_only_its_motif(summary, task, own, other):
    own_row, other_row = _row(summary, task, own), _row(summary, task, other)
    assert own_row["auroc"] > 0.9
    assert _gap(own_row) > 2.0
    # the other motif stays near background: its gap is small next to the own motif's
    assert abs(_gap(other_row)) < 0.15 * _gap(own_row)
    # and the best window of a sequence lies on the own motif, not the other
    assert own_row["top_window_fraction"] > 0.9
    assert other_row["top_window_fraction"] < 0.2


@pytest.mark.parametrize("motif", sim.MOTIF_NAMES)
def test_revealcancel_beats_gradient_x_input_on_the_both_task(summary, motif):
    """The paper's point: gradients miss saturated evidence; DeepLIFT does not."""
    rc = _row(summary, "both", motif)
    gxi = _row(summary, "both", motif, "gradient_x_input")
    assert rc["auroc"] > gxi["auroc"] + 0.1


def test_summary_covers_every_task_motif_method(summary):
    assert len(summary) == len(sim.TASKS) * len(sim.MOTIF_NAMES) * len(METHODS)
    assert np.isfinite(summary["auroc"].to_numpy()).all()
