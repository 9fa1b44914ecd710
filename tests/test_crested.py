"""CREsted's own zoo models: saved as CREsted saves them, loaded and scored by dnalift.

Place in the data flow: model file (``.keras``) -> ``load_model`` -> engine, and the whole
``dnalift score`` job on a CREsted-saved file. Needs the optional ``crested`` package
(``pip install -e ".[zoo]"``); skipped without it.

Also checks that the plain-Keras rebuilds of ``tests/zoo.py`` are faithful: with CREsted's
weights they have the same layers and compute the same function.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

crested = pytest.importorskip("crested")

import keras  # noqa: E402

from dnalift.deeplift import DeepLift, load_model  # noqa: E402
from dnalift.errors import UnsupportedLayerError  # noqa: E402
from dnalift.references import make_references  # noqa: E402

import zoo  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: CREsted builder name -> its keyword arguments at the widths of the ``tests/zoo.py`` rebuild.
SPECS = {
    "simple_convnet": dict(seq_len=500, num_classes=3, first_filters=12, filters=8,
                           dense_size=16, bottleneck=8),
    "deeptopic_cnn": dict(seq_len=500, num_classes=3, filters=16, dense_out=16),
    "dilated_cnn": dict(seq_len=300, num_classes=3, first_conv_filters=12, num_filters=12,
                        n_dil_layers=5),
    "dilated_cnn_decoupled": dict(seq_len=300, num_classes=3, first_conv_filters=12,
                                  num_filters=12, n_dil_layers=5),
    "basenji": dict(seq_len=256, num_classes=3, first_filters=16, filters=16),
    "legnet": dict(seq_len=200, num_classes=3, stem_filters=8, tower_filters=(8, 12),
                   pool_sizes=(2, 2)),
}
NEEDS = {"legnet": "Multiply of two input-dependent tensors"}
N, K = 2, 2


def _param(name: str):
    marks = [pytest.mark.xfail(raises=UnsupportedLayerError, strict=True,
                               reason=f"needs a {NEEDS[name]} rule")] if name in NEEDS else []
    return pytest.param(name, marks=marks, id=name)


def crested_model(name: str, seed: int = 0) -> keras.Model:
    """CREsted's builder at small width, random weights (see :func:`zoo.randomize`)."""
    return zoo.randomize(getattr(crested.tl.zoo, name)(**SPECS[name]), seed)


def save_as_crested(model: keras.Model, name: str, path: Path) -> Path:
    """Compile with CREsted's default task configuration (its custom losses and metrics for
    peak regression) and save as ``.keras``, as CREsted's training checkpoints do."""
    task = "topic_classification" if name == "deeptopic_cnn" else "peak_regression"
    cfg = crested.tl.default_configs(task)
    model.compile(optimizer=cfg.optimizer, loss=cfg.loss, metrics=cfg.metrics)
    model.save(path)
    return path


def _onehot(n: int, length: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.eye(4, dtype="float32")[rng.integers(0, 4, (n, length))]


def _layer_signature(model: keras.Model) -> list[tuple]:
    """(class, output shape, activation, kernel size, dilation, groups, bias, padding, pool)
    of every layer, in graph order."""
    def sig(layer):
        act = getattr(layer, "activation", None)
        return (type(layer).__name__, tuple(layer.output.shape), getattr(act, "__name__", None),
                *(getattr(layer, a, None) for a in ("kernel_size", "dilation_rate", "groups",
                                                     "use_bias", "padding", "pool_size")))
    return [sig(layer) for layer in model.layers]


@pytest.mark.parametrize("name", list(SPECS))
def test_rebuild_matches_crested(name):
    original = crested_model(name)
    rebuild = zoo.ARCHITECTURES[f"crested_{name}"]()
    assert _layer_signature(rebuild) == _layer_signature(original)
    rebuild.set_weights(original.get_weights())
    x = _onehot(3, SPECS[name]["seq_len"])
    np.testing.assert_allclose(zoo.keras_target(rebuild, x), zoo.keras_target(original, x),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", [_param(n) for n in SPECS])
def test_saved_crested_model_scores(name, tmp_path):
    original = crested_model(name)
    path = save_as_crested(original, name, tmp_path / f"{name}.keras")
    model = load_model(path)
    x = _onehot(N, SPECS[name]["seq_len"])
    refs = make_references("shuffle", x, k=K, seed=0)
    att = DeepLift(model, dtype="float64").attribute(x, refs)
    _, want = zoo.keras_delta(original, x, refs)
    scale = np.maximum(1.0, np.abs(want))
    assert np.abs(want).max() > 1e-2
    assert np.max(np.abs(att.delta - want) / scale) <= 1e-9
    assert np.max(np.abs(att.residual) / scale) <= 1e-6


def test_cli_scores_crested_file(tmp_path, write_fasta):
    """``dnalift score`` in a fresh process (crested not imported) on a CREsted-saved file."""
    name = "dilated_cnn"
    path = save_as_crested(crested_model(name), name, tmp_path / "m.keras")
    length = SPECS[name]["seq_len"]
    rng = np.random.default_rng(1)
    fasta = write_fasta([(f"r{i}", "".join(rng.choice(list("ACGT"), length))) for i in range(3)])
    out = tmp_path / "scores.h5"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    res = subprocess.run(["dnalift", "score", "--model", str(path), "--fasta", str(fasta),
                          "--output", str(out), "--shuffles", "2", "--task", "1", "-q"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    with h5py.File(out, "r") as f:
        assert f["hyp_scores"].shape == (3, length, 4)
        contrib = f["contrib_scores"][:]
        delta = f["tasks/1/delta"][:]
        assert np.abs(f["tasks/1/residual"][:]).max() < 1e-3
    # per-base contributions sum to the mean delta over the references (float32 scores)
    np.testing.assert_allclose(contrib.sum(1), delta.mean(1), atol=1e-4)
