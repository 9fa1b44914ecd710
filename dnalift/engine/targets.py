"""Engine, what is explained (steps -> target): the scored columns, their labels and heads.

A target maps tensors of the difference network to a ``(B, T)`` tensor. The engine evaluates
it twice: on the activations at x (``value``: the prediction) and on the Δ dict of the
(sequence, reference) pairs (``__call__``: the delta, whose gradient gives the multipliers).
Both calls also receive ``at_x``, the activations at the pair's sequence x, so that a target
may weight the tensors it reads with coefficients computed at x (held constant by
stop-gradient for x and all its K references).

**Linearity contract.** ``__call__(Δ, at_x)`` must be *linear* in ``Δ`` for fixed ``at_x``
(then ``__call__(a(x) - a(ref), at_x) = value(a(x)) - value(a(ref))`` with the same
coefficients and the contributions sum to it exactly), or apply a DeepLIFT rule whose value is
the exact difference (:class:`CountsTarget` ``combine="logsumexp"``: Rescale through
exp -> sum -> log; :class:`ProfileTarget` ``weights="bpnet-lite"``: Rescale through
``mn * softmax(mn)``), or hold per-pair coefficients computed from x and the reference
(``at_x`` minus the Δ; :class:`ProfileTarget` ``weights="chrombpnet"``), whose Δ is then what
the contributions sum to.

Built in: :class:`LogitTarget` (pre-activation columns; softmax mean-normalised),
:class:`ProfileTarget` (BPNet/ChromBPNet profile: softmax-weighted, mean-centred logits; the
weights of dnalift, ChromBPNet's DeepSHAP or bpnet-lite's Rescale),
:class:`CountsTarget` (count head), :class:`FunctionTarget` (a user callable), and
:class:`TargetList` (several targets sharing one difference pass, split by :func:`heads`).
:class:`TargetSpec` declares one before the model is known; :func:`make_target` builds it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np
from keras import ops

from dnalift.engine.graph import Key
from dnalift.engine.names import COUNTS_COMBINE, PROFILE_CHANNELS, PROFILE_WEIGHTS  # noqa: F401
from dnalift.engine.nonlinear import EPS, _quotient
from dnalift.engine.rules import Step
from dnalift.errors import InputError

#: Final activations that are stripped when choosing the pre-activation target.
OUTPUT_ACTIVATIONS = frozenset({"sigmoid", "softmax"})
#: Built-in target kinds (``TargetSpec.kind``, ``--target``).
KINDS = ("logit", "profile", "counts")
#: :meth:`ProfileTarget.describe` ``"weights"`` text of each convention.
_WEIGHTS_TEXT = {
    "dnalift": "softmax of the logits at x (stop-gradient), logits mean-centred",
    "chrombpnet": "mean of the softmax at x and at the reference (stop-gradient), logits "
                  "mean-centred (ChromBPNet's DeepSHAP)",
    "bpnet-lite": "Rescale through the mean-centred logits times their softmax "
                  "(bpnet-lite/tangermeme)",
}


class Target(Protocol):
    """What the engine explains: ``(B, T)`` from an activation (or Δ) dict.

    Attributes
    ----------
    keys : tuple of Key
        Tensors ``__call__`` and ``value`` read (the difference pass evaluates what they need).
    output_keys : tuple of Key
        Further tensors that only :meth:`output` reads (forward pass at x only).
    labels : list of str
        One label per column.
    """

    keys: tuple
    output_keys: tuple
    labels: list

    def __call__(self, vals: dict, at_x: dict):
        """``(B, T)`` Δ of the target from the Δ dict ``vals``, linear in ``vals``;
        ``at_x`` holds the activations at each row's sequence x (same rows)."""

    def value(self, vals: dict, at_x: dict):
        """``(B, T)`` target at the activations ``vals`` (coefficients from ``at_x``)."""

    def output(self, at_x: dict):
        """``(B, T)`` post-activation model output at x, or None where not a plain column."""

    def describe(self) -> dict:
        """What is explained, for file attributes: ``{"kind": ..., "output": ..., ...}``."""


