"""The engine's API on random models: summation-to-delta, baselines, loading, tasks, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402

from dnalift import deeplift  # noqa: E402
from dnalift.deeplift import DeepLift, load_model  # noqa: E402
from dnalift.models import read_task_names  # noqa: E402
from dnalift.errors import InputError, UnsupportedLayerError  # noqa: E402

DATA = Path(__file__).parent / "data"
L = 24


def _onehot(rng, shape):
    return np.eye(4, dtype="float32")[rng.integers(0, 4, shape)]


def _inputs(seed=0, n=3, k=2, length=L):
    rng = np.random.default_rng(seed)
    return _onehot(rng, (n, length)), _onehot(rng, (n, k, length))


def _randomize(model, seed):
    """Random weights (and BN statistics) so every unit is active on some inputs."""
    rng = np.random.default_rng(seed)
    for layer in model.layers if not hasattr(model, "_flatten_layers") else \
            model._flatten_layers(include_self=False, recursive=True):
        ws = layer.get_weights()
        if not ws:
            continue
        new = []
        for w, v in zip(ws, layer.weights):
            if "variance" in v.path:
                new.append(rng.uniform(0.5, 2.0, w.shape).astype("float32"))
            else:
                new.append((rng.normal(size=w.shape) * 0.5).astype("float32"))
        layer.set_weights(new)
    return model


def conv_model(seed=0):
    """Sequential: conv(relu) / BN / maxpool / strided dilated conv / avgpool / dense(elu)."""
    m = keras.Sequential([
        keras.Input((L, 4)),
        layers.Conv1D(6, 5, padding="same", activation="relu", name="conv1"),
        layers.BatchNormalization(name="bn"),
        layers.MaxPooling1D(2, name="pool"),
        layers.Conv1D(5, 3, padding="valid", dilation_rate=2, activation="softplus",
                      name="conv2"),
        layers.AveragePooling1D(2, padding="same", name="avg"),
        layers.Dropout(0.3, name="drop"),
        layers.Flatten(name="flatten"),
        layers.Dense(8, activation="elu", name="dense"),
        layers.Dense(3, name="logits"),
        layers.Activation("sigmoid", name="prob"),
    ], name="seq")
    return _randomize(m, seed)


def graph_model(seed=1):
    """Functional: residual/causal convs, merges, many activations, nested model, softmax."""
    inp = keras.Input((L, 4), name="seq")
    h = layers.Conv1D(6, 3, padding="causal", dilation_rate=2, name="c0")(inp)
    h = layers.PReLU(name="prelu")(h)
    r = layers.Conv1D(6, 3, padding="same", activation="gelu", name="c1")(h)
    h = layers.Add(name="add")([h, r])
    r2 = layers.Conv1D(6, 3, strides=2, padding="same", activation="tanh", name="c2")(h)
    r2 = layers.UpSampling1D(2, name="up")(r2)
    h = layers.Subtract(name="sub")([h, r2])
    h = layers.LeakyReLU(negative_slope=0.2, name="lrelu")(h)
    h = layers.ZeroPadding1D(1, name="zpad")(layers.Cropping1D((1, 1), name="crop")(h))
    inner = keras.Sequential([keras.Input((L, 6)),
                              layers.Conv1D(4, 1, activation="swish", name="inner_conv"),
                              layers.Activation("selu", name="inner_act")], name="inner")
    h = layers.Concatenate(name="cat")([inner(h), layers.Activation("softsign")(h)])
    g = layers.Concatenate(name="gcat")([layers.GlobalMaxPooling1D(name="gmax")(h),
                                         layers.GlobalAveragePooling1D(name="gavg")(h)])
    p = layers.Permute((2, 1))(layers.MaxPooling1D(4, strides=3, padding="same")(h))
    p = layers.Reshape((-1,))(p)
    d = layers.Dense(7, activation="relu6", name="d1")(layers.Concatenate()([g, p]))
    d = layers.ReLU(name="relu")(layers.Dense(5, name="d2")(d))
    out = layers.Dense(4, activation="softmax", name="out")(d)
    return _randomize(keras.Model(inp, out, name="graph"), seed)


def conv2d_model(seed=2):
    inp = keras.Input((L, 4))
    h = layers.Reshape((L, 4, 1))(inp)
    h = layers.Conv2D(3, (5, 2), padding="same", activation="sigmoid", name="c2d")(h)
    h = layers.MaxPooling2D((3, 2), strides=(2, 1), padding="same", name="p2d")(h)
    h = layers.Conv2D(2, (3, 3), strides=(2, 1), activation="exponential", name="c2d_b")(h)
    h = layers.GlobalAveragePooling2D()(h)
    return _randomize(keras.Model(inp, layers.Dense(2, name="o")(h)), seed)


def _independent_delta(model, target_layer, x, refs, softmax=False):
    """target(x) - target(ref) by Keras' own forward pass of a sub-model (float32)."""
    sub = keras.Model(model.inputs, model.get_layer(target_layer).output)
    n, k = refs.shape[:2]
    tx = sub.predict(x, verbose=0).astype("float64")
    tr = sub.predict(refs.reshape((n * k,) + x.shape[1:]), verbose=0).astype("float64")
    if softmax:
        tx, tr = tx - tx.mean(1, keepdims=True), tr - tr.mean(1, keepdims=True)
    return (np.repeat(tx, k, axis=0) - tr).reshape(n, k, -1).transpose(0, 2, 1)


