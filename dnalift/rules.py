"""DeepLIFT rules per layer: Linear, Rescale, RevealCancel and the two max-pooling rules.

The engine evaluates a "difference network": every tensor carries ``Δ = a(x) - a(ref)`` for a
batch of (sequence, reference) pairs, with ``a(x)`` from a separate forward pass of the
sequences alone. Each rule computes ``Δ_out`` *exactly* (``f(z_x) - f(z_x - Δ)``) and arranges,
with stop-gradient algebra, that the gradient of ``Δ_out`` with respect to ``Δ_in`` is the
DeepLIFT multiplier; backpropagation then applies the chain rule for multipliers.
``sg`` below is ``keras.ops.stop_gradient``.

- Linear (Dense, Conv, BatchNormalization, pooling averages, reshapes, merges):
  ``Δ_out = W Δ_in`` (no bias), gradient ``W``.
- Rescale: ``Δy = f(z_x) - f(z_x - Δ)``, ``m = Δy / Δ`` (``f'`` at the midpoint where
  ``|Δ| < eps``), ``out = sg(Δy) + sg(m) (Δ - sg Δ)``.
- RevealCancel: the linear layers feeding it also carry ``A = Δ+ - Δ-`` (``A = |W| |Δ_in|``,
  with ``|Δ|`` computed as ``Δ sg(sign Δ)``, which gives the paper's ``0.5 w`` multiplier where
  ``Δx_i = 0``), ``Δ± = (Δ ± A)/2`` and the paper's ``Δy±``, ``m± = Δy± / Δ±``.
- Max pooling: ``"rescale"`` (default, summation-preserving: weight λ on the argmax of the
  input, 1-λ on the argmax of the reference, λ = (Δout - Δ[j*]) / (Δ[i*] - Δ[j*]) in [0, 1])
  or ``"gradient"`` (the paper: all to the argmax of the input; does not sum to delta).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import keras
from keras import ops

from dnalift import backend
from dnalift.errors import UnsupportedLayerError
from dnalift.graph import GraphNode, Key

L = keras.layers

#: ``|Δ|`` below which Rescale/RevealCancel use the derivative ``f'`` instead of ``Δy/Δ``.
EPS = {"float32": 1e-5, "float64": 1e-9, "float16": 1e-3, "bfloat16": 1e-2}

#: Elementwise activation functions (by ``__name__``) the engine accepts.
ELEMENTWISE_ACTIVATIONS = frozenset({
    "relu", "sigmoid", "tanh", "softplus", "elu", "selu", "gelu", "exponential", "leaky_relu",
    "silu", "swish", "softsign", "relu6", "hard_sigmoid", "hard_silu", "hard_swish", "mish",
    "log_sigmoid", "celu", "sparse_plus", "squareplus", "hard_tanh", "soft_shrink",
    "hard_shrink", "tanh_shrink", "threshold", "sinh", "cosh", "exp"})

#: Final activations that are stripped when choosing the pre-activation target.
OUTPUT_ACTIVATIONS = frozenset({"sigmoid", "softmax"})

# Layers that are linear and homogeneous (no bias) in their tensor arguments, with non-negative
# coefficients except Subtract: ``layer.call(Δ)`` is their Linear rule, ``layer.call(A)`` their
# absolute part (Subtract adds).
_PLUMBING = tuple(c for c in (
    L.Flatten, L.Reshape, L.Permute, L.Cropping1D, L.Cropping2D, L.Cropping3D,
    L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D, L.UpSampling1D, L.UpSampling2D,
    L.UpSampling3D, L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.SpatialDropout3D,
    L.GaussianNoise, L.GaussianDropout, L.AlphaDropout, L.ActivityRegularization, L.Identity,
    L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D, L.GlobalAveragePooling1D,
    L.GlobalAveragePooling2D, L.GlobalAveragePooling3D, L.Add, L.Subtract, L.Concatenate,
    L.Average, L.RepeatVector) if c is not None)
_MAXPOOL = (L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D)
_GLOBAL_MAXPOOL = (L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D)
_ACT_LAYERS = (L.ReLU, L.LeakyReLU, L.PReLU, L.ELU)
# Raw keras.ops used in a functional graph (class names of keras.src.ops operations).
_OPS_LINEAR = frozenset({"Add", "Subtract", "Reshape", "Transpose", "Concatenate", "ExpandDims",
                         "Squeeze", "Sum", "Mean", "GetItem", "Negative", "Flatten"})
_OPS_ELEMENTWISE = frozenset({"Exp", "Tanh", "Sigmoid", "Relu", "Softplus", "Elu", "Selu",
                              "Gelu", "Silu", "Softsign", "Relu6", "LeakyRelu", "Expm1",
                              "HardSigmoid", "LogSigmoid", "Sinh", "Mish"})


def _try_import_conv():
    from keras.src.layers.convolutional.base_conv import BaseConv
    return BaseConv


_BaseConv = _try_import_conv()


def register_linear_layer(cls: type, *, nonnegative: bool = False,
                          registry: dict | None = None) -> None:
    """Declare a custom layer class linear and bias-free: ``layer.call(Δ)`` is its Δ.

    ``nonnegative=True`` also lets RevealCancel's absolute part pass through it
    (``layer.call(A)``), which is right only if all its coefficients are >= 0.
    """
    (_CUSTOM if registry is None else registry)[cls] = ("linear", nonnegative, None)


def register_nonlinear_layer(cls: type, fn: Callable | None = None, *,
                             registry: dict | None = None) -> None:
    """Declare a custom layer class an elementwise nonlinearity ``y = f(x)``.

    ``fn(layer) -> callable`` returns ``f`` for a layer instance (default: ``layer.call``).
    """
    (_CUSTOM if registry is None else registry)[cls] = ("nonlinear", False, fn)


#: Custom layer registry (class -> (kind, nonnegative, fn)), filled by the two functions above.
_CUSTOM: dict = {}


# --------------------------------------------------------------------------- classification
def activation_name(fn) -> str | None:
    """``__name__`` of an activation function, ``None`` for linear/absent."""
    if fn is None:
        return None
    nm = getattr(fn, "__name__", type(fn).__name__)
    return None if nm == "linear" else nm


def _layer_activation_fn(layer) -> tuple[str, Callable]:
    """Name and elementwise function of an activation-like layer."""
    if isinstance(layer, L.Activation):
        return activation_name(layer.activation) or "linear", layer.activation
    if isinstance(layer, L.Softmax):
        return "softmax", layer.call
    return type(layer).__name__.lower(), layer.call


@dataclass
class Step:
    """One unit of evaluation: a layer's linear part, a nonlinearity, a pooling, plumbing.

    kind is one of ``"affine"`` (weights: Dense, Conv, BatchNormalization), ``"plumbing"``
    (bias-free linear layers and raw linear ops), ``"custom_linear"``, ``"nonlinear"``
    (elementwise), ``"maxpool"``. ``rule`` is the DeepLIFT rule applied.
    """

    kind: str
    node: GraphNode
    inputs: list
    output: Key
    name: str
    rule: str = "linear"
    fn: Callable | None = None
    act: str | None = None
    nonnegative: bool = True

    @property
    def layer(self):
        return self.node.op


def _act_kind(act: str) -> str:
    return "nonlinear" if act in ELEMENTWISE_ACTIVATIONS else "nonelementwise"


def split_steps(nodes: list[GraphNode], registry: dict | None = None) -> list[Step]:
    """Turn graph nodes into steps, splitting ``activation=`` out of Dense/Conv layers.

    Raises
    ------
    UnsupportedLayerError
        For a layer / operation with no DeepLIFT rule.
    """
    reg = {**_CUSTOM, **(registry or {})}
    steps: list[Step] = []
    for nd in nodes:
        op = nd.op
        custom = next((v for c, v in reg.items() if isinstance(op, c)), None)
        if custom is not None:
            kind, nonneg, fn = custom
            if kind == "linear":
                steps.append(Step("custom_linear", nd, nd.inputs, nd.output, nd.name,
                                  nonnegative=nonneg))
            else:
                f = fn(op) if fn is not None else op.call
                steps.append(Step("nonlinear", nd, nd.inputs, nd.output, nd.name, "rescale", f,
                                  type(op).__name__))
            continue
        if isinstance(op, (L.Dense, L.BatchNormalization)) or \
                (isinstance(op, _BaseConv) and type(op).__name__ in
                 ("Conv1D", "Conv2D", "Conv3D")):
            if isinstance(op, L.Dense) and len(op.kernel.shape) != 2:
                raise UnsupportedLayerError(f"layer {nd.name!r} of type Dense has a quantized "
                                            "or unusual kernel")
            act = activation_name(getattr(op, "activation", None))
            if act is None:
                steps.append(Step("affine", nd, nd.inputs, nd.output, nd.name))
                continue
            pre = nd.output + ("pre",)
            steps.append(Step("affine", nd, nd.inputs, pre, nd.name))
            steps.append(Step(_act_kind(act), nd, [pre], nd.output, nd.name, "rescale",
                              op.activation, act))
            continue
        if isinstance(op, _PLUMBING):
            steps.append(Step("plumbing", nd, nd.inputs, nd.output, nd.name,
                              nonnegative=not isinstance(op, L.Subtract)))
            continue
        if isinstance(op, _MAXPOOL + _GLOBAL_MAXPOOL):
            if getattr(op, "data_format", "channels_last") != "channels_last":
                raise UnsupportedLayerError(
                    f"layer {nd.name!r} of type {type(op).__name__}: channels_first max pooling "
                    "is not supported")
            steps.append(Step("maxpool", nd, nd.inputs, nd.output, nd.name, "maxpool"))
            continue
        if isinstance(op, (L.Activation, L.Softmax) + _ACT_LAYERS):
            act, f = _layer_activation_fn(op)
            if act == "linear":
                steps.append(Step("plumbing", nd, nd.inputs, nd.output, nd.name))
            else:
                kind = _act_kind(act) if isinstance(op, (L.Activation, L.Softmax)) else "nonlinear"
                steps.append(Step(kind, nd, nd.inputs, nd.output, nd.name, "rescale", f, act))
            continue
        if not isinstance(op, L.Layer):
            cls = type(op).__name__
            if cls in _OPS_LINEAR:
                steps.append(Step("plumbing", nd, nd.inputs, nd.output, nd.name,
                                  nonnegative=cls not in ("Subtract", "Negative")))
                continue
            if cls in _OPS_ELEMENTWISE and len(nd.inputs) == 1:
                steps.append(Step("nonlinear", nd, nd.inputs, nd.output, nd.name, "rescale",
                                  op.call if hasattr(op, "call") else op, cls.lower()))
                continue
        raise UnsupportedLayerError(
            f"layer {nd.name!r} of type {type(op).__name__} has no DeepLIFT rule (register it "
            "with dnalift.deeplift.register_linear_layer / register_nonlinear_layer if it is "
            "linear or elementwise)")
    return steps


def check_supported(steps: list[Step]) -> None:
    """Raise for a non-elementwise activation (e.g. a softmax) inside the scored graph."""
    for s in steps:
        if s.kind == "nonelementwise":
            raise UnsupportedLayerError(
                f"layer {s.name!r} of type {type(s.layer).__name__} applies {s.act!r}, which is "
                "not elementwise; only the model's final sigmoid/softmax can be skipped")


# --------------------------------------------------------------------------- affine layers
def _cast(v, dtype):
    return ops.cast(v, dtype)


def _bn_scale_shift(layer, dtype):
    var = _cast(layer.moving_variance, dtype)
    scale = 1.0 / ops.sqrt(var + layer.epsilon)
    if layer.gamma is not None:
        scale = scale * _cast(layer.gamma, dtype)
    shift = -_cast(layer.moving_mean, dtype) * scale
    if layer.beta is not None:
        shift = shift + _cast(layer.beta, dtype)
    return scale, shift


def _bn_broadcast(layer, v, rank):
    axis = layer.axis if isinstance(layer.axis, int) else layer.axis[0]
    axis = axis % rank
    shape = [1] * rank
    shape[axis] = -1
    return ops.reshape(v, shape)


def affine_linear(layer, x, dtype, absolute: bool = False):
    """The bias-free linear map of an affine layer (``|W|`` with ``absolute``)."""
    if isinstance(layer, L.BatchNormalization):
        scale, _ = _bn_scale_shift(layer, dtype)
        if absolute:
            scale = ops.abs(scale)
        return x * _bn_broadcast(layer, scale, len(x.shape))
    kernel = _cast(layer.kernel, dtype)
    if absolute:
        kernel = ops.abs(kernel)
    if isinstance(layer, L.Dense):
        return ops.matmul(x, kernel)
    padding = layer.padding
    if padding == "causal":
        x = ops.pad(x, layer._compute_causal_padding())
        padding = "valid"
    return ops.conv(x, kernel, strides=list(layer.strides), padding=padding,
                    dilation_rate=layer.dilation_rate, data_format=layer.data_format)


def affine_full(layer, x, dtype):
    """The affine layer with its bias, without its activation."""
    if isinstance(layer, L.BatchNormalization):
        scale, shift = _bn_scale_shift(layer, dtype)
        r = len(x.shape)
        return x * _bn_broadcast(layer, scale, r) + _bn_broadcast(layer, shift, r)
    z = affine_linear(layer, x, dtype)
    bias = getattr(layer, "bias", None)
    if bias is None:
        return z
    b = _cast(bias, dtype)
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        b = ops.reshape(b, (1, -1) + (1,) * (len(z.shape) - 2))
    return z + b


# --------------------------------------------------------------------------- nonlinear rules
def _safe_quotient(num, den, f, z_mid, eps):
    """``num / den``, or ``f'(z_mid)`` where ``|den| < eps``."""
    small = ops.abs(den) < eps
    q = num / ops.where(small, ops.ones_like(den), den)
    return ops.where(small, backend.elementwise_derivative(f, z_mid), q)