class _Linear:
    """Mixin of linear targets: the value is the same linear map as the Δ."""

    output_keys: tuple = ()

    def value(self, vals: dict, at_x: dict):
        return self(vals, at_x)

    def output(self, at_x: dict):
        return None


class _OneTensor:
    """Mixin of targets that read one tensor, ``self.key``."""

    key: Key

    @property
    def keys(self) -> tuple:
        return (self.key,)


def _columns(t):
    """``(B, ...)`` -> ``(B, prod ...)``."""
    return ops.reshape(t, (t.shape[0], -1))


@dataclass(frozen=True)
class LogitTarget(_OneTensor, _Linear):
    """Pre-activation logit columns of one model output.

    Attributes
    ----------
    key : Key
        The logit tensor (input of a final sigmoid/softmax, else the output itself).
    output_key : Key or None
        The model output tensor, if it is 2-D ``(B, classes)``, for :meth:`output`.
    softmax : bool
        Subtract the mean across classes (softmax outputs).
    tasks : list of int
        Columns of the flattened logit tensor.
    labels : list of str
    output_name : str
        The model output's layer name.
    """

    key: Key
    output_key: Key | None
    softmax: bool
    tasks: list
    labels: list
    output_name: str = ""

    @property
    def output_keys(self) -> tuple:
        return () if self.output_key is None else (self.output_key,)

    def __call__(self, vals: dict, at_x: dict | None = None):
        t = _columns(vals[self.key])
        if self.softmax:
            t = t - ops.mean(t, axis=1, keepdims=True)
        return ops.take(t, self.tasks, axis=1)

    def output(self, at_x: dict):
        if self.output_key is None:
            return None
        return ops.take(at_x[self.output_key], self.tasks, axis=1)

    def describe(self) -> dict:
        return {"kind": "logit", "output": self.output_name, "softmax_mean_normalised":
                self.softmax}


