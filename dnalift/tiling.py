"""Tiling a genome into fixed-width windows for genome-wide scoring.

Rules (the ``dnalift tile`` command and the workflow's ``tile`` rule follow them):

- Windows are 0-based half-open ``[start, start + width)`` with ``start = 0, step, 2*step, ...``
  on every selected chromosome, in FASTA order; ``step < width`` gives overlapping windows,
  ``step > width`` leaves gaps.
- A window that would run past the chromosome end is dropped, so every window has exactly
  ``width`` bases (a fixed-input model cannot score a shorter one); a chromosome shorter than
  ``width`` gets no window. With ``cover_end=True`` one more window ``[length - width, length)``
  is added where the regular windows leave the chromosome's tail uncovered.
- Any base other than A, C, G, T (either case) counts as N. A window is kept when its N fraction
  is ``<= max_n_fraction``; a window that is all N is always dropped.
- Chromosome selection: a chromosome is used when ``include`` (a Python regular expression,
  ``re.search``; anchor it with ``^...$`` for an exact match) matches its name, or is None,
  and ``exclude`` does not match it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from dnalift.errors import InputError
from dnalift.fileio import open_atomic
from dnalift.sequences import Region, check_input_file, open_fasta, sequence_codes

DEFAULT_MAX_N_FRACTION = 0.5
#: Bases read at once when counting Ns (bounds memory on long chromosomes).
DEFAULT_CHUNK = 1 << 23


Fetch = Callable[[str, int, int], str]


@dataclass(frozen=True)
class ChromTiles:
    """The windows kept on one chromosome.

    Attributes
    ----------
    chrom : str
    starts : np.ndarray
        ``(M,)`` int64, sorted 0-based window starts.
    width : int
    n_candidates : int
        Windows before the N filter (``n_candidates - len(starts)`` were dropped as N-rich).
    """

    chrom: str
    starts: np.ndarray
    width: int
    n_candidates: int

    def regions(self) -> Iterator[Region]:
        """The windows as :class:`~dnalift.sequences.Region` (+ strand, name ``chrom:start-end``)."""
        for start in self.starts.tolist():
            end = start + self.width
            yield Region(self.chrom, start, end, "+", f"{self.chrom}:{start}-{end}")


@dataclass(frozen=True)
class TilingSummary:
    """Counts of one tiling run (what :func:`write_bed` wrote)."""

    n_windows: int
    n_chromosomes: int
    n_dropped: int


def check_parameters(width: int, step: int, max_n_fraction: float) -> None:
    """Raise :class:`InputError` unless ``width, step >= 1`` and ``0 <= max_n_fraction <= 1``
    (the messages name the ``dnalift tile`` options)."""
    if width < 1:
        raise InputError(f"--width {width}: the window width must be >= 1")
    if step < 1:
        raise InputError(f"--step {step}: the distance between window starts must be >= 1")
    if not 0.0 <= max_n_fraction <= 1.0:
        raise InputError(f"--max-n-fraction {max_n_fraction}: the largest fraction of "
                         "non-ACGT bases must be in [0, 1]")


def window_starts(length: int, width: int, step: int, *, cover_end: bool = False) -> np.ndarray:
    """Starts of the full windows on a sequence of ``length`` bases.

    Returns
    -------
    np.ndarray
        ``(M,)`` int64, ``0, step, ...`` up to ``length - width``; plus ``length - width`` when
        ``cover_end`` and the last regular window ends before ``length``. Empty when
        ``length < width``.
    """
    if length < width:
        return np.zeros(0, dtype=np.int64)
    starts = np.arange(0, length - width + 1, step, dtype=np.int64)
    if cover_end and starts[-1] + width < length:
        starts = np.append(starts, np.int64(length - width))
    return starts


def ambiguous_mask(seq: str) -> np.ndarray:
    """``(L,)`` bool: True where ``seq`` has a base other than A, C, G, T (either case)."""
    return sequence_codes(seq) > 3


def n_fractions(mask: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """Fraction of masked bases in each window ``[s, s + width)`` of ``mask`` ``(L,)``.

    Returns
    -------
    np.ndarray
        ``(M,)`` float64 for ``starts`` ``(M,)`` (all windows must lie inside ``mask``).
    """
    csum = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
    return (csum[starts + width] - csum[starts]) / width


def select_chromosomes(names: Sequence[str], include: str | None = None,
                       exclude: str | None = None) -> list[str]:
    """The names, in order, that match ``include`` (if given) and not ``exclude`` (if given).

    Raises
    ------
    InputError
        A pattern is not a valid regular expression.
    """
    def compile_(label: str, pattern: str | None):
        if not pattern:
            return None
        try:
            return re.compile(pattern)
        except re.error as err:
            raise InputError(f"--{label} {pattern!r}: not a regular expression ({err})"
                             ) from None

    inc, exc = compile_("include", include), compile_("exclude", exclude)
    return [n for n in names
            if (inc is None or inc.search(n)) and not (exc is not None and exc.search(n))]


def tile_chromosome(chrom: str, length: int, fetch: Fetch, width: int, step: int, *,
                    max_n_fraction: float = DEFAULT_MAX_N_FRACTION, cover_end: bool = False,
                    chunk: int = DEFAULT_CHUNK) -> ChromTiles:
    """Windows of one chromosome that pass the N filter.

    Parameters
    ----------
    chrom, length
        Chromosome name and length.
    fetch : callable
        ``fetch(chrom, start, end) -> str``, the bases ``[start, end)``; called on pieces of
        about ``chunk`` bases so that memory stays bounded on long chromosomes.
    width, step, max_n_fraction, cover_end
        See the module docstring.
    """
    check_parameters(width, step, max_n_fraction)
    starts = window_starts(length, width, step, cover_end=cover_end)
    per_block = max(1, chunk // step)
    kept = []
    for b in range(0, starts.size, per_block):
        block = starts[b:b + per_block]
        lo, hi = int(block[0]), int(block[-1]) + width
        seq = fetch(chrom, lo, hi)
        if len(seq) != hi - lo:
            raise InputError(f"{chrom}: expected {hi - lo} bases at {lo}-{hi}, got {len(seq)}")
        frac = n_fractions(ambiguous_mask(seq), block - lo, width)
        kept.append(block[(frac <= max_n_fraction) & (frac < 1.0)])
    kept_starts = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
    return ChromTiles(chrom, kept_starts, width, int(starts.size))


def tile_genome(fasta_path: str | os.PathLike, width: int, step: int, *,
                include: str | None = None, exclude: str | None = None,
                max_n_fraction: float = DEFAULT_MAX_N_FRACTION, cover_end: bool = False,
                chunk: int = DEFAULT_CHUNK) -> Iterator[ChromTiles]:
    """Tile every selected chromosome of an (indexed or indexable) FASTA file, in file order.

    Yields one :class:`ChromTiles` per selected chromosome (possibly with no window).

    Raises
    ------
    InputError
        The file cannot be read as FASTA, a parameter is out of range, or no chromosome is
        selected.
    """
    check_parameters(width, step, max_n_fraction)
    path = check_input_file(fasta_path, "genome FASTA")
    with open_fasta(path) as fasta:
        chroms = select_chromosomes(list(fasta.keys()), include, exclude)
        if not chroms:
            raise InputError(f"{path}: no chromosome matches include={include!r} "
                             f"exclude={exclude!r}")

        def fetch(chrom: str, start: int, end: int) -> str:
            return fasta[chrom][start:end]

        for chrom in chroms:
            yield tile_chromosome(chrom, len(fasta[chrom]), fetch, width, step,
                                  max_n_fraction=max_n_fraction, cover_end=cover_end,
                                  chunk=chunk)


def bed_lines(tiles: ChromTiles) -> str:
    """BED4 text (``chrom start end chrom:start-end``, one line per window) of one chromosome."""
    return "".join(f"{r.chrom}\t{r.start}\t{r.end}\t{r.name}\n" for r in tiles.regions())


def write_bed(tiles: Iterable[ChromTiles], path: str | os.PathLike) -> TilingSummary:
    """Write the windows as BED4, atomically (temporary name, renamed when complete).

    Raises
    ------
    InputError
        No window passes the filters (an empty region file would only fail later).
    """
    path = os.fspath(path)
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    n_windows = n_chroms = n_dropped = 0
    with open_atomic(path, encoding="ascii") as handle:
        for chrom_tiles in tiles:
            handle.write(bed_lines(chrom_tiles))
            n_windows += chrom_tiles.starts.size
            n_chroms += 1
            n_dropped += chrom_tiles.n_candidates - chrom_tiles.starts.size
        if n_windows == 0:
            raise InputError(f"{path}: no window passes the filters (genome shorter than the "
                             f"width, or too N-rich)")
    return TilingSummary(n_windows, n_chroms, n_dropped)
