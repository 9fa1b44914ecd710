"""Motif discovery after scoring (score file -> TF-MoDISco patterns -> named patterns;
Fi-NeMo hits -> BED in genome coordinates): the glue between ``dnalift score`` and the
optional tools of the ``motifs`` extra (``pip install 'dnalift[motifs]'``: modisco-lite,
finemo, memelite).

* :func:`task_view`: a small HDF5 file whose ``hyp_scores`` and ``input_seqs`` are external
  links to one task of a score file: the layout ``modisco motifs -i`` and
  ``finemo extract-regions-bpnet-h5`` read, for any task, without copying the scores.
* :func:`run_tool`: runs ``modisco`` / ``finemo``; a missing tool is one error line naming the
  extra.
* :func:`read_patterns`, :func:`trim_bounds`, :func:`name_patterns`: the patterns of a
  TF-MoDISco results file, trimmed as ``modisco report`` trims them (columns whose summed
  absolute CWM reaches 0.3 of the maximum), named by their best database match
  (:mod:`dnalift.motifmatch`).
* :func:`hits_to_bed`: Fi-NeMo's ``hits.tsv`` (positions within each scored region, in the
  orientation the model saw) -> BED6 in genome coordinates (minus-strand regions flipped).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import h5py
import numpy as np
import pandas as pd

from dnalift.errors import DnaliftError, InputError
from dnalift.fileio import active_registry, atomic_output, make_parents, temp_directory
from dnalift.meme import Motif
from dnalift.motifmatch import best_alignment, best_matches, compare
from dnalift.scorefile import task_view
from dnalift.sequences import ALPHABET

EXTRA_HINT = "install the optional motif tools: pip install 'dnalift[motifs]'"
#: TF-MoDISco's pattern groups, in report order.
PATTERN_GROUPS = ("pos_patterns", "neg_patterns")
#: Columns of the pattern table (:func:`name_patterns`).
PATTERN_COLUMNS = ("pattern", "n_seqlets", "consensus", "trim_start", "trim_end", "match",
                   "pvalue", "qvalue", "strand", "offset", "method")


class MissingToolError(DnaliftError):
    """An optional command-line tool of the ``motifs`` extra is not installed."""


# --------------------------------------------------------------------------- tools
def require_tool(command: str) -> str:
    """Path of ``command`` on PATH; :class:`MissingToolError` (one line) if absent."""
    path = shutil.which(command)
    if path is None:
        raise MissingToolError(f"`{command}` not found on PATH: {EXTRA_HINT}")
    return path


#: prctl(2) option: the signal a process gets when its parent dies (Linux).
PR_SET_PDEATHSIG = 1


def _child_setup() -> Callable[[], None]:
    """``preexec_fn`` of a tool's process: no blocked signals (the command line blocks
    SIGTERM/SIGINT/SIGHUP in its main thread, and a blocked mask survives exec: the tool
    would ignore scancel), and on Linux SIGTERM when dnalift dies, even by SIGKILL (libc is
    loaded here, in the parent; the child only calls prctl)."""
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None

    def setup() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        if libc is not None:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    return setup


def run_tool(args: Sequence[str], log: str | os.PathLike | None = None) -> None:
    """Run ``args`` (the first is looked up with :func:`require_tool`); output to ``log``
    (appended) or discarded. A failure raises :class:`DnaliftError` with the command and
    the last line it printed.

    The tool runs in a process group of its own that dies with dnalift: on a signal
    (``scancel``, Ctrl-C) the job's clean-up sends SIGTERM to the whole group (the tool's
    own workers included), on an exception here too, and if dnalift is killed outright
    (SIGKILL) the kernel sends the tool SIGTERM (Linux), so no orphan runs on."""
    cmd = [require_tool(args[0]), *map(str, args[1:])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=_child_setup())
    registry = active_registry()
    if registry is not None:
        registry.add_child(proc.pid)
    try:
        stdout, _ = proc.communicate()
    except BaseException:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
        raise
    finally:
        if registry is not None:
            registry.drop_child(proc.pid)
    if log is not None:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"$ {' '.join(map(str, args))}\n{stdout}")
    if proc.returncode != 0:
        last = (stdout.strip().splitlines() or ["(no output)"])[-1]
        raise DnaliftError(f"{args[0]} {args[1] if len(args) > 1 else ''} failed "
                           f"(exit {proc.returncode}): {last}")


# --------------------------------------------------------------------------- inputs
def first_regions(npz: str | os.PathLike, n: int) -> None:
    """Keep only the first ``n`` regions of a Fi-NeMo regions file (``sequences (N, 4, L)``,
    ``contributions``, and the per-region coordinate arrays), in place."""
    if n < 1:
        raise InputError(f"--max-regions {n}: must be >= 1")
    with np.load(npz) as data:
        arrays = {k: data[k][:n] for k in data.files}
    with atomic_output(npz, keep_suffix=True) as tmp:
        np.savez_compressed(tmp, **arrays)


# --------------------------------------------------------------------------- patterns
@dataclass(frozen=True)
class Pattern:
    """One TF-MoDISco pattern.

    Attributes
    ----------
    name : str
        ``<group>.<pattern>``, e.g. ``pos_patterns.pattern_0`` (Fi-NeMo's motif names).
    ppm : np.ndarray
        ``(W, 4)`` position probability matrix of the seqlets (ACGT).
    cwm : np.ndarray
        ``(W, 4)`` contribution-weight matrix (mean actual contributions).
    n_seqlets : int
    """

    name: str
    ppm: np.ndarray
    cwm: np.ndarray
    n_seqlets: int


def read_patterns(path: str | os.PathLike) -> list[Pattern]:
    """Every pattern of a TF-MoDISco (modisco-lite) results file, positive then negative,
    each group in pattern-number order."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: TF-MoDISco results file not found")
    out = []
    try:
        with h5py.File(path, "r") as f:
            for group in PATTERN_GROUPS:
                if group not in f:
                    continue
                names = sorted(f[group], key=lambda n: int(n.rsplit("_", 1)[-1]))
                for name in names:
                    g = f[group][name]
                    out.append(Pattern(f"{group}.{name}", np.asarray(g["sequence"][:], float),
                                       np.asarray(g["contrib_scores"][:], float),
                                       int(g["seqlets/n_seqlets"][0])))
    except (OSError, KeyError) as err:
        raise InputError(f"{path}: not a TF-MoDISco results file ({err})") from None
    return out