@dataclass(frozen=True)
class ProfileTarget(_OneTensor):
    """BPNet/ChromBPNet profile target of logits ``(L_out, C)``.

    Per group of logits (channel, or all of them), with ``mn = l - mean_j l_j`` and
    ``p = softmax(l) = softmax(mn)``, every convention explains the pair (x, r) as
    ``Σ_i w_i Δmn_i`` with per-pair weights ``w`` held constant (multiplier of logit ``l_j``:
    ``w_j - mean_i w_i``); ``weights`` chooses them:

    - ``"dnalift"`` (default): ``w = p(x)`` for x and all its references. The target is
      ``T_x(z) = Σ_i p_i(x) mn_i(z)``, linear in the logits; contributions sum to
      ``T_x(x) - T_x(r)``.
    - ``"chrombpnet"``: ``w = (p(x) + p(r)) / 2``, what ChromBPNet's ``contribs_bw``
      (kundajelab/shap DeepSHAP on ``Σ_i stop_gradient(softmax(mn))_i · mn_i``) computes:
      the explainer's ``Mul`` handler splits ``Δ(a·b)`` Shapley-wise into
      ``½(a_x + a_r) Δb + ½(b_x + b_r) Δa`` and the second term dies at the
      ``StopGradient``. Contributions sum to ``Σ_i w_i Δmn_i`` (the ``delta``), which falls
      short of ``G(x) - G(r)``, ``G(z) = Σ_i p_i(z) mn_i(z)``, by
      ``½ Σ_i Δp_i (mn_i(x) + mn_i(r))``.
    - ``"bpnet-lite"``: Rescale through ``y_i = mn_i p_i`` as one elementwise nonlinearity
      (bpnet-lite's ``_ProfileLogitScaling`` registered as a tangermeme ``_nonlinear``):
      ``w_i = Δy_i / Δmn_i`` (the slope ``∂G/∂mn_i = p_i (1 + mn_i - G)`` at x where
      ``|Δmn_i| < eps``, as tangermeme). Contributions sum to ``G(x) - G(r)`` exactly (less
      the ``Δy_i`` of such positions).

    The prediction is ``Σ_i p_i(x) mn_i(x)`` in all three. Gradient baselines differentiate
    ``T_x`` (dnalift), ``Σ_i stop_gradient(p_i(z)) mn_i(z)`` (chrombpnet: softmax at the
    evaluated input) or ``G`` (bpnet-lite).

    ``channels``: ``"sum"`` (one column, summed over channels), ``"each"`` (one column per
    channel), ``"joint"`` (one softmax over all ``L_out * C`` logits, one column:
    bpnet-lite / basepairmodels' single multinomial over both strands).

    Attributes
    ----------
    key : Key
        The profile logits ``(B, L_out)`` or ``(B, L_out, C)``.
    channels : {"sum", "each", "joint"}
    labels : list of str
    output_name : str
    weights : {"dnalift", "chrombpnet", "bpnet-lite"}
    eps : float
        bpnet-lite: below this ``|Δmn_i|`` the slope at x replaces the secant.
    """

    key: Key
    channels: str
    labels: list
    output_name: str = ""
    weights: str = "dnalift"
    eps: float = 1e-5
    output_keys: tuple = ()

    def _grouped(self, t):
        """``(B, L_out[, C])`` -> ``(B, positions, groups)``: softmax over axis 1."""
        b = t.shape[0]
        if self.channels == "joint" or len(t.shape) == 2:
            return ops.reshape(t, (b, -1, 1))
        return ops.reshape(t, (b, t.shape[1], -1))

    def _columns(self, per_position):
        """``(B, positions, groups)`` terms -> ``(B, T)`` target columns."""
        per_group = ops.sum(per_position, axis=1)                         # (B, groups)
        return ops.sum(per_group, axis=1, keepdims=True) if self.channels == "sum" \
            else per_group

    def __call__(self, vals: dict, at_x: dict):
        sg = ops.stop_gradient
        d = self._grouped(vals[self.key])
        d_mn = d - ops.mean(d, axis=1, keepdims=True)
        lx = sg(self._grouped(at_x[self.key]))
        px = ops.softmax(lx, axis=1)
        if self.weights == "dnalift":
            return self._columns(px * d_mn)
        lr = lx - sg(d)                              # the reference's logits
        pr = ops.softmax(lr, axis=1)
        if self.weights == "chrombpnet":
            return self._columns(sg(0.5 * (px + pr)) * d_mn)
        # bpnet-lite: value Δy (exact), gradient the secant Δy / Δmn through d_mn
        mnx = lx - ops.mean(lx, axis=1, keepdims=True)
        mnr = lr - ops.mean(lr, axis=1, keepdims=True)
        dy = mnx * px - mnr * pr
        gx = ops.sum(mnx * px, axis=1, keepdims=True)
        slope = px * (1.0 + mnx - gx)
        m = _quotient(dy, mnx - mnr, slope, self.eps)
        return self._columns(sg(dy) + sg(m) * (d_mn - sg(d_mn)))

    def value(self, vals: dict, at_x: dict):
        logits = self._grouped(vals[self.key])
        mn = logits - ops.mean(logits, axis=1, keepdims=True)
        if self.weights == "dnalift":
            w = ops.softmax(ops.stop_gradient(self._grouped(at_x[self.key])), axis=1)
        elif self.weights == "chrombpnet":
            w = ops.stop_gradient(ops.softmax(logits, axis=1))
        else:
            w = ops.softmax(logits, axis=1)
        return self._columns(w * mn)

    def output(self, at_x: dict):
        return None

    def describe(self) -> dict:
        d = {"kind": "profile", "output": self.output_name, "channels": self.channels,
             "weights": _WEIGHTS_TEXT[self.weights]}
        if self.weights != "dnalift":      # files of the default stay as before the option
            d["profile_weights"] = self.weights
        return d


