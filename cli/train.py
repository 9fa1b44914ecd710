"""``dnalift train``: reproducibly train the example model on a simulated data set."""

from __future__ import annotations

import json

import click

from dnalift.cli.paths import files
from dnalift.cli.options import COUNT, SEED32_MAX, InputDir, Int, OutputDir
from dnalift.simulated import simulate as sim
from dnalift.simulated import train as tr


def _training_paths(params: dict) -> tuple[dict, dict]:
    """The split files read from ``--data`` and the model files written to ``--output``."""
    return ({"--data": sim.split_files(params["data_dir"])},
            {"--output": tr.model_files(params["outdir"] or params["data_dir"])})


@click.command("train")
@click.option("--data", "data_dir", type=InputDir(), default="data/simulated",
              show_default=True, help="Directory written by `dnalift simulate`.")
@click.option("--output", "outdir", type=OutputDir(), default=None,
              help="Where to write model.h5, model.keras, sidecars and metrics "
                   "[default: --data].")
@click.option("--seed", type=Int(0, SEED32_MAX), default=0, show_default=True)
@click.option("--epochs", type=COUNT, default=tr.TrainConfig.epochs, show_default=True,
              help="Maximum epochs (early stopping on the validation loss).")
@click.option("-v", "--verbose", is_flag=True, help="Print per-epoch losses.")
@files(implied=_training_paths)
def train(data_dir, outdir, seed, epochs, verbose) -> None:
    """Train the Conv1D example model on the GATA/TAL task and report test auROCs."""
    config = tr.TrainConfig(seed=seed, epochs=epochs)
    model, metrics = tr.train_model(data_dir, config, sim.TASKS, verbose=2 if verbose else 0)
    written = tr.save_model(model, outdir or data_dir, sim.TASKS, metrics)
    click.echo(json.dumps(metrics["auroc_test"], indent=1))
    click.echo(f"wrote {', '.join(sorted(str(p) for p in written.values()))}")
