"""Engine, layer maths (used by the rule registry): Rescale and RevealCancel for ``y = f(z)``.

The difference network carries ``Δ = a(x) - a(ref)`` for (sequence, reference) pairs. Each rule
computes ``Δy`` exactly (``f(z_x) - f(z_x - Δ)``) and arranges, with stop-gradient algebra
(``sg`` = ``keras.ops.stop_gradient``), that the gradient of ``Δy`` with respect to ``Δ`` is the
DeepLIFT multiplier; backpropagation then applies the chain rule for multipliers.

Shapes: activations at the sequences ``(N, ...)``; pair tensors ``(N·K, ...)`` sequence-major
(row ``n·K + k``), viewed as ``(N, K, ...)`` by :func:`pairs`.
"""

from __future__ import annotations

from typing import Callable

import keras
from keras import ops

from dnalift.engine import backend

#: ``|Δ|`` below which Rescale/RevealCancel use the derivative ``f'`` instead of ``Δy/Δ``.
EPS = {"float32": 1e-5, "float64": 1e-9, "float16": 1e-3, "bfloat16": 1e-2}


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


def derivative(f: Callable, z):
    """``f'(z)`` elementwise (closed form for relu/sigmoid/tanh/softplus/exp, else autodiff)."""
    d = _DERIVATIVES.get(f)
    return ops.stop_gradient(d(z)) if d is not None else backend.elementwise_derivative(f, z)


def pairs(t, k: int):
    """Pair tensor ``(N·K, ...)`` -> ``(N, K, ...)``."""
    return ops.reshape(t, (-1, k) + tuple(t.shape[1:]))


def unpairs(t):
    """``(N, K, ...)`` -> pair tensor ``(N·K, ...)``."""
    return ops.reshape(t, (-1,) + tuple(t.shape[2:]))


def absolute(d):
    """``|d|`` as ``d * sg(sign d)``: gradient ``sign(d)``, 0 where ``d = 0``.

    Through ``|W| absolute(Δ)`` the gradient of ``Δ± = (WΔ ± |W||Δ|)/2`` is the paper's
    ``w_i 1{w_i Δ_i ≷ 0}``, and ``0.5 w_i`` where ``Δ_i = 0``.
    """
    return d * ops.stop_gradient(ops.sign(d))


def _quotient(num, den, fallback, eps: float):
    """``num / den``, or ``fallback`` where ``|den| < eps``.

    ``den`` must be the difference of inputs actually realised in the working precision
    (``z_x - z_r`` after ``z_r = z_x - Δ`` was rounded), not ``Δ`` itself: then a linear
    piece of ``f`` gets the multiplier 1 exactly, where ``Δy/Δ`` is ``1 ± ulp(z_x)/(2|Δ|)``
    (measured: float32 scores 1e-4 off float64 on a CREsted model, 3e-6 with the realised
    difference).
    """
    # the quotient's inf/nan where den ~ 0 is discarded by where(); no gradient flows here
    return ops.where(ops.abs(den) < eps, fallback, num / den)


def quotient_dtype(dtype: str) -> str:
    """Precision of a smooth nonlinearity's difference quotients when scoring in ``dtype``.

    float64 for float32 scoring where the backend computes float64 (not JAX without x64):
    the inputs ``z_x`` and ``z_r`` are exact in float64, so ``f(z_x) - f(z_r)`` and
    ``z_x - z_r`` keep every digit and the quotient is float32-accurate for any ``Δ``. In
    float32, ``f(z_x) - f(z_r)`` loses ``log2 |f / Δf|`` bits (measured: 1e-4 relative on a
    CREsted model with exponential activations). Other precisions are kept as they are.
    """
    return "float64" if dtype == "float32" and backend.float64_available() else dtype


def _as(t, dtype: str):
    return t if t.dtype == dtype else ops.cast(t, dtype)