@dataclass(frozen=True)
class CountsTarget(_OneTensor):
    """Count head: the sum of its (log-count) columns, or ``log(sum_s exp(l_s))``.

    ``combine="sum"`` (default) is linear: what ChromBPNet (one log-count column),
    basepairmodels and BPNet (per-strand log counts, summed) explain. ``"logsumexp"``
    explains the log of the summed counts of several strands; it is not linear, so its Δ
    uses the Rescale rule through exp -> sum -> log: strand s gets the multiplier
    ``[Δlog C / ΔC] [Δexp(l_s) / Δl_s]`` (C = Σ_s exp l_s), whose contributions sum to
    ``Δ log C`` exactly (limits ``exp(l_s)`` and ``1/C`` at the sequence where a difference is
    below ``eps``).

    Attributes
    ----------
    key : Key
    combine : {"sum", "logsumexp"}
    labels : list of str
    output_name : str
    eps : float
    """

    key: Key
    combine: str
    labels: list
    output_name: str = ""
    eps: float = 1e-5
    output_keys: tuple = ()

    def value(self, vals: dict, at_x: dict):
        t = _columns(vals[self.key])
        if self.combine == "sum":
            return ops.sum(t, axis=1, keepdims=True)
        return ops.logsumexp(t, axis=1, keepdims=True)

    def __call__(self, vals: dict, at_x: dict):
        d = _columns(vals[self.key])
        if self.combine == "sum":
            return ops.sum(d, axis=1, keepdims=True)
        sg = ops.stop_gradient
        lx = sg(_columns(at_x[self.key]))
        sd = sg(d)
        lr = lx - sd
        shift = ops.max(ops.maximum(lx, lr), axis=1, keepdims=True)   # exp() <= 1
        ex, er = ops.exp(lx - shift), ops.exp(lr - shift)
        m_exp = _quotient(ex - er, lx - lr, ex, self.eps)
        cx = ops.sum(ex, axis=1, keepdims=True)
        cr = ops.sum(er, axis=1, keepdims=True)
        dy = ops.log(cx) - ops.log(cr)
        m_log = _quotient(dy, cx - cr, 1.0 / cx, self.eps)
        return sg(dy) + ops.sum(sg(m_log * m_exp) * (d - sd), axis=1, keepdims=True)

    def output(self, at_x: dict):
        return None

    def describe(self) -> dict:
        return {"kind": "counts", "output": self.output_name, "combine": self.combine}


@dataclass(frozen=True)
class FunctionTarget(_Linear):
    """A user callable ``fn(vals, at_x) -> (B, T)``.

    ``vals`` and ``at_x`` map each model output's name to its pre-activation tensor (the
    input of a final sigmoid/softmax, else the output), ``(B, ...)``. ``fn`` must be linear in
    ``vals`` for fixed ``at_x`` (compute coefficients from ``at_x`` only, e.g.
    ``ops.softmax(at_x["profile"], axis=1)``; they are held constant): see the module
    docstring. Written with ``keras.ops`` it runs on every backend.
    """

    fn: Callable
    keys: tuple
    names: tuple
    labels: list

    def _named(self, vals: dict) -> dict:
        return {n: vals[k] for n, k in zip(self.names, self.keys)}

    def __call__(self, vals: dict, at_x: dict):
        out = self.fn(self._named(vals), {n: ops.stop_gradient(v)
                                          for n, v in self._named(at_x).items()})
        return ops.reshape(out, (out.shape[0], -1))

    def describe(self) -> dict:
        return {"kind": "callable", "function": getattr(self.fn, "__qualname__",
                                                        repr(self.fn))}


