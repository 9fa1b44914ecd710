"""Engine throughput: DeepLIFT modes vs one plain input-gradient pass over the same pairs.

For each model (``bench/models.py``) N sequences with K references each (random one-hot
sequences; dinucleotide shuffles from ``dnalift.references`` when available) are scored
with ``rescale``, ``revealcancel`` and ``genomics_default`` (one task), and the baseline
computes the gradient of the same target with respect to the input for the same N·K pairs,
with the same batch size, compiled the same way (``tf.function`` / ``jax.jit``), in the same
process. Warm-up (tracing) is excluded; each figure is the best of ``--repeats`` runs, taken
round-robin over the modes.

    python bench/bench_engine.py [--backend tensorflow|jax|torch] [--json PATH]

``run(backend_name, models, ...) -> list[dict]`` is the library entry point (used by
``bench/run_all.py``); another backend than the current process's runs in a subprocess
(Keras fixes the backend per process).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "engine.json"
DEFAULT_SIZES = {"simulated": (64, 640), "bpnet": (8, 80)}  # (sequences, batch pairs)
MODES = ("rescale", "revealcancel", "genomics_default")


def _references(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    try:
        from dnalift.references import dinucleotide_shuffle_references
        return dinucleotide_shuffle_references(x, k=k, seed=seed)
    except ImportError:  # pragma: no cover - references module not available
        rng = np.random.default_rng(seed)
        return np.eye(4, dtype="float32")[rng.integers(0, 4, (x.shape[0], k, x.shape[1]))]


def _best_times(fns: dict, repeats: int) -> dict:
    """Best-of-``repeats`` seconds per callable, warm-up (tracing) excluded.

    The callables are timed round-robin (one of each per repeat), so a slow spell of a
    shared machine hits every mode alike instead of whichever ran during it.
    """
    for fn in fns.values():
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def _gradient_pass(engine):
    """Compiled plain input gradient of the engine's target over a batch of pairs."""
    from keras import ops
    from dnalift.engine import backend

    net = engine._net

    def step(a):
        _, g = backend.value_and_task_grads(lambda v: net.target_of_input(v)[0], a)
        return g[0]
    compiled = backend.compile_fn(step)

    def run(pairs: np.ndarray, batch: int):
        out = []
        for lo in range(0, pairs.shape[0], batch):
            out.append(backend.to_numpy(compiled(ops.convert_to_tensor(pairs[lo:lo + batch]))))
        return out
    return run


def _run_here(models, sizes, k, repeats, seed) -> list[dict]:
    import keras
    from dnalift.deeplift import DeepLift
    sys.path.insert(0, str(HERE))
    from models import BUILDERS  # noqa: E402

    rows = []
    for name in models:
        n, batch = sizes.get(name, DEFAULT_SIZES[name])
        model = BUILDERS[name]()
        length = model.inputs[0].shape[1]
        rng = np.random.default_rng(seed)
        x = np.eye(4, dtype="float32")[rng.integers(0, 4, (n, length))]
        refs = _references(x, k, seed)
        pairs = refs.reshape(n * k, length, 4)  # the N·K pair inputs of the baseline
        base_engine = DeepLift(model, mode="rescale", tasks=[0], batch_size=batch, fuse=True)
        grad = _gradient_pass(base_engine)
        fns = {"input_gradient": lambda: grad(pairs, batch)}
        for mode in MODES:
            # throughput of long jobs: rules fused, as a long job decides (backend.worth_fusing)
            engine = DeepLift(model, mode=mode, tasks=[0], batch_size=batch, fuse=True)
            fns[mode] = lambda engine=engine: engine.attribute(x, refs)
        times = _best_times(fns, repeats)
        for mode, t in times.items():
            rows.append(dict(backend=keras.backend.backend(), model=name, mode=mode,
                             sequences=n, k=k, pairs=n * k, batch_pairs=batch, seconds=t,
                             pairs_per_s=n * k / t, ratio=t / times["input_gradient"]))
    return rows


def run(backend_name: str = "tensorflow", models=("simulated", "bpnet"), *, sizes=None,
        k: int = 10, repeats: int = 3, seed: int = 0) -> list[dict]:
    """Benchmark rows (one per model x mode, plus the gradient baseline) for one backend.

    Each row: backend, model, mode, sequences, k, pairs, batch_pairs, seconds (best of
    ``repeats``), pairs_per_s, ratio (time / input-gradient time on the same pairs).
    """
    sizes = dict(sizes or {})
    current = os.environ.get("KERAS_BACKEND", "tensorflow")
    if "keras" in sys.modules:
        import keras
        current = keras.backend.backend()
    if backend_name == current:
        return _run_here(models, sizes, k, repeats, seed)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--backend", backend_name,
               "--json", str(out), "--k", str(k), "--repeats", str(repeats), "--seed", str(seed),
               "--models", *models, "--quiet"]
        for name, (n, b) in sizes.items():
            cmd += ["--size", f"{name}={n},{b}"]
        env = dict(os.environ, KERAS_BACKEND=backend_name)
        subprocess.run(cmd, check=True, env=env)
        return json.loads(out.read_text())


def print_table(rows: list[dict]) -> None:
    print(f"{'backend':<11}{'model':<11}{'mode':<18}{'pairs':>6}{'batch':>6}"
          f"{'seconds':>9}{'pairs/s':>9}{'x grad':>8}")
    for r in rows:
        print(f"{r['backend']:<11}{r['model']:<11}{r['mode']:<18}{r['pairs']:>6}"
              f"{r['batch_pairs']:>6}{r['seconds']:>9.3f}{r['pairs_per_s']:>9.1f}"
              f"{r['ratio']:>8.2f}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    p.add_argument("--models", nargs="+", default=["simulated", "bpnet"])
    p.add_argument("--size", action="append", default=[],
                   help="MODEL=N,BATCH sequences and pairs per batch")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=str(DEFAULT_JSON))
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if a.backend != os.environ.get("KERAS_BACKEND", "tensorflow"):
        os.environ["KERAS_BACKEND"] = a.backend  # before keras is imported
    sizes = {}
    for s in a.size:
        name, nb = s.split("=")
        n, b = nb.split(",")
        sizes[name] = (int(n), int(b))
    rows = run(a.backend, a.models, sizes=sizes, k=a.k, repeats=a.repeats, seed=a.seed)
    out = Path(a.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    if not a.quiet:
        print_table(rows)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
