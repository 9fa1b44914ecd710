"""Engine, second stage (nodes -> steps): the one registry of DeepLIFT step kinds.

Every graph node becomes one or more :class:`Step` (a Dense/Conv layer with ``activation=``
splits into its affine part and its nonlinearity). A step's ``kind`` is one object of
:data:`KINDS` that knows how to evaluate it at x (``forward``), as a difference over pairs
(``difference``) and what it does with RevealCancel's absolute part ``A = Δ+ - Δ-``
(``absolute``; ``Δ± = (Δ ± A)/2``). :meth:`Registry.classify` is the only place that maps a
layer or Keras operation to a kind (user layer classes first). A node with no rule becomes an
``unsupported`` step that :func:`check_supported` refuses only where the target needs it.

What each kind does with ``Δ±`` (``signs``), following the paper and the original DeepLIFT:

- ``"own"``, weight layers (Dense, EinsumDense, Conv1D/2D/3D and their transposes): ``Δ±``
  from the layer's own input difference, ``Δy+ = Σ_i 1{w_i Δx_i > 0} w_i Δx_i``
  (``A = |W| |Δ_in|``); where ``Δx_i = 0`` the input's multiplier is ``0.5 w (m+ + m-)``.
- ``"carry"``, maps with non-negative coefficients (average pooling, reshapes, Flatten,
  Concatenate, Add, Average, dropout, ...) and BatchNormalization (``|scale|``: Δ+ and Δ- swap
  where gamma/std < 0) apply themselves to the input's ``A``; Subtract adds the two ``A``,
  negation keeps it.
- ``"split"``, everything else (the model input, nonlinearity, max-pool and product outputs,
  custom linear layers not declared non-negative, products with a constant): ``Δ+ = max(Δ, 0)``,
  ``Δ- = min(Δ, 0)``, as the original does at its input layer. (Where a weight layer follows,
  which is the usual case, this choice is irrelevant: the weight layer recomputes ``Δ±``.)

``TimeDistributed(layer)`` gets the inner layer's steps, each evaluated on the time axis folded
into the batch (:class:`TimeDistributedKind`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import keras
from keras import ops

from dnalift.engine import affine, backend, maxpool, nonlinear, product, timedistributed
from dnalift.engine.graph import GraphNode, Key
from dnalift.errors import UnsupportedLayerError

L = keras.layers

#: Elementwise activation functions (by ``__name__``) the engine accepts.
ELEMENTWISE_ACTIVATIONS = frozenset({
    "relu", "sigmoid", "tanh", "softplus", "elu", "selu", "gelu", "exponential", "leaky_relu",
    "silu", "swish", "softsign", "relu6", "hard_sigmoid", "hard_silu", "hard_swish", "mish",
    "log_sigmoid", "celu", "sparse_plus", "squareplus", "hard_tanh", "soft_shrink",
    "hard_shrink", "tanh_shrink", "threshold", "sinh", "cosh", "exp"})

#: Activations computed exactly by compare/multiply/add (safe to fuse with XLA); names as in
#: ``Step.act``.
PIECEWISE_LINEAR = frozenset({"relu", "relu6", "leaky_relu", "leakyrelu", "prelu",
                              "hard_sigmoid", "hard_tanh", "threshold"})


# --------------------------------------------------------------------------- steps
@dataclass(frozen=True)
class Step:
    """One unit of evaluation: a layer's affine part, a nonlinearity, a pooling, plumbing.

    Attributes
    ----------
    kind : Kind
        How the step is evaluated (one of :data:`KINDS`).
    node : GraphNode
    inputs : list of Key
    output : Key
    name : str
        Layer name (both parts of a split layer carry it).
    rule : str
        DeepLIFT rule label, set by :mod:`dnalift.engine.policy` (``"linear"``, ``"rescale"``,
        ``"revealcancel"``, ``"maxpool-rescale"``, ``"product"``, ...).
    fn : callable, optional
        The elementwise function of a nonlinearity.
    act : str, optional
        Its name.
    error : str, optional
        Why the node has no DeepLIFT rule (kind ``unsupported``).
    """

    kind: "Kind"
    node: GraphNode
    inputs: list
    output: Key
    name: str
    rule: str = "linear"
    fn: Callable | None = None
    act: str | None = None
    error: str | None = None

    @property
    def layer(self):
        """The Keras layer or operation of the node."""
        return self.node.op


@dataclass
class PairContext:
    """What a step's ``difference`` may read besides its input Δs.

    Attributes
    ----------
    ax : dict Key -> tensor ``(N, ...)``
        Activations at the sequences.
    parts : dict Key -> tensor ``(N·K, ...)``
        RevealCancel absolute parts ``A`` computed so far.
    rules : dict Key -> callable
        Compiled rule of each step (by output key), from :meth:`Kind.compile`.
    dtype : str
    """

    ax: dict
    parts: dict
    rules: dict
    dtype: str


def _call(step: Step, values: list):
    """The node's own operation on ``values`` in place of its tensor arguments."""
    args, kwargs = step.node.call_args(values)
    op = step.layer
    return op.call(*args, **kwargs) if isinstance(op, L.Layer) else op(*args, **kwargs)


