"""Engine rules for the layers real models use: transposed convolutions, products (gating),
TimeDistributed, Dense on 3-D inputs, EinsumDense; and classification of only the scored head.

Place in the data flow: exercises the engine (model -> DeepLift -> Attribution) on tiny
networks in float64. Hand-derived values use C = 1 channel and a zero reference, so
``hypothetical[..., 0]`` is the multiplier and ``actual`` the contribution of each input.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402

from dnalift.deeplift import DeepLift  # noqa: E402
from dnalift.engine.affine import einsum_is_plain  # noqa: E402
from dnalift.errors import UnsupportedLayerError  # noqa: E402

import zoo  # noqa: E402

MODES = ("rescale", "revealcancel", "genomics_default")


def _set(layer, shape, *weights):
    """Build ``layer`` for input ``shape`` (without batch) and give it ``weights``."""
    layer.build((None,) + tuple(shape))
    layer.set_weights([np.asarray(w, dtype=layer.dtype) for w in weights])
    return layer


def _score(model, x, ref=None, mode="rescale"):
    """Scores of ``x`` ``(L,)`` (C = 1) against ``ref`` (default 0), float64."""
    x = np.asarray(x, dtype="float64").reshape(1, -1, 1)
    r = np.zeros((1, 1) + x.shape[1:]) if ref is None else \
        np.asarray(ref, dtype="float64").reshape(1, 1, -1, 1)
    return DeepLift(model, mode=mode, dtype="float64").attribute(x, r)


def _random_model(model, seed, scale=0.5):
    """``model`` with N(0, scale²) weights (in place)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=scale, size=w.shape) for w in model.get_weights()])
    return model


def _onehot(seed, n=4, length=12, k=3):
    """Random one-hot x ``(n, L, 4)`` and references ``(n, K, L, 4)``."""
    rng = np.random.default_rng(seed)
    eye = np.eye(4)
    return eye[rng.integers(0, 4, (n, length))], eye[rng.integers(0, 4, (n, k, length))]


def _sums_to_delta(model, x, refs, mode, output=None, tasks=None):
    """Score in float64; check delta against Keras' own float64 forward pass (of a copy of the
    model) and summation to delta."""
    att = DeepLift(model, mode=mode, dtype="float64", output=output, tasks=tasks
                   ).attribute(x, refs)
    _, want = zoo.keras_delta(model, x, refs, output, tasks)
    np.testing.assert_allclose(att.delta, want, atol=1e-9)
    assert np.abs(att.residual).max() <= 1e-9 * max(1.0, np.abs(want).max())
    return att


# --------------------------------------------------------------------------- transposed conv
@pytest.mark.parametrize("mode", MODES)
def test_conv1d_transpose_stride_two_by_hand(mode):
    # x = (1, -2), ref 0; Conv1DTranspose(1, 2, strides=2), kernel (2, -1), bias 0.5:
    # z = (2·1, -1·1, 2·(-2), -1·(-2)) + 0.5 = (2.5, -0.5, -3.5, 2.5), z_r = 0.5 everywhere;
    # relu: Δy = (2, -0.5, -0.5, 2), Δz = (2, -1, -4, 2) -> Rescale m = (1, 0.5, 0.125, 1).
    # Sum over the 4 outputs (Dense of ones). Multiplier of x1 = 2·1 + (-1)·0.5 = 1.5,
    # of x2 = 2·0.125 + (-1)·1 = -0.75; contributions (1.5, 1.5) sum to Δ = 3.
    # RevealCancel: each relu input has one term (w x_i), so Δz+ or Δz- is the whole Δz and
    # the other is 0: m = ½[f(z_r + Δz) - f(z_r)] + ½[f(z_x) - f(z_r)] over Δz = Rescale's.
    inp = keras.Input((2, 1))
    t = _set(layers.Conv1DTranspose(1, 2, strides=2, activation="relu"), (2, 1),
             np.array([2.0, -1.0]).reshape(2, 1, 1), [0.5])(inp)
    out = _set(layers.Dense(1, use_bias=False), (4,), np.ones((4, 1)))(layers.Flatten()(t))
    att = _score(keras.Model(inp, out), [1, -2], mode=mode)
    np.testing.assert_allclose(att.hypothetical[0, 0, :, 0], [1.5, -0.75], atol=1e-12)
    np.testing.assert_allclose(att.actual[0, 0], [1.5, 1.5], atol=1e-12)
    np.testing.assert_allclose(att.delta, [[[3.0]]], atol=1e-12)


