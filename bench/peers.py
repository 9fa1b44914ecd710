"""Peer DeepLIFT tools on the same models, inputs and references as dnalift.

Three pieces:

1. ``torch_from_keras(model)``: a PyTorch rebuild of a Keras 3 DNA model (functional or
   Sequential) with the same weights, returning the pre-activation logits of the chosen output.
   Layout conversions: Keras tensors are channels-last ``(N, L, C)``, the rebuild works
   channels-first ``(N, C, L)`` as torch, tangermeme and captum expect; Conv1D kernels
   ``(width, in, out)`` become ``(out, in, width)``; Dense kernels ``(in, out)`` become
   ``(out, in)``; TF ``'same'`` padding (left = total // 2, right = the rest, total =
   dilation * (width - 1), so even widths pad one more on the right) is an explicit
   ``ConstantPad1d`` in front of an unpadded ``Conv1d``; ``Flatten`` after pooling flattens in
   Keras (length-major) order. Every nonlinearity is its own ``nn.Module`` instance (one per
   use), so the peers' backward hooks see it.
2. Runners: ``tangermeme_scores`` (``tangermeme.deep_lift_shap.deep_lift_shap``),
   ``captum_scores`` (``captum.attr.DeepLiftShap``, one sequence and its K references per
   call, the way its API takes a per-sequence baseline set) and ``captum_paired_scores``
   (``captum.attr.DeepLift`` on batches of (sequence, reference) pairs, the same work at the
   same batch size as dnalift), and ``shap_scores`` (``shap.DeepExplainer`` on the Keras model).
   All return ``PeerScores`` in dnalift's layout: ``hypothetical (N, L, 4)`` and
   ``actual (N, L)``.
3. ``hypothetical_projection``: the hypothetical-score formula shared by dnalift,
   tangermeme and tfmodisco: for base b at position l, the contribution the position would have
   if it held b, ``m[l, b] - sum_c ref[l, c] * m[l, c]``, averaged over the K references.

Rules the peers apply (read from their source, tangermeme 1.6.0 and captum 0.9.0):

- Elementwise nonlinearities: Rescale, ``grad_out * dy / dx``, falling back to the plain
  gradient where ``|dx| < 1e-6`` (tangermeme) or ``< 1e-10`` (captum).
- MaxPool1d: both use the same summation-preserving rule: the pooled difference is split into
  ``max(y, y_ref) - y_ref`` routed to the argmax of the input and ``y - max(y, y_ref)`` routed
  to the argmax of the reference, and the routed amount is divided by the input difference at
  each position (plain gradient where the input difference is 0 / below eps). This is dnalift's
  ``maxpool="rescale"``; the paper's gradient-of-the-max rule is ``maxpool="gradient"``.
- dnalift's ``maxpool="rescale"`` is a *different* summation-preserving rule: per window,
  with i / j the argmax of input / reference, it splits the pooled difference as
  ``lam * d_i + (1 - lam) * d_j`` with ``lam = clip((dout - d_j) / (d_i - d_j), 0, 1)``
  (multipliers ``lam`` at i and ``1 - lam`` at j), where the peers give everything to one
  position (``dout / d_i`` at i if ``y >= y_ref``, else ``dout / d_j`` at j). No dnalift option
  reproduces the peers' rule, so max-pool models are compared with tangermeme running
  ``TANGERMEME_MAXPOOL_RULES[...]``, torch versions of dnalift's two rules plugged in through
  tangermeme's ``additional_nonlinear_ops``; models without max pooling are compared with the
  peers' own rules.
- The target is the model output passed in: the rebuild stops at the logit (no final sigmoid /
  softmax), which is dnalift's target.
- Both average the per-reference hypothetical scores over the K references.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

try:  # torch is an optional (bench extra) dependency
    import torch
    from torch import nn
except ImportError:  # pragma: no cover - exercised only without torch
    torch = None
    nn = None


# ---------------------------------------------------------------------------------------------
# Keras -> PyTorch rebuild
# ---------------------------------------------------------------------------------------------

_ACTIVATIONS: dict[str, Callable[[], "nn.Module"]] = {}
if nn is not None:
    _ACTIVATIONS = {
        "relu": nn.ReLU,
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "softplus": nn.Softplus,
        "elu": nn.ELU,
        "silu": nn.SiLU,
        "swish": nn.SiLU,
        "gelu": lambda: nn.GELU(approximate="tanh"),
        "softmax": lambda: nn.Softmax(dim=1),
    }

if nn is not None:

    class ChannelsLastFlatten(nn.Module):
        """Flatten ``(N, C, L)`` in Keras order (index = l * C + c); 2-D input unchanged."""

        def forward(self, x):
            return x.transpose(1, 2).flatten(1) if x.dim() == 3 else x.flatten(1)

    class Detach(nn.Module):
        """Identity that returns a new tensor (``x.clone()``).

        Placed in front of every max pool: captum registers its DeepLIFT backward hook on the
        *input tensor* of a hooked module, so when a ReLU's output feeds a MaxPool1d directly,
        the ReLU records the upstream gradient before the max-pool rule rewrites it (hooks on
        one tensor run in registration order) and sum-to-delta fails (captum issue #1104).
        A separate tensor between the two makes captum chain the rules; the function computed
        is unchanged and tangermeme is unaffected.
        """

        def forward(self, x):
            return x.clone()

    class GlobalAvgPool(nn.Module):
        """Mean over the length axis: ``(N, C, L) -> (N, C)``."""

        def forward(self, x):
            return x.mean(dim=2)

    class Crop(nn.Module):
        """Keras ``Cropping1D``: drop ``left`` and ``right`` positions of ``(N, C, L)``."""

        def __init__(self, left: int, right: int):
            super().__init__()
            self.left, self.right = left, right

        def forward(self, x):
            return x[:, :, self.left:x.shape[2] - self.right]

    class Sum(nn.Module):
        """Keras ``Add``: elementwise sum of the inputs."""

        def forward(self, *xs):
            out = xs[0]
            for x in xs[1:]:
                out = out + x
            return out

    class Concat(nn.Module):
        """Keras ``Concatenate`` along the (already converted) torch axis ``dim``."""

        def __init__(self, dim: int):
            super().__init__()
            self.dim = dim

        def forward(self, *xs):
            return torch.cat(xs, dim=self.dim)

    class PointwiseLinear(nn.Module):
        """Keras ``Dense`` on any rank: applied to the channel axis (axis 1 in torch layout)."""

        def __init__(self, linear: "nn.Linear"):
            super().__init__()
            self.linear = linear

        def forward(self, x):
            if x.dim() == 2:
                return self.linear(x)
            return self.linear(x.transpose(1, -1)).transpose(1, -1)

    class TorchGraph(nn.Module):
        """Runs converted layers in the Keras graph's topological order.

        ``steps`` holds ``(block index, input keys, output key)``; tensors are kept in a dict
        keyed by the ids of the Keras tensors they stand for.
        """

        def __init__(self, blocks, steps, input_key, output_key):
            super().__init__()
            self.blocks = nn.ModuleList(blocks)
            self.steps = steps
            self.input_key = input_key
            self.output_key = output_key

        def forward(self, x):
            env = {self.input_key: x}
            for index, ins, out in self.steps:
                env[out] = self.blocks[index](*[env[k] for k in ins])
            return env[self.output_key]


def _activation_name(layer) -> str:
    act = getattr(layer, "activation", None)
    if act is None:
        return "linear"
    import keras
    name = keras.activations.serialize(act)
    if isinstance(name, dict):
        name = name.get("config", {}).get("name") or name.get("class_name", "")
    return str(name).lower()


def _activation_module(name: str):
    if name in ("linear", "none", ""):
        return None
    if name not in _ACTIVATIONS:
        raise NotImplementedError(f"activation {name!r} has no torch rebuild")
    return _ACTIVATIONS[name]()


def _t(array) -> "torch.Tensor":
    return torch.from_numpy(np.ascontiguousarray(np.asarray(array, dtype=np.float32)))


def same_padding(width: int, dilation: int = 1) -> tuple[int, int]:
    """TF/Keras ``'same'`` padding for stride 1: ``(left, right)`` with left = total // 2.

    >>> same_padding(4), same_padding(15), same_padding(3, dilation=4)
    ((1, 2), (7, 7), (4, 4))
    """
    total = dilation * (width - 1)
    return total // 2, total - total // 2


def _conv1d(layer, drop_activation: bool):
    cfg = layer.get_config()
    kernel, *rest = layer.get_weights()
    width, c_in, c_out = kernel.shape
    (stride,), (dilation,) = cfg["strides"], cfg["dilation_rate"]
    if cfg.get("groups", 1) != 1:
        raise NotImplementedError(f"{layer.name}: grouped Conv1D has no torch rebuild")
    conv = nn.Conv1d(c_in, c_out, width, stride=stride, dilation=dilation,
                     bias=bool(cfg["use_bias"]))
    conv.weight.data = _t(kernel.transpose(2, 1, 0))
    if cfg["use_bias"]:
        conv.bias.data = _t(rest[0])
    parts = []
    if cfg["padding"] == "same":
        if stride != 1:
            raise NotImplementedError(f"{layer.name}: 'same' padding with stride > 1")
        parts.append(nn.ConstantPad1d(same_padding(width, dilation), 0.0))
    elif cfg["padding"] == "causal":
        parts.append(nn.ConstantPad1d((dilation * (width - 1), 0), 0.0))
    parts.append(conv)
    return _with_activation(parts, layer, drop_activation)


def _dense(layer, drop_activation: bool):
    cfg = layer.get_config()
    kernel, *rest = layer.get_weights()
    linear = nn.Linear(kernel.shape[0], kernel.shape[1], bias=bool(cfg["use_bias"]))
    linear.weight.data = _t(kernel.T)
    if cfg["use_bias"]:
        linear.bias.data = _t(rest[0])
    return _with_activation([PointwiseLinear(linear)], layer, drop_activation)


def _with_activation(parts: list, layer, drop_activation: bool):
    act = None if drop_activation else _activation_module(_activation_name(layer))
    if act is not None:
        parts.append(act)
    return parts[0] if len(parts) == 1 else nn.Sequential(*parts)


def _pool(layer, kind: str):
    cfg = layer.get_config()
    if cfg["padding"] != "valid":
        raise NotImplementedError(f"{layer.name}: pooling with padding {cfg['padding']!r}")
    (size,), (stride,) = cfg["pool_size"], cfg["strides"]
    if kind == "max":
        return nn.Sequential(Detach(), nn.MaxPool1d(size, stride))
    return nn.AvgPool1d(size, stride)


def _global_max(layer, length: int):
    return nn.Sequential(Detach(), nn.MaxPool1d(length), nn.Flatten(1))


def _batchnorm(layer):
    cfg = layer.get_config()
    if cfg["axis"] not in (-1, 2, [-1], [2]):
        raise NotImplementedError(f"{layer.name}: BatchNormalization over axis {cfg['axis']}")
    weights = {w.path.split("/")[-1]: np.asarray(w) for w in layer.weights}
    n = weights["moving_mean"].shape[0]
    bn = nn.BatchNorm1d(n, eps=cfg["epsilon"])
    bn.running_mean.data = _t(weights["moving_mean"])
    bn.running_var.data = _t(weights["moving_variance"])
    bn.weight.data = _t(weights.get("gamma", np.ones(n)))
    bn.bias.data = _t(weights.get("beta", np.zeros(n)))
    return bn


def _torch_axis(axis: int, rank: int) -> int:
    """Keras axis of a channels-last tensor of ``rank`` -> the torch (channels-first) axis."""
    axis = axis % rank
    if rank == 3:
        return {0: 0, 1: 2, 2: 1}[axis]
    return axis


def convert_layer(layer, *, drop_activation: bool = False) -> "nn.Module":
    """Torch module equivalent to one Keras layer (weights copied), channels-first layout.

    Raises ``NotImplementedError`` for layers with no rebuild (Lambda, custom layers, ...).
    """
    kind = type(layer).__name__
    in_shape = layer.input.shape if not isinstance(layer.input, list) else None
    if kind == "Conv1D":
        return _conv1d(layer, drop_activation)
    if kind == "Dense":
        return _dense(layer, drop_activation)
    if kind == "Activation":
        act = None if drop_activation else _activation_module(_activation_name(layer))
        return act if act is not None else nn.Identity()
    if kind == "ReLU":
        return nn.Identity() if drop_activation else nn.ReLU()
    if kind == "MaxPooling1D":
        return _pool(layer, "max")
    if kind == "AveragePooling1D":
        return _pool(layer, "avg")
    if kind == "GlobalAveragePooling1D":
        return GlobalAvgPool()
    if kind == "GlobalMaxPooling1D":
        return _global_max(layer, int(in_shape[1]))
    if kind == "Flatten":
        return ChannelsLastFlatten()
    if kind in ("Dropout", "SpatialDropout1D", "GaussianNoise", "InputLayer"):
        return nn.Identity()
    if kind == "Cropping1D":
        left, right = layer.get_config()["cropping"]
        return Crop(int(left), int(right))
    if kind == "Add":
        return Sum()
    if kind == "Concatenate":
        return Concat(_torch_axis(layer.get_config()["axis"], len(layer.input[0].shape)))
    if kind == "BatchNormalization":
        return _batchnorm(layer)
    raise NotImplementedError(f"layer {layer.name} ({kind}) has no torch rebuild")


def _functional(model):
    """The functional graph behind a Keras model (Sequential models carry one once built)."""
    if type(model).__name__ == "Sequential":
        return model._functional
    return model


def _select_output(model, output: int | str | None):
    outputs = list(model.outputs)
    if output is None:
        if len(outputs) != 1:
            raise ValueError(f"model has {len(outputs)} outputs: pass output= (index or name)")
        return outputs[0]
    if isinstance(output, int):
        return outputs[output]
    names = list(getattr(model, "output_names", []) or [])
    for i, tensor in enumerate(outputs):
        producer = tensor._keras_history.operation
        if producer.name == output or (names and names[i] == output):
            return tensor
    raise ValueError(f"model has no output named {output!r}")


def torch_from_keras(model, *, output: int | str | None = None,
                     logits: bool = True) -> "nn.Module":
    """PyTorch rebuild of a Keras model with copied weights, channels-first input.

    Parameters
    ----------
    model : keras.Model
        Functional or Sequential Keras 3 model with one ``(L, 4)`` input.
    output : int, str or None
        Which model output to rebuild (index or name of the producing layer); needed when the
        model has several.
    logits : bool
        Drop the activation of the layer producing the output, so the rebuild returns the
        pre-activation logit (dnalift's target). A trailing standalone ``Activation`` layer is
        replaced by identity.

    Returns
    -------
    torch.nn.Module
        In eval mode; ``forward(x)`` maps ``(N, 4, L)`` to the output, ``(N, T)``.
    """
    if torch is None:
        raise ImportError("torch is required for the peer rebuilds (pip install dnalift[bench])")
    graph = _functional(model)
    if len(graph.inputs) != 1:
        raise NotImplementedError("only single-input models have a torch rebuild")
    target = _select_output(graph, output)
    final_layer = target._keras_history.operation
    allowed = getattr(graph, "_nodes", None)
    blocks, steps = [], []
    for layer in graph.operations:
        for index, node in enumerate(layer._inbound_nodes):
            if allowed is not None and f"{id(layer)}_ib-{index}" not in allowed:
                continue
            if type(layer).__name__ == "InputLayer" or not node.input_tensors:
                continue
            drop = logits and layer is final_layer
            blocks.append(convert_layer(layer, drop_activation=drop))
            steps.append((len(blocks) - 1, [id(t) for t in node.input_tensors],
                          id(node.output_tensors[0])))
    rebuilt = TorchGraph(blocks, steps, id(graph.inputs[0]), id(target))
    return rebuilt.eval()


def keras_logits(model, x: np.ndarray, *, output: int | str | None = None) -> np.ndarray:
    """Pre-activation output of a Keras model: ``(N, L, 4) -> (N, T)`` (for checking rebuilds).

    Evaluates a sub-model that ends at the input of the output layer and applies that layer's
    linear part with its own weights (Dense or Conv1D followed by a global op is not needed:
    the output layer must be a Dense or a standalone Activation).
    """
    import keras
    graph = _functional(model)
    target = _select_output(graph, output)
    layer = target._keras_history.operation
    kind = type(layer).__name__
    if kind == "Activation":
        return np.asarray(keras.Model(graph.inputs, layer.input).predict(x, verbose=0))
    if kind != "Dense":
        if _activation_name(layer) in ("linear", ""):
            return np.asarray(keras.Model(graph.inputs, target).predict(x, verbose=0))
        raise NotImplementedError(f"output layer {layer.name} ({kind}): no logit recipe")
    hidden = np.asarray(keras.Model(graph.inputs, layer.input).predict(x, verbose=0))
    kernel, *rest = layer.get_weights()
    return hidden @ kernel + (rest[0] if rest else 0.0)


def torch_forward(module: "nn.Module", x: np.ndarray) -> np.ndarray:
    """Run a rebuild on channels-last one-hot ``(N, L, 4)``; returns ``(N, T)`` numpy."""
    with torch.no_grad():
        return module(channels_first(x)).numpy()


# ---------------------------------------------------------------------------------------------
# Layouts and the hypothetical projection
# ---------------------------------------------------------------------------------------------

def channels_first(x: np.ndarray) -> "torch.Tensor":
    """``(..., L, 4)`` numpy -> ``(..., 4, L)`` contiguous float32 torch tensor."""
    return torch.from_numpy(np.ascontiguousarray(np.swapaxes(x, -1, -2), dtype=np.float32))


def hypothetical_projection(multipliers, refs):
    """Hypothetical contribution of each base: ``m[b] - sum_c ref[c] * m[c]``.

    Works on numpy arrays or torch tensors, channels on ``axis`` -2 when the inputs are
    channels-first torch tensors ``(P, 4, L)``, or on the last axis for numpy ``(P, L, 4)``.
    """
    if torch is not None and isinstance(multipliers, torch.Tensor):
        return multipliers - (refs * multipliers).sum(dim=-2, keepdim=True)
    return multipliers - (refs * multipliers).sum(axis=-1, keepdims=True)


def _captum_hypothetical(multipliers, inputs, baselines):
    """captum ``custom_attribution_func``: per-pair hypothetical scores ``(P, 4, L)``."""
    return tuple(hypothetical_projection(m, b) for m, b in zip(multipliers, baselines))


@dataclass
class PeerScores:
    """Scores from a peer tool in dnalift's layout.

    Attributes
    ----------
    hypothetical : np.ndarray or None
        ``(N, L, 4)`` mean over references of the hypothetical contributions (None when the
        tool cannot produce them, e.g. shap).
    actual : np.ndarray
        ``(N, L)`` per-base contribution of the observed sequence.
    """

    hypothetical: np.ndarray | None
    actual: np.ndarray


def _from_hypothetical(hyp_cf: "torch.Tensor", x: np.ndarray) -> PeerScores:
    hyp = np.swapaxes(hyp_cf.detach().cpu().numpy(), -1, -2).astype(np.float32)
    return PeerScores(hypothetical=hyp, actual=(hyp * x).sum(axis=-1))


# ---------------------------------------------------------------------------------------------
# Runners
# ---------------------------------------------------------------------------------------------

def _maxpool_args(module) -> tuple:
    return (module.kernel_size, module.stride, module.padding, module.dilation,
            module.ceil_mode)


def _dnalift_rescale_maxpool(module, grad_input, grad_output):
    """tangermeme rule for ``nn.MaxPool1d`` equal to dnalift's ``maxpool="rescale"``.

    ``module.input`` holds the sequence rows then the reference rows. Per window, i / j are the
    argmax of input / reference (first maximum on ties, as both libraries do); the upstream
    multiplier goes to i with weight ``lam`` and to j with ``1 - lam``,
    ``lam = clip((dout - d_j) / (d_i - d_j), 0, 1)`` (1 where ``d_i == d_j``).
    """
    import torch.nn.functional as F
    with torch.no_grad():
        a_x, a_r = module.input.chunk(2)
        d = a_x - a_r
        o_x, i = F.max_pool1d(a_x, *_maxpool_args(module), return_indices=True)
        o_r, j = F.max_pool1d(a_r, *_maxpool_args(module), return_indices=True)
        d_i, d_j = d.gather(2, i), d.gather(2, j)
        den = d_i - d_j
        nonzero = den != 0
        lam = torch.where(nonzero, (o_x - o_r - d_j) / torch.where(nonzero, den, 1.0), 1.0)
        lam = lam.clamp(0.0, 1.0)
        upstream = grad_output[0].chunk(2)[0]  # both halves carry the same multipliers
        half = torch.zeros_like(a_x)
        half.scatter_add_(2, i, upstream * lam)
        half.scatter_add_(2, j, upstream * (1.0 - lam))
    return (torch.cat([half, half]),)


def _dnalift_gradient_maxpool(module, grad_input, grad_output):
    """tangermeme rule for ``nn.MaxPool1d`` equal to dnalift's ``maxpool="gradient"`` (the
    paper's rule): the plain gradient, i.e. multiplier 1 at the input's argmax."""
    return grad_input


TANGERMEME_MAXPOOL_RULES = {"rescale": _dnalift_rescale_maxpool,
                            "gradient": _dnalift_gradient_maxpool}


def tangermeme_scores(module: "nn.Module", x: np.ndarray, refs: np.ndarray, *, target: int = 0,
                      batch_size: int = 256, maxpool: str | None = None) -> PeerScores:
    """tangermeme ``deep_lift_shap`` with the given references.

    Parameters
    ----------
    module : torch.nn.Module
        Rebuild from ``torch_from_keras`` (logit output ``(N, T)``).
    x : np.ndarray
        ``(N, L, 4)`` one-hot.
    refs : np.ndarray
        ``(N, K, L, 4)`` references.
    target : int
        Output column.
    batch_size : int
        (sequence, reference) pairs per forward/backward pass.
    maxpool : {None, "rescale", "gradient"}
        None: tangermeme's own max-pool rule; otherwise dnalift's rule of that name
        (``TANGERMEME_MAXPOOL_RULES``).
    """
    from tangermeme.deep_lift_shap import deep_lift_shap
    extra = None if maxpool is None else {nn.MaxPool1d: TANGERMEME_MAXPOOL_RULES[maxpool]}
    hyp = deep_lift_shap(module, channels_first(x), target=target,
                         references=channels_first(refs), batch_size=batch_size,
                         hypothetical=True, device="cpu", warning_threshold=math.inf,
                         additional_nonlinear_ops=extra, verbose=False)
    return _from_hypothetical(hyp, x)


def captum_scores(module: "nn.Module", x: np.ndarray, refs: np.ndarray, *,
                  target: int = 0) -> PeerScores:
    """captum ``DeepLiftShap``: one call per sequence with its K references as the baselines.

    captum's DeepLiftShap takes one baseline distribution for the whole call, so per-sequence
    references (dinucleotide shuffles) mean one call per sequence (K pairs per pass).
    """
    from captum.attr import DeepLiftShap
    explainer = DeepLiftShap(module)
    xs, rs = channels_first(x), channels_first(refs)
    out = [explainer.attribute(xs[i:i + 1], baselines=rs[i], target=target,
                               custom_attribution_func=_captum_hypothetical)
           for i in range(len(xs))]
    return _from_hypothetical(torch.cat(out), x)


def captum_paired_scores(module: "nn.Module", x: np.ndarray, refs: np.ndarray, *,
                         target: int = 0, batch_size: int = 256) -> PeerScores:
    """captum ``DeepLift`` on batches of (sequence, reference) pairs, mean over references.

    The same computation captum's DeepLiftShap does inside one call, batched across
    sequences, so the batch size (in pairs) matches dnalift's and tangermeme's.
    """
    from captum.attr import DeepLift
    explainer = DeepLift(module)
    n, k = refs.shape[:2]
    xs, rs = channels_first(x), channels_first(refs)
    per_batch = max(1, batch_size // k)
    out = []
    for lo in range(0, n, per_batch):
        xb, rb = xs[lo:lo + per_batch], rs[lo:lo + per_batch]
        hyp = explainer.attribute(xb.repeat_interleave(k, dim=0), baselines=rb.flatten(0, 1),
                                  target=target, custom_attribution_func=_captum_hypothetical)
        out.append(hyp.reshape(len(xb), k, *hyp.shape[1:]).mean(dim=1))
    return _from_hypothetical(torch.cat(out), x)


def shap_scores(model, x: np.ndarray, refs: np.ndarray, *, target: int = 0) -> PeerScores:
    """shap ``DeepExplainer`` on the Keras model, explaining the logit of ``target``.

    The explainer is built on ``(model input, output layer input)`` plus the output layer's
    kernel, i.e. a Keras model that ends at the logit; per-sequence references are passed as a
    callable background. shap returns per-channel contributions (no hypothetical scores).
    """
    import keras
    import shap
    graph = _functional(model)
    layer = _select_output(graph, None)._keras_history.operation
    kernel, *rest = layer.get_weights()
    logit = keras.layers.Dense(kernel.shape[1], name="logit")
    head = logit(layer.input)
    logit.set_weights([kernel] + rest)
    logit_model = keras.Model(graph.inputs, head)
    lookup = {x[i].tobytes(): refs[i] for i in range(len(x))}
    from tensorflow.python.eager import execute as tf_execute
    recorder = tf_execute.record_gradient
    try:
        explainer = shap.DeepExplainer(logit_model,
                                       lambda xi: lookup[np.asarray(xi[0]).tobytes()])
        phis = np.asarray(explainer.shap_values(x, check_additivity=False))
    finally:
        # shap swaps TensorFlow's gradient recorder for its own and puts it back only when the
        # explanation succeeds; after a failure every later gradient in the process would be
        # recorded under "shap_" op names.
        tf_execute.record_gradient = recorder
    phis = phis[..., target] if phis.ndim == 4 else phis[target]
    return PeerScores(hypothetical=None, actual=phis.sum(axis=-1).astype(np.float32))


def torch_gradient_pass(module: "nn.Module", x: np.ndarray, refs: np.ndarray, *,
                        target: int = 0, batch_size: int = 256) -> np.ndarray:
    """Floor for the torch tools: one plain forward + backward over the same rows a DeepLIFT
    pass needs (each sequence once per reference, plus the references), no hooks.

    Returns the input gradients of the sequence rows ``(N * K, 4, L)`` (numpy), in batches of
    ``batch_size`` pairs.
    """
    n, k = refs.shape[:2]
    xs = channels_first(x).repeat_interleave(k, dim=0)
    rs = channels_first(refs).flatten(0, 1)
    out = []
    for lo in range(0, n * k, batch_size):
        rows = torch.cat([xs[lo:lo + batch_size], rs[lo:lo + batch_size]]).requires_grad_()
        y = module(rows)[:, target]
        (grad,) = torch.autograd.grad(y.sum(), rows)
        out.append(grad[:len(grad) // 2].numpy())
    return np.concatenate(out)


# ---------------------------------------------------------------------------------------------
# Comparison and timing helpers
# ---------------------------------------------------------------------------------------------

def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``max |a - b| / max |b|``: worst deviation relative to the scale of the reference ``b``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = np.abs(b).max()
    return float(np.abs(a - b).max() / scale) if scale > 0 else float(np.abs(a - b).max())


def seconds_per_run(fn: Callable[[], object], *, repeats: int = 3,
                    warmup: bool = True) -> float:
    """Best-of-``repeats`` wall time of ``fn()`` (seconds), after one untimed warm-up call."""
    if warmup:
        fn()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def set_torch_threads(n: int) -> None:
    """Use ``n`` intra-op threads in torch (match the cores TensorFlow uses)."""
    if torch is not None:
        torch.set_num_threads(n)


def versions(packages: Sequence[str] = ("torch", "captum", "tangermeme", "shap")) -> dict:
    """Installed version of each package (None when missing)."""
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out
