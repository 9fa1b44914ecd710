"""The streaming scoring job behind ``dnalift score``: the whole data flow, as stages
inputs -> references -> engine -> sinks (callable from a notebook).

Regions stream from FASTA or BED+genome (:class:`InputSpec`) through one-hot encoding,
references (:class:`dnalift.references.ReferenceSpec`) and the DeepLIFT engine
(:class:`EngineSpec`) into the sinks of an :class:`OutputSpec` (the HDF5 file batch by
batch, memory set by the batch; then the bigWig derived from it). Typical use::

    from dnalift.references import ReferenceSpec
    from dnalift.scoring import EngineSpec, OutputSpec, open_inputs, score
    inputs = open_inputs(bed="peaks.bed", genome="hg38.fa", width=1000)
    summary = score("model.h5", inputs, OutputSpec("scores.h5", bigwig="scores.bw"),
                    reference=ReferenceSpec("shuffle", k=10), engine=EngineSpec(tasks=["gata"]))

Sharding: ``shard=(i, n)`` with **1-based** ``i`` (``1 <= i <= n``) scores rows
``[(i-1)*N//n, i*N//n)`` of the N input regions; :func:`dnalift.scorefile.merge_shards`
joins the shard files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import json
import logging
import os
import re
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from dnalift import faults, pipeline
from dnalift.ensemble import STRANDS, CombinedEngine
from dnalift.errors import DnaliftError, InputError
from dnalift.fileio import check_output_path, file_sha256, remove_stale_temps
from dnalift.references import ReferenceSpec
from dnalift.scorefile import JobAttributes, bigwig_from_h5, job_differences
from dnalift.sequences import iter_batches
from dnalift.sinks import (BigWigSink, HDF5Sink, HeadSink, ScoreBatch, ScoreMeta, Sink, SinkList,
                           head_attributes)

log = logging.getLogger("dnalift.score")

ProgressFn = Callable[[int, "int | None"], None]


# --------------------------------------------------------------------------- options
def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``"I/N"`` (1-based: ``1 <= I <= N``) into ``(I, N)``; InputError otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m:
        raise InputError(f"--shard {text!r}: expected I/N, e.g. 3/10 (1-based)")
    i, n = int(m.group(1)), int(m.group(2))
    check_shard((i, n))
    return i, n


def check_shard(shard: tuple[int, int]) -> None:
    """Raise InputError unless ``shard = (i, n)`` has ``n >= 1`` and ``1 <= i <= n``."""
    i, n = shard
    if n < 1:
        raise InputError(f"--shard {i}/{n}: the number of shards N must be >= 1")
    if not 1 <= i <= n:
        raise InputError(f"--shard {i}/{n}: shard index must be in 1..{n} "
                         "(shards are numbered from 1)")


def shard_bounds(n_total: int, shard: tuple[int, int] | None) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of the 1-based shard ``(i, n)`` of ``n_total`` regions."""
    if shard is None:
        return 0, n_total
    check_shard(shard)
    i, n = shard
    return (i - 1) * n_total // n, i * n_total // n


def configure_device(device: str) -> None:
    """Select the compute device: "cpu" hides GPUs (call before TensorFlow is imported),
    "gpu" requires one, "auto" uses a GPU when present."""
    if device not in ("cpu", "gpu", "auto"):
        raise InputError(f"--device {device!r}: expected cpu, gpu or auto")
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        if "tensorflow" in sys.modules:  # already imported (notebook): hide GPUs in TF
            import tensorflow as tf
            try:
                tf.config.set_visible_devices([], "GPU")
            except RuntimeError:
                log.warning("TensorFlow already initialised its GPUs; --device cpu ignored")
    elif device == "gpu":
        import tensorflow as tf
        if not tf.config.list_physical_devices("GPU"):
            raise InputError("--device gpu: no GPU visible to TensorFlow")


