"""Fused against unfused rules: what XLA fusion costs at the first call and saves per pair.

On TensorFlow the engine can compile its max-pool and piecewise-linear rules with XLA
(``DeepLift(fuse=True)``, :func:`dnalift.engine.backend.fuse`). Compiling costs time once, at
the first call; the fused rules then run faster. For each model this prints, from one
process, the first call's seconds and the best later call's microseconds per (sequence,
reference) pair with ``fuse=True`` and ``fuse=False``, and the break-even job size
``extra first-call seconds / seconds saved per pair``, the figure behind
:data:`dnalift.engine.backend.FUSE_MIN_ELEMENTS`::

    python bench/bench_fuse.py [--n-seqs 64] [--k 10] [--batch-size 640] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_engine import _references  # noqa: E402
from bench_trace import compare  # noqa: E402

SHIPPED = HERE.parent / "data" / "simulated" / "model.h5"


def _models() -> dict:
    from dnalift.deeplift import load_model
    from models import BUILDERS
    return {"shipped simulated": load_model(SHIPPED), "bpnet-sized": BUILDERS["bpnet"]()}


def run(n_seqs: int = 64, k: int = 10, batch_size: int = 640, repeats: int = 3,
        mode: str = "genomics_default", seed: int = 0) -> list[dict]:
    """One row per model: first-call seconds and us per pair, fused and unfused."""
    from dnalift.deeplift import DeepLift
    rows = []
    for name, model in _models().items():
        length = model.inputs[0].shape[1]
        n = n_seqs if length <= 500 else max(1, n_seqs // 8)
        rng = np.random.default_rng(seed)
        x = np.eye(4, dtype="float32")[rng.integers(0, 4, (n, length))]
        refs = _references(x, k, seed)
        engines = {key: DeepLift(model, mode=mode, batch_size=batch_size, fuse=fuse, trace=True)
                   for key, fuse in (("fused", True), ("unfused", False))}
        row = compare(engines, x, refs, repeats, units=n * k)
        rows.append({"model": name, "pairs": n * k, **row})
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-seqs", type=int, default=64)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mode", default="genomics_default")
    args = parser.parse_args(argv)
    print("model\tpairs\tfirst call fused / unfused (s)\tus per pair fused / unfused\t"
          "break-even pairs")
    for r in run(args.n_seqs, args.k, args.batch_size, args.repeats, args.mode):
        print(f"{r['model']}\t{r['pairs']}\t{r['fused_first_s']:.2f} / "
              f"{r['unfused_first_s']:.2f}\t{r['fused_per_unit'] * 1e6:.0f} / "
              f"{r['unfused_per_unit'] * 1e6:.0f}\t{r['break_even']:,.0f}")


if __name__ == "__main__":
    main()
