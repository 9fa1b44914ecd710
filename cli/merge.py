"""``dnalift merge``: join the HDF5 shards of a ``dnalift score --shard I/N`` job."""

from __future__ import annotations

import shlex
import sys

import click

from dnalift import scorefile
from dnalift.cli.paths import files
from dnalift.cli.options import InputFile, OutputFile
from dnalift.errors import InputError


@click.command("merge")
@click.argument("shards", nargs=-1, required=True, type=InputFile("HDF5 shard"))
@click.option("-o", "--output", required=True, type=OutputFile(),
              help="Merged HDF5 file.")
@click.option("--bigwig", type=OutputFile(), default=None,
              help="Also write the bigWig of the merged scores.")
@click.option("--force", is_flag=True, help="Overwrite an existing merged output.")
@files(reads=("shards",), writes=("output", "bigwig"))
def merge(shards, output, bigwig, force) -> None:
    """Merge SHARDS (all N shard files of one job, any order) into one HDF5 (and bigWig),
    identical in scores to an unsharded run; shard attributes are checked for consistency.

    \b
    Example:
      dnalift merge out/shards/shard*-of-200.h5 --output out/scores.h5 \\
          --bigwig out/scores.bw
    """
    from pathlib import Path
    if not force and Path(output).exists():
        differences = scorefile.merge_differences(shards, output)
        if differences:
            raise InputError(f"{output} exists but is not the merge of these shards: "
                             f"{'; '.join(differences)}; use --force to overwrite it")
        if bigwig is None or Path(bigwig).exists():
            click.echo(f"dnalift: {output} already exists, merged from these shards; nothing "
                       "to do (use --force)", err=True)
        else:
            scorefile.bigwig_from_h5(output, bigwig)
            click.echo(f"dnalift: {output} exists; wrote the missing {bigwig} from it", err=True)
        return
    scorefile.merge_shards(shards, output, bigwig,
                         command_line=shlex.join(["dnalift"] + sys.argv[1:]))
    click.echo(f"merged {len(shards)} shards -> {output}" + (f", {bigwig}" if bigwig else ""),
               err=True)