# --------------------------------------------------------------------------- inputs
@dataclass
class ScoreInputs:
    """Regions to score (one shard of them) and what the outputs need to know.

    Attributes
    ----------
    records : iterable of (Region, str)
        The shard's regions with their sequences (model orientation), streamed.
    n : int
        Regions in this shard.
    n_total : int
        Regions in the whole input.
    shard : (i, n)
        1-based shard index and shard count ((1, 1) when unsharded).
    start, stop : int
        Rows ``[start, stop)`` of the whole input in this shard.
    chrom_sizes : dict
        Header of the bigWig (genome ``.fai`` order, or FASTA records).
    source : str
        Input file(s), for messages and attributes.
    check_length : callable(length), optional
        Raises InputError unless every region of the shard has ``length`` bases (cheap:
        FASTA index lengths, or one pass over the BED file); run before any scoring.
    """

    records: Iterable[Any]
    n: int
    n_total: int
    shard: tuple[int, int]
    start: int
    stop: int
    chrom_sizes: dict[str, int]
    source: str
    check_length: Callable[[int], None] | None = None


@dataclass(frozen=True)
class InputSpec:
    """Which regions to score: FASTA records, or BED regions on a genome (optionally
    resized to ``width`` around the centre or narrowPeak ``summit``), and which shard.

    Validated on creation (exactly one of ``fasta``/``bed``; ``bed`` needs ``genome``;
    ``width``/``summit`` only with ``bed``; files exist; ``shard = (i, n)`` 1-based).
    """

    fasta: str | os.PathLike | None = None
    bed: str | os.PathLike | None = None
    genome: str | os.PathLike | None = None
    width: int | None = None
    summit: bool = False
    shard: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        fasta, bed, genome = self.fasta, self.bed, self.genome
        if (fasta is None) == (bed is None):
            raise InputError("give exactly one of --fasta and --bed")
        if bed is not None and genome is None:
            raise InputError(f"{bed}: --bed needs --genome (the genome FASTA)")
        if fasta is not None and (self.width is not None or self.summit):
            raise InputError("--width/--summit apply to --bed regions only")
        from dnalift.sequences import check_input_file
        for path, what in ((fasta, "FASTA"), (genome, "genome FASTA"), (bed, "BED")):
            if path is not None:
                check_input_file(path, what)
        if self.shard is not None:
            check_shard(self.shard)

    def open(self) -> ScoreInputs:
        """The regions as a stream for :func:`score`.

        The total is counted cheaply first (FASTA index entries, or one pass over the BED
        file, which also checks every chromosome and region end against the genome).
        """
        from dnalift import sequences
        if self.fasta is not None:
            sizes = sequences.chrom_sizes(self.fasta)
            n_total = len(sizes)
            lo, hi = shard_bounds(n_total, self.shard)
            records = sequences.read_fasta(self.fasta, start=lo, stop=hi)
            source = str(self.fasta)
        else:
            sizes = sequences.chrom_sizes(self.genome)
            bed = dict(width=self.width, use_summit=self.summit)
            n_total = sum(1 for _ in sequences.read_bed(self.bed, chrom_sizes=sizes, **bed))
            lo, hi = shard_bounds(n_total, self.shard)
            regions = itertools.islice(sequences.read_bed(self.bed, **bed), lo, hi)
            records = sequences.fetch_regions(self.genome, regions)
            source = f"{self.bed} on {self.genome}"
        return ScoreInputs(records=records, n=hi - lo, n_total=n_total,
                           shard=self.shard or (1, 1), start=lo, stop=hi, chrom_sizes=sizes,
                           source=source, check_length=functools.partial(
                               self.check_length, rows=(lo, hi)))

    def check_length(self, length: int, rows: tuple[int, int] | None = None) -> None:
        """InputError unless every region (of rows ``[lo, hi)`` for FASTA input; the whole
        BED file, with line numbers) has ``length`` bases."""
        from dnalift import sequences
        if self.fasta is not None:
            sizes = sequences.chrom_sizes(self.fasta)
            lo, hi = rows or (0, len(sizes))
            for name, n in itertools.islice(sizes.items(), lo, hi):
                if n != length:
                    _check_length(str(self.fasta), sequences.Region(name, 0, n, name=name), n,
                                  length, None)
        else:
            for _ in sequences.read_bed(self.bed, self.width, self.summit, length=length):
                pass


def open_inputs(*, fasta: str | os.PathLike | None = None, bed: str | os.PathLike | None = None,
                genome: str | os.PathLike | None = None, width: int | None = None,
                summit: bool = False, shard: tuple[int, int] | None = None) -> ScoreInputs:
    """Open FASTA records or BED regions (+ genome) as a stream for :func:`score`
    (``InputSpec(...).open()``; see :class:`InputSpec`)."""
    return InputSpec(fasta=fasta, bed=bed, genome=genome, width=width, summit=summit,
                     shard=shard).open()


