"""Tests of dnalift.sinks: the sink interface (open, write, close, abort) and its two sinks."""

from __future__ import annotations

from types import SimpleNamespace

import h5py
import numpy as np
import pyBigWig
import pytest

from dnalift import scorefile, sinks
from dnalift.errors import InputError
from dnalift.sequences import Region


def _batch(lo: int, hi: int, length: int = 6) -> sinks.ScoreBatch:
    n = hi - lo
    x = np.eye(4, dtype=np.float32)[np.arange(n * length).reshape(n, length) % 4]
    actual = np.arange(lo * length, hi * length, dtype=np.float32).reshape(n, 1, length)
    att = SimpleNamespace(hypothetical=np.repeat(actual[..., None], 4, -1), actual=actual,
                          delta=np.zeros((n, 1, 2), np.float32),
                          residual=np.zeros((n, 1, 2), np.float32), prediction=actual.sum(-1))
    regions = [Region("chr1", 10 * i, 10 * i + length, "+", f"r{i}") for i in range(lo, hi)]
    return sinks.ScoreBatch(regions, x, att, outputs=att.prediction * 2)


def _meta(n: int = 4, with_output: bool = True) -> sinks.ScoreMeta:
    attrs = scorefile.JobAttributes(mode="rescale", tasks=["t"], reference="shuffle",
                                    n_references=2, n_total=n, shard_stop=n)
    return sinks.ScoreMeta(n=n, length=6, tasks=["t"], n_references=2, attrs=attrs,
                           chrom_sizes={"chr1": 100}, batch_rows=2, with_output=with_output)


class Recording:
    """A third sink: shows that a new output needs only the four methods."""

    def __init__(self, path):
        self.path, self.seconds, self.calls = path, 0.0, []

    def open(self, meta):
        self.calls.append(("open", meta.n))

    def write(self, batch):
        self.calls.append(("write", len(batch.regions)))

    def close(self):
        self.calls.append(("close",))

    def abort(self):
        self.calls.append(("abort",))


def test_sink_list_writes_hdf5_then_derives_bigwig(tmp_path):
    h5 = sinks.HDF5Sink(tmp_path / "s.h5")
    bw = sinks.BigWigSink(tmp_path / "s.bw", h5)
    extra = Recording(tmp_path / "r")
    group = sinks.SinkList([h5, bw, extra])
    group.open(_meta())
    group.write(_batch(0, 2))
    group.write(_batch(2, 4))
    assert not (tmp_path / "s.h5").exists()  # nothing final before close
    group.close()
    assert extra.calls == [("open", 4), ("write", 2), ("write", 2), ("close",)]
    with scorefile.ScoreFile(tmp_path / "s.h5") as sf:
        np.testing.assert_array_equal(sf.actual(slice(None), "t"),
                                      np.arange(24).reshape(4, 6))
    track = pyBigWig.open(str(tmp_path / "s.bw"))
    assert track.values("chr1", 30, 36) == list(map(float, range(18, 24)))  # row 3
    track.close()
    with h5py.File(tmp_path / "s.h5", "r") as f:
        np.testing.assert_array_equal(f["tasks/t/output"][:],
                                      2 * np.arange(24).reshape(4, 6).sum(1))


def test_abort_leaves_no_file(tmp_path):
    h5 = sinks.HDF5Sink(tmp_path / "a.h5")
    extra = Recording(tmp_path / "r")
    group = sinks.SinkList([h5, sinks.BigWigSink(tmp_path / "a.bw", h5), extra])
    group.open(_meta(with_output=False))
    group.write(_batch(0, 2))
    group.abort()
    assert extra.calls[-1] == ("abort",)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_bigwig_sink_needs_chromosome_sizes(tmp_path):
    h5 = sinks.HDF5Sink(tmp_path / "a.h5")
    meta = _meta()
    meta = sinks.ScoreMeta(**{**meta.__dict__, "chrom_sizes": None})
    with pytest.raises(InputError, match="chromosome sizes"):
        sinks.BigWigSink(tmp_path / "a.bw", h5).open(meta)