def trim_bounds(cwm: np.ndarray, threshold: float = 0.3) -> tuple[int, int]:
    """``[start, end)`` of the columns from the first to the last whose summed absolute
    contribution is at least ``threshold`` times the largest (TF-MoDISco's trimming).

    Parameters
    ----------
    cwm : (W, 4)
    """
    score = np.abs(np.asarray(cwm)).sum(axis=1)
    keep = np.flatnonzero(score >= threshold * score.max())
    return int(keep[0]), int(keep[-1]) + 1


def consensus(ppm: np.ndarray) -> str:
    """Most probable base per column of ``ppm (W, 4)``."""
    return "".join(ALPHABET[i] for i in np.argmax(ppm, axis=1))


def name_patterns(patterns: Sequence[Pattern], database: Mapping[str, Motif], *,
                  method: str = "auto", trim_threshold: float = 0.3,
                  **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Name every pattern by its best database match.

    Parameters
    ----------
    patterns : sequence of Pattern
    database : mapping of name to Motif
    method : {"auto", "memelite", "dnalift"}
        See :mod:`dnalift.motifmatch`.
    trim_threshold : float
        Patterns are trimmed with :func:`trim_bounds` before matching.
    **options
        ``min_overlap``, ``n_null``, ``seed`` of the dnalift method.

    Returns
    -------
    table : DataFrame
        One row per pattern, :data:`PATTERN_COLUMNS` (``consensus`` of the trimmed PPM;
        ``match``, ``pvalue``, ``qvalue`` of the best match; ``strand`` and ``offset`` of
        its alignment by :func:`dnalift.motifmatch.best_alignment`: ``-`` = the pattern's
        reverse complement matches, motif column ``offset`` under the first pattern
        column).
    pairs : DataFrame
        Every (pattern, motif) comparison (:func:`dnalift.motifmatch.compare`).
    """
    bounds = {p.name: trim_bounds(p.cwm, trim_threshold) for p in patterns}
    queries = {p.name: p.ppm[slice(*bounds[p.name])] for p in patterns}
    pairs = compare(queries, {name: m.probs for name, m in database.items()}, method=method,
                    **options)
    best = best_matches(pairs).set_index("query") if len(pairs) else None
    rows = []
    for p in patterns:
        b = best.loc[p.name] if best is not None else None
        _, offset, strand, _ = (best_alignment(queries[p.name], database[b["target"]].probs,
                                               options.get("min_overlap", 5))
                                if b is not None else (0, 0, "", 0))
        rows.append({"pattern": p.name, "n_seqlets": p.n_seqlets,
                     "consensus": consensus(queries[p.name]), "trim_start": bounds[p.name][0],
                     "trim_end": bounds[p.name][1],
                     "match": b["target"] if b is not None else "",
                     "pvalue": b["pvalue"] if b is not None else np.nan,
                     "qvalue": b["qvalue"] if b is not None else np.nan,
                     "strand": strand, "offset": offset,
                     "method": b["method"] if b is not None else ""})
    return pd.DataFrame(rows, columns=list(PATTERN_COLUMNS)), pairs


# --------------------------------------------------------------------------- hits
def read_finemo_hits(path: str | os.PathLike) -> pd.DataFrame:
    """Fi-NeMo's ``hits.tsv`` (columns ``peak_id, start, end, motif_name, strand,
    hit_coefficient, ...``); InputError if unreadable."""
    try:
        hits = pd.read_csv(path, sep="\t")
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read Fi-NeMo hits ({err})") from None
    need = {"peak_id", "start", "end", "motif_name", "strand"}
    if not need <= set(hits.columns):
        raise InputError(f"{path}: not a Fi-NeMo hits table (needs {', '.join(sorted(need))})")
    return hits


def hits_to_bed(hits: pd.DataFrame, coords: Mapping[str, np.ndarray],
                names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Hits at positions within the scored regions -> genome coordinates.

    Parameters
    ----------
    hits : DataFrame
        ``peak_id`` (row of the score file), ``start``, ``end`` (0-based half-open within
        the region, model orientation), ``motif_name``, ``strand`` and optionally
        ``hit_coefficient`` (the BED score).
    coords : mapping
        ``(N,)`` arrays ``chrom, start, end, strand, name`` of the score file
        (:meth:`dnalift.scorefile.ScoreFile.coords`).
    names : mapping, optional
        Pattern name -> motif name (e.g. the best database match); others keep their name.

    Returns
    -------
    DataFrame with BED6 columns ``chrom, start, end, name, score, strand`` plus ``region``,
    sorted by chromosome (first appearance) and start. On a minus-strand region a hit at
    ``[s, e)`` lies at ``[region_end - e, region_end - s)`` on the opposite strand.
    """
    rows = np.asarray(hits["peak_id"], dtype=np.int64)
    n = len(coords["start"])
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise InputError(f"hit on region row {rows.max()}, but the score file has {n} regions")
    minus = np.asarray(coords["strand"], dtype=object)[rows] == "-"
    r_start = np.asarray(coords["start"], dtype=np.int64)[rows]
    r_end = np.asarray(coords["end"], dtype=np.int64)[rows]
    s, e = np.asarray(hits["start"], np.int64), np.asarray(hits["end"], np.int64)
    strand = np.asarray(hits["strand"], dtype=object)
    flipped = np.where(strand == "+", "-", "+")
    names = names or {}
    bed = pd.DataFrame({
        "chrom": np.asarray(coords["chrom"], dtype=object)[rows],
        "start": np.where(minus, r_end - e, r_start + s),
        "end": np.where(minus, r_end - s, r_start + e),
        "name": [names.get(m, m) for m in hits["motif_name"]],
        "score": np.asarray(hits.get("hit_coefficient", pd.Series(np.zeros(len(hits)))),
                            dtype=np.float64),
        "strand": np.where(minus, flipped, strand),
        "region": np.asarray(coords["name"], dtype=object)[rows]})
    order = {c: i for i, c in enumerate(dict.fromkeys(coords["chrom"]))}
    bed = bed.assign(_c=bed["chrom"].map(order)).sort_values(["_c", "start", "end"],
                                                             kind="stable")
    return bed.drop(columns="_c").reset_index(drop=True)