def _logit_delta(model, features, dense, x, refs, softmax=False):
    """target(x) - target(ref) ``(N, T, K)`` where the target is the pre-activation of the
    final Dense layer ``dense`` fed by layer ``features`` (Keras forward pass, float64 head)."""
    feats = keras.Model(model.inputs, model.get_layer(features).output)
    w, b = model.get_layer(dense).get_weights()
    n, k = refs.shape[:2]

    def logits(a):
        z = feats.predict(a, verbose=0).astype("float64") @ w + b
        return z - z.mean(1, keepdims=True) if softmax else z
    return (np.repeat(logits(x), k, 0) - logits(refs.reshape((n * k,) + x.shape[1:]))
            ).reshape(n, k, -1).transpose(0, 2, 1)


@pytest.mark.parametrize("builder,target,softmax", [
    (conv_model, "logits", False), (conv2d_model, "o", False)])
@pytest.mark.parametrize("mode", ["rescale", "revealcancel", "genomics_default"])
def test_summation_to_delta(builder, target, softmax, mode):
    model = builder()
    x, refs = _inputs(3)
    want = _independent_delta(model, target, x, refs, softmax)
    att64 = DeepLift(model, mode=mode, dtype="float64").attribute(x, refs)
    scale = np.maximum(1.0, np.abs(att64.delta))
    assert np.all(np.abs(att64.residual) <= 1e-5 * scale)
    assert np.all(np.abs(att64.delta - want) <= 1e-4 * scale)
    # actual contributions sum (over positions) to the mean delta over references
    np.testing.assert_allclose(att64.actual.sum(-1), att64.delta.mean(-1), atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no residual warning in float32 either
        att32 = DeepLift(model, mode=mode, batch_size=4).attribute(x, refs)
    assert np.all(np.abs(att32.residual) <= 1e-3 * scale)
    np.testing.assert_allclose(att32.hypothetical, att64.hypothetical, atol=2e-3)


@pytest.mark.parametrize("mode", ["rescale", "revealcancel", "genomics_default"])
def test_summation_to_delta_functional_graph(mode):
    model = graph_model()
    x, refs = _inputs(4)
    # the target is the input of the final softmax: recompute it from layer "relu"'s output
    want = _logit_delta(model, "relu", "out", x, refs, softmax=True)
    engine = DeepLift(model, mode=mode, dtype="float64")
    att = engine.attribute(x, refs)
    scale = np.maximum(1.0, np.abs(att.delta))
    assert np.all(np.abs(att.residual) <= 1e-5 * scale)
    assert np.all(np.abs(att.delta - want) <= 1e-4 * scale)
    conv_rule = "revealcancel" if mode == "revealcancel" else "rescale"
    dense_rule = "rescale" if mode == "rescale" else "revealcancel"
    assert engine.rules["inner/inner_conv"] == f"linear+{conv_rule}"
    assert engine.rules["c1"] == f"linear+{conv_rule}"
    assert engine.rules["prelu"] == conv_rule
    assert engine.rules["d1"] == f"linear+{dense_rule}"
    assert engine.rules["relu"] == dense_rule


@pytest.mark.parametrize("mode", ["rescale", "revealcancel", "genomics_default"])
def test_summation_to_delta_on_shipped_simulated_model(mode):
    """The shipped GATA/TAL model, test sequences against dinucleotide shuffles: residual
    within 1e-5 (float64) / 1e-3 (float32) of max(1, |delta|), delta equal to Keras' own."""
    from dnalift.references import dinucleotide_shuffle_references
    from dnalift.sequences import one_hot_encode, read_fasta
    root = Path(__file__).resolve().parents[1] / "data" / "simulated"
    model = load_model(root / "model.h5")
    x = one_hot_encode([seq for _, seq in read_fasta(root / "test.fa", stop=6)])
    refs = dinucleotide_shuffle_references(x, k=3, seed=7)
    want = _logit_delta(model, "dense", "output", x, refs)
    att64 = DeepLift(model, mode=mode, dtype="float64").attribute(x, refs)
    scale = np.maximum(1.0, np.abs(att64.delta))
    assert np.all(np.abs(att64.residual) <= 1e-5 * scale)
    assert np.all(np.abs(att64.delta - want) <= 1e-4 * scale)
    assert np.abs(att64.delta).max() > 0.5  # real differences, not a vacuous check
    att32 = DeepLift(model, mode=mode).attribute(x, refs)
    assert np.all(np.abs(att32.residual) <= 1e-3 * scale)


def test_genomics_default_rules_on_conv_model():
    engine = DeepLift(conv_model())
    assert engine.rules == {"conv1": "linear+rescale", "bn": "linear", "pool": "maxpool-rescale",
                            "conv2": "linear+rescale", "avg": "linear", "drop": "linear",
                            "flatten": "linear", "dense": "linear+revealcancel",
                            "logits": "linear"}


def test_linear_network_every_mode_is_gradient_times_difference():
    inp = keras.Input((L, 4))
    h = layers.Conv1D(4, 5, padding="same", name="c")(inp)
    h = layers.BatchNormalization()(h)
    h = layers.AveragePooling1D(3)(h)
    out = layers.Dense(2)(layers.Flatten()(h))
    model = _randomize(keras.Model(inp, out), 5)
    x, refs = _inputs(6)
    import tensorflow as tf
    xt = tf.constant(x)
    grads = []
    for t in range(2):
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = tf.reduce_sum(model(xt)[:, t])
        grads.append(tape.gradient(y, xt).numpy())
    g = np.stack(grads, 1)[:, :, None]                              # (N, T, 1, L, 4)
    diff = (x[:, None] - refs)[:, None]                             # (N, 1, K, L, 4)
    want_actual = (g * diff).sum(-1).mean(2)
    want_hyp = (g - (g * refs[:, None]).sum(-1, keepdims=True)).mean(2)
    for mode in ("rescale", "revealcancel", "genomics_default", "gradient_x_input",
                 "integrated_gradients"):
        att = DeepLift(model, mode=mode, steps=3).attribute(x, refs)
        np.testing.assert_allclose(att.actual, want_actual, atol=1e-4, err_msg=mode)
        np.testing.assert_allclose(att.hypothetical, want_hyp, atol=1e-4, err_msg=mode)
    att = DeepLift(model, mode="gradient").attribute(x, refs)
    np.testing.assert_allclose(att.hypothetical, g[:, :, 0], atol=1e-5)


def test_integrated_gradients_approaches_delta():
    model = conv_model()
    x, refs = _inputs(7, n=2)
    att = DeepLift(model, mode="integrated_gradients", steps=64, dtype="float64"
                   ).attribute(x, refs)
    assert np.all(np.abs(att.residual) <= 0.02 * np.maximum(1, np.abs(att.delta)))


def test_integrated_gradients_is_the_midpoint_rule_of_keras_gradients():
    """Independent check of the path loop: the mean of TensorFlow's own gradients at the
    ``steps`` midpoints ``r + (i + 1/2)/steps (x - r)`` of each pair, times ``x - r``."""
    tf = pytest.importorskip("tensorflow")
    inp = keras.Input((L, 4))
    h = layers.Conv1D(4, 5, padding="same", activation="relu")(inp)
    out = layers.Dense(2)(layers.Flatten()(h))                      # logits: no activation
    model = _randomize(keras.Model(inp, out), 8)
    x, refs = _inputs(10, n=2, k=2)
    steps = 5
    att = DeepLift(model, mode="integrated_gradients", steps=steps, dtype="float64"
                   ).attribute(x, refs)
    x64, r64 = x.astype("float64"), refs.astype("float64")
    mean_grad = np.zeros((2, 2, 2, L, 4))                            # (N, K, T, L, 4)
    for i in range(steps):
        point = tf.constant(r64 + (i + 0.5) / steps * (x64[:, None] - r64))
        for t in range(2):
            with tf.GradientTape() as tape:
                tape.watch(point)
                y = tf.reduce_sum(model(tf.reshape(point, (-1, L, 4)))[:, t])
            mean_grad[:, :, t] += tape.gradient(y, point).numpy() / steps
    want = (mean_grad * (x64[:, None] - r64)[:, :, None]).sum(-1).mean(1)   # (N, T, L)
    # measured: max |difference| 1.2e-7 of scores up to 2.8 (the Keras model runs in float32)
    np.testing.assert_allclose(att.actual, want, rtol=1e-5, atol=1e-6)
    assert np.abs(want).max() > 1e-2


def test_batch_size_and_padding_do_not_change_results():
    model = conv_model()
    x, refs = _inputs(8, n=5, k=3)
    a = DeepLift(model, batch_size=3).attribute(x, refs)
    b = DeepLift(model, batch_size=1000).attribute(x, refs)
    for f in ("hypothetical", "actual", "delta", "residual", "prediction"):
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), atol=1e-5)
    assert a.hypothetical.shape == (5, 3, L, 4) and a.actual.shape == (5, 3, L)
    assert a.delta.shape == (5, 3, 3) and a.prediction.shape == (5, 3)


