"""Tests of dnalift.scoring: the streaming job against the engine's library API."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pyBigWig
import pytest

from dnalift import scorefile, scoring
from dnalift.fileio import file_sha256
from dnalift.references import ReferenceSpec
from dnalift.errors import InputError

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "data" / "simulated" / "model.h5"
TEST_FA = REPO / "data" / "simulated" / "test.fa"
L = 200  # input length of the shipped model
K = 2  # few shuffles keep the suite fast


#: float32 results of one sequence scored in batches of different composition (shards against
#: one run): max |a - b| / max |a| per dataset (residuals: relative to the largest delta).
#: Measured on AMD EPYC with three kernel sets: 0 (AVX-512 oneDNN), 1.4e-6 for ``output`` and
#: <= 2.9e-7 for the scores (ONEDNN_MAX_CPU_ISA=AVX2), 9.5e-7 / 1.9e-7
#: (TF_ENABLE_ONEDNN_OPTS=0). docs/scoring.md states this tolerance.
BATCH_TOL = 5e-6


def rel_diff(a: np.ndarray, b: np.ndarray, scale: float | None = None) -> float:
    """``max |a - b| / scale`` (default ``max |a|``; 0 for equal all-zero arrays)."""
    if not a.size:
        return 0.0
    scale = float(np.abs(a).max()) if scale is None else scale
    diff = float(np.abs(a.astype("float64") - b).max())
    return diff / scale if scale > 0 else diff


def assert_rows_close(a: h5py.File, b: h5py.File) -> None:
    """Every row dataset of two score files equal: floats within :data:`BATCH_TOL`."""
    for name in scorefile.row_datasets(a):
        x, y = a[name][:], b[name][:]
        if x.dtype.kind != "f":
            np.testing.assert_array_equal(x, y, err_msg=name)
            continue
        scale = None
        if name.endswith("residual"):
            scale = float(np.abs(a[name.rsplit("/", 1)[0] + "/delta"][:]).max())
        err = rel_diff(x, y, scale)
        if os.environ.get("DNALIFT_PRINT_TOL"):
            print(name, err)
        assert err <= BATCH_TOL, f"{name}: {err:.2e}"


def _records(path: Path, n: int) -> list[tuple[str, str]]:
    out, name, seq = [], None, []
    for line in path.read_text().splitlines():
        if line.startswith(">"):
            if name is not None:
                out.append((name, "".join(seq)))
                if len(out) == n:
                    return out
            name, seq = line[1:].split()[0], []
        else:
            seq.append(line.strip())
    out.append((name, "".join(seq)))
    return out[:n]


def write_fasta(path: Path, records) -> Path:
    path.write_text("".join(f">{n}\n{s}\n" for n, s in records))
    return path


@pytest.fixture(scope="module")
def small_fasta(tmp_path_factory) -> Path:
    return write_fasta(tmp_path_factory.mktemp("fa") / "small.fa", _records(TEST_FA, 7))


@pytest.fixture(scope="module")
def genome(tmp_path_factory) -> tuple[Path, Path]:
    """Random two-chromosome genome and a BED with a minus-strand region overlapping another."""
    d = tmp_path_factory.mktemp("genome")
    rng = np.random.default_rng(1)
    chroms = {"chrA": 1000, "chrB": 600}
    write_fasta(d / "g.fa", [(c, "".join(rng.choice(list("ACGT"), n))) for c, n in
                             chroms.items()])
    bed = d / "r.bed"
    bed.write_text("chrA\t100\t300\tr0\t0\t+\n"
                   "chrA\t250\t450\tr1\t0\t-\n"
                   "chrB\t50\t250\tr2\t0\t+\n"
                   "chrA\t700\t900\tr3\t0\t-\n"
                   "chrB\t300\t500\tr4\t0\t+\n")
    return d / "g.fa", bed


def expected(x: np.ndarray, tasks=None):
    """Scores of the same sequences/references through the engine's library API."""
    from dnalift import deeplift, references
    model = deeplift.load_model(MODEL)
    engine = deeplift.DeepLift(model, task_names=deeplift.read_sidecar_task_names(MODEL),
                               tasks=tasks)
    refs = references.make_references("shuffle", x, k=K, seed=0)
    return engine, engine.attribute(x, refs)


