"""``dnalift discover``: from a score file to named motifs (TF-MoDISco, Fi-NeMo, TOMTOM-like
naming) and their figures. The library glue is :mod:`dnalift.discovery`."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from dnalift.errors import InputError

_TASK = click.option("--task", default=None,
                     help="Task label (or index) of the score file [default: the first].")
_H5 = click.option("--h5", "h5", required=True, type=click.Path(dir_okay=False),
                   help="HDF5 written by `dnalift score`.")
_MODISCO = click.option("--modisco", "modisco_h5", required=True,
                        type=click.Path(dir_okay=False), help="TF-MoDISco results HDF5.")
_MOTIFS = click.option("--motifs", "meme_path", required=True, type=click.Path(dir_okay=False),
                       help="MEME motif database.")
_LOG = click.option("--log", type=click.Path(dir_okay=False), default=None,
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
    """


@discover.command("view")
@_H5
@_TASK
@click.option("--output", required=True, type=click.Path(dir_okay=False),
              help="HDF5 with hyp_scores/input_seqs linked to the task (TF-MoDISco layout).")
def view(h5, task, output) -> None:
    """Link one task's scores into a TF-MoDISco-layout HDF5 file (no copy)."""
    from dnalift.discovery import task_view
    click.echo(f"wrote {task_view(h5, task, output)}")


@discover.command("modisco")
@_H5
@_TASK
@click.option("--output", required=True, type=click.Path(dir_okay=False),
              help="TF-MoDISco results HDF5.")
@click.option("--max-seqlets", type=int, default=2000, show_default=True,
              help="modisco motifs -n: seqlets per metacluster.")
@click.option("--window", type=int, default=None,
              help="modisco motifs -w: central window [default: the whole region].")
@_LOG
def modisco(h5, task, output, max_seqlets, window, log) -> None:
    """Run TF-MoDISco (`modisco motifs`) on one task of a score file."""
    from dnalift.discovery import require_tool, run_tool, task_view
    from dnalift.fileio import atomic_output, check_output_path
    from dnalift.scorefile import ScoreFile

    require_tool("modisco")
    with ScoreFile(h5) as sf:
        length = sf.length
    out = check_output_path(output)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmpdir, \
            atomic_output(out, keep_suffix=True) as tmp:
        linked = task_view(h5, task, Path(tmpdir) / "task.h5")
        run_tool(["modisco", "motifs", "-i", linked, "-n", max_seqlets,
                  "-w", window or length, "-o", tmp], log)
    click.echo(f"wrote {out}")


@discover.command("report")
@_MODISCO
@_MOTIFS
@click.option("--output", required=True, type=click.Path(file_okay=False),
              help="Directory of the HTML report (report.html).")
@_LOG
def report(modisco_h5, meme_path, output, log) -> None:
    """TF-MoDISco's HTML report (`modisco report --lite`: TOMTOM p-values by memelite)."""
    from dnalift.discovery import run_tool
    from dnalift.meme import load_motifs

    n_matches = min(3, len(load_motifs(meme_path)[0]))  # modisco fails asking for more
    Path(output).mkdir(parents=True, exist_ok=True)
    run_tool(["modisco", "report", "-i", modisco_h5, "-o", output, "-m", meme_path, "-l",
              "-n", n_matches], log)
    click.echo(f"wrote {Path(output) / 'report.html'}")


@discover.command("name")
@_MODISCO
@_MOTIFS
@click.option("--output", required=True, type=click.Path(dir_okay=False),
              help="Pattern table TSV (best match, p- and q-value per pattern).")
@click.option("--pairs", type=click.Path(dir_okay=False), default=None,
              help="TSV of every pattern x motif comparison.")
@click.option("--logos", type=click.Path(file_okay=False), default=None,
              help="Directory: one PNG per pattern, CWM logo above the matched motif.")
@click.option("--method", type=click.Choice(["auto", "memelite", "dnalift"]), default="auto",
              show_default=True, help="auto: memelite's TOMTOM when installed, else dnalift's "
                                      "permutation p-values.")
