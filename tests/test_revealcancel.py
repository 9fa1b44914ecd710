"""RevealCancel after pooling and chained linear layers (float64).

The paper's linear rule defines Δy+ / Δy- of a weight layer from ITS OWN input differences:
Δy+ = Σ_i 1{w_i Δx_i > 0} w_i Δx_i, Δy- likewise (multiplier 0.5 w where Δx_i = 0). Average
pooling, Flatten and BatchNormalization between two weight layers do not change that. Values
below are derived by hand (reference 0, so ``hypothetical[..., 0]`` is the multiplier); the last
test compares the engine with an independent numpy implementation of the paper's rules.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402

from dnalift.deeplift import DeepLift  # noqa: E402
from dnalift.references import frequency_references  # noqa: E402

MODES = ("revealcancel", "genomics_default")


def _dense(units, w, b=None, activation=None):
    """Dense layer with fixed weights ``w`` (inputs x units) and bias ``b``."""
    w = np.asarray(w, dtype="float64").reshape(-1, units)
    layer = layers.Dense(units, use_bias=b is not None, activation=activation)
    layer.build((None, w.shape[0]))
    layer.set_weights([w] if b is None else [w, np.asarray(b).reshape(units)])
    return layer


def _check(model, x, want_multipliers, mode):
    """Scores of ``x`` (L,) against 0 (C = 1): multipliers and contributions as derived."""
    x = np.asarray(x, dtype="float64")
    att = DeepLift(model, mode=mode, dtype="float64").attribute(
        x.reshape(1, -1, 1), np.zeros((1, 1, x.size, 1)))
    np.testing.assert_allclose(att.hypothetical[0, 0, :, 0], want_multipliers, atol=1e-12)
    np.testing.assert_allclose(att.actual[0, 0], np.multiply(want_multipliers, x), atol=1e-12)
    np.testing.assert_allclose(att.residual, 0, atol=1e-12)        # sums to delta
    return att


@pytest.mark.parametrize("mode", MODES)
def test_average_pool_of_mixed_signs_feeding_a_dense_unit(mode):
    # x = (3, -1, -2, 0), ref 0 -> AveragePooling1D(2): Δp = (1, -1);
    # relu(2 p1 + p2 - 1): z_r = -1, Δz = 2 - 1 = 1, z_x = 0, Δy = relu(0) - relu(-1) = 0.
    # The Dense unit's own terms: w1 Δp1 = 2 > 0, w2 Δp2 = -1 < 0 -> Δ+ = 2, Δ- = -1.
    # Δy+ = ½[relu(1) - relu(-1)] + ½[relu(0) - relu(-2)] = 0.5,  m+ = 0.5 / 2 = 0.25
    # Δy- = ½[relu(-2) - relu(-1)] + ½[relu(0) - relu(1)] = -0.5, m- = -0.5 / -1 = 0.5
    # multiplier of p1 = w1 m+ = 0.5, of p2 = w2 m- = 0.5; through the average: / 2 -> 0.25.
    # (The old engine carried magnitudes through the pool: A = |w|·pool|Δx| = 2·2 + 1·1 = 5,
    # Δ± = (1 ± 5)/2 = 3, -2, m+ = 1/3, m- = 1/2 -> multipliers (1/3, 1/2, 1/4, 5/24).)
    inp = keras.Input((4, 1))
    pooled = layers.Flatten()(layers.AveragePooling1D(2)(inp))
    model = keras.Model(inp, _dense(1, [2.0, 1.0], [-1.0], activation="relu")(pooled))
    att = _check(model, [3, -1, -2, 0], [0.25, 0.25, 0.25, 0.25], mode)
    np.testing.assert_allclose(att.actual[0, 0], [0.75, -0.25, -0.5, 0.0], atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_global_average_pool_feeding_dense_relu(mode):
    # x = (4, -1, -6), ref 0 -> GlobalAveragePooling1D: Δp = -1; relu(-2 p): z_r = 0, z_x = 2.
    # Own term w Δp = 2 > 0 -> Δ+ = 2, Δ- = 0.
    # Δy+ = ½[relu(2) - relu(0)] + ½[relu(2) - relu(0)] = 2, m+ = 1;
    # Δ- = 0: m- = ½(relu'(0) + relu'(2)) = 0.5 (unused: nothing is negative).
    # multiplier of p = w m+ = -2; of each input -2/3; contributions (-8/3, 2/3, 4), sum 2 = Δy.
    # (Old: A = |w| mean|Δx| = 22/3, Δ± = 14/3, -8/3, m+ = 5/7, m- = 1/2 -> multipliers
    # (-1/3, -10/21, -10/21).)
    inp = keras.Input((3, 1))
    model = keras.Model(inp, _dense(1, [-2.0], [0.0], activation="relu")(
        layers.GlobalAveragePooling1D()(inp)))
    _check(model, [4, -1, -6], [-2 / 3] * 3, mode)


@pytest.mark.parametrize("mode", MODES)
def test_linear_dense_feeding_dense_relu(mode):
    # x = (1, 2), ref 0; h = (x1 - x2, x1 + x2): Δh = (-1, 3); relu(2 h1 + h2 - 2):
    # z_r = -2, Δz = 1, z_x = -1, Δy = 0. Own terms: 2·(-1) = -2, 1·3 = 3 -> Δ+ = 3, Δ- = -2.
    # Δy+ = ½[relu(1) - relu(-2)] + ½[relu(-1) - relu(-4)] = 0.5,  m+ = 1/6
    # Δy- = ½[relu(-4) - relu(-2)] + ½[relu(-1) - relu(1)] = -0.5, m- = 1/4
    # multipliers of h: h1 (negative term) 2·1/4 = 1/2, h2 (positive) 1·1/6 = 1/6;
    # of x: x1 = 1/2 + 1/6 = 2/3, x2 = -1/2 + 1/6 = -1/3; contributions (2/3, -2/3).
    # (Old: A = |w2|·|W1|·|Δx| = 9, Δ± = 5, -4 -> multipliers (0.9, -0.45).)
    inp = keras.Input((2, 1))
    h = _dense(2, [[1.0, 1.0], [-1.0, 1.0]])(layers.Flatten()(inp))
    model = keras.Model(inp, _dense(1, [2.0, 1.0], [-2.0], activation="relu")(h))
    _check(model, [1, 2], [2 / 3, -1 / 3], mode)


@pytest.mark.parametrize("mode", MODES)
def test_batchnorm_with_negative_scale_swaps_positive_and_negative_parts(mode):
    # x = (1, 2), ref 0; h = x1 - x2: own terms 1 (+), -2 (-) -> Δh+ = 1, Δh- = -2.
    # BN scale gamma/sqrt(var) = -2, beta 0: Δz+ = -2·Δh- = 4, Δz- = -2·Δh+ = -2 (swapped);
    # relu: z_r = 0, z_x = 2, Δy = 2.
    # Δy+ = ½[relu(4) - relu(0)] + ½[relu(2) - relu(-2)] = 3, m+ = 3/4
    # Δy- = ½[relu(-2) - relu(0)] + ½[relu(2) - relu(4)] = -1, m- = 1/2
    # x1 (positive term of h, hence in Δz-): 1·(-2)·m- = -1;
    # x2 (negative term of h, hence in Δz+): (-1)·(-2)·m+ = 3/2; contributions (-1, 3).
    inp = keras.Input((2, 1))
    bn = layers.BatchNormalization(epsilon=0.0)
    bn.build((None, 1))
    bn.set_weights([np.array([v]) for v in (-2.0, 0.0, 0.0, 1.0)])
    h = bn(_dense(1, [1.0, -1.0])(layers.Flatten()(inp)))
    model = keras.Model(inp, layers.ReLU()(h))
    _check(model, [1, 2], [-1.0, 1.5], mode)


# --------------------------------------------------------------------------- independent
def _conv_matrix(kernel, length):
    """Valid Conv1D kernel (W, C, F) as a matrix (length·C, (length-W+1)·F) on flat inputs."""
    width, c, f = kernel.shape
    out = length - width + 1
    m = np.zeros((length * c, out * f))
    for o in range(out):
        for w in range(width):
            m[(o + w) * c:(o + w + 1) * c, o * f:(o + 1) * f] = kernel[w]
    return m


def _pool_matrix(length, channels, p):
    """AveragePooling1D(p) (valid, stride p) on flat (length·channels) as a matrix."""
    out = length // p
    m = np.zeros((length * channels, out * channels))
    for o in range(out):
        for i in range(o * p, o * p + p):
            m[i * channels:(i + 1) * channels, o * channels:(o + 1) * channels] = np.eye(
                channels) / p
    return m


def _relu_multipliers(zx, zr, dp, dn, eps=1e-9):
    """The paper's RevealCancel m+ = Δy+/Δ+, m- = Δy-/Δ- for relu (average slope at Δ± ~ 0)."""
    f = lambda z: np.maximum(z, 0.0)  # noqa: E731
    dyp = 0.5 * (f(zr + dp) - f(zr)) + 0.5 * (f(zx) - f(zr + dn))
    dyn = 0.5 * (f(zr + dn) - f(zr)) + 0.5 * (f(zx) - f(zr + dp))
    limit = 0.5 * ((zr > 0) * 1.0 + (zx > 0) * 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.where(np.abs(dp) < eps, limit, dyp / dp),
                np.where(np.abs(dn) < eps, limit, dyn / dn))


