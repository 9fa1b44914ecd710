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
