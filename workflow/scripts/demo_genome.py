"""Snakemake script of rule demo_genome: a small genome from simulated sequences.

Chromosome ``chr{i}`` (i = 1..chromosomes) is ``gap`` Ns, then ``per_chromosome`` simulated
sequences each followed by ``gap`` Ns, the sequences taken in file order from the inputs.
"""

import sys
from typing import Iterable, Iterator

from dnalift.fileio import open_atomic


def read_fasta_sequences(paths: Iterable[str]) -> Iterator[str]:
    """Sequences of the FASTA files, in order."""
    for path in paths:
        chunks: list[str] = []
        with open(path, encoding="ascii") as handle:
            for line in handle:
                line = line.strip()
                if line.startswith(">"):
                    if chunks:
                        yield "".join(chunks)
                    chunks = []
                elif line:
                    chunks.append(line)
        if chunks:
            yield "".join(chunks)


def demo_chromosomes(seqs: Iterable[str], chromosomes: int, per_chromosome: int,
                     gap: int) -> list[tuple[str, str]]:
    """``[(name, sequence)]`` of the demo genome (see the module docstring)."""
    seqs = iter(seqs)
    out = []
    for i in range(1, chromosomes + 1):
        parts = ["N" * gap]
        for _ in range(per_chromosome):
            seq = next(seqs, None)
            if seq is None:
                raise SystemExit(f"demo_genome: need {chromosomes * per_chromosome} simulated "
                                 "sequences; increase simulated.n_sequences")
            parts += [seq, "N" * gap]
        out.append((f"chr{i}", "".join(parts)))
    return out


def write_fasta(records: list[tuple[str, str]], path: str, width: int = 60) -> None:
    """Write ``records`` as FASTA (``width`` bases per line), atomically."""
    with open_atomic(path, encoding="ascii") as handle:
        for name, seq in records:
            handle.write(f">{name}\n")
            handle.writelines(seq[i:i + width] + "\n" for i in range(0, len(seq), width))


if "snakemake" in globals():  # run by Snakemake (script: directive)
    sm = globals()["snakemake"]
    with open(sm.log[0], "w", encoding="utf-8") as log:
        sys.stderr = log
        records = demo_chromosomes(read_fasta_sequences(sm.input), sm.params.chromosomes,
                                   sm.params.per_chromosome, sm.params.gap)
        write_fasta(records, sm.output[0])
        print(f"wrote {len(records)} chromosomes, "
              f"{sum(len(s) for _, s in records)} bp to {sm.output[0]}", file=log)
