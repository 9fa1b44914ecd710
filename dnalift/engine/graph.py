"""Engine, first stage (model -> nodes): flatten a Keras 3 model into a topological node list.

Sequential, Functional and nested models are supported.

The DeepLIFT engine evaluates the model itself, node by node, with its own rule per node; this
module only records *what* is called on *which* tensors. Nested models are inlined (their
tensors are keyed by a call-site scope, so a sub-model used twice gets two sets of keys).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import keras

from dnalift.errors import UnsupportedLayerError

Key = tuple  # (scope..., id of a KerasTensor) or ("input",) for the model input


@dataclass
class GraphNode:
    """One call of a layer / Keras operation.

    Attributes
    ----------
    op : keras Layer or Operation
    name : str
        Layer name, prefixed with the enclosing models' names (``"inner/conv1"``).
    inputs : list of Key
        Keys of the tensor arguments, in ``arguments.keras_tensors`` order.
    output : Key
    arguments : SymbolicArguments or None
        The call's arguments (``None`` for a Sequential step: one positional input).
    in_ids : list of int
        ``id`` of each tensor argument, to fill ``arguments`` in.
    """

    op: Any
    name: str
    inputs: list
    output: Key
    arguments: Any = None
    in_ids: list = field(default_factory=list)

    def call_args(self, values: list) -> tuple[tuple, dict]:
        """``(args, kwargs)`` of the original call with ``values`` in place of its tensors."""
        if self.arguments is None:
            return (values[0],), {}
        return self.arguments.fill_in(dict(zip(self.in_ids, values)))


def _is_sequential(m) -> bool:
    return isinstance(m, keras.Sequential)


def _is_functional(m) -> bool:
    return isinstance(m, keras.Model) and hasattr(m, "_nodes_by_depth") and not _is_sequential(m)


def flatten_model(model) -> tuple[list[GraphNode], Key, list[Key], list[str]]:
    """Topologically ordered nodes of ``model`` with nested models inlined.

    Returns
    -------
    nodes : list of GraphNode
    input_key : Key
    output_keys : list of Key, one per model output
    output_names : list of str, the names of the layers producing the outputs
    """
    if _is_functional(model) and len(model.inputs) != 1:
        raise UnsupportedLayerError(
            f"model {model.name!r} has {len(model.inputs)} inputs; dnalift scores single-input "
            "(one-hot sequence) models")
    nodes: list[GraphNode] = []
    input_key = ("input",)
    outs, names = _flatten(model, (), input_key, nodes, prefix="")
    return nodes, input_key, outs, names


def _flatten(model, scope: tuple, in_key: Key, nodes: list, prefix: str):
    """Append ``model``'s nodes to ``nodes``; return its output keys and producer names."""
    if _is_sequential(model):
        return _flatten_sequential(model, scope, in_key, nodes, prefix)
    if not _is_functional(model):
        raise UnsupportedLayerError(
            f"model {model.name!r} of type {type(model).__name__} is a subclassed model; "
            "dnalift needs a Sequential or Functional Keras model")
    return _flatten_functional(model, scope, in_key, nodes, prefix)


def _flatten_sequential(model, scope: tuple, in_key: Key, nodes: list, prefix: str):
    key = in_key
    name = model.name
    for i, layer in enumerate(model.layers):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            (key,), (name,) = _flatten(layer, scope + (i,), key, nodes, prefix + layer.name + "/")
            continue
        out = scope + (i, "out")
        nodes.append(GraphNode(layer, prefix + layer.name, [key], out))
        key, name = out, layer.name
    return [key], [name]


def _flatten_functional(model, scope: tuple, in_key: Key, nodes: list, prefix: str):
    alias: dict[int, Key] = {id(t): in_key for t in model.inputs}

    def key_of(t) -> Key:
        return alias.get(id(t), scope + (id(t),))

    producer: dict[Key, str] = {}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for j, node in enumerate(model._nodes_by_depth[depth]):
            op = node.operation
            if op is None or node.is_input:
                continue
            in_tensors = list(node.input_tensors)
            in_keys = [key_of(t) for t in in_tensors]
            out_tensors = list(node.outputs)
            if isinstance(op, keras.Model):
                if len(in_tensors) != 1:
                    raise UnsupportedLayerError(
                        f"nested model {op.name!r} takes {len(in_tensors)} inputs (one supported)")
                sub_outs, _ = _flatten(op, scope + (depth, j), in_keys[0], nodes,
                                       prefix + op.name + "/")
                alias.update((id(t), k) for t, k in zip(out_tensors, sub_outs))
                continue
            if len(out_tensors) != 1:
                raise UnsupportedLayerError(
                    f"layer {op.name!r} ({type(op).__name__}) has {len(out_tensors)} outputs")
            out = key_of(out_tensors[0])
            nodes.append(GraphNode(op, prefix + op.name, in_keys, out, node.arguments,
                                   [id(t) for t in in_tensors]))
            producer[out] = op.name
    out_keys = [key_of(t) for t in model.outputs]
    return out_keys, [producer.get(k, model.name) for k in out_keys]
