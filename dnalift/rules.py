"""DeepLIFT rules per layer: Linear, Rescale, RevealCancel and the two max-pooling rules.

The engine evaluates a "difference network": every tensor carries ``Δ = a(x) - a(ref)`` for a
batch of (sequence, reference) pairs, with ``a(x)`` from a separate forward pass of the
sequences alone. Each rule computes ``Δ_out`` *exactly* (``f(z_x) - f(z_x - Δ)``) and arranges,
with stop-gradient algebra, that the gradient of ``Δ_out`` with respect to ``Δ_in`` is the
DeepLIFT multiplier; backpropagation then applies the chain rule for multipliers.
``sg`` below is ``keras.ops.stop_gradient``.

- Linear (Dense, Conv, BatchNormalization, pooling averages, reshapes, merges):
  ``Δ_out = W Δ_in`` (no bias), gradient ``W``.
- Rescale: ``Δy = f(z_x) - f(z_x - Δ)``, ``m = Δy / Δ`` (``f'(z_x)``, the limit, where
  ``|Δ| < eps``, see ``EPS``), ``out = sg(Δy) + sg(m) (Δ - sg Δ)``.
- RevealCancel: the linear layers feeding it also carry ``A = Δ+ - Δ-`` (``A = |W| |Δ_in|``,
  with ``|Δ|`` computed as ``Δ sg(sign Δ)``, which gives the paper's ``0.5 w`` multiplier where
  ``Δx_i = 0``), ``Δ± = (Δ ± A)/2`` and the paper's ``Δy±``, ``m± = Δy± / Δ±`` (limit
  ``½(f'(z_ref) + f'(z_x))`` where ``|Δ±| < eps``). Through consecutive linear layers (Dense ->
  BatchNormalization) ``A_out = |W| A_in``; Subtract adds absolute parts.
- Max pooling: ``"rescale"`` (default, summation-preserving: weight λ on the argmax of the
  input, 1-λ on the argmax of the reference, λ = (Δout - Δ[j*]) / (Δ[i*] - Δ[j*]) in [0, 1])
  or ``"gradient"`` (the paper: all to the argmax of the input; does not sum to delta).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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

#: Activations computed exactly by compare/multiply/add (safe to fuse with XLA, see
#: :func:`dnalift.diffnet._rule_fn`); names as in ``Step.act``.
PIECEWISE_LINEAR = frozenset({"relu", "relu6", "leaky_relu", "leakyrelu", "prelu",
                              "hard_sigmoid", "hard_tanh", "threshold"})

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


from keras.src.layers.convolutional.base_conv import BaseConv as _BaseConv  # noqa: E402


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
def _sigmoid_slope(z):
    sz = ops.sigmoid(z)
    return sz * (1.0 - sz)


_A = keras.activations
#: Closed-form derivatives of common activation functions (others use autodiff).
_DERIVATIVES = {
    _A.relu: lambda z: ops.cast(z > 0, z.dtype),
    _A.sigmoid: _sigmoid_slope,
    _A.tanh: lambda z: 1.0 - ops.square(ops.tanh(z)),
    _A.softplus: ops.sigmoid,
    _A.exponential: ops.exp,
}


def derivative(f, z):
    """``f'(z)`` elementwise (closed form for relu/sigmoid/tanh/softplus/exp, else autodiff)."""
    d = _DERIVATIVES.get(f)
    return ops.stop_gradient(d(z)) if d is not None else backend.elementwise_derivative(f, z)


def _pairs(t, k):
    """``(P, ...)`` pair tensor -> ``(N, K, ...)``."""
    return ops.reshape(t, (-1, k) + tuple(t.shape[1:]))


def _unpairs(t):
    return ops.reshape(t, (-1,) + tuple(t.shape[2:]))


def _quotient(num, den, fallback, eps):
    """``num / den``, or ``fallback`` where ``|den| < eps``."""
    # the quotient's inf/nan where den ~ 0 is discarded by where(); no gradient flows here
    return ops.where(ops.abs(den) < eps, fallback, num / den)


def rescale_rule(f, z_x, y_x, fprime_x, d, eps):
    """Rescale: value ``f(z_x) - f(z_x - Δ)``, gradient ``Δy/Δ`` (``f'(z_x)`` where |Δ|<eps).

    ``z_x``, ``y_x = f(z_x)``, ``fprime_x = f'(z_x)`` are ``(N, ...)`` at the sequences;
    ``d`` is the pair batch ``(N·K, ...)`` (sequence-major), as is the result.
    """
    sg = ops.stop_gradient
    k = d.shape[0] // z_x.shape[0]
    dk = _pairs(d, k)
    sd = sg(dk)
    yx = ops.expand_dims(y_x, 1)
    dy = yx - f(ops.expand_dims(z_x, 1) - sd)
    m = _quotient(dy, sd, ops.expand_dims(fprime_x, 1), eps)
    return _unpairs(sg(dy) + sg(m) * (dk - sd))


