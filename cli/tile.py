"""``dnalift tile``: fixed-width windows over a genome, as BED, for genome-wide scoring."""

from __future__ import annotations

import click

from dnalift import tiling
from dnalift.cli.paths import FASTA_INDEX, files
from dnalift.cli.options import Float, InputFile, Int, OutputFile


@click.command("tile")
@click.option("--genome", "genome", required=True, type=InputFile("genome FASTA"),
              help="Genome FASTA (indexed with .fai, or indexable).")
@click.option("--width", type=Int(1), required=True,
              help="Window width (the model's input length).")
@click.option("--step", type=Int(1), default=None,
              help="Distance between window starts [default: width, no overlap].")
@click.option("--include", default=None, metavar="REGEX",
              help="Only chromosomes whose name matches (re.search), e.g. '^chr[0-9XY]+$'.")
@click.option("--exclude", default=None, metavar="REGEX",
              help="Skip chromosomes whose name matches (re.search), e.g. '_|^chrM$'.")
@click.option("--max-n-fraction", type=Float(0, 1), default=tiling.DEFAULT_MAX_N_FRACTION,
              show_default=True,
              help="Drop windows with a larger fraction of non-ACGT bases (all-N windows "
                   "are always dropped).")
@click.option("--cover-end", is_flag=True,
              help="Add a last window ending at each chromosome's end where the regular "
                   "windows leave its tail uncovered (default: drop the partial window).")
@click.option("--output", "output", required=True, type=OutputFile(),
              help="BED4 file to write (chrom, start, end, chrom:start-end).")
@files(reads=("genome",), writes=("output",), sidecars={"genome": FASTA_INDEX})
def tile(genome, width, step, include, exclude, max_n_fraction, cover_end, output) -> None:
    """Tile a genome into fixed-width windows (partial windows at chromosome ends dropped).

    \b
    Example:
      dnalift tile --genome hg38.fa --width 1000 --step 500 \\
          --exclude '_|^chrM$' --output windows.bed
    """
    tiles = tiling.tile_genome(genome, width, width if step is None else step,
                               include=include, exclude=exclude,
                               max_n_fraction=max_n_fraction, cover_end=cover_end)
    summary = tiling.write_bed(tiles, output)
    click.echo(f"wrote {summary.n_windows} windows on {summary.n_chromosomes} chromosomes to "
               f"{output} ({summary.n_dropped} N-rich windows dropped)")