def _conv_then_head(first, seed):
    """one-hot (12, 4) -> ``first`` (relu) -> Flatten -> Dense(8, relu) -> Dense(2)."""
    inp = keras.Input((12, 4))
    h = layers.Flatten()(first(inp))
    out = layers.Dense(2)(layers.Dense(8, activation="relu")(h))
    return keras.Model(inp, out)


@pytest.mark.parametrize("mode", MODES)
def test_conv1d_transpose_equals_the_equivalent_convolution(mode):
    # A stride-1 "valid" transposed convolution with kernel K (k, out, in) is a "valid"
    # Conv1D of the input zero-padded by k - 1 on both sides, with the flipped kernel
    # W[j, c_in, c_out] = K[k - 1 - j, c_out, c_in]: same function, so the same scores.
    tmodel = _random_model(_conv_then_head(
        lambda t: layers.Conv1DTranspose(3, 4, activation="relu", name="c")(t), 0), 0)
    kernel, bias = tmodel.get_layer("c").get_weights()
    cmodel = _conv_then_head(lambda t: layers.Conv1D(3, 4, activation="relu", name="c")(
        layers.ZeroPadding1D(3)(t)), 0)
    cmodel.set_weights([kernel[::-1].transpose(0, 2, 1), bias] + tmodel.get_weights()[2:])
    x, refs = _onehot(1)
    a = _sums_to_delta(tmodel, x, refs, mode)
    b = _sums_to_delta(cmodel, x, refs, mode)
    np.testing.assert_allclose(a.hypothetical, b.hypothetical, atol=1e-12)
    assert DeepLift(tmodel, mode=mode).rules["c"] == DeepLift(cmodel, mode=mode).rules["c"]


@pytest.mark.parametrize("mode", MODES)
def test_conv2d_transpose_profile_head_sums_to_delta(mode):
    # BPNet's DeConv1D: Reshape (L, 1, C) -> Conv2DTranspose((k, 1), strides (2, 1)) -> Reshape
    inp = keras.Input((12, 4))
    h = layers.Conv1D(4, 3, padding="same", activation="relu")(inp)
    h = layers.Reshape((12, 1, 4))(h)
    h = layers.Conv2DTranspose(2, (5, 1), strides=(2, 1), padding="same")(h)
    model = _random_model(keras.Model(inp, layers.Reshape((-1, 2))(h)), 2)
    x, refs = _onehot(3)
    att = _sums_to_delta(model, x, refs, mode, tasks=[0, 7, 31])
    assert att.delta.shape == (4, 3, 3)


# --------------------------------------------------------------------------- scored head only
def test_only_the_scored_head_is_classified():
    # An unsupported layer (LSTM) in another head does not block scoring this one; scoring
    # the head that uses it names it.
    inp = keras.Input((12, 4))
    body = layers.Conv1D(4, 3, activation="relu", name="body")(inp)
    counts = layers.Dense(1, name="counts")(layers.GlobalAveragePooling1D()(body))
    other = layers.Dense(1, name="other")(layers.LSTM(2, name="rnn")(body))
    model = _random_model(keras.Model(inp, [counts, other]), 4)
    x, refs = _onehot(5)
    engine = DeepLift(model, output="counts")
    assert "rnn" not in engine.rules and "body" in engine.rules
    _sums_to_delta(keras.Model(inp, counts), x, refs, "rescale", output="counts")
    with pytest.raises(UnsupportedLayerError, match="'rnn' of type LSTM"):
        DeepLift(model, output="other")


