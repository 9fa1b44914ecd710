"""Targets beyond one logit column: profile, counts, callables, several heads in one pass.

Place in the data flow: references -> engine (``dnalift.engine.targets`` through
``DeepLift(target=...)``) -> scoring (one score file per head). Models are the small
random-weight ChromBPNet / BPNet (basepairmodels) rebuilds of ``tests/zoo.py``, in float64.

The profile target is checked independently of its implementation: its contributions must
equal the softmax-weighted, mean-centred combination ``sum_i w_i (c_i - mean_j c_j)`` of the
per-position contributions ``c_i`` of the plain logit columns (``LogitTarget``, same
references), with ``w`` the softmax at x of Keras' own float64 forward pass. Its other weights conventions
(``TargetSpec(weights="chrombpnet" | "bpnet-lite")``) are checked on a hand-derived worked
example, against the same combination with per-pair weights, and against numpy mirrors of
the explainers that define them (kundajelab/shap DeepSHAP on ChromBPNet's profile graph,
tangermeme's Rescale through bpnet-lite's ``_ProfileLogitScaling``).
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


@pytest.fixture(scope="module")
def data1(data):
    """The sequences with only their first reference (K = 1): per-pair weights."""
    return data[0], data[1][:, :1]


#: Tests that compare a target with the logit-column scores of the profile output. Each
#: column is a task of its own (one backward pass each: 20-40 per model), the slowest part
#: of these tests; :func:`columns` computes each (model, data, mode) once per module and
#: worker, and the group keeps these tests on one xdist worker (``--dist loadgroup``).
PROFILE_COLUMNS = pytest.mark.xdist_group("test_targets_profile_columns")


@pytest.fixture(scope="module")
def columns():
    """``columns(model, data, mode, **kw)``: the logit-column Attribution of ``model``'s
    profile output (``output="profile"``, float64), each computed once per module. ``model``
    and ``data`` must be module fixtures (they are keyed by identity)."""
    done: dict = {}

    def get(model, data, mode: str, **kw):
        key = (id(model), id(data), mode, tuple(sorted(kw.items())))
        if key not in done:
            done[key] = _attribute(model, data, output="profile", mode=mode, **kw)[1]
        return done[key]
    return get


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


def _per_channel(columns, model, data, mode: str, **kw):
    """Logit-column Attribution of the profile output (from the :func:`columns` fixture),
    arrays ``(N, L_out, C, ...)``, and the softmax weights ``(N, L_out, C)`` at x from Keras'
    float64 forward pass."""
    att = columns(model, data, mode, **kw)
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
@PROFILE_COLUMNS
def test_profile_equals_weighted_centred_logit_contributions(bpnet, data, columns, mode, kw):
    cols, w = _per_channel(columns, bpnet, data, mode, **kw)
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


@PROFILE_COLUMNS
def test_profile_channels_each_vs_sum_vs_joint(bpnet, data, columns):
    _, each = _attribute(bpnet, data, target=TargetSpec("profile", channels="each"))
    engine, total = _attribute(bpnet, data, target=TargetSpec("profile", channels="sum"))
    _assert_sums(each)
    for f in FIELDS:
        np.testing.assert_allclose(getattr(each, f).sum(axis=1), getattr(total, f)[:, 0],
                                   **CLOSE, err_msg=f)
    # joint: one softmax over all L_out x C logits (bpnet-lite, basepairmodels' default)
    cols, _ = _per_channel(columns, bpnet, data, "genomics_default")
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
@PROFILE_COLUMNS
def test_user_callable_target(bpnet, data, columns):
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
    cols, w = _per_channel(columns, bpnet, data, "genomics_default")
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


# --------------------------------------------------------------------------- profile weights
# The three conventions of the field (docs/concepts/targets.md; ProfileTarget). Per pair (x, r), with
# mn = l - mean(l) and p = softmax(l), each explains sum_i w_i Δmn_i:
#   dnalift     w = p(x)
#   chrombpnet  w = (p(x) + p(r)) / 2    (kundajelab/shap deep_tf.py: Mul of two varying
#               inputs -> nonlinearity_2d_handler; the softmax branch dies at StopGradient)
#   bpnet-lite  w_i = Δ(mn_i p_i) / Δmn_i  (tangermeme _nonlinear on _ProfileLogitScaling)
WEIGHTS = ("dnalift", "chrombpnet", "bpnet-lite")


def _identity_profile_model(n_pos: int = 3):
    """A model whose profile logits are its input: ``(n_pos, 1)`` -> Flatten -> ``(n_pos,)``;
    the per-position contributions are then those of the logits themselves."""
    inp = keras.Input((n_pos, 1))
    return keras.Model(inp, keras.layers.Flatten(name="profile")(inp))


# Worked example, a = ln 2: l(x) = (a, 2a, 0), l(r) = (0, 0, a).
#   p(x) = (2, 4, 1)/7, p(r) = (1, 1, 2)/4; mn(x) = (0, a, -a), mn(r) = (-a, -a, 2a)/3;
#   Δl = (a, 2a, -a), Δmn = (a, 4a, -5a)/3. Logit j's multiplier is w_j - mean(w) (the
#   mean-centring), its contribution (w_j - mean w) Δl_j; they sum to sum_i w_i Δmn_i.
#   dnalift:    w = (2, 4, 1)/7, mean 1/3: multipliers (-1, 5, -4)/21,
#               contributions (-a, 10a, 4a)/21 = (-16, 160, 64) a/336; sum 13a/21 = 208a/336
#               (= T_x(x) - T_x(r) = 3a/7 - (-4a/21)).
#   chrombpnet: w = ((2,4,1)/7 + (1,1,2)/4)/2 = (15, 23, 18)/56, multipliers (-11, 13, -2)/168,
#               contributions (-11a, 26a, 2a)/168 = (-22, 52, 4) a/336; sum 17a/168 = 34a/336.
#               G(x) - G(r) = 3a/7 - a/6 = 88a/336; the stop-gradient term
#               ½ sum_i Δp_i (mn_i(x) + mn_i(r)) = ½ (1, 9, -10)/28 · (-a, 2a, -a)/3
#               = 9a/56 = 54a/336 makes up the rest (34 + 54 = 88).
#   bpnet-lite: y = mn p: y(x) = (0, 4a/7, -a/7), y(r) = (-a/12, -a/12, a/3);
#               Δy = (a/12, 55a/84, -10a/21), w = Δy/Δmn = (1/4, 55/112, 2/7) = (84, 165, 96)/336,
#               mean 115/336: multipliers (-31, 50, -19)/336, contributions
#               (-31, 100, 19) a/336; sum 88a/336 = 11a/42 = G(x) - G(r).
#   All: prediction sum_i p_i(x) mn_i(x) = 3a/7 = 144a/336.
WORKED = {"dnalift": ((-16, 160, 64), 208), "chrombpnet": ((-22, 52, 4), 34),
          "bpnet-lite": ((-31, 100, 19), 88)}


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("mode", ["rescale", "genomics_default"])
def test_profile_weights_worked_example(weights, mode):
    a = np.log(2.0)
    x = np.array([[a, 2 * a, 0.0]])[..., None]                  # (N=1, L=3, 1)
    refs = np.array([[0.0, 0.0, a]])[:, None, :, None]          # (N=1, K=1, L=3, 1)
    engine = DeepLift(_identity_profile_model(), target=TargetSpec("profile", weights=weights),
                      dtype="float64", mode=mode)
    att = engine.attribute(x, refs)
    contributions, delta = WORKED[weights]
    np.testing.assert_allclose(att.actual[0, 0], np.array(contributions) * a / 336, rtol=1e-12)
    np.testing.assert_allclose(att.delta[0, 0, 0], delta * a / 336, rtol=1e-12)
    np.testing.assert_allclose(att.prediction[0, 0], 144 * a / 336, rtol=1e-12)
    assert abs(att.residual[0, 0, 0]) < 1e-15
    # the reverse pair swaps the roles of x and r: dnalift and chrombpnet weights change,
    # bpnet-lite's secant does not (its delta is -88a/336)
    back = engine.attribute(refs[:, 0], x[:, None])
    if weights == "bpnet-lite":
        np.testing.assert_allclose(back.actual[0, 0], -np.array(contributions) * a / 336,
                                   rtol=1e-12)
    assert abs(back.residual[0, 0, 0]) < 1e-15


def _pair_logits(model, x, refs, c: int):
    """Keras float64 profile logits at x ``(N, L_out, C)`` and at each reference
    ``(N, K, L_out, C)``."""
    n, k = refs.shape[:2]
    lx = zoo.keras_target(model, x, "profile").reshape(n, -1, c)
    lr = zoo.keras_target(model, refs.reshape((n * k,) + x.shape[1:]), "profile")
    return lx, lr.reshape(n, k, -1, c)


def _centre(a: np.ndarray, axis: int) -> np.ndarray:
    return a - a.mean(axis=axis, keepdims=True)


def _secant(lx: np.ndarray, lr: np.ndarray, axis: int) -> np.ndarray:
    """bpnet-lite's per-position multiplier Δ(mn p) / Δmn (numpy; no Δmn ~ 0 here)."""
    mx, mr = _centre(lx, axis), _centre(lr, axis)
    dy = mx * _softmax(lx, axis) - mr * _softmax(lr, axis)
    return dy / (mx - mr)


