"""PWM scanning of one-hot sequences (a reader of the data flow: sequences + motifs -> hits).

A motif with letter probabilities ``p`` (W, 4), estimated from ``nsites`` sites, is turned into
a log-odds matrix against a background ``b`` (4,) the way FIMO does::

    p'[w, c] = (p[w, c] * nsites + a * b[c]) / (nsites + a)        a = pseudocount (0.1)
    M[w, c]  = log2(p'[w, c] / b[c])

A window ``x[i:i+W]`` (one-hot) scores ``sum(x[i:i+W] * M)`` on the + strand; the - strand uses
the reverse complement of ``M`` (``M[::-1, ::-1]`` in ACGT order). P-values are exact for the
i.i.d. background model (score distribution by dynamic programming over the columns on a grid
of 0.001 bits). Default hit threshold: p <= 1e-3, i.e. about one chance hit per 1000 positions
and strand.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from dnalift.errors import InputError
from dnalift.meme import DEFAULT_BACKGROUND, Motif

DEFAULT_PSEUDOCOUNT = 0.1
DEFAULT_PVALUE = 1e-3
_GRID = 1000  # score grid points per bit for exact p-values


def check_thresholds(pseudocount: float, pvalue: float | None,
                     min_score: float | None = None) -> None:
    """InputError unless ``pseudocount > 0``, ``0 < pvalue <= 1`` and ``min_score`` are
    finite (``--pseudocount``, ``--pvalue``, ``--min-score`` of ``dnalift motifs``)."""
    if not (math.isfinite(pseudocount) and pseudocount > 0):
        raise InputError(f"pseudocount {pseudocount}: must be > 0 (a zero count would give "
                         "a log-odds of -inf)")
    if pvalue is not None and not 0 < pvalue <= 1:
        raise InputError(f"pvalue {pvalue}: must be in (0, 1]")
    if min_score is not None and not math.isfinite(min_score):
        raise InputError(f"min_score {min_score}: must be a finite number of bits")


def log_odds_matrix(motif: Motif, background: Sequence[float] = DEFAULT_BACKGROUND,
                    pseudocount: float = DEFAULT_PSEUDOCOUNT) -> np.ndarray:
    """Log2-odds matrix ``(W, 4)`` of ``motif`` against ``background`` (see module docstring)."""
    bg = np.asarray(background, dtype=np.float64)
    n = float(motif.nsites)
    freq = (motif.probs * n + pseudocount * bg) / (n + pseudocount)
    return np.log2(freq / bg)


def scan(x: np.ndarray, log_odds: np.ndarray) -> np.ndarray:
    """PWM scores of every window on both strands.

    Parameters
    ----------
    x : np.ndarray
        ``(N, L, 4)`` one-hot sequences (ACGT).
    log_odds : np.ndarray
        ``(W, 4)`` log-odds matrix.

    Returns
    -------
    np.ndarray
        ``(N, L - W + 1, 2)`` float64; ``[..., 0]`` the + strand, ``[..., 1]`` the - strand
        (window ``x[i:i+W]`` read as the reverse complement of the motif).
    """
    x = np.asarray(x)
    width = log_odds.shape[0]
    if x.ndim != 3 or x.shape[2] != 4:
        raise InputError(f"sequences must be one-hot (N, L, 4), got shape {x.shape}")
    if x.shape[1] < width:
        raise InputError(f"sequences (length {x.shape[1]}) shorter than motif (width {width})")
    windows = np.lib.stride_tricks.sliding_window_view(x, width, axis=1)  # (N, L-W+1, 4, W)
    both = np.stack([log_odds, log_odds[::-1, ::-1]], axis=-1)  # (W, 4, 2)
    return np.einsum("nicw,wcs->nis", windows, both, optimize=True)


def score_distribution(log_odds: np.ndarray, background: Sequence[float]
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Exact null distribution of the PWM score on i.i.d. background sequence.

    Scores are rounded to a grid of 1/1000 bit.

    Returns
    -------
    scores : np.ndarray
        ``(S,)`` grid values (bits), ascending.
    survival : np.ndarray
        ``(S,)`` P(score >= scores[i]).
    """
    bg = np.asarray(background, dtype=np.float64)
    grid = np.round(log_odds * _GRID).astype(np.int64)  # (W, 4)
    lo = int(grid.min(axis=1).sum())
    prob = np.ones(1)
    offset = 0
    for row in grid:
        rmin = int(row.min())
        new = np.zeros(prob.size + int(row.max()) - rmin)
        for c in range(4):
            shift = int(row[c]) - rmin
            new[shift:shift + prob.size] += bg[c] * prob
        prob, offset = new, offset + rmin
    assert offset == lo
    survival = np.cumsum(prob[::-1])[::-1]
    return (np.arange(prob.size) + lo) / _GRID, np.minimum(survival, 1.0)