@click.option("--trim-threshold", type=float, default=0.3, show_default=True)
def name(modisco_h5, meme_path, output, pairs, logos, method, trim_threshold) -> None:
    """Name TF-MoDISco patterns by their best match in a motif database."""
    from dnalift import discovery, meme, motifs, plots

    database, _ = meme.load_motifs(meme_path)
    patterns = discovery.read_patterns(modisco_h5)
    table, all_pairs = discovery.name_patterns(patterns, database, method=method,
                                               trim_threshold=trim_threshold)
    motifs.write_tsv(table, output)
    if pairs:
        motifs.write_tsv(all_pairs, pairs)
    if logos:
        Path(logos).mkdir(parents=True, exist_ok=True)
        for p, row in zip(patterns, table.itertuples()):
            lo, hi = row.trim_start, row.trim_end
            target = database[row.match].probs if row.match else None
            plots.plot_pattern_match(
                p.cwm[lo:hi], target, Path(logos) / f"{p.name}.png", match=row.match,
                strand=row.strand, offset=row.offset,
                title=f"{p.name} ({p.n_seqlets} seqlets)" + (
                    f": {row.match}, q = {row.qvalue:.2g}" if row.match else ""))
    for row in table.itertuples():
        click.echo(f"{row.pattern}\t{row.n_seqlets}\t{row.consensus}\t{row.match}\t"
                   f"p={row.pvalue:.3g}\tq={row.qvalue:.3g}")


@discover.command("hits")
@_H5
@_TASK
@_MODISCO
@click.option("--patterns", type=click.Path(dir_okay=False), default=None,
              help="Pattern table of `dnalift discover name`: hits are named by the match.")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="Hit BED.")
@click.option("--finemo-dir", type=click.Path(file_okay=False), default=None,
              help="Keep Fi-NeMo's own outputs (hits.tsv, ...) here.")
@click.option("--lambda", "lam", type=float, default=0.7, show_default=True,
              help="finemo call-hits -l: L1 penalty (sparsity of hits).")
@click.option("--batch-size", type=int, default=200, show_default=True,
              help="finemo call-hits -b: regions per optimisation batch.")
@click.option("--max-regions", type=int, default=None,
              help="Call hits on the first N regions only (Fi-NeMo is slow on a CPU).")
@_LOG
def hits(h5, task, modisco_h5, patterns, output, finemo_dir, lam, batch_size, max_regions,
         log) -> None:
    """Call motif instances with Fi-NeMo; write them as BED in genome coordinates."""
    import pandas as pd

    from dnalift import discovery
    from dnalift.scorefile import ScoreFile

    discovery.require_tool("finemo")
    with ScoreFile(h5) as sf:
        coords, length = sf.coords(), sf.length
    names = {}
    if patterns:
        table = pd.read_csv(patterns, sep="\t", keep_default_na=False)
        names = {p: m for p, m in zip(table["pattern"], table["match"]) if m}
    with tempfile.TemporaryDirectory(dir=Path(output).resolve().parent) as tmpdir:
        tmp = Path(tmpdir)
        linked = discovery.task_view(h5, task, tmp / "task.h5")
        run_dir = Path(finemo_dir) if finemo_dir else tmp / "finemo"
        discovery.run_tool(["finemo", "extract-regions-bpnet-h5", "-c", linked,
                            "-o", tmp / "regions.npz", "-w", length], log)
        if max_regions is not None:
            discovery.first_regions(tmp / "regions.npz", max_regions)
        discovery.run_tool(["finemo", "call-hits", "-r", tmp / "regions.npz",
                            "-m", modisco_h5, "-o", run_dir, "-l", lam,
                            "-b", batch_size], log)
        found = discovery.read_finemo_hits(run_dir / "hits.tsv")
    bed = discovery.hits_to_bed(found, coords, names)
    discovery.write_bed(bed, output)
    counts = bed["name"].value_counts()
    click.echo(f"{len(bed)} hits -> {output}: " +
               ", ".join(f"{n} {c}" for n, c in counts.items()))


@discover.command("track")
@_H5
@_TASK
@click.option("--hits", "hits_bed", required=True, type=click.Path(dir_okay=False),
              help="Hit BED of `dnalift discover hits`.")
@click.option("--region", required=True, help="Region (sequence) name.")
@click.option("--start", type=int, default=None, help="First position drawn (0-based, "
                                                      "within the region).")
@click.option("--end", type=int, default=None, help="End of the drawn window (exclusive).")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="PNG.")
def track(h5, task, hits_bed, region, start, end, output) -> None:
    """Contribution logo of one region with its Fi-NeMo hits marked."""
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
