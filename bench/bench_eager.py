"""Eager against traced batch steps: what tracing costs at the first call and saves per batch.

On TensorFlow the engine runs its batch step either traced into a graph (``tf.function``,
``DeepLift(trace=True)``) or eagerly, op by op (``trace=False``). Tracing costs time once,
at the first call; every traced batch then runs faster. For each model this prints, from one
process, the first call's seconds and the best later call's seconds per batch, traced and
eager, and the break-even job size in batches, ``extra first-call seconds / seconds saved
per batch``, the figure behind :data:`dnalift.engine.backend.EAGER_MAX_BATCHES`::

    python bench/bench_eager.py [--batches 2] [--batch-size 256] [--k 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_engine import _references  # noqa: E402
from bench_fuse import _models  # noqa: E402
from bench_trace import compare  # noqa: E402


def run(batches: int = 2, batch_size: int = 256, k: int = 10, repeats: int = 3,
        mode: str = "genomics_default", seed: int = 0) -> list[dict]:
    """One row per model: first-call seconds and seconds per batch, traced and eager."""
    from dnalift.deeplift import DeepLift
    rows = []
    for name, model in _models().items():
        length = model.inputs[0].shape[1]
        n = batches * batch_size // k
        rng = np.random.default_rng(seed)
        x = np.eye(4, dtype="float32")[rng.integers(0, 4, (n, length))]
        refs = _references(x, k, seed)
        engines = {key: DeepLift(model, mode=mode, batch_size=batch_size, trace=trace,
                                 fuse=False)
                   for key, trace in (("traced", True), ("eager", False))}
        row = compare(engines, x, refs, repeats, units=batches)
        rows.append({"model": name, "batches": batches, "pairs": n * k, **row})
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mode", default="genomics_default")
    args = parser.parse_args(argv)
    print("model\tpairs\tfirst call traced / eager (s)\ts per batch traced / eager\t"
          "break-even batches")
    for r in run(args.batches, args.batch_size, args.k, args.repeats, args.mode):
        print(f"{r['model']}\t{r['pairs']}\t{r['traced_first_s']:.2f} / "
              f"{r['eager_first_s']:.2f}\t{r['traced_per_unit']:.3f} / "
              f"{r['eager_per_unit']:.3f}\t{r['break_even']:,.1f}")


if __name__ == "__main__":
    main()