def reveal_cancel_rule(f, z_x, y_x, fprime_x, d, a, eps):
    """RevealCancel with ``Δ+ = (Δ + A)/2``, ``Δ- = (Δ - A)/2`` (``A`` = absolute part).

    ``Δy+ = ½[f(z_r+Δ+) - f(z_r)] + ½[f(z_x) - f(z_r+Δ-)]`` and symmetrically ``Δy-``;
    gradient ``m+ ∂Δ+ + m- ∂Δ-`` with ``m± = Δy± / Δ±``; where ``|Δ±| < eps`` the limit
    ``½(f'(z_r) + f'(z_x))``. Shapes as in :func:`rescale_rule` (``a`` like ``d``).
    """
    sg = ops.stop_gradient
    k = d.shape[0] // z_x.shape[0]
    dk, ak = _pairs(d, k), _pairs(a, k)
    dp = 0.5 * (dk + ak)
    dn = 0.5 * (dk - ak)
    sdp, sdn = sg(dp), sg(dn)
    yx = ops.expand_dims(y_x, 1)
    z_r = ops.expand_dims(z_x, 1) - sg(dk)
    f_r, f_p, f_n = f(z_r), f(z_r + sdp), f(z_r + sdn)
    dyp = 0.5 * (f_p - f_r) + 0.5 * (yx - f_n)
    dyn = 0.5 * (f_n - f_r) + 0.5 * (yx - f_p)
    limit = 0.5 * (derivative(f, z_r) + ops.expand_dims(fprime_x, 1))
    mp = _quotient(dyp, sdp, limit, eps)
    mn = _quotient(dyn, sdn, limit, eps)
    return _unpairs(sg(yx - f_r) + sg(mp) * (dp - sdp) + sg(mn) * (dn - sdn))


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


def _windows(t, layer, fill):
    """``(B, *S, C)`` -> ``(B, O, W, C)`` pooling windows (``fill`` in padding), and the
    output spatial shape. Non-overlapping unpadded windows are a reshape; others a gather."""
    b, c = t.shape[0], t.shape[-1]
    spatial = tuple(t.shape[1:-1])
    if isinstance(layer, _GLOBAL_MAXPOOL):
        out_shape = (1,) * len(spatial) if layer.keepdims else ()
        return ops.reshape(t, (b, 1, -1, c)), out_shape
    pool, strides = tuple(layer.pool_size), tuple(layer.strides)
    outs = [(n - p) // s + 1 for n, p, s in zip(spatial, pool, strides)]
    if pool == strides and (layer.padding == "valid" or
                            all(n % p == 0 for n, p in zip(spatial, pool))):
        crop = tuple(slice(0, o * p) for o, p in zip(outs, pool))
        t = t[(slice(None),) + crop + (slice(None),)]
        split = [b]
        for o, p in zip(outs, pool):
            split += [o, p]
        t = ops.reshape(t, split + [c])
        r = len(pool)
        perm = [0] + [1 + 2 * i for i in range(r)] + [2 + 2 * i for i in range(r)] + [2 * r + 1]
        t = ops.transpose(t, perm) if r > 1 else t
        return ops.reshape(t, (b, int(np.prod(outs)), int(np.prod(pool)), c)), tuple(outs)
    idx, out_shape = pool_windows(spatial, pool, strides, layer.padding)
    flat = ops.reshape(t, (b, -1, c))
    pad = ops.full((b, 1, c), fill, dtype=t.dtype)
    return ops.take(ops.concatenate([flat, pad], axis=1), idx, axis=1), out_shape


def _argmax_mask(w, axis):
    """One-hot (along ``axis``) of the first maximum of ``w``."""
    return ops.one_hot(ops.argmax(w, axis=axis), w.shape[axis], axis=axis, dtype=w.dtype)


def maxpool_rule(layer, a_x, d, variant: str):
    """Max pooling: ``a_x`` ``(N, *S, C)`` input activations at the sequences, ``d`` their Δ
    for the pair batch ``(N·K, *S, C)``.

    ``variant="rescale"`` (summation-preserving) or ``"gradient"`` (the paper's rule). The
    gradient is routed with one-hot masks of the window argmax (weight λ / 1-λ).
    """
    sg = ops.stop_gradient
    n = a_x.shape[0]
    k = d.shape[0] // n
    big = -3.0e38 if a_x.dtype in ("float32", "float64") else -6.0e4
    wx, out_shape = _windows(a_x, layer, big)                       # (N, O, W, C)
    wd, _ = _windows(d, layer, 0.0)                                 # (P, O, W, C)
    wd = _pairs(wd, k)                                              # (N, K, O, W, C)
    sd = sg(wd)
    mask_i = ops.expand_dims(sg(_argmax_mask(wx, 2)), 1)
    wx = ops.expand_dims(wx, 1)
    wr = wx - sd
    dout = ops.max(wx, axis=3) - ops.max(wr, axis=3)                # (N, K, O, C)
    if variant == "gradient":
        weight = mask_i
    else:
        mask_j = sg(_argmax_mask(wr, 3))
        di = ops.sum(sd * mask_i, axis=3)
        dj = ops.sum(sd * mask_j, axis=3)
        den = di - dj
        nz = ops.abs(den) > 0
        lam = ops.where(nz, (dout - dj) / ops.where(nz, den, ops.ones_like(den)), 1.0)
        lam = ops.expand_dims(ops.clip(lam, 0.0, 1.0), 3)
        weight = sg(lam * mask_i + (1.0 - lam) * mask_j)
    out = sg(dout) + ops.sum((wd - sd) * weight, axis=3)
    out = _unpairs(out)
    return ops.reshape(out, (out.shape[0],) + tuple(out_shape) + (out.shape[-1],))

