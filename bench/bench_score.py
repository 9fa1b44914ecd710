"""End-to-end benchmark of ``dnalift score`` (streaming job) on a synthetic genome.

For each size N (default 10^4; add 10^5 with ``--sizes 10000 100000``) a child process
scores N random 1 kb regions (both strands, overlapping) of a synthetic 5 x 2 Mb genome
with a small Conv1D model, writing HDF5 and bigWig, and reports:

- regions/s over the whole job,
- peak RSS of the child process (``resource.getrusage``), which must not grow with N,
- the share of time outside the engine: (total - engine) / engine, where "engine" is
  the time spent in ``DeepLift.attribute`` on the same batches of the same run
  (read + encode + references + HDF5 write + bigWig vs engine only; target <= 0.15).

``run_benchmark(...)`` is the entry point for ``bench/run_all.py``; results go to
``bench/results/bench_score.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
LENGTH = 1000


def make_genome(directory: Path, n_chroms: int = 5, chrom_length: int = 2_000_000,
                seed: int = 0) -> Path:
    """Random ACGT genome FASTA (60 bases per line) with ``.fai`` built by dnalift."""
    rng = np.random.default_rng(seed)
    path = directory / "genome.fa"
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    with open(path, "wb") as out:
        for c in range(n_chroms):
            seq = letters[rng.integers(0, 4, chrom_length)]
            out.write(f">chr{c + 1}\n".encode())
            for lo in range(0, chrom_length, 60):
                out.write(seq[lo:lo + 60].tobytes() + b"\n")
    return path


def make_bed(directory: Path, n: int, n_chroms: int = 5, chrom_length: int = 2_000_000,
             seed: int = 0) -> Path:
    """``n`` random 1 kb BED6 regions, random strand, in random (unsorted) order."""
    rng = np.random.default_rng(seed + 1)
    path = directory / f"regions_{n}.bed"
    chroms = rng.integers(1, n_chroms + 1, n)
    starts = rng.integers(0, chrom_length - LENGTH, n)
    strands = rng.choice(["+", "-"], n)
    with open(path, "w") as out:
        for i, (c, s, st) in enumerate(zip(chroms, starts, strands)):
            out.write(f"chr{c}\t{s}\t{s + LENGTH}\tr{i}\t0\t{st}\n")
    return path


def make_model(directory: Path) -> Path:
    """Small Conv1D model for 1 kb inputs (2 tasks), saved as .keras."""
    import keras
    keras.utils.set_random_seed(0)
    inp = keras.Input((LENGTH, 4))
    h = keras.layers.Conv1D(16, 15, padding="same", activation="relu")(inp)
    h = keras.layers.MaxPooling1D(20)(h)
    h = keras.layers.Conv1D(16, 5, padding="same", activation="relu")(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    out = keras.layers.Dense(2, activation="sigmoid")(h)
    path = directory / "bench_model.keras"
    keras.Model(inp, out).save(path)
    return path


def run_one(n: int, workdir: Path, *, k: int = 10, batch_size: int = 1024,
            bigwig: bool = True) -> dict:
    """Score ``n`` regions in this process; return timings and peak RSS (MiB)."""
    from dnalift import scoring
    from dnalift.references import ReferenceSpec
    genome = workdir / "genome.fa"
    if not genome.exists():
        make_genome(workdir)
    model = workdir / "bench_model.keras"
    if not model.exists():
        make_model(workdir)
    bed = make_bed(workdir, n)
    t0 = time.perf_counter()
    inputs = scoring.open_inputs(bed=bed, genome=genome)
    s = scoring.score(str(model), inputs,
                      scoring.OutputSpec(workdir / f"s{n}.h5", force=True,
                                         bigwig=workdir / f"s{n}.bw" if bigwig else None),
                      reference=ReferenceSpec("shuffle", k=k),
                      engine=scoring.EngineSpec(batch_size=batch_size))
    total = time.perf_counter() - t0
    outside = total - s.engine_seconds
    return {
        "n_regions": s.n_regions, "length": LENGTH, "k": k, "batch_size": batch_size,
        "seconds_total": round(total, 3), "seconds_engine": round(s.engine_seconds, 3),
        "seconds_references": round(s.reference_seconds, 3),
        "seconds_hdf5_write": round(s.write_seconds, 3),
        "seconds_bigwig": round(s.bigwig_seconds, 3),
        "regions_per_s": round(s.n_regions / total, 2),
        "engine_regions_per_s": round(s.n_regions / s.engine_seconds, 2),
        "outside_engine_share": round(outside / s.engine_seconds, 4),
        "h5_mib": round((workdir / f"s{n}.h5").stat().st_size / 2**20, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "max_abs_residual": s.max_abs_residual,
    }


def run_benchmark(sizes=(10_000,), *, k: int = 10, batch_size: int = 1024,
                  bigwig: bool = True, out: Path | None = RESULTS / "bench_score.json") -> dict:
    """Run each size in a fresh child process (so peak RSS is per size); write JSON."""
    results = []
    with tempfile.TemporaryDirectory(prefix="dnalift-bench-") as tmp:
        for n in sizes:
            cmd = [sys.executable, __file__, "--child", str(n), "--workdir", tmp, "--shuffles",
                   str(k), "--batch-size", str(batch_size)] + ([] if bigwig else ["--no-bigwig"])
            proc = subprocess.run(cmd, capture_output=True, text=True,
                                  env={**os.environ, "CUDA_VISIBLE_DEVICES":
                                       os.environ.get("CUDA_VISIBLE_DEVICES", "")})
            if proc.returncode:
                raise RuntimeError(f"benchmark child failed:\n{proc.stderr[-3000:]}")
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), file=sys.stderr)
    report = {"benchmark": "score", "machine": platform.machine(), "cpus": os.cpu_count(),
              "python": platform.python_version(), "results": results,
              "target_outside_engine_share": 0.15}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    p.add_argument("--shuffles", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--no-bigwig", action="store_true")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(run_one(a.child, Path(a.workdir), k=a.shuffles,
                                 batch_size=a.batch_size, bigwig=not a.no_bigwig)))
        return
    report = run_benchmark(a.sizes, k=a.shuffles, batch_size=a.batch_size,
                           bigwig=not a.no_bigwig)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
