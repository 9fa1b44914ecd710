"""The streaming scoring job behind ``dnalift score`` (callable from a notebook).

Regions stream from FASTA or BED+genome through one-hot encoding, references and the
DeepLIFT engine into an HDF5 file (batch by batch, memory set by the batch), then the
bigWig is written from the finished HDF5 file. Typical use::

    from dnalift.scoring import open_inputs, score
    inputs = open_inputs(bed="peaks.bed", genome="hg38.fa", width=1000)
    summary = score("model.h5", inputs, output="scores.h5", bigwig="scores.bw")

Sharding: ``shard=(i, n)`` with **1-based** ``i`` (``1 <= i <= n``) scores rows
``[(i-1)*N//n, i*N//n)`` of the N input regions; :func:`dnalift.writers.merge_shards`
joins the shard files.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from dnalift import __version__
from dnalift import pipeline, writers
from dnalift.errors import DnaliftError, InputError

log = logging.getLogger("dnalift.score")

MODES = ("genomics_default", "rescale", "revealcancel", "gradient", "gradient_x_input",
         "integrated_gradients")
REFERENCES = ("shuffle", "frequency", "gc", "zero", "fasta")

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
    if n < 1 or not 1 <= i <= n:
        raise InputError(f"--shard {i}/{n}: shard index must be in 1..{max(n, 1)} "
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
    """

    records: Iterable[Any]
    n: int
    n_total: int
    shard: tuple[int, int]
    start: int
    stop: int
    chrom_sizes: dict[str, int]
    source: str


def open_inputs(*, fasta: str | os.PathLike | None = None, bed: str | os.PathLike | None = None,
                genome: str | os.PathLike | None = None, width: int | None = None,
                summit: bool = False, shard: tuple[int, int] | None = None) -> ScoreInputs:
    """Open FASTA records or BED regions (+ genome) as a stream for :func:`score`.

    The total is counted cheaply first (FASTA index entries, or one pass over the BED
    file, which also checks every chromosome and region end against the genome).
    """
    from dnalift import sequences
    if (fasta is None) == (bed is None):
        raise InputError("give exactly one of --fasta and --bed")
    if bed is not None and genome is None:
        raise InputError(f"{bed}: --bed needs --genome (the genome FASTA)")
    if fasta is not None and (width is not None or summit):
        raise InputError("--width/--summit apply to --bed regions only")
    for path in (fasta, genome):
        if path is not None and not Path(path).is_file():
            raise InputError(f"{path}: no such file")
    if fasta is not None:
        sizes = sequences.chrom_sizes(fasta)
        n_total = len(sizes)
        lo, hi = shard_bounds(n_total, shard)
        records = sequences.read_fasta(fasta, start=lo, stop=hi)
        source = str(fasta)
    else:
        sizes = sequences.chrom_sizes(genome)
        if not Path(bed).is_file():
            raise InputError(f"{bed}: no such file")
        n_total = sum(1 for _ in sequences.read_bed(bed, width=width, use_summit=summit,
                                                    chrom_sizes=sizes))
        lo, hi = shard_bounds(n_total, shard)
        regions = itertools.islice(sequences.read_bed(bed, width=width, use_summit=summit),
                                   lo, hi)
        records = sequences.fetch_regions(genome, regions)
        source = f"{bed} on {genome}"
    return ScoreInputs(records=records, n=hi - lo, n_total=n_total, shard=shard or (1, 1),
                       start=lo, stop=hi, chrom_sizes=sizes, source=source)


# --------------------------------------------------------------------------- model
def read_task_names(model_path: str | os.PathLike) -> list[str] | None:
    """Task names from the sidecar ``<model>.tasks.txt`` (one per line), if it exists."""
    from dnalift.deeplift import read_sidecar_task_names
    return read_sidecar_task_names(model_path)


def load_model_checked(path: str | os.PathLike, *, unsafe: bool = False) -> Any:
    """Load a Keras model through the engine; any failure becomes a one-line InputError."""
    from dnalift import deeplift
    if not Path(path).is_file():
        raise InputError(f"{path}: no such model file")
    try:
        return deeplift.load_model(path, unsafe=unsafe)
    except DnaliftError:
        raise
    except Exception as err:  # corrupted/unsupported files raise many types
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise InputError(f"{path}: cannot load model ({type(err).__name__}: {first})") from None


