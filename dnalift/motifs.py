"""Motif evaluation (the end of the data flow: scores + PWM hits -> tables): hit tables with
the contribution summed over each hit, and embedded-vs-background summaries against a table
of known motif instances (e.g. the simulated task's embedded motifs).

Motif files are read by :mod:`dnalift.meme`, hits found by :mod:`dnalift.pwm`, scores read by
:mod:`dnalift.scorefile`; this module combines them.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from dnalift.errors import InputError
from dnalift.fileio import write_text
from dnalift.meme import DEFAULT_BACKGROUND, Motif
from dnalift.pwm import DEFAULT_PSEUDOCOUNT, DEFAULT_PVALUE, find_hits
from dnalift.scorefile import ScoredSequences


def mark_embedded(hits: pd.DataFrame, embedded: pd.DataFrame) -> pd.DataFrame:
    """Add boolean columns ``embedded`` (the hit overlaps a recorded instance of its own motif)
    and ``overlaps_other`` (it overlaps a recorded instance of another motif only).

    Parameters
    ----------
    hits : pd.DataFrame
        With ``name, motif, start, end``.
    embedded : pd.DataFrame
        Recorded instances with ``name, motif, start, end`` (as written by
        :func:`dnalift.simulate.write_simulation`).
    """
    key = hits[["name", "motif", "start", "end"]].reset_index()
    pairs = key.merge(embedded[["name", "motif", "start", "end"]], on="name",
                      suffixes=("", "_e"))
    overlap = (pairs["start"] < pairs["end_e"]) & (pairs["start_e"] < pairs["end"])
    same = overlap & (pairs["motif"] == pairs["motif_e"])
    own = set(pairs.loc[same, "index"])
    other = set(pairs.loc[overlap & ~same, "index"]) - own
    out = hits.copy()
    out["embedded"] = [i in own for i in hits.index]
    out["overlaps_other"] = [i in other for i in hits.index]
    return out


def contribution_column(method: str, task: str) -> str:
    """Name of the hit-table column holding the summed contribution of ``method``/``task``."""
    return f"contrib.{method}.{task}"


def add_contributions(hits: pd.DataFrame, names: Sequence[str],
                      contributions: Mapping[str, np.ndarray],
                      tasks: Sequence[str]) -> pd.DataFrame:
    """Add the summed actual contribution over each hit, per method and task.

    Parameters
    ----------
    hits : pd.DataFrame
        With ``name, start, end``.
    names : sequence of str
        ``N`` names, the row order of the arrays.
    contributions : mapping method -> np.ndarray
        ``(N, T, L)`` actual contributions (``Attribution.actual``), or ``(N, L)`` for T = 1.
    tasks : sequence of str
        ``T`` task labels.

    Returns
    -------
    pd.DataFrame
        A copy with columns ``contrib.<method>.<task>``.
    """
    index = {n: i for i, n in enumerate(names)}
    missing = sorted(set(hits["name"]) - set(index))
    if missing:
        raise InputError(f"hit sequence {missing[0]} has no contribution scores")
    rows = hits["name"].map(index).to_numpy(dtype=np.int64)
    starts, ends = hits["start"].to_numpy(np.int64), hits["end"].to_numpy(np.int64)
    out = hits.copy()
    for method, arr in contributions.items():
        arr = _as_ntl(arr, len(names), len(tasks), method)
        csum = np.concatenate([np.zeros(arr.shape[:2] + (1,)), np.cumsum(arr, axis=2)], axis=2)
        for t, task in enumerate(tasks):
            out[contribution_column(method, task)] = csum[rows, t, ends] - csum[rows, t, starts]
    return out


def _as_ntl(arr: np.ndarray, n: int, t: int, method: str) -> np.ndarray:
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[:, None, :]
    if arr.ndim != 3 or arr.shape[0] != n or arr.shape[1] != t:
        raise InputError(f"contributions of {method}: expected (N={n}, T={t}, L), "
                         f"got {arr.shape}")
    return arr


# --------------------------------------------------------------------------- summaries

def top_window_overlap(contrib: np.ndarray, names: Sequence[str], embedded: pd.DataFrame,
                       motif: str, width: int) -> tuple[float, int]:
    """Fraction of sequences carrying ``motif`` whose top window overlaps an instance of it.

    The top window of a sequence is the ``width``-long window with the highest summed
    contribution.

    Parameters
    ----------
    contrib : np.ndarray
        ``(N, L)`` actual contributions for one task and method.
    names : sequence of str
    embedded : pd.DataFrame
        Recorded instances (``name, motif, start, end``).
    motif : str
    width : int

    Returns
    -------
    fraction : float
        NaN when no sequence carries the motif.
    n : int
        Number of sequences carrying the motif.
    """
    inst = embedded[embedded["motif"] == motif]
    index = {n: i for i, n in enumerate(names)}
    inst = inst[inst["name"].isin(index)]
    if inst.empty:
        return float("nan"), 0
    csum = np.concatenate([np.zeros((contrib.shape[0], 1)), np.cumsum(contrib, axis=1)], axis=1)
    window = csum[:, width:] - csum[:, :-width]  # (N, L - W + 1)
    top = window.argmax(axis=1)
    rows = inst["name"].map(index).to_numpy()
    ts = top[rows]
    hit = (ts < inst["end"].to_numpy()) & (inst["start"].to_numpy() < ts + width)
    per_seq = pd.Series(hit).groupby(rows).any()
    return float(per_seq.mean()), int(per_seq.size)


def summarize(hits: pd.DataFrame, contributions: Mapping[str, np.ndarray],
              names: Sequence[str], tasks: Sequence[str], embedded: pd.DataFrame,
              motifs: Mapping[str, Motif],
              subset: Sequence[str] | None = None) -> pd.DataFrame:
    """Per task x motif x method: embedded vs background hits.

    Parameters
    ----------
    hits : pd.DataFrame
        From :func:`find_hits` + :func:`mark_embedded` + :func:`add_contributions` (with the
        same ``contributions``, ``names`` and ``tasks``).
    contributions : mapping method -> ``(N, T, L)``
    names, tasks : as in :func:`add_contributions`
    embedded : pd.DataFrame
    motifs : mapping name -> Motif
    subset : sequence of str, optional
        Summarise only the hits and sequences with these names (e.g. the sequences that
        carry every motif, as in the paper's figure); default all.

    Returns
    -------
    pd.DataFrame
        Columns ``task, motif, method, n_embedded, n_background, mean_embedded,
        mean_background, auroc, top_window_fraction, n_sequences``. Background hits are the
        hits that overlap no embedded instance of any motif (hits on another motif's instance
        are left out: they carry that motif's contribution). ``auroc`` separates
        embedded (positive) from background hits by summed contribution (NaN when one of
        the groups is empty); ``top_window_fraction`` is :func:`top_window_overlap` over the
        ``n_sequences`` sequences that carry the motif.
    """
    from sklearn.metrics import roc_auc_score

    if subset is not None:
        keep = set(subset)
        hits = hits[hits["name"].isin(keep)]
        embedded = embedded[embedded["name"].isin(keep)]
    rows = []
    for method, arr in contributions.items():
        arr = _as_ntl(arr, len(names), len(tasks), method)
        for t, task in enumerate(tasks):
            col = contribution_column(method, task)
            for mname, motif in motifs.items():
                sub = hits[hits["motif"] == mname]
                other = sub["overlaps_other"] if "overlaps_other" in sub else False
                emb = sub.loc[sub["embedded"], col].to_numpy()
                bgd = sub.loc[~sub["embedded"] & ~other, col].to_numpy()
                auc = (roc_auc_score(np.r_[np.ones(emb.size), np.zeros(bgd.size)], np.r_[emb, bgd])
                       if emb.size and bgd.size else float("nan"))
                frac, nseq = top_window_overlap(arr[:, t], names, embedded, mname, motif.width)
                rows.append({"task": task, "motif": mname, "method": method,
                             "n_embedded": int(emb.size), "n_background": int(bgd.size),
                             "mean_embedded": float(emb.mean()) if emb.size else float("nan"),
                             "mean_background": float(bgd.mean()) if bgd.size else float("nan"),
                             "auroc": float(auc), "top_window_fraction": frac,
                             "n_sequences": nseq})
    return pd.DataFrame(rows)


def write_tsv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a table as TSV (atomic)."""
    write_text(path, df.to_csv(sep="\t", index=False, float_format="%.6g"))


def motif_report(scored: ScoredSequences, motifs: Mapping[str, Motif], *,
                 embedded: pd.DataFrame | None = None,
                 background: Sequence[float] = DEFAULT_BACKGROUND,
                 pseudocount: float = DEFAULT_PSEUDOCOUNT, pvalue: float | None = DEFAULT_PVALUE,
                 min_score: float | None = None,
                 subset: Sequence[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Hit table (with contributions) and, when ``embedded`` is given, the summary table
    (over ``subset`` of the sequences when given, see :func:`summarize`).

    Returns
    -------
    hits : pd.DataFrame
        :func:`find_hits` columns, ``embedded`` (if known) and ``contrib.<method>.<task>``.
    summary : pd.DataFrame or None
        :func:`summarize`.
    """
    hits = find_hits(scored.x, scored.names, motifs, background=background,
                     pseudocount=pseudocount, pvalue=pvalue, min_score=min_score)
    if embedded is not None:
        hits = mark_embedded(hits, embedded)
    hits = add_contributions(hits, scored.names, scored.contributions, scored.tasks)
    summary = None
    if embedded is not None:
        summary = summarize(hits, scored.contributions, scored.names, scored.tasks, embedded,
                            motifs, subset)
    return hits, summary


def read_tsv(path: str | os.PathLike, what: str, columns: Sequence[str] = (),
             **options) -> pd.DataFrame:
    """A tab-separated table with a header line (``pd.read_csv`` keywords in ``options``).

    Raises
    ------
    InputError
        Missing file, empty, binary or malformed table, or a missing column of ``columns``;
        the message names the file and what it should hold.
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: {what} not found")
    try:
        df = pd.read_csv(path, sep="\t", **options)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty {what} (no header line)") from None
    except (UnicodeDecodeError, ValueError) as err:  # binary or malformed
        text = " ".join(str(err).split())[:200]
        raise InputError(f"{path}: not a tab-separated {what} ({text})") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column {missing[0]} (not a {what}?)")
    return df


def read_embedded(path: str | os.PathLike) -> pd.DataFrame:
    """Read an embedded-motif TSV (``name, start, end, motif, ...``)."""
    return read_tsv(path, "embedded-motif table", ("name", "start", "end", "motif"))


def sequences_with_all_motifs(embedded: pd.DataFrame, motifs: Sequence[str]) -> list[str]:
    """Names of the sequences that carry at least one embedded instance of every motif."""
    sets = [set(embedded.loc[embedded["motif"] == m, "name"]) for m in motifs]
    common = set.intersection(*sets) if sets else set()
    return sorted(common)