# --------------------------------------------------------------------------- product rule
def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _two_inputs():
    inp = keras.Input((2, 1))
    return inp, layers.Flatten()(inp)


def _gate_model():
    # a = relu(x1 - 0.5 x2), b = sigmoid(x1 + x2), out = a * b
    inp, f = _two_inputs()
    a = _set(layers.Dense(1, activation="relu", use_bias=False), (2,), [[1.0], [-0.5]])(f)
    b = _set(layers.Dense(1, activation="sigmoid", use_bias=False), (2,), [[1.0], [1.0]])(f)
    return keras.Model(inp, layers.Multiply()([a, b]))


def test_gate_rescale_by_hand():
    # x = (2, 1), ref 0: a_x = relu(1.5) = 1.5, a_r = 0, Δa = 1.5; b_x = σ(3), b_r = σ(0) = ½.
    # Δ(ab) = 1.5 σ(3) - 0. Product rule: multiplier of a = ½(b_x + b_r) = ½(σ(3) + ½),
    # of b = ½(a_x + a_r) = 0.75. Rescale: relu m = 1.5 / 1.5 = 1; sigmoid m = (σ(3) - ½) / 3.
    # x1: 1·1·½(σ(3) + ½) + 1·0.75(σ(3) - ½)/3 = ¾σ(3) + ⅛
    # x2: -½·½(σ(3) + ½) + 1·0.75(σ(3) - ½)/3 = -¼
    # contributions (2(¾σ(3) + ⅛), -¼) sum to 1.5 σ(3) = Δ.
    s3 = _sigmoid(3.0)
    att = _score(_gate_model(), [2, 1], mode="rescale")
    np.testing.assert_allclose(att.hypothetical[0, 0, :, 0], [0.75 * s3 + 0.125, -0.25],
                               atol=1e-12)
    np.testing.assert_allclose(att.actual[0, 0], [1.5 * s3 + 0.25, -0.25], atol=1e-12)
    np.testing.assert_allclose(att.delta, [[[1.5 * s3]]], atol=1e-12)
    np.testing.assert_allclose(att.residual, 0, atol=1e-12)


@pytest.mark.parametrize("mode", ["revealcancel", "genomics_default"])
def test_gate_revealcancel_by_hand(mode):
    # a's own terms (x = (2, 1), ref 0): 1·2 = 2 > 0, -0.5·1 = -0.5 < 0 -> Δ+ = 2, Δ- = -0.5,
    # z_r = 0, z_x = 1.5. Δa+ = ½[relu(2) - relu(0)] + ½[relu(1.5) - relu(-0.5)] = 1.75,
    # m+ = 0.875; Δa- = ½[relu(-0.5) - relu(0)] + ½[relu(1.5) - relu(2)] = -0.25, m- = 0.5.
    # b's terms 2, 1 are both positive: Δ+ = 3, Δ- = 0, m+ = (σ(3) - ½)/3 (= Rescale's).
    # Product multipliers as in Rescale: a: ½(σ(3) + ½), b: 0.75.
    # x1: 1·0.875·½(σ(3) + ½) + 1·0.75(σ(3) - ½)/3 = 0.6875 σ(3) + 0.09375
    # x2: -0.5·0.5·½(σ(3) + ½) + 1·0.75(σ(3) - ½)/3 = 0.125 σ(3) - 0.1875
    # contributions 2·x1 + 1·x2 = 1.5 σ(3) = Δ. (genomics_default: both follow a Dense.)
    s3 = _sigmoid(3.0)
    att = _score(_gate_model(), [2, 1], mode=mode)
    np.testing.assert_allclose(att.hypothetical[0, 0, :, 0],
                               [0.6875 * s3 + 0.09375, 0.125 * s3 - 0.1875], atol=1e-12)
    np.testing.assert_allclose(att.actual[0, 0].sum(), 1.5 * s3, atol=1e-12)
    np.testing.assert_allclose(att.residual, 0, atol=1e-12)


