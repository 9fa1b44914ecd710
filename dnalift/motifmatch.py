"""Motif comparison, TOMTOM-like (discovered patterns -> **names**: the step after TF-MoDISco
that matches each pattern's PPM against a motif database such as a MEME file).

Two methods give a p-value per (pattern, database motif) pair:

* ``"memelite"``: TOMTOM's complete-score p-values as computed by memelite's ``tomtom``
  (the optional ``motifs`` extra; what ``modisco report --lite`` uses). Its null distribution
  is built from the database's columns, so with a small database (fewer than ~25 motifs)
  its p-values depend strongly on which motifs the database holds.
* ``"dnalift"`` (no extra needed): the alignment score is the sum, over aligned columns, of
  the Pearson correlation of the query and target columns (TOMTOM's ``-dist pearson``),
  maximised over offsets with at least ``min_overlap`` aligned columns and over both strands
  of the query. The p-value is empirical: the fraction of ``n_null`` column-permuted copies of
  the query (same columns, order destroyed) whose best score reaches the observed one,
  ``(1 + #{null >= observed}) / (n_null + 1)``; it does not depend on the rest of the
  database.

q-values are Benjamini-Hochberg adjusted over every (pattern, motif) pair of one comparison.
Matrices are ``(W, 4)`` ACGT probabilities.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from dnalift.errors import DnaliftError

METHODS = ("auto", "memelite", "dnalift")
#: Columns of :func:`compare`'s table.
COLUMNS = ("query", "target", "pvalue", "qvalue", "score", "offset", "overlap", "strand",
           "method")


def column_pearson(query: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pearson correlation of every query column with every target column.

    Parameters
    ----------
    query : (W, 4)
    target : (V, 4)

    Returns
    -------
    (W, V) float64; 0 where a column is constant (uniform).
    """
    q = np.asarray(query, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    q = q - q.mean(axis=1, keepdims=True)
    t = t - t.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(q, axis=1)[:, None] * np.linalg.norm(t, axis=1)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (q @ t.T) / norm
    return np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0)


def _offsets(w: int, v: int, min_overlap: int) -> np.ndarray:
    """Offsets ``o`` (query column i aligned with target column i + o) with enough overlap."""
    need = min(min_overlap, w, v)
    return np.array([o for o in range(-(w - 1), v)
                     if min(w, v - o) - max(0, -o) >= need], dtype=np.int64)


