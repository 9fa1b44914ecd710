"""Sequences: FASTA and BED+genome input, one-hot encoding, reverse complements, batching.

Conventions
-----------
* One-hot arrays are float32 ``(N, L, 4)`` in **ACGT** order (column 0 = A, 1 = C, 2 = G,
  3 = T). Lower-case (soft-masked) bases encode like upper-case ones. ``N`` and the other
  IUPAC codes (``RYSWKMBDHVU``) are valid input and encode as all-zero rows; any other
  character is an error.
* Regions are 0-based, half-open (BED semantics). Minus-strand regions are returned
  reverse-complemented.
* Everything that reads files is a generator: records and regions are streamed one at a
  time and :func:`iter_batches` holds one batch in memory.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from dnalift.errors import InputError

ALPHABET = "ACGT"
#: IUPAC nucleotide codes that are accepted and encoded as all-zero rows.
AMBIGUOUS = "NRYSWKMBDHVU"

# Byte -> code: 0..3 = A, C, G, T; 4 = valid non-ACGT IUPAC code (all-zero row); 5 = invalid.
_CODE = np.full(256, 5, dtype=np.uint8)
for _i, _b in enumerate(ALPHABET):
    _CODE[ord(_b)] = _CODE[ord(_b.lower())] = _i
for _b in AMBIGUOUS:
    _CODE[ord(_b)] = _CODE[ord(_b.lower())] = 4
_CODE.setflags(write=False)
# Code -> one-hot row (rows 4 and 5 are all zero).
_ROWS = np.zeros((6, 4), dtype=np.float32)
_ROWS[np.arange(4), np.arange(4)] = 1.0
_ROWS.setflags(write=False)
# The same rows as 16-byte records: gathering whole records is several times faster than
# gathering (L, 4) float rows.
_ROW_RECORDS = _ROWS.view(np.dtype((np.void, 16))).ravel()
#: The complement of every IUPAC code (upper and lower case), for ``str.translate``.
COMPLEMENT = str.maketrans("ACGTRYSWKMBDHVNUacgtryswkmbdhvnu", "TGCAYRSWMKVHDBNAtgcayrswmkvhdbna")


@dataclass(frozen=True)
class Region:
    """A genomic interval, 0-based half-open (BED semantics).

    For FASTA input: ``chrom`` = record name, ``start`` = 0, ``end`` = length, ``strand`` "+",
    ``name`` = record name.
    """

    chrom: str
    start: int
    end: int
    strand: str = "+"
    name: str = ""

    @property
    def length(self) -> int:
        """Number of bases, ``end - start``."""
        return self.end - self.start

    def label(self) -> str:
        """Short description for messages: the name, or ``chrom:start-end(strand)``."""
        return self.name or f"{self.chrom}:{self.start}-{self.end}({self.strand})"


# --------------------------------------------------------------------------- encoding

def sequence_codes(seq: str | bytes) -> np.ndarray:
    """Per-base codes of a sequence: 0..3 for A, C, G, T, 4 for other IUPAC codes, 5 invalid.

    Parameters
    ----------
    seq : str or bytes
        Sequence of length ``L`` (any case).

    Returns
    -------
    np.ndarray
        ``(L,)`` uint8.
    """
    raw = seq if isinstance(seq, bytes) else seq.encode("latin-1", errors="replace")
    return np.take(_CODE, np.frombuffer(raw, dtype=np.uint8))


def first_invalid(seq: str | bytes) -> int | None:
    """Position of the first character that is not an IUPAC nucleotide code, or None."""
    bad = np.flatnonzero(sequence_codes(seq) == 5)
    return int(bad[0]) if bad.size else None


def _check_valid(seq: str, where: str) -> None:
    pos = first_invalid(seq)
    if pos is not None:
        raise InputError(f"{where}: invalid character {seq[pos]!r} at position {pos + 1} "
                         f"(expected IUPAC nucleotide codes)")


def one_hot_encode(seqs: Sequence[str] | str) -> np.ndarray:
    """One-hot encode equal-length DNA sequences (vectorised byte lookup, no per-base loop).

    Parameters
    ----------
    seqs : str or sequence of str
        ``N`` sequences of equal length ``L`` (a single string is a batch of one). Case is
        ignored; ``N`` and other IUPAC ambiguity codes give all-zero rows.

    Returns
    -------
    np.ndarray
        ``(N, L, 4)`` float32, ACGT order.

    Raises
    ------
    InputError
        Sequences of unequal length, or a character that is not an IUPAC nucleotide code.
    """
    if isinstance(seqs, str):
        seqs = [seqs]
    seqs = list(seqs)
    n = len(seqs)
    length = len(seqs[0]) if n else 0
    for i, s in enumerate(seqs):
        if len(s) != length:
            raise InputError(f"sequence {i + 1}: length {len(s)} differs from the length "
                             f"{length} of sequence 1")
    codes = sequence_codes("".join(seqs))
    if (codes == 5).any():
        i = int(np.argmax(codes == 5)) // max(length, 1)
        _check_valid(seqs[i], f"sequence {i + 1}")
    return codes_to_one_hot(codes).reshape(n, length, 4)


def codes_to_one_hot(codes: np.ndarray) -> np.ndarray:
    """One-hot rows of letter codes (0..3 = A, C, G, T; 4 and 5 give all-zero rows).

    Parameters
    ----------
    codes : np.ndarray
        Integer array of any shape ``S``.

    Returns
    -------
    np.ndarray
        ``S + (4,)`` float32.
    """
    codes = np.asarray(codes)
    return _ROW_RECORDS[codes].view(np.float32).reshape(codes.shape + (4,))


def decode_one_hot(x: np.ndarray) -> list[str]:
    """Strings from one-hot sequences; all-zero rows become ``N``.

    Parameters
    ----------
    x : np.ndarray
        ``(N, L, 4)`` (or ``(L, 4)``) ACGT one-hot; each row's largest channel is taken.

    Returns
    -------
    list[str]
        ``N`` upper-case strings of length ``L``.
    """
    x = np.asarray(x)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[-1] != 4:
        raise InputError(f"one-hot input must have shape (N, L, 4), got {x.shape}")
    idx = np.argmax(x, axis=-1)
    idx[~np.any(x != 0, axis=-1)] = 4
    chars = np.frombuffer(b"ACGTN", dtype=np.uint8)[idx]
    return [row.tobytes().decode("ascii") for row in chars]


def reverse_complement(x: np.ndarray) -> np.ndarray:
    """Reverse complement of one-hot sequences.

    Parameters
    ----------
    x : np.ndarray
        ``(..., L, 4)`` ACGT one-hot.

    Returns
    -------
    np.ndarray
        ``(..., L, 4)``, positions reversed and channels A<->T, C<->G swapped (a new array).
    """
    return np.ascontiguousarray(np.asarray(x)[..., ::-1, ::-1])


def reverse_complement_str(seq: str) -> str:
    """Reverse complement of a string, IUPAC codes complemented, case kept."""
    return seq.translate(COMPLEMENT)[::-1]


# --------------------------------------------------------------------------- files

def check_input_file(path: str | os.PathLike, what: str) -> str:
    """``path`` as a string, or InputError: missing, or not a regular file (a directory, or
    a pipe such as ``/dev/stdin``, which cannot be indexed or read twice)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such {what} file")
    if not os.path.isfile(path):
        kind = "a directory" if os.path.isdir(path) else "not a regular file"
        raise InputError(f"{path}: {kind}; a {what} must be a regular, indexable file (to "
                         f"use a pipe, write it to a file first, e.g. `cat > input.fa`)")
    return path