def rescale_rule(f, z_x, y_x, d, eps):
    """Rescale: value ``f(z_x) - f(z_x - d)``, gradient ``Δy/Δx`` (``f'`` where |Δx|<eps).

    All tensors are the pair batch ``(P, ...)``; ``y_x = f(z_x)``.
    """
    sg = ops.stop_gradient
    z_r = z_x - sg(d)
    dy = y_x - f(z_r)
    m = _safe_quotient(dy, sg(d), f, z_x - 0.5 * sg(d), eps)
    return sg(dy) + sg(m) * (d - sg(d))


def reveal_cancel_rule(f, z_x, y_x, d, a, eps):
    """RevealCancel with ``Δ+ = (Δ + A)/2``, ``Δ- = (Δ - A)/2`` (``A`` = absolute part).

    ``Δy+ = ½[f(z_r+Δ+) - f(z_r)] + ½[f(z_x) - f(z_r+Δ-)]`` and symmetrically ``Δy-``;
    gradient ``m+ ∂Δ+ + m- ∂Δ-`` with ``m± = Δy± / Δ±``.
    """
    sg = ops.stop_gradient
    dp = 0.5 * (d + a)
    dn = 0.5 * (d - a)
    sdp, sdn = sg(dp), sg(dn)
    z_r = z_x - sg(d)
    f_r, f_p, f_n = f(z_r), f(z_r + sdp), f(z_r + sdn)
    dyp = 0.5 * (f_p - f_r) + 0.5 * (y_x - f_n)
    dyn = 0.5 * (f_n - f_r) + 0.5 * (y_x - f_p)
    mp = _safe_quotient(dyp, sdp, f, z_r + 0.5 * sdp, eps)
    mn = _safe_quotient(dyn, sdn, f, z_r + 0.5 * sdn, eps)
    return sg(y_x - f_r) + sg(mp) * (dp - sdp) + sg(mn) * (dn - sdn)