def _linear_factor(w, b):
    """Dense(1) with weights ``w`` (2,) and bias ``b`` on the flattened 2-input."""
    return _set(layers.Dense(1), (2,), np.reshape(w, (2, 1)), [b])


@pytest.mark.parametrize("how", ["layer", "op"])
def test_product_of_three_factors_by_hand(how):
    # a = x1 + 1, b = 2 x2 - 3, c = x1 - x2 + 1; x = (2, 1), ref (1, -1), Δx = (1, 2):
    # a: 3 / 2, b: -1 / -5, c: 2 / 3 (at x / at ref). Left fold: p = a b: p_x = -3,
    # p_r = -10, Δp = ½(a_x + a_r)Δb + ½(b_x + b_r)Δa = 2.5·4 + (-3)·1 = 7 (= -3 + 10);
    # Δ(p c) = ½(p_x + p_r)Δc + ½(c_x + c_r)Δp = -6.5·(-1) + 2.5·7 = 24 (= -6 + 30).
    # Multipliers: c -6.5, p 2.5 -> a 2.5·(-3) = -7.5, b 2.5·2.5 = 6.25.
    # x1 = 1·(-7.5) + 1·(-6.5) = -14; x2 = 2·6.25 + (-1)·(-6.5) = 19; contributions
    # (-14, 38) sum to 24.
    inp, f = _two_inputs()
    a, b, c = (_linear_factor(w, bias)(f) for w, bias in
               (([1, 0], 1.0), ([0, 2], -3.0), ([1, -1], 1.0)))
    out = layers.Multiply()([a, b, c]) if how == "layer" else \
        keras.ops.multiply(keras.ops.multiply(a, b), c)
    for mode in MODES:
        att = _score(keras.Model(inp, out), [2, 1], [1, -1], mode=mode)
        np.testing.assert_allclose(att.actual[0, 0] / [1, 2], [-14, 19], atol=1e-12)
        np.testing.assert_allclose(att.delta, [[[24]]], atol=1e-12)
        np.testing.assert_allclose(att.residual, 0, atol=1e-12)


def test_square_and_constant_factor_ops():
    # keras.ops.multiply(a, a): Δ(a²) = ½(a_x + a_r)Δa·2 = (a_x + a_r)Δa. a = x1 + 1,
    # x = (2, 1), ref 0: a_x = 3, a_r = 1, Δ = 9 - 1 = 8; multiplier of x1 = 3 + 1 = 4.
    # Times the constant -2 (one tensor argument: linear): -8, multipliers (-8, 0).
    inp, f = _two_inputs()
    a = _linear_factor([1, 0], 1.0)(f)
    model = keras.Model(inp, keras.ops.multiply(keras.ops.multiply(a, a), -2.0))
    for mode in MODES:
        att = _score(model, [2, 1], mode=mode)
        np.testing.assert_allclose(att.hypothetical[0, 0, :, 0], [-8, 0], atol=1e-12)
        np.testing.assert_allclose(att.delta, [[[-16]]], atol=1e-12)
        np.testing.assert_allclose(att.residual, 0, atol=1e-12)


def test_revealcancel_after_a_product_splits_its_output_by_sign():
    # relu(a * b) with no weight layer in between: the product output splits its own Δ by
    # sign, so one of Δ± is Δ and the other 0, and RevealCancel's m = Δy/Δ equals Rescale.
    inp, f = _two_inputs()
    a = _linear_factor([1, -2], 0.5)(f)
    b = _linear_factor([0.5, 1], -1.0)(f)
    model = keras.Model(inp, layers.ReLU()(layers.Multiply()([a, b])))
    for x in ([2, 1], [-1, 3], [0.5, -2]):
        rc, rs = (_score(model, x, [0.3, -0.2], mode=m) for m in ("revealcancel", "rescale"))
        np.testing.assert_allclose(rc.actual, rs.actual, atol=1e-12)
        np.testing.assert_allclose(rc.residual, 0, atol=1e-12)