def region_positions(bed: pd.DataFrame, region: Mapping[str, object]) -> list[tuple[int, int, str]]:
    """Hits of one region (BED rows of :func:`hits_to_bed`) back at positions within the
    region, model orientation (the inverse of :func:`hits_to_bed`): ``(start, end, name)``.

    ``region``: ``chrom, start, end, strand`` of the region.
    """
    r_start, r_end = int(region["start"]), int(region["end"])
    minus = region["strand"] == "-"
    return [((r_end - int(e)) if minus else (int(s) - r_start),
             (r_end - int(s)) if minus else (int(e) - r_start), str(n))
            for s, e, n in zip(bed["start"], bed["end"], bed["name"])]


def write_bed(bed: pd.DataFrame, path: str | os.PathLike) -> None:
    """BED6 (+ ``region`` as column 7), no header, atomic."""
    with atomic_output(path, keep_suffix=True) as tmp:
        bed.to_csv(tmp, sep="\t", header=False, index=False, float_format="%.6g")


def read_bed_hits(path: str | os.PathLike) -> pd.DataFrame:
    """A hit BED written by :func:`write_bed`."""
    try:
        return pd.read_csv(path, sep="\t", header=None,
                           names=["chrom", "start", "end", "name", "score", "strand", "region"])
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read hit BED ({err})") from None


