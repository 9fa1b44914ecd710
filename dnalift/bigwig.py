"""bigWig tracks of per-base contributions (a writer at the end of the data flow:
scores -> bigWig), with the overlap rule; knows nothing of the HDF5 layout.

Regions may overlap: each base takes the value of the covering region whose centre is
nearest (ties: the region earlier in input order). Minus-strand rows, stored in model
orientation, are flipped back to genome orientation. Files are written atomically
(:mod:`dnalift.fileio`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from dnalift.errors import InputError
from dnalift.fileio import atomic_output, temp_directory

#: Bases handled at once when resolving overlaps (bounds memory).
OVERLAP_WINDOW = 1 << 20


@dataclass(frozen=True)
class Segment:
    """Bases ``[start, end)`` of ``chrom`` whose bigWig value comes from region ``row``."""

    chrom: str
    start: int
    end: int
    row: int


def owned_segments(starts: np.ndarray, ends: np.ndarray, rows: np.ndarray,
                   window: int = OVERLAP_WINDOW) -> list[tuple[int, int, int]]:
    """Resolve overlaps on one chromosome: each base goes to the covering region whose
    centre is nearest; ties go to the region earlier in input order (smaller row).

    Parameters
    ----------
    starts, ends : np.ndarray
        ``(M,)`` region coordinates (0-based half-open) on one chromosome.
    rows : np.ndarray
        ``(M,)`` input order of each region (row in the HDF5 file).
    window : int
        Bases resolved at once; memory is ``O(window)``.

    Returns
    -------
    list of (start, end, row)
        Non-overlapping segments sorted by start; every covered base is in exactly one.
    """
    order = np.lexsort((rows, starts))
    starts, ends, rows = starts[order], ends[order], rows[order]
    twice_centre = starts + ends
    segments: list[tuple[int, int, int]] = []
    active: list[int] = []
    i, m = 0, len(starts)
    pos = int(starts[0]) if m else 0
    while i < m or active:
        if not active:
            pos = max(pos, int(starts[i]))
        hi = pos + window
        while i < m and starts[i] < hi:
            active.append(i)
            i += 1
        hi = min(hi, int(ends[active].max()))  # no work past the last covered base
        size = hi - pos
        if size <= 0:  # only empty regions left
            active, pos = [], max(pos, hi)
            continue
        best = np.full(size, np.iinfo(np.int64).max, dtype=np.int64)
        owner = np.full(size, -1, dtype=np.int64)
        pos2 = 2 * np.arange(pos, hi, dtype=np.int64) + 1  # twice the base midpoints
        for j in sorted(active, key=lambda a: rows[a]):
            a, b = max(int(starts[j]), pos) - pos, min(int(ends[j]), hi) - pos
            if a >= b:
                continue
            dist = np.abs(pos2[a:b] - twice_centre[j])
            better = dist < best[a:b]
            best[a:b][better] = dist[better]
            owner[a:b][better] = rows[j]
        change = np.flatnonzero(np.diff(owner)) + 1
        bounds = np.concatenate(([0], change, [size]))
        for a, b in zip(bounds[:-1], bounds[1:]):
            if owner[a] >= 0:
                segments.append((pos + int(a), pos + int(b), int(owner[a])))
        active = [j for j in active if ends[j] > hi]
        pos = hi
    return segments


RowReader = Callable[[int, int], np.ndarray]


def write_bigwig_rows(path: str | os.PathLike, chroms: np.ndarray, starts: np.ndarray,
                      ends: np.ndarray, strands: np.ndarray, read_rows: RowReader,
                      chrom_sizes: Mapping[str, int], *, block_rows: int = 1024) -> Path:
    """Write per-base contributions of N regions to a bigWig (atomically).

    Memory is ``O(N)`` for coordinates plus one block of rows; the values are staged
    in a temporary on-disk array (float32, one value per covered base) laid out in
    genome order, then added to the bigWig chromosome by chromosome.

    Parameters
    ----------
    chroms, starts, ends, strands : np.ndarray
        ``(N,)`` region coordinates; minus-strand values are flipped to genome order.
    read_rows : callable
        ``read_rows(lo, hi) -> (hi - lo, L)`` actual contributions of rows ``lo:hi``
        in model orientation.
    chrom_sizes : mapping
        bigWig header, in order.
    """
    import pyBigWig

    chroms = np.asarray(chroms).astype(str)
    starts, ends = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
    strands = np.asarray(strands).astype(str)
    n = len(chroms)
    order = np.argsort(chroms, kind="stable")
    names, first = np.unique(chroms[order], return_index=True)
    groups = dict(zip(names, np.split(order, first[1:]))) if n else {}
    unknown = sorted(set(groups) - set(chrom_sizes))
    if unknown:
        raise InputError(f"{path}: chromosome {unknown[0]!r} of the scored regions is not in "
                         f"the chromosome sizes ({len(unknown)} missing)")
    segments: list[Segment] = []
    for c, size in chrom_sizes.items():
        idx = groups.get(c)
        if idx is None:
            continue
        if (ends[idx] > size).any() or (starts[idx] < 0).any():
            raise InputError(f"{path}: a region on {c} lies outside [0, {size})")
        segments += [Segment(c, a, b, r) for a, b, r in owned_segments(starts[idx], ends[idx],
                                                                       idx)]
    offsets = np.cumsum([0] + [s.end - s.start for s in segments])
    by_row: dict[int, list[int]] = {}
    for si, s in enumerate(segments):
        by_row.setdefault(s.row, []).append(si)

    with temp_directory(path) as tmpdir:
        stage = np.lib.format.open_memmap(Path(tmpdir) / "values.npy", mode="w+",
                                          dtype=np.float32, shape=(max(1, int(offsets[-1])),))
        for lo in range(0, n, block_rows):
            hi = min(n, lo + block_rows)
            values = np.asarray(read_rows(lo, hi), dtype=np.float32)
            for r in range(lo, hi):
                row = values[r - lo]
                if row.shape[0] != ends[r] - starts[r]:
                    raise InputError(f"{path}: region {r} has {row.shape[0]} scores for "
                                     f"{ends[r] - starts[r]} bases")
                if strands[r] == "-":
                    row = row[::-1]
                for si in by_row.get(r, ()):
                    s = segments[si]
                    stage[offsets[si]:offsets[si + 1]] = row[s.start - starts[r]:s.end - starts[r]]
        with atomic_output(path) as tmp:
            bw = pyBigWig.open(str(tmp), "w")
            try:
                bw.addHeader([(c, int(size)) for c, size in chrom_sizes.items()])
                _add_runs(bw, segments, offsets, stage)
            finally:
                bw.close()
        del stage
    return Path(path)


def _add_runs(bw: Any, segments: Sequence[Segment], offsets: np.ndarray, stage: np.ndarray,
              max_run: int = 1 << 20) -> None:
    """Add staged values as fixed-step runs, merging genome-contiguous segments."""
    i = 0
    while i < len(segments):
        j = i + 1
        while (j < len(segments) and segments[j].chrom == segments[i].chrom
               and segments[j].start == segments[j - 1].end):
            j += 1
        chrom, start = segments[i].chrom, segments[i].start
        lo, hi = int(offsets[i]), int(offsets[j])
        for a in range(lo, hi, max_run):
            b = min(hi, a + max_run)
            bw.addEntries(chrom, start + (a - lo), values=np.ascontiguousarray(stage[a:b],
                          dtype=np.float64), span=1, step=1)
        i = j


def write_bigwig(path: str | os.PathLike, regions: Sequence[Any], actual: np.ndarray,
                 chrom_sizes: Mapping[str, int]) -> Path:
    """Write in-memory per-base contributions ``actual`` ``(N, L)`` of ``regions`` to a bigWig.

    Overlaps: each base takes the value of the covering region with the nearest centre
    (ties: the earlier region); minus-strand rows are flipped to genome orientation.
    """
    actual = np.asarray(actual)
    return write_bigwig_rows(path, np.array([r.chrom for r in regions], dtype=object),
                             np.array([r.start for r in regions]),
                             np.array([r.end for r in regions]),
                             np.array([r.strand for r in regions], dtype=object),
                             lambda lo, hi: actual[lo:hi], chrom_sizes)


__all__ = ["Segment", "owned_segments", "write_bigwig_rows", "write_bigwig", "OVERLAP_WINDOW"]