# --------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class EngineSpec:
    """How the engine scores: passed to :class:`dnalift.deeplift.DeepLift`, which validates
    it (mode, output, tasks by index or name) and raises :class:`InputError` itself.

    Attributes
    ----------
    mode : str
        One of :data:`dnalift.deeplift.MODES`.
    output : str or int, optional
        Output of a multi-output model.
    tasks : sequence of int or str, optional
        Tasks by index or name (default: all).
    task_names : sequence of str, optional
        Names of the output's tasks (default: the model's ``.tasks.txt`` sidecar).
    batch_size : int
        (sequence, reference) pairs per engine batch.
    unsafe : bool
        Allow Lambda layers / custom code when loading a model file.
    options : dict
        Further :class:`DeepLift` keywords (``maxpool``, ``dtype``, ``steps``).
    target : optional
        What is explained (``DeepLift(target=...)``: ``"profile"``, a ``TargetSpec``, ...);
        a sequence of several targets is scored in one pass into one file per head
        (:meth:`OutputSpec.for_head`).
    strands : {"forward", "both"}
        ``both`` also scores the reverse complement of every region and averages the two in
        the orientation of the input (:mod:`dnalift.ensemble`).
    """

    mode: str = "genomics_default"
    output: str | int | None = None
    tasks: Sequence[int | str] | None = None
    task_names: Sequence[str] | None = None
    batch_size: int = 1024
    unsafe: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    target: Any = None
    strands: str = "forward"

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or int(self.batch_size) < 1:
            raise InputError("--batch-size must be >= 1")
        if self.strands not in STRANDS:
            raise InputError(f"--strands {self.strands!r}: expected one of {', '.join(STRANDS)}")

    @property
    def heads(self) -> list[str]:
        """Head names of a multi-head target (one output file each), else []."""
        from dnalift.engine.targets import head_names
        return head_names(self.target)

    def build(self, model: Any) -> Any:
        """The :class:`DeepLift` engine for a loaded model."""
        from dnalift.deeplift import DeepLift
        return DeepLift(model, mode=self.mode, output=self.output,
                        tasks=list(self.tasks) if self.tasks else None,
                        task_names=self.task_names, batch_size=self.batch_size,
                        target=self.target, **dict(self.options))


@dataclass(frozen=True)
class OutputSpec:
    """Where the scores go.

    Attributes
    ----------
    path : path
        HDF5 score file.
    bigwig : path, optional
        bigWig of the first selected task's actual contributions.
    float16 : bool
        Store score arrays and ``input_seqs`` as float16.
    compression : {"gzip", "lzf", None}
    force : bool
        Overwrite finished outputs; otherwise a finished output makes the job a no-op (and a
        missing bigWig is made from the finished HDF5 file).
    chrom_sizes : mapping, optional
        bigWig header (default: the inputs').
    store_outputs : bool
        Also store the model's post-activation output of each task, ``tasks/<t>/output``
        (skipped for outputs that are not ``(N, tasks)`` arrays).
    command_line : str, optional
        Recorded in the file (default: this process's ``sys.argv``).
    """

    path: Path
    bigwig: Path | None = None
    float16: bool = False
    compression: str | None = "gzip"
    force: bool = False
    chrom_sizes: Mapping[str, int] | None = None
    store_outputs: bool = True
    command_line: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", check_output_path(self.path))
        if self.bigwig is not None:
            object.__setattr__(self, "bigwig", check_output_path(self.bigwig))

    def for_head(self, head: str) -> "OutputSpec":
        """This output for one head of a multi-head target: ``<stem>.<head><suffix>`` for
        the HDF5 file and the bigWig (``scores.h5`` -> ``scores.profile.h5``)."""
        return dataclasses.replace(self, path=head_path(self.path, head),
                                   bigwig=None if self.bigwig is None else
                                   head_path(self.bigwig, head))

    def sinks(self, heads: Sequence[Any] | None = None) -> list[Sink]:
        """The sinks of this output, in closing order (the bigWig derives from the HDF5);
        with several ``heads`` (``DeepLift.heads``) one :class:`HeadSink` per head."""
        if heads is not None and len(heads) > 1:
            return [HeadSink(h, self.for_head(h.name).sinks()) for h in heads]
        h5 = HDF5Sink(self.path, float16=self.float16, compression=self.compression)
        return [h5] + ([BigWigSink(self.bigwig, h5, self.chrom_sizes)] if self.bigwig else [])


