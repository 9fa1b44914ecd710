"""Tests of the engine stage for ensembles and both strands (dnalift.ensemble, through
dnalift.scoring and ``dnalift score --model A --model B --strands both``).

The second fold is the shipped model with perturbed weights (saved to tmp_path); every
expected value is computed independently with ``DeepLift(...).attribute`` on each model and
strand, or with numpy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from dnalift import deeplift, scoring
from dnalift.cli.main import cli
from dnalift.ensemble import Agreement, CombinedEngine, flip_attribution, mean_attribution
from dnalift.errors import InputError
from dnalift.fileio import file_sha256
from dnalift.references import ReferenceSpec, make_references
from dnalift.sequences import one_hot_encode, reverse_complement

from test_scoring import MODEL, TEST_FA, _records, write_fasta

N = 12
FREQS = (0.3, 0.2, 0.2, 0.3)  # reverse-complement symmetric: refs of rc(x) = rc(refs of x)


@pytest.fixture(scope="module")
def fold1(tmp_path_factory) -> Path:
    """The shipped model with every weight perturbed by 20 % of its layer's std (seed 0)."""
    model = deeplift.load_model(MODEL)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([w + 0.2 * w.std() * rng.standard_normal(w.shape).astype(w.dtype)
                               for w in weights])
    path = tmp_path_factory.mktemp("fold1") / "fold1.h5"
    model.save(path)
    shutil.copy(str(MODEL) + ".tasks.txt", str(path) + ".tasks.txt")
    return path


@pytest.fixture(scope="module")
def fasta(tmp_path_factory) -> Path:
    return write_fasta(tmp_path_factory.mktemp("fa") / "ens.fa", _records(TEST_FA, N))


def _engine(path: Path) -> deeplift.DeepLift:
    return deeplift.DeepLift(deeplift.load_model(path),
                             task_names=deeplift.read_sidecar_task_names(path))


def _x() -> np.ndarray:
    return one_hot_encode([s for _, s in _records(TEST_FA, N)])


def _run(models, fasta_path: Path, out: Path, strands: str = "forward"):
    """Score with the frequency reference; ``(summary, {dataset: (N, T, ...)}, attrs)``."""
    summary = scoring.score(models, scoring.open_inputs(fasta=fasta_path),
                            scoring.OutputSpec(out), reference=ReferenceSpec("frequency"),
                            engine=scoring.EngineSpec(strands=strands))
    with h5py.File(out, "r") as f:
        arrays = {k: np.stack([f[f"tasks/{t}/{k}"][:] for t in ("both", "gata", "tal")], 1)
                  for k in ("hyp_scores", "contrib_scores", "delta", "residual", "prediction")}
        attrs = dict(f.attrs)
    return summary, arrays, attrs


def test_flip_mean_and_agreement_helpers():
    rng = np.random.default_rng(3)

    def att(seed):
        r = np.random.default_rng(seed)
        return deeplift.Attribution(hypothetical=r.normal(size=(2, 1, 5, 4)),
                                    actual=r.normal(size=(2, 1, 5)),
                                    delta=r.normal(size=(2, 1, 3)),
                                    residual=r.normal(size=(2, 1, 3)),
                                    prediction=r.normal(size=(2, 1)))
    a, b = att(1), att(2)
    f = flip_attribution(a)
    # position l, base A of the flipped scores = position L-1-l, base T of the original
    assert f.hypothetical[1, 0, 0, 0] == a.hypothetical[1, 0, 4, 3]
    assert f.hypothetical[0, 0, 1, 1] == a.hypothetical[0, 0, 3, 2]
    assert np.array_equal(f.actual[:, :, ::-1], a.actual)
    assert np.array_equal(f.delta, a.delta) and np.array_equal(f.prediction, a.prediction)
    m = mean_attribution([a, b])
    np.testing.assert_allclose(m.delta, (a.delta + b.delta) / 2, rtol=1e-6)
    np.testing.assert_allclose(m.hypothetical, (a.hypothetical + b.hypothetical) / 2, rtol=1e-6)
    # running Pearson over two batches = np.corrcoef over everything
    xs, ys = rng.normal(size=(2, 30)), rng.normal(size=(2, 30))
    agree = Agreement(1)
    agree.update([xs[0][:10]], ys[0][:10])
    agree.update([xs[0][10:]], ys[0][10:])
    assert agree.correlations(30)[0] == pytest.approx(np.corrcoef(xs[0], ys[0])[0, 1],
                                                       abs=1e-12)


