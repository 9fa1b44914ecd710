"""Engine, third stage (steps -> steps with rules): which DeepLIFT rule each step applies.

The mode decides the rule of every elementwise nonlinearity; ``maxpool=`` that of every max
pooling; linear steps always apply the Linear rule.

- ``"rescale"`` / ``"revealcancel"``: that rule everywhere.
- ``"genomics_default"`` (the original DeepLIFT's default for genomics): RevealCancel where the
  nearest weight layer upstream is a Dense or EinsumDense layer, Rescale where it is a
  convolution (or none).
  The search looks through BatchNormalization and single-input plumbing (Flatten, pooling
  averages, reshapes, dropout, negation).
- gradient baselines: ``"gradient"`` (labels only; the difference pass is not used).
"""

from __future__ import annotations

import dataclasses

import keras

from dnalift.engine.names import DEEPLIFT_MODES, MODES  # noqa: F401 (re-exported)
from dnalift.engine.rules import Step

# Step kinds genomics_default looks through for the weight layer feeding a nonlinearity.
_LOOK_THROUGH = frozenset({"scaling", "plumbing", "negate"})
_DENSE = (keras.layers.Dense, keras.layers.EinsumDense)


def upstream_weight_layer(step: Step, steps: list[Step]) -> str | None:
    """``"dense"`` or ``"conv"``: the nearest weight layer feeding ``step``, if any."""
    by_out = {s.output: s for s in steps}
    key = step.inputs[0]
    while key in by_out:
        s = by_out[key]
        if s.kind.name == "weights":
            return "dense" if isinstance(s.layer, _DENSE) else "conv"
        if s.kind.name not in _LOOK_THROUGH or len(s.inputs) != 1:
            return None
        key = s.inputs[0]
    return None


def nonlinear_rule(step: Step, steps: list[Step], mode: str) -> str:
    """Rule of an elementwise nonlinearity under ``mode``."""
    if mode == "genomics_default":
        return "revealcancel" if upstream_weight_layer(step, steps) == "dense" else "rescale"
    return mode if mode in DEEPLIFT_MODES else "gradient"


def assign_rules(steps: list[Step], mode: str, maxpool: str) -> list[Step]:
    """Copies of ``steps`` with ``rule`` set for ``mode`` and the max-pool rule ``maxpool``."""
    def rule(s: Step) -> str:
        if s.kind.name == "maxpool":
            return f"maxpool-{maxpool}"
        if s.kind.name == "nonlinear":
            return nonlinear_rule(s, steps, mode)
        return s.rule
    return [dataclasses.replace(s, rule=rule(s)) for s in steps]


def rule_labels(steps: list[Step]) -> dict[str, str]:
    """Layer name -> its rule(s): ``linear``, ``rescale``, ``linear+revealcancel`` (split)."""
    labels: dict[str, list[str]] = {}
    for s in steps:
        labels.setdefault(s.name, [])
        if s.rule not in labels[s.name]:
            labels[s.name].append(s.rule)
    return {name: "+".join(parts) for name, parts in labels.items()}
