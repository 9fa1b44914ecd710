"""Sinks: where the scoring job sends its batches (engine -> sinks -> files).

Every output of ``dnalift score`` is a :class:`Sink` with four methods: ``open(meta)`` once
the first batch fixes the shapes, ``write(batch)`` per batch, ``close()`` when every batch is
written (in list order, so a sink may derive its file from an earlier one), and ``abort()``
on failure (no finished-looking file may be left). Adding an output format means adding one
class here and one line where the job builds its sink list.

* :class:`HDF5Sink`: the score file (:class:`dnalift.scorefile.HDF5Writer`).
* :class:`BigWigSink`: the bigWig of the first task, derived from the finished HDF5 file
  at ``close()`` (streams rows; memory independent of N).
* :class:`HeadSink`: the sinks of one head of a multi-head target (its columns only).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from dnalift.errors import InputError
from dnalift.scorefile import HDF5Writer, JobAttributes, bigwig_from_h5


@dataclass(frozen=True)
class ScoreMeta:
    """What every sink learns before the first batch.

    Attributes
    ----------
    n : int
        Expected number of regions (0 when unknown).
    length : int
        Sequence length L.
    tasks : list of str
        Labels of the T selected tasks.
    n_references : int
        K, references per sequence.
    attrs : JobAttributes
    chrom_sizes : mapping of str to int, optional
    batch_rows : int
        Typical batch size B.
    with_output : bool
        Batches carry the model's post-activation outputs ``(B, T)``.
    """

    n: int
    length: int
    tasks: list[str]
    n_references: int
    attrs: JobAttributes
    chrom_sizes: Mapping[str, int] | None = None
    batch_rows: int = 256
    with_output: bool = False


@dataclass
class ScoreBatch:
    """One batch of scored regions.

    Attributes
    ----------
    regions : list of Region
        B regions.
    x : np.ndarray
        ``(B, L, 4)`` one-hot.
    attribution : dnalift.deeplift.Attribution
        ``hypothetical (B, T, L, 4)``, ``actual (B, T, L)``, ``delta``/``residual``
        ``(B, T, K)``, ``prediction (B, T)``.
    outputs : np.ndarray, optional
        ``(B, T)`` post-activation model outputs.
    """

    regions: Sequence[Any]
    x: np.ndarray
    attribution: Any
    outputs: np.ndarray | None = None


class Sink(Protocol):
    """The interface of an output of the scoring job (see the module docstring)."""

    path: Path
    #: Seconds spent in write() and close().
    seconds: float

    def open(self, meta: ScoreMeta) -> None: ...

    def write(self, batch: ScoreBatch) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class HDF5Sink:
    """The HDF5 score file.

    Parameters
    ----------
    path : path-like
    float16 : bool
        Store score arrays and ``input_seqs`` as float16.
    compression : {"gzip", "lzf", None}
    """

    def __init__(self, path: str | os.PathLike, *, float16: bool = False,
                 compression: str | None = "gzip") -> None:
        self.path = Path(path)
        self.float16, self.compression = float16, compression
        self.seconds = 0.0
        self._writer: HDF5Writer | None = None
        self._final_attrs: dict[str, Any] = {}

    def add_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Root attributes to store when the file is closed (known only at the end of the
        job, e.g. the ensemble agreement)."""
        self._final_attrs.update(attrs)

    def open(self, meta: ScoreMeta) -> None:
        self._writer = HDF5Writer(self.path, n=meta.n, length=meta.length, tasks=meta.tasks,
                                  n_references=meta.n_references, attrs=meta.attrs,
                                  chrom_sizes=meta.chrom_sizes or None, float16=self.float16,
                                  batch_rows=meta.batch_rows, compression=self.compression,
                                  with_output=meta.with_output)

    def write(self, batch: ScoreBatch) -> None:
        t0 = time.perf_counter()
        self._writer.write(batch.regions, batch.x, batch.attribution, batch.outputs)
        self.seconds += time.perf_counter() - t0

    def close(self) -> None:
        self._writer.close(self._final_attrs)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()


