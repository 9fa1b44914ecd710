"""DeepLIFT engine façade (references -> engine -> writers): :class:`DeepLift`, :class:`Attribution`.

Public API: :class:`DeepLift`, :class:`Attribution`, :data:`MODES`, :data:`DEEPLIFT_MODES`,
:data:`RESIDUAL_TOLERANCE`, :func:`register_linear_layer`, :func:`register_nonlinear_layer`
(and :class:`Registry`), with :func:`load_model` / :func:`read_sidecar_task_names` re-exported
from :mod:`dnalift.models`.

>>> model = load_model("model.h5")
>>> engine = DeepLift(model, mode="genomics_default", task_names=read_task_names("model.h5"))
>>> att = engine.attribute(x, refs)          # x (N, L, 4), refs (N, K, L, 4)
>>> att.hypothetical.shape, att.actual.shape  # (N, T, L, 4), (N, T, L)

Sequences and their references run through the network together as (sequence, reference)
pairs; the multipliers are the gradient of a "difference network" whose steps apply the
DeepLIFT rules. The stages live in :mod:`dnalift.engine`: ``graph`` (model -> nodes), ``rules``
(nodes -> steps, the registry of step kinds), ``policy`` (mode -> rule per step), ``targets``
(what is explained), ``diffnet`` (evaluation), ``backend`` (per-backend autodiff/compilation).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from keras import ops

from dnalift.engine import backend, policy, rules, targets
from dnalift.engine.diffnet import DiffNet
from dnalift.engine.graph import flatten_model
from dnalift.engine.maxpool import MAXPOOL_RULES
from dnalift.engine.policy import DEEPLIFT_MODES, MODES
from dnalift.engine.rules import Registry, register_linear_layer, register_nonlinear_layer
from dnalift.errors import InputError
from dnalift.models import load_model, read_task_names

#: Former name of :func:`dnalift.models.read_task_names`.
read_sidecar_task_names = read_task_names
#: Relative residual above which :meth:`DeepLift.attribute` warns: |residual| / max(1, |delta|).
RESIDUAL_TOLERANCE = {"float32": 1e-3, "float64": 1e-6}

__all__ = ["load_model", "read_task_names", "read_sidecar_task_names", "DeepLift",
           "Attribution", "Registry", "register_linear_layer", "register_nonlinear_layer",
           "MODES", "DEEPLIFT_MODES", "MAXPOOL_RULES", "RESIDUAL_TOLERANCE"]


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
        The target at x (pre-activation logit; the profile / counts / callable value).
    output : (N, T) or None
        The post-activation model output of the selected columns at x (``model(x)[:, tasks]``:
        sigmoid of the logit, softmax over all classes, ...); None where the output is not 2-D
        and for profile, counts and callable targets (``prediction`` holds their value).
    """

    hypothetical: np.ndarray
    actual: np.ndarray
    delta: np.ndarray
    residual: np.ndarray
    prediction: np.ndarray
    output: np.ndarray | None = None

    def take(self, columns: Sequence[int]) -> "Attribution":
        """The Attribution of the target columns ``columns`` only (e.g. one head's)."""
        cols = list(columns)
        return Attribution(*(None if a is None else a[:, cols] for a in
                             (getattr(self, f.name) for f in dataclasses.fields(self))))