# --------------------------------------------------------------------------- job
@dataclass
class ScoreSummary:
    """What :func:`score` did.

    ``engine_seconds`` is time inside ``DeepLift.attribute``; ``seconds`` is the whole job
    (reading, encoding, references, engine, HDF5 writes, bigWig).
    """

    output: Path
    bigwig: Path | None
    n_regions: int
    n_total: int
    shard: tuple[int, int]
    skipped: bool = False
    seconds: float = 0.0
    engine_seconds: float = 0.0
    reference_seconds: float = 0.0
    write_seconds: float = 0.0
    bigwig_seconds: float = 0.0
    max_abs_residual: float = 0.0
    tasks: list[str] = field(default_factory=list)
    #: Every file of the job (one HDF5 file, and bigWig, per head).
    outputs: list[Path] = field(default_factory=list)
    agreement: dict[str, list[float]] = field(default_factory=dict)
    #: Regions without one A, C, G or T (all N): their scores are all zero.
    n_without_bases: int = 0
    #: The names of the first of them (for the warning).
    without_bases: list[str] = field(default_factory=list)

    @property
    def regions_per_second(self) -> float:
        return self.n_regions / self.seconds if self.seconds > 0 else float("nan")


def score(model: Any, inputs: ScoreInputs | Iterable[Any], output: OutputSpec | str | os.PathLike,
          *, reference: ReferenceSpec = ReferenceSpec(), engine: EngineSpec = EngineSpec(),
          progress: ProgressFn | None = None) -> ScoreSummary:
    """Score regions with DeepLIFT and write the HDF5 file (and bigWig).

    The pipeline: inputs (batches of one-hot sequences) -> references -> engine -> sinks.

    Parameters
    ----------
    model : path or keras.Model, or a sequence of them
        A path is loaded with :func:`dnalift.deeplift.load_model` (``engine.unsafe`` allows
        Lambda/custom code) and its SHA-256 is recorded; task names default to the sidecar
        ``<model>.tasks.txt``. Several models (the folds of an ensemble) are averaged with
        the same references (:mod:`dnalift.ensemble`); their checksums are recorded
        comma-separated in ``model_sha256`` and the per-model agreement in
        ``model_agreement``.
    inputs : ScoreInputs or iterable of (Region, str)
        From :func:`open_inputs`, or any stream of (region, sequence) pairs (then the
        bigWig header needs ``OutputSpec.chrom_sizes``).
    output : OutputSpec or path
        The HDF5 file (and its options, bigWig).
    reference : ReferenceSpec
        Kind and options of the references (K from the references registry); batches hold
        ``max(1, engine.batch_size // K)`` sequences.
    engine : EngineSpec
    progress : callable(done, total), optional

    Returns
    -------
    ScoreSummary
    """
    t_start = time.perf_counter()
    out = output if isinstance(output, OutputSpec) else OutputSpec(Path(output))
    if not isinstance(inputs, ScoreInputs):
        inputs = ScoreInputs(records=inputs, n=0, n_total=0, shard=(1, 1), start=0, stop=0,
                             chrom_sizes=dict(out.chrom_sizes or {}), source="<records>")
    sizes = dict(out.chrom_sizes or inputs.chrom_sizes or {})
    if out.bigwig is not None and not sizes:
        raise InputError(f"{out.bigwig}: a bigWig needs chromosome sizes (chrom_sizes=...)")
    summary = ScoreSummary(output=out.path, bigwig=out.bigwig, n_regions=inputs.n,
                           n_total=inputs.n_total, shard=inputs.shard)
    head_outs = [out.for_head(h) for h in engine.heads] or [out]
    summary.outputs = [o.path for o in head_outs] + [o.bigwig for o in head_outs if o.bigwig]
    paths = list(model) if isinstance(model, (list, tuple)) else [model]
    if isinstance(paths[0], (str, os.PathLike)) and engine.task_names is None:
        from dnalift.models import read_task_names
        engine = dataclasses.replace(engine, task_names=read_task_names(paths[0]))
    for o in head_outs:
        _remove_stale_temps(o)
    models, checksums, combined = _build_engines(paths, engine)
    _plan_compilation(combined, reference, inputs.n)
    job = _Job(models, combined, engine, reference, out, inputs, sizes, summary)
    faults.inject("loaded")
    if inputs.check_length is not None and combined.input_length is not None:
        inputs.check_length(combined.input_length)
    attrs = _job_attributes(paths, checksums, combined, engine, reference, inputs, out,
                            summary.tasks)
    if not out.force and all(o.path.exists() for o in head_outs):
        heads = combined.heads if len(head_outs) > 1 else [None]
        for o, head in zip(head_outs, heads):
            _check_reusable(o.path, attrs if head is None else head_attributes(attrs, head))
        for o in head_outs:
            _finish_existing(o)
        summary.skipped = True
        return summary
    job.run(attrs, progress)
    summary.seconds = time.perf_counter() - t_start
    return summary


