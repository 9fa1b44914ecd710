"""Engine structure: model outputs at x, targets, the layer registry, model files."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402

from dnalift import deeplift  # noqa: E402
from dnalift.engine import rules, targets  # noqa: E402
from dnalift.errors import InputError, UnsupportedLayerError  # noqa: E402
from dnalift.models import load_model, read_task_names  # noqa: E402

L = 12


def _inputs(seed, n=5, k=2):
    rng = np.random.default_rng(seed)
    x = np.eye(4, dtype="float32")[rng.integers(0, 4, (n, L))]
    refs = np.eye(4, dtype="float32")[rng.integers(0, 4, (n, k, L))]
    return x, refs


def _model(head, seed=0):
    """input (L, 4) -> Conv1D(4, 3, relu) -> Flatten -> ``head``; random weights."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((L, 4))
    model = keras.Model(inp, head(layers.Flatten()(layers.Conv1D(4, 3, activation="relu")(inp))))
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=0.5, size=w.shape).astype("float32")
                       for w in model.get_weights()])
    return model


@pytest.mark.parametrize("head", [
    lambda h: layers.Dense(3, activation="sigmoid")(h),
    lambda h: layers.Dense(4, activation="softmax")(h),
    lambda h: layers.Softmax()(layers.Dense(4)(h)),
    lambda h: layers.Dense(2)(h),
], ids=["sigmoid", "softmax", "softmax-layer", "linear"])
@pytest.mark.parametrize("mode", ["genomics_default", "gradient_x_input"])
def test_output_is_the_model_output_of_the_selected_columns(head, mode):
    model = _model(head)
    x, refs = _inputs(1)
    want = np.asarray(model(x))
    engine = deeplift.DeepLift(model, mode=mode, tasks=[1, 0])
    att = engine.attribute(x, refs)
    np.testing.assert_allclose(att.output, want[:, [1, 0]], atol=1e-6)
    assert engine.task_indices == [1, 0] and engine.output_index == 0


def test_output_none_for_a_non_two_dimensional_output_and_empty_batches():
    inp = keras.Input((L, 4))
    profile = layers.Conv1D(2, 3, padding="same")(inp)          # (B, L, 2): profile-like
    model = keras.Model(inp, profile)
    x, refs = _inputs(2)
    att = deeplift.DeepLift(model, mode="rescale", tasks=[0, 5]).attribute(x, refs)
    assert att.output is None
    assert att.prediction.shape == (5, 2)
    dense = _model(lambda h: layers.Dense(3, activation="sigmoid")(h))
    empty = deeplift.DeepLift(dense).attribute(x[:0], refs[:0])
    assert empty.output.shape == (0, 3)


def test_output_of_a_multi_output_model():
    inp = keras.Input((L, 4))
    f = layers.Flatten()(inp)
    model = keras.Model(inp, [layers.Dense(2, activation="sigmoid", name="a")(f),
                              layers.Dense(3, activation="softmax", name="b")(f)])
    x, refs = _inputs(3)
    att = deeplift.DeepLift(model, output="b", tasks=[2]).attribute(x, refs)
    np.testing.assert_allclose(att.output, np.asarray(model(x)[1])[:, [2]], atol=1e-6)


def test_target_helpers_are_public():
    assert targets.select_output(None, ["a"]) == 0
    assert targets.select_output("out_b", ["a", "b"], ["out_a", "out_b"]) == 1
    with pytest.raises(InputError, match="choose one"):
        targets.select_output(None, ["a", "b"])
    assert targets.resolve_tasks(["tal", 0, "2"], ["gata", "tal", "both"], 3) == [1, 0, 2]
    assert targets.resolve_tasks(None, None, 2) == [0, 1]
    with pytest.raises(InputError, match="0=gata"):
        targets.resolve_tasks(["x"], ["gata", "tal", "both"], 3)
    assert targets.task_labels([2, 0], None) == ["2", "0"]
    with pytest.raises(InputError, match="2 task names"):
        targets.check_task_names(["a", "b"], 3)


class _Square(layers.Layer):
    def call(self, x):
        return x * x


def test_default_registry_keeps_the_module_level_functions_working():
    inp = keras.Input((L, 4))
    model = keras.Model(inp, layers.Dense(1)(layers.Flatten()(_Square()(inp))))
    with pytest.raises(UnsupportedLayerError, match="_Square"):
        deeplift.DeepLift(model)
    deeplift.register_nonlinear_layer(_Square)
    try:
        x, refs = _inputs(4)
        att = deeplift.DeepLift(model, dtype="float64").attribute(x, refs)
        assert np.abs(att.residual).max() < 1e-9
    finally:
        rules.DEFAULT_REGISTRY.custom.pop(_Square)
    with pytest.raises(UnsupportedLayerError):
        deeplift.DeepLift(model)