def _glu(seed):
    """one-hot (12, 4) -> Conv1D(8) -> GLU: first 4 channels * sigmoid(last 4) -> Conv1D(4,
    relu) -> GlobalAveragePooling -> Dense(2)."""
    inp = keras.Input((12, 4))
    h = layers.Conv1D(8, 3, padding="same")(inp)
    h = h[..., :4] * keras.ops.sigmoid(h[..., 4:])
    h = layers.Conv1D(4, 3, activation="relu")(h)
    out = layers.Dense(2)(layers.GlobalAveragePooling1D()(h))
    return _random_model(keras.Model(inp, out), seed)


def _se_block(seed):
    """one-hot (12, 4) -> Conv1D(6, swish) -> squeeze-excitation (x * sigmoid(Dense(Dense(
    mean over length)))), layers.Multiply broadcasting (B, 6) on (B, 12, 6) -> Conv1D(3) ->
    Flatten -> Dense(2, sigmoid)."""
    inp = keras.Input((12, 4))
    x = layers.Conv1D(6, 5, padding="same", activation="swish")(inp)
    y = layers.Dense(2, activation="swish")(keras.ops.mean(x, axis=1))
    y = layers.Dense(6, activation="sigmoid")(y)
    x = layers.Conv1D(3, 1)(layers.Multiply()([x, y]))
    out = layers.Dense(2, activation="sigmoid")(layers.Flatten()(x))
    return _random_model(keras.Model(inp, out), seed)


@pytest.mark.parametrize("build", [_glu, _se_block], ids=["glu", "squeeze_excitation"])
@pytest.mark.parametrize("mode", MODES)
def test_gated_blocks_sum_to_delta(build, mode):
    model = build(6)
    x, refs = _onehot(7)
    att = _sums_to_delta(model, x, refs, mode)
    assert np.abs(att.delta).max() > 1e-2
    assert "product" in DeepLift(model, mode=mode).rules.values()


# --------------------------------------------------------------------------- TimeDistributed
def _same_scores(a, b, mode, seed):
    """Models ``a`` and ``b`` compute the same function: the same scores, summing to delta."""
    x, refs = _onehot(seed)
    sa, sb = _sums_to_delta(a, x, refs, mode), _sums_to_delta(b, x, refs, mode)
    np.testing.assert_allclose(sa.hypothetical, sb.hypothetical, atol=1e-12)
    np.testing.assert_allclose(sa.actual, sb.actual, atol=1e-12)
    return sa


def _dense_chain(wrap):
    """one-hot (12, 4) -> Reshape (3, 16) -> [TimeDistributed] Dense(5, relu) -> Dropout ->
    [TD] Dense(4, tanh) -> Flatten -> Dense(2, sigmoid)."""
    inp = keras.Input((12, 4))
    h = layers.Reshape((3, 16))(inp)
    h = wrap(layers.Dense(5, activation="relu"))(h)
    h = wrap(layers.Dropout(0.5))(h)
    h = wrap(layers.Dense(4, activation="tanh"))(h)
    return keras.Model(inp, layers.Dense(2, activation="sigmoid")(layers.Flatten()(h)))


@pytest.mark.parametrize("mode", MODES)
def test_time_distributed_dense_equals_dense_on_3d_inputs(mode):
    # TimeDistributed(Dense) and Dense on a (B, T, F) input (kernel on the last axis) are the
    # same function; the wrapped layers keep their rule (RevealCancel after Dense in
    # genomics_default).
    td = _random_model(_dense_chain(layers.TimeDistributed), 8)
    plain = _dense_chain(lambda layer: layer)
    plain.set_weights(td.get_weights())
    _same_scores(td, plain, mode, 9)
    labels = [sorted(DeepLift(m, mode=mode).rules.values()) for m in (td, plain)]
    assert labels[0] == labels[1]


