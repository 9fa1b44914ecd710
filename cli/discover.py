"""``dnalift discover``: from a score file to named motifs (TF-MoDISco, Fi-NeMo, TOMTOM-like
naming) and their figures. The library glue is :mod:`dnalift.discovery`."""

from __future__ import annotations

import click

from dnalift.cli.paths import files
from dnalift.cli.options import COUNT, Float, InputFile, Int, OutputDir, OutputFile
from dnalift.errors import InputError
from dnalift.fileio import temp_directory

_TASK = click.option("--task", default=None,
                     help="Task label (or index) of the score file [default: the first].")
_H5 = click.option("--h5", "h5", required=True, type=InputFile("HDF5 score file"),
                   help="HDF5 written by `dnalift score`.")
_MODISCO = click.option("--modisco", "modisco_h5", required=True,
                        type=InputFile("TF-MoDISco results HDF5"), help="TF-MoDISco results HDF5.")
_MOTIFS = click.option("--motifs", "meme_path", required=True, type=InputFile("MEME motif file"),
                       help="MEME motif database.")
_LOG = click.option("--log", type=OutputFile(), default=None,
                    help="Append the tool's output here.")


@click.group("discover")
def discover() -> None:
    """Discover motifs in contribution scores, name them, call their instances.

    \b
    dnalift discover modisco --h5 s.h5 --task both --output modisco.h5
    dnalift discover report  --modisco modisco.h5 --motifs db.meme --output report/
    dnalift discover name    --modisco modisco.h5 --motifs db.meme --output patterns.tsv
    dnalift discover hits    --h5 s.h5 --task both --modisco modisco.h5 --output hits.bed
    dnalift discover track   --h5 s.h5 --hits hits.bed --region seq14401 --output track.png

    modisco, report and hits run modisco-lite and finemo (pip install 'dnalift[motifs]').

    \b
    Example:
      dnalift discover modisco --h5 scores.h5 --task tal --output tal.modisco.h5
    """


@discover.command("view")
@_H5
@_TASK
@click.option("--output", required=True, type=OutputFile(),
              help="HDF5 with hyp_scores/input_seqs linked to the task (TF-MoDISco layout).")
@files(reads=("h5",), writes=("output",))
def view(h5, task, output) -> None:
    """Link one task's scores into a TF-MoDISco-layout HDF5 file (no copy).

    \b
    Example:
      dnalift discover view --h5 scores.h5 --task tal --output tal.h5
    """
    from dnalift.discovery import task_view
    click.echo(f"wrote {task_view(h5, task, output)}")


@discover.command("modisco")
@_H5
@_TASK
@click.option("--output", required=True, type=OutputFile(),
              help="TF-MoDISco results HDF5.")
@click.option("--max-seqlets", type=COUNT, default=2000, show_default=True,
              help="modisco motifs -n: seqlets per metacluster.")
@click.option("--window", type=COUNT, default=None,
              help="modisco motifs -w: central window [default: the whole region].")
@_LOG
@files(reads=("h5",), writes=("output", "log"))
def modisco(h5, task, output, max_seqlets, window, log) -> None:
    """Run TF-MoDISco (`modisco motifs`) on one task of a score file.

    \b
    Example:
      dnalift discover modisco --h5 scores.h5 --task tal --output tal.modisco.h5
    """
    from dnalift.discovery import run_modisco
    out = run_modisco(h5, task, output, max_seqlets=max_seqlets, window=window, log=log)
    click.echo(f"wrote {out}")


@discover.command("report")
@_MODISCO
@_MOTIFS
@click.option("--output", required=True, type=OutputDir(),
              help="Directory of the HTML report (report.html).")
@_LOG
@files(reads=("modisco_h5", "meme_path"), writes=("output", "log"))
def report(modisco_h5, meme_path, output, log) -> None:
    """TF-MoDISco's HTML report (`modisco report --lite`: TOMTOM p-values by memelite).

    \b
    Example:
      dnalift discover report --modisco tal.modisco.h5 --motifs JASPAR.meme \\
          --output tal_report
    """
    from dnalift.discovery import run_report
    click.echo(f"wrote {run_report(modisco_h5, meme_path, output, log)}")


@discover.command("name")
@_MODISCO
@_MOTIFS
@click.option("--output", required=True, type=OutputFile(),
              help="Pattern table TSV (best match, p- and q-value per pattern).")
@click.option("--pairs", type=OutputFile(), default=None,
              help="TSV of every pattern x motif comparison.")
@click.option("--logos", type=OutputDir(), default=None,
              help="Directory: one PNG per pattern, CWM logo above the matched motif.")
@click.option("--method", type=click.Choice(["auto", "memelite", "dnalift"]), default="auto",
              show_default=True, help="auto: memelite's TOMTOM when installed, else dnalift's "
                                      "permutation p-values.")
