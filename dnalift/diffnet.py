"""The difference network: a model's steps evaluated at x, and as differences over pairs.

``forward`` evaluates the (pruned) model on the sequences alone (N rows), keeping every
activation. ``delta`` evaluates the same steps on the N·K (sequence, reference) pairs, carrying
``Δ = a(x) - a(ref)`` with the DeepLIFT rule of each step (see :mod:`dnalift.rules`); its
gradient with respect to the input Δ is the multiplier. Pairs are ordered sequence-major
(row ``n·K + k``), so ``a(x)`` reaches the pairs by ``repeat(a, K)``.
"""

from __future__ import annotations

from functools import partial

from keras import layers as L
from keras import ops

from dnalift import backend, rules
from dnalift.graph import Key
from dnalift.rules import Step


class DiffNet:
    """Evaluator of the steps that lead from the input to the target tensor.

    Parameters
    ----------
    steps : list of Step
        In topological order, with ``rule`` set (``"rescale"``, ``"revealcancel"``,
        ``"maxpool-rescale"``, ``"maxpool-gradient"``, ``"linear"``).
    input_key, target_key : Key
    softmax : bool
        Subtract the mean across classes from the target (softmax outputs).
    tasks : list of int
        Columns of the flattened target.
    dtype : str
    """

    def __init__(self, steps: list[Step], input_key: Key, target_key: Key, softmax: bool,
                 tasks: list[int], dtype: str = "float32"):
        self.steps = steps
        self.input_key = input_key
        self.target_key = target_key
        self.softmax = softmax
        self.tasks = list(tasks)
        self.dtype = dtype
        self.eps = rules.EPS.get(dtype, 1e-5)
        self.abs_keys = _abs_keys(steps)
        self.rule_fns = {s.output: _rule_fn(s, self.eps) for s in steps
                         if s.kind in ("nonlinear", "maxpool")}

    # ------------------------------------------------------------------ evaluation at x
    def forward(self, x) -> dict:
        """All activations for inputs ``x`` ``(B, L, 4)`` (model semantics, biases included)."""
        vals = {self.input_key: x}
        for s in self.steps:
            ins = [vals[k] for k in s.inputs]
            if s.kind == "affine":
                out = rules.affine_full(s.layer, ins[0], self.dtype)
            elif s.kind in ("plumbing", "custom_linear"):
                out = _call(s, ins)
            elif s.kind == "nonlinear":
                out = s.fn(ins[0])
            elif s.kind == "maxpool":
                out = s.layer.call(ins[0])
            else:  # pragma: no cover - check_supported runs first
                raise AssertionError(s.kind)
            vals[s.output] = out
        return vals

    def target(self, vals: dict):
        """Selected target columns ``(B, T)`` from activations (or Δs) of the target tensor."""
        t = vals[self.target_key]
        t = ops.reshape(t, (t.shape[0], -1))
        if self.softmax:
            t = t - ops.mean(t, axis=1, keepdims=True)
        return ops.take(t, self.tasks, axis=1)

    def target_of_input(self, x):
        """``(B, T)`` target at inputs ``x``, differentiable (the gradient baselines)."""
        return self.target(self.forward(x))

    # ------------------------------------------------------------------ difference pass
    def delta(self, ax: dict, d_in, k: int) -> dict:
        """Δ of every tensor for pairs: ``ax`` activations at the N sequences, ``d_in``
        ``(N·K, L, 4)`` = x - ref per pair."""
        D = {self.input_key: d_in}
        A = {}
        if self.input_key in self.abs_keys:
            A[self.input_key] = rules.absolute(d_in)

        for s in self.steps:
            din = [D[key] for key in s.inputs]
            if s.kind == "affine":
                out = rules.affine_linear(s.layer, din[0], self.dtype)
                if s.output in self.abs_keys:
                    A[s.output] = rules.affine_linear(s.layer, A[s.inputs[0]], self.dtype,
                                                      absolute=True)
            elif s.kind in ("plumbing", "custom_linear"):
                out = _call(s, din)
                if s.output in self.abs_keys and (s.kind == "plumbing" or s.nonnegative):
                    A[s.output] = _abs_call(s, [A[key] for key in s.inputs])
            elif s.kind == "nonlinear":
                args = [ax[s.inputs[0]], ax[s.output], din[0]]
                if s.rule == "revealcancel":
                    args.append(A[s.inputs[0]])
                out = self.rule_fns[s.output](*args)
            elif s.kind == "maxpool":
                out = self.rule_fns[s.output](ax[s.inputs[0]], din[0])
            else:  # pragma: no cover
                raise AssertionError(s.kind)
            D[s.output] = out
            if s.output in self.abs_keys and s.output not in A:
                A[s.output] = rules.absolute(out)
        return D

    def delta_target(self, ax: dict, d_in, k: int):
        """``(N·K, T)`` Δ of the target, differentiable in ``d_in`` (gradient = multipliers)."""
        return self.target(self.delta(ax, d_in, k))


def _rule_fn(s: Step, eps: float):
    """The rule of a nonlinear or max-pool step as a function of tensors only.

    Max pooling and piecewise-linear activations (ReLU & co.) are fused
    (:func:`dnalift.backend.fuse`). Smooth activations are not: XLA's fast float32
    ``exp``/``tanh`` approximations are ~1e-6 off, which ``Δy/Δ`` amplifies ~1e5-fold where
    ``|Δ|`` is just above ``eps``; custom layers run their own code unfused.

    Nonlinear: ``(z_x, y_x, Δ[, A]) -> Δ_out``; max pool: ``(a_x, Δ) -> Δ_out``.
    """
    if s.kind == "maxpool":
        variant = "gradient" if s.rule == "maxpool-gradient" else "rescale"
        return backend.fuse(partial(rules.maxpool_rule, s.layer, variant=variant))

    def rule(z_x, y_x, d, a=None):
        fp = rules.derivative(s.fn, z_x)
        if s.rule == "revealcancel":
            return rules.reveal_cancel_rule(s.fn, z_x, y_x, fp, d, a, eps)
        return rules.rescale_rule(s.fn, z_x, y_x, fp, d, eps)
    return backend.fuse(rule) if s.act in rules.PIECEWISE_LINEAR else rule


def _call(s: Step, values: list):
    args, kwargs = s.node.call_args(values)
    op = s.layer
    return op.call(*args, **kwargs) if isinstance(op, L.Layer) else op(*args, **kwargs)


def _abs_call(s: Step, a_values: list):
    """The absolute part through a plumbing step (Subtract/negation add magnitudes)."""
    if s.nonnegative:
        return _call(s, a_values)
    name = type(s.layer).__name__
    if name == "Subtract":
        return a_values[0] + a_values[1]
    return a_values[0]  # Negative


def _abs_keys(steps: list[Step]) -> set:
    """Keys whose RevealCancel absolute part ``A`` must be carried."""
    need = {s.inputs[0] for s in steps if s.kind == "nonlinear" and s.rule == "revealcancel"}
    for s in reversed(steps):
        if s.output in need and (s.kind in ("affine", "plumbing") or
                                 (s.kind == "custom_linear" and s.nonnegative)):
            need.update(s.inputs)
    return need


def prune(steps: list[Step], target: Key) -> list[Step]:
    """Only the steps the target depends on, in order."""
    need = {target}
    keep = []
    for s in reversed(steps):
        if s.output in need:
            keep.append(s)
            need.update(s.inputs)
    return keep[::-1]
