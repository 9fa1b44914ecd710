"""References: the neutral inputs DeepLIFT explains differences against.

Every function takes one-hot sequences ``x`` ``(N, L, 4)`` (ACGT, all-zero rows for N) and
returns float32 references ``(N, K, L, 4)``:

* ``frequency`` (K = 1): every row is a fixed base-frequency vector (default A, C, G, T =
  0.3, 0.2, 0.2, 0.3 as in the DeepLIFT paper's simulation), also at N positions;
* ``gc`` (K = 1): frequencies matched to each sequence's GC fraction (over its ACGT positions):
  A = T = (1 - gc) / 2, C = G = gc / 2; also at N positions;
* ``shuffle`` (K = k): dinucleotide shuffles (Altschul-Erikson); N is a fifth letter, so N
  runs stay dinucleotide-exact and shuffled N rows are all-zero;
* ``zero`` (K = 1): all-zero;
* ``fasta`` (K = 1): user-supplied sequences, one per input sequence or one for all.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

import numpy as np

from dnalift.errors import InputError
from dnalift.sequences import codes_to_one_hot, one_hot_encode, open_fasta, sequence_codes

DEFAULT_FREQUENCIES = (0.3, 0.2, 0.2, 0.3)
_N_LETTERS = 5  # A, C, G, T, N


def _check_one_hot(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[-1] != 4:
        raise InputError(f"sequences must be one-hot with shape (N, L, 4), got {x.shape}")
    return x


# --------------------------------------------------------------------------- frequencies

def parse_frequencies(freqs: str | Sequence[float] | np.ndarray, *, what: str = "frequencies",
                      positive: bool = False, tolerance: float = 1e-6) -> np.ndarray:
    """Validate an A, C, G, T frequency vector (the one parser of frequencies in dnalift).

    Parameters
    ----------
    freqs : str or sequence of 4 numbers
        E.g. ``(0.3, 0.2, 0.2, 0.3)``, ``"0.3,0.2,0.2,0.3"`` or ``"0.3 0.2 0.2 0.3"``.
    what : str
        Name used in messages (e.g. ``"--background"``).
    positive : bool
        Require values > 0 (a log-odds background), not just >= 0.
    tolerance : float
        Largest allowed difference of the sum from 1.

    Returns
    -------
    np.ndarray
        ``(4,)`` float64.

    Raises
    ------
    InputError
        Not 4 values, a non-numeric or negative (or zero, with ``positive``) value, or a sum
        that differs from 1 by more than ``tolerance``.
    """
    bound = "> 0" if positive else ">= 0"
    form = f"expected A,C,G,T: 4 numbers {bound} summing to 1, e.g. 0.3,0.2,0.2,0.3"
    items = freqs.replace(",", " ").split() if isinstance(freqs, str) else list(freqs)
    values = []
    for item in items:
        try:
            values.append(float(item))
        except (TypeError, ValueError):
            raise InputError(f"{what} {freqs!r}: {item!r} is not a number; {form}") from None
    f = np.asarray(values, dtype=np.float64)
    if f.shape != (4,):
        raise InputError(f"{what} {freqs!r}: need 4 values (A, C, G, T), got {f.size}; "
                         f"{form}")
    if not np.all(np.isfinite(f)) or np.any(f <= 0 if positive else f < 0):
        raise InputError(f"{what} {freqs!r}: values must be finite and {bound}; {form}")
    if abs(f.sum() - 1.0) > tolerance:
        raise InputError(f"{what} {freqs!r}: must sum to 1 (sum is {f.sum():.8g}); {form}")
    return f


def frequency_references(x: np.ndarray, freqs=DEFAULT_FREQUENCIES) -> np.ndarray:
    """Every position of every reference is the vector ``freqs`` (N positions included).

    Parameters
    ----------
    x : np.ndarray
        ``(N, L, 4)`` one-hot.
    freqs : sequence of 4 floats or str
        A, C, G, T frequencies summing to 1.

    Returns
    -------
    np.ndarray
        ``(N, 1, L, 4)`` float32.
    """
    x = _check_one_hot(x)
    f = parse_frequencies(freqs).astype(np.float32)
    return np.broadcast_to(f, (x.shape[0], 1, x.shape[1], 4)).copy()


def gc_fraction(x: np.ndarray) -> np.ndarray:
    """GC fraction of each sequence over its ACGT positions (0.5 for a sequence without any).

    Parameters
    ----------
    x : np.ndarray
        ``(N, L, 4)`` one-hot.

    Returns
    -------
    np.ndarray
        ``(N,)`` float64.
    """
    counts = _check_one_hot(x).sum(axis=1, dtype=np.float64)  # (N, 4)
    total = counts.sum(axis=1)
    gc = counts[:, 1] + counts[:, 2]
    return np.where(total > 0, gc / np.maximum(total, 1), 0.5)


def gc_matched_references(x: np.ndarray) -> np.ndarray:
    """Frequencies matched to each sequence's GC content: A = T = (1-gc)/2, C = G = gc/2.

    Parameters
    ----------
    x : np.ndarray
        ``(N, L, 4)`` one-hot.

    Returns
    -------
    np.ndarray
        ``(N, 1, L, 4)`` float32, every row of sequence ``i`` equal to its frequency vector.
    """
    x = _check_one_hot(x)
    gc = gc_fraction(x)
    f = np.stack([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2], axis=1).astype(np.float32)
    return np.broadcast_to(f[:, None, None, :], (x.shape[0], 1, x.shape[1], 4)).copy()


def genome_frequencies(fasta_path: str | os.PathLike, chunk_size: int = 10_000_000) -> np.ndarray:
    """A, C, G, T frequencies of a genome FASTA (case ignored, other codes skipped).

    Streams each record in chunks of ``chunk_size`` bases, so memory stays bounded.

    Returns
    -------
    np.ndarray
        ``(4,)`` float64 summing to 1.
    """
    path = os.fspath(fasta_path)
    fa = open_fasta(path)
    counts = np.zeros(6, dtype=np.int64)
    try:
        for i, (name, rec) in enumerate(fa.faidx.index.items(), start=1):
            for start in range(0, int(rec.rlen), chunk_size):
                seq = fa[name][start:start + chunk_size]
                codes = sequence_codes(seq)
                c = np.bincount(codes, minlength=6)
                if c[5]:
                    bad = int(np.argmax(codes == 5))
                    raise InputError(f"{path} record {i} ({name}): invalid character "
                                     f"{seq[bad]!r} at position {start + bad + 1}")
                counts += c
    finally:
        fa.close()
    if counts[:4].sum() == 0:
        raise InputError(f"{path}: no A, C, G or T bases")
    return counts[:4] / counts[:4].sum()


def zero_references(x: np.ndarray) -> np.ndarray:
    """All-zero references, ``(N, 1, L, 4)`` float32."""
    x = _check_one_hot(x)
    return np.zeros((x.shape[0], 1, x.shape[1], 4), dtype=np.float32)


# --------------------------------------------------------------------------- shuffles

def _codes_from_one_hot(x: np.ndarray) -> np.ndarray:
    """``(N, L)`` uint8 letters 0..4 (A, C, G, T, N) from strict one-hot ``(N, L, 4)``."""
    if not np.all((x == 0) | (x == 1)) or np.any(x.sum(axis=-1) > 1):
        raise InputError("dinucleotide shuffles need strict one-hot input (0/1, at most one "
                         "1 per position)")
    codes = np.argmax(x, axis=-1).astype(np.uint8)
    codes[~np.any(x != 0, axis=-1)] = 4
    return codes


def sequence_rng(codes: np.ndarray, seed: int) -> np.random.Generator:
    """Random generator of one sequence: ``default_rng([seed, h])``, ``h`` = the first 8
    bytes (little-endian) of the BLAKE2b digest of the sequence's letter codes (A, C, G, T, N
    = bytes 0..4). Depends only on the seed and the sequence, never on its batch."""
    h = hashlib.blake2b(np.ascontiguousarray(codes, dtype=np.uint8).tobytes(), digest_size=8)
    return np.random.default_rng([seed, int.from_bytes(h.digest(), "little")])


class _Uniforms:
    """A lazily refilled stream of uniforms drawn from one generator."""

    def __init__(self, rng: np.random.Generator, block: int = 256):
        self.rng, self.block, self.buf, self.pos = rng, block, [], 0

    def next(self) -> float:
        if self.pos == len(self.buf):
            self.buf, self.pos = self.rng.random(self.block).tolist(), 0
        self.pos += 1
        return self.buf[self.pos - 1]


def _random_last_edges(counts: np.ndarray, root: int, u: _Uniforms) -> list[int]:
    """Random last-edge arborescence rooted at ``root`` (Wilson's loop-erased random walk).

    ``counts[a, b]`` = number of ``ab`` dinucleotides. Every letter with outgoing edges other
    than the root gets the target of its last exit edge, drawn with probability proportional
    to the edge multiplicity (self-loops excluded: they are never in a tree). The tree is
    uniform over edge-labelled arborescences, as Altschul & Erikson's rejection step gives.

    Returns
    -------
    list[int]
        ``nxt[a]`` for each letter (-1 where there is no last edge to choose).
    """
    w = counts.astype(np.int64)
    np.fill_diagonal(w, 0)
    cum = np.cumsum(w, axis=1)
    cum_l, tot = cum.tolist(), cum[:, -1].tolist()  # Python ints
    has_out = counts.sum(axis=1) > 0
    nxt = [-1] * _N_LETTERS
    in_tree = [False] * _N_LETTERS
    in_tree[root] = True
    for start in range(_N_LETTERS):
        if not has_out[start]:
            continue
        a = start
        while not in_tree[a]:
            r = min(int(u.next() * tot[a]), tot[a] - 1)  # uniform edge index 0..tot-1
            row = cum_l[a]
            b = 0
            while row[b] <= r:  # first b with cum > r, so w[a, b] > 0
                b += 1
            nxt[a] = b
            a = b
        a = start
        while not in_tree[a]:
            in_tree[a] = True
            a = nxt[a]
    return nxt


def _edge_orders(codes: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Sort keys fixing the order in which each letter's exit edges are used, ``(k, L-1)``.

    Key of edge ``j`` (dinucleotide ``codes[j] codes[j+1]``) is ``source + 0.5 * uniform``,
    except the chosen last edge of each letter which gets ``source + 0.75`` (sorts last).
    """
    rng = sequence_rng(codes, seed)
    src, tgt = codes[:-1].astype(np.int64), codes[1:].astype(np.int64)
    counts = np.bincount(src * _N_LETTERS + tgt,
                         minlength=_N_LETTERS ** 2).reshape(_N_LETTERS, _N_LETTERS)
    # first position of each dinucleotide: copies of one dinucleotide are interchangeable
    pairs, first = np.unique(src * _N_LETTERS + tgt, return_index=True)
    first_pos = np.full(_N_LETTERS ** 2, -1, dtype=np.int64)
    first_pos[pairs] = first
    stream = _Uniforms(rng)
    last = [_random_last_edges(counts, int(codes[-1]), stream) for _ in range(k)]
    keys = src + 0.5 * rng.random((k, src.size))
    rows, cols = [], []
    for r, nxt in enumerate(last):
        for a, b in enumerate(nxt):
            if b >= 0:
                rows.append(r)
                cols.append(first_pos[a * _N_LETTERS + b])
    keys[rows, cols] = src[cols] + 0.75
    return keys


def dinucleotide_shuffle_codes(codes: np.ndarray, k: int = 10, seed: int = 0) -> np.ndarray:
    """Dinucleotide shuffles of letter-coded sequences (A, C, G, T, N = 0..4).

    Altschul & Erikson (1985): a random last-edge arborescence rooted at the last letter,
    then the other exit edges of every letter in random order, then the Eulerian walk from
    the first letter. Each shuffle has exactly the dinucleotide counts and the first and last
    letter of its sequence, and is uniform among such sequences. The walks of all sequences
    and shuffles advance together (one numpy step per position).

    Parameters
    ----------
    codes : np.ndarray
        ``(N, L)`` integer letters 0..4.
    k : int
        Shuffles per sequence.
    seed : int
        Non-negative seed; sequence ``i`` uses :func:`sequence_rng` ``(codes[i], seed)``.

    Returns
    -------
    np.ndarray
        ``(N, k, L)`` uint8 letters.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"number of shuffles k must be an integer >= 1, got {k!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    codes = np.asarray(codes, dtype=np.uint8)
    n, length = codes.shape
    if n == 0 or length < 3:
        return np.repeat(codes[:, None, :], k, axis=1)
    # bounded working memory: about 20 bytes per base of every shuffle in a chunk
    chunk = max(1, 2_000_000 // (k * length))
    return np.concatenate([_shuffle_chunk(codes[i:i + chunk], k, seed)
                           for i in range(0, n, chunk)])


def _shuffle_chunk(codes: np.ndarray, k: int, seed: int) -> np.ndarray:
    """:func:`dinucleotide_shuffle_codes` of ``(n, L)`` codes, ``L >= 3``, all at once."""
    n, length = codes.shape
    out = np.empty((n, k, length), dtype=np.uint8)
    m = length - 1
    keys = np.stack([_edge_orders(codes[i], k, seed) for i in range(n)])  # (n, k, m)
    order = np.argsort(keys, axis=-1)  # keys are distinct with probability 1
    tgt = np.broadcast_to(codes[:, None, 1:], (n, k, m))
    succ = np.take_along_axis(tgt, order, axis=-1).reshape(n * k, m)
    # start offset of each letter's block of exit edges in the sorted order
    src_counts = np.stack([np.bincount(c[:-1], minlength=_N_LETTERS) for c in codes])
    starts = np.concatenate([np.zeros((n, 1), np.int64), np.cumsum(src_counts, axis=1)[:, :-1]],
                            axis=1)
    ptr = np.repeat(starts, k, axis=0).ravel()  # (n*k*5,) next unused edge of each letter
    rows = np.arange(n * k)
    row5, rowm = rows * _N_LETTERS, rows * m
    succ_flat = succ.ravel()
    cur = np.repeat(codes[:, 0], k).astype(np.int64)
    walk = out.reshape(n * k, length)
    walk[:, 0] = cur
    for t in range(1, length):
        slot = row5 + cur
        cur = succ_flat[rowm + ptr[slot]].astype(np.int64)
        ptr[slot] += 1
        walk[:, t] = cur
    return out


def dinucleotide_shuffle_references(x: np.ndarray, k: int = 10, seed: int = 0) -> np.ndarray:
    """``k`` dinucleotide-shuffled references per sequence.

    N (all-zero rows) is shuffled as a fifth letter: N runs keep their dinucleotides and
    shuffled N rows stay all-zero. Shuffles of a sequence depend only on ``seed`` and the
    sequence itself (see :func:`sequence_rng`), not on batch size, composition or sharding;
    identical sequences get identical shuffles.

    Parameters
    ----------
    x : np.ndarray
        ``(N, L, 4)`` strict one-hot.
    k : int
        Shuffles per sequence (>= 1).
    seed : int
        Non-negative seed.

    Returns
    -------
    np.ndarray
        ``(N, k, L, 4)`` float32.
    """
    codes = _codes_from_one_hot(_check_one_hot(x))
    return codes_to_one_hot(dinucleotide_shuffle_codes(codes, k, seed))


# --------------------------------------------------------------------------- user FASTA

def fasta_references(path: str | os.PathLike, x: np.ndarray, *, offset: int = 0) -> np.ndarray:
    """User-supplied references from a FASTA file.

    A file with one record gives the reference of every sequence; otherwise record
    ``offset + i`` is the reference of sequence ``i`` of ``x`` (``offset`` = index of the
    batch's first sequence in the whole input, so batches can be scored one at a time).

    Parameters
    ----------
    path : path
        FASTA whose records have the sequences' length ``L``.
    x : np.ndarray
        ``(N, L, 4)`` one-hot.
    offset : int
        Index of ``x[0]`` in the whole input.

    Returns
    -------
    np.ndarray
        ``(N, 1, L, 4)`` float32.
    """
    x = _check_one_hot(x)
    path = os.fspath(path)
    n, length = x.shape[:2]
    fa = open_fasta(path)
    try:
        names = list(fa.keys())
        if len(names) == 1:
            wanted = [0] * n
        elif len(names) >= offset + n:
            wanted = list(range(offset, offset + n))
        else:
            raise InputError(f"{path}: {len(names)} reference records, need 1 or one per "
                             f"sequence (at least {offset + n})")
        seqs = {}
        for j in sorted(set(wanted)):
            seq = fa[names[j]][:]
            where = f"{path} record {j + 1} ({names[j]})"
            if len(seq) != length:
                raise InputError(f"{where}: length {len(seq)} differs from the sequences' "
                                 f"length {length}")
            seqs[j] = seq
    finally:
        fa.close()
    try:
        refs = one_hot_encode([seqs[j] for j in wanted]) if n else np.zeros((0, length, 4),
                                                                            np.float32)
    except InputError as err:
        raise InputError(f"{path}: {err}") from None
    return refs[:, None]


# --------------------------------------------------------------------------- registry

#: A user reference function: ``fn(x (N, L, 4)) -> (N, K, L, 4)``.
ReferenceFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ReferenceKind:
    """One kind of reference: the options it takes, its K, and how it is built.

    Attributes
    ----------
    name : str
    options : tuple of str
        The :class:`ReferenceSpec` options this kind uses (others are rejected).
    build : callable
        ``build(x (N, L, 4), spec, offset) -> (N, K, L, 4)`` float32.
    k_option : bool
        K is the ``k`` option (default :data:`DEFAULT_K`); otherwise K = 1 (one reference
        per sequence: the same vector, or record ``offset + i`` of a FASTA file).
    """

    name: str
    options: tuple[str, ...]
    build: Callable[[np.ndarray, "ReferenceSpec", int], np.ndarray]
    k_option: bool = False


DEFAULT_K = 10
DEFAULT_SEED = 0
_OPTIONS = ("k", "seed", "freqs", "fasta")

#: The registry: every reference kind, by name (the one definition of the kinds).
REGISTRY: Mapping[str, ReferenceKind] = MappingProxyType({kind.name: kind for kind in (
    ReferenceKind("shuffle", ("k", "seed"), k_option=True,
                  build=lambda x, spec, offset: dinucleotide_shuffle_references(
                      x, k=spec.n_references, seed=spec.seed_value)),
    ReferenceKind("frequency", ("freqs",),
                  build=lambda x, spec, offset: frequency_references(
                      x, DEFAULT_FREQUENCIES if spec.freqs is None else spec.freqs)),
    ReferenceKind("gc", (), build=lambda x, spec, offset: gc_matched_references(x)),
    ReferenceKind("zero", (), build=lambda x, spec, offset: zero_references(x)),
    ReferenceKind("fasta", ("fasta",),
                  build=lambda x, spec, offset: fasta_references(spec.fasta, x, offset=offset)),
)})
#: Names of the reference kinds, in registry order.
KINDS = tuple(REGISTRY)


#: Largest seed: seeds are stored as int64 HDF5 attributes.
MAX_SEED = 2**63 - 1


def _check_count(name: str, value, minimum: int, maximum: int = MAX_SEED) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or \
            not minimum <= value <= maximum:
        what = "number of references k" if name == "k" else name
        raise InputError(f"{what} must be an integer >= {minimum} and <= {maximum}, got "
                         f"{value!r}")


@dataclass(frozen=True)
class ReferenceSpec:
    """A validated choice of references: a registered kind (or a function) and its options.

    Options left at None take their defaults (k = 10, seed = 0, the paper's frequencies); an
    option the kind does not use is an :class:`InputError`, not silently ignored.

    Parameters
    ----------
    kind : str or callable
        A name in :data:`REGISTRY`, or ``fn(x (N, L, 4)) -> (N, K, L, 4)``.
    k : int, optional
        ``shuffle``: shuffles per sequence; a function: the K it returns (checked).
    seed : int, optional
        ``shuffle`` only.
    freqs : str or 4 floats, optional
        ``frequency`` only (A, C, G, T; parsed by :func:`parse_frequencies`).
    fasta : path, optional
        ``fasta`` only (required there).
    """

    kind: str | ReferenceFn = "shuffle"
    k: int | None = None
    seed: int | None = None
    freqs: str | Sequence[float] | None = None
    fasta: str | os.PathLike | None = None

    def __post_init__(self) -> None:
        if self.k is not None:
            _check_count("k", self.k, 1)
        if self.seed is not None:
            _check_count("seed", self.seed, 0)
        if callable(self.kind):
            used: tuple[str, ...] = ("k",)
        elif self.kind in REGISTRY:
            used = REGISTRY[self.kind].options
        else:
            raise InputError(f"unknown reference kind {self.kind!r} "
                             f"(choose from {', '.join(KINDS)})")
        for option in _OPTIONS:
            if getattr(self, option) is not None and option not in used:
                raise InputError(f"reference kind {self.name!r} does not use option "
                                 f"{option!r} (it takes: {', '.join(used) or 'no options'})")
        if self.freqs is not None:
            object.__setattr__(self, "freqs", tuple(parse_frequencies(self.freqs)))
        if self.kind == "fasta" and self.fasta is None:
            raise InputError("reference kind 'fasta' needs a reference FASTA file")

    @property
    def name(self) -> str:
        """The kind's name (a function's ``__name__``)."""
        return self.kind if isinstance(self.kind, str) else getattr(self.kind, "__name__",
                                                                    "function")

    @property
    def n_references(self) -> int | None:
        """K, the references per sequence: ``k`` for shuffles, 1 for the other kinds, the
        declared ``k`` (or None: unknown until called) for a function."""
        if callable(self.kind):
            return self.k
        return (DEFAULT_K if self.k is None else int(self.k)) \
            if REGISTRY[self.kind].k_option else 1

    @property
    def seed_value(self) -> int:
        """The shuffle seed (0 unless given)."""
        return DEFAULT_SEED if self.seed is None else int(self.seed)

    def build(self, x: np.ndarray, offset: int = 0) -> np.ndarray:
        """References ``(N, K, L, 4)`` float32 of one-hot ``x`` ``(N, L, 4)``.

        ``offset`` is the index of ``x[0]`` in the whole input (``fasta`` only).
        """
        if not callable(self.kind):
            return REGISTRY[self.kind].build(x, self, offset)
        x = _check_one_hot(x)
        refs = np.asarray(self.kind(x), dtype=np.float32)
        n, length = x.shape[:2]
        if refs.ndim != 4 or refs.shape[0] != n or refs.shape[2:] != (length, 4) or \
                (self.k is not None and refs.shape[1] != self.k):
            k = "K" if self.k is None else self.k
            raise InputError(f"reference function {self.name}: returned shape {refs.shape}, "
                             f"expected ({n}, {k}, {length}, 4)")
        return refs


def make_references(kind: str | ReferenceFn, x: np.ndarray, *, k: int | None = None,
                    seed: int | None = None, freqs=None, fasta: str | os.PathLike | None = None,
                    offset: int = 0) -> np.ndarray:
    """References of one kind for one-hot sequences ``x`` ``(N, L, 4)``.

    Parameters
    ----------
    kind : {"shuffle", "frequency", "gc", "zero", "fasta"} or callable
        A registered kind, or ``fn(x) -> (N, K, L, 4)``.
    k : int, optional
        Shuffles per sequence (``shuffle``, default 10; the other kinds have K = 1), or the
        K a function must return.
    seed : int, optional
        Seed of the shuffles (default 0).
    freqs : sequence of 4 floats or str, optional
        ``frequency`` only; default (0.3, 0.2, 0.2, 0.3).
    fasta : path, optional
        ``fasta`` only: the reference FASTA.
    offset : int
        ``fasta`` only: index of ``x[0]`` in the whole input.

    Returns
    -------
    np.ndarray
        ``(N, K, L, 4)`` float32.

    Raises
    ------
    InputError
        Unknown kind, an invalid option, or an option the kind does not use.
    """
    spec = ReferenceSpec(kind, k=k, seed=seed, freqs=freqs, fasta=fasta)
    return spec.build(x, offset)