def _conv_windows(conv, pool):
    """one-hot (12, 4) -> Reshape (3 windows, 4, 4) -> ``conv`` (relu) -> ``pool`` -> Flatten
    -> Dense(6, relu) -> Dense(2)."""
    inp = keras.Input((12, 4))
    h = pool(conv(layers.Reshape((3, 4, 4))(inp)))
    out = layers.Dense(2)(layers.Dense(6, activation="relu")(layers.Flatten()(h)))
    return keras.Model(inp, out)


@pytest.mark.parametrize("mode", MODES)
def test_time_distributed_conv_and_maxpool_equal_conv2d_over_windows(mode):
    # TimeDistributed(Conv1D(3, 2)) on (B, 3, 4, 4) is Conv2D(3, (1, 2)) with kernel
    # K[None]; TimeDistributed(MaxPooling1D(2)) is MaxPooling2D((1, 2)): same function, so
    # the same scores (the max-pool and Rescale rules pair each folded time step with its
    # own activations).
    td = _random_model(_conv_windows(
        layers.TimeDistributed(layers.Conv1D(3, 2, activation="relu")),
        layers.TimeDistributed(layers.MaxPooling1D(2))), 10)
    plain = _conv_windows(layers.Conv2D(3, (1, 2), activation="relu"),
                          layers.MaxPooling2D((1, 2)))
    w = td.get_weights()
    plain.set_weights([w[0][None]] + w[1:])
    _same_scores(td, plain, mode, 11)


@pytest.mark.parametrize("mode", MODES)
def test_dense_on_3d_inputs_by_hand(mode):
    # Dense(1, relu) on (B, T=2, F=2): kernel (1, -1), bias 0; x = (3, 1, 1, 2) as two steps
    # (3, 1), (1, 2), ref 0: z = (2, -1), relu -> (2, 0); then Dense(1) over the 2 steps with
    # weights (1, 1). Step 1: z_x = 2 > 0 = z_r: Rescale m = 1; RevealCancel: terms 3 (+) and
    # -1 (-), Δ+ = 3, Δ- = -1: Δy+ = ½[relu(3) - 0] + ½[relu(2) - relu(-1)] = 2.5, m+ = 5/6,
    # Δy- = ½[relu(-1) - 0] + ½[relu(2) - relu(3)] = -0.5, m- = 1/2.
    # Step 2: z_x = -1, all off: Rescale m = 0; RevealCancel terms 1 (+), -2 (-):
    # Δy+ = ½[relu(1)] + ½[relu(-1) - relu(-2)] = 0.5, m+ = 0.5; Δy- = ½[relu(-2)] +
    # ½[relu(-1) - relu(1)] = -0.5, m- = 0.25.
    # Multipliers: Rescale (1, -1, 0, 0); RevealCancel (5/6, -1/2, 1/2, -1/4) (w·m±):
    # contributions (2.5, -0.5, 0.5, -0.5) sum to 2 = Δ.
    inp = keras.Input((4, 1))
    h = layers.Reshape((2, 2))(inp)
    h = _set(layers.Dense(1, activation="relu", use_bias=False), (2, 2), [[1.0], [-1.0]])(h)
    out = _set(layers.Dense(1, use_bias=False), (2,), [[1.0], [1.0]])(layers.Flatten()(h))
    att = _score(keras.Model(inp, out), [3, 1, 1, 2], mode=mode)
    want = [1, -1, 0, 0] if mode == "rescale" else [5 / 6, -0.5, 0.5, -0.25]
    np.testing.assert_allclose(att.hypothetical[0, 0, :, 0], want, atol=1e-12)
    np.testing.assert_allclose(att.delta, [[[2.0]]], atol=1e-12)
    np.testing.assert_allclose(att.residual, 0, atol=1e-12)


