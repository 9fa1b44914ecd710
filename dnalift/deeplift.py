"""DeepLIFT engine for Keras 3 models (TensorFlow, JAX or PyTorch backend).

Public API: :func:`load_model`, :class:`DeepLift`, :class:`Attribution`,
:func:`register_linear_layer`, :func:`register_nonlinear_layer`.

>>> model = load_model("model.h5")
>>> engine = DeepLift(model, mode="genomics_default", batch_size=1024)
>>> att = engine.attribute(x, refs)          # x (N, L, 4), refs (N, K, L, 4)
>>> att.hypothetical.shape, att.actual.shape  # (N, T, L, 4), (N, T, L)

Sequences and their references run through the network together as (sequence, reference)
pairs; the multipliers are the gradient of a "difference network" whose nonlinearities apply
the DeepLIFT rules (:mod:`dnalift.rules`, :mod:`dnalift.diffnet`).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import keras
from keras import ops

from dnalift import backend, rules
from dnalift.diffnet import DiffNet, prune
from dnalift.errors import DnaliftError, InputError, UnsupportedLayerError
from dnalift.graph import flatten_model
from dnalift.rules import register_linear_layer, register_nonlinear_layer  # noqa: F401

MODES = ("rescale", "revealcancel", "genomics_default", "gradient", "gradient_x_input",
         "integrated_gradients")
DEEPLIFT_MODES = ("rescale", "revealcancel", "genomics_default")
MAXPOOL_RULES = ("rescale", "gradient")
#: Relative residual above which :meth:`DeepLift.attribute` warns: |residual| / max(1, |delta|).
RESIDUAL_TOLERANCE = {"float32": 1e-3, "float64": 1e-6}

__all__ = ["load_model", "DeepLift", "Attribution", "register_linear_layer",
           "register_nonlinear_layer", "MODES", "RESIDUAL_TOLERANCE"]


# --------------------------------------------------------------------------- results
@dataclass
class Attribution:
    """Contribution scores of N sequences for T tasks against K references each.

    Attributes
    ----------
    hypothetical : (N, T, L, 4)
        ``mean_k sum_c m[n,t,k,l,c] (e_b[c] - ref[n,k,l,c])`` for base b (TF-MoDISco's
        hypothetical contributions).
    actual : (N, T, L)
        ``sum_c mean_k m (x - ref_k)``: the contribution of the observed base (0-sum rows
        at N positions still carry ``-m·ref``).
    delta : (N, T, K)
        target(x) - target(ref_k).
    residual : (N, T, K)
        sum of contributions - delta (summation-to-delta check; ~0 for DeepLIFT modes).
    prediction : (N, T)
        The target (pre-activation logit) at x.
    """

    hypothetical: np.ndarray
    actual: np.ndarray
    delta: np.ndarray
    residual: np.ndarray
    prediction: np.ndarray


# --------------------------------------------------------------------------- loading
_KERAS_CLASSES: set[str] | None = None


def _known_classes() -> set[str]:
    global _KERAS_CLASSES
    if _KERAS_CLASSES is None:
        names = {n for n in dir(keras.layers) if n[:1].isupper()}
        names |= {"Functional", "Model", "Sequential", "InputLayer", "TFOpLambda"}
        _KERAS_CLASSES = names
    return _KERAS_CLASSES


def _h5_unsafe_layers(cfg) -> list[tuple[str, str]]:
    """(layer name, class) of Lambda / unknown layers in a stored (Keras 2 or 3) model config."""
    bad: list[tuple[str, str]] = []
    models = {"Functional", "Model", "Sequential"}

    def walk(entry):
        if not isinstance(entry, dict):
            return
        cls, conf = entry.get("class_name"), entry.get("config")
        name = conf.get("name", "?") if isinstance(conf, dict) else "?"
        if cls == "Lambda" or (isinstance(cls, str) and cls not in _known_classes()):
            bad.append((str(name), str(cls)))
        if cls in models:
            layers = conf.get("layers", []) if isinstance(conf, dict) else conf
            for layer in layers or []:
                walk(layer)
        elif isinstance(conf, dict) and isinstance(conf.get("layer"), dict):
            walk(conf["layer"])  # wrappers (TimeDistributed, Bidirectional)

    walk(cfg)
    return bad


def _read_h5_config(path: Path) -> dict:
    import h5py
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
    except OSError as err:
        raise InputError(f"{path}: not a readable HDF5 model file ({err})") from None
    if raw is None:
        raise InputError(f"{path}: HDF5 file has no model_config (weights-only file?)")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    try:
        return json.loads(raw)
    except ValueError:
        raise InputError(f"{path}: model_config is not valid JSON") from None


def load_model(path: str | os.PathLike, *, unsafe: bool = False):
    """Load a Keras model from ``.keras`` or legacy ``.h5`` (Keras 2 / tf.keras files too).

    Parameters
    ----------
    path : str or Path
    unsafe : bool
        Allow Lambda layers and other custom code (Keras ``safe_mode=False``). Off by
        default: a model file can run arbitrary Python when loaded.

    Returns
    -------
    keras.Model, uncompiled. Task names from ``<path>.tasks.txt`` (one per line), if present,
    are picked up by :class:`DeepLift`.

    Raises
    ------
    InputError
        Missing, unreadable or corrupted file; Lambda / unknown layer without ``unsafe``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        cfg = _read_h5_config(path)
        bad = _h5_unsafe_layers(cfg)
        if bad and not unsafe:
            name, cls = bad[0]
            raise InputError(f"{path}: layer {name!r} is a {cls} (custom code); load it only if "
                             "you trust the file, with unsafe=True (--unsafe)")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=not unsafe)
    except DnaliftError:
        raise
    except Exception as err:  # corrupted files raise many exception types
        msg = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        if "Lambda" in msg or "safe_mode" in msg or "unsafe" in msg.lower():
            raise InputError(f"{path}: the model contains a Lambda layer or custom code; load "
                             "it only if you trust the file, with unsafe=True (--unsafe)") from None
        raise InputError(f"{path}: cannot load model ({type(err).__name__}: {msg})") from None
    if not isinstance(model, keras.Model):
        raise InputError(f"{path}: does not contain a Keras model")
    model._dnalift_source = str(path)
    return model


