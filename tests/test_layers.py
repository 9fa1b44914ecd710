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
