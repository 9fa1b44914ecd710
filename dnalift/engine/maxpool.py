"""Engine, layer maths (used by the rule registry): the two max-pooling rules.

``"rescale"`` (default, summation-preserving): the pooled difference goes with weight λ to the
argmax of the input window and 1-λ to the argmax of the reference window,
λ = (Δout - Δ[j*]) / (Δ[i*] - Δ[j*]) = (x[i*] - x[j*]) / (x[i*] - x[j*] + r[j*] - r[i*]), in
[0, 1] (computed in the second form, from the values as realised). Ties, and values within
``TIE_ULPS`` units of roundoff of a window's maximum, go to the first tied position. ``"gradient"`` (the paper): all to the
argmax of the input; it does not sum to delta. Layers: MaxPooling1D/2D/3D and
GlobalMaxPooling1D/2D/3D, channels last.
"""

from __future__ import annotations

import numpy as np
import keras
from keras import ops

from dnalift.engine.names import MAXPOOL_RULES  # noqa: F401 (re-exported)
from dnalift.engine.nonlinear import pairs, unpairs

L = keras.layers
MAXPOOL_LAYERS = (L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D)
GLOBAL_MAXPOOL_LAYERS = (L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D)


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
    if isinstance(layer, GLOBAL_MAXPOOL_LAYERS):
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


#: Values within this many units of roundoff (of the window's magnitude) of a window's maximum
#: count as tied with it.
TIE_ULPS = 16


def _roundoff(w, scale):
    """The tie tolerance: ``TIE_ULPS`` units of roundoff of ``scale`` in ``w``'s precision."""
    return TIE_ULPS * float(np.finfo(keras.backend.standardize_dtype(w.dtype)).eps) * scale


def _argmax_mask(w, axis, scale):
    """One-hot (along ``axis``) of the first position of ``w`` that ties with the maximum.

    A position ties when it is within ``TIE_ULPS`` units of roundoff of ``scale`` (the
    magnitude of the values the window was computed from, broadcast like the maximum) below
    the maximum. Exact ties are common (a ReLU's zeros, mapped to one constant per channel by
    a BatchNormalization that follows), and a reference window ``a_x - Δ`` turns them into
    near-ties that float32 and float64 break differently; the first tied position makes the
    choice deterministic and the same in every precision.
    """
    top = ops.max(w, axis=axis, keepdims=True)
    tied = ops.cast(w >= top - _roundoff(w, scale), "int32")
    return ops.one_hot(ops.argmax(tied, axis=axis), w.shape[axis], axis=axis, dtype=w.dtype)


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
    wd = pairs(wd, k)                                              # (N, K, O, W, C)
    sd = sg(wd)
    ax = ops.max(ops.abs(ops.where(wx > big, wx, 0.0)), axis=2, keepdims=True)  # (N, O, 1, C)
    mask_i = ops.expand_dims(sg(_argmax_mask(wx, 2, ax)), 1)
    wx, ax = ops.expand_dims(wx, 1), ops.expand_dims(ax, 1)
    wr = wx - sd
    scale = ax + ops.max(ops.abs(sd), axis=3, keepdims=True)       # (N, K, O, 1, C)
    dout = ops.max(wx, axis=3) - ops.max(wr, axis=3)                # (N, K, O, C)
    # a difference within the tie tolerance is a tie: exactly 0 (RevealCancel downstream
    # splits Δ by sign, which roundoff would otherwise decide)
    dout = ops.where(ops.abs(dout) <= _roundoff(dout, scale[:, :, :, 0]), 0.0, dout)
    if variant == "gradient":
        weight = mask_i
    else:
        mask_j = sg(_argmax_mask(wr, 3, scale))
        # λ = a / (a + b) with a = x_i* - x_j* >= 0 and b = r_j* - r_i* >= 0: then
        # λ Δ_i* + (1 - λ) Δ_j* = x_i* - r_j* = Δout for the values as realised
        mask_ix = mask_i * ops.ones_like(wr)
        a = ops.relu(ops.sum(wx * (mask_ix - mask_j), axis=3))
        b = ops.relu(ops.sum(wr * (mask_j - mask_ix), axis=3))
        tot = a + b
        lam = ops.where(tot > 0, a / ops.where(tot > 0, tot, ops.ones_like(tot)), 1.0)
        lam = ops.expand_dims(lam, 3)
        weight = sg(lam * mask_i + (1.0 - lam) * mask_j)
    out = sg(dout) + ops.sum((wd - sd) * weight, axis=3)
    out = unpairs(out)
    return ops.reshape(out, (out.shape[0],) + tuple(out_shape) + (out.shape[-1],))

