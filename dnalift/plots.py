"""Figures (the end of the data flow: score files and hit tables -> PNG): contribution vs PWM
score of motif hits, sequence logos of contribution tracks (with motif hits marked), and
discovered patterns next to their matched database motif.

matplotlib with the non-interactive Agg backend; logos with logomaker. Every function writes a
PNG atomically (temporary name, then rename) and returns the figure size in pixels.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd

from dnalift.errors import InputError
from dnalift.fileio import atomic_output
from dnalift.motifs import contribution_column, read_tsv
from dnalift.sequences import ALPHABET


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike, dpi: int) -> tuple[int, int]:
    plt = _pyplot()
    with atomic_output(path, keep_suffix=True) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    width, height = fig.get_size_inches() * dpi
    plt.close(fig)
    return int(round(width)), int(round(height))


def plot_hits(hits: pd.DataFrame, path: str | os.PathLike, *, methods: Sequence[str],
              tasks: Sequence[str], motifs: Sequence[str] | None = None,
              dpi: int = 100) -> tuple[int, int]:
    """Contribution vs PWM log-odds of every hit: a row per (task, motif), a column per method.

    Embedded hits red, background hits grey, hits on an instance of the other motif blue.

    Parameters
    ----------
    hits : pd.DataFrame
        Hit table with ``motif, score, embedded`` and ``contrib.<method>.<task>`` columns
        (:func:`dnalift.motifs.add_contributions`).
    path : path-like
        PNG to write.
    methods, tasks : sequences of str
    motifs : sequence of str, optional
        Default: the motifs in ``hits`` in order of appearance.

    Returns
    -------
    (width, height) in pixels.
    """
    motifs = list(dict.fromkeys(hits["motif"])) if motifs is None else list(motifs)
    for m in methods:
        for t in tasks:
            if contribution_column(m, t) not in hits.columns:
                raise InputError(f"hit table has no column {contribution_column(m, t)}")
    if not motifs or not methods or not tasks:
        raise InputError("nothing to plot: no motifs, methods or tasks")
    plt = _pyplot()
    rows = [(t, m) for t in tasks for m in motifs]
    fig, axes = plt.subplots(len(rows), len(methods), squeeze=False, sharex="row",
                             figsize=(3.2 * len(methods), 2.6 * len(rows)))
    embedded = hits["embedded"].to_numpy(bool) if "embedded" in hits else np.zeros(len(hits), bool)
    other = (hits["overlaps_other"].to_numpy(bool) if "overlaps_other" in hits
             else np.zeros(len(hits), bool))
    for r, (task, motif) in enumerate(rows):
        sel = (hits["motif"] == motif).to_numpy()
        for c, method in enumerate(methods):
            ax = axes[r, c]
            y = hits[contribution_column(method, task)].to_numpy()
            x = hits["score"].to_numpy()
            bg, em, ot = sel & ~embedded & ~other, sel & embedded, sel & other
            ax.scatter(x[bg], y[bg], s=6, c="0.6", alpha=0.6, lw=0, label="background hit")
            ax.scatter(x[ot], y[ot], s=6, c="tab:blue", alpha=0.5, lw=0,
                       label="on the other motif")
            ax.scatter(x[em], y[em], s=6, c="tab:red", alpha=0.7, lw=0, label="embedded")
            ax.axhline(0, color="k", lw=0.5)
            if r == 0:
                ax.set_title(method, fontsize=10)
            if c == 0:
                ax.set_ylabel(f"task {task}\n{motif}\ncontribution", fontsize=8)
            if r == len(rows) - 1:
                ax.set_xlabel("PWM log-odds (bits)", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0, -1].legend(fontsize=7, markerscale=2, loc="upper left")
    fig.tight_layout()
    return _save(fig, path, dpi)


def contribution_matrix(onehot: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Per-base contributions placed on the observed base: ``(L, 4)`` = onehot * actual[:, None].

    Parameters
    ----------
    onehot : np.ndarray
        ``(L, 4)`` one-hot sequence.
    actual : np.ndarray
        ``(L,)`` actual contributions.
    """
    onehot = np.asarray(onehot, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if onehot.ndim != 2 or onehot.shape[1] != 4 or actual.shape != onehot.shape[:1]:
        raise InputError(f"logo needs (L, 4) one-hot and (L,) scores, got {onehot.shape} "
                         f"and {actual.shape}")
    return onehot * actual[:, None]


def plot_logo(matrix: np.ndarray, path: str | os.PathLike, *, title: str = "",
              start: int = 0, highlight: Sequence[tuple[int, int]] = (),
              dpi: int = 100) -> tuple[int, int]:
    """Sequence logo of a contribution matrix (letters scaled by their contribution).

    Parameters
    ----------
    matrix : np.ndarray
        ``(L, 4)`` ACGT contributions (e.g. :func:`contribution_matrix`, or hypothetical
        scores).
    path : path-like
        PNG to write.
    title : str
    start : int
        Coordinate of the first column (x-axis labels).
    highlight : sequence of (start, end)
        Intervals (same coordinates) shaded in the background, e.g. embedded motifs.

    Returns
    -------
    (width, height) in pixels.
    """
    matrix = _check_matrix(matrix)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, matrix.shape[0] / 12), 2.2))
    _draw_logo(ax, matrix, start=start, highlight=highlight, ylabel="contribution",
               title=title)
    fig.tight_layout()
    return _save(fig, path, dpi)


