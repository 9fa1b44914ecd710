"""Engine, per-backend helpers (used by every stage): autodiff, compilation, TF32.

Everything else in the engine is written with ``keras.ops`` and runs unchanged on the
TensorFlow (default), JAX and PyTorch backends of Keras 3. Only three things differ per
backend and live here: taking gradients of a function (one backward per task sharing one
forward), the elementwise derivative of a nonlinearity (the Rescale/RevealCancel fallback
where a difference is ~0), and compiling a step function.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import keras

Tensor = object  # a backend tensor (tf.Tensor, jax.Array, torch.Tensor)


def name() -> str:
    """The active Keras backend: ``"tensorflow"``, ``"jax"`` or ``"torch"``."""
    return keras.backend.backend()


def value_and_task_grads(fn: Callable, x: Tensor, *, has_aux: bool = False) -> tuple:
    """Value of ``fn(x)`` ``(P, T)`` and, per column t, the gradient of ``sum_p fn(x)[p, t]``.

    Parameters
    ----------
    fn : callable
        Maps ``x`` ``(P, ...)`` to ``(P, T)`` (or to ``((P, T), aux)`` with ``has_aux``); rows
        must not interact (so the gradient of the column sum gives every row's own gradient).
    x : tensor ``(P, ...)``
    has_aux : bool
        ``fn`` also returns a second value, passed through without gradient.

    Returns
    -------
    value : tensor ``(P, T)``
    grads : list of T tensors shaped like ``x``
    aux : only with ``has_aux``
    """
    full = fn if has_aux else (lambda a: (fn(a), None))
    b = name()
    if b == "tensorflow":
        v, aux, grads = _tf_task_grads(full, x)
    elif b == "jax":
        import jax
        import jax.numpy as jnp
        v, vjp, aux = jax.vjp(full, x, has_aux=True)
        grads = [vjp(jnp.zeros_like(v).at[:, t].set(1))[0] for t in range(v.shape[1])]
    elif b == "torch":
        v, aux, grads = _torch_task_grads(full, x)
    else:
        raise NotImplementedError(f"Keras backend {b!r} is not supported (tensorflow, jax, "
                                  "torch)")
    return (v, grads, aux) if has_aux else (v, grads)


def _tf_task_grads(fn: Callable, x: Tensor) -> tuple:
    import tensorflow as tf
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        v, aux = fn(x)
        cols = [tf.reduce_sum(v[:, t]) for t in range(v.shape[1])]
    grads = [tape.gradient(c, x) for c in cols]
    del tape
    return v, aux, grads


def _torch_task_grads(fn: Callable, x: Tensor) -> tuple:
    import torch
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        v, aux = fn(x)
        n = v.shape[1]
        grads = [torch.autograd.grad(v[:, t].sum(), x, retain_graph=t < n - 1)[0]
                 for t in range(n)]
    return v.detach(), None if aux is None else aux.detach(), grads


def elementwise_derivative(f: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    """``f'(z)`` for an elementwise function ``f`` (no gradient flows through the result)."""
    b = name()
    if b == "tensorflow":
        import tensorflow as tf
        z = tf.stop_gradient(z)
        with tf.GradientTape() as tape:
            tape.watch(z)
            y = f(z)
        return tf.stop_gradient(tape.gradient(y, z))
    if b == "jax":
        import jax
        import jax.numpy as jnp
        z = jax.lax.stop_gradient(z)
        y, vjp = jax.vjp(f, z)
        return jax.lax.stop_gradient(vjp(jnp.ones_like(y))[0])
    if b == "torch":
        import torch
        z = z.detach().requires_grad_(True)
        with torch.enable_grad():
            y = f(z)
            (g,) = torch.autograd.grad(y.sum(), z)
        return g.detach()
    raise NotImplementedError(f"Keras backend {b!r} is not supported")


def compile_fn(fn: Callable, trace: bool = True) -> Callable:
    """Compile a step function: ``tf.function`` on TensorFlow, ``jax.jit`` on JAX.

    Callers pass fixed (padded) shapes, so each distinct batch shape is traced once.
    ``trace=False`` returns ``fn`` itself on TensorFlow, which then runs eagerly (op by op:
    no tracing cost, slower calls; see :func:`worth_tracing`). JAX always jits (its op-by-op
    mode compiles every operation instead), and PyTorch always runs eagerly
    (``torch.compile`` start-up costs more than it saves here).
    """
    b = name()
    if b == "tensorflow":
        if not trace:
            return fn
        import tensorflow as tf
        return tf.function(fn, reduce_retracing=False, autograph=False)
    if b == "jax":
        import jax
        return jax.jit(fn)
    return fn


EAGER_MAX_BATCHES = 4
"""A job runs its step eagerly by default only if it has at most this many batches and ..."""
EAGER_MAX_ELEMENTS = 10_000_000
"""... its rules process at most this many elements in all (:func:`worth_tracing`)."""


def worth_tracing(n_pairs: int, batch_size: int, elements: list[int]) -> bool:
    """Whether tracing the batch step into a graph (:func:`compile_fn`) pays for a job.

    Parameters
    ----------
    n_pairs : int
        (sequence, reference) passes the job makes (pairs, times the steps of integrated
        gradients).
    batch_size : int
        Pairs per batch.
    elements : list of int
        Per rule that fuses (max-pool and piecewise-linear rules: a proxy for the network's
        activation volume), the elements of its input per pair.

    Notes
    -----
    Tracing costs once, at the first call (TensorFlow builds the graph of the forward pass
    and of one backward pass per task: ~0.4-5 s on the test zoo's models, ~1 s on the shipped
    one); traced calls then run faster, by a roughly fixed dispatch cost per batch and by
    TensorFlow's graph optimisations on large tensors. ``python bench/bench_eager.py``
    (2-core AMD EPYC, genomics_default): the shipped simulated model (9,600 rule elements
    per pair) breaks even at ~6 batches of 256 pairs, ~1.5e7 elements; a BPNet-sized model
    (576,000 per pair) at ~60 pairs, ~3.5e7 elements, hence :data:`EAGER_MAX_ELEMENTS`
    and :data:`EAGER_MAX_BATCHES`. Eager and traced steps give the same scores to float
    rounding (``tests/test_engine.py``).
    """
    batches = -(-int(n_pairs) // int(batch_size))
    return batches > EAGER_MAX_BATCHES or int(n_pairs) * sum(elements) > EAGER_MAX_ELEMENTS


FUSE_MIN_ELEMENTS = 100_000_000
"""A job fuses its rules by default when its fused rules would process, on average, at least
this many elements each over the job (:func:`worth_fusing`)."""


def worth_fusing(n_pairs: int, elements: list[int]) -> bool:
    """Whether fusing the rules (:func:`fuse`) pays for a job of ``n_pairs`` pairs.

    Parameters
    ----------
    n_pairs : int
        (sequence, reference) pairs the job scores.
    elements : list of int
        Per rule that fuses, the elements of its input per pair.

    Notes
    -----
    Fusing compiles each rule and its gradient with XLA when the step is first traced, about
    0.15-0.3 s per rule; the fused rules then save time in proportion to the elements they
    process. ``python bench/bench_fuse.py`` (2-core AMD EPYC): the shipped simulated model
    (4 fused rules, 2,400 elements each per pair) breaks even at ~46,000 pairs, a BPNet-sized
    model (9 rules, 64,000 elements) at ~2,500 pairs: both ~1e8 elements per rule, hence
    :data:`FUSE_MIN_ELEMENTS`. Fused and unfused rules give the same scores
    (``tests/test_engine.py``).
    """
    if not elements:
        return False
    return int(n_pairs) * sum(elements) >= FUSE_MIN_ELEMENTS * len(elements)


def fuse(fn: Callable) -> Callable:
    """Compile an elementwise-heavy function of tensors into fused kernels where that pays.

    On TensorFlow the function alone is compiled with XLA (``jit_compile=True``): the dozen
    elementwise operations of a Rescale/RevealCancel/max-pool rule become one pass over memory,
    while the convolutions around it keep TensorFlow's own kernels (oneDNN on CPU, which XLA's
    CPU convolutions are slower than). On JAX the whole step is already jitted, and PyTorch runs
    eagerly: ``fn`` is returned unchanged. Arguments must be tensors (bind the rest first).
    """
    if name() == "tensorflow":
        import tensorflow as tf
        return tf.function(fn, jit_compile=True, reduce_retracing=False, autograph=False)
    return fn


def disable_tf32() -> None:
    """Turn off TF32 matmuls/convolutions (they break summation-to-delta on Ampere+ GPUs).

    This is process-wide in every backend (TensorFlow and PyTorch keep it as a global
    flag); JAX uses ``jax_default_matmul_precision="highest"``.
    """
    b = name()
    if b == "tensorflow":
        import tensorflow as tf
        tf.config.experimental.enable_tensor_float_32_execution(False)
    elif b == "jax":
        import jax
        jax.config.update("jax_default_matmul_precision", "highest")
    elif b == "torch":
        import torch
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def float64_available() -> bool:
    """Whether the backend computes float64: always, except JAX without ``JAX_ENABLE_X64``
    (where float64 arrays silently become float32)."""
    if name() == "jax":
        import jax
        return bool(jax.config.jax_enable_x64)
    return True


def autocast(dtype: str) -> contextlib.AbstractContextManager:
    """Context in which Keras layers and ops compute in ``dtype``.

    Layers read their float weights cast to ``dtype`` (Keras autocast), which lets
    ``layer.call`` run on float64 inputs (PReLU, pooling, ...) with float32 weights. For
    float64 on JAX and PyTorch, Keras's type promotion (``keras.backend.result_type``) would
    map float64 to float32, as JAX does without x64, so ``ops.mean`` (global average
    pooling), ``ops.divide`` and others would compute in float32; the scope keeps float64
    there. TensorFlow's promotion already keeps float64.
    """
    stack = contextlib.ExitStack()
    try:
        from keras.src.backend.common.variables import AutocastScope
    except ImportError:  # pragma: no cover - Keras internals moved
        return stack
    stack.enter_context(AutocastScope(dtype))
    if dtype == "float64":
        stack.enter_context(float64_promotion())
    return stack


def float64_promotion() -> contextlib.AbstractContextManager:
    """Context in which Keras ops on float64 tensors compute in float64 on every backend.

    On JAX and PyTorch, Keras's promotion rule maps float64 to float32 (a module-level table
    in Keras, read at each op call, or trace under ``jax.jit``); the scope suspends it and
    restores the previous entry on exit. TensorFlow keeps float64 already (no change).
    """
    if name() == "tensorflow":
        return contextlib.nullcontext()
    return _promote_to_float64()


@contextlib.contextmanager
def _promote_to_float64():
    from keras.src.backend.common import dtypes
    table = dtypes.BIT64_TO_BIT32_DTYPE
    before = table.get("float64")
    table["float64"] = "float64"
    try:
        yield
    finally:
        table["float64"] = before


def to_numpy(x: Tensor):
    """A backend tensor as a numpy array."""
    return keras.ops.convert_to_numpy(x)
