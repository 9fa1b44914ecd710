"""``dnalift score``: DeepLIFT scores of FASTA records or BED regions -> HDF5 (+ bigWig)."""

from __future__ import annotations

import logging
import shlex
import sys

import click

from dnalift import scoring
from dnalift.cli.paths import FASTA_INDEX, MODEL_TASK_NAMES, files
from dnalift.engine.names import (COUNTS_COMBINE, MAXPOOL_RULES, MODES, PROFILE_CHANNELS,
                                  PROFILE_WEIGHTS)
from dnalift.cli.options import COUNT, SEED, InputFile, Int, OutputFile
from dnalift.errors import InputError
from dnalift.references import KINDS, REGISTRY, ReferenceSpec, parse_frequencies

#: The command-line flag of each ReferenceSpec option.
REFERENCE_FLAGS = {"k": "--shuffles", "seed": "--seed", "freqs": "--freqs",
                   "fasta": "--reference-fasta"}


def configure_logging(quiet: bool, verbose: int) -> None:
    """dnalift log lines to (the current) stderr: warnings only with -q, debug with -v."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    logger = logging.getLogger("dnalift")
    logger.setLevel(level)
    for old in [h for h in logger.handlers if getattr(h, "_dnalift_cli", False)]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler._dnalift_cli = True
    handler.setFormatter(logging.Formatter("dnalift: %(message)s"))
    logger.addHandler(handler)
    if verbose:
        from dnalift.cli.tflog import loud_tensorflow
        loud_tensorflow()


def reference_spec(kind: str, **options) -> ReferenceSpec:
    """The ReferenceSpec of the command-line options, with errors naming the flags."""
    if kind == "fasta" and options.get("fasta") is None:
        raise InputError("--reference fasta needs --reference-fasta FILE (the reference "
                         "sequences)")
    allowed = REGISTRY[kind].options
    for name, value in options.items():
        if value is not None and name not in allowed:
            takes = ", ".join(REFERENCE_FLAGS[o] for o in allowed) or "no options"
            raise InputError(f"{REFERENCE_FLAGS[name]} does not apply to --reference {kind} "
                             f"(it takes {takes})")
    if options.get("freqs") is not None:
        options["freqs"] = tuple(parse_frequencies(options["freqs"], what="--freqs"))
    return ReferenceSpec(kind, **options)


def _task_names(text: str | None) -> list[str] | None:
    """``--task-names``: a file with one name per line, or comma-separated names (checked:
    not empty, no empty or repeated name; errors name the file or the option)."""
    if text is None:
        return None
    from pathlib import Path

    from dnalift.models import check_name_list, read_names_file
    if Path(text).is_file():
        return read_names_file(text, what="--task-names file")
    return check_name_list([t.strip() for t in text.split(",")], f"--task-names {text!r}")


def implied_paths(params: dict) -> tuple[dict, dict]:
    """Files of ``dnalift score`` beyond its path options: a ``--task-names`` file, the
    default ``--output`` and, for several ``--target``, one HDF5 file (and bigWig) per head."""
    task_file = params["task_names"]
    from pathlib import Path
    inputs = {"--task-names": task_file} if task_file and Path(task_file).is_file() else {}
    outputs: dict = {}
    output = params["output"]
    if output is None:
        shard = params["shard"]
        output = scoring.default_output(params["fasta"] or params["bed"] or "dnalift",
                                        scoring.parse_shard(shard) if shard else None)
        outputs["--output (default)"] = output
    heads = params["target_kinds"] if len(params["target_kinds"]) > 1 else ()
    for head in heads:
        outputs[f"--output ({head})"] = scoring.head_path(output, head)
        if params["bigwig"] is not None:
            outputs[f"--bigwig ({head})"] = scoring.head_path(params["bigwig"], head)
    return inputs, outputs


def _sidecar_task_names(model: str) -> list[str] | None:
    """The task names of ``MODEL.tasks.txt`` (checked: no repeated name), read before any
    model is loaded."""
    from dnalift.models import read_task_names
    return read_task_names(model)


def check_stored_lengths(models: tuple[str, ...], inputs: scoring.ScoreInputs) -> None:
    """Every region has the input length stored in each model file's config (read without
    TensorFlow; a model whose file stores none is checked once it is loaded)."""
    from dnalift.models import read_model_config, stored_input_length
    for path in models:
        length = stored_input_length(read_model_config(path))
        if length is not None and inputs.check_length is not None:
            try:
                inputs.check_length(length)
            except InputError as err:
                raise InputError(f"{err} ({path})") from None


def announce(models: tuple[str, ...], inputs: scoring.ScoreInputs, mode: str,
             references: ReferenceSpec, strands: str, device: str) -> None:
    """Log what the job loads and how it scores, before TensorFlow is imported."""
    names = ", ".join(models)
    k = references.n_references
    logging.getLogger("dnalift").info(
        "scoring %d regions of %s with %s: mode %s, %s references%s, %s strand%s, device %s"
        " (loading TensorFlow and the model)", inputs.n, inputs.source, names, mode,
        references.name, f" x{k}" if k else "", strands, "s" if strands == "both" else "",
        device)


def _output_ref(name: str | None):
    """``--output-name`` as an index when it is a number."""
    return int(name) if name and name.isdigit() else name


def _targets(kinds: tuple, output_names: tuple, channels: str, combine: str,
             weights: str = "dnalift"):
    """``(target, output)`` of EngineSpec from ``--target`` (repeatable) and
    ``--output-name`` (none, or one per ``--target``); import after configure_device."""
    if weights != "dnalift" and "profile" not in kinds:
        raise InputError(f"--profile-weights {weights} applies to --target profile")
    if not kinds:
        if len(output_names) > 1:
            raise InputError("--output-name given more than once; give one --target per "
                             "--output-name")
        return None, _output_ref(output_names[0]) if output_names else None
    if output_names and len(output_names) != len(kinds):
        raise InputError(f"{len(kinds)} --target but {len(output_names)} --output-name: give "
                         "one --output-name per --target, or none (detected by shape)")
    from dnalift.engine.targets import TargetSpec
    outputs = [_output_ref(n) for n in output_names] or [None] * len(kinds)
    specs = [TargetSpec(k, output=o, channels=channels, combine=combine, weights=weights)
             for k, o in zip(kinds, outputs)]
    return (specs[0], outputs[0]) if len(specs) == 1 else (tuple(specs), None)


@click.command("score")
@click.option("--model", "model", required=True, multiple=True, type=InputFile("Keras model"),
              help="Keras model (.keras, or legacy/Keras-2 .h5). Task names are read from "
                   "MODEL.tasks.txt when present. Repeat for an ensemble (e.g. the folds): "
                   "scores are averaged over the models, same references for all.")
@click.option("--fasta", type=InputFile("FASTA"), default=None,
              help="Sequences to score (all the model's input length).")
@click.option("--bed", type=InputFile("BED file"), default=None,
              help="Regions to score (BED3-6 or narrowPeak); needs --genome.")
@click.option("--genome", type=InputFile("genome FASTA"), default=None,
              help="Genome FASTA for --bed (indexed with .fai, built if missing); its "
                   "chromosome sizes are the bigWig header.")
@click.option("--width", type=Int(1), default=None,
              help="Resize BED regions to WIDTH around their centre (or summit).")
@click.option("--summit", is_flag=True,
              help="Centre --width on the narrowPeak summit (column 10) instead of the middle.")
@click.option("-o", "--output", type=OutputFile(), default=None,
              help="HDF5 output [default: ./<input name>.dnalift.h5, with .shardIofN before "
                   ".h5 for --shard].")
@click.option("--bigwig", type=OutputFile(), default=None,
              help="Also write a bigWig of per-base contributions (first selected task).")
@click.option("--task", "tasks", multiple=True,
              help="Task to explain, by index (0-based) or name; repeat for several "
                   "[default: all tasks of the output].")
@click.option("--task-names", default=None,
              help="Comma-separated task names, or a file with one per line "
                   "[default: MODEL.tasks.txt, else the indices].")
@click.option("--target", "target_kinds", multiple=True,
              type=click.Choice(["logit", "profile", "counts"]),
              help="What to explain: logit (pre-activation columns) [default], profile "
                   "(BPNet/ChromBPNet softmax-weighted profile logits) or counts (count "
                   "head). Repeat (e.g. --target profile --target counts) to score several "
                   "heads in one pass, one file per head: OUTPUT stem + .profile.h5 / "
                   ".counts.h5 (and BIGWIG stem + .profile.bw / .counts.bw).")
@click.option("--output-name", multiple=True,
              help="Model output to explain (name or index) for multi-output models; once "
                   "per --target [default for profile/counts: the output of that shape].")
@click.option("--profile-channels", type=click.Choice(list(PROFILE_CHANNELS)),
              default="sum", show_default=True,
              help="Profile target over channels (strands): summed per-channel targets, one "
                   "column per channel, or one softmax over all positions and channels.")
@click.option("--profile-weights", type=click.Choice(list(PROFILE_WEIGHTS)),
              default="dnalift", show_default=True,
              help="Per-pair weights of the profile target's mean-centred logits: the softmax "
                   "at x (dnalift), the mean of the softmax at x and at the reference "
                   "(chrombpnet: ChromBPNet's contribs_bw / DeepSHAP numbers), or Rescale "
                   "through logits*softmax(logits) (bpnet-lite, tangermeme). See "
                   "docs/concepts/targets.md.")
@click.option("--counts-combine", type=click.Choice(list(COUNTS_COMBINE)), default="sum",
              show_default=True,
              help="Counts target with several log-count columns: their sum, or the log of "
                   "the summed counts (Rescale rule).")
@click.option("--mode", type=click.Choice(MODES), default="genomics_default",
              show_default=True,
              help="Attribution rules: genomics_default, rescale or revealcancel (DeepLIFT), "
                   "or a gradient baseline: gradient, gradient_x_input or "
                   "integrated_gradients (see docs/concepts/engine.md).")
@click.option("--maxpool", type=click.Choice(list(MAXPOOL_RULES)), default="rescale",
              show_default=True,
              help="Max-pooling rule: rescale (splits the pooled difference between the "
                   "argmax of input and reference; sums to delta) or gradient (all to the "
                   "input's argmax, as the original DeepLIFT, captum and tangermeme).")
@click.option("--reference", type=click.Choice(KINDS), default=None,
              help="Reference kind [default: shuffle; frequency with --freqs; fasta with "
                   "--reference-fasta].")
@click.option("--shuffles", "k", type=COUNT, default=None,
              help="Dinucleotide-shuffled references per sequence (--reference shuffle) "
                   "[default: 10].")
@click.option("--freqs", default=None, metavar="A,C,G,T",
              help="Base frequencies of the frequency reference, e.g. 0.3,0.2,0.2,0.3.")
@click.option("--reference-fasta", type=InputFile("reference FASTA"), default=None,
              help="User-supplied reference sequences (--reference fasta).")
@click.option("--seed", type=SEED, default=None,
              help="Seed of the shuffled references (--reference shuffle; recorded in the "
                   "output) [default: 0].")
@click.option("--strands", type=click.Choice(["forward", "both"]), default="forward",
              show_default=True,
              help="both: also score the reverse complement of every region and average the "
                   "two in the input's orientation.")
@click.option("--batch-size", type=COUNT, default=1024, show_default=True,
              help="(sequence, reference) pairs per engine batch.")
@click.option("--shard", default=None, metavar="I/N",
              help="Score only the I-th of N equal contiguous slices of the input; I is "
                   "1-based (1..N, as SLURM --array=1-N). Join with `dnalift merge`.")
@click.option("--unsafe", is_flag=True,
              help="Allow Lambda layers / custom code in the model (runs code from the file).")
@click.option("--float16", is_flag=True,
              help="Store hyp_scores, contrib_scores and input_seqs as float16.")
@click.option("--compression", type=click.Choice(["gzip", "lzf", "none"]), default="gzip",
              show_default=True, help="HDF5 compression of the datasets.")
@click.option("--force", is_flag=True, help="Recompute even if the outputs exist.")
@click.option("--device", type=click.Choice(["auto", "cpu", "gpu"]), default="auto",
              show_default=True, help="cpu hides GPUs; gpu fails if none is visible.")
@click.option("-q", "--quiet", is_flag=True, help="No progress, only warnings and errors.")
@click.option("-v", "--verbose", count=True, help="More log output.")
@files(reads=("model", "fasta", "bed", "genome", "reference_fasta"), writes=("output", "bigwig"),
       sidecars={"model": MODEL_TASK_NAMES, "fasta": FASTA_INDEX, "genome": FASTA_INDEX,
                 "reference_fasta": FASTA_INDEX}, implied=implied_paths)
def score(model, fasta, bed, genome, width, summit, output, bigwig, tasks, task_names,
          target_kinds, output_name, profile_channels, counts_combine, mode, maxpool, reference,
          k,
          freqs, reference_fasta, seed, strands, batch_size, shard,
          unsafe, float16, compression, force, device, quiet, verbose,
          profile_weights="dnalift") -> None:
    """Compute DeepLIFT contribution scores and write HDF5 (tfmodisco-lite layout) and bigWig.

    \b
    Examples:
      dnalift score --model data/simulated/model.h5 --fasta data/simulated/test.fa \\
          --output results/example.h5 --bigwig results/example.bw
      dnalift score --model m.h5 --bed peaks.narrowPeak --genome hg38.fa \\
          --width 1000 --summit --output s.h5 --bigwig s.bw --shard 3/10
    """
    configure_logging(quiet, verbose)
    shard_t = scoring.parse_shard(shard) if shard is not None else None
    scoring.configure_device(device)
    if reference is None:
        reference = ("frequency" if freqs is not None else
                     "fasta" if reference_fasta is not None else "shuffle")
    references = reference_spec(reference, k=k, seed=seed, freqs=freqs, fasta=reference_fasta)
    names = _task_names(task_names) or _sidecar_task_names(model[0])
    if output is None:
        output = scoring.default_output(fasta or bed or "dnalift", shard_t)
    out = scoring.OutputSpec(output, bigwig=bigwig, float16=float16,
                             compression=None if compression == "none" else compression,
                             force=force, command_line=shlex.join(["dnalift"] + sys.argv[1:]))
    inputs = scoring.open_inputs(fasta=fasta, bed=bed, genome=genome, width=width,
                                 summit=summit, shard=shard_t)
    check_stored_lengths(model, inputs)
    announce(model, inputs, mode, references, strands, device)
    # the cheap checks above run before TensorFlow is imported (by the targets, then models)
    target, output_ref = _targets(target_kinds, output_name, profile_channels, counts_combine,
                                  profile_weights)
    engine = scoring.EngineSpec(
        mode=mode, output=output_ref, target=target, tasks=list(tasks) or None,
        task_names=names, batch_size=batch_size, unsafe=unsafe, strands=strands,
        options={"maxpool": maxpool})
    progress = scoring_progress(quiet)
    try:
        summary = scoring.score(list(model), inputs, out, reference=references, engine=engine,
                                progress=progress)
    finally:
        progress.close()
    if summary.skipped or quiet:
        return
    click.echo(f"scored {summary.n_regions} regions in {summary.seconds:.1f} s "
               f"({summary.regions_per_second:.1f} regions/s; max |residual| "
               f"{summary.max_abs_residual:.2g}) -> "
               + ", ".join(str(p) for p in summary.outputs), err=True)
    for key, values in summary.agreement.items():
        names = list(model) if key == "model_agreement" else ["forward", "reverse"]
        click.echo(f"{key.replace('_', ' ')} (Pearson r with the mean): " + ", ".join(
            f"{name} {r:.4f}" for name, r in zip(names, values)), err=True)


def _click_bar(total: int, label: str, stream, rate_text):
    """A click progress bar showing position, ETA and the rate (for dnalift.progress)."""
    return click.progressbar(length=total, label=label, file=stream, show_pos=True,
                             show_eta=True, item_show_func=lambda _: rate_text())


def scoring_progress(quiet: bool):
    from dnalift.progress import Progress
    return Progress("scoring", enabled=not quiet, bar=_click_bar)
