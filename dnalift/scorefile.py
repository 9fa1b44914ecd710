"""The dnalift score file: the one owner of the HDF5 schema (engine -> sinks -> this file
-> readers: motifs, plots, bigWig, merge).

It holds the writer (:class:`HDF5Writer`, streaming batches), the attribute set
(:class:`JobAttributes`), the lazy reader (:class:`ScoreFile`: opens the file once and reads
rows / tasks on demand), the bigWig derived from a finished file (:func:`bigwig_from_h5`) and
the merge of ``--shard`` files (:func:`merge_shards`). Files are written under a temporary
name and renamed when complete (:mod:`dnalift.fileio`).

Layout (N regions of length L, T selected tasks, K references)::

    /hyp_scores        (N, L, 4)  hard link to /tasks/<first task>/hyp_scores (tfmodisco-lite)
    /contrib_scores    (N, L)     hard link to /tasks/<first task>/contrib_scores
    /input_seqs        (N, L, 4)  one-hot, ACGT, float32 (float16 with float16=True)
    /tasks/<key>/hyp_scores      (N, L, 4) hypothetical contributions
    /tasks/<key>/contrib_scores  (N, L)    actual contributions of the observed bases
    /tasks/<key>/delta           (N, K)    target(x) - target(reference k)
    /tasks/<key>/residual        (N, K)    sum of contributions - delta
    /tasks/<key>/prediction      (N,)      target (pre-activation) at x
    /tasks/<key>/output          (N,)      model output at x (when available)
    /coords/{chrom,start,end,strand,name}  (N,) region coordinates (0-based half-open)
    /chrom_sizes/{name,size}                chromosome sizes for bigWig headers

``<key>`` is the task label with ``/`` replaced (:func:`task_key`); the group's ``label``
attribute holds the label and the root ``task_keys`` attribute the task order. Root
attributes: :class:`JobAttributes` plus ``task_keys`` and ``n_regions``.

Score arrays are in the orientation the model saw (minus-strand regions reverse
complemented); bigWig tracks flip them back to genome orientation.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np

from dnalift import __version__, faults
from dnalift.bigwig import write_bigwig_rows
from dnalift.errors import InputError
from dnalift.fileio import AtomicPath, atomic_output, check_output_path

#: Largest HDF5 chunk in bytes (chunks hold whole regions).
CHUNK_BYTES = 4 << 20
#: HDF5 chunk cache per open file (holds partly written chunks of every dataset).
CACHE_BYTES = 64 << 20
#: Attributes that differ between the shards of one job.
SHARD_ATTRS = ("shard_index", "shard_count", "shard_start", "shard_stop", "command_line")
#: Attributes that must agree between all shards of one job.
JOB_ATTRS = ("dnalift_version", "model_sha256", "mode", "target_output", "tasks",
             "reference", "n_references", "seed", "n_total", "shard_count")
#: Job attributes of newer files: compared when present (files of older versions lack them).
OPTIONAL_JOB_ATTRS = ("models", "strands", "maxpool")
#: Attributes that must equal the request for ``dnalift score`` to reuse an existing file.
REUSE_ATTRS = JOB_ATTRS + OPTIONAL_JOB_ATTRS + (
    "target", "reference_freqs", "reference_fasta", "source", "shard_index", "shard_start",
    "shard_stop", "score_dtype")


_STR = h5py.string_dtype("utf-8")


@dataclass(frozen=True)
class JobAttributes:
    """The root attributes of a score file: what was scored, how, and which shard.

    ``shard_index`` is 1-based; rows ``[shard_start, shard_stop)`` of ``n_total`` input
    regions are in the file. ``reference_freqs`` / ``reference_fasta`` are set only for the
    ``frequency`` / ``fasta`` reference kinds. ``target`` is what was explained, as JSON
    (``{"kind": "profile", "output": "profile", "channels": "sum", ...}``; see
    :meth:`dnalift.engine.targets.Target.describe`). ``model_sha256`` holds the SHA-256 of
    the model file, comma-separated for an ensemble (``models``: the paths as given, same
    order); ``strands`` is ``forward`` or ``both`` (scores averaged over the two strands);
    ``maxpool`` the max-pooling rule (``rescale`` or ``gradient``).
    """

    mode: str
    tasks: list[str]
    reference: str
    n_references: int
    n_total: int
    shard_index: int = 1
    shard_count: int = 1
    shard_start: int = 0
    shard_stop: int = 0
    seed: int = 0
    reference_freqs: list[float] = field(default_factory=list)
    reference_fasta: str = ""
    model_sha256: str = ""
    models: list[str] = field(default_factory=list)
    strands: str = "forward"
    maxpool: str = "rescale"
    target_output: str = ""
    target: str = ""
    source: str = ""
    command_line: str = ""
    score_dtype: str = "float32"
    dnalift_version: str = __version__

    def as_dict(self) -> dict[str, Any]:
        """The attributes to store, with the fixed conventions of the layout."""
        return {**asdict(self), "input_seqs_order": "ACGT",
                "coordinates": "0-based half-open; scores in model orientation (minus strand "
                               "reverse-complemented)"}


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
                 n_references: int, attrs: "JobAttributes | Mapping[str, Any]",
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
        self.n_batches = 0
        self.with_output = with_output
        self._file = h5py.File(self.tmp, "w", rdcc_nbytes=CACHE_BYTES)
        try:
            _create_layout(self._file, n=int(n), length=self.length, tasks=self.tasks,
                           k=int(n_references), float16=float16,
                           chunk_rows=_chunk_rows(self.length, batch_rows),
                           compression=compression, with_output=with_output)
            if isinstance(attrs, JobAttributes):
                attrs = attrs.as_dict()
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
        faults.inject("write", self.n_batches)
        self.n_batches += 1
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

    def close(self, attrs: Mapping[str, Any] | None = None) -> Path:
        """Trim datasets to the rows written, add root ``attrs`` known only at the end (e.g.
        ensemble agreement), close and rename into place; return the path."""
        for name in row_datasets(self._file):
            self._file[name].resize(self.n_written, axis=0)
        self._file.attrs["n_regions"] = self.n_written
        write_attrs(self._file, attrs or {})
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


# --------------------------------------------------------------------------- reader
def _decode(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


Rows = "int | slice | Sequence[int]"


class ScoreFile:
    """Lazy reader of a score file: opens it once, reads rows and tasks on demand.

    Only the names (``coords/name``) are read when opening; score arrays are read row by
    row, so drawing one sequence reads one row. Files with only a root ``contrib_scores``
    ``(N, L)`` (or ``(N, T, L)``) and ``input_seqs`` are read as well (task labels from the
    ``tasks`` or ``target`` attribute).

    Parameters
    ----------
    path : path-like

    Raises
    ------
    InputError
        Missing file, not HDF5, missing datasets or inconsistent shapes.

    Examples
    --------
    >>> with ScoreFile("scores.h5") as sf:            # doctest: +SKIP
    ...     i = sf.index("seq00001")
    ...     x, a = sf.sequences(i), sf.actual(i, task=0)   # (L, 4), (L,)
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{path}: HDF5 file not found")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as err:
            raise InputError(f"{path}: not an HDF5 file ({err})") from None
        try:
            self._index()
        except BaseException:
            self._file.close()
            raise

    def _index(self) -> None:
        f = self._file
        if "input_seqs" not in f:
            raise InputError(f"{self.path}: no dataset input_seqs")
        self._x = f["input_seqs"]
        self.attrs = read_attrs(f)
        if "tasks" in f and isinstance(f["tasks"], h5py.Group):
            keys = _decode(np.atleast_1d(f.attrs["task_keys"])) if "task_keys" in f.attrs \
                else list(f["tasks"].keys())
            self.tasks = [str(f["tasks"][k].attrs.get("label", k)) for k in keys]
            self.task_keys = keys
            self._actual = [(f[f"tasks/{k}/contrib_scores"], None) for k in keys]
        elif "contrib_scores" in f:
            ds = f["contrib_scores"]
            labels = _decode(np.atleast_1d(f.attrs.get("tasks", f.attrs.get("target", "task0"))))
            if ds.ndim == 2:
                labels, self._actual = labels[:1], [(ds, None)]
            else:
                self._actual = [(ds, t) for t in range(ds.shape[1])]
            self.tasks, self.task_keys = labels, [task_key(t) for t in labels]
        else:
            raise InputError(f"{self.path}: no contrib_scores dataset")
        n, length = self._x.shape[0], self._x.shape[1]
        self.names = _decode(f["coords/name"][...]) if "coords/name" in f else \
            [f"seq{i}" for i in range(n)]
        shapes = {ds.shape[0] for ds, _ in self._actual} | {len(self.names)}
        if shapes != {n} or any(ds.shape[-1] != length for ds, _ in self._actual) or \
                len(self._actual) != len(self.tasks):
            raise InputError(f"{self.path}: contrib_scores {self._actual[0][0].shape}, "
                             f"input_seqs {self._x.shape} and {len(self.names)} names disagree")
        self._rows = {name: i for i, name in reversed(list(enumerate(self.names)))}

    # ------------------------------------------------------------------ metadata
    @property
    def n(self) -> int:
        """Number of regions N."""
        return int(self._x.shape[0])

    @property
    def length(self) -> int:
        """Sequence length L."""
        return int(self._x.shape[1])

    @property
    def mode(self) -> str:
        """The engine mode that made the scores (``"contrib"`` if not recorded)."""
        return str(self.attrs.get("mode", "contrib"))

    @property
    def chunk_rows(self) -> int:
        """Rows per stored chunk of the contribution arrays (a good read block)."""
        ds = self._actual[0][0]
        return max(1, ds.chunks[0] if ds.chunks else 1024)

    def index(self, name: str) -> int:
        """Row of the (first) sequence called ``name``; InputError if there is none."""
        if name not in self._rows:
            raise InputError(f"{self.path}: no sequence named {name}")
        return self._rows[name]

    def task_index(self, task: str | int | None = None) -> int:
        """Position of a task given by label, key or index (None: the first task)."""
        if task is None:
            return 0
        for labels in (self.tasks, self.task_keys):
            if str(task) in labels:
                return labels.index(str(task))
        if isinstance(task, (int, np.integer)) and 0 <= task < len(self.tasks):
            return int(task)
        raise InputError(f"{self.path}: no task {task!r} (tasks: {', '.join(self.tasks)})")

    def coords(self) -> dict[str, np.ndarray]:
        """``(N,)`` arrays ``chrom, start, end, strand`` (and ``name``)."""
        f = self._file
        return {"chrom": f["coords/chrom"].asstr()[:], "start": f["coords/start"][:],
                "end": f["coords/end"][:], "strand": f["coords/strand"].asstr()[:],
                "name": np.asarray(self.names, dtype=object)}

    def chrom_sizes(self) -> dict[str, int] | None:
        """Stored chromosome sizes (bigWig header order), or None."""
        return read_chrom_sizes(self._file)

    # ------------------------------------------------------------------ rows
    def sequences(self, rows: Any = slice(None)) -> np.ndarray:
        """One-hot ``(n, L, 4)`` float32 of ``rows`` (``(L, 4)`` for an int row)."""
        return np.asarray(self._x[rows], dtype=np.float32)

    def actual(self, rows: Any = slice(None), task: str | int | None = None,
               all_tasks: bool = False) -> np.ndarray:
        """Actual contributions of ``rows``: ``(n, L)`` of one task (``(L,)`` for an int
        row), or ``(n, T, L)`` float64 with ``all_tasks``."""
        if all_tasks:
            return np.stack([self._read(t, rows) for t in range(len(self.tasks))], axis=1)
        return self._read(self.task_index(task), rows)

    def _read(self, t: int, rows: Any) -> np.ndarray:
        ds, column = self._actual[t]
        values = ds[rows] if column is None else ds[rows, column]
        return np.asarray(values, dtype=np.float64)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "ScoreFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class ScoredSequences:
    """Sequences with their actual contributions, read whole (motif scans need every row).

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


def read_scores_h5(path: str | os.PathLike, label: str | None = None) -> ScoredSequences:
    """Every sequence and contribution of a score file (method label: ``label`` or the
    file's ``mode`` attribute). See :class:`ScoreFile` for the layouts read."""
    with ScoreFile(path) as sf:
        return ScoredSequences(list(sf.names), sf.sequences(),
                               {label or sf.mode: sf.actual(all_tasks=True)}, list(sf.tasks))


# --------------------------------------------------------------------------- bigWig
def bigwig_from_h5(h5_path: str | os.PathLike, bw_path: str | os.PathLike, *,
                   task: str | None = None,
                   chrom_sizes: Mapping[str, int] | None = None) -> Path:
    """Write the bigWig of one task (default: the first) of a score file, streaming rows."""
    with ScoreFile(h5_path) as sf:
        sizes = chrom_sizes or sf.chrom_sizes()
        if sizes is None:
            raise InputError(f"{h5_path}: no chromosome sizes stored; pass chrom_sizes")
        t = sf.task_index(task)
        c = sf.coords()
        return write_bigwig_rows(bw_path, c["chrom"], c["start"], c["end"], c["strand"],
                                 lambda lo, hi: sf.actual(slice(lo, hi), t), sizes,
                                 block_rows=sf.chunk_rows)


# --------------------------------------------------------------------------- reuse
def _plain(value: Any) -> Any:
    """A comparable plain value: sequences as lists of Python scalars/str."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value.decode() if isinstance(value, bytes) else value


def job_differences(path: str | os.PathLike, attrs: "JobAttributes | Mapping[str, Any]",
                    keys: Sequence[str] = REUSE_ATTRS) -> list[str]:
    """How the finished score file ``path`` differs from the job ``attrs`` (``keys`` only).

    Returns one ``"name file-value (now requested-value)"`` text per differing attribute;
    empty when the file can be reused. An unreadable or incomplete file is a difference.
    """
    want = attrs.as_dict() if isinstance(attrs, JobAttributes) else dict(attrs)
    try:
        with h5py.File(path, "r") as f:
            have = read_attrs(f)
            complete = "n_regions" in have and "input_seqs" in f
    except OSError as err:
        return [f"not a readable HDF5 file ({err})"]
    if not complete:
        return ["not a complete dnalift score file"]
    out = []
    for key in keys:
        old, new = _plain(have.get(key)), _plain(want.get(key))
        if old != new:
            out.append(f"{key} {old!r} (now {new!r})")
    return out


def task_view(score_h5: str | os.PathLike, task: str | int | None,
              output: str | os.PathLike) -> Path:
    """Write an HDF5 file with ``hyp_scores (N, L, 4)`` and ``input_seqs (N, L, 4)`` as
    external links to ``tasks/<task>/hyp_scores`` and ``input_seqs`` of ``score_h5``.

    The link holds the score file's path relative to the view's directory, so the two files
    can move together. Returns the view's path.
    """
    with ScoreFile(score_h5) as sf:
        key = task_key(sf.tasks[sf.task_index(task)])
    output = check_output_path(output)
    target = os.path.relpath(Path(score_h5).resolve(), output.resolve().parent)
    with atomic_output(output, keep_suffix=True) as tmp, h5py.File(tmp, "w") as f:
        f["hyp_scores"] = h5py.ExternalLink(target, f"tasks/{key}/hyp_scores")
        f["input_seqs"] = h5py.ExternalLink(target, "input_seqs")
        f.attrs["task"] = key
        f.attrs["source"] = str(score_h5)
    return output


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
        for key in JOB_ATTRS + ("target",) + OPTIONAL_JOB_ATTRS:
            if attrs.get(key) != ref.get(key):
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


def _read_rows(path: Path, ds: Any, lo: int, hi: int) -> np.ndarray:
    """Rows ``[lo, hi)`` of a shard's dataset; InputError naming the shard if unreadable."""
    try:
        return ds[lo:hi]
    except (OSError, KeyError, RuntimeError) as err:
        raise InputError(f"{path}: dataset {ds.name} is corrupted (rows {lo}-{hi}: "
                         f"{' '.join(str(err).split())[:160]})") from None


def merge_differences(paths: Sequence[str | os.PathLike],
                      out_h5: str | os.PathLike) -> list[str]:
    """How an existing merged file differs from the merge of ``paths`` (checked with
    :func:`check_shards`); empty when it can be reused."""
    shards = check_shards(paths)
    want = {**shards[0][1], "shard_count": 1, "merged_from": [p.name for p, _ in shards]}
    return job_differences(out_h5, want, JOB_ATTRS + ("merged_from",))


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
        for key in ("model_agreement", "strand_agreement"):  # per shard, not of the whole
            attrs.pop(key, None)
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
                        out[name][lo + s:lo + min(m, s + step)] = _read_rows(p, f[name], s,
                                                                             s + step)
            lo += m
    if out_bigwig is not None:
        bigwig_from_h5(out_h5, out_bigwig, chrom_sizes=chrom_sizes)
    return Path(out_h5)


__all__ = ["HDF5Writer", "JobAttributes", "job_differences", "REUSE_ATTRS", "ScoreFile",
           "ScoredSequences", "read_scores_h5", "bigwig_from_h5", "merge_shards", "check_shards",
           "merge_differences", "task_key", "task_view", "read_attrs", "write_attrs",
           "read_chrom_sizes", "row_datasets"]