class BigWigSink:
    """bigWig of the first task's actual contributions, made from the finished score file.

    Parameters
    ----------
    path : path-like
    source : HDF5Sink
        The score file sink; it must close before this one (earlier in the list).
    chrom_sizes : mapping, optional
        bigWig header; default the sizes in :class:`ScoreMeta`.
    """

    def __init__(self, path: str | os.PathLike, source: HDF5Sink,
                 chrom_sizes: Mapping[str, int] | None = None) -> None:
        self.path = Path(path)
        self.source = source
        self.chrom_sizes = dict(chrom_sizes) if chrom_sizes else None
        self.seconds = 0.0

    def open(self, meta: ScoreMeta) -> None:
        self.chrom_sizes = self.chrom_sizes or (dict(meta.chrom_sizes) if meta.chrom_sizes
                                                else None)
        if not self.chrom_sizes:
            raise InputError(f"{self.path}: a bigWig needs chromosome sizes (chrom_sizes=...)")

    def write(self, batch: ScoreBatch) -> None:
        """Nothing to do: the track is derived from the score file at :meth:`close`."""

    def close(self) -> None:
        t0 = time.perf_counter()
        bigwig_from_h5(self.source.path, self.path, chrom_sizes=self.chrom_sizes)
        self.seconds += time.perf_counter() - t0

    def abort(self) -> None:
        """Nothing to remove: the track is written atomically at :meth:`close`."""


def head_attributes(attrs: Any, head: Any) -> Any:
    """The job attributes of one head's file: its tasks, ``target`` and ``target_output``."""
    return dataclasses.replace(attrs, tasks=list(head.labels), target=head.description_json,
                               target_output=str(head.description.get("output", "")))


class HeadSink:
    """The sinks of one head of a multi-head target (e.g. profile and counts in one run):
    every batch restricted to the head's columns, the file labelled with the head's tasks,
    ``target`` (its description) and ``target_output``.

    Parameters
    ----------
    head : dnalift.engine.targets.Head
    sinks : sequence of Sink
        This head's outputs (an HDF5 sink first).
    """

    def __init__(self, head: Any, sinks: Sequence[Sink]) -> None:
        self.head = head
        self.sinks = SinkList(sinks)
        self.path = self.sinks.sinks[0].path

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.sinks.sinks)

    def open(self, meta: ScoreMeta) -> None:
        attrs = head_attributes(meta.attrs, self.head)
        self.sinks.open(dataclasses.replace(meta, tasks=list(attrs.tasks), attrs=attrs))

    def write(self, batch: ScoreBatch) -> None:
        cols = self.head.columns
        outputs = None if batch.outputs is None else batch.outputs[:, cols]
        self.sinks.write(ScoreBatch(batch.regions, batch.x, batch.attribution.take(cols),
                                    outputs))

    def add_attrs(self, attrs: Mapping[str, Any]) -> None:
        self.sinks.add_attrs(attrs)

    def close(self) -> None:
        self.sinks.close()

    def abort(self) -> None:
        self.sinks.abort()


class SinkList:
    """Several sinks driven as one: opened, written and closed in order; on failure every
    sink is aborted."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)
        self.opened = False

    def open(self, meta: ScoreMeta) -> None:
        self.opened = True
        for sink in self.sinks:
            sink.open(meta)

    def add_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Root attributes known only at the end of the job (e.g. the ensemble agreement),
        passed to every sink that stores attributes (those with ``add_attrs``)."""
        for sink in self.sinks:
            if hasattr(sink, "add_attrs"):
                sink.add_attrs(attrs)

    def write(self, batch: ScoreBatch) -> None:
        for sink in self.sinks:
            sink.write(batch)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()

    def abort(self) -> None:
        for sink in self.sinks:
            try:
                sink.abort()
            except Exception:  # keep aborting the others; the original error matters
                pass


__all__ = ["Sink", "ScoreMeta", "ScoreBatch", "HDF5Sink", "BigWigSink", "HeadSink",
           "SinkList"]