# --------------------------------------------------------------------------- kinds
class Kind:
    """How one kind of step is evaluated. Subclasses override what differs.

    ``signs`` says what the kind does with ``Δ±`` (see the module docstring): ``"own"``,
    ``"carry"`` (needs its inputs' ``A``) or ``"split"`` (the default here).
    """

    signs = "split"

    def __init__(self, name: str, signs: str | None = None):
        self.name = name
        if signs is not None:
            self.signs = signs

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def compile(self, step: Step, dtype: str, fuse: bool = True) -> Callable | None:
        """The step's rule as a function of tensors only, or None; ``dtype`` is the precision
        the pairs are scored in; ``fuse``: compile the rules that gain from it
        (:meth:`fuses`) into fused kernels (:func:`backend.fuse`), else return them plain."""
        return None

    def fuses(self, step: Step) -> bool:
        """Whether the step's rule is fused when the engine fuses (:meth:`compile`)."""
        return False

    def forward(self, step: Step, inputs: list, dtype: str):
        """Output at the sequences ``(N, ...)`` from input activations (model semantics)."""
        return _call(step, inputs)

    def difference(self, step: Step, deltas: list, ctx: PairContext):
        """Output Δ ``(N·K, ...)`` from input Δs; its gradient is the multiplier."""
        return _call(step, deltas)

    def absolute(self, step: Step, deltas: list, out, ctx: PairContext):
        """RevealCancel's ``A = Δ+ - Δ-`` of the output ``(N·K, ...)``."""
        return nonlinear.absolute(out)


class AffineKind(Kind):
    """Dense / Conv (``signs="own"``) and BatchNormalization (``signs="carry"``)."""

    def forward(self, step, inputs, dtype):
        return affine.affine_full(step.layer, inputs[0], dtype)

    def difference(self, step, deltas, ctx):
        return affine.affine_linear(step.layer, deltas[0], ctx.dtype)

    def absolute(self, step, deltas, out, ctx):
        v = nonlinear.absolute(deltas[0]) if self.signs == "own" else ctx.parts[step.inputs[0]]
        return affine.affine_linear(step.layer, v, ctx.dtype, absolute=True)


class PlumbingKind(Kind):
    """Bias-free linear layers and ops; non-negative ones map ``A`` like ``Δ``."""

    signs = "carry"

    def absolute(self, step, deltas, out, ctx):
        if self.signs == "split":
            return nonlinear.absolute(out)
        return _call(step, [ctx.parts[k] for k in step.inputs])


class SubtractKind(PlumbingKind):
    """``a - b``: ``Δ+ = Δa+ - Δb-``, so ``A = A_a + A_b``."""

    def absolute(self, step, deltas, out, ctx):
        return ctx.parts[step.inputs[0]] + ctx.parts[step.inputs[1]]


class NegateKind(PlumbingKind):
    """``-a``: ``Δ+`` and ``Δ-`` swap, ``A`` is unchanged."""

    def absolute(self, step, deltas, out, ctx):
        return ctx.parts[step.inputs[0]]


