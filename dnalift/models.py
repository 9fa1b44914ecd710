"""Model files (before the engine): load a Keras model safely, read its task-name sidecar.

The engine (:mod:`dnalift.deeplift`) never reads files: callers load the model here and pass
the task names from :func:`read_task_names` to ``DeepLift(task_names=...)``.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from dnalift.errors import DnaliftError, InputError

if TYPE_CHECKING:  # keras (and TensorFlow) are imported only to load a model
    import keras


@functools.lru_cache(maxsize=1)
def _known_classes() -> frozenset[str]:
    """Class names a stored config may use without custom code."""
    import keras
    names = {n for n in dir(keras.layers) if n[:1].isupper()}
    return frozenset(names | {"Functional", "Model", "Sequential", "InputLayer", "TFOpLambda"})


def _h5_unsafe_layers(cfg) -> list[tuple[str, str]]:
    """(layer name, class) of Lambda / unknown layers in a stored (Keras 2 or 3) model config."""
    bad: list[tuple[str, str]] = []
    models = {"Functional", "Model", "Sequential"}

    def walk(entry):
        if not isinstance(entry, dict):
            return
        cls, conf = entry.get("class_name"), entry.get("config")
        name = conf.get("name", "?") if isinstance(conf, dict) else "?"
        if cls == "Lambda" or (isinstance(cls, str) and cls not in _known_classes()):
            bad.append((str(name), str(cls)))
        if cls in models:
            layers = conf.get("layers", []) if isinstance(conf, dict) else conf
            for layer in layers or []:
                walk(layer)
        elif isinstance(conf, dict) and isinstance(conf.get("layer"), dict):
            walk(conf["layer"])  # wrappers (TimeDistributed, Bidirectional)

    walk(cfg)
    return bad


def _read_h5_config(path: Path) -> dict:
    import h5py
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
    except OSError as err:
        raise InputError(f"{path}: not a readable HDF5 model file ({err})") from None
    if raw is None:
        raise InputError(f"{path}: HDF5 file has no model_config (weights-only file?)")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    try:
        return json.loads(raw)
    except ValueError:
        raise InputError(f"{path}: model_config is not valid JSON") from None


def _read_keras_config(path: Path) -> dict:
    """The ``config.json`` of a ``.keras`` archive (a zip), without Keras."""
    import zipfile
    try:
        with zipfile.ZipFile(path) as archive:
            raw = archive.read("config.json")
    except zipfile.BadZipFile:
        raise InputError(f"{path}: not a valid .keras file (not a zip archive: truncated, "
                         "or another format saved under a .keras name)") from None
    except KeyError:
        raise InputError(f"{path}: not a valid .keras file (no config.json in the "
                         "archive)") from None
    except (OSError, EOFError, zipfile.error) as err:
        raise InputError(f"{path}: not a valid .keras file ({err})") from None
    try:
        return json.loads(raw)
    except ValueError:
        raise InputError(f"{path}: config.json of the .keras file is not valid JSON") from None


def read_model_config(path: str | os.PathLike) -> dict | None:
    """The stored architecture of a ``.keras`` or ``.h5`` model file, read without Keras or
    TensorFlow (``None`` for other suffixes, e.g. a SavedModel).

    Raises
    ------
    InputError
        A truncated or foreign ``.keras`` file, an HDF5 file without a model config.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".keras":
        return _read_keras_config(path)
    if suffix in (".h5", ".hdf5"):
        return _read_h5_config(path)
    return None


def stored_input_length(config: dict | None) -> int | None:
    """The sequence length ``L`` of a stored model config's ``(None, L, 4)`` input (the
    first ``InputLayer``, or the first layer's ``batch_input_shape``); ``None`` when it is
    not stored, variable, or not of that form (the loaded model is checked later)."""
    def first_shape(entry) -> list | None:
        if not isinstance(entry, dict):
            return None
        conf = entry.get("config")
        if not isinstance(conf, dict):
            return None
        for key in ("batch_shape", "batch_input_shape"):
            if isinstance(conf.get(key), list):
                return conf[key]
        layers = conf.get("layers")
        return first_shape(layers[0]) if isinstance(layers, list) and layers else None

    shape = first_shape(config)
    if shape is None or len(shape) != 3 or shape[2] != 4 or not isinstance(shape[1], int):
        return None
    return shape[1]


