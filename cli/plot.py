"""``dnalift plot``: a sequence logo of one sequence's contributions, or the hit scatter."""

from __future__ import annotations

import click

from dnalift.cli.paths import files
from dnalift.cli.options import InputFile, Int, OutputFile
from dnalift.errors import InputError


@click.command("plot")
@click.option("--h5", type=InputFile("HDF5 score file"), default=None,
              help="HDF5 written by `dnalift score`.")
@click.option("--sequence", default=None, help="Sequence name (with --h5).")
@click.option("--task", default=None, help="Task label [default: the first].")
@click.option("--start", type=Int(0), default=None, help="First position to draw (0-based).")
@click.option("--end", type=Int(1), default=None, help="End of the drawn interval (exclusive).")
@click.option("--embedded", type=InputFile("embedded-motif TSV"), default=None,
              help="Embedded-motif TSV: shade this sequence's instances.")
@click.option("--hits", type=InputFile("hit table"), default=None,
              help="Hit table from `dnalift motifs`: draw contribution vs PWM score instead.")
@click.option("--output", required=True, type=OutputFile(), help="PNG to write.")
@files(reads=("h5", "embedded", "hits"), writes=("output",))
def plot(h5, sequence, task, start, end, embedded, hits, output) -> None:
    """Draw a contribution logo (--h5 --sequence) or a hit scatter (--hits).

    \b
    Example:
      dnalift plot --h5 results/example.h5 --sequence seq14401 --task tal \\
          --embedded data/simulated/test.embedded.tsv --output results/seq14401.png
    """
    from dnalift import plots

    logo_options = {"--h5": h5, "--sequence": sequence, "--task": task, "--start": start,
                    "--end": end, "--embedded": embedded}
    if hits and any(v is not None for v in logo_options.values()):
        given = ", ".join(k for k, v in logo_options.items() if v is not None)
        raise InputError(f"--hits draws the hit scatter; {given} apply to the contribution "
                         "logo (--h5 --sequence) only: give one or the other")
    if hits:
        size = plots.plot_hits_file(hits, output)
    elif h5 and sequence:
        size = plots.plot_sequence_from_h5(h5, sequence, output, task=task, start=start,
                                           end=end, embedded=embedded)
    else:
        raise InputError("give --h5 with --sequence, or --hits")
    click.echo(f"wrote {output} ({size[0]}x{size[1]} px)")