class NonlinearKind(Kind):
    """An elementwise nonlinearity ``y = f(z)``: Rescale or RevealCancel (``step.rule``)."""

    def compile(self, step, dtype, fuse=True):
        """``(z_x, y_x, Δ, A=None) -> Δy``. Piecewise-linear activations are fused
        (:func:`backend.fuse`, with ``fuse``) and their quotients are exact in the scoring
        precision. Smooth ones are not fused (XLA's fast float32 ``exp``/``tanh`` are ~1e-6
        off) and, when scoring in float32, evaluate their difference quotients in float64
        (:func:`nonlinear.quotient_dtype`): ``f(z_x) - f(z_r)`` cancels digits that ``Δy/Δ``
        would amplify for small ``Δ``."""
        rule_fn = nonlinear.NONLINEAR_RULES.get(step.rule, nonlinear.rescale_rule)
        uses_parts = rule_fn is nonlinear.reveal_cancel_rule
        piecewise = self.fuses(step)
        work = dtype if piecewise else nonlinear.quotient_dtype(dtype)
        eps = nonlinear.EPS.get(work, 1e-5)

        def rule(z_x, y_x, d, a=None):
            fp = nonlinear.derivative(step.fn, z_x)
            extra = (a,) if uses_parts else ()
            return rule_fn(step.fn, z_x, y_x, fp, d, *extra, eps, work=work)
        return backend.fuse(rule) if piecewise and fuse else rule

    def fuses(self, step):
        return step.act in PIECEWISE_LINEAR

    def forward(self, step, inputs, dtype):
        return step.fn(inputs[0])

    def difference(self, step, deltas, ctx):
        key = step.inputs[0]
        return ctx.rules[step.output](ctx.ax[key], ctx.ax[step.output], deltas[0],
                                      ctx.parts.get(key))


class NonElementwiseKind(NonlinearKind):
    """A non-elementwise activation (softmax): only evaluated at x, as a model output."""

    def difference(self, step, deltas, ctx):  # pragma: no cover - check_supported runs first
        raise UnsupportedLayerError(f"layer {step.name!r}: {step.act!r} has no DeepLIFT rule")


class ProductKind(Kind):
    """``a * b * ...`` of input-dependent tensors (Multiply layer, ``keras.ops.multiply``): the
    product rule (:mod:`dnalift.engine.product`). RevealCancel: the output splits its own
    Δ by sign (``signs="split"``), like a nonlinearity's output."""

    def difference(self, step, deltas, ctx):
        op = step.layer
        mul = (lambda u, v: op.call([u, v])) if isinstance(op, L.Layer) else ops.multiply
        return product.fold_product(mul, [ctx.ax[k] for k in step.inputs], deltas)


class MaxPoolKind(Kind):
    """Max pooling with the ``maxpool=`` rule (:mod:`dnalift.engine.maxpool`)."""

    def compile(self, step, dtype, fuse=True):
        rule = partial(maxpool.maxpool_rule, step.layer, variant=step.rule.rsplit("-", 1)[-1])
        return backend.fuse(rule) if fuse else rule

    def fuses(self, step):
        return True

    def forward(self, step, inputs, dtype):
        return step.layer.call(inputs[0])

    def difference(self, step, deltas, ctx):
        return ctx.rules[step.output](ctx.ax[step.inputs[0]], deltas[0])


class TimeDistributedKind(Kind):
    """The kind of a layer inside ``TimeDistributed``: the inner layer's own kind on the time
    axis folded into the batch (:mod:`dnalift.engine.timedistributed`). Name and ``signs`` are
    the inner kind's, so the policy and RevealCancel treat it as the inner layer."""

    def __init__(self, inner: Kind):
        super().__init__(inner.name, inner.signs)
        self.inner = inner

    def compile(self, step, dtype, fuse=True):
        return self.inner.compile(step, dtype, fuse)

    def fuses(self, step):
        return self.inner.fuses(step)

    def forward(self, step, inputs, dtype):
        folded = [timedistributed.fold(v) for v in inputs]
        return timedistributed.unfold(self.inner.forward(step, folded, dtype),
                                      inputs[0].shape[1])

    @staticmethod
    def _fold_context(step: Step, ctx: PairContext, k: int) -> PairContext:
        """``ctx`` with the activations and absolute parts ``step`` reads folded."""
        keys = list(step.inputs) + [step.output]
        return PairContext({key: timedistributed.fold(ctx.ax[key]) for key in keys
                            if key in ctx.ax},
                           {key: timedistributed.fold_pairs(ctx.parts[key], k)
                            for key in step.inputs if key in ctx.parts}, ctx.rules, ctx.dtype)

    def _on_folded(self, method: Callable, step: Step, deltas: list, ctx: PairContext, *extra):
        """``method(step, folded deltas, *folded extra, folded ctx)``, unfolded."""
        k = deltas[0].shape[0] // ctx.ax[step.inputs[0]].shape[0]
        t = deltas[0].shape[1]
        fold = [timedistributed.fold_pairs(v, k) for v in deltas]
        more = [timedistributed.fold_pairs(v, k) for v in extra]
        out = method(step, fold, *more, self._fold_context(step, ctx, k))
        return timedistributed.unfold_pairs(out, k, t)

    def difference(self, step, deltas, ctx):
        return self._on_folded(self.inner.difference, step, deltas, ctx)

    def absolute(self, step, deltas, out, ctx):
        return self._on_folded(self.inner.absolute, step, deltas, ctx, out)