@pytest.mark.parametrize("weights", WEIGHTS)
@PROFILE_COLUMNS
def test_profile_weights_equal_weighted_logit_contributions(bpnet, chrombpnet, data1, columns,
                                                            weights):
    """One reference: each convention's scores are the per-pair weighted, mean-centred
    combination of the logit-column scores (weights from Keras' float64 logits)."""
    for model, c, channels in ((chrombpnet, 1, "sum"), (bpnet, 2, "each"), (bpnet, 2, "joint")):
        cols = columns(model, data1, "rescale")
        lx, lr = _pair_logits(model, *data1, c)
        lr = lr[:, 0]
        if channels == "joint":
            lx, lr, c = lx.reshape(N, -1, 1), lr.reshape(N, -1, 1), 1
        w = {"dnalift": _softmax(lx, 1), "chrombpnet": (_softmax(lx, 1) + _softmax(lr, 1)) / 2,
             "bpnet-lite": _secant(lx, lr, 1)}[weights]
        _, att = _attribute(model, data1, mode="rescale",
                            target=TargetSpec("profile", channels=channels, weights=weights))
        _assert_sums(att)
        for f in ("hypothetical", "actual", "delta"):
            arr = getattr(cols, f).reshape((N, -1, c) + getattr(cols, f).shape[2:])
            want = np.stack([_combine(arr[:, :, j], w[:, :, j]) for j in range(c)], 1)
            np.testing.assert_allclose(getattr(att, f), want, **CLOSE, err_msg=f)


