"""``dnalift train``: reproducibly train the example model on a simulated data set."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dnalift.cli.paths import files
from dnalift.cli.options import COUNT, SEED32_MAX, InputDir, Int, OutputDir
from dnalift.errors import InputError
from dnalift.simulated import simulate as sim
from dnalift.simulated import train as tr


def _training_paths(params: dict) -> tuple[dict, dict]:
    """The split files read from ``--data`` and the model files written to ``--output``."""
    return ({"--data": sim.split_files(params["data_dir"])},
            {"--output": tr.model_files(params["outdir"])})


#: Default ``--output``: a new directory in the current one (never the shipped model).
DEFAULT_OUTPUT = "trained"


def check_not_overwriting(outdir: str, force: bool) -> None:
    """InputError when a model file of ``outdir`` exists and ``force`` is not set (the
    shipped model in ``data/simulated`` is never replaced by accident)."""
    existing = [p for p in tr.model_files(outdir) if p.exists()]
    if existing and not force:
        shown = ", ".join(str(p) for p in existing[:2]) + (", ..." if len(existing) > 2 else "")
        raise InputError(f"--output {outdir}: {shown} exist{'s' if len(existing) == 1 else ''};"
                         " use --force to overwrite, or another --output")


@click.command("train")
@click.option("--data", "data_dir", type=InputDir(), default="data/simulated",
              show_default=True, help="Directory written by `dnalift simulate`.")
@click.option("--output", "outdir", type=OutputDir(), default=DEFAULT_OUTPUT,
              show_default=True,
              help="Directory to write model.h5, model.keras, sidecars and metrics to "
                   "(created; existing model files are refused without --force).")
@click.option("--force", is_flag=True, help="Overwrite existing model files in --output.")
@click.option("--seed", type=Int(0, SEED32_MAX), default=0, show_default=True)
@click.option("--epochs", type=COUNT, default=tr.TrainConfig.epochs, show_default=True,
              help="Maximum epochs (early stopping on the validation loss).")
@click.option("-v", "--verbose", is_flag=True, help="Print per-epoch losses.")
@files(implied=_training_paths)
def train(data_dir, outdir, force, seed, epochs, verbose) -> None:
    """Train the Conv1D example model on the GATA/TAL task and report test auROCs.

    \b
    Example:
      dnalift train --data data/simulated --output trained
    """
    check_not_overwriting(outdir, force)
    click.echo(f"dnalift: training on {data_dir} (seed {seed}, up to {epochs} epochs) -> "
               f"{Path(outdir) / 'model.{h5,keras}'}", err=True)
    config = tr.TrainConfig(seed=seed, epochs=epochs)
    model, metrics = tr.train_model(data_dir, config, sim.TASKS, verbose=2 if verbose else 0)
    written = tr.save_model(model, outdir, sim.TASKS, metrics)
    click.echo(json.dumps(metrics["auroc_test"], indent=1))
    click.echo(f"wrote {', '.join(sorted(str(p) for p in written.values()))}")