def _linear_relu_back(w, b, ax, ar, g, reveal_cancel):
    """Multipliers on the input of ``relu(a W + b)`` from the multipliers ``g`` on its output.

    Rescale: g·Δy/Δz through W. RevealCancel: Δ± from the layer's own terms w_ij Δa_i;
    the input gets w_ij m± by the sign of its term (½(m+ + m-) w_ij where Δa_i = 0).
    """
    zx, zr = ax @ w + b, ar @ w + b
    da = ax - ar
    if not reveal_cancel:
        dz = zx - zr
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.where(np.abs(dz) < 1e-9, (zx > 0) * 1.0,
                         (np.maximum(zx, 0) - np.maximum(zr, 0)) / dz)
        return w @ (g * m)
    terms = w * da[:, None]
    mp, mn = _relu_multipliers(zx, zr, np.where(terms > 0, terms, 0).sum(0),
                               np.where(terms < 0, terms, 0).sum(0))
    sel = np.where(da[:, None] == 0, 0.5 * (mp + mn), np.where(terms > 0, mp, mn))
    return (w * sel) @ g


def _numpy_scores(weights, x, ref, p, conv_reveal_cancel):
    """Conv1D(relu) -> AveragePooling1D(p) -> Flatten -> Dense(relu) -> Dense logits."""
    kernel, b1, w3, b3, w4, b4 = weights
    length = x.shape[0]
    conv = _conv_matrix(kernel, length)
    pool = _pool_matrix(length - kernel.shape[0] + 1, kernel.shape[2], p)
    b1 = np.tile(b1, length - kernel.shape[0] + 1)
    xs, rs = x.reshape(-1), ref.reshape(-1)
    fx, fr = np.maximum(xs @ conv + b1, 0) @ pool, np.maximum(rs @ conv + b1, 0) @ pool
    hyp, actual = [], []
    for t in range(w4.shape[1]):
        g = _linear_relu_back(w3, b3, fx, fr, w4[:, t], reveal_cancel=True)   # dense relu
        g = _linear_relu_back(conv, b1, xs, rs, pool @ g, conv_reveal_cancel).reshape(x.shape)
        hyp.append(g - (g * ref).sum(-1, keepdims=True))
        actual.append((g * (x - ref)).sum(-1))
    return np.stack(hyp), np.stack(actual)


