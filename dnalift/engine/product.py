"""Engine, layer maths (used by the rule registry): the product rule for ``a * b`` (gating).

A product of two tensors that both depend on the input (squeeze-excitation ``x * sigmoid(...)``,
GLU ``a * sigmoid(b)``) is not linear, and neither Rescale nor RevealCancel applies (two
inputs). The rule used here splits the output difference exactly between the two factors:

    Δ(ab) = ½(a_x + a_r) Δb + ½(b_x + b_r) Δa

(``a_x b_x - a_r b_r``: expand with ``a_r = a_x - Δa``, ``b_r = b_x - Δb``), so the
multiplier of ``a`` is ``½(b_x + b_r)`` and that of ``b`` is ``½(a_x + a_r)``: each factor's
difference is weighted by the mean of the other factor at the sequence and at the reference
(the Shapley value of the two factors' differences). More than two factors are folded from the
left, ``((a b) c) ...``, each step with the same rule, which stays exact. A factor that does not
depend on the sequence has ``Δ = 0``: its multiplier is irrelevant and the other factor gets
``b_x`` (linear). Broadcasting is the operation's own (``mul``).

Shapes: activations at the sequences ``(N, ...)``, pair tensors ``(N·K, ...)`` sequence-major,
as in :mod:`dnalift.engine.nonlinear`.
"""

from __future__ import annotations

from typing import Callable, Sequence

from keras import ops

from dnalift.engine.nonlinear import pairs, unpairs


def midpoint(a_x, d):
    """``½(a_x + a_r) = a_x - ½Δ`` per pair ``(N·K, ...)``, as a constant (no gradient).

    Parameters
    ----------
    a_x : tensor ``(N, ...)``
        The factor at the sequences.
    d : tensor ``(N·K, ...)``
        Its difference for the pairs.
    """
    k = d.shape[0] // a_x.shape[0]
    mid = ops.expand_dims(a_x, 1) - 0.5 * pairs(d, k)
    return ops.stop_gradient(unpairs(mid))


def product_difference(mul: Callable, a_x, b_x, da, db):
    """``Δ(ab) = ½(a_x + a_r) Δb + ½(b_x + b_r) Δa`` ``(N·K, ...)``; its gradient is the
    multiplier ``½(b_x + b_r)`` for ``Δa`` and ``½(a_x + a_r)`` for ``Δb``.

    Parameters
    ----------
    mul : callable
        ``(u, v) -> u * v`` with the broadcasting of the model's operation.
    a_x, b_x : tensor ``(N, ...)``
        The factors at the sequences.
    da, db : tensor ``(N·K, ...)``
        Their differences.
    """
    return mul(midpoint(a_x, da), db) + mul(da, midpoint(b_x, db))


def fold_product(mul: Callable, xs: Sequence, ds: Sequence):
    """``Δ(x_1 x_2 ... x_n)`` by the product rule folded from the left.

    Parameters
    ----------
    mul : callable
        ``(u, v) -> u * v``.
    xs : sequence of tensor ``(N, ...)``
        The factors at the sequences.
    ds : sequence of tensor ``(N·K, ...)``
        Their differences.
    """
    p_x, dp = xs[0], ds[0]
    for a_x, da in zip(xs[1:], ds[1:]):
        dp = product_difference(mul, p_x, a_x, dp, da)
        p_x = mul(p_x, a_x)
    return dp
