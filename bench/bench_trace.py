"""Start-up cost of the engine: the first call (tracing + one run) against a traced call.

The first ``DeepLift.attribute`` of an engine traces its step; later calls of the same batch
shape only run it. For each mode (and integrated gradients at several ``steps``) on the
shipped simulated model, this prints the first call's seconds, the best traced call's seconds
(best of ``--repeats``) and their ratio, all measured in one process::

    python bench/bench_trace.py [--n-seqs 64] [--k 10] [--repeats 3]

Integrated gradients' steps run in a compiled loop, so its first call should not grow with
``steps``; the DeepLIFT modes show what tracing costs a short job.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench_engine import _references

MODEL = Path(__file__).resolve().parent.parent / "data" / "simulated" / "model.h5"
CASES = (("genomics_default", {}), ("rescale", {}), ("integrated_gradients", {"steps": 8}),
         ("integrated_gradients", {"steps": 32}))


def first_and_best(engine, x: np.ndarray, refs: np.ndarray, repeats: int
                   ) -> tuple[float, float]:
    """Seconds of the engine's first ``attribute(x, refs)`` call and of the best of
    ``repeats`` later calls."""
    t = time.perf_counter()
    engine.attribute(x, refs)
    first = time.perf_counter() - t
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        engine.attribute(x, refs)
        best = min(best, time.perf_counter() - t)
    return first, best


def compare(engines: dict, x: np.ndarray, refs: np.ndarray, repeats: int, units: float
            ) -> dict:
    """First-call seconds (``NAME_first_s``) and best later-call seconds per unit of work
    (``NAME_per_unit``) of two engines, the one that compiles more first, and the job size in
    units at which its extra first-call time is paid back (``break_even``; inf: never)."""
    row = {}
    for key, engine in engines.items():
        first, best = first_and_best(engine, x, refs, repeats)
        row[f"{key}_first_s"], row[f"{key}_per_unit"] = first, best / units
    (costly, cheap) = engines
    saved = row[f"{cheap}_per_unit"] - row[f"{costly}_per_unit"]
    extra = row[f"{costly}_first_s"] - row[f"{cheap}_first_s"]
    row["break_even"] = extra / saved if saved > 0 else float("inf")
    return row


def run(n_seqs: int = 64, k: int = 10, repeats: int = 3, seed: int = 0) -> list[dict]:
    """One row per case: mode, steps, first-call seconds, traced-call seconds, ratio."""
    from dnalift.deeplift import DeepLift, load_model

    model = load_model(MODEL)
    rng = np.random.default_rng(seed)
    x = np.eye(4, dtype="float32")[rng.integers(0, 4, (n_seqs, model.inputs[0].shape[1]))]
    refs = _references(x, k, seed)
    rows = []
    for mode, kw in CASES:
        first, traced = first_and_best(DeepLift(model, mode=mode, trace=True, **kw), x, refs,
                                       repeats)
        rows.append({"mode": mode, "steps": kw.get("steps", ""), "first_s": first,
                     "traced_s": traced, "ratio": first / traced})
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-seqs", type=int, default=64)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print("mode\tsteps\tfirst call (s)\ttraced call (s)\tfirst / traced")
    for row in run(args.n_seqs, args.k, args.repeats, args.seed):
        print(f"{row['mode']}\t{row['steps']}\t{row['first_s']:.2f}\t{row['traced_s']:.3f}\t"
              f"{row['ratio']:.0f}x")


if __name__ == "__main__":
    main()