def _users_model(p, seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((30, 4)), layers.Conv1D(8, 7, activation="relu"),
                              layers.AveragePooling1D(p), layers.Flatten(),
                              layers.Dense(10, activation="relu"),
                              layers.Dense(3, activation="sigmoid")])
    rng = np.random.default_rng(seed)
    weights = [rng.normal(scale=0.5, size=w.shape) for w in model.get_weights()]
    model.set_weights(weights)
    return model, [w.astype("float32").astype("float64") for w in weights]


def deviations(p, mode, seed=0, n=4):
    """Largest |engine - numpy| of hypothetical and actual scores, relative to their maximum."""
    model, weights = _users_model(p, seed)
    rng = np.random.default_rng(100 + seed)
    x = np.eye(4)[rng.integers(0, 4, (n, 30))]
    refs = frequency_references(x, (0.3, 0.2, 0.2, 0.3)).astype("float64")
    att = DeepLift(model, mode=mode, dtype="float64").attribute(x, refs)
    assert np.abs(att.residual).max() < 1e-9
    want = [_numpy_scores(weights, x[i], refs[i, 0], p, mode == "revealcancel")
            for i in range(n)]
    hyp, actual = np.stack([w[0] for w in want]), np.stack([w[1] for w in want])
    return (np.abs(att.hypothetical - hyp).max() / np.abs(hyp).max(),
            np.abs(att.actual - actual).max() / np.abs(actual).max())


@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("mode", MODES)
def test_conv_avgpool_dense_matches_independent_numpy(p, mode):
    hyp_dev, actual_dev = deviations(p, mode)
    assert hyp_dev <= 1e-6 and actual_dev <= 1e-6, (hyp_dev, actual_dev)