def rescale_rule(f: Callable, z_x, y_x, fprime_x, d, eps: float, *, work: str | None = None):
    """Rescale: value ``f(z_x) - f(z_x - Δ)``, gradient ``Δy/Δ`` (``f'(z_x)`` where |Δ|<eps).

    Parameters
    ----------
    f : callable
        The elementwise nonlinearity.
    z_x, y_x, fprime_x : tensor ``(N, ...)``
        Its input, output ``f(z_x)`` and slope ``f'(z_x)`` at the sequences.
    d : tensor ``(N·K, ...)``
        Input Δ of the pairs.
    eps : float
        Threshold of ``|Δ|`` in the precision ``work``.
    work : str, optional
        Precision of the quotient (default: that of ``d``); see :func:`quotient_dtype`.

    Returns
    -------
    tensor ``(N·K, ...)``: the output Δ, in the precision of ``d``.
    """
    sg = ops.stop_gradient
    out, work = d.dtype, work or d.dtype
    k = d.shape[0] // z_x.shape[0]
    dk = pairs(d, k)
    sd = sg(dk)
    zx = _as(ops.expand_dims(z_x, 1), work)
    z_r = zx - _as(sd, work)
    f_x = ops.expand_dims(y_x, 1) if work == out else f(zx)
    dy = f_x - f(z_r)
    m = _quotient(dy, zx - z_r, _as(ops.expand_dims(fprime_x, 1), work), eps)
    return unpairs(sg(_as(dy, out)) + sg(_as(m, out)) * (dk - sd))


def reveal_cancel_rule(f: Callable, z_x, y_x, fprime_x, d, a, eps: float, *,
                       work: str | None = None):
    """RevealCancel with ``Δ+ = (Δ + A)/2``, ``Δ- = (Δ - A)/2`` (``A = Δ+ - Δ-``).

    ``Δy+ = ½[f(z_r+Δ+) - f(z_r)] + ½[f(z_x) - f(z_r+Δ-)]`` and symmetrically ``Δy-``;
    gradient ``m+ ∂Δ+ + m- ∂Δ-`` with ``m± = Δy± / Δ±``. Where ``|Δ±| < eps`` the multiplier
    is the limit ``½(f'(z_r) + f'(z_x))``: the original implementation adds a pseudocount to
    ``Δ±`` instead, whose quotient tends to the same average slope. Shapes and ``work`` as
    in :func:`rescale_rule`; ``a`` ``(N·K, ...)`` like ``d``. Each ``m±`` divides by the same
    combination of realised inputs as its ``Δy±`` (:func:`_quotient`).
    """
    sg = ops.stop_gradient
    out = d.dtype
    work = work or out
    k = d.shape[0] // z_x.shape[0]
    dk, ak = pairs(d, k), pairs(a, k)
    dp = 0.5 * (dk + ak)
    dn = 0.5 * (dk - ak)
    sd = sg(dk)
    zx = _as(ops.expand_dims(z_x, 1), work)
    z_r = zx - _as(sd, work)
    # Δ- as the rest of the realised Δ: the intervals tile [z_r, z_x] in the working precision
    dp_w = _as(sg(dp), work)
    dn_w = (zx - z_r) - dp_w
    z_p, z_n = z_r + dp_w, z_r + dn_w
    f_x = ops.expand_dims(y_x, 1) if work == out else f(zx)
    f_r, f_p, f_n = f(z_r), f(z_p), f(z_n)
    dyp = 0.5 * (f_p - f_r) + 0.5 * (f_x - f_n)
    dyn = 0.5 * (f_n - f_r) + 0.5 * (f_x - f_p)
    limit = 0.5 * (derivative(f, z_r) + _as(ops.expand_dims(fprime_x, 1), work))
    mp = _as(_quotient(dyp, 0.5 * (z_p - z_r) + 0.5 * (zx - z_n), limit, eps), out)
    mn = _as(_quotient(dyn, 0.5 * (z_n - z_r) + 0.5 * (zx - z_p), limit, eps), out)
    return unpairs(_as(sg(f_x - f_r), out) + sg(mp) * (dp - sg(dp)) + sg(mn) * (dn - sg(dn)))


#: Difference rules of an elementwise nonlinearity by name (the policy picks the name).
NONLINEAR_RULES = {"rescale": rescale_rule, "revealcancel": reveal_cancel_rule}