class UnsupportedKind(Kind):
    """A node with no DeepLIFT rule (``step.error`` says why). It is evaluated at x as the
    model does; :func:`check_supported` refuses it where the scored target depends on it, so
    a layer in another head of the model does not block scoring."""

    def difference(self, step, deltas, ctx):  # pragma: no cover - check_supported runs first
        raise UnsupportedLayerError(step.error)


#: The step kinds, by name.
KINDS: dict[str, Kind] = {k.name: k for k in (
    AffineKind("weights", signs="own"), AffineKind("scaling", signs="carry"),
    PlumbingKind("plumbing"), SubtractKind("subtract"), NegateKind("negate"),
    PlumbingKind("custom_linear"), PlumbingKind("custom_linear_signed", signs="split"),
    PlumbingKind("scaled", signs="split"), ProductKind("product"),
    NonlinearKind("nonlinear"), NonElementwiseKind("nonelementwise"), MaxPoolKind("maxpool"),
    UnsupportedKind("unsupported"))}


# --------------------------------------------------------------------------- classification
_CONV = (L.Conv1D, L.Conv2D, L.Conv3D) + affine.CONV_TRANSPOSE
_CONV_NAMES = frozenset(c.__name__ for c in _CONV)
# Layers that are linear and homogeneous (no bias) in their tensor arguments: ``layer.call(Δ)``
# is their Linear rule. All have non-negative coefficients except Subtract.
_PLUMBING = tuple(c for c in (
    L.Flatten, L.Reshape, L.Permute, L.Cropping1D, L.Cropping2D, L.Cropping3D,
    L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D, L.UpSampling1D, L.UpSampling2D,
    L.UpSampling3D, L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.SpatialDropout3D,
    L.GaussianNoise, L.GaussianDropout, L.AlphaDropout, L.ActivityRegularization, L.Identity,
    L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D, L.GlobalAveragePooling1D,
    L.GlobalAveragePooling2D, L.GlobalAveragePooling3D, L.Add, L.Subtract, L.Concatenate,
    L.Average, L.RepeatVector) if c is not None)
_ACTIVATION_LAYERS = (L.Activation, L.Softmax, L.ReLU, L.LeakyReLU, L.PReLU, L.ELU)
# Raw keras.ops in a functional graph (class names of keras.src.ops operations) -> kind name.
_OPS = {**{n: "plumbing" for n in ("Add", "Reshape", "Transpose", "Concatenate", "ExpandDims",
                                   "Squeeze", "Sum", "Mean", "GetItem", "Flatten")},
        "Subtract": "subtract", "Negative": "negate"}
_OPS_ELEMENTWISE = frozenset({"Exp", "Tanh", "Sigmoid", "Relu", "Softplus", "Elu", "Selu",
                              "Gelu", "Silu", "Softsign", "Relu6", "LeakyRelu", "Expm1",
                              "HardSigmoid", "LogSigmoid", "Sinh", "Mish"})


def activation_name(fn) -> str | None:
    """``__name__`` of an activation function, ``None`` for linear/absent."""
    if fn is None:
        return None
    nm = getattr(fn, "__name__", type(fn).__name__)
    return None if nm == "linear" else nm


def _step(kind: str, nd: GraphNode, **kw) -> Step:
    """A step of kind ``kind`` for the whole node ``nd``."""
    return Step(KINDS[kind], nd, list(nd.inputs), nd.output, nd.name, **kw)