def _check_matrix(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != 4 or matrix.shape[0] == 0:
        raise InputError(f"logo needs an (L, 4) matrix, got {matrix.shape}")
    return matrix


def _draw_logo(ax, matrix: np.ndarray, *, start: int = 0,
               highlight: Sequence[tuple[int, int]] = (), ylabel: str = "", title: str = "",
               labels: Sequence[str] = ()) -> None:
    """Logo of ``matrix (L, 4)`` on ``ax``, x from ``start``; ``highlight`` spans shaded
    (labelled with ``labels`` above the logo when given)."""
    import logomaker

    length = matrix.shape[0]
    df = pd.DataFrame(matrix, columns=list(ALPHABET), index=np.arange(start, start + length))
    for i, (lo, hi) in enumerate(highlight):
        ax.axvspan(lo - 0.5, hi - 0.5, color="gold", alpha=0.25, lw=0)
    logomaker.Logo(df, ax=ax, color_scheme="classic")
    ax.axhline(0, color="k", lw=0.5)
    top = max(float(np.clip(matrix, 0, None).sum(axis=1).max()), 1e-9)
    for (lo, hi), label in zip(highlight, labels):
        ax.text((lo + hi - 1) / 2, top * 1.02, label, ha="center", va="bottom", fontsize=7)
    if labels:
        ax.set_ylim(top=top * 1.25)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("position")
    if title:
        ax.set_title(title, fontsize=10)


def information_matrix(ppm: np.ndarray, background: Sequence[float] = (0.25,) * 4) -> np.ndarray:
    """Letter heights of an information-content logo: ``ppm (W, 4)`` times each column's
    information in bits, ``sum_b p_b log2(p_b / background_b)``."""
    ppm = np.asarray(ppm, dtype=np.float64)
    bg = np.asarray(background, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ic = np.nansum(np.where(ppm > 0, ppm * np.log2(ppm / bg), 0.0), axis=1)
    return ppm * ic[:, None]


def plot_pattern_match(cwm: np.ndarray, motif_ppm: np.ndarray | None, path: str | os.PathLike,
                       *, title: str = "", match: str = "", strand: str = "+",
                       offset: int = 0, dpi: int = 100) -> tuple[int, int]:
    """A discovered pattern's contribution-weight logo above its matched database motif.

    Parameters
    ----------
    cwm : np.ndarray
        ``(W, 4)`` trimmed contribution-weight matrix of the pattern.
    motif_ppm : np.ndarray or None
        ``(V, 4)`` probabilities of the matched motif (drawn as an information-content logo,
        reverse-complemented when ``strand == "-"``, shifted so the aligned columns line
        up); None draws the pattern alone.
    match, strand, offset
        The match (:func:`dnalift.motifmatch.best_alignment`: target column ``offset`` is
        aligned with the first column of the oriented pattern).

    Returns
    -------
    (width, height) in pixels.
    """
    cwm = _check_matrix(cwm)
    plt = _pyplot()
    rows = 1 if motif_ppm is None else 2
    width = cwm.shape[0] if motif_ppm is None else max(cwm.shape[0], len(motif_ppm))
    fig, axes = plt.subplots(rows, 1, squeeze=False,
                             figsize=(max(4.0, width / 2.5, 0.09 * len(title)), 2.0 * rows))
    if motif_ppm is None:
        _draw_logo(axes[0, 0], cwm, ylabel="contribution", title=title)
    else:
        motif = _check_matrix(motif_ppm)
        if strand == "-":  # the pattern's reverse complement aligned: show the motif's
            motif, offset = motif[::-1, ::-1], len(motif) - offset - cwm.shape[0]
        _draw_logo(axes[0, 0], cwm, start=0, ylabel="contribution", title=title)
        _draw_logo(axes[1, 0], information_matrix(motif), start=-offset, ylabel="bits",
                   title=f"{match} ({'reverse complement' if strand == '-' else 'forward'})")
        lo, hi = min(0, -offset), max(cwm.shape[0], len(motif) - offset)
        for ax in axes[:, 0]:
            ax.set_xlim(lo - 0.5, hi - 0.5)
    fig.tight_layout()
    return _save(fig, path, dpi)


def plot_region_track(onehot: np.ndarray, actual: np.ndarray, path: str | os.PathLike, *,
                      hits: Sequence[tuple[int, int, str]] = (), start: int = 0,
                      title: str = "", dpi: int = 100) -> tuple[int, int]:
    """Contributions of one region as a logo over a window, with motif hits shaded and
    named.

    Parameters
    ----------
    onehot : np.ndarray
        ``(L, 4)`` one-hot window.
    actual : np.ndarray
        ``(L,)`` actual contributions of the window.
    hits : sequence of (start, end, name)
        Hits in window coordinates offset by ``start`` (the x-axis coordinate of column 0).
    """
    matrix = contribution_matrix(onehot, actual)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, matrix.shape[0] / 12), 2.4))
    _draw_logo(ax, matrix, start=start, highlight=[(s, e) for s, e, _ in hits],
               labels=[n for _, _, n in hits], ylabel="contribution", title=title)
    fig.tight_layout()
    return _save(fig, path, dpi)


