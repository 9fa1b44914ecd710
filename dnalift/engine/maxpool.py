"""Engine, layer maths (used by the rule registry): the two max-pooling rules.

``"rescale"`` (default, summation-preserving): the pooled difference goes with weight λ to the
argmax of the input window and 1-λ to the argmax of the reference window,
λ = (Δout - Δ[j*]) / (Δ[i*] - Δ[j*]) clipped to [0, 1]. ``"gradient"`` (the paper): all to the
argmax of the input; it does not sum to delta. Layers: MaxPooling1D/2D/3D and
GlobalMaxPooling1D/2D/3D, channels last.
"""

from __future__ import annotations

import numpy as np
import keras
from keras import ops

from dnalift.engine.nonlinear import pairs, unpairs

L = keras.layers
MAXPOOL_LAYERS = (L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D)
GLOBAL_MAXPOOL_LAYERS = (L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D)
#: Max-pooling rule names (``DeepLift(maxpool=...)``).
MAXPOOL_RULES = ("rescale", "gradient")

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
    wd = pairs(wd, k)                                              # (N, K, O, W, C)
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
    out = unpairs(out)
    return ops.reshape(out, (out.shape[0],) + tuple(out_shape) + (out.shape[-1],))

