"""float32 against float64 on one model: the measure behind ``tests/test_precision.py`` and
``bench/precision.py``.

Place in the data flow: test / benchmark support (one-hot -> references -> engine, twice).
Besides the zoo (``tests/zoo.py``), two small max-pool models of issue 18 section 5:
``Conv1D(relu) -> [BatchNormalization] -> MaxPooling1D(3) -> Dense(relu) -> Dense(sigmoid)``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import keras
from keras import layers

import zoo
from dnalift.deeplift import DeepLift
from dnalift.references import make_references


def maxpool_model(batchnorm: bool = True, seq_len: int = 200, seed: int = 3) -> keras.Model:
    """``Conv1D(8, 7, relu) -> [BatchNormalization] -> MaxPooling1D(3) -> Flatten ->
    Dense(16, relu) -> Dense(3, sigmoid)`` with random weights (:func:`zoo.randomize`)."""
    inp = keras.Input((seq_len, 4))
    h = layers.Conv1D(8, 7, activation="relu")(inp)
    if batchnorm:
        h = layers.BatchNormalization()(h)
    h = layers.MaxPooling1D(3)(h)
    h = layers.Flatten()(h)
    h = layers.Dense(16, activation="relu")(h)
    out = layers.Dense(3, activation="sigmoid")(h)
    return zoo.randomize(keras.Model(inp, out, name="maxpool_bn" if batchnorm else "maxpool"),
                         seed)


#: Models outside the zoo measured by ``bench/precision.py``: name -> builder.
EXTRA = {"maxpool_bn": lambda: maxpool_model(True), "maxpool": lambda: maxpool_model(False)}


def inputs(length: int, n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random one-hot x ``(n, L, 4)`` and ``k`` dinucleotide shuffles ``(n, k, L, 4)``."""
    rng = np.random.default_rng(seed)
    x = np.eye(4, dtype="float32")[rng.integers(0, 4, (n, length))]
    return x, make_references("shuffle", x, k=k, seed=seed)


def float32_error(model: keras.Model, mode: str, output: str | None = None,
                  tasks: Sequence[int] | None = None, *, n: int = 3, k: int = 5,
                  maxpool: str = "rescale", seed: int = 0,
                  engines: Callable[[str, Callable[[], DeepLift]], DeepLift] | None = None
                  ) -> tuple[float, float]:
    """``max |s32 - s64| / max |s64|`` of the hypothetical and of the actual scores.

    Parameters
    ----------
    model : keras.Model
        Scored once with ``dtype="float32"`` and once with ``dtype="float64"``.
    mode, output, tasks, maxpool
        As :class:`dnalift.deeplift.DeepLift`.
    n, k, seed
        Sequences, dinucleotide shuffles per sequence and their seed.
    engines : callable, optional
        ``engines(dtype, build)`` returns the engine of ``dtype`` (e.g. one built earlier
        with the same arguments, whose traced step is then reused); default: ``build()``.

    Returns
    -------
    (float, float)
        The relative error of the hypothetical ``(n, T, L, 4)`` and actual ``(n, T, L)``
        scores.
    """
    x, refs = inputs(model.inputs[0].shape[1], n, k, seed)
    get = engines or (lambda dtype, build: build())
    att = {dtype: get(dtype, lambda dtype=dtype: DeepLift(
        model, mode=mode, output=output, tasks=tasks, maxpool=maxpool, dtype=dtype)
    ).attribute(x, refs) for dtype in ("float32", "float64")}

    def rel(name: str) -> float:
        a = getattr(att["float64"], name)
        b = getattr(att["float32"], name).astype("float64")
        return float(np.abs(b - a).max() / np.abs(a).max())
    return rel("hypothetical"), rel("actual")
