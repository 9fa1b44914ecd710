"""Tests of dnalift.references: frequency, GC-matched, shuffled, zero and FASTA references."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from dnalift.errors import InputError
from dnalift.references import (dinucleotide_shuffle_references, fasta_references,
                                frequency_references, gc_fraction, gc_matched_references,
                                genome_frequencies, make_references, parse_frequencies,
                                zero_references)
from dnalift.sequences import decode_one_hot, one_hot_encode


def _seqs_with_n_runs(rng, n, length):
    """Random ACGT sequences with 0-3 N runs of length 1-12 each (some at the ends)."""
    out = []
    for i in range(n):
        s = list(rng.choice(list("ACGT"), size=length))
        starts = [int(rng.integers(0, length)) for _ in range(rng.integers(0, 4))]
        starts += [0] if i % 10 == 0 else [length - 3] if i % 10 == 1 else []
        for a in starts:
            b = min(length, a + int(rng.integers(1, 13)))
            s[a:b] = ["N"] * (b - a)
        out.append("".join(s))
    return out


def _dinucleotides(s: str) -> Counter:
    return Counter(s[i:i + 2] for i in range(len(s) - 1))


@pytest.fixture(scope="module")
def shuffled_set():
    rng = np.random.default_rng(5)
    seqs = _seqs_with_n_runs(rng, 1000, 60)
    x = one_hot_encode(seqs)
    return seqs, x, dinucleotide_shuffle_references(x, k=3, seed=7)


# --------------------------------------------------------------------------- shuffles

def test_shuffles_preserve_dinucleotides_and_ends(shuffled_set):
    seqs, x, refs = shuffled_set
    assert refs.shape == (1000, 3, 60, 4) and refs.dtype == np.float32
    assert sum("N" in s for s in seqs) > 400  # N runs are really exercised
    for s, r in zip(seqs, refs):
        for t in decode_one_hot(r):
            assert t[0] == s[0] and t[-1] == s[-1]
            assert _dinucleotides(t) == _dinucleotides(s)
    # shuffled N positions are all-zero rows, ACGT positions one-hot
    assert set(np.unique(refs.sum(-1))) == {0.0, 1.0}


def test_shuffles_differ_from_input_and_each_other(shuffled_set):
    seqs, _, refs = shuffled_set
    decoded = [decode_one_hot(r) for r in refs]
    same_as_input = sum(t == s for s, ts in zip(seqs, decoded) for t in ts)
    same_pair = sum(ts[0] == ts[1] for ts in decoded)
    assert same_as_input < 10 and same_pair < 10
    # positionwise, shuffles are far from the input
    x = one_hot_encode(seqs)
    identity = (refs * x[:, None]).sum(-1).mean()
    assert identity < 0.45


def test_same_seed_same_shuffles_independent_of_batching(shuffled_set):
    _, x, refs = shuffled_set
    sub = x[:50]
    whole = dinucleotide_shuffle_references(sub, k=3, seed=7)
    np.testing.assert_array_equal(whole, refs[:50])
    in_sevens = np.concatenate([dinucleotide_shuffle_references(sub[i:i + 7], k=3, seed=7)
                                for i in range(0, 50, 7)])
    np.testing.assert_array_equal(in_sevens, whole)
    reordered = dinucleotide_shuffle_references(sub[::-1], k=3, seed=7)[::-1]
    np.testing.assert_array_equal(reordered, whole)


def test_different_seeds_differ(shuffled_set):
    _, x, refs = shuffled_set
    other = dinucleotide_shuffle_references(x[:50], k=3, seed=8)
    assert (other != refs[:50]).any(axis=(2, 3)).mean() > 0.95


def test_short_and_constant_sequences():
    x = one_hot_encode(["AC", "GG"])
    np.testing.assert_array_equal(dinucleotide_shuffle_references(x, k=2)[:, 0], x)
    x = one_hot_encode(["AAAAAA", "NNNNNN"])
    np.testing.assert_array_equal(dinucleotide_shuffle_references(x, k=2)[:, 1], x)


def _all_shuffles(s: str) -> set[str]:
    """Every sequence with the dinucleotide counts and first letter of ``s`` (depth-first)."""
    found, edges = set(), _dinucleotides(s)

    def extend(prefix, left):
        if not +left:
            found.add(prefix)
            return
        for pair in list(+left):
            if pair[0] == prefix[-1]:
                left[pair] -= 1
                extend(prefix + pair[1], left)
                left[pair] += 1
    extend(s[0], edges)
    return found


def test_shuffles_are_uniform_over_all_dinucleotide_preserving_sequences():
    s = "ACGTTGCAAGTNNCAT"
    support = _all_shuffles(s)
    assert all(t[-1] == s[-1] for t in support) and len(support) > 100
    k = 60 * len(support)
    counts = Counter(decode_one_hot(dinucleotide_shuffle_references(one_hot_encode(s), k=k,
                                                                    seed=3)[0]))
    assert set(counts) == support
    expected = k / len(support)
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    # chi-square with d-1 degrees of freedom: mean d-1, sd sqrt(2(d-1)); 5 sd is generous
    d = len(support) - 1
    assert chi2 < d + 5 * np.sqrt(2 * d)


def test_shuffle_rejects_bad_k_and_seed():
    x = one_hot_encode("ACGTACGT")
    for k in (0, -1, 2.5):
        with pytest.raises(InputError, match="k must be an integer >= 1"):
            dinucleotide_shuffle_references(x, k=k)
    with pytest.raises(InputError, match="seed"):
        dinucleotide_shuffle_references(x, seed=-1)
    with pytest.raises(InputError, match="strict one-hot"):
        dinucleotide_shuffle_references(x * 0.5)


# --------------------------------------------------------------------------- frequencies

def test_frequency_references_rows_equal_the_vector():
    x = one_hot_encode(["ACGTN", "NNNNN"])
    refs = frequency_references(x)
    assert refs.shape == (2, 1, 5, 4) and refs.dtype == np.float32
    np.testing.assert_allclose(refs.reshape(-1, 4), np.tile([0.3, 0.2, 0.2, 0.3], (10, 1)))
    refs = frequency_references(x, "0.1, 0.4, 0.4, 0.1")
    np.testing.assert_allclose(refs[1, 0, 4], [0.1, 0.4, 0.4, 0.1])


@pytest.mark.parametrize("freqs, pattern", [
    (("a", 0.2, 0.2, 0.3), r"'a' is not a number"),
    ("0.3,0.2,0.2,x", r"'x' is not a number"),
    ((0.3, 0.2, 0.2, 0.2), r"must sum to 1 \(sum is 0\.9\)"),
    ((0.3, 0.2, 0.2, 0.3 + 2e-6), r"must sum to 1"),
    ((0.6, -0.1, 0.2, 0.3), r">= 0"),
    ((0.5, 0.5), r"need 4 values"),
])
def test_bad_frequencies(freqs, pattern):
    with pytest.raises(InputError, match=pattern):
        frequency_references(one_hot_encode("ACGT"), freqs)


def test_frequency_tolerance_accepts_rounding():
    np.testing.assert_allclose(parse_frequencies((0.3, 0.2, 0.2, 0.3 + 5e-7)),
                               [0.3, 0.2, 0.2, 0.3 + 5e-7])


def test_gc_matched_references_reproduce_gc_fraction():
    seqs = ["GGCA", "ACGN", "AATT", "NNNN"]
    x = one_hot_encode(seqs)
    np.testing.assert_allclose(gc_fraction(x), [0.75, 2 / 3, 0.0, 0.5])
    refs = gc_matched_references(x)
    assert refs.shape == (4, 1, 4, 4)
    np.testing.assert_allclose(refs[0, 0], np.tile([0.125, 0.375, 0.375, 0.125], (4, 1)))
    np.testing.assert_allclose(refs[1, 0, 3], [1 / 6, 1 / 3, 1 / 3, 1 / 6], rtol=1e-6)
    np.testing.assert_allclose(refs[2, 0, 0], [0.5, 0, 0, 0.5])
    rng = np.random.default_rng(0)
    x = one_hot_encode(["".join(rng.choice(list("ACGTN"), size=200)) for _ in range(30)])
    refs = gc_matched_references(x)
    np.testing.assert_allclose(refs[:, 0, :, 1] + refs[:, 0, :, 2],
                               np.repeat(gc_fraction(x)[:, None], 200, axis=1), rtol=1e-6)


def test_genome_frequencies_streams_in_chunks(write_fasta):
    path = write_fasta([("c1", "AAAACCGGTN"), ("c2", "acgtTTTT")], width=3)
    # A 5, C 3, G 3, T 6 over 17 ACGT bases (N skipped, case ignored)
    for chunk in (3, 1000):
        np.testing.assert_allclose(genome_frequencies(path, chunk_size=chunk),
                                   np.array([5, 3, 3, 6]) / 17)


def test_genome_frequencies_needs_acgt(write_fasta):
    with pytest.raises(InputError, match=r"nn\.fa: no A, C, G or T"):
        genome_frequencies(write_fasta([("c", "NNNN")], name="nn.fa"))


def test_zero_references():
    refs = zero_references(one_hot_encode(["ACGT", "TTTT", "GGGG"]))
    assert refs.shape == (3, 1, 4, 4) and refs.dtype == np.float32 and not refs.any()


# --------------------------------------------------------------------------- user FASTA

def test_fasta_references_one_per_sequence_or_shared(write_fasta):
    x = one_hot_encode(["ACGT", "CCCC", "GGGG"])
    per_seq = write_fasta([("r1", "TTTT"), ("r2", "aaNa"), ("r3", "GCGC"), ("r4", "CATG")],
                          name="refs.fa")
    refs = fasta_references(per_seq, x)
    assert refs.shape == (3, 1, 4, 4)
    assert [decode_one_hot(r)[0] for r in refs] == ["TTTT", "AANA", "GCGC"]
    assert [decode_one_hot(r)[0] for r in fasta_references(per_seq, x[:2], offset=2)] == \
        ["GCGC", "CATG"]
    shared = write_fasta([("r", "ACCA")], name="one.fa")
    assert [decode_one_hot(r)[0] for r in fasta_references(shared, x)] == ["ACCA"] * 3


def test_fasta_references_errors(write_fasta):
    x = one_hot_encode(["ACGT", "CCCC", "GGGG"])
    bad_len = write_fasta([("r1", "TTTT"), ("r2", "TTT"), ("r3", "TTTT")], name="len.fa")
    with pytest.raises(InputError, match=r"len\.fa record 2 \(r2\): length 3 differs from "
                                         r"the sequences' length 4"):
        fasta_references(bad_len, x)
    two = write_fasta([("r1", "TTTT"), ("r2", "TTTT")], name="two.fa")
    with pytest.raises(InputError, match=r"two\.fa: 2 reference records, need 1 or one per "
                                         r"sequence \(at least 3\)"):
        fasta_references(two, x)


# --------------------------------------------------------------------------- dispatch

def test_make_references_dispatch(write_fasta):
    x = one_hot_encode(["ACGTACGTAC", "GGGCCCAATT"])
    assert make_references("shuffle", x, k=4, seed=1).shape == (2, 4, 10, 4)
    np.testing.assert_array_equal(make_references("shuffle", x, k=4, seed=1),
                                  dinucleotide_shuffle_references(x, k=4, seed=1))
    np.testing.assert_allclose(make_references("frequency", x, freqs=(0.25,) * 4)[0, 0, 0],
                               [0.25] * 4)
    np.testing.assert_array_equal(make_references("gc", x), gc_matched_references(x))
    assert not make_references("zero", x).any()
    ref = write_fasta([("r", "A" * 10)])
    assert decode_one_hot(make_references("fasta", x, fasta=ref)[1])[0] == "A" * 10
    with pytest.raises(InputError, match="unknown reference kind 'mean'"):
        make_references("mean", x)
    with pytest.raises(InputError, match="k must be an integer >= 1"):
        make_references("zero", x, k=0)
    with pytest.raises(InputError, match="needs a reference FASTA"):
        make_references("fasta", x)


# --------------------------------------------------------------------------- registry

def test_registry_k_per_kind():
    from dnalift.references import KINDS, REGISTRY, ReferenceSpec
    assert KINDS == ("shuffle", "frequency", "gc", "zero", "fasta") == tuple(REGISTRY)
    assert ReferenceSpec("shuffle").n_references == 10
    assert ReferenceSpec("shuffle", k=3).n_references == 3
    for kind in ("frequency", "gc", "zero"):
        assert ReferenceSpec(kind).n_references == 1
    # fasta: one reference per sequence (record offset + i), so K = 1, not k
    assert ReferenceSpec("fasta", fasta="refs.fa").n_references == 1


def test_fasta_kind_builds_one_reference_per_sequence(write_fasta):
    from dnalift.references import ReferenceSpec
    x = one_hot_encode(["ACGTACGTAC", "GGGCCCAATT", "TTTTTTTTTT"])
    ref = write_fasta([("r0", "A" * 10), ("r1", "C" * 10), ("r2", "G" * 10), ("r3", "T" * 10)])
    spec = ReferenceSpec("fasta", fasta=ref)
    refs = spec.build(x[1:], offset=1)
    assert refs.shape == (2, spec.n_references, 10, 4) == (2, 1, 10, 4)
    assert [decode_one_hot(r)[0] for r in refs] == ["C" * 10, "G" * 10]


@pytest.mark.parametrize("kind, options, unused", [
    ("shuffle", {"freqs": (0.25,) * 4}, "freqs"),
    ("shuffle", {"fasta": "r.fa"}, "fasta"),
    ("frequency", {"k": 5}, "k"),
    ("frequency", {"seed": 1}, "seed"),
    ("gc", {"freqs": "0.25,0.25,0.25,0.25"}, "freqs"),
    ("zero", {"seed": 0}, "seed"),
    ("fasta", {"fasta": "r.fa", "k": 3}, "k"),
])
def test_options_a_kind_does_not_use_are_rejected(kind, options, unused):
    from dnalift.references import ReferenceSpec
    with pytest.raises(InputError, match=f"reference kind '{kind}' does not use option "
                                         f"'{unused}'"):
        ReferenceSpec(kind, **options)
    x = one_hot_encode(["ACGTACGTAC"])
    with pytest.raises(InputError, match="does not use option"):
        make_references(kind, x, **options)


def test_spec_validates_values():
    from dnalift.references import ReferenceSpec
    assert ReferenceSpec("frequency", freqs="0.1 0.4 0.4 0.1").freqs == (0.1, 0.4, 0.4, 0.1)
    with pytest.raises(InputError, match="must sum to 1"):
        ReferenceSpec("frequency", freqs=(0.5, 0.5, 0.5, 0.5))
    with pytest.raises(InputError, match="seed must be an integer >= 0"):
        ReferenceSpec("shuffle", seed=-2)
    with pytest.raises(InputError, match="unknown reference kind 'mean'"):
        ReferenceSpec("mean")


def test_callable_references():
    from dnalift.references import ReferenceSpec

    def halves(x):  # two references: x itself and the uniform vector
        return np.stack([x, np.full_like(x, 0.25)], axis=1)

    x = one_hot_encode(["ACGTACGTAC", "GGGCCCAATT"])
    refs = make_references(halves, x)
    assert refs.shape == (2, 2, 10, 4) and refs.dtype == np.float32
    np.testing.assert_array_equal(refs[:, 0], x)
    assert ReferenceSpec(halves).n_references is None  # unknown until called
    assert ReferenceSpec(halves, k=2).name == "halves"
    with pytest.raises(InputError, match=r"halves: returned shape \(2, 2, 10, 4\), expected "
                                         r"\(2, 3, 10, 4\)"):
        make_references(halves, x, k=3)
    with pytest.raises(InputError, match="does not use option 'seed'"):
        make_references(halves, x, seed=1)


def test_parse_frequencies_positive_mode():
    assert parse_frequencies("0.25,0.25,0.25,0.25", positive=True).tolist() == [0.25] * 4
    with pytest.raises(InputError, match=r"--background .*> 0"):
        parse_frequencies("0,0.5,0.25,0.25", what="--background", positive=True)
    with pytest.raises(InputError, match="must sum to 1"):
        parse_frequencies("0.3,0.3,0.2,0.2001", tolerance=1e-6)
    assert parse_frequencies("0.3,0.3,0.2,0.2001", tolerance=1e-3).shape == (4,)
