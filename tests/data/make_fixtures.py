"""Regenerate the Keras 2 (tf.keras / tf_keras) fixtures of tests/test_deeplift.py.

Run from the repository root: ``python tests/data/make_fixtures.py``. Writes

- ``keras2_small.h5``: a tiny Conv1D/MaxPool/Dense model saved by Keras 2 (``tf_keras``),
  seeded weights (legacy HDF5, ``model_config`` in the file attributes);
- ``keras2_small.npz``: its weights in layer order (``w0``, ``w1``, ...), seeded one-hot inputs
  ``x`` (3, 24, 4), references ``refs`` (3, 2, 24, 4) and the Keras 2 sigmoid outputs ``pred``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    import tf_keras as k2

    k2.utils.set_random_seed(7)
    model = k2.Sequential([
        k2.layers.InputLayer(input_shape=(24, 4)),
        k2.layers.Conv1D(4, 5, padding="same", activation="relu", name="conv"),
        k2.layers.MaxPooling1D(2, name="pool"),
        k2.layers.Flatten(name="flatten"),
        k2.layers.Dense(6, activation="relu", name="dense"),
        k2.layers.Dense(2, activation="sigmoid", name="out"),
    ], name="keras2_small")
    rng = np.random.default_rng(7)
    x = np.eye(4, dtype="float32")[rng.integers(0, 4, (3, 24))]
    refs = np.eye(4, dtype="float32")[rng.integers(0, 4, (3, 2, 24))]
    pred = model.predict(x, verbose=0)
    model.save(HERE / "keras2_small.h5", save_format="h5", include_optimizer=False)
    weights = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    np.savez(HERE / "keras2_small.npz", x=x, refs=refs, pred=pred, **weights)


if __name__ == "__main__":
    main()