@dataclass(frozen=True)
class TargetList:
    """Several targets explained in one difference pass: their columns side by side.

    Attributes
    ----------
    parts : tuple of Target
    names : tuple of str
        One head name per part (file names, attributes); labels are the parts' labels.
    """

    parts: tuple
    names: tuple

    @property
    def keys(self) -> tuple:
        return tuple(dict.fromkeys(k for p in self.parts for k in p.keys))

    @property
    def output_keys(self) -> tuple:
        return tuple(dict.fromkeys(k for p in self.parts for k in p.output_keys))

    @property
    def labels(self) -> list:
        return [lab for p in self.parts for lab in p.labels]

    def __call__(self, vals: dict, at_x: dict):
        return ops.concatenate([p(vals, at_x) for p in self.parts], axis=1)

    def value(self, vals: dict, at_x: dict):
        return ops.concatenate([p.value(vals, at_x) for p in self.parts], axis=1)

    def output(self, at_x: dict):
        """None unless every part has a plain output column."""
        outs = [p.output(at_x) for p in self.parts]
        return None if any(o is None for o in outs) else ops.concatenate(outs, axis=1)

    def describe(self) -> dict:
        return {"kind": "list", "heads": {n: p.describe()
                                          for n, p in zip(self.names, self.parts)}}


@dataclass(frozen=True)
class Head:
    """One explained head of a target: its columns of the Attribution.

    Attributes
    ----------
    name : str
    columns : list of int
        Columns (axis 1 of the Attribution arrays) of this head.
    labels : list of str
    description : dict
        :meth:`Target.describe` of the head.
    """

    name: str
    columns: list
    labels: list
    description: dict = field(default_factory=dict)

    @property
    def description_json(self) -> str:
        return json.dumps(self.description, sort_keys=True)


def heads(target: Target) -> list[Head]:
    """The heads of a target: one per part of a :class:`TargetList`, else the whole."""
    if not isinstance(target, TargetList):
        d = target.describe()
        return [Head(d.get("kind", "target"), list(range(len(target.labels))),
                     list(target.labels), d)]
    out, lo = [], 0
    for name, part in zip(target.names, target.parts):
        n = len(part.labels)
        out.append(Head(name, list(range(lo, lo + n)), list(part.labels), part.describe()))
        lo += n
    return out


@dataclass(frozen=True)
class TargetSpec:
    """A built-in target declared before the model is known (built by :func:`make_target`).

    Attributes
    ----------
    kind : {"logit", "profile", "counts"}
    output : str or int, optional
        Model output (name or index); None: the only output, or for profile/counts the one
        output whose shape fits (:func:`detect_output`).
    channels : {"sum", "each", "joint"}
        Profile only (see :class:`ProfileTarget`).
    combine : {"sum", "logsumexp"}
        Counts only (see :class:`CountsTarget`).
    weights : {"dnalift", "chrombpnet", "bpnet-lite"}
        Profile only: the convention of the field whose per-pair weights to use (see
        :class:`ProfileTarget`).
    name : str, optional
        Head name (default: ``kind``); the column label of profile/counts targets.
    """

    kind: str = "logit"
    output: str | int | None = None
    channels: str = "sum"
    combine: str = "sum"
    name: str | None = None
    weights: str = "dnalift"

    def __post_init__(self) -> None:
        for what, value, allowed in (("target", self.kind, KINDS),
                                     ("profile channels", self.channels, PROFILE_CHANNELS),
                                     ("counts combine", self.combine, COUNTS_COMBINE),
                                     ("profile weights", self.weights, PROFILE_WEIGHTS)):
            if value not in allowed:
                raise InputError(f"unknown {what} {value!r} (one of {', '.join(allowed)})")

    @property
    def head(self) -> str:
        return self.name or self.kind


def head_names(target: Any) -> list[str]:
    """Head names of a target declaration (see :func:`make_target`); [] for a single target."""
    if not isinstance(target, (list, tuple)) or len(target) < 2:
        return []
    return [_spec(t).head if isinstance(t, (str, TargetSpec)) else f"target{i}"
            for i, t in enumerate(target)]