@pytest.mark.parametrize("channels", ["sum", "each", "joint"])
def test_profile_weights_sum_to_their_delta(bpnet, chrombpnet, data, channels):
    """K references, float64: every convention sums to its own delta; bpnet-lite's is the
    graph's G(x) - G(r), chrombpnet's falls short of it by the stop-gradient term."""
    for model, c in ((chrombpnet, 1), (bpnet, 2)):
        lx, lr = _pair_logits(model, *data, c)                   # (N, L, C), (N, K, L, C)
        if channels == "joint":
            lx, lr, c = lx.reshape(N, -1, 1), lr.reshape(N, K, -1, 1), 1
        lx = lx[:, None]
        mx, mr, px, pr = _centre(lx, 2), _centre(lr, 2), _softmax(lx, 2), _softmax(lr, 2)
        per_group = {"dnalift": (px * (mx - mr)).sum(2),
                     "chrombpnet": ((px + pr) / 2 * (mx - mr)).sum(2),
                     "bpnet-lite": (px * mx - pr * mr).sum(2)}             # (N, K, C)
        stop_gradient_term = ((px - pr) / 2 * (mx + mr)).sum(2)
        np.testing.assert_allclose(per_group["chrombpnet"] + stop_gradient_term,
                                   per_group["bpnet-lite"], **CLOSE)
        for weights in WEIGHTS:
            _, att = _attribute(model, data, target=TargetSpec("profile", channels=channels,
                                                               weights=weights))
            _assert_sums(att)
            want = per_group[weights].transpose(0, 2, 1)                   # (N, C, K)
            if channels == "sum":
                want = want.sum(1, keepdims=True)
            np.testing.assert_allclose(att.delta, want, **CLOSE, err_msg=weights)
            np.testing.assert_allclose(att.prediction.sum(1), (px * mx).sum((1, 2, 3)),
                                       **CLOSE)