def _activation_step(nd: GraphNode, inputs: list, act: str, fn: Callable,
                     elementwise_only: bool = False) -> Step:
    """The nonlinearity ``act`` of a node (``nonelementwise`` for e.g. a softmax)."""
    kind = "nonlinear" if elementwise_only or act in ELEMENTWISE_ACTIVATIONS \
        else "nonelementwise"
    return Step(KINDS[kind], nd, inputs, nd.output, nd.name, "rescale", fn, act)


def _affine_steps(nd: GraphNode) -> list[Step]:
    """Dense/Conv/BatchNormalization, with ``activation=`` split off as its own step."""
    op = nd.op
    if isinstance(op, L.Dense) and len(op.kernel.shape) != 2:
        raise UnsupportedLayerError(f"layer {nd.name!r} of type Dense has a quantized or "
                                    "unusual kernel")
    if isinstance(op, L.EinsumDense) and not affine.einsum_is_plain(op.equation):
        raise UnsupportedLayerError(
            f"layer {nd.name!r} of type EinsumDense: equation {op.equation!r} is not a plain "
            "contraction with its kernel (a kernel index is summed without the input)")
    kind = KINDS["scaling" if isinstance(op, L.BatchNormalization) else "weights"]
    act = activation_name(getattr(op, "activation", None))
    if act is None:
        return [Step(kind, nd, list(nd.inputs), nd.output, nd.name)]
    pre = nd.output + ("pre",)
    return [Step(kind, nd, list(nd.inputs), pre, nd.name),
            _activation_step(nd, [pre], act, op.activation)]


def _plumbing_steps(nd: GraphNode) -> list[Step]:
    return [_step("subtract" if isinstance(nd.op, L.Subtract) else "plumbing", nd)]


def _maxpool_steps(nd: GraphNode) -> list[Step]:
    if getattr(nd.op, "data_format", "channels_last") != "channels_last":
        raise UnsupportedLayerError(
            f"layer {nd.name!r} of type {type(nd.op).__name__}: channels_first max pooling is "
            "not supported")
    return [_step("maxpool", nd, rule="maxpool")]


def _activation_layer_steps(nd: GraphNode) -> list[Step]:
    """Activation, Softmax and the activation layers (ReLU, LeakyReLU, PReLU, ELU)."""
    op = nd.op
    if isinstance(op, L.Activation):
        act, fn = activation_name(op.activation) or "linear", op.activation
    elif isinstance(op, L.Softmax):
        act, fn = "softmax", op.call
    else:
        act, fn = type(op).__name__.lower(), op.call
    if act == "linear":
        return [_step("plumbing", nd)]
    own_layer = not isinstance(op, (L.Activation, L.Softmax))
    return [_activation_step(nd, list(nd.inputs), act, fn, elementwise_only=own_layer)]


def _op_steps(nd: GraphNode) -> list[Step] | None:
    """Raw ``keras.ops`` operations of a functional graph (None if unknown)."""
    cls = type(nd.op).__name__
    if cls in _OPS:
        return [_step(_OPS[cls], nd)]
    if cls == "Multiply":  # by a constant (one tensor argument): linear, signs unknown
        return [_step("product", nd, rule="product") if len(nd.inputs) > 1 else
                _step("scaled", nd)]
    if cls in _OPS_ELEMENTWISE and len(nd.inputs) == 1:
        fn = nd.op.call if hasattr(nd.op, "call") else nd.op
        return [_step("nonlinear", nd, rule="rescale", fn=fn, act=cls.lower())]
    return None


def _is_affine(op) -> bool:
    return isinstance(op, (L.Dense, L.EinsumDense, L.BatchNormalization)) or \
        (isinstance(op, _CONV) and type(op).__name__ in _CONV_NAMES)


#: Built-in layer classification: (predicate on the layer, node -> steps), first match wins.
_BUILTINS: tuple = (
    (_is_affine, _affine_steps),
    (lambda op: isinstance(op, _PLUMBING), _plumbing_steps),
    (lambda op: isinstance(op, L.Multiply), lambda nd: [_step("product", nd, rule="product")]),
    (lambda op: isinstance(op, maxpool.MAXPOOL_LAYERS + maxpool.GLOBAL_MAXPOOL_LAYERS),
     _maxpool_steps),
    (lambda op: isinstance(op, _ACTIVATION_LAYERS), _activation_layer_steps),
)