def resolve_tasks(tasks: Sequence[int | str] | None,
                  task_names: Sequence[str] | None) -> list[int] | None:
    """Turn task indices / names (``"0"``, ``2``, ``"gata"``) into indices."""
    if tasks is None or len(tasks) == 0:
        return None
    out = []
    for t in tasks:
        if isinstance(t, (int, np.integer)) or (isinstance(t, str) and t.lstrip("-").isdigit()):
            out.append(int(t))
        elif task_names is not None and t in task_names:
            out.append(list(task_names).index(t))
        else:
            known = f" (tasks: {', '.join(task_names)})" if task_names else \
                " (no task names known; use an index or --task-names)"
            raise InputError(f"--task {t!r}: no such task in the model{known}")
    return out


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
    output_seconds: float = 0.0
    bigwig_seconds: float = 0.0
    max_abs_residual: float = 0.0
    tasks: list[str] = field(default_factory=list)

    @property
    def regions_per_second(self) -> float:
        return self.n_regions / self.seconds if self.seconds > 0 else float("nan")


def _outputs_done(output: Path, bigwig: Path | None) -> bool:
    return output.exists() and (bigwig is None or bigwig.exists())


def score(model: Any, inputs: ScoreInputs | Iterable[Any], *, output: str | os.PathLike,
          bigwig: str | os.PathLike | None = None, mode: str = "genomics_default",
          output_name: str | int | None = None, tasks: Sequence[int | str] | None = None,
          task_names: Sequence[str] | None = None, reference: str = "shuffle", k: int = 10,
          seed: int = 0, freqs: Sequence[float] | None = None,
          reference_fasta: str | os.PathLike | None = None, batch_size: int = 1024,
          float16: bool = False, compression: str | None = "gzip", unsafe: bool = False,
          force: bool = False, progress: ProgressFn | None = None,
          command_line: str | None = None, engine_options: dict | None = None,
          chrom_sizes: dict[str, int] | None = None,
          store_outputs: bool = True) -> ScoreSummary:
    """Score regions with DeepLIFT and write the HDF5 file (and bigWig).

    Parameters
    ----------
    model : path or keras.Model
        A path is loaded with :func:`dnalift.deeplift.load_model` (``unsafe`` allows
        Lambda/custom code) and its SHA-256 is recorded; task names default to the sidecar
        ``<model>.tasks.txt``.
    inputs : ScoreInputs or iterable of (Region, str)
        From :func:`open_inputs`, or any stream of (region, sequence) pairs (then the
        bigWig header needs ``chrom_sizes``).
    output, bigwig : path
        HDF5 file; optional bigWig of the first selected task's actual contributions.
    mode, output_name, tasks, task_names
        Engine settings (see :class:`dnalift.deeplift.DeepLift`); tasks by index or name.
    reference, k, seed, freqs, reference_fasta
        :func:`dnalift.references.make_references` settings (k for "shuffle").
    batch_size : int
        (sequence, reference) pairs per engine batch; ``max(1, batch_size // k)``
        sequences are read, encoded and written at a time.
    float16 : bool
        Store score arrays and ``input_seqs`` as float16.
    force : bool
        Overwrite finished outputs; otherwise a finished output makes this a no-op (and a
        missing bigWig is made from the finished HDF5 file).
    progress : callable(done, total), optional
    store_outputs : bool
        Also store the model's (post-activation) output of each task, ``tasks/<t>/output``
        (one extra forward pass on x per batch; skipped for outputs that are not
        ``(N, tasks)`` arrays).

    Returns
    -------
    ScoreSummary
    """
    from dnalift import references as refs_mod
    from dnalift import sequences

    t_start = time.perf_counter()
    output = writers.check_output_path(output)
    bigwig = writers.check_output_path(bigwig) if bigwig is not None else None
    if mode not in MODES:
        raise InputError(f"--mode {mode!r}: expected one of {', '.join(MODES)}")
    if reference not in REFERENCES:
        raise InputError(f"--reference {reference!r}: expected one of {', '.join(REFERENCES)}")
    if batch_size < 1 or k < 1:
        raise InputError("--batch-size and --shuffles must be >= 1")
    if not isinstance(inputs, ScoreInputs):
        inputs = ScoreInputs(records=inputs, n=0, n_total=0, shard=(1, 1), start=0, stop=0,
                             chrom_sizes=dict(chrom_sizes or {}), source="<records>")
    sizes = chrom_sizes or inputs.chrom_sizes
    if bigwig is not None and not sizes:
        raise InputError(f"{bigwig}: a bigWig needs chromosome sizes (chrom_sizes=...)")
    summary = ScoreSummary(output=output, bigwig=bigwig, n_regions=inputs.n,
                           n_total=inputs.n_total, shard=inputs.shard)
    if not force and output.exists():
        if bigwig is not None and not bigwig.exists():
            log.info("%s exists; writing the missing bigWig %s from it", output, bigwig)
            writers.bigwig_from_h5(output, bigwig)
        else:
            log.warning("%s already exists, nothing to do (use --force to recompute)", output)
        summary.skipped = True
        return summary

    from dnalift import deeplift
    checksum = ""
    if isinstance(model, (str, os.PathLike)):
        model_path = Path(model)
        model = load_model_checked(model_path, unsafe=unsafe)
        checksum = writers.file_sha256(model_path)
        if task_names is None:
            task_names = read_task_names(model_path)
    task_idx = resolve_tasks(tasks, task_names)
    try:
        engine = deeplift.DeepLift(model, mode=mode, output=output_name, tasks=task_idx,
                                   task_names=task_names, batch_size=batch_size,
                                   **(engine_options or {}))
    except DnaliftError:
        raise
    except (IndexError, KeyError, ValueError) as err:
        raise InputError(f"model: {str(err).splitlines()[0]}") from None
    labels = [str(t) for t in engine.task_labels]
    summary.tasks = labels
    n_refs = 1 if reference in ("frequency", "gc", "zero") else k
    seqs_per_batch = max(1, batch_size // max(1, n_refs))
    attrs = dict(
        dnalift_version=__version__, model_sha256=checksum, mode=mode,
        target_output="" if output_name is None else str(output_name), tasks=labels,
        reference=reference, n_references=n_refs, seed=int(seed),
        reference_freqs=list(map(float, freqs)) if freqs is not None else [],
        reference_fasta=str(reference_fasta or ""), n_total=inputs.n_total,
        shard_index=inputs.shard[0], shard_count=inputs.shard[1], shard_start=inputs.start,
        shard_stop=inputs.stop, source=inputs.source,
        command_line=command_line if command_line is not None else shlex.join(sys.argv),
        score_dtype="float16" if float16 else "float32", input_seqs_order="ACGT",
        coordinates="0-based half-open; scores in model orientation (minus strand "
                    "reverse-complemented)")

    def prepare(batches):
        """(regions, x, refs, seconds spent on references) per batch, in a helper thread."""
        offset = inputs.start
        for regions, x in batches:
            x = np.asarray(x, dtype=np.float32)
            t0 = time.perf_counter()
            refs = refs_mod.make_references(reference, x, k=k, seed=seed, freqs=freqs,
                                            fasta=reference_fasta, offset=offset)
            offset += len(regions)
            yield regions, x, refs, time.perf_counter() - t0

    def timed_write(writer, regions, x, att, outputs):
        t0 = time.perf_counter()
        writer.write(regions, x, att, outputs)
        summary.write_seconds += time.perf_counter() - t0

    writer: writers.HDF5Writer | None = None
    done = 0
    with_outputs = store_outputs
    engine_model = model
    background = pipeline.BackgroundCalls(depth=2)
    batches = pipeline.Prefetch(prepare(sequences.iter_batches(
        inputs.records, seqs_per_batch, source=inputs.source)), depth=2)
    try:
        for regions, x, refs, ref_seconds in batches:
            _check_length(inputs.source, regions[0], x.shape[1], engine.input_length,
                          writer.length if writer is not None else None)
            t1 = time.perf_counter()
            att = engine.attribute(x, refs)
            summary.engine_seconds += time.perf_counter() - t1
            summary.reference_seconds += ref_seconds
            outputs = None
            if with_outputs:
                t1 = time.perf_counter()
                outputs = model_outputs(engine_model, x, output_name,
                                        getattr(engine, "task_indices", task_idx))
                summary.output_seconds += time.perf_counter() - t1
                if outputs is None or outputs.shape != att.prediction.shape:
                    if writer is not None:  # decided on the first batch
                        raise InputError(f"{inputs.source}: model outputs of shape "
                                         f"{getattr(outputs, 'shape', None)} in a later batch")
                    with_outputs, outputs = False, None
            if writer is None:
                writer = writers.HDF5Writer(output, n=inputs.n or len(regions),
                                            length=x.shape[1], tasks=labels,
                                            n_references=refs.shape[1], attrs=attrs,
                                            chrom_sizes=sizes or None, float16=float16,
                                            batch_rows=seqs_per_batch, compression=compression,
                                            with_output=with_outputs)
            background.submit(timed_write, writer, regions, x, att, outputs)
            if att.residual.size:
                summary.max_abs_residual = max(summary.max_abs_residual,
                                               float(np.abs(att.residual).max()))
            done += len(regions)
            if progress is not None:
                progress(done, inputs.n or None)
        background.finish()
        if writer is None:
            if engine.input_length is None:
                raise InputError(f"{inputs.source}: no regions to score")
            writer = writers.HDF5Writer(output, n=0, length=engine.input_length, tasks=labels,
                                        n_references=n_refs, attrs=attrs,
                                        chrom_sizes=sizes or None, float16=float16,
                                        compression=compression, with_output=False)
        writer.close()
    except BaseException:
        batches.close()
        background.finish(raise_error=False)
        if writer is not None:
            writer.abort()
        raise
    finally:
        batches.close()
    summary.n_regions = done
    if bigwig is not None:
        t0 = time.perf_counter()
        writers.bigwig_from_h5(output, bigwig, chrom_sizes=sizes or None)
        summary.bigwig_seconds = time.perf_counter() - t0
    summary.seconds = time.perf_counter() - t_start
    return summary


def model_outputs(model: Any, x: np.ndarray, output_name: str | int | None,
                  task_idx: Sequence[int] | None) -> np.ndarray | None:
    """Post-activation model outputs ``(B, T)`` of the selected tasks at ``x`` ``(B, L, 4)``.

    Returns None when the selected output is not a ``(B, tasks)`` array (e.g. profile
    outputs) or cannot be picked unambiguously; the HDF5 file then has no ``output``.
    """
    out = model(x, training=False)
    if isinstance(out, dict):
        out = out.get(output_name) if output_name is not None else (
            next(iter(out.values())) if len(out) == 1 else None)
    elif isinstance(out, (list, tuple)):
        names = list(getattr(model, "output_names", []) or [])
        if output_name is None:
            out = out[0] if len(out) == 1 else None
        elif isinstance(output_name, int) and 0 <= output_name < len(out):
            out = out[output_name]
        elif output_name in names:
            out = out[names.index(output_name)]
        else:
            out = None
    if out is None:
        return None
    out = np.asarray(out, dtype=np.float32)
    if out.ndim != 2:
        return None
    return out[:, list(task_idx)] if task_idx is not None else out


def _check_length(source: str, region: Any, length: int, model_length: int | None,
                  first_length: int | None) -> None:
    """InputError if a batch's sequence length differs from the model's or the first's."""
    where = f"{source} region {region.name or region.chrom}:{region.start}-{region.end}"
    if model_length is not None and length != model_length:
        raise InputError(f"{where}: length {length} but the model takes {model_length}")
    if first_length is not None and length != first_length:
        raise InputError(f"{where}: length {length}, earlier regions {first_length}")


def default_output(input_path: str | os.PathLike, shard: tuple[int, int] | None = None,
                   suffix: str = ".h5") -> Path:
    """Default HDF5 name: ``<input stem>.dnalift[.shardIofN].h5`` in the current directory."""
    stem = Path(input_path).name
    for ext in (".gz", ".fa", ".fasta", ".fna", ".bed", ".narrowPeak", ".txt"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
    tag = f".shard{shard[0]}of{shard[1]}" if shard and shard[1] > 1 else ""
    return Path.cwd() / f"{stem}.dnalift{tag}{suffix}"