# --------------------------------------------------------------------------- tool runs
def run_modisco(score_h5: str | os.PathLike, task: str | int | None,
                output: str | os.PathLike, *, max_seqlets: int = 2000,
                window: int | None = None, log: str | os.PathLike | None = None) -> Path:
    """TF-MoDISco (``modisco motifs``) on one task of a score file (linked, not copied);
    ``window`` defaults to the whole region. The results HDF5 is written atomically."""
    from dnalift.fileio import check_output_path
    from dnalift.scorefile import ScoreFile

    require_tool("modisco")
    with ScoreFile(score_h5) as sf:
        length = sf.length
    out = check_output_path(output)
    make_parents(out)
    with temp_directory(out) as tmpdir, atomic_output(out, keep_suffix=True) as tmp:
        linked = task_view(score_h5, task, Path(tmpdir) / "task.h5")
        run_tool(["modisco", "motifs", "-i", linked, "-n", max_seqlets,
                  "-w", window or length, "-o", tmp], log)
    return out


def run_report(modisco_h5: str | os.PathLike, meme_path: str | os.PathLike,
               output: str | os.PathLike, log: str | os.PathLike | None = None) -> Path:
    """TF-MoDISco's HTML report (``modisco report --lite``) in directory ``output``; returns
    the path of ``report.html``."""
    from dnalift.meme import load_motifs

    require_tool("modisco")  # before the directory is made: a missing extra leaves nothing
    n_matches = min(3, len(load_motifs(meme_path)[0]))  # modisco fails asking for more
    make_parents(Path(output) / "report.html")
    run_tool(["modisco", "report", "-i", modisco_h5, "-o", output, "-m", meme_path, "-l",
              "-n", n_matches], log)
    return Path(output) / "report.html"


def call_hits(score_h5: str | os.PathLike, task: str | int | None,
              modisco_h5: str | os.PathLike, *, names: Mapping[str, str] | None = None,
              workdir: str | os.PathLike, finemo_dir: str | os.PathLike | None = None,
              lam: float = 0.7, batch_size: int = 200, max_regions: int | None = None,
              log: str | os.PathLike | None = None) -> pd.DataFrame:
    """Fi-NeMo hit calling on one task of a score file, as a BED table in genome
    coordinates (:func:`hits_to_bed`; ``names`` maps pattern -> motif name).

    Scratch files go to ``workdir``; Fi-NeMo's own outputs to ``finemo_dir`` (default: a
    folder in ``workdir``). ``max_regions`` keeps the first N regions (Fi-NeMo is slow on a
    CPU).
    """
    from dnalift.scorefile import ScoreFile

    require_tool("finemo")
    with ScoreFile(score_h5) as sf:
        coords, length = sf.coords(), sf.length
    tmp = Path(workdir)
    linked = task_view(score_h5, task, tmp / "task.h5")
    run_dir = Path(finemo_dir) if finemo_dir else tmp / "finemo"
    run_tool(["finemo", "extract-regions-bpnet-h5", "-c", linked, "-o", tmp / "regions.npz",
              "-w", length], log)
    if max_regions is not None:
        first_regions(tmp / "regions.npz", max_regions)
    run_tool(["finemo", "call-hits", "-r", tmp / "regions.npz", "-m", modisco_h5,
              "-o", run_dir, "-l", lam, "-b", batch_size], log)
    return hits_to_bed(read_finemo_hits(run_dir / "hits.tsv"), coords, dict(names or {}))


def pattern_names(table_path: str | os.PathLike) -> dict[str, str]:
    """Pattern -> matched motif name from a pattern table of :func:`name_patterns`
    (written by ``dnalift discover name``); unmatched patterns are left out."""
    from dnalift.motifs import read_tsv
    table = read_tsv(table_path, "pattern table", ("pattern", "match"), keep_default_na=False)
    return {p: m for p, m in zip(table["pattern"], table["match"]) if m}


def write_pattern_logos(patterns: Sequence[Pattern], table: pd.DataFrame,
                        database: Mapping[str, Motif], directory: str | os.PathLike) -> None:
    """One PNG per pattern in ``directory``: its trimmed CWM logo above the matched motif
    (rows of ``table`` from :func:`name_patterns`, in pattern order)."""
    from dnalift import plots

    make_parents(Path(directory) / "logo.png")
    for p, row in zip(patterns, table.itertuples()):
        lo, hi = row.trim_start, row.trim_end
        target = database[row.match].probs if row.match else None
        plots.plot_pattern_match(
            p.cwm[lo:hi], target, Path(directory) / f"{p.name}.png", match=row.match,
            strand=row.strand, offset=row.offset,
            title=f"{p.name} ({p.n_seqlets} seqlets)" + (
                f": {row.match}, q = {row.qvalue:.2g}" if row.match else ""))


__all__ = ["MissingToolError", "require_tool", "run_tool", "task_view", "first_regions",
           "Pattern", "read_patterns", "trim_bounds", "consensus", "name_patterns",
           "read_finemo_hits", "hits_to_bed", "region_positions", "write_bed", "read_bed_hits",
           "run_modisco", "run_report", "call_hits", "pattern_names", "write_pattern_logos",
           "PATTERN_COLUMNS", "EXTRA_HINT"]