def _check_options(mode: str, maxpool: str, dtype: str, batch_size: int, steps: int) -> None:
    """Raise InputError for an unknown mode / maxpool rule / dtype or a size < 1."""
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r} (one of {', '.join(MODES)})")
    if maxpool not in MAXPOOL_RULES:
        raise InputError(f"unknown maxpool rule {maxpool!r} (rescale or gradient)")
    if dtype not in ("float32", "float64"):
        raise InputError(f"dtype must be float32 or float64, not {dtype!r}")
    if int(batch_size) < 1 or int(steps) < 1:
        raise InputError("batch_size and steps must be >= 1")


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
    target : str, TargetSpec, callable, Target or sequence of these
        What is explained (:func:`dnalift.engine.targets.make_target`): ``"logit"``
        (default), ``"profile"``, ``"counts"`` (of ``output``, or the output detected by its
        shape), a :class:`dnalift.engine.targets.TargetSpec`, a callable
        ``fn(vals, at_x) -> (B, T)`` linear in ``vals`` (dicts of each output's
        pre-activation tensor by output name), or a list: several heads in one pass
        (``heads`` splits the columns).
    tasks : sequence of int or str, optional
        Target columns by index or name (default: all); logit targets only.
    task_names : sequence of str, optional
        Names of the target columns (default: the indices). The engine reads no files: pass
        :func:`dnalift.models.read_task_names` of the model file to use its sidecar.
        Ignored by profile and counts targets (which label their column by the head).
    batch_size : int
        (sequence, reference) pairs per compiled batch.
    maxpool : {"rescale", "gradient"}
        Max-pooling rule: summation-preserving (default) or the paper's gradient rule.
    dtype : {"float32", "float64"}
    steps : int
        Integrated-gradients steps (midpoint Riemann sum).
    registry : Registry, optional
        Custom layer declarations (default: :data:`dnalift.engine.rules.DEFAULT_REGISTRY`).
    fuse : bool, optional
        Compile the max-pool and piecewise-linear rules into fused XLA kernels (TensorFlow;
        other backends ignore it). Same scores either way; fusing costs 0.15-0.3 s per rule
        at the first call and pays back on long jobs. None (default): decided by
        :meth:`plan`, or else at the first :meth:`attribute` call from the pairs it scores.
        Pass ``fuse=True`` (or call ``plan``) when scoring a long job in small calls.
    trace : bool, optional
        Trace the batch step into a TensorFlow graph (``tf.function``) instead of running it
        eagerly, op by op (TensorFlow only: JAX always jits, PyTorch always runs eagerly).
        Same scores to float rounding; tracing costs ~0.4-5 s at the first call and makes
        every later batch faster. None (default): decided with ``fuse`` by :meth:`plan` (or
        the first :meth:`attribute` call): eager only for short jobs of few small batches.

    Attributes
    ----------
    output_index : int or None
        Index of the scored model output (the first head's; None for a callable);
        ``output_name`` its layer name.
    target : dnalift.engine.targets.Target
        What is explained (a ``LogitTarget`` by default); ``task_indices`` its columns,
        ``task_labels`` their labels, ``task_names`` all names (or None), ``heads`` its
        heads (:class:`dnalift.engine.targets.Head`).
    rules : dict
        Layer name -> DeepLIFT rule(s) applied.
    input_length : int or None
    fuse : bool or None
        Whether the rules are fused (None until the first call decides).
    trace : bool or None
        Whether the batch step is traced (None until the first call decides).
    """

    def __init__(self, model, *, mode: str = "genomics_default", output=None, target=None,
                 tasks=None, task_names: Sequence[str] | None = None, batch_size: int = 256,
                 maxpool: str = "rescale", dtype: str = "float32", steps: int = 32,
                 registry: Registry | None = None, fuse: bool | None = None,
                 trace: bool | None = None):
        _check_options(mode, maxpool, dtype, batch_size, steps)
        if dtype == "float64" and not backend.float64_available():
            raise InputError("dtype float64 on the JAX backend needs 64-bit JAX: set "
                             "JAX_ENABLE_X64=1 in the environment (JAX otherwise computes "
                             "float64 in float32)")
        self.model, self.mode, self.maxpool, self.dtype = model, mode, maxpool, dtype
        self.batch_size, self.steps = int(batch_size), int(steps)
        nodes, in_key, out_keys, out_names = flatten_model(model)
        all_steps = (registry if registry is not None else rules.DEFAULT_REGISTRY
                     ).split_steps(nodes)
        outputs = targets.ModelOutputs(
            all_steps, out_keys, out_names, list(getattr(model, "output_names", []) or []),
            [tuple(o.shape) for o in model.outputs], dtype)
        self.target = targets.make_target(target, outputs, output=output, tasks=tasks,
                                          task_names=task_names)
        first = self.target.parts[0] if isinstance(self.target, targets.TargetList) \
            else self.target
        self.output_name = getattr(first, "output_name", None)
        self.output_index = out_names.index(self.output_name) \
            if self.output_name in out_names else None
        self.task_names = targets.check_task_names(
            task_names, int(np.prod(outputs.shapes[self.output_index][1:]))) \
            if isinstance(self.target, targets.LogitTarget) else None
        all_steps = policy.assign_rules(all_steps, mode, maxpool)
        self.fuse = None if fuse is None else bool(fuse)
        self.trace = None if trace is None else bool(trace)
        self._net = DiffNet(all_steps, in_key, self.target, dtype, fuse=bool(fuse))
        rules.check_supported(self._net.delta_steps)
        self.rules = policy.rule_labels(self._net.delta_steps)
        shape = model.inputs[0].shape if getattr(model, "inputs", None) else None
        self.input_length = None if shape is None or shape[1] is None else int(shape[1])
        self._input_shape = (None,) if shape is None else tuple(shape[1:])
        if isinstance(self.target, targets.FunctionTarget):
            self.target = self._label_function_target(self.target, task_names)
            self._net.target = self.target
        self._warned = False
        backend.disable_tf32()
        self._step = None  # compiled by plan(), once the job's size is known

    def plan(self, n_pairs: int | None, shape: tuple | None = None) -> bool | None:
        """Decide, once and before the first call, how much to compile for a job: whether
        to trace the batch step and whether to fuse the rules.

        Parameters
        ----------
        n_pairs : int or None
            (sequence, reference) pairs the whole job will score; None: unknown (a stream),
            traced and fused.
        shape : tuple, optional
            Shape of one input sequence, ``(L, C)`` (default: the model's input shape).

        Returns
        -------
        bool or None
            :attr:`fuse`: True when each fused rule would process at least
            :data:`dnalift.engine.backend.FUSE_MIN_ELEMENTS` elements
            (:func:`dnalift.engine.backend.worth_fusing`); unchanged when already decided
            (``fuse=`` or an earlier call); None when the shape is unknown (nothing decided).
            :attr:`trace` is decided with it: False (eager) for a job of at most
            :data:`dnalift.engine.backend.EAGER_MAX_BATCHES` batches whose rules process at
            most :data:`dnalift.engine.backend.EAGER_MAX_ELEMENTS` elements
            (:func:`dnalift.engine.backend.worth_tracing`), True otherwise and whenever the
            rules are fused. Both are sized from one eager forward pass of one all-zero
            sequence.
        """
        shape = self._input_shape if shape is None else tuple(int(d) for d in shape)
        if self._step is not None or (n_pairs is not None and None in shape):
            return self.fuse
        elements = None
        if n_pairs is not None and (self.fuse is None or (self.trace is None and not self.fuse)):
            with backend.autocast(self.dtype):
                ax = self._net.forward(ops.zeros((1,) + shape, self.dtype))
            elements = self._net.fused_elements(ax)
        if self.fuse is None:
            self.fuse = n_pairs is None or backend.worth_fusing(n_pairs, elements)
            if self.fuse:  # before the step is first traced: the rules are part of it
                self._net.rules = self._net.compile_rules(True)
        if self.trace is None:
            passes = None if n_pairs is None else n_pairs * (
                self.steps if self.mode == "integrated_gradients" else 1)
            self.trace = self.fuse or passes is None or backend.worth_tracing(
                passes, self.batch_size, elements)
        self._step = backend.compile_fn(self._batch, trace=self.trace)
        return self.fuse

    def _label_function_target(self, target, task_names: Sequence[str] | None):
        """A callable target with its T labels (``task_names``, else indices); T from one
        evaluation on an all-zero sequence."""
        if self.input_length is None:
            if task_names is None:
                raise InputError("a callable target on a model of unknown input length "
                                 "needs task_names= (one per column it returns)")
            return dataclasses.replace(target, labels=[str(n) for n in task_names])
        with backend.autocast(self.dtype):
            vals = self._net.forward(ops.zeros((1, self.input_length, 4), self.dtype))
            n = int(target.value(vals, vals).shape[1])
        names = targets.check_task_names(task_names, n)
        return dataclasses.replace(target, labels=targets.task_labels(range(n), names))

    @property
    def task_indices(self) -> list[int]:
        """Columns of the flattened target that are scored (logit targets), else 0..T-1."""
        return list(getattr(self.target, "tasks", range(len(self.target.labels))))

    @property
    def heads(self) -> list:
        """The target's heads (:class:`dnalift.engine.targets.Head`): one per part of a
        target list, else one; ``Attribution.take(head.columns)`` splits a result."""
        return targets.heads(self.target)

    @property
    def task_labels(self) -> list[str]:
        """Labels of the selected tasks (names when known, else indices as strings)."""
        return list(self.target.labels)

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
            return self._empty(x.shape, k)
        self.plan(n * k, x.shape[1:])
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
            parts.append([None if o is None else backend.to_numpy(o)[:m] for o in out])
        arrays = [None if p[0] is None else np.concatenate(p) for p in zip(*parts)]
        att = Attribution(*arrays)
        self._check_residual(att)
        return att

    def _empty(self, shape: tuple, k: int) -> Attribution:
        """Attribution of no sequences (or no references) for inputs of ``shape`` (N, L, C)."""
        n, length, c = shape
        t = len(self.task_indices)
        z = np.zeros
        output = None if not self.target.output_keys else z((n, t), "float32")
        return Attribution(z((n, t, length, c), "float32"), z((n, t, length), "float32"),
                           z((n, t, k), "float32"), z((n, t, k), "float32"), z((n, t), "float32"),
                           output)

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
        residual, prediction, output or None). Layer weights are read cast to ``dtype`` (Keras autocast)."""
        with backend.autocast(self.dtype):
            return self._batch_body(x, r)

    def _batch_body(self, x, r):
        net = self._net
        n, k = r.shape[0], r.shape[1]
        rr = ops.reshape(r, (n * k,) + tuple(x.shape[1:]))
        xr = ops.repeat(x, k, axis=0) if k > 1 else x
        if self.mode in DEEPLIFT_MODES:
            ax = net.forward(x)
            pred, output = self.target.value(ax, ax), self.target.output(ax)
            delta, grads = backend.value_and_task_grads(lambda d: net.delta_target(ax, d),
                                                        xr - rr)
        else:
            pred, gx, output = backend.value_and_task_grads(net.target_of_input, x,
                                                            has_aux=True)
            at = net.at_pairs(net.forward(x), k)
            delta = (ops.repeat(pred, k, axis=0) if k > 1 else pred) - \
                net.target_of_input(rr, at)[0]
            if self.mode == "integrated_gradients":
                grads = self._path_gradients(rr, xr, at)
            else:
                grads = [ops.repeat(g, k, axis=0) if k > 1 else g for g in gx]
        m = ops.stack(grads, axis=1)
        return _summarize(m, x, r, delta, pred, raw_gradient=self.mode == "gradient") + \
            (output,)

    def _path_gradients(self, rr, xr, at: dict) -> list:
        """Integrated gradients: mean gradient at ``steps`` midpoints of ref -> x, per task
        (target coefficients ``at`` from x).

        Steps 1 .. steps-1 run in a compiled loop (``keras.ops.fori_loop``): the step is
        traced once, not once per step (tracing time and graph size do not grow with
        ``steps``); the sum is accumulated in step order.
        """
        d = xr - rr

        def step(i) -> list:
            a = (ops.cast(i, rr.dtype) + 0.5) / self.steps
            _, g = backend.value_and_task_grads(
                lambda v: self._net.target_of_input(v, at)[0], rr + a * d)
            return list(g)

        grads = ops.fori_loop(1, self.steps, lambda i, acc: [u + v for u, v in
                                                            zip(acc, step(i))], step(0))
        return [g / self.steps for g in grads]


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
