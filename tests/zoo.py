"""Model zoo: small random-weight Keras 3 rebuilds of the architectures genomics users explain.

Place in the data flow: test / benchmark support. These builders produce the trained-model
stand-ins that enter the engine (one-hot ``(N, L, 4)`` -> model -> ``DeepLift``); nothing in
``dnalift`` imports this module.

Each builder follows the layer types and wiring of its source at small width (8-16 filters,
input length 200-500) and returns a functional ``keras.Model`` whose weights, biases and
batch-normalization statistics are random (:func:`randomize`), so that every unit is active
on some inputs and every BN layer is a non-trivial affine map. Sources:

- ``chrombpnet``: kundajelab/chrombpnet ``chrombpnet/training/models/bpnet_model.py``
  (valid first conv, valid dilated residual convs with Cropping1D + Add, profile Conv1D ->
  Cropping1D -> Flatten, counts GlobalAveragePooling1D -> Dense).
- ``bpnet``: kundajelab/bpnet ``bpnet/layers.py`` (``DilatedConv1D`` body with "same"
  padding, ``DeConv1D`` profile head = Reshape -> Conv2DTranspose -> Reshape,
  ``GlobalAvgPoolFCN`` counts head), two strands; ``bpnet_basepairmodels``: the newer BPNet
  of the same repository (``bpnet/genomicsdlarchsandlosses/bpnet/archs.py``: pre-activation
  residual units, Conv1D profile head with one filter per strand).
- ``basset`` (Kelley et al. 2016) and ``deepsea`` (Zhou & Troyanskaya 2015).
- ``crested_*``: aertslab/CREsted ``src/crested/tl/zoo/`` (``simple_convnet``,
  ``deeptopic_cnn``, ``dilated_cnn``, ``dilated_cnn_decoupled``, ``basenji``, ``legnet``) with
  the blocks of ``src/crested/tl/zoo/utils/_layers.py`` (``conv_block``, ``dense_block``,
  ``conv_block_bs``, ``dilated_residual``, ``legnet_eff_block``, ``legnet_se_block``).

:data:`CASES` lists what the architecture test matrix scores: (architecture, output, tasks).
:func:`keras_target` computes the DeepLIFT target independently with Keras' own forward pass
in float64.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import keras
from keras import layers

from dnalift.engine import backend as engine_backend

Tensor = keras.KerasTensor


# --------------------------------------------------------------------------- weights
def randomize(model: keras.Model, seed: int) -> keras.Model:
    """Give every weight of ``model`` a random value, in place; returns ``model``.

    Kernels ~ N(0, 2 / fan_in) (He scale, fan_in = product of all kernel axes but the
    last), biases / BN beta / BN moving mean ~ N(0, 0.3^2), BN gamma ~ U(0.5, 1.5) with a
    random sign, BN moving variance ~ U(0.5, 2).
    """
    rng = np.random.default_rng(seed)
    for var in model.weights:
        shape = tuple(var.shape)
        name = var.path.rsplit("/", 1)[-1]
        if name == "moving_variance":
            value = rng.uniform(0.5, 2.0, shape)
        elif name == "gamma":
            value = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
        elif len(shape) >= 2:
            fan_in = int(np.prod(shape[:-1]))
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        else:
            value = rng.normal(0.0, 0.3, shape)
        var.assign(value.astype(var.dtype))
    return model


# --------------------------------------------------------------------------- BPNet family
def _bpnet_valid_tower(x: Tensor, filters: int, n_dil_layers: int) -> Tensor:
    """ChromBPNet body after the first conv: valid dilated relu convs, cropped residual Add."""
    for i in range(1, n_dil_layers + 1):
        conv = layers.Conv1D(filters, 3, padding="valid", activation="relu",
                             dilation_rate=2 ** i, name=f"bpnet_{i}conv")(x)
        crop = (x.shape[1] - conv.shape[1]) // 2
        x = layers.Cropping1D(crop, name=f"bpnet_{i}crop")(x)
        x = layers.Add(name=f"bpnet_{i}add")([conv, x])
    return x


def chrombpnet(seq_len: int = 300, filters: int = 8, n_dil_layers: int = 4,
               out_len: int = 40, conv1_kernel_size: int = 21, profile_kernel_size: int = 75,
               seed: int = 0) -> keras.Model:
    """ChromBPNet / BPNet-in-ChromBPNet accessibility model (one task, unstranded).

    Outputs ``"profile"`` ``(out_len,)`` logits and ``"logcounts"`` ``(1,)``.
    """
    inp = keras.Input((seq_len, 4), name="sequence")
    x = layers.Conv1D(filters, conv1_kernel_size, padding="valid", activation="relu",
                      name="bpnet_1st_conv")(inp)
    x = _bpnet_valid_tower(x, filters, n_dil_layers)
    prof = layers.Conv1D(1, profile_kernel_size, padding="valid", name="prof_out_precrop")(x)
    crop = prof.shape[1] // 2 - out_len // 2
    if crop < 0:
        raise ValueError(f"seq_len {seq_len} too short for out_len {out_len}")
    prof = layers.Cropping1D(crop, name="logits_profile_predictions_preflatten")(prof)
    profile = layers.Flatten(name="profile")(prof)
    gap = layers.GlobalAveragePooling1D(name="gap")(x)
    counts = layers.Dense(1, name="logcounts")(gap)
    return randomize(keras.Model(inp, [profile, counts], name="chrombpnet"), seed)


def bpnet(seq_len: int = 200, filters: int = 8, n_dil_layers: int = 4,
          conv1_kernel_size: int = 25, tconv_kernel_size: int = 25, strands: int = 2,
          seed: int = 0) -> keras.Model:
    """Original BPNet (one task, ``strands`` strands): "same"-padded dilated residual body.

    Outputs ``"profile"`` ``(seq_len, strands)`` logits (a transposed convolution,
    ``DeConv1D``) and ``"logcounts"`` ``(strands,)``.
    """
    inp = keras.Input((seq_len, 4), name="sequence")
    x = layers.Conv1D(filters, conv1_kernel_size, padding="same", activation="relu",
                      name="first_conv")(inp)
    for i in range(1, n_dil_layers + 1):
        conv = layers.Conv1D(filters, 3, padding="same", activation="relu",
                             dilation_rate=2 ** i, name=f"dil_conv{i}")(x)
        x = layers.Add(name=f"dil_add{i}")([x, conv])
    prof = layers.Reshape((-1, 1, filters), name="deconv_in")(x)
    prof = layers.Conv2DTranspose(strands, (tconv_kernel_size, 1), padding="same",
                                  name="deconv")(prof)
    profile = layers.Reshape((-1, strands), name="profile")(prof)
    gap = layers.GlobalAveragePooling1D(name="gap")(x)
    counts = layers.Dense(strands, name="logcounts")(gap)
    return randomize(keras.Model(inp, [profile, counts], name="bpnet"), seed)


def bpnet_basepairmodels(seq_len: int = 300, filters: int = 8, n_dil_layers: int = 4,
                         out_len: int = 40, conv1_kernel_size: int = 21,
                         profile_kernel_size: int = 75, strands: int = 2,
                         seed: int = 0) -> keras.Model:
    """BPNet of kundajelab/bpnet's ``basepairmodels`` (one task, ``strands`` strands).

    Motif module (valid conv), syntax module of pre-activation residual units (ReLU layer,
    valid dilated conv, cropped Add), final ReLU; profile head Conv1D -> Cropping1D giving
    ``"profile"`` ``(out_len, strands)`` logits; counts head GlobalAveragePooling1D -> Dense
    giving ``"logcounts"`` ``(strands,)``.
    """
    inp = keras.Input((seq_len, 4), name="sequence")
    x = layers.Conv1D(filters, conv1_kernel_size, padding="valid", name="motif_conv")(inp)
    for i in range(1, n_dil_layers + 1):
        act = layers.ReLU(name=f"syntax_relu_{i}")(x)
        conv = layers.Conv1D(filters, 3, padding="valid", dilation_rate=2 ** i,
                             name=f"syntax_dil_conv_{i}")(act)
        x = layers.Cropping1D((x.shape[1] - conv.shape[1]) // 2, name=f"syntax_crop_{i}")(x)
        x = layers.Add(name=f"syntax_add_{i}")([conv, x])
    x = layers.ReLU(name="syntax_relu_out")(x)
    prof = layers.Conv1D(strands, profile_kernel_size, padding="valid", name="profile_head")(x)
    profile = layers.Cropping1D(prof.shape[1] // 2 - out_len // 2, name="profile")(prof)
    gap = layers.GlobalAveragePooling1D(name="gap")(x)
    counts = layers.Dense(strands, name="logcounts")(gap)
    return randomize(keras.Model(inp, [profile, counts], name="bpnet_basepairmodels"), seed)


# --------------------------------------------------------------------------- classic CNNs
def basset(seq_len: int = 300, filters: Sequence[int] = (16, 12, 12),
           kernels: Sequence[int] = (19, 11, 7), pools: Sequence[int] = (3, 4, 4),
           dense: int = 32, n_tasks: int = 3, seed: int = 0) -> keras.Model:
    """Basset: 3 x (conv, BN, relu, max-pool), 2 x (dense, BN, relu, dropout), sigmoid."""
    inp = keras.Input((seq_len, 4), name="sequence")
    x = inp
    for i, (f, k, p) in enumerate(zip(filters, kernels, pools), start=1):
        x = layers.Conv1D(f, k, padding="same", name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.Activation("relu", name=f"relu{i}")(x)
        x = layers.MaxPooling1D(p, padding="same", name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    for i in (1, 2):
        x = layers.Dense(dense, name=f"fc{i}")(x)
        x = layers.BatchNormalization(name=f"fc{i}_bn")(x)
        x = layers.Activation("relu", name=f"fc{i}_relu")(x)
        x = layers.Dropout(0.3, name=f"fc{i}_dropout")(x)
    out = layers.Dense(n_tasks, activation="sigmoid", name="out")(x)
    return randomize(keras.Model(inp, out, name="basset"), seed)


def deepsea(seq_len: int = 300, filters: Sequence[int] = (12, 16, 16), kernel: int = 8,
            dense: int = 32, n_tasks: int = 3, seed: int = 0) -> keras.Model:
    """DeepSEA: (conv relu, max-pool 4, dropout) x 2, conv relu, dropout, dense relu, sigmoid."""
    inp = keras.Input((seq_len, 4), name="sequence")
    x = inp
    for i, f in enumerate(filters, start=1):
        x = layers.Conv1D(f, kernel, padding="valid", activation="relu", name=f"conv{i}")(x)
        if i < len(filters):
            x = layers.MaxPooling1D(4, strides=4, name=f"pool{i}")(x)
        x = layers.Dropout(0.2 if i < len(filters) else 0.5, name=f"drop{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense, activation="relu", name="fc")(x)
    out = layers.Dense(n_tasks, activation="sigmoid", name="out")(x)
    return randomize(keras.Model(inp, out, name="deepsea"), seed)


# --------------------------------------------------------------------------- CREsted blocks
def _conv_block(x: Tensor, filters: int, kernel_size: int, pool_size: int, activation: str,
                *, conv_bias: bool = True, dropout: float = 0.1, res: bool = False,
                padding: str = "valid", pool_padding: str | None = None,
                name: str | None = None) -> Tensor:
    """CREsted ``conv_block``: conv, BN, activation, [residual Add], [max-pool], [dropout]."""
    def nm(suffix):
        return f"{name}_{suffix}" if name else None
    residual = x
    x = layers.Conv1D(filters, kernel_size, padding=padding, use_bias=conv_bias,
                      name=nm("conv"))(x)
    x = layers.BatchNormalization(name=nm("batchnorm"))(x)
    x = layers.Activation(activation, name=nm("activation"))(x)
    if res:
        if filters != residual.shape[-1]:
            residual = layers.Conv1D(filters, 1, name=nm("resconv"))(residual)
        x = layers.Add(name=nm("add"))([x, residual])
    if pool_size > 1:
        x = layers.MaxPooling1D(pool_size, padding=pool_padding or padding, name=nm("pool"))(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name=nm("dropout"))(x)
    return x


def _dense_block(x: Tensor, units: int, activation: str, *, dropout: float = 0.5,
                 use_bias: bool = True, name: str | None = None) -> Tensor:
    """CREsted ``dense_block``: dense, BN, activation, dropout."""
    def nm(suffix):
        return f"{name}_{suffix}" if name else None
    x = layers.Dense(units, use_bias=use_bias, name=nm("dense"))(x)
    x = layers.BatchNormalization(name=nm("batchnorm"))(x)
    x = layers.Activation(activation, name=nm("activation"))(x)
    return layers.Dropout(dropout, name=nm("dropout"))(x)


def _conv_block_bs(x: Tensor, filters: int, kernel_size: int = 1, *, activation: str = "gelu",
                   dilation_rate: int = 1, dropout: float = 0.0, pool_size: int = 1,
                   name: str | None = None) -> Tensor:
    """CREsted ``conv_block_bs`` (Basenji order): BN, activation, conv, [dropout], [max-pool]."""
    x = layers.BatchNormalization(epsilon=1e-5, name=f"{name}_bn" if name else None)(x)
    x = layers.Activation(activation)(x)
    x = layers.Conv1D(filters, kernel_size, padding="same", dilation_rate=dilation_rate,
                      name=f"{name}_conv" if name else None)(x)
    if dropout > 0:
        x = layers.Dropout(dropout)(x)
    if pool_size > 1:
        x = layers.MaxPooling1D(pool_size, padding="same")(x)
    return x


def _dilated_residual(x: Tensor, filters: int, kernel_size: int, rate_mult: float,
                      repeat: int, dropout: float, activation: str) -> Tensor:
    """CREsted ``dilated_residual``: repeat (dilated conv_block_bs, 1x1 conv_block_bs, Add)."""
    rate = 1.0
    for i in range(repeat):
        h = _conv_block_bs(x, filters, kernel_size, activation=activation,
                           dilation_rate=int(np.round(rate)), name=f"dres{i}_dil")
        h = _conv_block_bs(h, x.shape[-1], 1, activation=activation, dropout=dropout,
                           name=f"dres{i}_ret")
        x = layers.Add(name=f"dres{i}_add")([x, h])
        rate *= rate_mult
    return x


def _dilated_tower(x: Tensor, filters: int, n_dil_layers: int, kernel_size: int,
                   activation: str, dropout: float) -> Tensor:
    """CREsted ``dilated_cnn`` tower: valid dilated conv, BN, activation, crop, Add, dropout."""
    for i in range(1, n_dil_layers + 1):
        conv = layers.Conv1D(filters, kernel_size, padding="valid", use_bias=False,
                             dilation_rate=2 ** i, name=f"bpnet_{i}conv")(x)
        conv = layers.BatchNormalization(name=f"bpnet_{i}bn")(conv)
        conv = layers.Activation(activation, name=f"bpnet_{i}activation")(conv)
        x = layers.Cropping1D((x.shape[1] - conv.shape[1]) // 2, name=f"bpnet_{i}crop")(x)
        x = layers.Add()([conv, x])
        x = layers.Dropout(dropout, name=f"bpnet_{i}dropout")(x)
    return x


def _dilated_stem(inp: Tensor, filters: int, kernel_size: int, activation: str) -> Tensor:
    """CREsted ``dilated_cnn`` first block: bias-free conv, BN, activation, dropout."""
    x = layers.Conv1D(filters, kernel_size, padding="same", use_bias=False)(inp)
    x = layers.BatchNormalization()(x)
    x = layers.Activation(activation)(x)
    return layers.Dropout(0.1)(x)


def _se_block(x: Tensor, units: int, reduction: int, name: str) -> Tensor:
    """CREsted ``legnet_se_block``: mean over length, dense, swish, dense, sigmoid, Multiply."""
    y = keras.ops.mean(x, axis=1)
    y = layers.Dense(units // reduction, name=f"{name}_fc1")(y)
    y = layers.Activation("swish", name=f"{name}_swish1")(y)
    y = layers.Dense(units, name=f"{name}_fc2")(y)
    y = layers.Activation("sigmoid", name=f"{name}_sigmoid")(y)
    return layers.Multiply(name=f"{name}_multiply")([x, y])


def _eff_block(x: Tensor, filters: int, kernel_size: int, resize_factor: int,
               activation: str, name: str) -> Tensor:
    """CREsted ``legnet_eff_block``: 1x1 expansion, depthwise conv, squeeze-excite, 1x1
    projection (each conv bias-free, followed by BN and the activation)."""
    inner = filters * resize_factor
    y = layers.Conv1D(inner, 1, padding="same", use_bias=False, name=f"{name}_expand_conv")(x)
    y = layers.BatchNormalization(name=f"{name}_expand_bn")(y)
    y = layers.Activation(activation, name=f"{name}_expand_act")(y)
    y = layers.Conv1D(inner, kernel_size, groups=inner, padding="same", use_bias=False,
                      name=f"{name}_dw_conv")(y)
    y = layers.BatchNormalization(name=f"{name}_dw_bn")(y)
    y = layers.Activation(activation, name=f"{name}_dw_act")(y)
    y = _se_block(y, inner, resize_factor, name=f"{name}_se")
    y = layers.Conv1D(filters, 1, padding="same", use_bias=False, name=f"{name}_project_conv")(y)
    y = layers.BatchNormalization(name=f"{name}_project_bn")(y)
    return layers.Activation(activation, name=f"{name}_project_act")(y)


# --------------------------------------------------------------------------- CREsted zoo
def crested_simple_convnet(seq_len: int = 500, n_classes: int = 3, first_filters: int = 12,
                           filters: int = 8, num_conv_blocks: int = 3, dense_size: int = 16,
                           bottleneck: int = 8, seed: int = 0) -> keras.Model:
    """CREsted ``simple_convnet``: exponential first conv block (pool 8), swish conv blocks
    with growing width (pool 2), flatten, dense blocks, softplus output."""
    inp = keras.Input((seq_len, 4), name="sequence")
    x = _conv_block(inp, first_filters, 13, 8, "exponential", dropout=0.1)
    for i in range(1, num_conv_blocks):
        x = _conv_block(x, i * filters, 7, 2, "swish", dropout=i * 0.1)
    x = layers.Flatten()(x)
    x = _dense_block(x, dense_size, "swish", dropout=0.3)
    x = _dense_block(x, bottleneck, "swish", dropout=0.3, name="denseblock")
    out = layers.Dense(n_classes, activation="softplus", name="dense_out")(x)
    return randomize(keras.Model(inp, out, name="simple_convnet"), seed)


def crested_deeptopic_cnn(seq_len: int = 500, n_classes: int = 3, filters: int = 16,
                          dense_out: int = 16, seed: int = 0) -> keras.Model:
    """CREsted ``deeptopic_cnn``: gelu conv block, two relu conv blocks, two residual conv
    blocks (1x1 conv on the skip when widths differ), flatten, dense block, sigmoid."""
    inp = keras.Input((seq_len, 4), name="sequence")
    kw = dict(conv_bias=False, dropout=0.15, padding="same")
    x = _conv_block(inp, filters, 17, 4, "gelu", **kw)
    for _ in range(2):
        x = _conv_block(x, filters // 2, 11, 4, "relu", **kw)
    x = _conv_block(x, filters // 2, 5, 4, "relu", res=True, **kw)
    x = _conv_block(x, filters // 2, 2, 0, "relu", res=True, **{**kw, "dropout": 0.0})
    x = layers.Flatten()(x)
    x = layers.Dropout(0.5)(x)
    x = _dense_block(x, dense_out, "relu", dropout=0.5, use_bias=False, name="denseblock")
    out = layers.Dense(n_classes, activation="sigmoid")(x)
    return randomize(keras.Model(inp, out, name="deeptopic_cnn"), seed)


def crested_dilated_cnn(seq_len: int = 300, n_classes: int = 3, first_filters: int = 12,
                        filters: int = 12, n_dil_layers: int = 5, seed: int = 0) -> keras.Model:
    """CREsted ``dilated_cnn``: gelu stem, valid dilated relu tower with cropped residual
    Adds, global average pooling, softplus dense output."""
    inp = keras.Input((seq_len, 4), name="sequence")
    x = _dilated_stem(inp, first_filters, 5, "gelu")
    x = _dilated_tower(x, filters, n_dil_layers, 3, "relu", 0.1)
    x = layers.GlobalAveragePooling1D()(x)
    out = layers.Dense(n_classes, activation="softplus", name="dense_out")(x)
    return randomize(keras.Model(inp, out, name="dilated_cnn"), seed)


def crested_dilated_cnn_decoupled(seq_len: int = 300, n_classes: int = 3,
                                  first_filters: int = 12, filters: int = 12,
                                  n_dil_layers: int = 5, seed: int = 0) -> keras.Model:
    """CREsted ``dilated_cnn_decoupled``: the ``dilated_cnn`` body with one Dense(1,
    softplus) head per class, concatenated."""
    inp = keras.Input((seq_len, 4), name="sequence")
    x = _dilated_stem(inp, first_filters, 5, "gelu")
    x = _dilated_tower(x, filters, n_dil_layers, 3, "relu", 0.1)
    x = layers.GlobalAveragePooling1D()(x)
    heads = [layers.Dense(1, activation="softplus", name=f"dense_out_class_{i}")(x)
             for i in range(n_classes)]
    out = layers.Concatenate(axis=-1)(heads)
    return randomize(keras.Model(inp, out, name="dilated_cnn_decoupled"), seed)


def crested_basenji(seq_len: int = 256, n_classes: int = 3, first_filters: int = 16,
                    filters: int = 16, repeat: int = 11, seed: int = 0) -> keras.Model:
    """CREsted ``basenji``: BN-gelu-conv block on the one-hot input with max-pool 2, 11
    dilated residual blocks (rate x 1.5 each), 1x1 gelu conv block, global average pooling,
    softplus dense output."""
    inp = keras.Input((seq_len, 4), name="sequence")
    x = _conv_block_bs(inp, first_filters, 15, pool_size=2, name="stem")
    x = _dilated_residual(x, first_filters // 2, 3, 1.5, repeat, 0.3, "gelu")
    x = _conv_block_bs(x, filters, 1, dropout=0.05, name="final")
    x = layers.GlobalAveragePooling1D()(x)
    out = layers.Dense(n_classes, activation="softplus", name="dense_out")(x)
    return randomize(keras.Model(inp, out, name="basenji"), seed)


def crested_legnet(seq_len: int = 200, n_classes: int = 3, stem_filters: int = 8,
                   tower_filters: Sequence[int] = (8, 12), resize_factor: int = 4,
                   seed: int = 0) -> keras.Model:
    """CREsted ``legnet``: swish stem, stages of (EfficientNet block with squeeze-excitation,
    Concatenate with its input, conv block + max-pool), BN + 1x1 conv mapper, mean over
    length (``keras.ops.mean``), dense, BN, swish, softplus dense output."""
    inp = keras.Input((seq_len, 4), name="input")
    kw = dict(conv_bias=False, dropout=0.0, padding="same", pool_padding="valid")
    x = _conv_block(inp, stem_filters, 5, 1, "swish", name="stem", **kw)
    eff = stem_filters
    for i, out_filters in enumerate(tower_filters):
        y = _eff_block(x, eff, 3, resize_factor, "swish", name=f"stage{i}_eff")
        x = layers.Concatenate(axis=-1, name=f"stage{i}_rescat")([y, x])
        x = _conv_block(x, out_filters, 3, 2, "swish", name=f"stage{i}_local", **kw)
        eff = out_filters
    x = layers.BatchNormalization(name="mapper_bn")(x)
    x = layers.Conv1D(tower_filters[-1] * 2, 1, name="mapper_conv")(x)
    x = keras.ops.mean(x, axis=1)
    x = layers.Dense(tower_filters[-1] * 2, name="final_dense")(x)
    x = layers.BatchNormalization(name="final_bn")(x)
    x = layers.Activation("swish", name="final_act")(x)
    out = layers.Dense(n_classes, activation="softplus", name="head")(x)
    return randomize(keras.Model(inp, out, name="legnet"), seed)


ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {
    "chrombpnet": chrombpnet,
    "bpnet_basepairmodels": bpnet_basepairmodels,
    "bpnet": bpnet,
    "basset": basset,
    "deepsea": deepsea,
    "crested_simple_convnet": crested_simple_convnet,
    "crested_deeptopic_cnn": crested_deeptopic_cnn,
    "crested_dilated_cnn": crested_dilated_cnn,
    "crested_dilated_cnn_decoupled": crested_dilated_cnn_decoupled,
    "crested_basenji": crested_basenji,
    "crested_legnet": crested_legnet,
}


# --------------------------------------------------------------------------- test matrix
@dataclass(frozen=True)
class Case:
    """One scored target: an architecture, the output scored and the tasks (None = all).

    ``needs`` names the engine rule the case is waiting for (None when it runs today).
    """

    arch: str
    output: str | None = None
    tasks: tuple[int, ...] | None = None
    needs: str | None = None

    @property
    def id(self) -> str:
        return self.arch if self.output is None else f"{self.arch}-{self.output}"

    def build(self) -> keras.Model:
        return ARCHITECTURES[self.arch]()


def engine_key(case: Case, mode: str, dtype: str) -> str:
    """Cache key of the engine of ``case`` in ``mode`` and ``dtype`` (default max-pool rule)
    for the session cache of tests/conftest.py (``built_models``)."""
    return f"engine:{case.id}:{case.tasks}:{mode}:{dtype}"


def xdist_group(case: Case):
    """The pytest-xdist group of the tests of one architecture (one worker builds the model
    and its engines once, tests/test_architectures.py and tests/test_precision.py)."""
    import pytest
    return pytest.mark.xdist_group(f"zoo-{case.arch}")


CASES: tuple[Case, ...] = (
    Case("chrombpnet", "logcounts"),
    Case("chrombpnet", "profile", (0, 5)),
    Case("bpnet_basepairmodels", "logcounts"),
    Case("bpnet_basepairmodels", "profile", (0, 5)),
    Case("bpnet", "logcounts"),
    Case("bpnet", "profile", (0, 5)),
    Case("basset"),
    Case("deepsea"),
    Case("crested_simple_convnet"),
    Case("crested_deeptopic_cnn"),
    Case("crested_dilated_cnn"),
    Case("crested_dilated_cnn_decoupled"),
    Case("crested_basenji"),
    Case("crested_legnet"),
)


# --------------------------------------------------------------------------- independent target
@functools.lru_cache(maxsize=None)
def _float64_copy(model: keras.Model, strip: frozenset[str]) -> keras.Model:
    """A float64 copy of ``model`` with the same weights; layers named in ``strip`` lose
    their ``activation`` (it becomes linear). Made once per model and ``strip`` (cloning
    a zoo model takes ~0.15 s; the tests compare several modes and inputs on one model),
    so the weights of ``model`` must not change after its first use here."""
    def clone(layer):
        if not isinstance(layer, keras.layers.Layer):  # raw keras.ops (no weights, no dtype)
            return layer
        cfg = {**layer.get_config(), "dtype": "float64"}
        if isinstance(cfg.get("layer"), dict):  # a wrapper (TimeDistributed): its layer too
            inner = cfg["layer"]
            cfg["layer"] = {**inner, "config": {**inner["config"], "dtype": "float64"}}
        if layer.name in strip:
            cfg["activation"] = "linear"
        return layer.__class__.from_config(cfg)

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.weights:
            copy.get_layer(layer.name).set_weights(layer.get_weights())
    return copy


def keras_target(model: keras.Model, x: np.ndarray, output: str | None = None) -> np.ndarray:
    """The DeepLIFT target of ``model`` at inputs ``x`` ``(M, L, 4)`` by Keras' own forward
    pass in float64: the chosen output flattened to ``(M, T_all)``, taken before a final
    sigmoid (``activation=`` of the output layer or an output Activation layer).
    """
    outputs = list(model.outputs)
    names = [t._keras_history.operation.name for t in outputs]
    index = 0 if output is None else names.index(output)
    last = outputs[index]._keras_history.operation
    strip = set()
    if getattr(getattr(last, "activation", None), "__name__", None) == "sigmoid":
        strip.add(last.name)
    elif getattr(getattr(last, "activation", None), "__name__", None) == "softmax":
        raise NotImplementedError("softmax outputs are not in the zoo")
    copy = _float64_copy(model, frozenset(strip))
    with engine_backend.float64_promotion():    # Keras on JAX/torch demotes float64 ops
        y = copy(x.astype("float64"), training=False)
    y = y[index] if isinstance(y, (list, tuple)) else y
    y = keras.ops.convert_to_numpy(y)
    if y.dtype != np.float64:
        raise TypeError(f"float64 copy of {model.name} computed in {y.dtype}")
    return y.reshape(len(x), -1)


def keras_delta(model: keras.Model, x: np.ndarray, refs: np.ndarray, output: str | None = None,
                tasks: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Keras' float64 target at x ``(N, T)`` and target(x) - target(ref_k) ``(N, T, K)`` for
    x ``(N, L, 4)`` and refs ``(N, K, L, 4)`` (columns ``tasks``, default all)."""
    n, k = refs.shape[:2]
    cols = list(tasks) if tasks is not None else slice(None)
    tx = keras_target(model, x, output)[:, cols]
    tr = keras_target(model, refs.reshape((n * k,) + x.shape[1:]), output)[:, cols]
    delta = np.repeat(tx, k, axis=0) - tr                       # (N·K, T)
    return tx, delta.reshape(n, k, -1).transpose(0, 2, 1)
