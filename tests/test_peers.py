"""dnalift against peer DeepLIFT tools on the same model, inputs and references.

The PyTorch rebuilds (``bench/peers.py``) must compute the same logits as the Keras models;
tangermeme's ``deep_lift_shap``, captum's ``DeepLiftShap`` and shap's ``DeepExplainer`` must
then agree with dnalift's Rescale scores (``maxpool="rescale"``, the peers' max-pool rule) to
1e-4 relative (``max |a - b| / max |b|``), for the hypothetical scores ``(N, L, 4)`` and the
actual per-base contributions ``(N, L)``. Skipped where torch / the peer is not installed
(``pip install -e ".[bench]"``). No timings here: speed is in ``bench/run_all.py``.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import peers  # noqa: E402

from dnalift.references import dinucleotide_shuffle_references  # noqa: E402

SIMULATED = ROOT / "data" / "simulated" / "model.h5"
TOL = 1e-4


def _one_hot(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    return np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, length))]


def _tricky_model(length: int = 101) -> "keras.Model":
    """Even kernel widths, dilation, residual Add, valid conv, cropping, overlapping max pool,
    flatten after pooling, global max pool, concatenation, Dense with tanh, sigmoid output."""
    keras.utils.set_random_seed(1)
    L = keras.layers
    inp = keras.Input((length, 4))
    h = L.Conv1D(8, 6, padding="same", activation="relu")(inp)
    r = L.Conv1D(8, 4, padding="same", dilation_rate=3, activation="relu")(h)
    h = L.Add()([h, r])
    h2 = L.Conv1D(8, 5, padding="valid", activation="elu")(h)
    h2 = L.Cropping1D((1, 2))(h2)
    pooled = L.Flatten()(L.MaxPooling1D(4, 3)(h2))
    g = L.GlobalMaxPooling1D()(h2)
    d = L.Dense(16, activation="tanh")(L.Concatenate()([pooled, g]))
    return keras.Model(inp, L.Dense(3, activation="sigmoid")(d))


def _pool_model(length: int = 120) -> "keras.Model":
    """Conv -> ReLU -> MaxPool (non-overlapping) -> Conv -> ReLU -> Flatten -> Dense (2 logits)."""
    keras.utils.set_random_seed(2)
    L = keras.layers
    inp = keras.Input((length, 4))
    h = L.Conv1D(12, 9, padding="same", activation="relu")(inp)
    h = L.MaxPooling1D(6)(h)
    h = L.Conv1D(8, 4, padding="same", activation="relu")(h)
    h = L.Dense(16, activation="relu")(L.Flatten()(h))
    return keras.Model(inp, L.Dense(2, activation="sigmoid")(h))


@pytest.fixture(scope="module")
def simulated_model():
    if not SIMULATED.exists():
        pytest.skip("data/simulated/model.h5 not shipped")
    return keras.saving.load_model(SIMULATED, compile=False)


# --------------------------------------------------------------------------------------------
# The rebuilds compute the Keras model's logits
# --------------------------------------------------------------------------------------------

def test_same_padding_matches_tensorflow_for_even_widths():
    assert peers.same_padding(4) == (1, 2)
    assert peers.same_padding(15) == (7, 7)
    assert peers.same_padding(4, dilation=3) == (4, 5)


@pytest.mark.parametrize("builder", [_tricky_model, _pool_model])
def test_rebuild_logits_equal_keras(builder):
    model = builder()
    x = _one_hot(np.random.default_rng(0), 16, model.input_shape[1])
    rebuilt = peers.torch_from_keras(model)
    logits = peers.torch_forward(rebuilt, x)
    expected = peers.keras_logits(model, x)
    assert logits.shape == expected.shape == (16, model.output_shape[-1])
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    # and with the final sigmoid applied, the Keras prediction itself
    probs = torch.sigmoid(torch.from_numpy(logits)).numpy()
    np.testing.assert_allclose(probs, model.predict(x, verbose=0), atol=1e-6)


def test_rebuild_of_simulated_model(simulated_model):
    x = _one_hot(np.random.default_rng(3), 32, simulated_model.input_shape[1])
    rebuilt = peers.torch_from_keras(simulated_model)
    np.testing.assert_allclose(peers.torch_forward(rebuilt, x),
                               peers.keras_logits(simulated_model, x), rtol=1e-5, atol=1e-5)


def test_flatten_order_is_keras_order():
    flat = peers.ChannelsLastFlatten()
    x = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(2, 3, 5)  # (N, C, L)
    keras_order = x.numpy().transpose(0, 2, 1).reshape(2, -1)         # (N, L, C) flattened
    np.testing.assert_array_equal(flat(x).numpy(), keras_order)


def test_hypothetical_projection_by_hand():
    # one position, multipliers m = (1, 2, 3, 4), reference = C: hyp[b] = m[b] - m[C] = m[b] - 2
    m = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    ref = np.array([[[0.0, 1.0, 0.0, 0.0]]])
    np.testing.assert_array_equal(peers.hypothetical_projection(m, ref), [[[-1, 0, 1, 2]]])


# --------------------------------------------------------------------------------------------
# Peers agree with each other and sum to delta
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pool_case():
    model = _pool_model()
    rng = np.random.default_rng(5)
    x = _one_hot(rng, 6, model.input_shape[1])
    refs = dinucleotide_shuffle_references(x, k=4, seed=0)
    return model, peers.torch_from_keras(model), x, refs


def _delta(rebuilt, x, refs, target):
    n, k = refs.shape[:2]
    fx = peers.torch_forward(rebuilt, x)[:, target]
    fr = peers.torch_forward(rebuilt, refs.reshape(n * k, *refs.shape[2:]))[:, target]
    return fx - fr.reshape(n, k).mean(axis=1)


def test_tangermeme_and_captum_agree_and_sum_to_delta(pool_case):
    pytest.importorskip("tangermeme")
    pytest.importorskip("captum")
    _, rebuilt, x, refs = pool_case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tg = peers.tangermeme_scores(rebuilt, x, refs, target=1, batch_size=8)
        cs = peers.captum_scores(rebuilt, x, refs, target=1)
        cp = peers.captum_paired_scores(rebuilt, x, refs, target=1, batch_size=8)
    assert tg.hypothetical.shape == (6, 120, 4) and tg.actual.shape == (6, 120)
    delta = _delta(rebuilt, x, refs, 1)
    assert np.abs(delta).max() > 0.1  # non-trivial case
    for scores in (tg, cs, cp):
        np.testing.assert_allclose(scores.actual.sum(axis=1), delta, atol=1e-4)
    assert peers.relative_error(cs.hypothetical, tg.hypothetical) < TOL
    assert peers.relative_error(cp.hypothetical, cs.hypothetical) < TOL


def test_shap_agrees_with_tangermeme(pool_case):
    """shap's DeepExplainer on the Keras model (TensorFlow graph rules) gives the same actual
    contributions as tangermeme on the torch rebuild."""
    pytest.importorskip("shap")
    pytest.importorskip("tangermeme")
    model, rebuilt, x, refs = pool_case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sh = peers.shap_scores(model, x[:3], refs[:3], target=1)
        tg = peers.tangermeme_scores(rebuilt, x[:3], refs[:3], target=1, batch_size=8)
    assert sh.hypothetical is None
    assert peers.relative_error(sh.actual, tg.actual) < TOL


# --------------------------------------------------------------------------------------------
# dnalift against the peers
# --------------------------------------------------------------------------------------------

def _nopool_model(length: int = 120, dilation: int = 2) -> "keras.Model":
    """No max pooling (the peers' own rules apply everywhere): conv, (dilated) even-width conv,
    average pooling, flatten, Dense ReLU, 2 logits behind a sigmoid."""
    keras.utils.set_random_seed(3)
    L = keras.layers
    inp = keras.Input((length, 4))
    h = L.Conv1D(12, 9, padding="same", activation="relu")(inp)
    h = L.Conv1D(8, 4, padding="same", dilation_rate=dilation, activation="relu")(h)
    h = L.Dense(16, activation="relu")(L.Flatten()(L.AveragePooling1D(4)(h)))
    return keras.Model(inp, L.Dense(2, activation="sigmoid")(h))


def _case(model, seed):
    x = _one_hot(np.random.default_rng(seed), 6, model.input_shape[1])
    return model, peers.torch_from_keras(model), x, dinucleotide_shuffle_references(x, k=4, seed=0)


@pytest.fixture(scope="module")
def nopool_case():
    return _case(_nopool_model(), 6)


@pytest.fixture(scope="module")
def undilated_case():
    """shap's TensorFlow rules have no entry for the SpaceToBatchND / BatchToSpaceND ops that
    dilated convolutions compile to, so shap is compared on an undilated model."""
    return _case(_nopool_model(dilation=1), 8)


def _dnalift(model, x, refs, target, maxpool="rescale"):
    deeplift = pytest.importorskip("dnalift.deeplift")
    engine = deeplift.DeepLift(model, mode="rescale", maxpool=maxpool, tasks=[target],
                               batch_size=64)
    att = engine.attribute(x, refs)
    assert att.hypothetical.shape == (len(x), 1) + x.shape[1:]
    return att.hypothetical[:, 0], att.actual[:, 0]


def _peer(peer, model, rebuilt, x, refs, target, maxpool=None):
    pytest.importorskip(peer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if peer == "tangermeme":
            return peers.tangermeme_scores(rebuilt, x, refs, target=target, batch_size=8,
                                           maxpool=maxpool)
        if peer == "captum":
            return peers.captum_scores(rebuilt, x, refs, target=target)
        return peers.shap_scores(model, x, refs, target=target)


@pytest.mark.parametrize("peer", ["tangermeme", "captum", "shap"])
def test_dnalift_rescale_matches_peer_without_maxpool(nopool_case, undilated_case, peer):
    """Rescale rule, hypothetical projection and reference averaging agree with each peer's
    own implementation (shap: actual contributions only)."""
    model, rebuilt, x, refs = undilated_case if peer == "shap" else nopool_case
    hyp, actual = _dnalift(model, x, refs, target=1)
    other = _peer(peer, model, rebuilt, x, refs, target=1)
    assert peers.relative_error(actual, other.actual) < TOL
    if other.hypothetical is not None:
        assert peers.relative_error(hyp, other.hypothetical) < TOL


@pytest.mark.parametrize("maxpool", ["rescale", "gradient"])
def test_dnalift_maxpool_rules_match_tangermeme_with_same_rule(pool_case, maxpool):
    """Max-pool models: tangermeme running torch versions of dnalift's two max-pool rules
    (its ``additional_nonlinear_ops``) agrees with dnalift's ``maxpool=`` of the same name."""
    model, rebuilt, x, refs = pool_case
    hyp, actual = _dnalift(model, x, refs, target=1, maxpool=maxpool)
    other = _peer("tangermeme", model, rebuilt, x, refs, target=1, maxpool=maxpool)
    assert peers.relative_error(hyp, other.hypothetical) < TOL
    assert peers.relative_error(actual, other.actual) < TOL


def test_peer_maxpool_rule_is_not_dnalift_rescale(pool_case):
    """The peers' own max-pool rule (everything to the argmax of input or reference) and
    dnalift's maxpool="rescale" (split between both argmaxes) both sum to delta but differ, which
    is why max-pool models are compared through the plugged-in rule above."""
    model, rebuilt, x, refs = pool_case
    _, actual = _dnalift(model, x, refs, target=1)
    native = _peer("tangermeme", model, rebuilt, x, refs, target=1)
    np.testing.assert_allclose(actual.sum(axis=1), native.actual.sum(axis=1), atol=1e-4)
    assert peers.relative_error(actual, native.actual) > 1e-3


def test_dnalift_matches_tangermeme_on_simulated_model(simulated_model):
    x = _one_hot(np.random.default_rng(7), 4, simulated_model.input_shape[1])
    refs = dinucleotide_shuffle_references(x, k=5, seed=1)
    rebuilt = peers.torch_from_keras(simulated_model)
    for target in range(simulated_model.output_shape[-1]):
        hyp, actual = _dnalift(simulated_model, x, refs, target)
        other = _peer("tangermeme", simulated_model, rebuilt, x, refs, target, maxpool="rescale")
        assert peers.relative_error(hyp, other.hypothetical) < TOL
        assert peers.relative_error(actual, other.actual) < TOL


def test_shap_failure_on_dilated_conv_leaves_tensorflow_usable(nopool_case):
    """shap's DeepExplainer cannot differentiate dilated convolutions (no rule for
    BatchToSpaceND); the runner must put TensorFlow's gradient recorder back so dnalift still
    works in the same process afterwards."""
    pytest.importorskip("shap")
    model, _, x, refs = nopool_case
    with pytest.raises(Exception, match="BatchToSpaceND|SpaceToBatchND"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peers.shap_scores(model, x[:2], refs[:2], target=1)
    hyp, actual = _dnalift(model, x[:2], refs[:2], target=1)
    assert np.isfinite(hyp).all() and np.abs(actual).max() > 0