def read_sidecar_task_names(model_path: str | os.PathLike) -> list[str] | None:
    """Names from ``<model_path>.tasks.txt`` (one per line), or None."""
    side = Path(f"{model_path}.tasks.txt")
    if not side.is_file():
        return None
    names = [ln.strip() for ln in side.read_text().splitlines() if ln.strip()]
    return names or None


# --------------------------------------------------------------------------- engine
class DeepLift:
    """DeepLIFT (and gradient baselines) for one output of a Keras model.

    Parameters
    ----------
    model : keras.Model
        Sequential or Functional (nested models allowed), one input ``(L, 4)``.
    mode : str
        ``"genomics_default"`` (RevealCancel on nonlinearities after Dense layers, Rescale
        after convolutions), ``"rescale"``, ``"revealcancel"``, or the baselines
        ``"gradient"``, ``"gradient_x_input"``, ``"integrated_gradients"``.
    output : str or int, optional
        Output of a multi-output model (output layer name or index).
    tasks : sequence of int or str, optional
        Target columns by index or name (default: all).
    task_names : sequence of str, optional
        Names of the target columns (default: ``<model file>.tasks.txt`` if the model came from
        :func:`load_model` and it exists, else the indices).
    batch_size : int
        (sequence, reference) pairs per compiled batch.
    maxpool : {"rescale", "gradient"}
        Max-pooling rule: summation-preserving (default) or the paper's gradient rule.
    dtype : {"float32", "float64"}
    steps : int
        Integrated-gradients steps (midpoint Riemann sum).
    """

    def __init__(self, model, *, mode: str = "genomics_default", output=None, tasks=None,
                 task_names: Sequence[str] | None = None, batch_size: int = 256,
                 maxpool: str = "rescale", dtype: str = "float32", steps: int = 32):
        if mode not in MODES:
            raise InputError(f"unknown mode {mode!r} (one of {', '.join(MODES)})")
        if maxpool not in MAXPOOL_RULES:
            raise InputError(f"unknown maxpool rule {maxpool!r} (rescale or gradient)")
        if dtype not in ("float32", "float64"):
            raise InputError(f"dtype must be float32 or float64, not {dtype!r}")
        if int(batch_size) < 1 or int(steps) < 1:
            raise InputError("batch_size and steps must be >= 1")
        self.model, self.mode, self.maxpool, self.dtype = model, mode, maxpool, dtype
        self.batch_size, self.steps = int(batch_size), int(steps)
        nodes, in_key, out_keys, out_names = flatten_model(model)
        oi = self._output_index(output, out_names)
        self.output_name = out_names[oi]
        all_steps = rules.split_steps(nodes)
        target, softmax = _target_of(all_steps, out_keys[oi])
        chosen = prune(all_steps, target)
        rules.check_supported(chosen)
        _assign_rules(chosen, mode, maxpool)
        self.rules = {s.name: _rule_label(s, chosen) for s in chosen}
        n_all = int(np.prod([d for d in model.outputs[oi].shape[1:]]))
        self.task_names = self._task_names(task_names, n_all)
        self.task_indices = self._resolve_tasks(tasks, n_all)
        shape = model.inputs[0].shape if hasattr(model, "inputs") and model.inputs else None
        self.input_length = None if shape is None or shape[1] is None else int(shape[1])
        self._net = DiffNet(chosen, in_key, target, softmax, self.task_indices, dtype)
        self._warned = False
        backend.disable_tf32()
        self._step = backend.compile_fn(self._batch)

    # ------------------------------------------------------------------ configuration
    def _output_index(self, output, names: list[str]) -> int:
        alt = list(getattr(self.model, "output_names", []) or [])
        if output is None:
            if len(names) > 1:
                raise InputError(f"model has {len(names)} outputs; choose one with output= "
                                 f"({', '.join(names)})")
            return 0
        if isinstance(output, (int, np.integer)) and 0 <= int(output) < len(names):
            return int(output)
        for lst in (names, alt):
            if output in lst:
                return lst.index(output)
        raise InputError(f"model has no output {output!r} (outputs: {', '.join(names)})")

    def _task_names(self, names, n_all: int) -> list[str] | None:
        if names is None and getattr(self.model, "_dnalift_source", None):
            names = read_sidecar_task_names(self.model._dnalift_source)
            if names is not None and len(names) != n_all:
                names = None  # a stale sidecar: fall back to indices
        if names is None:
            return None
        names = [str(n) for n in names]
        if len(names) != n_all:
            raise InputError(f"{len(names)} task names given, the target has {n_all} tasks")
        return names

    def _resolve_tasks(self, tasks, n_all: int) -> list[int]:
        if tasks is None or len(tasks) == 0:
            return list(range(n_all))
        known = ", ".join(f"{i}={n}" for i, n in enumerate(self.task_names)) \
            if self.task_names else f"indices 0..{n_all - 1}"
        out = []
        for t in tasks:
            if isinstance(t, (int, np.integer)) or (isinstance(t, str) and t.isdigit()):
                i = int(t)
            elif self.task_names and t in self.task_names:
                i = self.task_names.index(t)
            else:
                raise InputError(f"model has no task {t!r} (tasks: {known})")
            if not 0 <= i < n_all:
                raise InputError(f"model has no task {t!r} (tasks: {known})")
            out.append(i)
        return out

    @property
    def task_labels(self) -> list[str]:
        """Labels of the selected tasks (names when known, else indices as strings)."""
        return [self.task_names[i] if self.task_names else str(i) for i in self.task_indices]

    # ------------------------------------------------------------------ scoring
    def attribute(self, x: np.ndarray, refs: np.ndarray) -> Attribution:
        """Scores of one-hot ``x`` ``(N, L, 4)`` against references ``refs`` ``(N, K, L, 4)``."""
        x = np.asarray(x)
        refs = np.asarray(refs)
        if x.ndim != 3 or refs.ndim != 4 or refs.shape[0] != x.shape[0] or \
                refs.shape[2:] != x.shape[1:]:
            raise InputError(f"expected x (N, L, C) and refs (N, K, L, C); got {x.shape} and "
                             f"{refs.shape}")
        if self.input_length is not None and x.shape[1] != self.input_length:
            raise InputError(f"sequences have length {x.shape[1]}, the model takes "
                             f"{self.input_length}")
        n, k = x.shape[0], refs.shape[1]
        if n == 0 or k == 0:
            t, length = len(self.task_indices), x.shape[1]
            z = np.zeros
            return Attribution(z((n, t, length, x.shape[2]), "float32"), z((n, t, length), "float32"),
                               z((n, t, k), "float32"), z((n, t, k), "float32"),
                               z((n, t), "float32"))
        per = max(1, self.batch_size // k)
        parts = []
        for lo in range(0, n, per):
            xb, rb = x[lo:lo + per], refs[lo:lo + per]
            m = xb.shape[0]
            size = per if lo + per <= n else min(per, 1 << (m - 1).bit_length())
            if size > m:
                xb = np.concatenate([xb, np.zeros((size - m,) + xb.shape[1:], xb.dtype)])
                rb = np.concatenate([rb, np.zeros((size - m,) + rb.shape[1:], rb.dtype)])
            out = self._step(ops.convert_to_tensor(xb.astype(self.dtype)),
                             ops.convert_to_tensor(rb.astype(self.dtype)))
            parts.append([backend.to_numpy(o)[:m] for o in out])
        hyp, act, dlt, res, pred = (np.concatenate(p) for p in zip(*parts))
        att = Attribution(hyp, act, dlt, res, pred)
        self._check_residual(att)
        return att

    def _check_residual(self, att: Attribution) -> None:
        if self._warned or self.mode not in DEEPLIFT_MODES or self.maxpool != "rescale" or \
                att.residual.size == 0:
            return
        rel = np.abs(att.residual) / np.maximum(1.0, np.abs(att.delta))
        worst = np.unravel_index(int(np.argmax(rel)), rel.shape)
        tol = RESIDUAL_TOLERANCE[self.dtype]
        if rel[worst] > tol:
            self._warned = True
            warnings.warn(
                f"DeepLIFT summation-to-delta residual {rel[worst]:.3g} (relative to "
                f"max(1, |delta|)) exceeds {tol:g} at sequence {worst[0]}, task "
                f"{self.task_labels[worst[1]]}, reference {worst[2]}", RuntimeWarning,
                stacklevel=3)

    def _batch(self, x, r):
        """One padded batch: x ``(n, L, 4)``, r ``(n, K, L, 4)`` -> (hyp, actual, delta,
        residual, prediction). Layer weights are read cast to ``dtype`` (Keras autocast)."""
        with backend.autocast(self.dtype):
            return self._batch_body(x, r)

    def _batch_body(self, x, r):
        net = self._net
        n, k = r.shape[0], r.shape[1]
        rr = ops.reshape(r, (n * k,) + tuple(x.shape[1:]))
        xr = ops.repeat(x, k, axis=0) if k > 1 else x
        if self.mode in DEEPLIFT_MODES:
            ax = net.forward(x)
            pred = net.target(ax)
            delta, grads = backend.value_and_task_grads(
                lambda d: net.delta_target(ax, d, k), xr - rr)
        else:
            pred, gx = backend.value_and_task_grads(net.target_of_input, x)
            delta = (ops.repeat(pred, k, axis=0) if k > 1 else pred) - net.target_of_input(rr)
            if self.mode == "integrated_gradients":
                grads = None
                for i in range(self.steps):
                    a = (i + 0.5) / self.steps
                    _, g = backend.value_and_task_grads(net.target_of_input, rr + a * (xr - rr))
                    grads = g if grads is None else [u + v for u, v in zip(grads, g)]
                grads = [g / self.steps for g in grads]
            else:
                grads = [ops.repeat(g, k, axis=0) if k > 1 else g for g in gx]
        m = ops.stack(grads, axis=1)
        return _summarize(m, x, r, delta, pred, raw_gradient=self.mode == "gradient")


def _summarize(m, x, r, delta, pred, raw_gradient: bool = False):
    """Per-pair multipliers ``m`` ``(n·K, T, L, C)`` -> Attribution arrays (see Attribution)."""
    n, k = r.shape[0], r.shape[1]
    t = m.shape[1]
    m5 = ops.reshape(m, (n, k, t) + tuple(m.shape[2:]))
    dx = ops.expand_dims(ops.expand_dims(x, 1) - r, 2)              # (n, K, 1, L, C)
    c = ops.sum(m5 * dx, axis=-1)                                   # (n, K, T, L)
    if raw_gradient:
        hyp = ops.mean(m5, axis=1)
        actual = ops.sum(hyp * ops.expand_dims(x, 1), axis=-1)
    else:
        mr = ops.sum(m5 * ops.expand_dims(r, 2), axis=-1, keepdims=True)
        hyp = ops.mean(m5 - mr, axis=1)
        actual = ops.mean(c, axis=1)
    d3 = ops.transpose(ops.reshape(delta, (n, k, t)), (0, 2, 1))
    residual = ops.transpose(ops.sum(c, axis=-1), (0, 2, 1)) - d3
    return hyp, actual, d3, residual, pred


def _target_of(steps, out_key):
    """Target tensor key (input of a final sigmoid/softmax) and whether it is a softmax."""
    for s in steps:
        if s.output == out_key and s.kind in ("nonlinear", "nonelementwise") and \
                s.act in rules.OUTPUT_ACTIVATIONS:
            return s.inputs[0], s.act == "softmax"
    return out_key, False


def _upstream_weight_layer(step, steps) -> str | None:
    """Class of the nearest Dense/Conv feeding a nonlinearity through linear plumbing/BN."""
    by_out = {s.output: s for s in steps}
    key = step.inputs[0]
    while key in by_out:
        s = by_out[key]
        if s.kind == "affine" and not isinstance(s.layer, keras.layers.BatchNormalization):
            return "dense" if isinstance(s.layer, keras.layers.Dense) else "conv"
        if s.kind not in ("affine", "plumbing") or len(s.inputs) != 1:
            return None
        key = s.inputs[0]
    return None


def _assign_rules(steps, mode: str, maxpool: str) -> None:
    for s in steps:
        if s.kind == "maxpool":
            s.rule = f"maxpool-{maxpool}"
        elif s.kind == "nonlinear":
            if mode == "genomics_default":
                s.rule = "revealcancel" if _upstream_weight_layer(s, steps) == "dense" \
                    else "rescale"
            elif mode in ("rescale", "revealcancel"):
                s.rule = mode
            else:
                s.rule = "gradient"


def _rule_label(s, steps) -> str:
    """Rule of a layer: ``linear``, ``rescale``, ``linear+revealcancel`` (split layers), ..."""
    parts = [t.rule for t in steps if t.name == s.name]
    return "+".join(dict.fromkeys(parts))
