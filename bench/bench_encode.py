"""Benchmark: one-hot encoding, region fetching and dinucleotide shuffles (not a test).

Prints times, throughputs and speed-ups against baselines measured in the same run:
encoding vs a per-base Python loop; batched shuffles vs one sequence per call.

    python bench/bench_encode.py [--mb 10] [--n-shuffle 1000] [--k 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from dnalift.references import dinucleotide_shuffle_references
from dnalift.sequences import Region, fetch_regions, iter_batches, one_hot_encode


def _timed(fn, *args, **kwargs) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def _loop_encode(seqs: list[str]) -> np.ndarray:
    """Baseline: one Python step per base."""
    index = {c: i for i, c in enumerate("ACGT")}
    out = np.zeros((len(seqs), len(seqs[0]), 4), dtype=np.float32)
    for i, s in enumerate(seqs):
        for j, c in enumerate(s.upper()):
            if c in index:
                out[i, j, index[c]] = 1.0
    return out


def bench_encoding(mb: float, rng: np.random.Generator) -> None:
    n, length = int(mb * 1000), 1000
    seqs = ["".join(rng.choice(list("ACGTacgtN"), size=length)) for _ in range(n)]
    t_first, x = _timed(one_hot_encode, seqs)  # includes first-touch page faults of the output
    t_fast = min(_timed(one_hot_encode, seqs)[0] for _ in range(3))
    n_base = max(n // 50, 1)
    t_loop, y = _timed(_loop_encode, seqs[:n_base])
    assert np.array_equal(x[:n_base], y)
    t_loop_scaled = t_loop * n / n_base
    mb_total = n * length / 1e6
    print(f"one_hot_encode: {mb_total:.1f} Mb in {t_fast:.3f} s (best of 3) = "
          f"{mb_total / t_fast:.1f} Mb/s; first call {t_first:.3f} s; per-base loop "
          f"{mb_total / t_loop_scaled:.2f} Mb/s (on {n_base} sequences); "
          f"speed-up x{t_loop_scaled / t_fast:.0f}")


def bench_fetch(rng: np.random.Generator, n_regions: int = 20000, width: int = 1000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        genome = os.path.join(tmp, "genome.fa")
        size = 5_000_000
        with open(genome, "w") as fh:
            for chrom in ("chr1", "chr2"):
                seq = "".join(rng.choice(list("ACGT"), size=size))
                fh.write(f">{chrom}\n" + "\n".join(seq[i:i + 60] for i in range(0, size, 60))
                         + "\n")
        starts = rng.integers(0, size - width, size=n_regions)
        regions = (Region("chr1" if i % 2 else "chr2", int(s), int(s) + width, "-+"[i % 3 > 0])
                   for i, s in enumerate(starts))
        t = time.perf_counter()
        n = sum(len(r) for r, _ in iter_batches(fetch_regions(genome, regions), 256))
        dt = time.perf_counter() - t
    print(f"fetch_regions + iter_batches: {n} regions of {width} bp in {dt:.2f} s = "
          f"{n / dt:.0f} regions/s")


def bench_shuffle(n: int, k: int, rng: np.random.Generator, length: int = 1000) -> None:
    x = one_hot_encode(["".join(rng.choice(list("ACGT"), size=length)) for _ in range(n)])
    t_batch, refs = _timed(dinucleotide_shuffle_references, x, k=k, seed=0)
    n_single = max(n // 10, 1)
    t_single, single = _timed(lambda: np.concatenate(
        [dinucleotide_shuffle_references(x[i:i + 1], k=k, seed=0) for i in range(n_single)]))
    assert np.array_equal(single, refs[:n_single])
    rate_single = n_single / t_single
    print(f"dinucleotide shuffles: {n} x {length} bp, k={k} in {t_batch:.2f} s = "
          f"{n / t_batch:.0f} sequences/s ({n * k / t_batch:.0f} shuffles/s); one sequence per "
          f"call {rate_single:.0f} sequences/s; batching speed-up x{n / t_batch / rate_single:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=10.0, help="megabases to encode")
    parser.add_argument("--n-shuffle", type=int, default=1000, help="sequences to shuffle")
    parser.add_argument("--k", type=int, default=10, help="shuffles per sequence")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    bench_encoding(args.mb, rng)
    bench_fetch(rng)
    bench_shuffle(args.n_shuffle, args.k, rng)


if __name__ == "__main__":
    main()