# --------------------------------------------------------------------------- EinsumDense
def _einsum_chain(first, second):
    """one-hot (12, 4) -> Reshape (3, 16) -> ``first`` (relu, 5 units per step) -> Flatten ->
    ``second`` (3 units, relu) -> Dense(2)."""
    inp = keras.Input((12, 4))
    h = layers.Flatten()(first(layers.Reshape((3, 16))(inp)))
    return keras.Model(inp, layers.Dense(2)(second(h)))


@pytest.mark.parametrize("mode", MODES)
def test_einsum_dense_equals_dense(mode):
    # "abc,cd->abd" with bias on d is Dense on the last axis of a 3-D input, "ab,bc->ac" is
    # Dense: same function, same scores; an EinsumDense is a dense layer for genomics_default.
    ein = _random_model(_einsum_chain(
        layers.EinsumDense("abc,cd->abd", (3, 5), bias_axes="d", activation="relu"),
        layers.EinsumDense("ab,bc->ac", (3,), bias_axes="c", activation="relu")), 12)
    dense = _einsum_chain(layers.Dense(5, activation="relu"), layers.Dense(3, activation="relu"))
    dense.set_weights(ein.get_weights())
    _same_scores(ein, dense, mode, 13)
    if mode == "genomics_default":
        assert sorted(DeepLift(ein, mode=mode).rules.values()).count(
            "linear+revealcancel") == 2


def test_einsum_dense_transposed_kernel_axes():
    # "abc,dc->abd": kernel stored (units, features); same as Dense with the kernel transposed.
    ein = _random_model(_einsum_chain(
        layers.EinsumDense("abc,dc->abd", (3, 5), activation="relu"),
        layers.Dense(3, activation="relu")), 14)
    dense = _einsum_chain(layers.Dense(5, activation="relu", use_bias=False),
                          layers.Dense(3, activation="relu"))
    w = ein.get_weights()
    dense.set_weights([w[0].T] + w[1:])
    _same_scores(ein, dense, "revealcancel", 15)


def test_einsum_plain_contraction_check():
    # a kernel index summed without the input (d in "ab,bd->a") makes the coefficient of x_ab
    # Σ_d w_bd, for which |W| is not the map of the magnitudes; Keras refuses it today, the
    # engine checks it anyway.
    assert einsum_is_plain("abc,cd->abd") and einsum_is_plain("...b,bc->...c")
    assert einsum_is_plain("abc,dc->abd") and einsum_is_plain("ab,bc->ac")
    assert not einsum_is_plain("ab,bd->a") and not einsum_is_plain("ab->a")
    assert not einsum_is_plain("ab,b...->a...")


# --------------------------------------------------------------------------- still unsupported
@pytest.mark.parametrize("make,name,kind", [
    (lambda h: layers.LSTM(2, name="rnn")(h), "rnn", "LSTM"),
    (lambda h: layers.GRU(2, name="gru")(h), "gru", "GRU"),
    (lambda h: layers.GlobalAveragePooling1D()(
        layers.MultiHeadAttention(2, 2, name="mha")(h, h)), "mha", "MultiHeadAttention"),
    (lambda h: layers.TimeDistributed(layers.LSTM(2), name="td")(layers.Reshape((3, 4, 4))(h)),
     "td", "LSTM"),
], ids=["lstm", "gru", "attention", "time_distributed_lstm"])
def test_recurrent_and_attention_layers_raise_one_line_errors(make, name, kind):
    inp = keras.Input((12, 4))
    model = keras.Model(inp, layers.Dense(1)(layers.Flatten()(make(inp))))
    with pytest.raises(UnsupportedLayerError) as err:
        DeepLift(model)
    message = str(err.value)
    assert f"layer {name!r} of type {kind} has no DeepLIFT rule" in message
    assert "\n" not in message
