"""Output files of ``dnalift score``: HDF5 score files, bigWig tracks, merging of shards.

Every file is written under a temporary name in its final directory
(``.NAME.PID.tmp``) and renamed when complete, so an interrupted job never
leaves a file that looks finished.

HDF5 layout (N regions of length L, T selected tasks, K references)::

    /hyp_scores        (N, L, 4)  hard link to /tasks/<first task>/hyp_scores (tfmodisco-lite)
    /contrib_scores    (N, L)     hard link to /tasks/<first task>/contrib_scores
    /input_seqs        (N, L, 4)  one-hot, ACGT, float32 (float16 with float16=True)
    /tasks/<label>/hyp_scores      (N, L, 4) hypothetical contributions
    /tasks/<label>/contrib_scores  (N, L)    actual contributions of the observed bases
    /tasks/<label>/delta           (N, K)    target(x) - target(reference k)
    /tasks/<label>/residual        (N, K)    sum of contributions - delta
    /tasks/<label>/prediction      (N,)      target (pre-activation) at x
    /tasks/<label>/output          (N,)      model output at x (when available)
    /coords/{chrom,start,end,strand,name}  (N,) region coordinates (0-based half-open)
    /chrom_sizes/{name,size}                chromosome sizes for bigWig headers

Score arrays are in the orientation the model saw (minus-strand regions reverse
complemented); bigWig tracks flip them back to genome orientation.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import h5py
import numpy as np

from dnalift.errors import InputError
from dnalift.fileio import AtomicPath, atomic_output, check_output_path, file_sha256, temp_path

#: Largest HDF5 chunk in bytes (chunks hold whole regions).
CHUNK_BYTES = 4 << 20
#: HDF5 chunk cache per open file (holds partly written chunks of every dataset).
CACHE_BYTES = 64 << 20
#: Bases handled at once when resolving overlaps for bigWig (bounds memory).
OVERLAP_WINDOW = 1 << 20
#: Attributes that differ between the shards of one job.
SHARD_ATTRS = ("shard_index", "shard_count", "shard_start", "shard_stop", "command_line")
#: Attributes that must agree between all shards of one job.
JOB_ATTRS = ("dnalift_version", "model_sha256", "mode", "target_output", "tasks",
             "reference", "n_references", "seed", "n_total", "shard_count")

_STR = h5py.string_dtype("utf-8")


def task_key(label: str) -> str:
    """HDF5 group name of a task label (``/`` is not allowed in HDF5 names)."""
    key = str(label).replace("/", "_")
    return key if key not in ("", ".") else "_"


# --------------------------------------------------------------------------- HDF5
def _chunk_rows(length: int, batch_rows: int) -> int:
    """Rows per chunk: the largest divisor of ``batch_rows`` whose (rows, L, 4) float32
    chunk fits :data:`CHUNK_BYTES`, so that full batches fill whole chunks."""
    cap = max(1, CHUNK_BYTES // max(1, length * 4 * 4))
    batch_rows = max(1, int(batch_rows))
    return max(d for d in range(1, min(cap, batch_rows) + 1) if batch_rows % d == 0)


class HDF5Writer:
    """Stream batches of scores into an HDF5 file, renamed into place on :meth:`close`.

    Parameters
    ----------
    path : path-like
        Final file name; data go to :func:`temp_path` until :meth:`close`.
    n : int
        Expected number of regions (datasets grow if more are written; shrunk on close).
    length : int
        Sequence length L.
    tasks : sequence of str
        Labels of the T selected tasks (the first one is linked at the root).
    n_references : int
        K, the number of references per sequence.
    attrs : mapping
        Root attributes (version, model checksum, mode, target, reference, seed, shard...).
    chrom_sizes : mapping of str to int, optional
        Chromosome sizes stored for bigWig headers.
    float16 : bool
        Store ``hyp_scores``, ``contrib_scores`` and ``input_seqs`` as float16.
    batch_rows : int
        Typical batch size; chunks hold ``min(batch_rows, ~1 MiB)`` regions.
    compression : {"gzip", "lzf", None}
    """

    def __init__(self, path: str | os.PathLike, *, n: int, length: int, tasks: Sequence[str],
                 n_references: int, attrs: Mapping[str, Any],
                 chrom_sizes: Mapping[str, int] | None = None, float16: bool = False,
                 batch_rows: int = 256, compression: str | None = "gzip",
                 with_output: bool = True) -> None:
        self.path = Path(path)
        self._atomic = AtomicPath(self.path)
        self.tmp = self._atomic.tmp
        self.length = int(length)
        self.tasks = [str(t) for t in tasks]
        if len({task_key(t) for t in self.tasks}) != len(self.tasks):
            raise InputError(f"{self.path}: task labels are not unique: {self.tasks}")
        self.n_written = 0
        self.with_output = with_output
        self._file = h5py.File(self.tmp, "w", rdcc_nbytes=CACHE_BYTES)
        try:
            _create_layout(self._file, n=int(n), length=self.length, tasks=self.tasks,
                           k=int(n_references), float16=float16,
                           chunk_rows=_chunk_rows(self.length, batch_rows),
                           compression=compression, with_output=with_output)
            write_attrs(self._file, {**attrs,
                                     "task_keys": [task_key(t) for t in self.tasks]})
            if chrom_sizes is not None:
                _write_chrom_sizes(self._file, chrom_sizes)
        except BaseException:
            self.abort()
            raise

    def write(self, regions: Sequence[Any], x: np.ndarray, attribution: Any,
              outputs: np.ndarray | None = None) -> None:
        """Append one batch.

        Parameters
        ----------
        regions : sequence of Region
            B regions (``chrom, start, end, strand, name``).
        x : np.ndarray
            ``(B, L, 4)`` one-hot sequences.
        attribution : dnalift.deeplift.Attribution
            ``hypothetical (B, T, L, 4)``, ``actual (B, T, L)``, ``delta (B, T, K)``,
            ``residual (B, T, K)``, ``prediction (B, T)``.
        outputs : np.ndarray, optional
            ``(B, T)`` model outputs (post-activation).
        """
        b = len(regions)
        if x.shape != (b, self.length, 4):
            raise InputError(f"{self.path}: batch of shape {x.shape}, expected "
                             f"({b}, {self.length}, 4)")
        rows = {"input_seqs": x}
        for t, label in enumerate(self.tasks):
            g = f"tasks/{task_key(label)}/"
            rows[g + "hyp_scores"] = attribution.hypothetical[:, t]
            rows[g + "contrib_scores"] = attribution.actual[:, t]
            rows[g + "delta"] = attribution.delta[:, t]
            rows[g + "residual"] = attribution.residual[:, t]
            rows[g + "prediction"] = attribution.prediction[:, t]
            if outputs is not None and g + "output" in self._file:
                rows[g + "output"] = outputs[:, t]
        rows["coords/chrom"] = np.array([r.chrom for r in regions], dtype=object)
        rows["coords/start"] = np.array([r.start for r in regions], dtype=np.int64)
        rows["coords/end"] = np.array([r.end for r in regions], dtype=np.int64)
        rows["coords/strand"] = np.array([r.strand for r in regions], dtype=object)
        rows["coords/name"] = np.array([r.name for r in regions], dtype=object)
        self._append(rows, b)

    def _append(self, rows: Mapping[str, np.ndarray], b: int) -> None:
        lo, hi = self.n_written, self.n_written + b
        for name, values in rows.items():
            ds = self._file[name]
            if ds.shape[0] < hi:
                ds.resize(max(hi, 2 * ds.shape[0]), axis=0)
            if ds.dtype.kind == "f":
                # cast with numpy (round to nearest): HDF5's own float32 -> float16
                # conversion can be off by a factor 2 where rounding carries into the exponent
                values = np.asarray(values).astype(ds.dtype, copy=False)
            ds[lo:hi] = values
        self.n_written = hi

    def close(self) -> Path:
        """Trim datasets to the rows written, close and rename into place; return the path."""
        for name in row_datasets(self._file):
            self._file[name].resize(self.n_written, axis=0)
        self._file.attrs["n_regions"] = self.n_written
        self._file.close()
        return self._atomic.commit()

    def abort(self) -> None:
        """Close and delete the temporary file."""
        with contextlib.suppress(Exception):
            self._file.close()
        self._atomic.discard()

    def __enter__(self) -> "HDF5Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _create_layout(f: h5py.File, *, n: int, length: int, tasks: Sequence[str], k: int,
                   float16: bool, chunk_rows: int, compression: str | None,
                   with_output: bool) -> None:
    """Create the (resizable, chunked, compressed) datasets of the layout in ``f``."""
    score = np.float16 if float16 else np.float32
    opts: dict[str, Any] = {"compression": compression, "shuffle": compression is not None}
    if compression == "gzip":
        opts["compression_opts"] = 1

    def make(name: str, tail: tuple[int, ...], dtype: Any) -> None:
        rows = chunk_rows if tail else max(chunk_rows, 4096)
        f.create_dataset(name, shape=(n,) + tail, maxshape=(None,) + tail, dtype=dtype,
                         chunks=(max(1, rows),) + tail, **opts)

    make("input_seqs", (length, 4), score)
    for label in tasks:
        g = f"tasks/{task_key(label)}/"
        make(g + "hyp_scores", (length, 4), score)
        make(g + "contrib_scores", (length,), score)
        make(g + "delta", (k,), np.float32)
        make(g + "residual", (k,), np.float32)
        make(g + "prediction", (), np.float32)
        if with_output:
            make(g + "output", (), np.float32)
        f[g].attrs["label"] = str(label)
    first = f"tasks/{task_key(tasks[0])}/"
    f["hyp_scores"] = f[first + "hyp_scores"]  # hard links
    f["contrib_scores"] = f[first + "contrib_scores"]
    for name in ("chrom", "strand", "name"):
        make(f"coords/{name}", (), _STR)
    for name in ("start", "end"):
        make(f"coords/{name}", (), np.int64)


def row_datasets(f: h5py.File) -> list[str]:
    """Paths of the per-region datasets of a dnalift HDF5 file (no hard-link duplicates)."""
    names = ["input_seqs", "coords/chrom", "coords/start", "coords/end", "coords/strand",
             "coords/name"]
    keys = f.attrs.get("task_keys")
    keys = [k.decode() if isinstance(k, bytes) else str(k) for k in keys] \
        if keys is not None else list(f["tasks"])
    for key in keys:
        names += [f"tasks/{key}/{d}" for d in f[f"tasks/{key}"]]
    return names


def write_attrs(f: h5py.File, attrs: Mapping[str, Any]) -> None:
    """Store ``attrs`` on the root (None as "", sequences of str as string arrays)."""
    for key, value in attrs.items():
        if value is None:
            value = ""
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            value = np.array(value, dtype=_STR)
        f.attrs[key] = value


def _write_chrom_sizes(f: h5py.File, chrom_sizes: Mapping[str, int]) -> None:
    g = f.require_group("chrom_sizes")
    g.create_dataset("name", data=np.array(list(chrom_sizes), dtype=_STR))
    g.create_dataset("size", data=np.array(list(chrom_sizes.values()), dtype=np.int64))


def read_chrom_sizes(f: h5py.File) -> dict[str, int] | None:
    """Chromosome sizes stored in a dnalift HDF5 file, in header order (None if absent)."""
    if "chrom_sizes" not in f:
        return None
    names = f["chrom_sizes/name"].asstr()[:]
    return dict(zip(names, (int(s) for s in f["chrom_sizes/size"][:])))


def read_attrs(f: h5py.File) -> dict[str, Any]:
    """Root attributes as plain Python values."""
    out = {}
    for key, value in f.attrs.items():
        if isinstance(value, np.ndarray):
            value = [v.decode() if isinstance(v, bytes) else v for v in value.tolist()]
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


# --------------------------------------------------------------------------- bigWig
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

    with tempfile.TemporaryDirectory(dir=Path(path).parent, prefix=".dnalift-bw-") as tmpdir:
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


def bigwig_from_h5(h5_path: str | os.PathLike, bw_path: str | os.PathLike, *,
                   task: str | None = None,
                   chrom_sizes: Mapping[str, int] | None = None) -> Path:
    """Write the bigWig of one task (default: the first) of a dnalift HDF5 file."""
    with h5py.File(h5_path, "r") as f:
        sizes = chrom_sizes or read_chrom_sizes(f)
        if sizes is None:
            raise InputError(f"{h5_path}: no chromosome sizes stored; pass chrom_sizes")
        key = task_key(task) if task is not None else None
        name = "contrib_scores" if key is None else f"tasks/{key}/contrib_scores"
        if name not in f:
            raise InputError(f"{h5_path}: no task {task!r} (tasks: {list(f['tasks'])})")
        ds = f[name]
        return write_bigwig_rows(bw_path, f["coords/chrom"].asstr()[:], f["coords/start"][:],
                                 f["coords/end"][:], f["coords/strand"].asstr()[:],
                                 lambda lo, hi: ds[lo:hi], sizes,
                                 block_rows=max(1, ds.chunks[0] if ds.chunks else 1024))


# --------------------------------------------------------------------------- merge
def check_shards(paths: Sequence[str | os.PathLike]) -> list[tuple[Path, dict[str, Any]]]:
    """Open shard files and check they form one complete job; return them in shard order.

    Raises :class:`InputError` if a file is unreadable, the job attributes differ, a shard
    is missing or repeated, or the row ranges do not tile ``[0, n_total)``.
    """
    if not paths:
        raise InputError("merge: no shard files given")
    shards = []
    for p in paths:
        try:
            with h5py.File(p, "r") as f:
                attrs = read_attrs(f)
        except OSError as err:
            raise InputError(f"{p}: not a readable HDF5 file ({err})") from None
        missing = [a for a in JOB_ATTRS + SHARD_ATTRS[:4] if a not in attrs]
        if missing:
            raise InputError(f"{p}: not a dnalift score file (no attribute {missing[0]!r})")
        shards.append((Path(p), attrs))
    ref_path, ref = shards[0]
    for p, attrs in shards[1:]:
        for key in JOB_ATTRS:
            if attrs[key] != ref[key]:
                raise InputError(f"{p}: attribute {key}={attrs[key]!r} differs from "
                                 f"{ref_path} ({ref[key]!r}); shards of different jobs?")
    count = int(ref["shard_count"])
    seen: dict[int, Path] = {}
    for p, attrs in shards:
        i = int(attrs["shard_index"])
        if i in seen:
            raise InputError(f"{p}: shard {i}/{count} given twice (also {seen[i]})")
        seen[i] = p
    absent = sorted(set(range(1, count + 1)) - set(seen))
    if absent:
        raise InputError(f"merge: shard {absent[0]}/{count} missing "
                         f"({len(absent)} of {count} absent)")
    shards.sort(key=lambda s: int(s[1]["shard_index"]))
    stop = 0
    for p, attrs in shards:
        if int(attrs["shard_start"]) != stop:
            raise InputError(f"{p}: shard starts at row {attrs['shard_start']}, expected {stop}")
        stop = int(attrs["shard_stop"])
    if stop != int(ref["n_total"]):
        raise InputError(f"merge: shards end at row {stop}, expected {ref['n_total']}")
    return shards


def merge_shards(paths: Sequence[str | os.PathLike], out_h5: str | os.PathLike,
                 out_bigwig: str | os.PathLike | None = None, *,
                 chrom_sizes: Mapping[str, int] | None = None,
                 command_line: str | None = None) -> Path:
    """Concatenate the HDF5 shards of a ``--shard`` job into one file (and bigWig).

    The merged file has the layout, score arrays and attributes of an unsharded run
    (``shard_index=1, shard_count=1``), plus ``merged_from`` (the shard file names).
    """
    shards = check_shards(paths)
    check_output_path(out_h5)
    if out_bigwig is not None:
        check_output_path(out_bigwig)
    with atomic_output(out_h5) as tmp, h5py.File(shards[0][0], "r") as first, \
            h5py.File(tmp, "w", rdcc_nbytes=CACHE_BYTES) as out:
        n_total = int(shards[0][1]["n_total"])
        ds0 = first["input_seqs"]
        tasks = [first[f"tasks/{k}"].attrs["label"] for k in first["tasks"]]
        task_order = read_attrs(first).get("task_keys") or [task_key(t) for t in tasks]
        labels = {task_key(t): t for t in tasks}
        comp = ds0.compression
        _create_layout(out, n=n_total, length=ds0.shape[1],
                       tasks=[labels[k] for k in task_order],
                       k=first[f"tasks/{task_order[0]}/delta"].shape[1],
                       float16=ds0.dtype == np.float16, chunk_rows=ds0.chunks[0],
                       compression=comp,
                       with_output=f"tasks/{task_order[0]}/output" in first)
        attrs = read_attrs(first)
        attrs.update(shard_index=1, shard_count=1, shard_start=0, shard_stop=n_total,
                     n_regions=n_total, merged_from=[p.name for p, _ in shards],
                     command_line=command_line or "")
        write_attrs(out, attrs)
        sizes = read_chrom_sizes(first)
        if sizes is not None:
            _write_chrom_sizes(out, sizes)
        names = row_datasets(out)
        lo = 0
        for p, a in shards:
            with h5py.File(p, "r") as f:
                m = f["input_seqs"].shape[0]
                if m != int(a["shard_stop"]) - int(a["shard_start"]):
                    raise InputError(f"{p}: {m} rows, expected "
                                     f"{int(a['shard_stop']) - int(a['shard_start'])}")
                for name in names:
                    if name not in f:
                        raise InputError(f"{p}: dataset {name} missing")
                    step = max(1, f[name].chunks[0] if f[name].chunks else 1024)
                    for s in range(0, m, step):
                        out[name][lo + s:lo + min(m, s + step)] = f[name][s:s + step]
            lo += m
    if out_bigwig is not None:
        bigwig_from_h5(out_h5, out_bigwig, chrom_sizes=chrom_sizes)
    return Path(out_h5)


__all__ = ["HDF5Writer", "write_bigwig", "write_bigwig_rows", "bigwig_from_h5",
           "merge_shards", "check_shards", "owned_segments", "atomic_output",
           "check_output_path", "temp_path", "file_sha256", "task_key", "read_attrs",
           "read_chrom_sizes", "row_datasets"]