# --------------------------------------------------------------------------- loading
def test_keras_and_h5_copies_give_same_scores(tmp_path):
    model = conv_model()
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    x, refs = _inputs(9)
    got = [DeepLift(load_model(tmp_path / f)).attribute(x, refs).hypothetical
           for f in ("m.keras", "m.h5")]
    want = DeepLift(model).attribute(x, refs).hypothetical
    np.testing.assert_allclose(got[0], want, atol=1e-6)
    np.testing.assert_allclose(got[1], want, atol=1e-6)


def test_keras2_h5_fixture():
    fx = np.load(DATA / "keras2_small.npz")
    model = load_model(DATA / "keras2_small.h5")
    att = DeepLift(model, mode="genomics_default").attribute(fx["x"], fx["refs"])
    p = fx["pred"].astype("float64")
    np.testing.assert_allclose(att.prediction, np.log(p / (1 - p)), atol=1e-4)
    # the same architecture rebuilt in Keras 3 from the stored weights scores identically
    rebuilt = keras.Sequential([
        keras.Input((24, 4)), layers.Conv1D(4, 5, padding="same", activation="relu"),
        layers.MaxPooling1D(2), layers.Flatten(), layers.Dense(6, activation="relu"),
        layers.Dense(2, activation="sigmoid")])
    rebuilt.set_weights([fx[f"w{i}"] for i in range(6)])
    want = DeepLift(rebuilt).attribute(fx["x"], fx["refs"])
    np.testing.assert_allclose(att.hypothetical, want.hypothetical, atol=1e-6)
    assert np.abs(att.residual).max() < 1e-4


