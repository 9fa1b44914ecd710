"""Engine, layer maths (used by the rule registry): TimeDistributed's time axis folded into
the batch.

``TimeDistributed(layer)`` applies ``layer`` to every time step ``x[:, t]`` of a ``(B, T, ...)``
input. The engine evaluates the inner layer's own step kind on the folded tensor
``(B·T, ...)`` and unfolds the result. Activations at the sequences fold row ``n`` into rows
``n·T + t``. Pair tensors ``(N·K, T, ...)`` (row ``n·K + k``) fold into ``(N·T·K, ...)``
with row ``(n·T + t)·K + k``: still sequence-major, the "sequence" now being the (sequence,
time step) row of the folded activations, so the rules that pair activations with differences
(Rescale, RevealCancel, max pooling, products) apply unchanged.
"""

from __future__ import annotations

from keras import ops


def fold(x):
    """Activations ``(N, T, ...)`` -> ``(N·T, ...)``."""
    return ops.reshape(x, (-1,) + tuple(x.shape[2:]))


def unfold(y, t: int):
    """``(N·T, ...)`` -> ``(N, T, ...)``."""
    return ops.reshape(y, (-1, t) + tuple(y.shape[1:]))


def _swap12(x):
    """Swap axes 1 and 2 of a tensor of rank >= 3."""
    return ops.transpose(x, [0, 2, 1] + list(range(3, len(x.shape))))


def fold_pairs(d, k: int):
    """Pair tensor ``(N·K, T, ...)`` -> ``(N·T·K, ...)`` (row ``(n·T + t)·K + k``)."""
    t = d.shape[1]
    d = ops.reshape(d, (-1, k, t) + tuple(d.shape[2:]))               # (N, K, T, ...)
    return ops.reshape(_swap12(d), (-1,) + tuple(d.shape[3:]))


def unfold_pairs(d, k: int, t: int):
    """``(N·T·K, ...)`` -> pair tensor ``(N·K, T, ...)`` (inverse of :func:`fold_pairs`)."""
    d = ops.reshape(d, (-1, t, k) + tuple(d.shape[1:]))               # (N, T, K, ...)
    return ops.reshape(_swap12(d), (-1, t) + tuple(d.shape[3:]))