@click.option("--trim-threshold", type=Float(0, 1), default=0.3, show_default=True)
@files(reads=("modisco_h5", "meme_path"), writes=("output", "pairs", "logos"))
def name(modisco_h5, meme_path, output, pairs, logos, method, trim_threshold) -> None:
    """Name TF-MoDISco patterns by their best match in a motif database.

    \b
    Example:
      dnalift discover name --modisco tal.modisco.h5 --motifs JASPAR.meme \\
          --output tal.patterns.tsv
    """
    from dnalift import discovery, meme, motifs

    database, _ = meme.load_motifs(meme_path)
    patterns = discovery.read_patterns(modisco_h5)
    table, all_pairs = discovery.name_patterns(patterns, database, method=method,
                                               trim_threshold=trim_threshold)
    motifs.write_tsv(table, output)
    if pairs:
        motifs.write_tsv(all_pairs, pairs)
    if logos:
        discovery.write_pattern_logos(patterns, table, database, logos)
    for row in table.itertuples():
        click.echo(f"{row.pattern}\t{row.n_seqlets}\t{row.consensus}\t{row.match}\t"
                   f"p={row.pvalue:.3g}\tq={row.qvalue:.3g}")


@discover.command("hits")
@_H5
@_TASK
@_MODISCO
@click.option("--patterns", type=InputFile("pattern table"), default=None,
              help="Pattern table of `dnalift discover name`: hits are named by the match.")
@click.option("--output", required=True, type=OutputFile(), help="Hit BED.")
@click.option("--finemo-dir", type=OutputDir(), default=None,
              help="Keep Fi-NeMo's own outputs (hits.tsv, ...) here.")
@click.option("--lambda", "lam", type=Float(0), default=0.7, show_default=True,
              help="finemo call-hits -l: L1 penalty (sparsity of hits).")
@click.option("--batch-size", type=COUNT, default=200, show_default=True,
              help="finemo call-hits -b: regions per optimisation batch.")
@click.option("--max-regions", type=COUNT, default=None,
              help="Call hits on the first N regions only (Fi-NeMo is slow on a CPU).")
@_LOG
@files(reads=("h5", "modisco_h5", "patterns"), writes=("output", "finemo_dir", "log"))
def hits(h5, task, modisco_h5, patterns, output, finemo_dir, lam, batch_size, max_regions,
         log) -> None:
    """Call motif instances with Fi-NeMo; write them as BED in genome coordinates.

    \b
    Example:
      dnalift discover hits --h5 scores.h5 --task tal --modisco tal.modisco.h5 \\
          --patterns tal.patterns.tsv --output tal.hits.bed
    """
    from dnalift import discovery

    names = discovery.pattern_names(patterns) if patterns else {}
    with temp_directory(output) as tmpdir:  # removed on a signal too
        bed = discovery.call_hits(h5, task, modisco_h5, names=names, workdir=tmpdir,
                                  finemo_dir=finemo_dir, lam=lam, batch_size=batch_size,
                                  max_regions=max_regions, log=log)
    discovery.write_bed(bed, output)
    counts = bed["name"].value_counts()
    click.echo(f"{len(bed)} hits -> {output}: " +
               ", ".join(f"{n} {c}" for n, c in counts.items()))


@discover.command("track")
@_H5
@_TASK
@click.option("--hits", "hits_bed", required=True, type=InputFile("hit BED"),
              help="Hit BED of `dnalift discover hits`.")
@click.option("--region", required=True, help="Region (sequence) name.")
@click.option("--start", type=Int(0), default=None, help="First position drawn (0-based, "
                                                      "within the region).")
@click.option("--end", type=Int(1), default=None, help="End of the drawn window (exclusive).")
@click.option("--output", required=True, type=OutputFile(), help="PNG.")
@files(reads=("h5", "hits_bed"), writes=("output",))
def track(h5, task, hits_bed, region, start, end, output) -> None:
    """Contribution logo of one region with its Fi-NeMo hits marked.

    \b
    Example:
      dnalift discover track --h5 scores.h5 --task tal --hits tal.hits.bed \\
          --region chr1:1000-2000 --output region.png
    """
    from dnalift import discovery, plots
    from dnalift.scorefile import ScoreFile

    with ScoreFile(h5) as sf:
        i, t = sf.index(region), sf.task_index(task)
        c = {k: v[i] for k, v in sf.coords().items()}
        x, actual, label, length = sf.sequences(i), sf.actual(i, t), sf.tasks[t], sf.length
    start, end = (0 if start is None else start), (length if end is None else end)
    if not 0 <= start < end <= length:
        raise InputError(f"--start/--end {start}-{end} outside 0-{length}")
    found = discovery.read_bed_hits(hits_bed)
    found = found[found["region"] == region]
    spans = discovery.region_positions(found, c)
    spans = [(max(s, start), min(e, end), n) for s, e, n in spans if s < end and e > start]
    size = plots.plot_region_track(x[start:end], actual[start:end], output, hits=spans,
                                   start=start, title=f"{region}  task {label}")
    click.echo(f"wrote {output} ({size[0]}x{size[1]} px, {len(spans)} hits)")
