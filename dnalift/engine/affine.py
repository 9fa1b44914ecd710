"""Engine, layer maths (used by the rule registry): the linear maps of weight layers.

Dense (on inputs of any rank: the kernel applies to the last axis), EinsumDense (a plain
contraction with its kernel, :func:`einsum_is_plain`), Conv1D/2D/3D, Conv1D/2D/3DTranspose and
BatchNormalization (inference) are affine: ``z = W x + b``. The
difference network needs the bias-free part ``W Δ`` (the Linear rule), ``|W| v`` (RevealCancel's
absolute part) and, for the forward pass, the full affine map without the layer's activation.
All functions are pure ``keras.ops`` on tensors shaped as the layer's input ``(B, ...)``.
"""

from __future__ import annotations

import keras
from keras import ops

L = keras.layers
CONV_TRANSPOSE = (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)


def einsum_is_plain(equation: str) -> bool:
    """Whether an EinsumDense ``equation`` (``"x,kernel->out"``) is a plain contraction: every
    kernel index also appears in the input or the output, so each output is ``Σ_i w x_i``
    with one kernel entry per term (and ``|W|`` is the map of the magnitudes), no ellipsis in
    the kernel.

    >>> einsum_is_plain("abc,cd->abd"), einsum_is_plain("ab,bc->a")
    (True, False)
    """
    lhs, _, out = equation.replace(" ", "").partition("->")
    operands = lhs.split(",")
    if len(operands) != 2 or not out:
        return False
    x, kernel = operands
    return "." not in kernel and set(kernel) <= set(x) | set(out)


def _bn_scale_shift(layer, dtype: str):
    """Per-channel ``(scale, shift)`` of an inference BatchNormalization: ``y = scale x + shift``."""
    var = ops.cast(layer.moving_variance, dtype)
    scale = 1.0 / ops.sqrt(var + layer.epsilon)
    if layer.gamma is not None:
        scale = scale * ops.cast(layer.gamma, dtype)
    shift = -ops.cast(layer.moving_mean, dtype) * scale
    if layer.beta is not None:
        shift = shift + ops.cast(layer.beta, dtype)
    return scale, shift


def _bn_broadcast(layer, v, rank: int):
    """Per-channel vector ``v`` ``(C,)`` reshaped to broadcast on the layer's axis."""
    axis = layer.axis if isinstance(layer.axis, int) else layer.axis[0]
    shape = [1] * rank
    shape[axis % rank] = -1
    return ops.reshape(v, shape)


def affine_linear(layer, x, dtype: str, absolute: bool = False):
    """The bias-free linear map ``W x`` of an affine layer (``|W| x`` with ``absolute``).

    Parameters
    ----------
    layer : Dense, EinsumDense, Conv1D/2D/3D(Transpose) or BatchNormalization
    x : tensor ``(B, ...)`` shaped as the layer's input
    dtype : str
        Weights are cast to it.
    absolute : bool
        Use the elementwise magnitudes of the weights.
    """
    if isinstance(layer, L.BatchNormalization):
        scale, _ = _bn_scale_shift(layer, dtype)
        if absolute:
            scale = ops.abs(scale)
        return x * _bn_broadcast(layer, scale, len(x.shape))
    kernel = ops.cast(layer.kernel, dtype)
    if absolute:
        kernel = ops.abs(kernel)
    if isinstance(layer, L.Dense):
        return ops.matmul(x, kernel)
    if isinstance(layer, L.EinsumDense):
        return ops.einsum(layer.equation, x, kernel)
    if isinstance(layer, CONV_TRANSPOSE):
        return ops.conv_transpose(x, kernel, strides=list(layer.strides), padding=layer.padding,
                                  output_padding=layer.output_padding,
                                  dilation_rate=layer.dilation_rate,
                                  data_format=layer.data_format)
    padding = layer.padding
    if padding == "causal":
        x = ops.pad(x, layer._compute_causal_padding())
        padding = "valid"
    return ops.conv(x, kernel, strides=list(layer.strides), padding=padding,
                    dilation_rate=layer.dilation_rate, data_format=layer.data_format)


def affine_full(layer, x, dtype: str):
    """The affine layer with its bias, without its activation: ``W x + b`` ``(B, ...)``."""
    if isinstance(layer, L.BatchNormalization):
        scale, shift = _bn_scale_shift(layer, dtype)
        r = len(x.shape)
        return x * _bn_broadcast(layer, scale, r) + _bn_broadcast(layer, shift, r)
    z = affine_linear(layer, x, dtype)
    bias = getattr(layer, "bias", None)
    if bias is None:
        return z
    b = ops.cast(bias, dtype)
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        b = ops.reshape(b, (1, -1) + (1,) * (len(z.shape) - 2))
    return z + b