# --------------------------------------------------------------------------- registry
@dataclass
class Registry:
    """User layer classes and how they split into steps (built-in layers need no entry).

    Attributes
    ----------
    custom : dict type -> callable
        Layer class -> ``node -> list of Step``; an instance of a registered class (or of a
        subclass) uses the first matching entry, before the built-in classification.
    """

    custom: dict = field(default_factory=dict)

    def add_linear(self, cls: type, *, nonnegative: bool = False) -> None:
        """Declare ``cls`` linear and bias-free: ``layer.call(Δ)`` is its Δ.

        ``nonnegative=True`` lets RevealCancel's ``Δ±`` pass through it (``layer.call(A)``),
        right only if all its coefficients are >= 0; otherwise its output is split by sign.
        """
        kind = "custom_linear" if nonnegative else "custom_linear_signed"
        self.custom[cls] = lambda nd: [_step(kind, nd)]

    def add_nonlinear(self, cls: type, fn: Callable | None = None) -> None:
        """Declare ``cls`` an elementwise nonlinearity ``y = f(x)``.

        ``fn(layer) -> callable`` returns ``f`` for a layer instance (default ``layer.call``).
        """
        def steps(nd):
            f = fn(nd.op) if fn is not None else nd.op.call
            return [_step("nonlinear", nd, rule="rescale", fn=f, act=type(nd.op).__name__)]
        self.custom[cls] = steps

    def classify(self, nd: GraphNode) -> list[Step]:
        """The steps of one graph node.

        Raises
        ------
        UnsupportedLayerError
            For a layer / operation with no DeepLIFT rule.
        """
        op = nd.op
        for cls, make in self.custom.items():
            if isinstance(op, cls):
                return make(nd)
        if isinstance(op, L.TimeDistributed):
            inner = GraphNode(op.layer, nd.name, list(nd.inputs), nd.output)
            return [dataclasses.replace(s, kind=TimeDistributedKind(s.kind))
                    for s in self.classify(inner)]
        for test, make in _BUILTINS:
            if test(op):
                return make(nd)
        found = None if isinstance(op, L.Layer) else _op_steps(nd)
        if found is None:
            raise UnsupportedLayerError(
                f"layer {nd.name!r} of type {type(op).__name__} has no DeepLIFT rule (register "
                "it with dnalift.deeplift.register_linear_layer / register_nonlinear_layer if "
                "it is linear or elementwise)")
        return found

    def node_steps(self, nd: GraphNode) -> list[Step]:
        """:meth:`classify`, with a node that has no rule kept as one ``unsupported`` step
        carrying the error message (raised by :func:`check_supported` if it is needed)."""
        try:
            return self.classify(nd)
        except UnsupportedLayerError as err:
            return [_step("unsupported", nd, error=str(err))]

    def split_steps(self, nodes: list[GraphNode]) -> list[Step]:
        """All steps of the graph nodes, in order (see :meth:`node_steps`)."""
        return [s for nd in nodes for s in self.node_steps(nd)]


#: Registry used when none is given (filled by the two functions below without ``registry``).
DEFAULT_REGISTRY = Registry()


def register_linear_layer(cls: type, *, nonnegative: bool = False,
                          registry: Registry | None = None) -> None:
    """Declare a custom layer class linear and bias-free in ``registry`` (see
    :meth:`Registry.add_linear`); without ``registry``, in :data:`DEFAULT_REGISTRY`."""
    (registry if registry is not None else DEFAULT_REGISTRY).add_linear(
        cls, nonnegative=nonnegative)


def register_nonlinear_layer(cls: type, fn: Callable | None = None, *,
                             registry: Registry | None = None) -> None:
    """Declare a custom layer class an elementwise nonlinearity in ``registry`` (see
    :meth:`Registry.add_nonlinear`); without ``registry``, in :data:`DEFAULT_REGISTRY`."""
    (registry if registry is not None else DEFAULT_REGISTRY).add_nonlinear(cls, fn)


def check_supported(steps: list[Step]) -> None:
    """Raise for a node with no DeepLIFT rule or a non-elementwise activation (e.g. a softmax)
    among ``steps`` (the steps the scored target depends on)."""
    for s in steps:
        if s.kind.name == "unsupported":
            raise UnsupportedLayerError(s.error)
        if s.kind.name == "nonelementwise":
            raise UnsupportedLayerError(
                f"layer {s.name!r} of type {type(s.layer).__name__} applies {s.act!r}, which is "
                "not elementwise; only the model's final sigmoid/softmax can be skipped")
