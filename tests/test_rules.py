"""DeepLIFT rules on tiny networks whose scores are derived by hand (float64).

Inputs are ``(N, L, C)`` with C = 1 channel, so per-position contributions are the paper's
per-input contributions, and with a zero reference ``hypothetical[..., 0]`` is the multiplier.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402

from dnalift.deeplift import DeepLift  # noqa: E402


def _dense(units, w, b=None, activation=None, name=None):
    """Dense layer with fixed weights ``w`` (inputs x units) and bias ``b``."""
    w = np.asarray(w, dtype="float32").reshape(-1, units)
    layer = layers.Dense(units, use_bias=b is not None, activation=activation, name=name)
    layer.build((None, w.shape[0]))
    layer.set_weights([w] if b is None else [w, np.asarray(b, "float32").reshape(units)])
    return layer


def _score(model, x, ref, mode="rescale", **kw):
    """Scores for one input ``x`` (L,) against one reference ``ref`` (L,), C = 1."""
    x = np.asarray(x, dtype="float64").reshape(1, -1, 1)
    r = np.asarray(ref, dtype="float64").reshape(1, 1, -1, 1)
    return DeepLift(model, mode=mode, dtype="float64", **kw).attribute(x, r)


def _flat_input(n):
    inp = keras.Input((n, 1))
    return inp, layers.Flatten()(inp)


def test_linear_paper_example():
    # y = 5 * (3 x1 + 4 x2): multipliers 15, 20; contributions 15, 40 against (0, 0).
    inp, h = _flat_input(2)
    out = _dense(1, [5.0])(_dense(1, [3.0, 4.0])(h))
    model = keras.Model(inp, out)
    for mode in ("rescale", "revealcancel", "genomics_default"):
        att = _score(model, [1, 2], [0, 0], mode)
        np.testing.assert_allclose(att.hypothetical[0, 0, :, 0], [15, 20])
        np.testing.assert_allclose(att.actual[0, 0], [15, 40])
        np.testing.assert_allclose(att.delta[0, 0], [55])
        np.testing.assert_allclose(att.residual, 0, atol=1e-12)


def _min_network():
    # o = i1 - relu(i1 - i2) = min(i1, i2)
    inp, f = _flat_input(2)
    h1 = _dense(1, [1.0, -1.0], name="h1")(f)
    h2 = layers.ReLU(name="h2")(h1)
    i1 = _dense(1, [1.0, 0.0], name="pick_i1")(f)
    return keras.Model(inp, layers.Subtract(name="o")([i1, h2]))


def test_min_network_rescale_vs_revealcancel():
    model = _min_network()
    att = _score(model, [3, 1], [0, 0], "rescale")
    np.testing.assert_allclose(att.actual[0, 0], [0.0, 1.0], atol=1e-12)
    att = _score(model, [3, 1], [0, 0], "revealcancel")
    np.testing.assert_allclose(att.actual[0, 0], [0.5, 0.5], atol=1e-12)
    # Hand-derived multipliers: i1: 1 - 2.5/3, i2: 0.5 (see rules.reveal_cancel_rule).
    np.testing.assert_allclose(att.hypothetical[0, 0, :, 0], [1 - 2.5 / 3, 0.5], atol=1e-12)
    # genomics_default: the ReLU follows a Dense layer -> RevealCancel.
    engine = DeepLift(model, mode="genomics_default", dtype="float64")
    assert engine.rules["h2"] == "revealcancel"
    assert engine.rules["h1"] == "linear"


def test_revealcancel_half_weight_where_input_difference_is_zero():
    # z = x1 + 2 x2 + x3 - 0.5, relu; x = (2, 0, -1) against 0: Δ+ = 2, Δ- = -1, z_r = -0.5.
    # Δy+ = ½·1.5 + ½·0.5 = 1, Δy- = ½·0 + ½·(0.5 - 1.5) = -0.5; m+ = 0.5, m- = 0.5.
    # x2 has Δ = 0: multiplier ½·w·m+ + ½·w·m- = 1.0 (the paper's 0.5 w rule).
    inp, f = _flat_input(3)
    model = keras.Model(inp, _dense(1, [1.0, 2.0, 1.0], [-0.5], activation="relu")(f))
    att = _score(model, [2, 0, -1], [0, 0, 0], "revealcancel")
    np.testing.assert_allclose(att.hypothetical[0, 0, :, 0], [0.5, 1.0, 0.5], atol=1e-12)
    np.testing.assert_allclose(att.actual[0, 0], [1.0, 0.0, -0.5], atol=1e-12)
    np.testing.assert_allclose(att.delta[0, 0], [0.5])


def test_saturation_example():
    # y = 1 - relu(1 - (x1 + x2)); x = (1, 1), ref 0: Δy = 1, but the gradient at x is 0.
    inp, f = _flat_input(2)
    h = _dense(1, [-1.0, -1.0], [1.0], activation="relu")(f)
    model = keras.Model(inp, _dense(1, [-1.0], [1.0])(h))
    grad = _score(model, [1, 1], [0, 0], "gradient_x_input")
    np.testing.assert_allclose(grad.actual[0, 0], [0.0, 0.0])
    for mode in ("rescale", "revealcancel"):
        att = _score(model, [1, 1], [0, 0], mode)
        np.testing.assert_allclose(att.actual[0, 0], [0.5, 0.5])
        np.testing.assert_allclose(att.actual.sum(), 1.0)


def test_threshold_example():
    # y = relu(x - 10), x = 11 against 0: Δy = 1; gradient x input says 11.
    inp, f = _flat_input(1)
    model = keras.Model(inp, _dense(1, [1.0], [-10.0], activation="relu")(f))
    assert _score(model, [11], [0], "gradient_x_input").actual[0, 0, 0] == pytest.approx(11)
    att = _score(model, [11], [0], "rescale")
    assert att.actual[0, 0, 0] == pytest.approx(1.0)
    assert att.hypothetical[0, 0, 0, 0] == pytest.approx(1 / 11)


def test_rescale_falls_back_to_gradient_where_delta_is_zero():
    # Both x and ref give z = 2 > 0: Δz = 0, the multiplier must be relu'(2) = 1 (not 0/0).
    inp, f = _flat_input(2)
    h = _dense(1, [1.0, 1.0], [2.0], activation="sigmoid")(f)
    model = keras.Model(inp, _dense(1, [1.0])(h))
    att = _score(model, [1, -1], [0, 0], "rescale")
    s = 1 / (1 + np.exp(-2.0))
    np.testing.assert_allclose(att.hypothetical[0, 0, :, 0], [s * (1 - s)] * 2, rtol=1e-6)


def _np_conv1d(x, k, stride, padding, dilation):
    """Explicit loop convolution of x (L, Cin) with k (W, Cin, Cout) -> (Lout, Cout)."""
    length, width = x.shape[0], k.shape[0]
    span = (width - 1) * dilation + 1
    if padding == "same":
        out_len = -(-length // stride)
        pad = max((out_len - 1) * stride + span - length, 0) // 2
    elif padding == "causal":
        out_len, pad = length, span - 1
    else:
        out_len, pad = (length - span) // stride + 1, 0
    out = np.zeros((out_len, k.shape[2]))
    for o in range(out_len):
        for w in range(width):
            p = o * stride - pad + w * dilation
            if 0 <= p < length:
                out[o] += x[p] @ k[w]
    return out


@pytest.mark.parametrize("padding,stride,dilation", [
    ("same", 1, 1), ("valid", 1, 1), ("valid", 2, 1), ("same", 3, 1), ("same", 1, 2),
    ("valid", 1, 3), ("causal", 1, 2)])
def test_conv1d_rescale_by_hand(padding, stride, dilation):
    rng = np.random.default_rng(stride * 10 + dilation)
    length, cin, cout, width = 11, 2, 3, 3
    conv = layers.Conv1D(cout, width, strides=stride, padding=padding, dilation_rate=dilation,
                         activation="relu")
    conv.build((None, length, cin))
    # float32-representable weights (the layer stores float32)
    k = rng.normal(size=(width, cin, cout)).astype("float32").astype("float64")
    b = rng.normal(size=cout).astype("float32").astype("float64")
    conv.set_weights([k, b])
    inp = keras.Input((length, cin))
    model = keras.Model(inp, layers.GlobalAveragePooling1D()(conv(inp)))
    x, r = rng.normal(size=(length, cin)), rng.normal(size=(length, cin))
    att = DeepLift(model, mode="rescale", dtype="float64").attribute(x[None], r[None, None])
    # By hand: per output unit m = Δrelu/Δz; the target averages units, so each input gets
    # sum over outputs o of m[o, f] * k[w, c, f] / Lout through every tap that reads it.
    zx, zr = _np_conv1d(x, k, stride, padding, dilation) + b, \
        _np_conv1d(r, k, stride, padding, dilation) + b
    m = (np.maximum(zx, 0) - np.maximum(zr, 0)) / (zx - zr)
    out_len = zx.shape[0]
    span = (width - 1) * dilation + 1
    pad = {"same": max((out_len - 1) * stride + span - length, 0) // 2,
           "causal": span - 1}.get(padding, 0)
    for f in range(cout):
        mult = np.zeros((length, cin))
        for o in range(out_len):
            for w in range(width):
                p = o * stride - pad + w * dilation
                if 0 <= p < length:
                    mult[p] += m[o, f] * k[w, :, f] / out_len
        np.testing.assert_allclose(att.hypothetical[0, f] + (mult * r).sum(1, keepdims=True),
                                   mult, atol=1e-10)
        np.testing.assert_allclose(att.actual[0, f], (mult * (x - r)).sum(1), atol=1e-10)
    np.testing.assert_allclose(att.residual, 0, atol=1e-10)


def _pool_model(pool_layer, n):
    """input (n, 1) -> pooling -> sum of the pooled values."""
    inp = keras.Input((n, 1))
    pooled = layers.Flatten()(pool_layer(inp))
    return keras.Model(inp, _dense(1, [1.0] * pooled.shape[-1])(pooled))


def test_maxpool_rules_by_hand():
    x, r = [1, 3, 2, 0], [2, 0, 0, 1]
    model = _pool_model(layers.MaxPooling1D(2), 4)
    # window 1: Δout = 3 - 2 = 1, Δ = (-1, 3): λ = (1 + 1)/(3 + 1) = 1/2 -> m = (1/2, 1/2)
    # window 2: Δout = 2 - 1 = 1, Δ = (2, -1): λ = (1 + 1)/(2 + 1) = 2/3 -> m = (2/3, 1/3)
    att = _score(model, x, r, "rescale")
    np.testing.assert_allclose(att.actual[0, 0], [-0.5, 1.5, 4 / 3, -1 / 3], atol=1e-12)
    np.testing.assert_allclose(att.residual, 0, atol=1e-12)
    # paper rule: all to the argmax of x -> m = (0, 1, 1, 0), contributions 3 + 2 != Δ = 2
    att = _score(model, x, r, "rescale", maxpool="gradient")
    np.testing.assert_allclose(att.actual[0, 0], [0, 3, 2, 0], atol=1e-12)
    np.testing.assert_allclose(att.residual[0, 0], [3.0], atol=1e-12)
    engine = DeepLift(model, mode="rescale", maxpool="gradient")
    assert "maxpool-gradient" in engine.rules.values()


def test_maxpool_same_padding_and_strides():
    # pool 3, stride 2, same padding on L = 5: windows [0,1], [1,2,3], [3,4] (pad 1 left)
    x, r = [0, 4, 1, 2, 5], [1, 0, 3, 0, 0]
    model = _pool_model(layers.MaxPooling1D(3, strides=2, padding="same"), 5)
    att = _score(model, x, r, "rescale")
    # w1: x max 4 @1, r max 1 @0, Δout 3, Δ(0)=-1, Δ(1)=4 -> λ=(3+1)/5=0.8: m1 += .8, m0 += .2
    # w2: x max 4 @1, r max 3 @2, Δout 1, Δ(1)=4, Δ(2)=-2 -> λ=(1+2)/6=.5: m1 += .5, m2 += .5
    # w3: x max 5 @4, r max 0 @3 (first of ties), Δout 5, Δ(4)=5, Δ(3)=2 -> λ=1: m4 += 1
    m = np.array([0.2, 1.3, 0.5, 0.0, 1.0])
    np.testing.assert_allclose(att.actual[0, 0], m * (np.array(x) - r), atol=1e-12)
    np.testing.assert_allclose(att.residual, 0, atol=1e-12)


def test_global_max_and_average_pooling():
    x, r = [1, 5, 2], [4, 0, 1]
    # global max: Δout = 5 - 4 = 1, Δ = (-3, 5, 1), i* = 1, j* = 0: λ = (1 + 3)/8 = 1/2
    att = _score(_pool_model(layers.GlobalMaxPooling1D(), 3), x, r, "rescale")
    np.testing.assert_allclose(att.actual[0, 0], [-1.5, 2.5, 0.0], atol=1e-12)
    att = _score(_pool_model(layers.GlobalAveragePooling1D(), 3), x, r, "rescale")
    np.testing.assert_allclose(att.hypothetical[0, 0, :, 0] + np.array(r) / 3, [1 / 3] * 3)
    att = _score(_pool_model(layers.AveragePooling1D(2), 4), [1, 2, 3, 4], [0, 0, 0, 0])
    np.testing.assert_allclose(att.hypothetical[0, 0, :, 0], [0.5] * 4)


def test_batchnorm_linear_and_revealcancel():
    inp, f = _flat_input(2)
    h = _dense(2, [[1.0, -2.0], [3.0, 1.0]])(f)
    bn = layers.BatchNormalization(epsilon=0.0, name="bn")
    bn.build((None, 2))
    gamma, beta, mean, var = [2.0, -1.0], [0.5, 0.0], [1.0, -1.0], [4.0, 1.0]
    bn.set_weights([np.array(v, "float32") for v in (gamma, beta, mean, var)])
    lin = keras.Model(inp, _dense(1, [1.0, 1.0])(bn(h)))
    # multipliers: W @ (gamma / sqrt(var)) = [[1, -2], [3, 1]] @ [1, -1] = [3, 2]
    att = _score(lin, [1, 2], [0, 0], "revealcancel")
    np.testing.assert_allclose(att.hypothetical[0, 0, :, 0], [3.0, 2.0])
    # Dense -> BN -> relu gets RevealCancel in genomics_default (through the BN)
    inp2, f2 = _flat_input(2)
    z = bn(_dense(2, [[1.0, -2.0], [3.0, 1.0]], name="d")(f2))
    model = keras.Model(inp2, _dense(1, [1.0, 1.0])(layers.ReLU(name="act")(z)))
    assert DeepLift(model).rules["act"] == "revealcancel"
    att = _score(model, [1, 2], [0, 0], "genomics_default")
    np.testing.assert_allclose(att.residual, 0, atol=1e-12)


def test_softmax_target_is_mean_normalised_logit():
    inp, f = _flat_input(2)
    model = keras.Model(inp, _dense(3, [[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]], [0.1, 0.2, 0.3],
                                    activation="softmax")(f))
    att = _score(model, [1, 2], [0, 0], "rescale")
    logits = np.array([1.1, 4.2, 6.3])
    np.testing.assert_allclose(att.prediction[0], logits - logits.mean(), rtol=1e-6)
    # multipliers of task 0: W[:, 0] - mean_j W[:, j]
    np.testing.assert_allclose(att.hypothetical[0, 0, :, 0], [1 - 1, 0 - 4 / 3], atol=1e-6)
