"""Targets beyond one logit column: profile, counts, callables, several heads in one pass.

Place in the data flow: references -> engine (``dnalift.engine.targets`` through
``DeepLift(target=...)``) -> scoring (one score file per head). Models are the small
random-weight ChromBPNet / BPNet (basepairmodels) rebuilds of ``tests/zoo.py``, in float64.

The profile target is checked independently of its implementation: its contributions must
equal the softmax-weighted, mean-centred combination ``sum_i w_i (c_i - mean_j c_j)`` of the
per-position contributions ``c_i`` of the plain logit columns (``LogitTarget``, same
references), with ``w`` the softmax at x of Keras' own float64 forward pass.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras import ops  # noqa: E402

from dnalift.deeplift import DeepLift  # noqa: E402
from dnalift.engine.targets import TargetSpec  # noqa: E402
from dnalift.errors import InputError  # noqa: E402
from dnalift.references import make_references  # noqa: E402

import zoo  # noqa: E402

N, K = 3, 3
#: |residual| / max(1, |delta|) allowed in float64.
RESIDUAL_TOL = 1e-9
#: Agreement of two float64 computations of the same contributions.
CLOSE = dict(rtol=1e-7, atol=1e-9)
FIELDS = ("hypothetical", "actual", "delta", "residual", "prediction")


@pytest.fixture(scope="module")
def bpnet():
    """basepairmodels BPNet: ``profile`` (20, 2) logits, ``logcounts`` (2,)."""
    return zoo.bpnet_basepairmodels(seq_len=160, out_len=20, profile_kernel_size=25, seed=3)


@pytest.fixture(scope="module")
def chrombpnet():
    """ChromBPNet: ``profile`` (20,) logits, ``logcounts`` (1,)."""
    return zoo.chrombpnet(seq_len=160, out_len=20, profile_kernel_size=25, seed=4)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    x = np.eye(4)[rng.integers(0, 4, (N, 160))]
    return x, make_references("shuffle", x, k=K, seed=1).astype("float64")


def _attribute(model, data, **kw):
    engine = DeepLift(model, dtype="float64", **kw)
    return engine, engine.attribute(*data)


def _assert_sums(att) -> None:
    rel = np.abs(att.residual) / np.maximum(1.0, np.abs(att.delta))
    assert rel.max() < RESIDUAL_TOL
    assert np.abs(att.delta).max() > 1e-3  # a real difference was explained


def _softmax(a: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _combine(arr: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``sum_i w_i (c_i - mean_j c_j)`` over axis 1 of ``arr`` ``(N, L_out, ...)`` with
    weights ``w`` ``(N, L_out)``."""
    centred = arr - arr.mean(axis=1, keepdims=True)
    return np.einsum("nl,nl...->n...", w, centred)


def _per_channel(model, data, mode: str, **kw):
    """Logit-column Attribution of the profile output, arrays ``(N, L_out, C, ...)``, and
    the softmax weights ``(N, L_out, C)`` at x from Keras' float64 forward pass."""
    _, att = _attribute(model, data, output="profile", mode=mode, **kw)
    c = model.get_layer("profile").output.shape[-1] if \
        len(model.get_layer("profile").output.shape) == 3 else 1
    split = {f: getattr(att, f).reshape((N, -1, c) + getattr(att, f).shape[2:])
             for f in FIELDS}
    logits = zoo.keras_target(model, data[0], "profile").reshape(N, -1, c)
    return split, _softmax(logits, axis=1)


# --------------------------------------------------------------------------- profile
@pytest.mark.parametrize("mode,kw", [("genomics_default", {}), ("rescale", {}),
                                     ("gradient_x_input", {}),
                                     ("integrated_gradients", {"steps": 3})])
def test_profile_equals_weighted_centred_logit_contributions(bpnet, data, mode, kw):
    cols, w = _per_channel(bpnet, data, mode, **kw)
    for channels in ("each", "sum"):
        engine, att = _attribute(bpnet, data, target=TargetSpec("profile", channels=channels),
                                 mode=mode, **kw)
        for f in ("hypothetical", "actual", "delta"):
            # (N, C, ...) per channel; the columns of the target are the channels
            want = np.stack([_combine(cols[f][:, :, c], w[:, :, c]) for c in range(2)], 1)
            if channels == "sum":
                want = want.sum(axis=1, keepdims=True)
            np.testing.assert_allclose(getattr(att, f), want, **CLOSE, err_msg=f)
        assert att.output is None
    assert engine.task_labels == ["profile"] and engine.output_name == "profile"


def test_profile_sums_to_delta_and_prediction_matches_keras(bpnet, chrombpnet, data):
    for model, c in ((bpnet, 2), (chrombpnet, 1)):
        engine, att = _attribute(model, data, target="profile")
        _assert_sums(att)
        logits = zoo.keras_target(model, data[0], "profile").reshape(N, -1, c)
        w = _softmax(logits, 1)
        want = sum(_combine(logits[:, :, j], w[:, :, j]) for j in range(c))
        np.testing.assert_allclose(att.prediction[:, 0], want, **CLOSE)