@dataclass(frozen=True)
class ModelOutputs:
    """The outputs of a model as the engine sees them.

    Attributes
    ----------
    steps : list of Step
    keys : list of Key
        One tensor per output.
    names : list of str
        Output layer names; ``aliases`` other names (``model.output_names``).
    shapes : list of tuple
        Symbolic shapes ``(None, ...)``.
    dtype : str
        Engine dtype (for the eps of :class:`CountsTarget`).
    """

    steps: list
    keys: list
    names: list
    aliases: list
    shapes: list
    dtype: str = "float32"

def find_logit(steps: list[Step], out_key: Key) -> tuple[Key, bool]:
    """Key of the logit of output ``out_key`` (input of a final sigmoid/softmax step, else the
    output) and whether that activation is a softmax."""
    s = _final_activation(steps, out_key)
    return (s.inputs[0], s.act == "softmax") if s is not None else (out_key, False)


def _final_activation(steps: list[Step], out_key: Key) -> Step | None:
    """The sigmoid/softmax step that produces output ``out_key`` (None for a linear output)."""
    for s in steps:
        if s.output == out_key and s.kind.name in ("nonlinear", "nonelementwise") and \
                s.act in OUTPUT_ACTIVATIONS:
            return s
    return None


def select_output(output: str | int | None, names: Sequence[str],
                  aliases: Sequence[str] = ()) -> int:
    """Index of the chosen model output.

    Parameters
    ----------
    output : str, int or None
        Output layer name (or a name of ``aliases``, e.g. ``model.output_names``), index, or
        None for a single-output model.
    names : sequence of str
        Names of the layers producing the outputs.

    Raises
    ------
    InputError
        None with several outputs, or no such output.
    """
    if output is None:
        if len(names) > 1:
            raise InputError(f"model has {len(names)} outputs; choose one with output= "
                             f"({', '.join(names)})")
        return 0
    if isinstance(output, (int, np.integer)) and 0 <= int(output) < len(names):
        return int(output)
    for lst in (list(names), list(aliases)):
        if output in lst:
            return lst.index(output)
    raise InputError(f"model has no output {output!r} (outputs: {', '.join(names)})")


def check_task_names(names: Sequence[str] | None, n_all: int) -> list[str] | None:
    """``names`` as strings, checked to number ``n_all`` (None stays None: index labels)."""
    if names is None:
        return None
    names = [str(n) for n in names]
    if len(names) != n_all:
        raise InputError(f"{len(names)} task names given, the target has {n_all} tasks")
    return names


def resolve_tasks(tasks: Sequence[int | str] | None, task_names: Sequence[str] | None,
                  n_all: int) -> list[int]:
    """Column indices of ``tasks`` (indices, digit strings or names; None/empty: all).

    Raises
    ------
    InputError
        An unknown name or an index outside ``0..n_all-1`` (the message lists the tasks).
    """
    if tasks is None or len(tasks) == 0:
        return list(range(n_all))
    known = ", ".join(f"{i}={n}" for i, n in enumerate(task_names)) \
        if task_names else f"indices 0..{n_all - 1}"
    out = []
    for t in tasks:
        if isinstance(t, (int, np.integer)) or (isinstance(t, str) and t.isdigit()):
            i = int(t)
        elif task_names and t in task_names:
            i = list(task_names).index(t)
        else:
            raise InputError(f"model has no task {t!r} (tasks: {known})")
        if not 0 <= i < n_all:
            raise InputError(f"model has no task {t!r} (tasks: {known})")
        out.append(i)
    return out


def task_labels(indices: Sequence[int], task_names: Sequence[str] | None) -> list[str]:
    """Labels of the selected columns: names when known, else the indices as strings."""
    return [task_names[i] if task_names else str(i) for i in indices]