def _lambda_model():
    inp = keras.Input((L, 4))
    h = layers.Lambda(lambda t: t * 2.0, name="double")(inp)
    return keras.Model(inp, layers.Dense(1)(layers.Flatten()(h)))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_refused_unless_unsafe(tmp_path, suffix):
    path = tmp_path / f"lam{suffix}"
    _lambda_model().save(path)
    with pytest.raises(InputError, match=str(path.name)):
        load_model(path)
    if suffix == ".h5":
        with pytest.raises(InputError, match="double"):
            load_model(path)
    model = load_model(path, unsafe=True)
    with pytest.raises(UnsupportedLayerError, match="Lambda"):
        DeepLift(model)


def test_corrupted_and_missing_files(tmp_path):
    for name, content in (("bad.h5", b"not hdf5 at all"), ("bad.keras", b"PK\x03\x04junk")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(InputError, match=name):
            load_model(tmp_path / name)
    with pytest.raises(InputError, match="nothere.h5"):
        load_model(tmp_path / "nothere.h5")


# --------------------------------------------------------------------------- targets
def test_tasks_by_index_name_and_sidecar(tmp_path):
    model = conv_model()
    x, refs = _inputs(10)
    full = DeepLift(model).attribute(x, refs)
    engine = DeepLift(model, tasks=["c", 0], task_names=["a", "b", "c"])
    assert engine.task_labels == ["c", "a"]
    att = engine.attribute(x, refs)
    np.testing.assert_allclose(att.hypothetical, full.hypothetical[:, [2, 0]], atol=1e-6)
    with pytest.raises(InputError, match="a, 1=b"):
        DeepLift(model, tasks=["z"], task_names=["a", "b", "c"])
    with pytest.raises(InputError, match="0..2"):
        DeepLift(model, tasks=[3])
    model.save(tmp_path / "m.h5")
    (tmp_path / "m.h5.tasks.txt").write_text("gata\ntal\nboth\n")
    names = read_task_names(tmp_path / "m.h5")
    assert DeepLift(load_model(tmp_path / "m.h5"), tasks=["tal"], task_names=names
                    ).task_labels == ["tal"]
    assert DeepLift(model).task_labels == ["0", "1", "2"]


def test_multi_output_model_picks_output_by_name():
    inp = keras.Input((L, 4))
    f = layers.Flatten()(layers.Conv1D(3, 3, activation="relu")(inp))
    a = layers.Dense(2, activation="sigmoid", name="a")(f)
    b = layers.Dense(1, name="b")(f)
    model = _randomize(keras.Model(inp, [a, b]), 3)
    x, refs = _inputs(11)
    with pytest.raises(InputError, match="a, b"):
        DeepLift(model)
    with pytest.raises(InputError, match="no output 'c'"):
        DeepLift(model, output="c")
    att = DeepLift(model, output="b").attribute(x, refs)
    want = keras.Model(inp, b).predict(x, verbose=0)
    np.testing.assert_allclose(att.prediction, want, atol=1e-5)
    assert DeepLift(model, output="a").attribute(x, refs).prediction.shape == (3, 2)


# --------------------------------------------------------------------------- errors, custom
@pytest.mark.parametrize("make", [
    lambda h: layers.LSTM(3)(h),
    lambda h: layers.Flatten()(layers.MultiHeadAttention(1, 2)(h, h)),
])
def test_unsupported_layer_raises(make):
    inp = keras.Input((L, 4))
    model = keras.Model(inp, layers.Dense(1)(make(inp)))
    with pytest.raises(UnsupportedLayerError, match="LSTM|MultiHeadAttention"):
        DeepLift(model)


class _Cube(layers.Layer):
    def call(self, x):
        return x * x * x


class _Shift(layers.Layer):
    """Linear with a bias: wrongly registered as bias-free linear, it breaks conservation."""

    def call(self, x):
        return 2.0 * x + 1.0


def test_custom_layer_registration_and_residual_warning():
    inp = keras.Input((L, 4))
    model = keras.Model(inp, layers.Dense(1)(layers.Flatten()(_Cube()(inp))))
    model = _randomize(model, 4)
    with pytest.raises(UnsupportedLayerError, match="_Cube"):
        DeepLift(model)
    x, refs = _inputs(12)
    registry = deeplift.Registry()
    deeplift.register_nonlinear_layer(_Cube, registry=registry)
    deeplift.register_linear_layer(_Shift, registry=registry)
    att = DeepLift(model, dtype="float64", registry=registry).attribute(x, refs)
    assert np.abs(att.residual).max() < 1e-9
    # Rescale of x^3 between x and r: (x^3 - r^3) / (x - r) = x^2 + x r + r^2
    x64, r64 = x.astype("float64"), refs.astype("float64")
    m = x64[:, None] ** 2 + x64[:, None] * r64 + r64 ** 2
    w = model.layers[-1].get_weights()[0].reshape(L, 4).astype("float64")
    want = (m * w * (x64[:, None] - r64)).sum(-1).mean(1)
    np.testing.assert_allclose(att.actual[:, 0], want, atol=1e-9)
    bad = keras.Model(inp, layers.Dense(1)(layers.Flatten()(_Shift()(inp))))
    engine = DeepLift(bad, registry=registry)
    with pytest.warns(RuntimeWarning, match="residual"):
        engine.attribute(x, refs)


def test_bad_arguments():
    model = conv_model()
    with pytest.raises(InputError, match="mode"):
        DeepLift(model, mode="deepshap")
    with pytest.raises(InputError, match="maxpool"):
        DeepLift(model, maxpool="max")
    x, refs = _inputs(13)
    with pytest.raises(InputError, match="length"):
        DeepLift(model).attribute(x[:, :10], refs[:, :, :10])
    with pytest.raises(InputError, match="refs"):
        DeepLift(model).attribute(x, refs[:2])


# --------------------------------------------------------------------------- other backends
_BACKEND_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_deeplift import conv_model, graph_model, _inputs
    from dnalift.deeplift import DeepLift
    out = {{}}
    for name, build in (("conv", conv_model), ("graph", graph_model)):
        x, refs = _inputs(14, n=4)
        for mode in ("rescale", "genomics_default"):
            a = DeepLift(build(), mode=mode, batch_size=4).attribute(x, refs)
            out[name + mode] = [a.hypothetical.tolist(), float(np.abs(a.residual).max())]
    print("RESULT" + json.dumps(out))
""")


def _run_on_backend(script: str, backend_name: str, **env) -> dict:
    """Run ``script`` (a template of ``{tests}``, printing ``RESULT`` + JSON) in a fresh
    process on the Keras backend ``backend_name`` (CPU); its JSON result."""
    env = dict(os.environ, KERAS_BACKEND=backend_name, CUDA_VISIBLE_DEVICES="",
               JAX_PLATFORMS="cpu", **env)
    proc = subprocess.run([sys.executable, "-c",
                           script.format(tests=str(Path(__file__).parent))],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.split("RESULT", 1)[1])


@pytest.mark.parametrize("backend_name", ["jax", "torch"])
def test_other_backends_match_tensorflow(backend_name):
    pytest.importorskip(backend_name)
    # 4 sequences x 2 references in batches of 4 pairs: two batches of one shape, so one
    # compilation per engine on JAX (3 sequences gave two shapes, twice the compile time)
    got = _run_on_backend(_BACKEND_SCRIPT, backend_name)
    for name, build in (("conv", conv_model), ("graph", graph_model)):
        x, refs = _inputs(14, n=4)
        for mode in ("rescale", "genomics_default"):
            want = DeepLift(build(), mode=mode, batch_size=4).attribute(x, refs)
            hyp, resid = got[name + mode]
            assert resid < 1e-3
            np.testing.assert_allclose(np.array(hyp), want.hypothetical, atol=2e-4,
                                       err_msg=f"{backend_name} {name} {mode}")


_JAX_FLOAT64_SCRIPT = textwrap.dedent("""
    import json, sys
    import jax
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_deeplift import conv_model, graph_model, _inputs
    from dnalift.deeplift import DeepLift
    from dnalift.errors import InputError
    x, refs = _inputs(15)
    out = {{}}
    for name, build in (("conv", conv_model), ("graph", graph_model)):
        for mode in ("rescale", "genomics_default"):
            a = DeepLift(build(), mode=mode, dtype="float64").attribute(x, refs)
            out[name + mode] = [str(a.residual.dtype), float(np.abs(a.residual).max())]
    jax.config.update("jax_enable_x64", False)
    try:
        DeepLift(conv_model(), dtype="float64")
        out["no_x64"] = "accepted"
    except InputError as e:
        out["no_x64"] = str(e)
    print("RESULT" + json.dumps(out))
""")


def test_jax_float64_sums_to_delta_exactly():
    # Keras promotes float64 to float32 on JAX (ops.mean of average pooling, ...): the
    # engine's float64 scope must keep every op in float64 when JAX runs with x64.
    pytest.importorskip("jax")
    got = _run_on_backend(_JAX_FLOAT64_SCRIPT, "jax", JAX_ENABLE_X64="1")
    assert "JAX_ENABLE_X64" in got.pop("no_x64")
    for key, (dtype, resid) in got.items():
        assert dtype == "float64" and resid < 1e-12, (key, dtype, resid)