def test_profile_channels_each_vs_sum_vs_joint(bpnet, data):
    _, each = _attribute(bpnet, data, target=TargetSpec("profile", channels="each"))
    engine, total = _attribute(bpnet, data, target=TargetSpec("profile", channels="sum"))
    _assert_sums(each)
    for f in FIELDS:
        np.testing.assert_allclose(getattr(each, f).sum(axis=1), getattr(total, f)[:, 0],
                                   **CLOSE, err_msg=f)
    # joint: one softmax over all L_out x C logits (bpnet-lite, basepairmodels' default)
    cols, _ = _per_channel(bpnet, data, "genomics_default")
    flat = zoo.keras_target(bpnet, data[0], "profile")          # (N, L_out * C), l-major
    _, joint = _attribute(bpnet, data, target=TargetSpec("profile", channels="joint"))
    _assert_sums(joint)
    w = _softmax(flat, 1)
    want = _combine(cols["actual"].reshape(N, -1, 160), w)
    np.testing.assert_allclose(joint.actual[:, 0], want, **CLOSE)
    assert not np.allclose(joint.actual, total.actual, rtol=1e-3)


def test_profile_chrombpnet_single_channel_modes_agree(chrombpnet, data):
    atts = [_attribute(chrombpnet, data, target=TargetSpec("profile", channels=ch))[1]
            for ch in ("sum", "each", "joint")]
    for other in atts[1:]:
        for f in FIELDS:
            np.testing.assert_allclose(getattr(other, f), getattr(atts[0], f), **CLOSE)


# --------------------------------------------------------------------------- counts
def test_counts_single_strand_equals_logit_column(chrombpnet, data):
    for combine in ("sum", "logsumexp"):
        engine, att = _attribute(chrombpnet, data, target=TargetSpec("counts", combine=combine))
        assert engine.output_name == "logcounts" and engine.task_labels == ["counts"]
        _, ref = _attribute(chrombpnet, data, output="logcounts")
        _assert_sums(att)
        for f in FIELDS:
            np.testing.assert_allclose(getattr(att, f), getattr(ref, f), **CLOSE, err_msg=f)


def test_counts_two_strands(bpnet, data):
    _, cols = _attribute(bpnet, data, output="logcounts")          # (N, 2, ...)
    _, summed = _attribute(bpnet, data, target="counts")
    _assert_sums(summed)
    for f in FIELDS:
        np.testing.assert_allclose(getattr(summed, f)[:, 0], getattr(cols, f).sum(axis=1),
                                   **CLOSE, err_msg=f)
    # log of the summed counts: Rescale through exp -> sum -> log sums to the exact delta
    _, lse = _attribute(bpnet, data, target=TargetSpec("counts", combine="logsumexp"))
    _assert_sums(lse)
    x, refs = data
    tx, _ = zoo.keras_delta(bpnet, x, refs, "logcounts")
    tr = zoo.keras_target(bpnet, refs.reshape((N * K,) + x.shape[1:]), "logcounts")
    lse_x = np.logaddexp(tx[:, 0], tx[:, 1])
    lse_r = np.logaddexp(tr[:, 0], tr[:, 1]).reshape(N, K)
    np.testing.assert_allclose(lse.prediction[:, 0], lse_x, **CLOSE)
    np.testing.assert_allclose(lse.delta[:, 0], lse_x[:, None] - lse_r, **CLOSE)
    assert not np.allclose(lse.actual, summed.actual, rtol=1e-3)


# --------------------------------------------------------------------------- callables, lists
def test_user_callable_target(bpnet, data):
    def weighted_plus_counts(vals, at_x):
        """Column 0: softmax(x)-weighted profile logits of strand 0 (not centred);
        column 1: 2 x the log counts of strand 1."""
        w = ops.softmax(at_x["profile"][:, :, 0], axis=1)
        return ops.stack([ops.sum(w * vals["profile"][:, :, 0], axis=1),
                          2.0 * vals["logcounts"][:, 1]], axis=1)

    engine, att = _attribute(bpnet, data, target=weighted_plus_counts,
                             task_names=["prof0", "counts1"])
    assert engine.task_labels == ["prof0", "counts1"] and att.output is None
    _assert_sums(att)
    cols, w = _per_channel(bpnet, data, "genomics_default")
    _, counts = _attribute(bpnet, data, output="logcounts")
    np.testing.assert_allclose(
        att.actual[:, 0], np.einsum("nl,nl...->n...", w[:, :, 0], cols["actual"][:, :, 0]),
        **CLOSE)
    np.testing.assert_allclose(att.actual[:, 1], 2 * counts.actual[:, 1], **CLOSE)
    assert DeepLift(bpnet, target=weighted_plus_counts).task_labels == ["0", "1"]


def test_two_heads_in_one_pass_equal_separate_runs(bpnet, data):
    engine, both = _attribute(bpnet, data, target=["profile", "counts"])
    assert [h.name for h in engine.heads] == ["profile", "counts"]
    assert [h.description["output"] for h in engine.heads] == ["profile", "logcounts"]
    for head, kind in zip(engine.heads, ("profile", "counts")):
        _, alone = _attribute(bpnet, data, target=kind)
        part = both.take(head.columns)
        for f in FIELDS:
            np.testing.assert_allclose(getattr(part, f), getattr(alone, f), **CLOSE)