def plot_hits_file(path: str | os.PathLike, output: str | os.PathLike,
                   dpi: int = 100) -> tuple[int, int]:
    """:func:`plot_hits` of a hit TSV written by ``dnalift motifs`` (methods and tasks are
    taken from its ``contrib.<method>.<task>`` columns)."""
    hits = read_tsv(path, "hit table")
    pairs = [c.split(".", 2)[1:] for c in hits.columns if c.startswith("contrib.")]
    if not pairs or any(len(p) != 2 for p in pairs):
        raise InputError(f"{path}: no contrib.<method>.<task> columns (not a hit table of "
                         "`dnalift motifs`?)")
    if hits.empty:
        raise InputError(f"{path}: the hit table has no hits (header line only)")
    methods = list(dict.fromkeys(p[0] for p in pairs))
    tasks = list(dict.fromkeys(p[1] for p in pairs))
    return plot_hits(hits, output, methods=methods, tasks=tasks, dpi=dpi)


def plot_sequence_from_h5(path: str | os.PathLike, sequence: str, output: str | os.PathLike, *,
                          task: str | None = None, start: int | None = None,
                          end: int | None = None, embedded: str | os.PathLike | None = None,
                          dpi: int = 100) -> tuple[int, int]:
    """Logo of the actual contributions of one sequence of a ``dnalift score`` HDF5 file.

    Parameters
    ----------
    path : path-like
        Score file (read lazily with :class:`dnalift.scorefile.ScoreFile`).
    sequence : str
        Record name.
    task : str, optional
        Task label; default the first.
    start, end : int, optional
        Interval to draw (0-based, half-open); default the whole sequence.
    embedded : path-like, optional
        Embedded-motif TSV; this sequence's instances are shaded.
    """
    from dnalift.motifs import read_embedded
    from dnalift.scorefile import ScoreFile

    with ScoreFile(path) as sf:  # reads only this sequence's row
        i, t = sf.index(sequence), sf.task_index(task)
        length, method, label = sf.length, sf.mode, sf.tasks[t]
        start, end = (0 if start is None else start), (length if end is None else end)
        if end <= start:
            raise InputError(f"--start {start} --end {end}: end must be greater than start")
        if not 0 <= start < end <= length:
            raise InputError(f"--start/--end {start}-{end} outside 0-{length}")
        matrix = contribution_matrix(sf.sequences(i), sf.actual(i, t))[start:end]
    spans = []
    if embedded is not None:
        emb = read_embedded(embedded)
        emb = emb[emb["name"] == sequence]
        spans = [(max(s, start), min(e, end)) for s, e in zip(emb["start"], emb["end"])
                 if s < end and e > start]
    return plot_logo(matrix, output, title=f"{sequence}  task {label}  ({method})",
                     start=start, highlight=spans, dpi=dpi)