def _plan_compilation(combined: CombinedEngine, reference: ReferenceSpec, n_regions: int
                      ) -> None:
    """Let every engine decide from the whole job whether to trace its step and fuse its
    rules (:meth:`dnalift.deeplift.DeepLift.plan`): ``n_regions`` x references x strands
    pairs; a stream of unknown length (``n_regions`` 0) is traced and fused. Alone, an engine
    would decide from its first call, one batch."""
    strands = 2 if combined.strands == "both" else 1
    pairs = n_regions * (reference.n_references or 1) * strands if n_regions else None
    for engine in combined.engines:
        engine.plan(pairs)


def _build_engines(paths: Sequence[Any], engine: EngineSpec
                   ) -> tuple[list[Any], list[str], CombinedEngine]:
    """Load every model (path or in-memory) and build its engine; errors name the model file.

    Returns the loaded models, their SHA-256 checksums ("" for in-memory models) and the
    :class:`~dnalift.ensemble.CombinedEngine` over them (one model: the plain engine's
    scores)."""
    from dnalift.models import check_input_shape
    models, checksums, engines = [], [], []
    for path in paths:
        loaded, checksum = _load(path, engine.unsafe)
        with _naming_model(path):
            check_input_shape(loaded)
            engines.append(engine.build(loaded))
        models.append(loaded)
        checksums.append(checksum)
    labels = [str(p) if isinstance(p, (str, os.PathLike)) else f"model{i}"
              for i, p in enumerate(paths)]
    return models, checksums, CombinedEngine(engines, strands=engine.strands, labels=labels)


def _job_attributes(paths: Sequence[Any], checksums: Sequence[str], combined: CombinedEngine,
                    engine: EngineSpec, reference: ReferenceSpec, inputs: ScoreInputs,
                    out: OutputSpec, tasks: Sequence[str]) -> JobAttributes:
    """The root attributes recorded in the score file (and compared before reuse)."""
    return JobAttributes(
        mode=engine.mode, tasks=list(tasks), reference=reference.name,
        n_references=reference.n_references or 0, n_total=inputs.n_total,
        shard_index=inputs.shard[0], shard_count=inputs.shard[1], shard_start=inputs.start,
        shard_stop=inputs.stop, seed=reference.seed_value,
        reference_freqs=list(reference.freqs or []), reference_fasta=str(reference.fasta or ""),
        model_sha256=",".join(checksums), models=[_model_name(p) for p in paths],
        strands=engine.strands, maxpool=str(engine.options.get("maxpool", "rescale")),
        target_output="" if engine.output is None else str(engine.output),
        target=json.dumps(combined.target.describe(), sort_keys=True), source=inputs.source,
        score_dtype="float16" if out.float16 else "float32",
        command_line=out.command_line if out.command_line is not None else shlex.join(sys.argv))


def _remove_stale_temps(out: OutputSpec) -> None:
    """Remove temporary files of the outputs left by dead processes, with a notice."""
    for path in (out.path, out.bigwig):
        for tmp in remove_stale_temps(path) if path is not None else ():
            log.warning("removed %s, a temporary file left by an interrupted run", tmp)


def _check_reusable(path: Path, attrs: JobAttributes) -> None:
    """InputError unless the finished file ``path`` was made by this very job."""
    differences = job_differences(path, attrs)
    if differences:
        raise InputError(f"{path} exists but was made with different parameters: "
                         f"{'; '.join(differences)}; use --force to recompute it, or "
                         "another --output")