def test_ensemble_is_the_mean_of_the_models(fold1, fasta, tmp_path):
    summary, got, attrs = _run([MODEL, fold1], fasta, tmp_path / "ens.h5")
    x = _x()
    refs = make_references("frequency", x)
    a0, a1 = _engine(MODEL).attribute(x, refs), _engine(fold1).attribute(x, refs)
    np.testing.assert_allclose(got["hyp_scores"], (a0.hypothetical + a1.hypothetical) / 2,
                               atol=1e-5)
    np.testing.assert_allclose(got["contrib_scores"], (a0.actual + a1.actual) / 2, atol=1e-5)
    np.testing.assert_allclose(got["delta"], (a0.delta + a1.delta) / 2, atol=1e-5)
    np.testing.assert_allclose(got["prediction"], (a0.prediction + a1.prediction) / 2,
                               atol=1e-5)
    # the two models really differ, and the ensemble still sums to the mean delta
    assert np.abs(a0.actual - a1.actual).max() > 0.05
    total = got["contrib_scores"].sum(-1)  # (N, T); K = 1
    np.testing.assert_allclose(total, got["delta"][..., 0] + got["residual"][..., 0], atol=1e-4)
    assert np.abs(got["residual"]).max() < 1e-3
    # checksums of both models, in --model order; agreement = Pearson r with the mean
    assert attrs["model_sha256"] == f"{file_sha256(MODEL)},{file_sha256(fold1)}"
    assert list(attrs["models"]) == [str(MODEL), str(fold1)]
    mean = (a0.actual + a1.actual) / 2
    expect = [np.corrcoef(a.actual.ravel(), mean.ravel())[0, 1] for a in (a0, a1)]
    np.testing.assert_allclose(attrs["model_agreement"], expect, atol=1e-4)
    assert summary.agreement["model_agreement"] == pytest.approx(expect, abs=1e-4)
    assert 0.5 < min(expect) < 0.9999


def test_both_strands_average_in_input_orientation(fasta, tmp_path):
    _, got, attrs = _run([MODEL], fasta, tmp_path / "both.h5", strands="both")
    x = _x()
    refs = make_references("frequency", x)
    engine = _engine(MODEL)
    fwd = engine.attribute(x, refs)
    rev = engine.attribute(reverse_complement(x), reverse_complement(refs))
    # reverse-strand scores flipped back: position l, base b <- position L-1-l, base 3-b
    np.testing.assert_allclose(got["hyp_scores"],
                               (fwd.hypothetical + rev.hypothetical[:, :, ::-1, ::-1]) / 2,
                               atol=1e-5)
    np.testing.assert_allclose(got["contrib_scores"], (fwd.actual + rev.actual[:, :, ::-1]) / 2,
                               atol=1e-5)
    # the actual contributions sum to the mean of the two strands' deltas
    mean_delta = (fwd.delta + rev.delta) / 2
    np.testing.assert_allclose(got["delta"], mean_delta, atol=1e-5)
    np.testing.assert_allclose(got["contrib_scores"].sum(-1), mean_delta[..., 0], atol=1e-3)
    assert attrs["strands"] == "both"
    assert len(attrs["strand_agreement"]) == 2 and "model_agreement" not in attrs
    # the model is not strand-symmetric, so the two strands differ
    assert np.abs(fwd.actual - rev.actual[:, :, ::-1]).max() > 0.05


def test_both_strands_score_a_region_and_its_reverse_complement_alike(tmp_path):
    """Strand-averaged scores of rc(x) are the flipped scores of x (refs are rc-symmetric)."""
    recs = _records(TEST_FA, 4)
    from dnalift.sequences import reverse_complement_str
    fa = write_fasta(tmp_path / "f.fa", recs)
    rc = write_fasta(tmp_path / "r.fa", [(n, reverse_complement_str(s)) for n, s in recs])
    _, a, _ = _run([MODEL], fa, tmp_path / "f.h5", strands="both")
    _, b, _ = _run([MODEL], rc, tmp_path / "r.h5", strands="both")
    np.testing.assert_allclose(b["hyp_scores"], a["hyp_scores"][:, :, ::-1, ::-1], atol=1e-5)
    np.testing.assert_allclose(b["prediction"], a["prediction"], atol=1e-5)


def test_models_must_agree_on_tasks(fold1, tmp_path):
    other = tmp_path / "renamed.h5"
    shutil.copy(fold1, other)
    Path(str(other) + ".tasks.txt").write_text("a\nb\nc\n")
    engines = [_engine(MODEL), _engine(other)]
    with pytest.raises(InputError, match="tasks"):
        CombinedEngine(engines, labels=["model.h5", "renamed.h5"])
    with pytest.raises(InputError, match="--strands"):
        scoring.EngineSpec(strands="minus")


def test_cli_ensemble_both_strands(fold1, fasta, tmp_path):
    out = tmp_path / "cli.h5"
    res = CliRunner().invoke(cli, ["score", "--model", str(MODEL), "--model", str(fold1),
                                   "--fasta", str(fasta), "--reference", "frequency",
                                   "--strands", "both", "--output", str(out)],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "model agreement" in res.output and "strand agreement" in res.output
    _, lib, _ = _run([MODEL, fold1], fasta, tmp_path / "lib.h5", strands="both")
    with h5py.File(out, "r") as f:
        np.testing.assert_allclose(f["hyp_scores"][:], lib["hyp_scores"][:, 0], atol=1e-6)
        assert len(f.attrs["model_agreement"]) == 2