def score_threshold(log_odds: np.ndarray, background: Sequence[float], pvalue: float) -> float:
    """Smallest attainable grid score whose background p-value is <= ``pvalue``
    (``inf`` if none)."""
    scores, survival = score_distribution(log_odds, background)
    mass = survival - np.r_[survival[1:], 0.0]
    ok = np.nonzero((survival <= pvalue) & (mass > 0))[0]
    return float(scores[ok[0]]) if ok.size else float("inf")


def score_pvalues(values: np.ndarray, log_odds: np.ndarray,
                  background: Sequence[float]) -> np.ndarray:
    """Background p-values P(S >= v) of scores ``values`` (any shape).

    A window's score on the 0.001-bit grid (the sum of its rounded matrix entries) differs from
    its exact score by at most ``W / 2`` grid steps; ``v`` is mapped to the smallest grid score
    within that distance, so the p-value is exact for the window's grid score.
    """
    scores, survival = score_distribution(log_odds, background)
    width = log_odds.shape[0]
    grid = np.ceil(np.asarray(values, dtype=np.float64) * _GRID - width / 2 - 1e-9)
    idx = np.searchsorted(scores * _GRID, grid - 0.5)
    return np.where(idx < scores.size, survival[np.minimum(idx, scores.size - 1)], 0.0)


# --------------------------------------------------------------------------- hits

HIT_COLUMNS = ["name", "motif", "start", "end", "strand", "score", "pvalue"]


def find_hits(x: np.ndarray, names: Sequence[str], motifs: Mapping[str, Motif], *,
              background: Sequence[float] = DEFAULT_BACKGROUND,
              pseudocount: float = DEFAULT_PSEUDOCOUNT,
              pvalue: float | None = DEFAULT_PVALUE, min_score: float | None = None,
              nonoverlapping: bool = True) -> pd.DataFrame:
    """Motif hits in one-hot sequences.

    Parameters
    ----------
    x : np.ndarray
        ``(N, L, 4)`` one-hot sequences.
    names : sequence of str
        ``N`` sequence names.
    motifs : mapping name -> Motif
    background, pseudocount
        For the log-odds matrix and the p-values.
    pvalue : float or None
        Keep windows with background p-value <= this (default 1e-3).
    min_score : float or None
        Keep windows with log-odds >= this (bits); overrides ``pvalue`` when given.
    nonoverlapping : bool
        Per sequence and motif, keep the best-scoring hit and drop hits overlapping a kept one
        (greedy, in order of decreasing score; either strand).

    Returns
    -------
    pd.DataFrame
        Columns ``name, motif, start, end, strand, score, pvalue``; 0-based half-open,
        sorted by name, motif, start.
    """
    if len(names) != len(x):
        raise InputError(f"{len(names)} names for {len(x)} sequences")
    check_thresholds(pseudocount, pvalue, min_score)
    frames = []
    for motif in motifs.values():
        lo = log_odds_matrix(motif, background, pseudocount)
        scores = scan(x, lo)
        if min_score is not None:
            n_idx, pos, strand = np.nonzero(scores >= min_score)
        else:
            n_idx, pos, strand = np.nonzero(score_pvalues(scores, lo, background) <= pvalue)
        vals = scores[n_idx, pos, strand]
        if nonoverlapping and vals.size:
            keep = _greedy_nonoverlapping(n_idx, pos, vals, motif.width)
            n_idx, pos, strand, vals = n_idx[keep], pos[keep], strand[keep], vals[keep]
        frames.append(pd.DataFrame({
            "name": np.asarray(names, dtype=object)[n_idx], "motif": motif.name,
            "start": pos.astype(np.int64), "end": (pos + motif.width).astype(np.int64),
            "strand": np.where(strand == 0, "+", "-"), "score": vals,
            "pvalue": score_pvalues(vals, lo, background)}))
    hits = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=HIT_COLUMNS)
    order = {n: i for i, n in enumerate(names)}
    hits = hits.assign(_o=hits["name"].map(order)).sort_values(["_o", "motif", "start"])
    return hits.drop(columns="_o").reset_index(drop=True)


def _greedy_nonoverlapping(seq: np.ndarray, pos: np.ndarray, score: np.ndarray,
                           width: int) -> np.ndarray:
    """Indices of hits kept by greedy non-maximum suppression within each sequence."""
    order = np.lexsort((pos, -score, seq))
    keep = []
    taken: dict[int, list[int]] = {}
    for i in order:
        starts = taken.setdefault(int(seq[i]), [])
        if all(abs(int(pos[i]) - s) >= width for s in starts):
            starts.append(int(pos[i]))
            keep.append(i)
    return np.sort(np.asarray(keep, dtype=np.int64))
