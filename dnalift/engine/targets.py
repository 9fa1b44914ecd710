"""Engine, what is explained (steps -> target): the scored output columns and their labels.

A target maps the activation dict of the difference network (at x, or the Δ dict of the pairs)
to a ``(B, T)`` tensor and has ``labels`` (T strings). :class:`LogitTarget` is the default:
the pre-activation logit of a model output (the input of a final sigmoid/softmax), with the
mean across classes subtracted for a softmax, at the selected columns of the flattened output.
Other targets (profile, counts, a callable) implement the same small interface (:class:`Target`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
from keras import ops

from dnalift.engine.graph import Key
from dnalift.engine.rules import Step
from dnalift.errors import InputError

#: Final activations that are stripped when choosing the pre-activation target.
OUTPUT_ACTIVATIONS = frozenset({"sigmoid", "softmax"})


class Target(Protocol):
    """What the engine explains: ``(B, T)`` from an activation (or Δ) dict.

    Attributes
    ----------
    keys : tuple of Key
        Tensors the target reads (the difference pass evaluates only what they need).
    labels : list of str
        One label per column.
    """

    keys: tuple
    labels: list

    def __call__(self, vals: dict):
        """``(B, T)`` target from activations (or Δs) keyed by tensor."""

    def output(self, vals: dict):
        """``(B, T)`` post-activation model output at x, or None where not a plain column."""


@dataclass(frozen=True)
class LogitTarget:
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
    """

    key: Key
    output_key: Key | None
    softmax: bool
    tasks: list
    labels: list

    @property
    def keys(self) -> tuple:
        return (self.key,) if self.output_key is None else (self.key, self.output_key)

    def __call__(self, vals: dict):
        t = vals[self.key]
        t = ops.reshape(t, (t.shape[0], -1))
        if self.softmax:
            t = t - ops.mean(t, axis=1, keepdims=True)
        return ops.take(t, self.tasks, axis=1)

    def output(self, vals: dict):
        if self.output_key is None:
            return None
        return ops.take(vals[self.output_key], self.tasks, axis=1)


def find_logit(steps: list[Step], out_key: Key) -> tuple[Key, bool]:
    """Key of the logit of output ``out_key`` (input of a final sigmoid/softmax step, else the
    output) and whether that activation is a softmax."""
    for s in steps:
        if s.output == out_key and s.kind.name in ("nonlinear", "nonelementwise") and \
                s.act in OUTPUT_ACTIVATIONS:
            return s.inputs[0], s.act == "softmax"
    return out_key, False


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
                 task_names: Sequence[str] | None = None) -> LogitTarget:
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
    """
    key, softmax = find_logit(steps, out_key)
    n_all = int(np.prod([d for d in out_shape[1:]]))
    names = check_task_names(task_names, n_all)
    indices = resolve_tasks(tasks, names, n_all)
    plain = len(out_shape) == 2
    return LogitTarget(key, out_key if plain else None, softmax, indices,
                       task_labels(indices, names))
