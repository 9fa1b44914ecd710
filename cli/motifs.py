"""``dnalift motifs``: PWM hits with their contributions, and embedded-vs-background summaries."""

from __future__ import annotations

import click

from dnalift import meme, pwm, scorefile
from dnalift import motifs as mo
from dnalift.cli.paths import files
from dnalift.cli.options import COUNT, SEED, Float, InputFile, OutputFile
from dnalift.errors import InputError
from dnalift.references import parse_frequencies


def _background(text: str | None, from_file):
    if text is None:
        return tuple(from_file) if from_file is not None else meme.DEFAULT_BACKGROUND
    return tuple(parse_frequencies(text, what="--background", positive=True, tolerance=1e-3))


def _default_motifs(params: dict) -> tuple[dict, dict]:
    """The shipped motif file, an input when ``--motifs`` is not given."""
    from dnalift.simulated import simulate as sim
    return ({} if params["motif_path"] else {"--motifs (default)": sim.default_motif_path()},
            {})


def _from_h5(paths) -> scorefile.ScoredSequences:
    parts = [scorefile.read_scores_h5(p) for p in paths]
    first = parts[0]
    for path, part in zip(paths[1:], parts[1:]):
        if part.names != first.names or part.tasks != first.tasks:
            raise InputError(f"{path}: sequences or tasks differ from {paths[0]}")
        for label, arr in part.contributions.items():
            key = label if label not in first.contributions else f"{label}:{path}"
            first.contributions[key] = arr
    return first


def _from_model(model, fasta, methods, reference, k, seed) -> scorefile.ScoredSequences:
    from dnalift import references, sequences
    from dnalift.simulated.evaluation import compute_contributions

    records = list(sequences.read_fasta(fasta))
    names = [region.name for region, _ in records]
    x = sequences.one_hot_encode([seq for _, seq in records])
    refs = references.ReferenceSpec(reference, k=k, seed=seed).build(x)
    contributions, tasks = compute_contributions(model, x, refs, methods)
    return scorefile.ScoredSequences(names, x, contributions, tasks)


@click.command("motifs")
@click.option("--motifs", "motif_path", type=InputFile("MEME motif file"), default=None,
              help="MEME motif file [default: the shipped data/simulated/motifs.meme].")
@click.option("--h5", "h5_paths", multiple=True, type=InputFile("HDF5 score file"),
              help="HDF5 written by `dnalift score` (repeat for several methods).")
@click.option("--model", type=InputFile("Keras model"), default=None,
              help="Keras model: compute contributions in-process (needs --fasta).")
@click.option("--fasta", type=InputFile("FASTA"), default=None)
@click.option("--method", "methods", multiple=True,
              default=("gradient_x_input", "integrated_gradients", "rescale", "revealcancel"),
              show_default=True, help="Engine modes with --model (repeatable).")
@click.option("--reference", type=click.Choice(["frequency", "shuffle", "gc", "zero"]),
              default="frequency", show_default=True,
              help="Reference kind with --model (frequency, shuffle, gc, zero).")
@click.option("-k", "--n-references", "k", type=COUNT, default=None,
              help="Shuffles per sequence with --reference shuffle [default: 10].")
@click.option("--seed", type=SEED, default=None,
              help="Seed of the shuffles with --reference shuffle [default: 0].")
@click.option("--embedded", type=InputFile("embedded-motif TSV"), default=None,
              help="Embedded-motif TSV (e.g. data/simulated/test.embedded.tsv): marks hits "
                   "and enables --summary.")
@click.option("--background", default=None,
              help="A,C,G,T background for log-odds [default: the MEME file's, else uniform].")
@click.option("--pseudocount", type=Float(0, min_open=True),
              default=pwm.DEFAULT_PSEUDOCOUNT, show_default=True,
              help="Added to the motif counts (times the background); > 0 keeps every "
                   "log-odds finite.")
@click.option("--pvalue", type=Float(0, 1, min_open=True), default=pwm.DEFAULT_PVALUE,
              show_default=True,
              help="Hit threshold: background p-value of the PWM score.")
@click.option("--min-score", type=Float(), default=None,
              help="Hit threshold in bits instead of --pvalue.")
@click.option("--output", required=True, type=OutputFile(), help="Hit table TSV.")
@click.option("--summary", type=OutputFile(), default=None,
              help="Summary TSV (task x motif x method; needs --embedded).")
@click.option("--summary-sequences", type=click.Choice(["all", "all-motifs"]), default="all",
              show_default=True,
              help="Summarise over all sequences, or only those with an embedded instance of "
                   "every motif (the paper's figure).")
@click.option("--figure", type=OutputFile(), default=None,
              help="PNG: contribution vs PWM score, one panel per method.")
@files(reads=("motif_path", "h5_paths", "model", "fasta", "embedded"),
       writes=("output", "summary", "figure"), implied=_default_motifs)
def motifs(motif_path, h5_paths, model, fasta, methods, reference, k, seed, embedded,
           background, pseudocount, pvalue, min_score, output, summary, summary_sequences,
           figure) -> None:
    """Scan sequences with PWMs and summarise contributions over the hits.

    \b
    Example:
      dnalift motifs --h5 results/example.h5 \\
          --embedded data/simulated/test.embedded.tsv --output results/hits.tsv \\
          --summary results/summary.tsv --figure results/hits.png
    """
    from dnalift import plots
    from dnalift.simulated import simulate as sim

    found, file_bg = meme.load_motifs(motif_path or sim.default_motif_path())
    bg = _background(background, file_bg)
    if bool(h5_paths) == bool(model):
        raise InputError("give either --h5 (one or more) or --model with --fasta")
    if model and not fasta:
        raise InputError("--model needs --fasta")
    if summary and not embedded:
        raise InputError("--summary needs --embedded")
    scored = _from_h5(list(h5_paths)) if h5_paths else _from_model(
        model, fasta, list(methods), reference, k, seed)
    emb = mo.read_embedded(embedded) if embedded else None
    subset = (mo.sequences_with_all_motifs(emb, list(found))
              if emb is not None and summary_sequences == "all-motifs" else None)
    hits, table = mo.motif_report(scored, found, embedded=emb, background=bg,
                                  pseudocount=pseudocount, pvalue=pvalue, min_score=min_score,
                                  subset=subset)
    mo.write_tsv(hits, output)
    msg = f"{len(hits)} hits in {len(scored.names)} sequences -> {output}"
    if summary:
        mo.write_tsv(table, summary)
        msg += f"; summary -> {summary}"
    if figure:
        plots.plot_hits(hits, figure, methods=list(scored.contributions), tasks=scored.tasks,
                        motifs=list(found))
        msg += f"; figure -> {figure}"
    click.echo(msg)
