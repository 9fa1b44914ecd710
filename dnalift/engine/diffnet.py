"""Engine, fourth stage (steps + target -> tensors): the difference network.

``forward`` evaluates the steps on the sequences alone (N rows), keeping every activation.
``delta`` evaluates the steps the target depends on for the N·K (sequence, reference) pairs,
carrying ``Δ = a(x) - a(ref)`` with the DeepLIFT rule of each step; its gradient with respect
to the input Δ is the multiplier. Pairs are sequence-major (row ``n·K + k``). Each step's kind
(:mod:`dnalift.engine.rules`) does the work; this module only walks the steps.
"""

from __future__ import annotations

import numpy as np

from keras import ops

from dnalift.engine import nonlinear
from dnalift.engine.graph import Key
from dnalift.engine.rules import PairContext, Step
from dnalift.engine.targets import Target


def prune(steps: list[Step], keys) -> list[Step]:
    """Only the steps that the tensors ``keys`` depend on, in order."""
    need = set(keys)
    keep = []
    for s in reversed(steps):
        if s.output in need:
            keep.append(s)
            need.update(s.inputs)
    return keep[::-1]


def part_keys(steps: list[Step]) -> set:
    """Keys whose RevealCancel absolute part ``A`` is needed: the inputs of RevealCancel steps,
    and through steps that carry ``A`` (``signs == "carry"``), their inputs."""
    need = {s.inputs[0] for s in steps if s.rule == "revealcancel"}
    for s in reversed(steps):
        if s.output in need and s.kind.signs == "carry":
            need.update(s.inputs)
    return need


class DiffNet:
    """Evaluator of a model's steps at x and as differences over pairs.

    Parameters
    ----------
    steps : list of Step
        All steps of the model in topological order, with rules assigned.
    input_key : Key
    target : Target
    dtype : str
    fuse : bool
        Fuse the rules that gain from it (:meth:`compile_rules`).
    """

    def __init__(self, steps: list[Step], input_key: Key, target: Target,
                 dtype: str = "float32", fuse: bool = True):
        self.input_key = input_key
        self.target = target
        self.dtype = dtype
        self.forward_steps = prune(steps, tuple(target.keys) + tuple(target.output_keys))
        self.delta_steps = prune(steps, target.keys)
        self.part_keys = part_keys(self.delta_steps)
        self.rules = self.compile_rules(fuse)

    def compile_rules(self, fuse: bool) -> dict:
        """Each step's compiled rule by output key (:meth:`Kind.compile`); ``fuse``: XLA-fused
        max-pool and piecewise-linear rules (:func:`dnalift.engine.backend.fuse`)."""
        return {s.output: s.kind.compile(s, self.dtype, fuse) for s in self.delta_steps}

    def fused_elements(self, ax: dict) -> list[int]:
        """Per fused rule (:meth:`Kind.fuses`), the elements of its input per sequence, from
        the activations ``ax`` of one sequence (:meth:`forward`)."""
        return [int(np.prod(ax[s.inputs[0]].shape[1:])) for s in self.delta_steps
                if s.kind.fuses(s)]

    def forward(self, x) -> dict:
        """All activations for inputs ``x`` ``(B, L, 4)`` (model semantics, biases included)."""
        vals = {self.input_key: x}
        for s in self.forward_steps:
            vals[s.output] = s.kind.forward(s, [vals[k] for k in s.inputs], self.dtype)
        return vals

    def delta(self, ax: dict, d_in) -> dict:
        """Δ of every tensor for pairs: ``ax`` activations at the N sequences, ``d_in``
        ``(N·K, L, 4)`` = x - ref per pair."""
        D = {self.input_key: d_in}
        ctx = PairContext(ax, {}, self.rules, self.dtype)
        if self.input_key in self.part_keys:
            ctx.parts[self.input_key] = nonlinear.absolute(d_in)
        for s in self.delta_steps:
            deltas = [D[k] for k in s.inputs]
            D[s.output] = s.kind.difference(s, deltas, ctx)
            if s.output in self.part_keys:
                ctx.parts[s.output] = s.kind.absolute(s, deltas, D[s.output], ctx)
        return D

    def at_pairs(self, ax: dict, k: int) -> dict:
        """The target's tensors at the N sequences, repeated for their K pairs (N·K rows)."""
        return {key: ops.repeat(ax[key], k, axis=0) if k > 1 else ax[key]
                for key in self.target.keys}

    def delta_target(self, ax: dict, d_in):
        """``(N·K, T)`` Δ of the target, differentiable in ``d_in`` (gradient = multipliers)."""
        k = d_in.shape[0] // ax[self.input_key].shape[0]
        return self.target(self.delta(ax, d_in), self.at_pairs(ax, k))

    def target_of_input(self, x, at_x: dict | None = None):
        """``(B, T)`` target at inputs ``x`` (coefficients from ``at_x``, default the
        activations at ``x`` themselves), and the model output there (aux, or None)."""
        vals = self.forward(x)
        return self.target.value(vals, vals if at_x is None else at_x), \
            self.target.output(vals)