def logit_target(steps: list[Step], out_key: Key, out_shape: tuple, *, tasks=None,
                 task_names: Sequence[str] | None = None, output_name: str = "") -> LogitTarget:
    """The :class:`LogitTarget` of one model output.

    Parameters
    ----------
    steps : list of Step
        All steps of the model.
    out_key : Key
        The output's tensor.
    out_shape : tuple
        Its symbolic shape ``(None, ...)``.
    tasks, task_names
        See :func:`resolve_tasks`; ``task_names`` number the flattened output's columns.
    output_name : str
        The output's layer name (for :meth:`LogitTarget.describe`).
    """
    key, softmax = find_logit(steps, out_key)
    n_all = int(np.prod([d for d in out_shape[1:]]))
    names = check_task_names(task_names, n_all)
    indices = resolve_tasks(tasks, names, n_all)
    plain = len(out_shape) == 2
    return LogitTarget(key, out_key if plain else None, softmax, indices,
                       task_labels(indices, names), output_name)


def _fits(kind: str, shape: tuple) -> bool:
    """Whether an output of ``shape`` ``(None, ...)`` looks like a profile / count head:
    profile ``(L_out, C)`` or ``(L_out,)`` with L_out > 2; counts ``(1,)`` or ``(2,)``."""
    if kind == "profile":
        return len(shape) == 3 or (len(shape) == 2 and (shape[1] or 0) > 2)
    return len(shape) == 2 and shape[1] is not None and shape[1] <= 2


def _activation(steps: list[Step], out_key: Key) -> str | None:
    """The final sigmoid/softmax of output ``out_key`` (None for a linear output)."""
    s = _final_activation(steps, out_key)
    return None if s is None else s.act


def fitting_kinds(outputs: ModelOutputs, i: int) -> list[str]:
    """The built-in target kinds that fit output ``i``: ``logit`` always; ``profile`` for
    a profile-shaped output (:func:`_fits`) of logits (linear, or a softmax over the
    positions); ``counts`` for a linear count head ``(1,)`` / ``(2,)``. A sigmoid output is a
    classifier's: only its logits are meaningful."""
    shape, act = tuple(outputs.shapes[i]), _activation(outputs.steps, outputs.keys[i])
    fit = ["logit"]
    if _fits("profile", shape) and act in (None, "softmax"):
        fit.append("profile")
    if _fits("counts", shape) and act is None:
        fit.append("counts")
    return fit


def check_fits(kind: str, outputs: ModelOutputs, i: int) -> None:
    """InputError unless a ``kind`` target fits output ``i`` (:func:`fitting_kinds`); the
    message says what the output is and which targets fit it."""
    fit = fitting_kinds(outputs, i)
    if kind in fit:
        return
    shape, act = tuple(outputs.shapes[i])[1:], _activation(outputs.steps, outputs.keys[i])
    what = (f"a {act} output (a classifier's probabilities)" if act == "sigmoid" else
            f"a {act} output" if act else "a linear output")
    need = ("a profile head: logits of shape (L_out,) with L_out > 2 or (L_out, C), linear "
            "or softmax" if kind == "profile" else
            "a count head: linear log-counts of shape (1,) or (2,)")
    n = len(outputs.names)
    raise InputError(f"--target {kind} needs {need}; the model's output {outputs.names[i]!r}"
                     f"{f' (of {n})' if n > 1 else ''} has shape {shape}, {what}; targets "
                     f"that fit it: {', '.join(fit)}")


def detect_output(kind: str, outputs: ModelOutputs, output: str | int | None) -> int:
    """Index of the output a ``kind`` target explains.

    ``output`` given: that output (:func:`select_output`). Otherwise the only output, or for
    ``profile`` / ``counts`` the one output shaped like a profile ``(B, L_out[, C])`` /
    count head ``(B, 1..2)``.

    Raises
    ------
    InputError
        No such output, or None and no / several outputs fit.
    """
    if output is not None or len(outputs.names) == 1 or kind == "logit":
        return select_output(output, outputs.names, outputs.aliases)
    fit = [i for i, s in enumerate(outputs.shapes) if _fits(kind, tuple(s))]
    if len(fit) != 1:
        shapes = ", ".join(f"{n} {tuple(s)[1:]}" for n, s in zip(outputs.names, outputs.shapes))
        raise InputError(f"cannot tell which output is the {kind} head ({shapes}); choose one "
                         "with output= (--output-name)")
    return fit[0]


