"""The paper's comparison of attribution methods on the simulated task (above the library:
sequences -> references -> several engine modes -> motif summaries).

:func:`compute_contributions` drives the engine once per method on the same sequences and
references; :func:`paper_summary` reproduces the DeepLIFT paper's figure for the simulated
GATA/TAL task: embedded vs background motif hits, in the sequences that carry both motifs,
with the expected-frequency reference 0.3/0.2/0.2/0.3.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from dnalift import meme, motifs
from dnalift.references import frequency_references
from dnalift.scorefile import ScoredSequences
from dnalift.sequences import one_hot_encode
from dnalift.simulated import simulate as sim

#: The methods compared in the paper's figure (engine modes).
METHODS = ("gradient_x_input", "integrated_gradients", "rescale", "revealcancel")


def compute_contributions(model, x: np.ndarray, refs: np.ndarray, methods: Sequence[str], *,
                          batch_size: int = 256,
                          **engine_kwargs) -> tuple[dict[str, np.ndarray], list[str]]:
    """Actual contributions of several engine modes on the same sequences and references.

    Parameters
    ----------
    model : keras.Model or path
        Passed to :func:`dnalift.deeplift.load_model` when a path.
    x : np.ndarray
        ``(N, L, 4)`` one-hot.
    refs : np.ndarray
        ``(N, K, L, 4)`` references.
    methods : sequence of str
        Engine modes (``gradient_x_input``, ``integrated_gradients``, ``rescale``,
        ``revealcancel``, ...).
    engine_kwargs
        Passed to :class:`dnalift.deeplift.DeepLift` (e.g. ``tasks``).

    Returns
    -------
    contributions : dict[str, np.ndarray]
        mode -> ``(N, T, L)``.
    tasks : list[str]
    """
    from dnalift import deeplift
    from dnalift.models import check_input_shape

    if isinstance(model, (str, os.PathLike)):
        engine_kwargs.setdefault("task_names", deeplift.read_task_names(model))
        model = deeplift.load_model(model)
    check_input_shape(model)
    out, tasks = {}, None
    for method in methods:
        engine = deeplift.DeepLift(model, mode=method, batch_size=batch_size, **engine_kwargs)
        out[method] = np.asarray(engine.attribute(x, refs).actual, dtype=np.float64)
        tasks = list(engine.task_labels)
    return out, tasks


def paper_summary(data_dir: str | os.PathLike | None = None, *, n_sequences: int | None = None,
                  methods: Sequence[str] = METHODS, split: str = "test",
                  model=None) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The paper's summary table on a simulated data directory.

    Contributions of every method (frequency reference :data:`simulate.BACKGROUND`) on the
    first ``n_sequences`` of ``split``; hits of the directory's ``motifs.meme``; summary over
    the sequences that carry an embedded instance of every motif.

    Returns
    -------
    summary : pd.DataFrame
        :func:`dnalift.motifs.summarize` columns.
    subset : list of str
        Names of the summarised sequences (carrying every motif).
    tasks : list of str
        Task labels of the model.
    """
    from dnalift.deeplift import load_model, read_task_names

    data = Path(data_dir) if data_dir is not None else sim.default_motif_path().parent
    names, seqs, _ = sim.read_split(data, split)
    names, seqs = names[:n_sequences], seqs[:n_sequences]
    x = one_hot_encode(seqs)
    refs = frequency_references(x, sim.BACKGROUND)
    task_names = read_task_names(data / "model.h5") if model is None else None
    model = load_model(data / "model.h5") if model is None else model
    contribs, tasks = compute_contributions(model, x, refs, methods, task_names=task_names)
    found, background = meme.read_meme(data / "motifs.meme")
    embedded = motifs.read_embedded(data / f"{split}.embedded.tsv")
    subset = motifs.sequences_with_all_motifs(embedded[embedded["name"].isin(names)],
                                              list(found))
    scored = ScoredSequences(names, x, contribs, tasks)
    _, table = motifs.motif_report(scored, found, embedded=embedded, background=background,
                                   subset=subset)
    return table, subset, tasks
