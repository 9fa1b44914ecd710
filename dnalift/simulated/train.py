"""Reproducible training of the example model on the simulated GATA/TAL task (simulated
data -> model file, the input of ``dnalift score``).

Architecture (Keras 3, about 10k parameters; "same" padding so every base is seen)::

    Input (L, 4) -> Conv1D(16, 15, relu, same) -> Conv1D(16, 15, relu, same)
                 -> MaxPooling1D(20, 20) -> Flatten -> Dense(32, relu) -> Dense(3, sigmoid)

Binary cross-entropy, Adam, early stopping on the validation loss (best weights restored).
``keras.utils.set_random_seed`` seeds Python, numpy and the backend, and TensorFlow's op
determinism is switched on, so the same seed gives the same weights on the same machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from dnalift.simulated import simulate as sim
from dnalift.errors import InputError
from dnalift.fileio import atomic_output, write_text


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`train_model` (recorded in the metrics JSON)."""

    filters: int = 16
    kernel_size: int = 15
    pool_size: int = 20
    dense_units: int = 32
    epochs: int = 40
    patience: int = 5
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0


def build_model(length: int, n_tasks: int, config: TrainConfig = TrainConfig()):
    """The example architecture (see module docstring) for inputs ``(length, 4)``."""
    import keras

    inputs = keras.Input((length, 4), name="sequence")
    conv = dict(kernel_size=config.kernel_size, activation="relu", padding="same")
    h = keras.layers.Conv1D(config.filters, name="conv1", **conv)(inputs)
    h = keras.layers.Conv1D(config.filters, name="conv2", **conv)(h)
    h = keras.layers.MaxPooling1D(config.pool_size, strides=config.pool_size, name="pool")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    h = keras.layers.Dense(config.dense_units, activation="relu", name="dense")(h)
    outputs = keras.layers.Dense(n_tasks, activation="sigmoid", name="output")(h)
    return keras.Model(inputs, outputs, name="gata_tal")


def load_split_arrays(data_dir: str | os.PathLike, split: str,
                      tasks: Sequence[str] = sim.TASKS
                      ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """One split of a simulated data directory as arrays.

    Returns
    -------
    names : list[str]
    x : np.ndarray
        ``(N, L, 4)`` float32 one-hot.
    y : np.ndarray
        ``(N, T)`` float32 labels in ``tasks`` order.
    """
    from dnalift.sequences import one_hot_encode

    names, seqs, labels = sim.read_split(data_dir, split)
    missing = [t for t in tasks if t not in labels.columns]
    if missing:
        raise InputError(f"{data_dir}/{split}.labels.tsv: no column {missing[0]}")
    return names, one_hot_encode(seqs), labels[list(tasks)].to_numpy(np.float32)


def auroc_per_task(model, x: np.ndarray, y: np.ndarray, tasks: Sequence[str]) -> dict[str, float]:
    """Test-set auROC of each task (scikit-learn ``roc_auc_score``)."""
    from sklearn.metrics import roc_auc_score

    pred = np.asarray(model.predict(x, batch_size=256, verbose=0))
    return {t: float(roc_auc_score(y[:, i], pred[:, i])) for i, t in enumerate(tasks)}


def train_model(data_dir: str | os.PathLike, config: TrainConfig = TrainConfig(),
                tasks: Sequence[str] = sim.TASKS, verbose: int = 0):
    """Train the example model on ``data_dir``'s train split, early-stopped on valid.

    Returns
    -------
    model : keras.Model
    metrics : dict
        ``auroc`` (test split, per task), ``epochs_run``, ``config``, ``n_train`` ...
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    _, x_tr, y_tr = load_split_arrays(data_dir, "train", tasks)
    _, x_va, y_va = load_split_arrays(data_dir, "valid", tasks)
    _, x_te, y_te = load_split_arrays(data_dir, "test", tasks)
    model = build_model(x_tr.shape[1], len(tasks), config)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                  loss="binary_crossentropy")
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                         restore_best_weights=True)
    history = model.fit(x_tr, y_tr, validation_data=(x_va, y_va), epochs=config.epochs,
                        batch_size=config.batch_size, shuffle=True, callbacks=[stop],
                        verbose=verbose)
    metrics = {
        "auroc_test": auroc_per_task(model, x_te, y_te, tasks),
        "auroc_valid": auroc_per_task(model, x_va, y_va, tasks),
        "epochs_run": len(history.history["loss"]),
        "best_val_loss": float(min(history.history["val_loss"])),
        "n_train": int(len(x_tr)), "n_valid": int(len(x_va)), "n_test": int(len(x_te)),
        "tasks": list(tasks), "config": asdict(config), "n_params": int(model.count_params()),
        "keras_version": keras.__version__, "tensorflow_version": tf.__version__,
    }
    return model, metrics


def model_files(outdir: str | os.PathLike, stem: str = "model") -> list[Path]:
    """The files :func:`save_model` writes to ``outdir``."""
    models = [Path(outdir) / f"{stem}{ext}" for ext in (".h5", ".keras")]
    return (models + [Path(f"{p}.tasks.txt") for p in models]
            + [Path(outdir) / f"{stem}.metrics.json"])


@contextlib.contextmanager
def _no_legacy_hdf5_warning() -> Iterator[None]:
    """Keras' absl warning that ``.h5`` is a legacy format, silenced: the ``.h5`` file is
    written on purpose (for Keras 2 / tf.keras readers), next to the ``.keras`` file."""
    from absl import logging as absl_logging
    level = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(level)


def save_model(model, outdir: str | os.PathLike, tasks: Sequence[str], metrics: dict,
               stem: str = "model") -> dict[str, Path]:
    """Save ``<stem>.h5`` and ``<stem>.keras`` (uncompiled: weights and architecture only),
    their ``.tasks.txt`` sidecars and ``<stem>.metrics.json`` (with the SHA-256 of both model
    files). Files are written under temporary names and renamed.
    """
    import keras

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    bare = keras.models.clone_model(model)  # same architecture, no optimizer state
    bare.set_weights(model.get_weights())
    written: dict[str, Path] = {}
    checksums = {}
    for ext in (".h5", ".keras"):
        path = outdir / f"{stem}{ext}"
        with atomic_output(path, keep_suffix=True) as tmp, _no_legacy_hdf5_warning():
            bare.save(tmp)
        sidecar = Path(f"{path}.tasks.txt")
        write_text(sidecar, "".join(f"{t}\n" for t in tasks))
        checksums[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        written[path.name], written[sidecar.name] = path, sidecar
    metrics_path = outdir / f"{stem}.metrics.json"
    write_text(
        metrics_path, json.dumps({**metrics, "sha256": checksums}, indent=2) + "\n")
    written[metrics_path.name] = metrics_path
    return written