def _spec(target: str | TargetSpec, output: str | int | None = None) -> TargetSpec:
    """``target`` as a TargetSpec (a kind name gets ``output``)."""
    return target if isinstance(target, TargetSpec) else TargetSpec(str(target), output=output)


def _build(spec: TargetSpec, outputs: ModelOutputs, tasks, task_names) -> Target:
    """One built-in target of a model."""
    i = detect_output(spec.kind, outputs, spec.output)
    name, shape = outputs.names[i], tuple(outputs.shapes[i])
    if spec.kind == "logit":
        return logit_target(outputs.steps, outputs.keys[i], shape, tasks=tasks,
                            task_names=task_names, output_name=name)
    if tasks:
        raise InputError(f"tasks select columns of a logit target, not of a {spec.kind} "
                         "target (leave --task out)")
    check_fits(spec.kind, outputs, i)
    key, _ = find_logit(outputs.steps, outputs.keys[i])
    if spec.kind == "counts":
        return CountsTarget(key, spec.combine, [spec.head], name,
                            EPS.get(outputs.dtype, 1e-5))
    if len(shape) not in (2, 3):
        raise InputError(f"output {name} has shape {shape[1:]}; a profile target needs "
                         "logits (L_out,) or (L_out, C)")
    n_ch = 1 if len(shape) == 2 else int(shape[2])
    labels = [f"{spec.head}.{c}" for c in range(n_ch)] if spec.channels == "each" \
        else [spec.head]
    return ProfileTarget(key, spec.channels, labels, name, spec.weights,
                         EPS.get(outputs.dtype, 1e-5))


def make_target(target: Any, outputs: ModelOutputs, *, output: str | int | None = None,
                tasks=None, task_names: Sequence[str] | None = None) -> Target:
    """Build what the engine explains from a declaration.

    Parameters
    ----------
    target : str, TargetSpec, Target, callable or sequence of these
        ``None``/``"logit"``: the logit columns (``tasks``, ``task_names``) of ``output``;
        ``"profile"``/``"counts"``: those targets of ``output`` (None: detected by shape);
        a :class:`TargetSpec`; a ready :class:`Target`; a callable ``fn(vals, at_x)``
        (:class:`FunctionTarget`, one column per output column); a sequence: a
        :class:`TargetList` of these, head names from the specs (duplicates: InputError).
    outputs : ModelOutputs
    output, tasks, task_names
        For a single kind name (``tasks``/``task_names`` for logit targets only).
    """
    if isinstance(target, (list, tuple)):
        if len(target) == 1:
            return make_target(target[0], outputs, output=output, tasks=tasks,
                               task_names=task_names)
        parts = tuple(make_target(t, outputs, tasks=tasks, task_names=task_names)
                      for t in target)
        names = tuple(head_names(target))
        if len(set(names)) < len(names):
            raise InputError(f"target heads {', '.join(names)}: names must differ "
                             "(TargetSpec(name=...))")
        labels = [lab for p in parts for lab in p.labels]
        if len(set(labels)) < len(labels):
            raise InputError(f"target columns {', '.join(labels)}: labels must differ")
        return TargetList(parts, names)
    if target is None or isinstance(target, (str, TargetSpec)):
        return _build(_spec(target or "logit", output), outputs, tasks, task_names)
    if hasattr(target, "keys") and hasattr(target, "labels") and hasattr(target, "value"):
        return target
    if callable(target):
        keys = tuple(find_logit(outputs.steps, k)[0] for k in outputs.keys)
        return FunctionTarget(target, keys, tuple(outputs.names), [])
    raise InputError(f"target {target!r}: expected a kind ({', '.join(KINDS)}), a "
                     "TargetSpec, a Target or a callable")