def _diagonal_sums(c: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``c (..., W, V)`` -> ``(..., n_offsets)``: sums of the aligned entries per offset."""
    return np.stack([np.trace(c, offset=int(o), axis1=-2, axis2=-1) for o in offsets], -1)


def best_alignment(query: np.ndarray, target: np.ndarray,
                   min_overlap: int = 5) -> tuple[float, int, str, int]:
    """Best alignment of ``query (W, 4)`` (either strand) on ``target (V, 4)``.

    Returns
    -------
    score : float
        Sum of column Pearson correlations over the aligned columns.
    offset : int
        Target column aligned with the first column of the (oriented) query.
    strand : {"+", "-"}
        ``-``: the reverse complement of the query aligns.
    overlap : int
        Aligned columns.
    """
    w, v = len(query), len(target)
    offsets = _offsets(w, v, min_overlap)
    scores = np.stack([_diagonal_sums(column_pearson(q, target), offsets)
                       for q in (query, np.asarray(query)[::-1, ::-1])])
    s, i = np.unravel_index(int(np.argmax(scores)), scores.shape)
    o = int(offsets[i])
    return float(scores[s, i]), o, "+-"[s], int(min(w, v - o) - max(0, -o))


def permutation_pvalue(query: np.ndarray, target: np.ndarray, *, min_overlap: int = 5,
                       n_null: int = 1000, seed: int = 0) -> float:
    """Empirical p-value of the best alignment score against column-permuted queries
    (the same permutations for every target, given the seed)."""
    query = np.asarray(query, dtype=np.float64)
    w = len(query)
    observed = best_alignment(query, target, min_overlap)[0]
    offsets = _offsets(w, len(target), min_overlap)
    perms = np.argsort(np.random.default_rng(seed).random((n_null, w)), axis=1)
    fwd = column_pearson(query, target)[perms]  # (n, W, V): rows of the permuted query
    rc_rows = column_pearson(query[::-1, ::-1], target)
    rev = rc_rows[(w - 1 - perms)[:, ::-1]]  # rows of rc(permuted query)
    null = np.maximum(_diagonal_sums(fwd, offsets).max(-1), _diagonal_sums(rev, offsets).max(-1))
    return float((1 + np.sum(null >= observed - 1e-12)) / (n_null + 1))


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values (step-up, monotone, capped at 1) of a 1-D array."""
    p = np.asarray(pvalues, dtype=np.float64)
    n = p.size
    if n == 0:
        return p.copy()
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(q, 1.0)
    return out


def _memelite_table(queries: Mapping[str, np.ndarray],
                    targets: Mapping[str, np.ndarray]) -> pd.DataFrame:
    import warnings

    from memelite import tomtom

    with warnings.catch_warnings():  # the small-database warning is in the docstring above
        warnings.simplefilter("ignore")
        p, scores, offsets, overlaps, strands = tomtom(
            [np.asarray(q, dtype=np.float64).T for q in queries.values()],
            [np.asarray(t, dtype=np.float64).T for t in targets.values()])[:5]
    rows = []
    for i, qname in enumerate(queries):
        for j, tname in enumerate(targets):
            rows.append((qname, tname, float(p[i, j]), float(scores[i, j]), int(offsets[i, j]),
                         int(overlaps[i, j]), "+-"[int(strands[i, j])]))
    return pd.DataFrame(rows, columns=["query", "target", "pvalue", "score", "offset",
                                       "overlap", "strand"])


def _dnalift_table(queries: Mapping[str, np.ndarray], targets: Mapping[str, np.ndarray],
                   min_overlap: int, n_null: int, seed: int) -> pd.DataFrame:
    rows = []
    for qname, q in queries.items():
        for tname, t in targets.items():
            score, offset, strand, overlap = best_alignment(q, t, min_overlap)
            p = permutation_pvalue(q, t, min_overlap=min_overlap, n_null=n_null, seed=seed)
            rows.append((qname, tname, p, score, offset, overlap, strand))
    return pd.DataFrame(rows, columns=["query", "target", "pvalue", "score", "offset",
                                       "overlap", "strand"])


def resolve_method(method: str) -> str:
    """``auto`` -> ``memelite`` when installed, else ``dnalift``; ``memelite`` without the
    package is an error naming the extra."""
    if method not in METHODS:
        raise DnaliftError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    try:
        import memelite  # noqa: F401
        available = True
    except ImportError:
        available = False
    if method == "auto":
        return "memelite" if available else "dnalift"
    if method == "memelite" and not available:
        raise DnaliftError("memelite is not installed: pip install 'dnalift[motifs]' "
                           "(or use --method dnalift)")
    return method


def compare(queries: Mapping[str, np.ndarray], targets: Mapping[str, np.ndarray], *,
            method: str = "auto", min_overlap: int = 5, n_null: int = 1000,
            seed: int = 0) -> pd.DataFrame:
    """Every (query, target) pair with its p-value and BH q-value.

    Parameters
    ----------
    queries, targets : mapping of name to (W, 4) ACGT probabilities
    method : {"auto", "memelite", "dnalift"}
    min_overlap, n_null, seed
        Options of the ``dnalift`` method.

    Returns
    -------
    DataFrame with :data:`COLUMNS`, one row per pair (query order, then target order).
    """
    if not queries or not targets:
        return pd.DataFrame(columns=list(COLUMNS))
    method = resolve_method(method)
    table = (_memelite_table(queries, targets) if method == "memelite" else
             _dnalift_table(queries, targets, min_overlap, n_null, seed))
    table["qvalue"] = benjamini_hochberg(table["pvalue"].to_numpy())
    table["method"] = method
    return table[list(COLUMNS)]


def best_matches(table: pd.DataFrame) -> pd.DataFrame:
    """The best target of every query (lowest p-value, ties by the higher score), in query
    order."""
    if table.empty:
        return table
    ranked = table.assign(_order=np.arange(len(table)), _neg=-table["score"])
    best = ranked.sort_values(["pvalue", "_neg", "_order"]).groupby("query", sort=False).head(1)
    first = {q: i for i, q in enumerate(dict.fromkeys(table["query"]))}
    best = best.assign(_q=best["query"].map(first)).sort_values("_q")
    return best.drop(columns=["_order", "_neg", "_q"]).reset_index(drop=True)


__all__ = ["METHODS", "COLUMNS", "column_pearson", "best_alignment", "permutation_pvalue",
           "benjamini_hochberg", "resolve_method", "compare", "best_matches"]