# ---- an independent DeepSHAP (kundajelab/shap deep_tf.py) of ChromBPNet's profile graph
def _conv(a: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Valid Conv1D: ``a`` (B, L, Cin), ``w`` (k, Cin, Cout) -> (B, L - k + 1, Cout)."""
    k = w.shape[0]
    n = a.shape[1] - k + 1
    return sum(a[:, t:t + n] @ w[t] for t in range(k)) + b


def _conv_back(g: np.ndarray, w: np.ndarray, length: int) -> np.ndarray:
    """Gradient of :func:`_conv` with respect to its input (the original linear gradient)."""
    k = w.shape[0]
    out = np.zeros((g.shape[0], length, w.shape[1]))
    for t in range(k):
        out[:, t:t + g.shape[1]] += g @ w[t].T
    return out


def _halves(a: np.ndarray):
    """deep_tf's ``tf.split(t, 2)`` of the joint batch: the x rows and the reference rows."""
    return np.split(a, 2)


def _tile2(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a, a])


def _relu_rescale(z: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """deep_tf ``nonlinearity_1d_handler`` (Relu): grads · Δout/Δin, the original gradient
    where |Δin| < 1e-6 (tangermeme ``_nonlinear`` is the same rule)."""
    zx, zr = _halves(z)
    dz = zx - zr
    with np.errstate(divide="ignore", invalid="ignore"):
        secant = _tile2((np.maximum(zx, 0) - np.maximum(zr, 0)) / dz)
    return np.where(_tile2(np.abs(dz)) < 1e-6, grad * (z > 0), grad * secant)


def _chrombpnet_profile_head(logits: np.ndarray) -> np.ndarray:
    """ChromBPNet ``get_weightedsum_meannormed_logits`` on the joint batch, backward with
    deep_tf's handlers: the gradient reaching the logits."""
    mn = logits - logits.mean(1, keepdims=True)             # Mean, StridedSlice, Sub
    a = _softmax(mn, 1)                                     # Softmax(StopGradient(mn))
    grads = np.ones_like(mn)                                # Sum: passthrough
    # Mul(a, mn): both inputs depend on the model input (the StopGradient op is walked like
    # any op), so linearity_1d_nonlinearity_2d -> nonlinearity_2d_handler, op_func x * y
    xin0, rin0 = _halves(a)
    xin1, rin1 = _halves(mn)
    out11, out00 = xin0 * xin1, rin0 * rin1
    out10, out01 = xin0 * rin1, rin0 * xin1
    out1 = 0.5 * (out11 - out10 + out01 - out00)
    delta_in1 = xin1 - rin1
    with np.errstate(divide="ignore", invalid="ignore"):
        g_mn = grads * _tile2(out1 / delta_in1)
    g_mn = np.where(np.abs(_tile2(delta_in1)) < 1e-7, 0.0, g_mn)
    # out0 (for a) goes to Softmax, then StopGradient: not differentiable, tf.gradients
    # propagates None, so nothing of it reaches the input
    return g_mn - g_mn.mean(1, keepdims=True)               # back through Sub / Mean


def _bpnetlite_profile_head(logits: np.ndarray) -> np.ndarray:
    """bpnet-lite ``ProfileWrapper`` (mean-centring, ``_ProfileLogitScaling``, sum) backward
    with tangermeme's ``_nonlinear`` on the scaling module: the gradient at the logits."""
    mn = logits - logits.mean(1, keepdims=True)
    y = mn * _softmax(mn, 1)
    (mx, mr), (yx, yr) = _halves(mn), _halves(y)
    dmn = _tile2(mx - mr)
    g = _softmax(mn, 1) * (1 + mn - y.sum(1, keepdims=True))   # autograd of sum(y) (fallback)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(np.abs(dmn) < 1e-6, g, _tile2(yx - yr) / dmn)
    return g - g.mean(1, keepdims=True)


def _mini_deepshap(params: dict, x: np.ndarray, refs: np.ndarray, head) -> tuple:
    """DeepSHAP as kundajelab/shap ``TFDeepExplainer.shap_values`` runs it on a
    conv -> relu -> conv -> flatten model: per sequence, the joint batch ``[x tiled K times;
    the K references]``, the multipliers of the x half, and ChromBPNet's
    ``combine_mult_and_diffref`` (hypothetical scores, mean over references). Returns the
    hypothetical scores (N, L, 4) and the per-pair sums of contributions (N, K)."""
    hyp, sums = [], []
    for xn, rn in zip(x, refs):
        k = len(rn)
        joint = np.concatenate([np.repeat(xn[None], k, 0), rn])
        z1 = _conv(joint, params["w1"], params["b1"])
        logits = _conv(np.maximum(z1, 0), params["w2"], params["b2"])[..., 0]
        g = _conv_back(head(logits)[..., None], params["w2"], z1.shape[1])
        g = _conv_back(_relu_rescale(z1, g), params["w1"], joint.shape[1])
        mult = g[:k]
        # combine_mult_and_diffref: base b at each position -> sum_c mult (e_b - ref)
        per_base = [np.sum(mult * (np.eye(4)[b] - rn), axis=-1) for b in range(4)]
        hyp.append(np.mean(np.stack(per_base, -1), axis=0))
        sums.append(np.sum(mult * (xn - rn), axis=(1, 2)))
    return np.array(hyp), np.array(sums)


@pytest.fixture(scope="module")
def small_profile_model():
    """conv(5, relu) -> conv(3) -> Flatten ``profile`` logits (L_out = 34) of a 40 bp input,
    random weights, and the same weights as numpy arrays."""
    rng = np.random.default_rng(5)
    inp = keras.Input((40, 4))
    h = keras.layers.Conv1D(6, 5, activation="relu", name="c1")(inp)
    out = keras.layers.Flatten(name="profile")(keras.layers.Conv1D(1, 3, name="c2")(h))
    model = keras.Model(inp, out)
    params = {"w1": rng.normal(0, 0.6, (5, 4, 6)), "b1": rng.normal(0, 0.3, 6),
              "w2": rng.normal(0, 0.8, (3, 6, 1)), "b2": rng.normal(0, 0.1, 1)}
    params = {k: v.astype("float32").astype("float64") for k, v in params.items()}  # as stored
    model.get_layer("c1").set_weights([params["w1"], params["b1"]])
    model.get_layer("c2").set_weights([params["w2"], params["b2"]])
    return model, params


@pytest.mark.parametrize("weights,head", [("chrombpnet", _chrombpnet_profile_head),
                                          ("bpnet-lite", _bpnetlite_profile_head)])
def test_profile_weights_match_independent_deepshap(small_profile_model, weights, head):
    """dnalift (rescale, float64) = a numpy mirror of the other tool's explainer on its own
    graph; the default convention differs from both."""
    model, params = small_profile_model
    rng = np.random.default_rng(8)
    x = np.eye(4)[rng.integers(0, 4, (4, 40))]
    refs = make_references("shuffle", x, k=5, seed=2).astype("float64")
    hyp, sums = _mini_deepshap(params, x, refs, head)
    att = DeepLift(model, target=TargetSpec("profile", weights=weights), mode="rescale",
                   dtype="float64").attribute(x, refs)
    np.testing.assert_allclose(att.hypothetical[:, 0], hyp, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(att.actual[:, 0], (hyp * x).sum(-1), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(att.delta[:, 0], sums, rtol=1e-9, atol=1e-12)
    _assert_sums(att)
    default = DeepLift(model, target="profile", mode="rescale",
                       dtype="float64").attribute(x, refs)
    assert np.abs(default.hypothetical[:, 0] - hyp).max() > 1e-2 * np.abs(hyp).max()


def test_profile_weights_gradient_modes(chrombpnet, data):
    """At x the chrombpnet graph's gradient (stop-gradient softmax at the input) is dnalift's;
    bpnet-lite differentiates G = sum_i mn_i softmax(mn)_i itself; all predict G(x)."""
    atts = {w: _attribute(chrombpnet, data, mode="gradient_x_input",
                          target=TargetSpec("profile", weights=w))[1] for w in WEIGHTS}
    for f in ("hypothetical", "actual", "prediction"):
        np.testing.assert_allclose(getattr(atts["chrombpnet"], f), getattr(atts["dnalift"], f),
                                   **CLOSE)
    assert not np.allclose(atts["bpnet-lite"].actual, atts["dnalift"].actual, rtol=1e-3)
    lx, lr = _pair_logits(chrombpnet, *data, 1)
    g = lambda lg, ax: (_centre(lg, ax) * _softmax(lg, ax)).sum((ax, ax + 1))  # noqa: E731
    for w in ("chrombpnet", "bpnet-lite"):     # delta: the graph's G(x) - G(r)
        np.testing.assert_allclose(atts[w].delta[:, 0], g(lx, 1)[:, None] - g(lr, 2), **CLOSE)


def test_profile_weights_errors_and_description(chrombpnet):
    with pytest.raises(InputError, match="unknown profile weights 'shap'"):
        TargetSpec("profile", weights="shap")
    describe = {w: DeepLift(chrombpnet, target=TargetSpec("profile", weights=w)).target.describe()
                for w in WEIGHTS}
    # the default's description is as before the option (its old score files stay reusable)
    assert describe["dnalift"] == {
        "kind": "profile", "output": "profile", "channels": "sum",
        "weights": "softmax of the logits at x (stop-gradient), logits mean-centred"}
    assert describe["chrombpnet"]["profile_weights"] == "chrombpnet"
    assert describe["bpnet-lite"]["profile_weights"] == "bpnet-lite"
    assert len({d["weights"] for d in describe.values()}) == 3


def test_cli_profile_weights_recorded_and_checked_before_reuse(cli_files, tmp_path):
    import h5py
    model, fasta = cli_files
    out = tmp_path / "c.h5"
    res = _score("--model", model, "--fasta", fasta, "--target", "profile",
                 "--profile-weights", "chrombpnet", "-o", out)
    assert res.exit_code == 0, res.output
    with h5py.File(out, "r") as f:
        assert json.loads(f.attrs["target"])["profile_weights"] == "chrombpnet"
    res = _score("--model", model, "--fasta", fasta, "--target", "profile",
                 "--profile-weights", "chrombpnet", "-o", out)       # same job: reused
    assert res.exit_code == 0, res.output
    res = _score("--model", model, "--fasta", fasta, "--target", "profile",
                 "--profile-weights", "bpnet-lite", "-o", out)
    assert res.exit_code == 2 and "different parameters" in res.stderr \
        and "bpnet-lite" in res.stderr, res.output
    res = _score("--model", model, "--fasta", fasta, "--output-name", "logcounts",
                 "--profile-weights", "chrombpnet", "-o", tmp_path / "x.h5")
    assert res.exit_code == 2 and "applies to --target profile" in res.stderr, res.output


#: Run in a subprocess by the test below (TF1 graph mode is process-global): kundajelab/shap's
#: TFDeepExplainer on ChromBPNet's profile target graph (``get_weightedsum_meannormed_logits``
#: ops) of the conv -> relu -> conv model, with ChromBPNet's hypothetical-score combination.
_SHAP_SCRIPT = r"""
import inspect, sys
import numpy as np
import tensorflow as tf
from shap.explainers.deep.deep_tf import TFDeepExplainer
if "combine_mult_and_diffref" not in inspect.signature(TFDeepExplainer.__init__).parameters:
    print("NO_FORK"); sys.exit(0)
tf.compat.v1.disable_eager_execution()
d = np.load(sys.argv[1] + "/in.npz")
x, refs = d["x"], d["refs"]
g = tf.Graph()
with g.as_default():
    inp = tf.compat.v1.placeholder(tf.float64, (None,) + x.shape[1:])
    conv = lambda a, w, b: tf.nn.bias_add(tf.nn.conv1d(a, tf.constant(w), 1, "VALID"),
                                          tf.constant(b))
    logits = tf.reshape(conv(tf.nn.relu(conv(inp, d["w1"], d["b1"])), d["w2"], d["b2"]),
                        (-1, x.shape[1] - d["w1"].shape[0] - d["w2"].shape[0] + 2))
    mn = logits - tf.reduce_mean(logits, axis=1)[:, None]
    target = tf.reduce_sum(tf.nn.softmax(tf.stop_gradient(mn), axis=1) * mn, axis=1)
    def background(xs):
        return [refs[int(np.argmax([np.array_equal(xs[0], xi) for xi in x]))]]
    def combine(mult, orig_inp, bg_data):
        m, r = mult[0], bg_data[0]
        return [np.stack([np.sum(m * (np.eye(4)[b] - r), -1) for b in range(4)], -1).mean(0)]
    explainer = TFDeepExplainer((inp, target), background, combine_mult_and_diffref=combine,
                                session=tf.compat.v1.Session(graph=g))
    np.savez(sys.argv[1] + "/out.npz", hyp=explainer.shap_values(x))
"""


def test_profile_weights_chrombpnet_against_kundajelab_shap(small_profile_model, tmp_path):
    """Optional: ChromBPNet's own explainer (kundajelab/shap ``deep_tf.py``) when installed."""
    import importlib.util
    import subprocess
    import sys
    if importlib.util.find_spec("shap") is None:
        pytest.skip("shap (kundajelab's fork, ChromBPNet's dependency) is not installed")
    model, params = small_profile_model
    rng = np.random.default_rng(8)
    x = np.eye(4)[rng.integers(0, 4, (4, 40))]
    refs = make_references("shuffle", x, k=5, seed=2).astype("float64")
    np.savez(tmp_path / "in.npz", x=x, refs=refs, **params)
    res = subprocess.run([sys.executable, "-c", _SHAP_SCRIPT, str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    if "NO_FORK" in res.stdout:
        pytest.skip("the installed shap is not kundajelab's fork (no combine_mult_and_diffref)")
    assert res.returncode == 0, res.stderr[-3000:]
    att = DeepLift(model, target=TargetSpec("profile", weights="chrombpnet"), mode="rescale",
                   dtype="float64").attribute(x, refs)
    np.testing.assert_allclose(att.hypothetical[:, 0], np.load(tmp_path / "out.npz")["hyp"],
                               rtol=1e-9, atol=1e-12)
