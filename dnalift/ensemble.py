"""The engine stage of the scoring job (references -> **engine** -> sinks) for several models
and both strands: one averaged :class:`dnalift.deeplift.Attribution` per batch.

An ensemble (the models of several cross-validation folds) and ``strands="both"`` (each
region and its reverse complement) are *members*; every member scores the same one-hot
batch against the same references (the reverse-complement member scores ``rc(x)`` against
``rc(refs)``) and its scores are brought back to the orientation of ``x`` (positions
reversed, channels complemented: ACGT -> TGCA) before averaging. With M models and S strands
(S = 1 or 2) the stored arrays are, over the M·S members ``j``::

    hypothetical = mean_j hyp_j        (N, T, L, 4)
    actual       = mean_j actual_j     (N, T, L)
    delta        = mean_j delta_j      (N, T, K)   mean of the members' output differences
    residual     = mean_j residual_j   (N, T, K)
    prediction   = mean_j prediction_j (N, T)      mean of the members' target logits

Each member's contributions sum to its own delta (summation to delta), so the averaged
contributions sum to the **mean of the members' deltas**: ``sum_l actual = mean_k (delta_k +
residual_k)`` holds for the stored arrays exactly as for one model.

:class:`Agreement` accumulates, over all batches, the Pearson correlation of each member
group (one model; one strand) with the average: the per-model agreement of an ensemble.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from dnalift.errors import InputError
from dnalift.sequences import reverse_complement

#: Values of ``--strands``.
STRANDS = ("forward", "both")


def flip_attribution(att: Any) -> Any:
    """Scores of a reverse-complemented batch brought back to the forward orientation.

    ``hypothetical (N, T, L, 4)`` is reversed along L and complemented along the channels,
    ``actual (N, T, L)`` reversed along L; ``delta``, ``residual`` and ``prediction`` do not
    depend on the orientation of the positions and are kept.
    """
    return dataclasses.replace(att, hypothetical=reverse_complement(att.hypothetical),
                               actual=np.ascontiguousarray(att.actual[..., ::-1]))


def mean_attribution(atts: Sequence[Any]) -> Any:
    """The member-wise mean of Attributions of one batch (every field averaged; ``output``
    only where every member has one)."""
    if len(atts) == 1:
        return atts[0]
    fields = ["hypothetical", "actual", "delta", "residual", "prediction"]
    if all(a.output is not None for a in atts):
        fields.append("output")
    return dataclasses.replace(atts[0], **{
        f: np.mean([getattr(a, f) for a in atts], axis=0).astype(np.float32) for f in fields})


class Agreement:
    """Running Pearson correlation between each of G groups and a reference array, over
    every batch (sums in float64, so memory does not grow with N)."""

    def __init__(self, n_groups: int) -> None:
        self._sums = np.zeros((n_groups, 5), dtype=np.float64)  # x, y, xx, yy, xy

    def update(self, groups: Sequence[np.ndarray], reference: np.ndarray) -> None:
        """Add one batch: ``groups[g]`` and ``reference`` of the same shape (e.g. ``(B, T, L)``)."""
        y = np.asarray(reference, dtype=np.float64).ravel()
        for g, values in enumerate(groups):
            x = np.asarray(values, dtype=np.float64).ravel()
            self._sums[g] += (x.sum(), y.sum(), x @ x, y @ y, x @ y)

    def correlations(self, n: int) -> list[float]:
        """Pearson r of every group with the reference over the ``n`` values added
        (NaN where a variance is 0)."""
        sx, sy, sxx, syy, sxy = self._sums.T
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = sxy - sx * sy / n
            r = cov / np.sqrt((sxx - sx * sx / n) * (syy - sy * sy / n))
        return [float(v) for v in r]


class CombinedEngine:
    """Several :class:`dnalift.deeplift.DeepLift` engines (an ensemble) on one or both
    strands, with the interface of one engine (``attribute``, ``task_labels``,
    ``task_indices``, ``input_length``).

    Parameters
    ----------
    engines : sequence of DeepLift
        One engine per model; all must select the same tasks and take the same length.
    strands : {"forward", "both"}
    labels : sequence of str, optional
        Model names for messages (default ``model0, model1, ...``).

    Raises
    ------
    InputError
        No engine, an unknown ``strands``, or models that disagree on tasks or length.
    """

    def __init__(self, engines: Sequence[Any], strands: str = "forward",
                 labels: Sequence[str] | None = None) -> None:
        if not engines:
            raise InputError("no model to score with")
        if strands not in STRANDS:
            raise InputError(f"--strands {strands!r}: expected one of {', '.join(STRANDS)}")
        self.engines = list(engines)
        self.strands = strands
        self.labels = list(labels) if labels else [f"model{i}" for i in range(len(engines))]
        first = self.engines[0]
        for label, engine in zip(self.labels[1:], self.engines[1:]):
            if list(engine.task_labels) != list(first.task_labels):
                raise InputError(f"{label}: tasks {list(engine.task_labels)} differ from "
                                 f"{self.labels[0]} ({list(first.task_labels)})")
            if engine.input_length != first.input_length:
                raise InputError(f"{label}: input length {engine.input_length} differs from "
                                 f"{self.labels[0]} ({first.input_length})")
        self.model_agreement = Agreement(len(self.engines))
        self.strand_agreement = Agreement(2)
        self.n_values = 0

    @property
    def task_labels(self) -> list[str]:
        return list(self.engines[0].task_labels)

    @property
    def task_indices(self) -> Any:
        return self.engines[0].task_indices

    @property
    def input_length(self) -> int | None:
        return self.engines[0].input_length

    @property
    def target(self) -> Any:
        """The (common) target of the members (:class:`dnalift.engine.targets.Target`)."""
        return self.engines[0].target

    @property
    def heads(self) -> list:
        """The target's heads (``DeepLift.heads``), the same for every member."""
        return self.engines[0].heads

    @property
    def n_members(self) -> int:
        """M·S: models times strands."""
        return len(self.engines) * (2 if self.strands == "both" else 1)

    def attribute(self, x: np.ndarray, refs: np.ndarray) -> Any:
        """The averaged Attribution of ``x (B, L, 4)`` against ``refs (B, K, L, 4)`` (see
        the module docstring); updates the agreement sums."""
        forward = [engine.attribute(x, refs) for engine in self.engines]
        if self.strands == "both":
            x_rc, refs_rc = reverse_complement(x), reverse_complement(refs)
            reverse = [flip_attribution(engine.attribute(x_rc, refs_rc))
                       for engine in self.engines]
            per_model = [mean_attribution(pair) for pair in zip(forward, reverse)]
            strands = [mean_attribution(forward), mean_attribution(reverse)]
        else:
            per_model, strands = forward, None
        combined = mean_attribution(per_model)
        if len(per_model) > 1:
            self.model_agreement.update([a.actual for a in per_model], combined.actual)
        if strands is not None:
            self.strand_agreement.update([strands[0].actual, strands[1].actual],
                                         combined.actual)
        self.n_values += combined.actual.size
        return combined

    def agreement_attrs(self) -> dict[str, Any]:
        """Root attributes for the score file: ``model_agreement`` (Pearson r of each
        model's actual contributions with the ensemble's, all tasks and positions; only for
        several models) and ``strand_agreement`` (forward and reverse strand with the mean;
        only for ``strands="both"``)."""
        out: dict[str, Any] = {}
        if self.n_values == 0:
            return out
        if len(self.engines) > 1:
            out["model_agreement"] = self.model_agreement.correlations(self.n_values)
        if self.strands == "both":
            out["strand_agreement"] = self.strand_agreement.correlations(self.n_values)
        return out


__all__ = ["STRANDS", "CombinedEngine", "Agreement", "flip_attribution", "mean_attribution"]