def test_target_errors(bpnet, chrombpnet):
    with pytest.raises(InputError, match="unknown target 'shape'"):
        TargetSpec("shape")
    with pytest.raises(InputError, match="unknown profile channels"):
        TargetSpec("profile", channels="mean")
    with pytest.raises(InputError, match="leave --task out"):
        DeepLift(bpnet, target="profile", tasks=[0])
    with pytest.raises(InputError, match="choose one with output="):
        DeepLift(bpnet)                                     # logit of a two-output model
    with pytest.raises(InputError, match="no output 'nope'"):
        DeepLift(bpnet, target=TargetSpec("counts", output="nope"))
    with pytest.raises(InputError, match="names must differ"):
        DeepLift(bpnet, target=["counts", TargetSpec("counts", combine="logsumexp")])
    inp = keras.Input((50, 4))
    flat = keras.layers.Flatten()(inp)
    two = keras.Model(inp, [keras.layers.Dense(30, name="a")(flat),
                            keras.layers.Dense(40, name="b")(flat)])
    with pytest.raises(InputError, match="cannot tell which output is the profile head"):
        DeepLift(two, target="profile")
    assert DeepLift(two, target=TargetSpec("profile", output="b")).output_name == "b"
    # the sidecar's task names do not apply to profile / counts targets
    assert DeepLift(chrombpnet, target="counts", task_names=["x"] * 20).task_names is None


# --------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def cli_files(tmp_path_factory, bpnet):
    """The basepairmodels BPNet as a .keras file and a FASTA of 4 sequences of its length."""
    d = tmp_path_factory.mktemp("cli")
    bpnet.save(d / "bpnet.keras")
    rng = np.random.default_rng(11)
    (d / "s.fa").write_text("".join(f">s{i}\n{''.join(rng.choice(list('ACGT'), 160))}\n"
                                    for i in range(4)))
    return d / "bpnet.keras", d / "s.fa"


def _score(*args):
    from click.testing import CliRunner
    from dnalift.cli.main import cli
    return CliRunner().invoke(cli, ["score", "--shuffles", "2", "-q", *map(str, args)],
                              catch_exceptions=False)


def test_cli_two_heads_one_run_equal_single_target_runs(cli_files, tmp_path):
    import h5py
    from dnalift.scorefile import ScoreFile, read_attrs
    model, fasta = cli_files
    res = _score("--model", model, "--fasta", fasta, "--target", "profile", "--target",
                 "counts", "-o", tmp_path / "s.h5", "--bigwig", tmp_path / "s.bw")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "s.counts.bw", "s.counts.h5", "s.profile.bw", "s.profile.h5"]
    for head, output in (("profile", "profile"), ("counts", "logcounts")):
        res = _score("--model", model, "--fasta", fasta, "--target", head, "--output-name",
                     output, "-o", tmp_path / f"{head}_alone.h5")
        assert res.exit_code == 0, res.output
        with h5py.File(tmp_path / f"s.{head}.h5", "r") as both, \
                h5py.File(tmp_path / f"{head}_alone.h5", "r") as alone:
            assert "hyp_scores" in both and "input_seqs" in both   # TF-MoDISco / Fi-NeMo
            assert both["hyp_scores"].shape == (4, 160, 4)
            for name in ("hyp_scores", "contrib_scores", "input_seqs", f"tasks/{head}/delta",
                         f"tasks/{head}/residual", f"tasks/{head}/prediction"):
                np.testing.assert_allclose(both[name][:], alone[name][:], rtol=1e-5,
                                           atol=1e-6, err_msg=name)
            attrs = read_attrs(both)
            assert attrs["target_output"] == output
            assert json.loads(attrs["target"])["kind"] == head
            assert json.loads(attrs["target"])["output"] == output
        with ScoreFile(tmp_path / f"s.{head}.h5") as sf:
            assert sf.tasks == [head] and sf.n == 4
            assert np.abs(sf.actual(slice(None), head)).max() > 0


def test_cli_target_options_and_errors(cli_files, tmp_path):
    import h5py
    model, fasta = cli_files
    res = _score("--model", model, "--fasta", fasta, "--target", "profile",
                 "--profile-channels", "each", "-o", tmp_path / "e.h5")
    assert res.exit_code == 0, res.output
    with h5py.File(tmp_path / "e.h5", "r") as f:
        assert sorted(f["tasks"]) == ["profile.0", "profile.1"]
        assert json.loads(f.attrs["target"])["channels"] == "each"
    for args, needle in ((["--target", "profile", "--target", "counts", "--output-name",
                           "profile"], "one --output-name per --target"),
                         (["--target", "profile", "--task", "0"], "leave --task out"),
                         ([], "choose one with output=")):
        res = _score("--model", model, "--fasta", fasta, "-o", tmp_path / "x.h5", *args)
        assert res.exit_code == 2 and needle in res.stderr, res.output
        assert not (tmp_path / "x.h5").exists()