# --------------------------------------------------------------------------- FASTA

def open_fasta(path: str | os.PathLike):
    """Open an indexed FASTA with pyfaidx (building ``.fai`` when missing).

    Plain and bgzip-compressed FASTA are accepted (bgzip needs a writable directory for its
    ``.fai``/``.gzi`` index the first time). Sequences are returned raw, case kept.

    Returns
    -------
    pyfaidx.Fasta

    Raises
    ------
    InputError
        Missing file, plain-gzip file, malformed FASTA, duplicate record names, or an index
        that can neither be read nor built.
    """
    import pyfaidx

    path = check_input_file(path, "FASTA")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: empty FASTA file (no records)")
    try:
        fasta = pyfaidx.Fasta(path, as_raw=True, sequence_always_upper=False,
                              build_index=True, rebuild=True)
    except pyfaidx.UnsupportedCompressionFormat:
        raise InputError(f"{path}: gzip-compressed FASTA is not supported; compress it with "
                         f"bgzip instead (gunzip {os.path.basename(path)}; bgzip "
                         f"{os.path.basename(path)[:-3] if path.endswith('.gz') else '<file>'})"
                         ) from None
    except pyfaidx.FastaIndexingError as err:
        msg = " ".join(str(err).split())
        if "does not contain a valid sequence" in msg:
            raise InputError(f"{path}: empty FASTA file (no records)") from None
        raise InputError(f"{path}: malformed FASTA: {msg}") from None
    except (pyfaidx.IndexNotFoundError, OSError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else \
            "the directory is not writable"
        raise InputError(f"{path}: cannot read or build the FASTA index {path}.fai ({why}); "
                         f"create it with `samtools faidx {path}` where you can write, or "
                         "use a copy of the FASTA in a writable directory") from None
    except ValueError as err:  # pyfaidx: duplicate key
        raise InputError(f"{path}: malformed FASTA: {err}") from None
    if not str(path).endswith(".gz"):
        try:
            check_index(path, fasta.faidx.index)
        except InputError:
            fasta.close()
            raise
    return fasta


#: Records of an index whose places in the FASTA are checked (all up to this count, else
#: this many at each end).
INDEX_CHECKS = 5000


def check_index(path: str | os.PathLike, index: dict) -> None:
    """InputError when the ``.fai`` index does not describe the FASTA ``path`` (a stale
    index: the FASTA was changed after indexing and the index looks newer): every record's
    header line must end where the index puts the record's first base, and nothing but line
    ends may follow the last record.

    Parameters
    ----------
    path : path-like
        Plain (uncompressed) FASTA.
    index : dict
        ``name -> pyfaidx.IndexRecord`` (``offset``, ``bend``, ``prev_bend``), in file order.
    """
    items = list(index.items())
    if len(items) > 2 * INDEX_CHECKS:
        items = items[:INDEX_CHECKS] + items[-INDEX_CHECKS:]
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        for name, rec in items:
            handle.seek(rec.prev_bend)
            header = handle.read(max(rec.offset - rec.prev_bend, 0)).strip(b"\r\n")
            fields = header[1:].split() if header.startswith(b">") else []
            if rec.offset > size or not fields or fields[0].decode(errors="replace") != name:
                _stale_index(path, f"record {name!r} is not at byte {rec.offset}")
        if items:
            last = items[-1][1]
            handle.seek(last.bend)
            if handle.read(64).strip():
                _stale_index(path, f"the FASTA goes on after the last indexed record "
                             f"{items[-1][0]!r}")


def _stale_index(path: str | os.PathLike, why: str) -> None:
    raise InputError(f"{path}.fai: stale FASTA index ({why}: {path} changed after it was "
                     f"indexed); delete {path}.fai (dnalift rebuilds it) or rebuild it with "
                     f"`samtools faidx {path}`")


def chrom_sizes(genome_path: str | os.PathLike) -> dict[str, int]:
    """Record lengths of a FASTA, from its ``.fai`` index (built when missing).

    Returns
    -------
    dict[str, int]
        Record name -> length, in file order.
    """
    fa = open_fasta(genome_path)
    try:
        return {name: int(rec.rlen) for name, rec in fa.faidx.index.items()}
    finally:
        fa.close()


def read_fasta(path: str | os.PathLike, *, start: int = 0,
               stop: int | None = None) -> Iterator[tuple[Region, str]]:
    """Stream the records of a FASTA file (indexed random access through pyfaidx).

    Parameters
    ----------
    path : path
        Plain or bgzip-compressed FASTA.
    start, stop : int
        Only records ``start`` to ``stop - 1`` (0-based, file order); the others are not
        read at all (cheap sharding).

    Yields
    ------
    (Region, str)
        ``Region(name, 0, length, "+", name)`` and the record's sequence (case kept).

    Raises
    ------
    InputError
        See :func:`open_fasta`; also a record with no sequence or a non-IUPAC character
        (message names the file, record number and name).
    """
    fa = open_fasta(path)
    try:
        names = list(fa.keys())[start:stop]
        for i, name in enumerate(names, start=start + 1):
            seq = fa[name][:]
            where = f"{os.fspath(path)} record {i} ({name})"
            if not seq:
                raise InputError(f"{where}: header with no sequence")
            _check_valid(seq, where)
            yield Region(name, 0, len(seq), "+", name), seq
    finally:
        fa.close()


# --------------------------------------------------------------------------- BED

def _open_text(path: str):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt")
    return open(path, "rt")


def _parse_int(text: str, what: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{where}: {what} {text!r} is not an integer") from None


def resize(start: int, end: int, width: int, centre: int | None = None) -> tuple[int, int]:
    """Interval of ``width`` bases around a centre base.

    The centre base is ``centre`` when given (e.g. a narrowPeak summit), else
    ``start + (end - start) // 2`` (for an even-length interval the right one of the two
    middle bases). The new interval is ``[c - width // 2, c - width // 2 + width)``: for odd
    widths the centre base is exactly in the middle; for even widths it has ``width // 2``
    bases to its left and ``width // 2 - 1`` to its right.

    Returns
    -------
    (int, int)
        New ``(start, end)``; the start may be negative (checked when fetching).
    """
    c = start + (end - start) // 2 if centre is None else centre
    new_start = c - width // 2
    return new_start, new_start + width


def _numbered_lines(fh, path: str) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a text file; InputError naming the file where it is not
    UTF-8 text (a binary file; decoding is buffered, so no line number is given)."""
    lineno = 0
    while True:
        try:
            line = fh.readline()
        except UnicodeDecodeError as err:
            raise InputError(f"{path}: not a text file (byte {err.object[err.start]:#04x} is "
                             "not UTF-8; a binary file?)") from None
        if not line:
            return
        lineno += 1
        yield lineno, line


def read_bed(path: str | os.PathLike, width: int | None = None, use_summit: bool = False, *,
             chrom_sizes: Mapping[str, int] | None = None,
             length: int | None = None) -> Iterator[Region]:
    """Stream regions from a BED / narrowPeak file (plain or gzip).

    Columns: chrom, start, end (required); name (4) and strand (6, ``+``, ``-`` or ``.``)
    when present; narrowPeak summit offset from start (10) with ``use_summit``. Lines
    starting with ``track``, ``browser`` or ``#`` and blank lines are skipped.

    Parameters
    ----------
    path : path
        BED file.
    width : int, optional
        Resize every region to this many bases around its centre (see :func:`resize`).
    use_summit : bool
        Centre on ``start + column 10`` instead (needs ``width``; a summit of -1 means
        "no summit" and falls back to the centre).
    chrom_sizes : mapping, optional
        Chromosome lengths (see :func:`chrom_sizes`); when given, unknown chromosomes and
        regions outside a chromosome are reported with their line number.
    length : int, optional
        Every region (after resizing) must have this length (a model's input length);
        others are reported with their line number and a ``--width`` hint.

    Yields
    ------
    Region
        Name "" when column 4 is absent or ``.``; strand "+" when column 6 is absent or ``.``.
    """
    path = os.fspath(path)
    if width is not None and width < 1:
        raise InputError(f"{path}: width must be >= 1, got {width}")
    if use_summit and width is None:
        raise InputError(f"{path}: summit-centred resizing needs a width")
    check_input_file(path, "BED")
    with _open_text(path) as fh:
        n_regions = 0
        for lineno, line in _numbered_lines(fh, path):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith(("track", "browser", "#")):
                continue
            where = f"{path} line {lineno}"
            cols = line.split("\t") if "\t" in line else line.split()
            if len(cols) < 3:
                raise InputError(f"{where}: expected at least 3 columns, got {len(cols)}")
            chrom = cols[0]
            if n_regions == 0 and not cols[1].lstrip("-").isdigit():
                where += " (a column-header line? start it with '#' or remove it)"
            start = _parse_int(cols[1], "start", where)
            end = _parse_int(cols[2], "end", where)
            if start < 0:
                raise InputError(f"{where}: start ({start}) < 0")
            if end <= start:
                raise InputError(f"{where}: end ({end}) <= start ({start})")
            name = cols[3] if len(cols) > 3 and cols[3] != "." else ""
            strand = cols[5] if len(cols) > 5 else "+"
            if strand not in ("+", "-", "."):
                raise InputError(f"{where}: strand {strand!r} is not +, - or .")
            strand = "-" if strand == "-" else "+"
            if width is not None:
                centre = None
                if use_summit:
                    if len(cols) < 10:
                        raise InputError(f"{where}: no summit (column 10) for summit-centred "
                                         f"resizing")
                    summit = _parse_int(cols[9], "summit", where)
                    if summit >= 0:
                        if summit >= end - start:
                            raise InputError(f"{where}: summit offset ({summit}) outside the "
                                             f"peak (length {end - start})")
                        centre = start + summit
                start, end = resize(start, end, width, centre)
            region = Region(chrom, start, end, strand, name)
            if length is not None and end - start != length:
                raise InputError(f"{where}: region {chrom}:{start}-{end} is {end - start} bp but "
                                 f"the model takes {length}; resize regions with --width "
                                 f"{length}")
            if chrom_sizes is not None:
                _check_bounds(region, chrom_sizes, where)
            n_regions += 1
            yield region
    if n_regions == 0:
        raise InputError(f"{path}: no regions")


def _check_bounds(region: Region, sizes: Mapping[str, int], where: str) -> None:
    if region.chrom not in sizes:
        raise InputError(f"{where}: unknown chromosome {region.chrom!r}")
    size = sizes[region.chrom]
    if region.start < 0 or region.end > size:
        raise InputError(f"{where}: region {region.chrom}:{region.start}-{region.end} outside "
                         f"chromosome {region.chrom} (length {size})")


def fetch_regions(genome_path: str | os.PathLike, regions: Iterable[Region], *,
                  pad: bool = False) -> Iterator[tuple[Region, str]]:
    """Cut regions out of a genome FASTA, one at a time.

    Parameters
    ----------
    genome_path : path
        Indexed (or indexable) plain or bgzip FASTA.
    regions : iterable of Region
        Consumed lazily.
    pad : bool
        Fill the parts of a region beyond a chromosome end with ``N`` instead of raising.

    Yields
    ------
    (Region, str)
        The region and its sequence (case kept), reverse-complemented for strand ``-``.

    Raises
    ------
    InputError
        Unknown chromosome, region outside its chromosome, non-IUPAC characters.
    """
    path = os.fspath(genome_path)
    fa = open_fasta(path)
    try:
        sizes = {name: int(rec.rlen) for name, rec in fa.faidx.index.items()}
        for region in regions:
            where = f"{path} region {region.label()}"
            if pad and region.chrom in sizes:
                size = sizes[region.chrom]
                lo, hi = max(region.start, 0), min(region.end, size)
                core = fa[region.chrom][lo:hi] if hi > lo else ""
                left = max(0, min(lo, region.end) - region.start)
                seq = "N" * left + core + "N" * (region.length - left - len(core))
            else:
                _check_bounds(region, sizes, where)
                seq = fa[region.chrom][region.start:region.end]
            _check_valid(seq, where)
            if region.strand == "-":
                seq = reverse_complement_str(seq)
            yield region, seq
    finally:
        fa.close()


# --------------------------------------------------------------------------- batching

def iter_batches(records: Iterable[tuple[Region, str]], batch_size: int, *,
                 source: str | None = None) -> Iterator[tuple[list[Region], np.ndarray]]:
    """Group streamed records into one-hot batches; memory is bounded by one batch.

    Parameters
    ----------
    records : iterable of (Region, str)
        E.g. :func:`read_fasta` or :func:`fetch_regions`; consumed lazily.
    batch_size : int
        Sequences per batch (the last batch may be smaller).
    source : str, optional
        File name used in error messages.

    Yields
    ------
    (list[Region], np.ndarray)
        ``B`` regions and their ``(B, L, 4)`` float32 one-hot.

    Raises
    ------
    InputError
        A record whose length differs from the first record's (all batches share ``L``).
    """
    if batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}")
    prefix = f"{source} " if source else ""
    first: tuple[Region, int] | None = None
    regions: list[Region] = []
    seqs: list[str] = []
    for index, (region, seq) in enumerate(records, start=1):
        if first is None:
            first = (region, len(seq))
        elif len(seq) != first[1]:
            raise InputError(f"{prefix}record {index} ({region.label()}): length {len(seq)} "
                             f"differs from length {first[1]} of the first record "
                             f"({first[0].label()}); a fixed length is needed")
        regions.append(region)
        seqs.append(seq)
        if len(seqs) == batch_size:
            yield regions, one_hot_encode(seqs)
            regions, seqs = [], []
    if seqs:
        yield regions, one_hot_encode(seqs)
