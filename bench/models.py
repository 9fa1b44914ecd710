"""Keras model builders for the engine benchmarks (random weights, seeded).

- :func:`simulated_like`: the shape of the simulated GATA/TAL model (two 16-filter width-15
  ReLU convolutions, max pool 20, dense 32 ReLU, 3 sigmoid tasks) on 200 bp.
- :func:`bpnet_like`: BPNet-sized: 1 kb input, first conv 64 filters width 21, 8 dilated
  residual convolutions (64 filters, width 3, dilation 2^i, 'same', ReLU, Add), global average
  pooling, dense head.
"""

from __future__ import annotations

import keras
from keras import layers


def simulated_like(length: int = 200, n_tasks: int = 3, seed: int = 0) -> keras.Model:
    """Sequential conv/maxpool/dense model like the shipped simulated-task model."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((length, 4)),
        layers.Conv1D(16, 15, padding="same", activation="relu", name="conv1"),
        layers.Conv1D(16, 15, padding="same", activation="relu", name="conv2"),
        layers.MaxPooling1D(20, strides=20, name="pool"),
        layers.Flatten(name="flatten"),
        layers.Dense(32, activation="relu", name="dense"),
        layers.Dense(n_tasks, activation="sigmoid", name="output"),
    ], name="simulated_like")


def bpnet_like(length: int = 1000, filters: int = 64, n_dilated: int = 8, n_tasks: int = 1,
               seed: int = 0) -> keras.Model:
    """BPNet-sized functional model with dilated residual convolutions (random weights)."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((length, 4), name="sequence")
    h = layers.Conv1D(filters, 21, padding="same", activation="relu", name="conv0")(inp)
    for i in range(1, n_dilated + 1):
        c = layers.Conv1D(filters, 3, padding="same", dilation_rate=2 ** i, activation="relu",
                          name=f"dil{i}")(h)
        h = layers.Add(name=f"res{i}")([h, c])
    h = layers.GlobalAveragePooling1D(name="gap")(h)
    out = layers.Dense(n_tasks, name="head")(h)
    return keras.Model(inp, out, name="bpnet_like")


BUILDERS = {"simulated": simulated_like, "bpnet": bpnet_like}