def test_score_fasta_matches_engine(small_fasta, tmp_path):
    seen = []
    inputs = scoring.open_inputs(fasta=small_fasta)
    assert (inputs.n, inputs.n_total) == (7, 7)
    summary = scoring.score(str(MODEL), inputs, tmp_path / 's.h5', reference=ReferenceSpec(k=K),
                            engine=scoring.EngineSpec(batch_size=3 * K), progress=lambda d,
                            t: seen.append((d, t)))
    assert seen == [(3, 7), (6, 7), (7, 7)]
    assert summary.n_regions == 7 and summary.tasks == ["both", "gata", "tal"]
    from dnalift.sequences import one_hot_encode
    x = one_hot_encode([s for _, s in _records(TEST_FA, 7)])
    engine, att = expected(x)
    with h5py.File(tmp_path / "s.h5", "r") as f:
        np.testing.assert_array_equal(f["input_seqs"][:], x)
        for t, label in enumerate(["both", "gata", "tal"]):
            g = f[f"tasks/{label}"]
            np.testing.assert_allclose(g["hyp_scores"][:], att.hypothetical[:, t],
                                       rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(g["contrib_scores"][:], att.actual[:, t],
                                       rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(g["delta"][:], att.delta[:, t], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(g["residual"][:], att.residual[:, t], atol=1e-5)
            np.testing.assert_allclose(g["prediction"][:], att.prediction[:, t], rtol=1e-5,
                                       atol=1e-6)
        assert f["hyp_scores"].id == f["tasks/both/hyp_scores"].id
        a = scorefile.read_attrs(f)
        assert a["model_sha256"] == file_sha256(MODEL)
        assert (a["mode"], a["reference"], a["n_references"], a["seed"]) == \
            ("genomics_default", "shuffle", K, 0)
        assert a["tasks"] == ["both", "gata", "tal"] and a["n_total"] == 7
        assert list(f["coords/name"].asstr()[:]) == [n for n, _ in _records(TEST_FA, 7)]
        assert list(f["coords/end"][:]) == [L] * 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]


def test_task_selection_by_name_and_index(small_fasta, tmp_path):
    scoring.score(str(MODEL), scoring.open_inputs(fasta=small_fasta), tmp_path / 't.h5',
                  reference=ReferenceSpec(k=K), engine=scoring.EngineSpec(tasks=['tal', '1']))
    with h5py.File(tmp_path / "t.h5", "r") as f:
        assert scorefile.read_attrs(f)["tasks"] == ["tal", "gata"]
        tal = f["hyp_scores"][:]
    with h5py.File(tmp_path / "t.h5", "r") as f:
        assert f["hyp_scores"].id == f["tasks/tal/hyp_scores"].id
    from dnalift.sequences import one_hot_encode
    _, att = expected(one_hot_encode([s for _, s in _records(TEST_FA, 7)]), tasks=[2])
    np.testing.assert_allclose(tal, att.hypothetical[:, 0], rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="nope"):
        scoring.score(str(MODEL), scoring.open_inputs(fasta=small_fasta), tmp_path / 'u.h5',
                      reference=ReferenceSpec(k=K), engine=scoring.EngineSpec(tasks=['nope']))
    assert not (tmp_path / "u.h5").exists()


def test_bed_bigwig_minus_strand_and_overlap(genome, tmp_path):
    fa, bed = genome
    summary = scoring.score(str(MODEL), scoring.open_inputs(bed=bed, genome=fa),
                            scoring.OutputSpec(tmp_path / 'b.h5', bigwig=tmp_path / 'b.bw'),
                            reference=ReferenceSpec(k=K),
                            engine=scoring.EngineSpec(batch_size=2 * K))
    assert summary.n_regions == 5
    from dnalift.sequences import fetch_regions, one_hot_encode, read_bed
    seqs = [s for _, s in fetch_regions(fa, read_bed(bed))]
    x = one_hot_encode(seqs)
    _, att = expected(x)
    with h5py.File(tmp_path / "b.h5", "r") as f:
        np.testing.assert_array_equal(f["input_seqs"][:], x)
        contrib = f["contrib_scores"][:]
        np.testing.assert_allclose(contrib, att.actual[:, 0], rtol=1e-5, atol=1e-6)
        assert list(f["coords/strand"].asstr()[:]) == ["+", "-", "+", "-", "+"]
        assert scorefile.read_chrom_sizes(f) == {"chrA": 1000, "chrB": 600}
    bw = pyBigWig.open(str(tmp_path / "b.bw"))
    assert bw.chroms() == {"chrA": 1000, "chrB": 600}
    v = np.array(bw.values("chrA", 0, 1000))
    # r0 [100,300) centre 200, r1 [250,450) '-' centre 350: base 274 (midpoint 274.5, 74.5
    # from r0's centre, 75.5 from r1's) -> r0; base 275 (75.5 vs 74.5) -> r1
    np.testing.assert_array_equal(v[100:275], contrib[0][0:175].astype(np.float64))
    # r1 is minus strand: genome base 250 + j holds model position 199 - j
    np.testing.assert_array_equal(v[275:450], contrib[1][::-1][25:200].astype(np.float64))
    np.testing.assert_array_equal(v[700:900], contrib[3][::-1].astype(np.float64))
    assert np.isnan(v[:100]).all() and np.isnan(v[450:700]).all()
    np.testing.assert_array_equal(bw.values("chrB", 50, 250), contrib[2])
    np.testing.assert_array_equal(bw.values("chrB", 300, 500), contrib[4])
    bw.close()


def test_shards_merge_to_the_unsharded_run(genome, tmp_path):
    fa, bed = genome
    opts = dict(reference=ReferenceSpec(k=K), engine=scoring.EngineSpec(batch_size=2 * K))
    scoring.score(str(MODEL), scoring.open_inputs(bed=bed, genome=fa),
                  scoring.OutputSpec(tmp_path / 'u.h5', bigwig=tmp_path / 'u.bw'), **opts)
    parts = []
    for i in (1, 2, 3):
        inputs = scoring.open_inputs(bed=bed, genome=fa, shard=(i, 3))
        assert (inputs.start, inputs.stop) == [(0, 1), (1, 3), (3, 5)][i - 1]
        parts.append(scoring.score(str(MODEL), inputs, tmp_path / f'p{i}.h5', **opts).output)
    scorefile.merge_shards(parts, tmp_path / "m.h5", tmp_path / "m.bw")
    with h5py.File(tmp_path / "u.h5", "r") as a, h5py.File(tmp_path / "m.h5", "r") as b:
        assert_rows_close(a, b)
    u, m = pyBigWig.open(str(tmp_path / "u.bw")), pyBigWig.open(str(tmp_path / "m.bw"))
    for chrom, size in u.chroms().items():
        ub, mb = (np.nan_to_num(np.array(t.values(chrom, 0, size))) for t in (u, m))
        assert rel_diff(ub, mb) <= BATCH_TOL


def test_rerun_is_a_noop_and_failure_leaves_nothing(small_fasta, tmp_path):
    out = tmp_path / "r.h5"
    scoring.score(str(MODEL), scoring.open_inputs(fasta=small_fasta), out,
                  reference=ReferenceSpec(k=K))
    stamp = out.stat().st_mtime_ns
    again = scoring.score(str(MODEL), scoring.open_inputs(fasta=small_fasta), out,
                          reference=ReferenceSpec(k=K))
    assert again.skipped and out.stat().st_mtime_ns == stamp
    # a missing bigWig is made from the finished HDF5 file without rescoring
    again = scoring.score(str(MODEL), scoring.open_inputs(fasta=small_fasta),
                          scoring.OutputSpec(out, bigwig=tmp_path / 'r.bw'),
                          reference=ReferenceSpec(k=K))
    assert again.skipped and out.stat().st_mtime_ns == stamp
    bw = pyBigWig.open(str(tmp_path / "r.bw"))
    with h5py.File(out, "r") as f:
        name0 = f["coords/chrom"].asstr()[0]
        np.testing.assert_array_equal(bw.values(name0, 0, L), f["contrib_scores"][0])
    bw.close()

    def fail_after_first_batch(done, total):
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of a job
    with pytest.raises(KeyboardInterrupt):
        scoring.score(str(MODEL), scoring.open_inputs(fasta=small_fasta),
                      scoring.OutputSpec(tmp_path / 'k.h5', bigwig=tmp_path / 'k.bw', force=True),
                      reference=ReferenceSpec(k=K), engine=scoring.EngineSpec(batch_size=2 * K),
                      progress=fail_after_first_batch)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.bw", "r.h5"]


def test_float16_storage(small_fasta, tmp_path):
    scoring.score(str(MODEL), scoring.open_inputs(fasta=small_fasta),
                  scoring.OutputSpec(tmp_path / 'h.h5', float16=True),
                  reference=ReferenceSpec(k=K))
    scoring.score(str(MODEL), scoring.open_inputs(fasta=small_fasta), tmp_path / 'f.h5',
                  reference=ReferenceSpec(k=K))
    with h5py.File(tmp_path / "h.h5", "r") as h, h5py.File(tmp_path / "f.h5", "r") as f:
        assert h["hyp_scores"].dtype == np.float16 and h["input_seqs"].dtype == np.float16
        np.testing.assert_array_equal(h["hyp_scores"][:], f["hyp_scores"][:].astype(np.float16))
        assert h.attrs["score_dtype"] == "float16"


@pytest.mark.parametrize("text, ok", [("1/3", (1, 3)), ("3/3", (3, 3)), ("0/3", None),
                                      ("4/3", None), ("1/0", None), ("a/3", None),
                                      ("2", None)])
def test_parse_shard(text, ok):
    if ok is None:
        with pytest.raises(InputError, match="--shard"):
            scoring.parse_shard(text)
    else:
        assert scoring.parse_shard(text) == ok


def test_shard_bounds_tile_the_input():
    for n_total in (0, 1, 7, 100):
        for n in (1, 3, 8):
            bounds = [scoring.shard_bounds(n_total, (i, n)) for i in range(1, n + 1)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n_total
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            sizes = [hi - lo for lo, hi in bounds]
            assert max(sizes) - min(sizes) <= 1


def test_a_job_plans_tracing_and_fusion_from_its_own_size():
    # regions x references x strands: the engine alone would decide from its first call,
    # one batch of a long job (break-even of the shipped model: ~41,600 pairs, 4 fused rules
    # of 3200, 3200, 3200 and 32 elements per pair; eager up to 4 batches of 256 pairs and
    # 1e7 rule elements, ~1,038 pairs)
    from dnalift.deeplift import load_model
    from dnalift.ensemble import CombinedEngine
    model = load_model(MODEL)

    def planned(n_regions, reference=ReferenceSpec(k=10), strands="forward", **kw):
        engine = scoring.EngineSpec(strands=strands, **kw).build(model)
        assert engine._net.fused_elements(engine._net.forward(
            np.zeros((1, 200, 4), "float32"))) == [3200, 3200, 3200, 32]
        scoring._plan_compilation(CombinedEngine([engine], strands=strands), reference,
                                  n_regions)
        return engine.fuse, engine.trace
    assert planned(4_100) == (False, True) and planned(4_200) == (True, True)
    assert planned(2_100, strands="both") == (True, True)
    assert planned(2_000, strands="both") == (False, True)
    assert planned(41_000, ReferenceSpec("gc")) == (False, True)  # one reference per region
    assert planned(0) == (True, True)  # a stream of unknown length
    assert planned(10**6, options={"fuse": False}) == (False, True)
    assert planned(100) == (False, False)  # 1,000 pairs, 4 batches: eager
    assert planned(52, strands="both") == (False, True)  # 1,040 pairs, 5 batches
    assert planned(100, options={"trace": True}) == (False, True)