def absolute(d):
    """``|d|`` as ``d * sg(sign d)``: gradient ``sign(d)``, 0 where ``d = 0``."""
    return d * ops.stop_gradient(ops.sign(d))


# --------------------------------------------------------------------------- max pooling
def pool_windows(spatial: tuple, pool: tuple, strides: tuple, padding: str
                 ) -> tuple[np.ndarray, tuple]:
    """Flat indices of every pooling window.

    Returns ``idx`` ``(O, W)`` into the flattened spatial positions, with ``prod(spatial)``
    (a sentinel slot) for positions in the padding, and the output spatial shape.
    """
    per_dim, out_shape = [], []
    for size, p, s in zip(spatial, pool, strides):
        if padding == "same":
            out = -(-size // s)
            pad = max((out - 1) * s + p - size, 0) // 2
        else:
            out = (size - p) // s + 1
            pad = 0
        pos = np.arange(out)[:, None] * s - pad + np.arange(p)[None, :]
        per_dim.append(pos)
        out_shape.append(out)
    total = int(np.prod(spatial))
    grids = np.meshgrid(*[np.arange(o) for o in out_shape], indexing="ij")
    wins = np.meshgrid(*[np.arange(p) for p in pool], indexing="ij")
    flat = np.zeros((int(np.prod(out_shape)), int(np.prod(pool))), dtype=np.int64)
    valid = np.ones_like(flat, dtype=bool)
    stride_mult = 1
    for dim in reversed(range(len(spatial))):
        pos = per_dim[dim][grids[dim].reshape(-1)[:, None], wins[dim].reshape(-1)[None, :]]
        valid &= (pos >= 0) & (pos < spatial[dim])
        flat += np.clip(pos, 0, spatial[dim] - 1) * stride_mult
        stride_mult *= spatial[dim]
    flat[~valid] = total
    return flat.astype("int32"), tuple(out_shape)


def _windows(t, idx, fill):
    """``(B, *S, C)`` -> ``(B, O, W, C)`` gathered windows (``fill`` in padding)."""
    b, c = t.shape[0], t.shape[-1]
    flat = ops.reshape(t, (b, -1, c))
    pad = ops.full((b, 1, c), fill, dtype=t.dtype)
    return ops.take(ops.concatenate([flat, pad], axis=1), idx, axis=1)


def maxpool_rule(layer, a_x, d, variant: str):
    """Max pooling on the pair batch: ``a_x`` ``(P, *S, C)`` activations at x, ``d`` their Δ.

    ``variant="rescale"`` (summation-preserving) or ``"gradient"`` (the paper's rule).
    """
    sg = ops.stop_gradient
    spatial = tuple(a_x.shape[1:-1])
    if isinstance(layer, _GLOBAL_MAXPOOL):
        idx = np.arange(int(np.prod(spatial)), dtype="int32")[None, :]
        out_shape = (1,) * len(spatial) if layer.keepdims else ()
    else:
        idx, out_shape = pool_windows(spatial, tuple(layer.pool_size), tuple(layer.strides),
                                      layer.padding)
    big = -3.0e38 if a_x.dtype in ("float32", "float64") else -6.0e4
    wx = _windows(a_x, idx, big)
    wd = _windows(d, idx, 0.0)
    wr = wx - sg(wd)
    i = ops.argmax(wx, axis=2, keepdims=True)
    j = ops.argmax(wr, axis=2, keepdims=True)
    dout = ops.max(wx, axis=2) - ops.max(wr, axis=2)
    di = ops.squeeze(ops.take_along_axis(wd, i, axis=2), 2)
    if variant == "gradient":
        out = sg(dout) + di - sg(di)
    else:
        dj = ops.squeeze(ops.take_along_axis(wd, j, axis=2), 2)
        den = sg(di - dj)
        nz = ops.abs(den) > 0
        lam = ops.where(nz, (dout - sg(dj)) / ops.where(nz, den, ops.ones_like(den)), 1.0)
        lam = sg(ops.clip(lam, 0.0, 1.0))
        out = sg(dout) + lam * (di - sg(di)) + (1.0 - lam) * (dj - sg(dj))
    return ops.reshape(out, (out.shape[0],) + out_shape + (out.shape[-1],))


RuleFn = Callable[..., Any]
