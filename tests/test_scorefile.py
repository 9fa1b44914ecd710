"""Tests of dnalift.scorefile: HDF5 layout, writer, lazy reader, attributes, merge."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pyBigWig
import pytest

from dnalift.errors import InputError
from dnalift import scorefile as W


@dataclass(frozen=True)
class Reg:
    chrom: str
    start: int
    end: int
    strand: str = "+"
    name: str = ""


@dataclass
class Attr:
    hypothetical: np.ndarray
    actual: np.ndarray
    delta: np.ndarray
    residual: np.ndarray
    prediction: np.ndarray


def _fake(n: int, length: int, t: int, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, length))]
    hyp = rng.normal(size=(n, t, length, 4)).astype(np.float32)
    att = Attr(hyp, (hyp * x[:, None]).sum(-1), rng.normal(size=(n, t, k)).astype(np.float32),
               rng.normal(size=(n, t, k)).astype(np.float32),
               rng.normal(size=(n, t)).astype(np.float32))
    regions = [Reg("chr1", 10 * i, 10 * i + length, "+-"[i % 2], f"r{i}") for i in range(n)]
    return regions, x, att


def _sub(att: Attr, lo: int, hi: int) -> Attr:
    return Attr(*(getattr(att, f)[lo:hi] for f in Attr.__dataclass_fields__))


ATTRS = dict(dnalift_version="0", model_sha256="abc", mode="rescale", target_output="",
             tasks=["a", "b/c"], reference="shuffle", n_references=3, seed=0)


def _write(path, regions, x, att, batch=4, **extra):
    n, length = x.shape[:2]
    with W.HDF5Writer(path, n=n, length=length, tasks=["a", "b/c"], n_references=3,
                      attrs={**ATTRS, **extra}, chrom_sizes={"chr1": 1000, "chr2": 50},
                      batch_rows=batch) as w:
        for lo in range(0, n, batch):
            w.write(regions[lo:lo + batch], x[lo:lo + batch], _sub(att, lo, lo + batch))
    return path


def test_hdf5_layout_round_trip(tmp_path):
    regions, x, att = _fake(10, 12, 2, 3)
    path = _write(tmp_path / "s.h5", regions, x, att)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["input_seqs"][:], x)
        np.testing.assert_array_equal(f["hyp_scores"][:], att.hypothetical[:, 0])
        np.testing.assert_array_equal(f["tasks/b_c/hyp_scores"][:], att.hypothetical[:, 1])
        np.testing.assert_array_equal(f["contrib_scores"][:], att.actual[:, 0])
        np.testing.assert_array_equal(f["tasks/b_c/delta"][:], att.delta[:, 1])
        np.testing.assert_array_equal(f["tasks/a/residual"][:], att.residual[:, 0])
        np.testing.assert_array_equal(f["tasks/b_c/prediction"][:], att.prediction[:, 1])
        assert f["tasks/b_c"].attrs["label"] == "b/c"
        # root datasets are hard links to the first task, not copies
        assert f["hyp_scores"].id == f["tasks/a/hyp_scores"].id
        assert f["hyp_scores"].shape == (10, 12, 4) and f["hyp_scores"].chunks[0] == 4  # divides the batch
        assert f["hyp_scores"].compression == "gzip"
        assert list(f["coords/strand"].asstr()[:]) == [r.strand for r in regions]
        assert list(f["coords/start"][:]) == [r.start for r in regions]
        assert W.read_chrom_sizes(f) == {"chr1": 1000, "chr2": 50}
        attrs = W.read_attrs(f)
        assert attrs["tasks"] == ["a", "b/c"] and attrs["n_regions"] == 10
        assert attrs["task_keys"] == ["a", "b_c"]


def test_hdf5_float16_and_shrink_to_written(tmp_path):
    regions, x, att = _fake(5, 8, 2, 3)
    path = tmp_path / "h.h5"
    with W.HDF5Writer(path, n=100, length=8, tasks=["a", "b"], n_references=3, attrs=ATTRS,
                      float16=True) as w:
        w.write(regions, x, att)
    with h5py.File(path, "r") as f:
        assert f["hyp_scores"].dtype == np.float16 and f["input_seqs"].dtype == np.float16
        assert f["tasks/a/delta"].dtype == np.float32
        assert f["input_seqs"].shape == (5, 8, 4)
        np.testing.assert_array_equal(f["hyp_scores"][:],
                                      att.hypothetical[:, 0].astype(np.float16))


def test_failure_leaves_no_output(tmp_path):
    regions, x, att = _fake(6, 8, 2, 3)
    path = tmp_path / "s.h5"
    with pytest.raises(RuntimeError):
        with W.HDF5Writer(path, n=6, length=8, tasks=["a", "b"], n_references=3,
                          attrs=ATTRS) as w:
            w.write(regions[:3], x[:3], _sub(att, 0, 3))
            assert w.tmp.exists() and w.tmp.name.startswith(".")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError):  # wrong length: rejected, temp file removed by __exit__
        with W.HDF5Writer(path, n=6, length=9, tasks=["a", "b"], n_references=3,
                          attrs=ATTRS) as w:
            w.write(regions, x, att)
    assert list(tmp_path.iterdir()) == []


def test_merge_equals_unsharded(tmp_path):
    regions, x, att = _fake(11, 12, 2, 3)
    regions = [Reg("chr1", 5 * i, 5 * i + 12, r.strand, r.name) for i, r in enumerate(regions)]
    base = dict(n_total=11, shard_count=1, shard_index=1, shard_start=0, shard_stop=11,
                command_line="x")
    full = _write(tmp_path / "full.h5", regions, x, att, **base)
    W.bigwig_from_h5(full, tmp_path / "full.bw")
    bounds = [0, 3, 7, 11]
    shards = []
    for i in range(3):
        lo, hi = bounds[i], bounds[i + 1]
        shards.append(_write(tmp_path / f"s{i}.h5", regions[lo:hi], x[lo:hi],
                             _sub(att, lo, hi), n_total=11, shard_count=3, shard_index=i + 1,
                             shard_start=lo, shard_stop=hi, command_line="y"))
    W.merge_shards(shards[::-1], tmp_path / "m.h5", tmp_path / "m.bw")
    with h5py.File(full, "r") as a, h5py.File(tmp_path / "m.h5", "r") as b:
        for name in W.row_datasets(a) + ["hyp_scores", "contrib_scores"]:
            np.testing.assert_array_equal(a[name][:], b[name][:])
        assert b["hyp_scores"].id == b["tasks/a/hyp_scores"].id
        assert W.read_attrs(b)["shard_count"] == 1
        assert W.read_attrs(b)["merged_from"] == ["s0.h5", "s1.h5", "s2.h5"]
    bw1, bw2 = pyBigWig.open(str(tmp_path / "full.bw")), pyBigWig.open(str(tmp_path / "m.bw"))
    np.testing.assert_array_equal(bw1.values("chr1", 0, 62), bw2.values("chr1", 0, 62))
    with pytest.raises(InputError, match="missing"):
        W.merge_shards(shards[:2], tmp_path / "bad.h5")
    with pytest.raises(InputError, match="twice"):
        W.merge_shards(shards + shards[:1], tmp_path / "bad.h5")
    other = _write(tmp_path / "o.h5", regions[:3], x[:3], _sub(att, 0, 3), n_total=11,
                   shard_count=3, shard_index=1, shard_start=0, shard_stop=3,
                   command_line="z", seed=1)
    with pytest.raises(InputError, match="seed"):
        W.merge_shards([other] + shards[1:], tmp_path / "bad.h5")
    assert not (tmp_path / "bad.h5").exists()


def test_float16_rounds_to_nearest(tmp_path):
    # 0.015622852 rounds up into the next binade (0.015625); a conversion that does not carry
    # into the exponent stores 0.0078125
    regions, x, att = _fake(1, 4, 2, 3)
    att.hypothetical[:] = np.float32(0.015622852)
    with W.HDF5Writer(tmp_path / "h.h5", n=1, length=4, tasks=["a", "b"], n_references=3,
                      attrs=ATTRS, float16=True) as w:
        w.write(regions, x, att)
    with h5py.File(tmp_path / "h.h5", "r") as f:
        assert (f["hyp_scores"][:] == np.float16(0.015625)).all()


# --------------------------------------------------------------------------- lazy reader

def _record_reads(monkeypatch) -> list[tuple[str, object]]:
    """Record (dataset name, selection) of every h5py dataset read."""
    reads: list[tuple[str, object]] = []
    original = h5py.Dataset.__getitem__

    def spy(self, key, *args, **kwargs):
        reads.append((self.name, key))
        return original(self, key, *args, **kwargs)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    return reads


def test_score_file_reads_rows_on_demand(tmp_path, monkeypatch):
    regions, x, att = _fake(10, 12, 2, 3)
    _write(tmp_path / "s.h5", regions, x, att)
    reads = _record_reads(monkeypatch)
    with W.ScoreFile(tmp_path / "s.h5") as sf:
        assert (sf.n, sf.length, sf.tasks, sf.mode) == (10, 12, ["a", "b/c"], "rescale")
        opened = list(reads)
        assert all(not name.startswith(("/input_seqs", "/tasks", "/hyp", "/contrib"))
                   for name, _ in opened), opened  # opening reads no score array
        i = sf.index("r7")
        np.testing.assert_array_equal(sf.sequences(i), x[7])
        np.testing.assert_allclose(sf.actual(i, "b/c"), att.actual[7, 1], rtol=1e-6)
        np.testing.assert_allclose(sf.actual(slice(2, 4), all_tasks=True), att.actual[2:4],
                                   rtol=1e-6)
    row_reads = [(n, k) for n, k in reads[len(opened):] if n != "/coords/name"]
    assert row_reads[:2] == [("/input_seqs", 7), ("/tasks/b_c/contrib_scores", 7)]
    with W.ScoreFile(tmp_path / "s.h5") as sf:
        with pytest.raises(InputError, match="no sequence named nope"):
            sf.index("nope")
        with pytest.raises(InputError, match="no task 'z'"):
            sf.actual(0, "z")
        assert sf.task_index("b_c") == sf.task_index("b/c") == 1


def test_plot_of_one_sequence_reads_only_its_row(tmp_path, monkeypatch):
    from dnalift.plots import plot_sequence_from_h5
    regions, x, att = _fake(10, 12, 2, 3)
    _write(tmp_path / "s.h5", regions, x, att)
    reads = _record_reads(monkeypatch)
    plot_sequence_from_h5(tmp_path / "s.h5", "r3", tmp_path / "r3.png", task="a")
    scores = [(n, k) for n, k in reads if not n.startswith(("/coords", "/chrom_sizes"))]
    assert scores == [("/input_seqs", 3), ("/tasks/a/contrib_scores", 3)]
    assert (tmp_path / "r3.png").stat().st_size > 0


def test_job_attributes_round_trip(tmp_path):
    regions, x, att = _fake(4, 8, 2, 3)
    attrs = W.JobAttributes(mode="rescale", tasks=["a", "b/c"], reference="frequency",
                            n_references=1, n_total=4, shard_stop=4,
                            reference_freqs=[0.3, 0.2, 0.2, 0.3])
    with W.HDF5Writer(tmp_path / "j.h5", n=4, length=8, tasks=["a", "b/c"], n_references=3,
                      attrs=attrs) as w:
        w.write(regions, x, att)
    with h5py.File(tmp_path / "j.h5", "r") as f:
        got = W.read_attrs(f)
    assert got["reference"] == "frequency" and got["reference_freqs"] == [0.3, 0.2, 0.2, 0.3]
    assert got["input_seqs_order"] == "ACGT" and got["task_keys"] == ["a", "b_c"]
    assert set(W.JOB_ATTRS) <= set(got)