@contextlib.contextmanager
def _naming_model(model: Any) -> Iterator[None]:
    """Prefix the model file to a DnaliftError raised in the block that does not name it
    (e.g. an unsupported LSTM or Lambda layer found by the engine)."""
    try:
        yield
    except DnaliftError as err:
        if isinstance(model, (str, os.PathLike)) and str(model) not in str(err):
            raise type(err)(f"{model}: {err}") from None
        raise


def _finish_existing(out: OutputSpec) -> None:
    """A finished HDF5 file exists: make only a missing bigWig from it."""
    if out.bigwig is not None and not out.bigwig.exists():
        log.info("%s exists; writing the missing bigWig %s from it", out.path, out.bigwig)
        bigwig_from_h5(out.path, out.bigwig, chrom_sizes=out.chrom_sizes)
    else:
        log.warning("%s already exists, made with the same parameters; nothing to do (use "
                    "--force to recompute)", out.path)


def _model_name(model: Any) -> str:
    """A model path as given (``<in-memory>`` for a loaded model)."""
    return str(model) if isinstance(model, (str, os.PathLike)) else "<in-memory>"


def _load(model: Any, unsafe: bool) -> tuple[Any, str]:
    """A loaded model and the SHA-256 of its file ("" for an in-memory model)."""
    if not isinstance(model, (str, os.PathLike)):
        return model, ""
    from dnalift.deeplift import load_model
    return load_model(model, unsafe=unsafe), file_sha256(model)


@dataclass
class _Job:
    """The stages of one scoring job: inputs -> references -> engine -> sinks."""

    models: list[Any]
    engine: CombinedEngine  # one DeepLift per model, one or both strands
    engine_spec: EngineSpec
    reference: ReferenceSpec
    output: OutputSpec
    inputs: ScoreInputs
    chrom_sizes: dict[str, int]
    summary: ScoreSummary

    def __post_init__(self) -> None:
        self.summary.tasks = [str(t) for t in self.engine.task_labels]
        _check_unique_tasks(self.engine_spec.tasks, self.summary.tasks)
        self.seqs_per_batch = max(1, self.engine_spec.batch_size //
                                  (self.reference.n_references or 1))

    def batches(self) -> Iterator[tuple[list[Any], np.ndarray, np.ndarray, float]]:
        """Inputs -> references: ``(regions, x (B, L, 4), refs (B, K, L, 4), seconds on
        references)`` per batch (runs in a helper thread)."""
        offset = self.inputs.start
        for regions, x in iter_batches(self.inputs.records, self.seqs_per_batch,
                                       source=self.inputs.source):
            x = np.asarray(x, dtype=np.float32)
            t0 = time.perf_counter()
            refs = self.reference.build(x, offset)
            offset += len(regions)
            yield regions, x, refs, time.perf_counter() - t0

    def meta(self, attrs: JobAttributes, n: int, length: int, k: int,
             with_output: bool) -> ScoreMeta:
        """What the sinks need to know, from the first batch (or the model, if none)."""
        return ScoreMeta(n=n, length=length, tasks=attrs.tasks, n_references=k,
                         attrs=dataclasses.replace(attrs, n_references=k),
                         chrom_sizes=self.chrom_sizes or None, batch_rows=self.seqs_per_batch,
                         with_output=with_output)

    def run(self, attrs: JobAttributes, progress: ProgressFn | None) -> None:
        """Score every batch into the sinks (aborted on any failure); fills the summary."""
        sinks = SinkList(self.output.sinks(self.engine.heads))
        try:
            self._score(sinks, attrs, progress)
        except BaseException:
            sinks.abort()
            raise
        self.summary.write_seconds = sinks.sinks[0].seconds
        self.summary.bigwig_seconds = sum(s.seconds for s in sinks.sinks[1:])

    def _score(self, sinks: SinkList, attrs: JobAttributes, progress: ProgressFn | None) -> None:
        summary, inputs = self.summary, self.inputs
        with_outputs = self.output.store_outputs
        length, done = None, 0
        background = pipeline.BackgroundCalls(depth=2)
        batches = pipeline.Prefetch(self.batches(), depth=2)
        try:
            for regions, x, refs, ref_seconds in batches:
                _check_length(inputs.source, regions[0], x.shape[1], self.engine.input_length,
                              length)
                t1 = time.perf_counter()
                att = self.engine.attribute(x, refs)
                summary.engine_seconds += time.perf_counter() - t1
                summary.reference_seconds += ref_seconds
                outputs = None
                if with_outputs:
                    outputs = None if att.output is None else np.asarray(att.output, "float32")
                    if outputs is None or outputs.shape != att.prediction.shape:
                        if length is not None:  # decided on the first batch
                            raise InputError(f"{inputs.source}: model outputs of shape "
                                             f"{getattr(outputs, 'shape', None)} in a later "
                                             "batch")
                        with_outputs, outputs = False, None
                if length is None:
                    length = x.shape[1]
                    sinks.open(self.meta(attrs, inputs.n or len(regions), length,
                                         refs.shape[1], with_outputs))
                background.submit(sinks.write, ScoreBatch(regions, x, att, outputs))
                if att.residual.size:
                    summary.max_abs_residual = max(summary.max_abs_residual,
                                                   float(np.abs(att.residual).max()))
                _count_without_bases(summary, regions, x)
                done += len(regions)
                if progress is not None:
                    progress(done, inputs.n or None)
            background.finish()
            if length is None:
                if self.engine.input_length is None:
                    raise InputError(f"{inputs.source}: no regions to score")
                sinks.open(self.meta(attrs, 0, self.engine.input_length,
                                     self.reference.n_references or 1, False))
            summary.agreement = self.engine.agreement_attrs()
            sinks.add_attrs(summary.agreement)
            sinks.close()
        except BaseException:
            batches.close()
            background.finish(raise_error=False)
            raise
        finally:
            batches.close()
        summary.n_regions = done
        _warn_without_bases(summary)