def test_models_load_without_attaching_files_and_sidecar_is_read_explicitly(tmp_path):
    model = _model(lambda h: layers.Dense(3, activation="sigmoid")(h))
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    assert not hasattr(loaded, "_dnalift_source")
    assert read_task_names(tmp_path / "m.keras") is None
    (tmp_path / "m.keras.tasks.txt").write_text("gata\n\ntal\nboth\n")
    assert read_task_names(tmp_path / "m.keras") == ["gata", "tal", "both"]
    assert deeplift.DeepLift(loaded).task_labels == ["0", "1", "2"]
    assert deeplift.read_sidecar_task_names is read_task_names


# --------------------------------------------------------------------------- fused rules
def _fuse_models():
    """Models covering every fused rule: ReLU / max pooling (conv_model), PReLU, LeakyReLU,
    ReLU6, ReLU layer, padded strided max pooling and global max pooling (graph_model)."""
    from test_deeplift import conv_model, graph_model
    return {"conv": conv_model(), "graph": graph_model()}


@pytest.mark.parametrize("mode,maxpool", [("genomics_default", "rescale"),
                                          ("rescale", "gradient")])
def test_fused_and_unfused_rules_give_the_same_scores(mode, maxpool):
    # Fusing only changes how the rules are compiled (XLA kernels vs TensorFlow ops), so a
    # short job (unfused by default) and a long one (fused) score a region alike.
    # genomics_default runs the fused Rescale (after convolutions) and RevealCancel (after
    # Dense) rules and the max-pool Rescale rule; the second case the max-pool gradient rule.
    # Measured on this CPU in float32: identical (max difference 0.0); mode revealcancel on
    # graph_model differed by 6.0e-8 of scores up to 0.43. The tolerance allows another CPU.
    from test_deeplift import _inputs as deeplift_inputs
    x, refs = deeplift_inputs(5, n=4, k=3)
    for name, model in _fuse_models().items():
        fused = deeplift.DeepLift(model, mode=mode, maxpool=maxpool, fuse=True)
        plain = deeplift.DeepLift(model, mode=mode, maxpool=maxpool, fuse=False)
        a, b = fused.attribute(x, refs), plain.attribute(x, refs)
        assert (fused.fuse, plain.fuse) == (True, False)
        scale = np.abs(b.hypothetical).max()
        assert scale > 0.05, name
        np.testing.assert_allclose(a.hypothetical, b.hypothetical, rtol=1e-6,
                                   atol=1e-6 * scale, err_msg=f"{name} {mode}")
        np.testing.assert_allclose(a.delta, b.delta, rtol=1e-6, atol=1e-6, err_msg=name)


def test_worth_fusing_weighs_the_elements_each_fused_rule_processes():
    from dnalift.engine import backend
    assert backend.FUSE_MIN_ELEMENTS == 100_000_000
    # the bench's two models at their measured break-even job sizes
    simulated, bpnet = [3200, 3200, 3200, 32], [64_000] * 9
    assert not backend.worth_fusing(40_000, simulated)
    assert backend.worth_fusing(42_000, simulated)
    assert not backend.worth_fusing(1_500, bpnet) and backend.worth_fusing(1_600, bpnet)
    assert not backend.worth_fusing(10**9, [])  # nothing to fuse


def test_fusing_is_decided_once_by_plan_or_the_first_call(monkeypatch):
    import tensorflow as tf
    from dnalift.engine import backend
    monkeypatch.setattr(backend, "FUSE_MIN_ELEMENTS", 100)
    # fused rules: the conv's ReLU (input 10 x 4 elements per pair), the dense ReLU (3)
    model = _model(lambda h: layers.Dense(2)(layers.ReLU()(layers.Dense(3)(h))))
    net = deeplift.DeepLift(model)._net
    assert net.fused_elements(net.forward(np.zeros((1, L, 4), "float32"))) == [40, 3]
    small, large = _inputs(0, n=2, k=2), _inputs(1, n=3, k=2)  # 4 x 43 < 2 x 100 <= 6 x 43
    fused_rule = tf.types.experimental.PolymorphicFunction

    def rules_fused(engine):
        return [isinstance(r, fused_rule) for r in engine._net.rules.values()]
    for (x, refs), want in ((small, False), (large, True)):
        engine = deeplift.DeepLift(model)
        assert engine.fuse is None
        engine.attribute(x, refs)
        assert engine.fuse is want and rules_fused(engine).count(True) == 2 * want
        engine.attribute(*(small if want else large))  # decided once, for the engine's life
        assert engine.plan(10**9 if not want else 1) is want and engine.fuse is want
    planned = deeplift.DeepLift(model)
    assert planned.plan(5) is True and rules_fused(planned).count(True) == 2
    planned.attribute(*small)
    assert planned.fuse is True
    assert deeplift.DeepLift(model).plan(None) is True  # a stream of unknown length
    for given in (True, False):
        engine = deeplift.DeepLift(model, fuse=given)
        assert engine.plan(1 if given else 10**9) is given
        engine.attribute(*small)
        assert engine.fuse is given and rules_fused(engine).count(True) == 2 * given


