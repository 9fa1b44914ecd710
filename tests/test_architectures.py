"""Architecture matrix: summation to delta of every DeepLIFT mode on the model zoo.

Place in the data flow: exercises references -> engine on small random-weight rebuilds of
ChromBPNet, BPNet, Basset, DeepSEA and the CREsted zoo (``tests/zoo.py``). Each case is
scored in float64 and checked against Keras' own forward pass of a float64 copy of the model:
``delta`` must equal target(x) - target(ref_k) and the contributions must sum to it.

Cases whose model contains a layer the engine has no rule for yet are strict xfails
(``UnsupportedLayerError``): they turn into failures once the rule lands.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dnalift.deeplift import DeepLift  # noqa: E402
from dnalift.errors import UnsupportedLayerError  # noqa: E402
from dnalift.references import make_references  # noqa: E402

import zoo  # noqa: E402

MODES = ("rescale", "revealcancel", "genomics_default")
N, K = 3, 2
#: |residual| / max(1, |delta|) allowed in float64.
RESIDUAL_TOL = 1e-6
#: |delta - Keras delta| / max(1, |Keras delta|) allowed in float64.
DELTA_TOL = 1e-9


def _marks(case: zoo.Case) -> list:
    if case.needs is None:
        return []
    return [pytest.mark.xfail(raises=UnsupportedLayerError, strict=True,
                              reason=f"needs a {case.needs} rule")]


MATRIX = [pytest.param(case, mode, marks=_marks(case) + [zoo.xdist_group(case)],
                       id=f"{case.id}-{mode}")
          for case in zoo.CASES for mode in MODES]


@pytest.fixture
def models(built_models):
    """The session cache (tests/conftest.py): each architecture and its float64 engine per
    mode built once; the genomics_default engines are shared with tests/test_precision.py
    (same xdist group)."""
    return built_models


def _inputs(length: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random one-hot x ``(N, L, 4)`` and K dinucleotide shuffles ``(N, K, L, 4)``."""
    rng = np.random.default_rng(seed)
    x = np.eye(4, dtype="float32")[rng.integers(0, 4, (N, length))]
    return x, make_references("shuffle", x, k=K, seed=seed)


@pytest.mark.parametrize("case,mode", MATRIX)
def test_summation_to_delta(case, mode, models):
    model = models(case.arch, case.build)
    length = model.inputs[0].shape[1]
    x, refs = _inputs(length)
    # A job this short runs its step eagerly; the rescale engine is traced as a long job's
    # is, so every architecture is also checked through a tf.function graph.
    engine = models(zoo.engine_key(case, mode, "float64"), lambda: DeepLift(
        model, mode=mode, output=case.output, tasks=case.tasks, dtype="float64",
        trace=True if mode == "rescale" else None))
    att = engine.attribute(x, refs)
    assert engine.trace is (mode == "rescale")
    pred, want = zoo.keras_delta(model, x, refs, case.output, case.tasks)
    t = want.shape[1]
    assert att.hypothetical.shape == (N, t, length, 4) and att.actual.shape == (N, t, length)
    assert np.abs(want).max() > 1e-2, "degenerate model: the target barely moves"
    scale = np.maximum(1.0, np.abs(want))
    assert np.max(np.abs(att.delta - want) / scale) <= DELTA_TOL
    np.testing.assert_allclose(att.prediction, pred, rtol=0, atol=DELTA_TOL * scale.max())
    assert np.max(np.abs(att.residual) / scale) <= RESIDUAL_TOL
    # per-base contributions of the observed sequence sum to the mean delta over references
    np.testing.assert_allclose(att.actual.sum(-1), want.mean(-1), rtol=0,
                               atol=RESIDUAL_TOL * scale.max())
    if mode != "genomics_default":  # the mode's rule is applied to the nonlinearities
        assert any(mode in rule for rule in engine.rules.values()), engine.rules