#: Names of regions without bases listed in the warning.
SHOWN_WITHOUT_BASES = 3


def _count_without_bases(summary: ScoreSummary, regions: Sequence[Any], x: np.ndarray) -> None:
    """Count (and name the first of) the regions of one batch with no A/C/G/T base."""
    empty = np.flatnonzero(~x.any(axis=(1, 2)))
    summary.n_without_bases += len(empty)
    for i in empty[:SHOWN_WITHOUT_BASES - len(summary.without_bases)]:
        region = regions[i]
        summary.without_bases.append(region.name or f"{region.chrom}:{region.start}-"
                                                     f"{region.end}")


def _warn_without_bases(summary: ScoreSummary) -> None:
    """One warning when regions had no A/C/G/T base (their scores are zero, not measured)."""
    n = summary.n_without_bases
    if n:
        more = ", ..." if n > len(summary.without_bases) else ""
        log.warning("%d of %d regions have no A, C, G or T (all N: %s%s); their scores are all "
                    "zero", n, summary.n_regions, ", ".join(summary.without_bases), more)


def _check_unique_tasks(asked: Sequence[int | str] | None, labels: Sequence[str]) -> None:
    """InputError if two requested tasks (by index or name) are the same task."""
    seen: dict[str, Any] = {}
    for task, label in zip(asked or (), labels):
        if label in seen:
            raise InputError(f"--task {seen[label]} and --task {task} select the same task "
                             f"{label!r}; give each task once")
        seen[label] = task


def _check_length(source: str, region: Any, length: int, model_length: int | None,
                  first_length: int | None) -> None:
    """InputError if a batch's sequence length differs from the model's or the first's."""
    where = f"{source} region {region.name or region.chrom}:{region.start}-{region.end}"
    if model_length is not None and length != model_length:
        raise InputError(f"{where}: length {length} but the model takes {model_length}")
    if first_length is not None and length != first_length:
        raise InputError(f"{where}: length {length}, earlier regions {first_length}")


def head_path(path: str | os.PathLike, head: str) -> Path:
    """The file of one head of a multi-head target: ``scores.h5`` -> ``scores.profile.h5``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.{head}{path.suffix}")


def default_output(input_path: str | os.PathLike, shard: tuple[int, int] | None = None,
                   suffix: str = ".h5") -> Path:
    """Default HDF5 name: ``<input stem>.dnalift[.shardIofN].h5`` in the current directory."""
    stem = Path(input_path).name
    for ext in (".gz", ".fa", ".fasta", ".fna", ".bed", ".narrowPeak", ".txt"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
    tag = f".shard{shard[0]}of{shard[1]}" if shard and shard[1] > 1 else ""
    return Path.cwd() / f"{stem}.dnalift{tag}{suffix}"