# --------------------------------------------------------------------------- eager or traced
@pytest.mark.parametrize("mode", ["genomics_default", "revealcancel", "gradient_x_input",
                                  "integrated_gradients"])
def test_eager_and_traced_steps_give_the_same_scores(mode):
    # A short job runs its step eagerly, a long one traced (tf.function, graph-optimised by
    # TensorFlow); both must score a region alike. Measured on this CPU in float32: largest
    # difference 2.4e-7 in hypothetical scores up to 0.34 (revealcancel, graph_model), 4.8e-7
    # in delta (gradient modes): float rounding, a few ulps. The tolerance (1e-5 of the
    # scale) allows another CPU's kernels.
    import tensorflow as tf
    from test_deeplift import _inputs as deeplift_inputs
    x, refs = deeplift_inputs(6, n=4, k=3)
    for name, model in _fuse_models().items():
        traced = deeplift.DeepLift(model, mode=mode, fuse=False, trace=True, steps=8)
        eager = deeplift.DeepLift(model, mode=mode, fuse=False, trace=False, steps=8)
        a, b = traced.attribute(x, refs), eager.attribute(x, refs)
        assert (traced.trace, eager.trace) == (True, False)
        graph = tf.types.experimental.PolymorphicFunction
        assert isinstance(traced._step, graph) and not isinstance(eager._step, graph)
        scale = np.abs(b.hypothetical).max()
        assert scale > 0.05, name
        np.testing.assert_allclose(a.hypothetical, b.hypothetical, rtol=1e-5,
                                   atol=1e-5 * scale, err_msg=f"{name} {mode}")
        for field in ("delta", "prediction", "residual"):
            np.testing.assert_allclose(getattr(a, field), getattr(b, field), rtol=1e-5,
                                       atol=1e-5, err_msg=f"{name} {mode} {field}")


def test_worth_tracing_weighs_batches_and_elements():
    from dnalift.engine import backend
    assert (backend.EAGER_MAX_BATCHES, backend.EAGER_MAX_ELEMENTS) == (4, 10_000_000)
    # the bench's two models (rule elements per pair) around their measured break-evens
    simulated, bpnet = [3200, 3200, 3200, 32], [64_000] * 9
    assert not backend.worth_tracing(1_020, 256, simulated)  # 4 batches, 9.8e6 elements
    assert backend.worth_tracing(1_030, 256, simulated)      # a fifth batch
    assert backend.worth_tracing(1_020, 128, simulated)      # 8 batches
    assert not backend.worth_tracing(17, 256, bpnet)         # 9.8e6 elements
    assert backend.worth_tracing(20, 256, bpnet)             # 1.15e7 elements
    assert not backend.worth_tracing(1_000, 256, [])         # no rule: batches decide
    assert backend.worth_tracing(2_000, 256, [])


def test_tracing_is_decided_with_fusing(monkeypatch):
    import tensorflow as tf
    from dnalift.engine import backend
    graph = tf.types.experimental.PolymorphicFunction
    model = _model(lambda h: layers.Dense(2)(layers.ReLU()(layers.Dense(3)(h))))
    x, refs = _inputs(0, n=2, k=2)  # 4 pairs x 43 rule elements = 172

    def decided(engine, *args):
        engine.plan(*args) if args else engine.attribute(x, refs)
        assert isinstance(engine._step, graph) is engine.trace
        return engine.trace, engine.fuse
    assert decided(deeplift.DeepLift(model)) == (False, False)  # a short job: eager
    assert decided(deeplift.DeepLift(model), None) == (True, True)  # a stream
    assert decided(deeplift.DeepLift(model, fuse=True)) == (True, True)
    assert decided(deeplift.DeepLift(model, trace=True)) == (True, False)
    assert decided(deeplift.DeepLift(model, trace=False), 10**6) == (False, False)
    assert decided(deeplift.DeepLift(model, batch_size=1)) == (False, False)  # 4 batches
    monkeypatch.setattr(backend, "EAGER_MAX_ELEMENTS", 1_000)
    assert decided(deeplift.DeepLift(model)) == (False, False)  # 172 elements
    # integrated gradients passes each pair through the network once per step: 8 x 172
    assert decided(deeplift.DeepLift(model, mode="integrated_gradients", steps=8)) == \
        (True, False)
    engine = deeplift.DeepLift(model)
    assert decided(engine, 10**6) == (True, False)
    engine.attribute(x, refs)  # decided once, for the engine's life
    assert engine.trace is True and isinstance(engine._step, graph)