def load_model(path: str | os.PathLike, *, unsafe: bool = False):
    """Load a Keras model from ``.keras`` or legacy ``.h5`` (Keras 2 / tf.keras files too).

    Parameters
    ----------
    path : str or Path
    unsafe : bool
        Allow Lambda layers and other custom code (Keras ``safe_mode=False``). Off by
        default: a model file can run arbitrary Python when loaded.

    Returns
    -------
    keras.Model, uncompiled. Task names are not attached: read them with
    :func:`read_task_names` and pass them to the engine.

    Raises
    ------
    InputError
        Missing, unreadable or corrupted file; Lambda / unknown layer without ``unsafe``.
    """
    import keras
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    cfg = read_model_config(path)
    if path.suffix.lower() in (".h5", ".hdf5"):
        bad = _h5_unsafe_layers(cfg)
        if bad and not unsafe:
            name, cls = bad[0]
            raise InputError(f"{path}: layer {name!r} is a {cls} (custom code); load it only if "
                             "you trust the file, with unsafe=True (--unsafe)")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=not unsafe)
    except DnaliftError:
        raise
    except Exception as err:  # corrupted files raise many exception types
        msg = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        if "Lambda" in msg or "safe_mode" in msg or "unsafe" in msg.lower():
            raise InputError(f"{path}: the model contains a Lambda layer or custom code; load "
                             "it only if you trust the file, with unsafe=True (--unsafe)") from None
        raise InputError(f"{path}: cannot load model ({type(err).__name__}: {msg})") from None
    if not isinstance(model, keras.Model):
        raise InputError(f"{path}: does not contain a Keras model")
    return model


def check_input_shape(model: keras.Model) -> None:
    """InputError unless the model takes one-hot DNA ``(N, L, 4)`` (channels last, A, C, G, T).

    A flat ``(L * 4,)``, channels-first ``(4, L)`` or other-alphabet ``(L, 5)`` input would
    otherwise fail deep inside the engine or be read as the wrong length.
    """
    inputs = getattr(model, "inputs", None) or []
    if not inputs:
        return
    shape = tuple(inputs[0].shape)
    if len(shape) != 3 or shape[2] != 4:
        shown = "(" + ", ".join("None" if d is None else str(d) for d in shape[1:]) + \
            ("," if len(shape) == 2 else "") + ")"
        raise InputError(f"the model's input has shape {shown} (batch axis left out); dnalift "
                         "needs one-hot DNA of shape (L, 4): L positions, then 4 channels in "
                         "the order A, C, G, T (flat, channels-first or other-alphabet inputs "
                         "are not supported: reshape or permute them inside the model)")


def check_name_list(names: list[str], source: str) -> list[str]:
    """``names`` unless one is empty or repeated (InputError naming ``source``, the file or
    option that holds them)."""
    for i, name in enumerate(names):
        if not name:
            raise InputError(f"{source}: task name {i + 1} is empty")
        if name in names[:i]:
            raise InputError(f"{source}: task name {name!r} appears twice (names "
                             f"{names[:i].index(name) + 1} and {i + 1}); task names must differ")
    return names


def read_names_file(path: str | os.PathLike, *, what: str = "task-name file",
                    allow_empty: bool = False) -> list[str] | None:
    """Names from a file, one per line (blank lines skipped), checked with
    :func:`check_name_list`.

    Parameters
    ----------
    path : path-like
    what : str
        What the file is, for messages.
    allow_empty : bool
        Return None for a file with no names (instead of an InputError).
    """
    try:
        text = Path(path).read_text()
    except UnicodeDecodeError:
        raise InputError(f"{path}: {what} is not a text file") from None
    names = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not names:
        if allow_empty:
            return None
        raise InputError(f"{path}: {what} is empty (no names; one task name per line)")
    return check_name_list(names, f"{path} ({what})")


def read_task_names(model_path: str | os.PathLike) -> list[str] | None:
    """Task names from the sidecar ``<model_path>.tasks.txt`` (one per line, blank lines
    skipped), or None when there is no sidecar or it is empty; repeated names are an
    InputError naming the sidecar."""
    side = Path(f"{model_path}.tasks.txt")
    if not side.is_file():
        return None
    return read_names_file(side, what="task-name sidecar", allow_empty=True)
