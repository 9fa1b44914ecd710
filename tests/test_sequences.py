"""Tests of dnalift.sequences: FASTA/BED input, one-hot encoding, batching."""

from __future__ import annotations

import gzip
import itertools
import os

import numpy as np
import pytest

from dnalift.errors import InputError
from dnalift.sequences import (Region, chrom_sizes, decode_one_hot, fetch_regions,
                               iter_batches, one_hot_encode, read_bed, read_fasta, resize,
                               reverse_complement, reverse_complement_str)

# chr1 positions:   0123456789 0123456789 0123456789 01
CHR1 = "ACGTAACCGGTTAAACCCGGGTTTACGATCGA"
CHR2 = "acgtNNNNacgt"


@pytest.fixture
def genome(write_fasta):
    return write_fasta([("chr1", CHR1), ("chr2", CHR2)], name="genome.fa", width=10)


def _random_seqs(rng, n, length, alphabet="ACGTN"):
    return ["".join(rng.choice(list(alphabet), size=length)) for _ in range(n)]


# --------------------------------------------------------------------------- one-hot

def test_one_hot_values_and_acgt_order():
    x = one_hot_encode(["ACGTN", "TTGCA"])
    assert x.dtype == np.float32 and x.shape == (2, 5, 4)
    np.testing.assert_array_equal(x[0], [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0],
                                         [0, 0, 0, 1], [0, 0, 0, 0]])
    np.testing.assert_array_equal(x[1].argmax(-1), [3, 3, 2, 1, 0])


def test_one_hot_round_trip():
    seqs = _random_seqs(np.random.default_rng(0), 50, 37)
    assert decode_one_hot(one_hot_encode(seqs)) == seqs


def test_lowercase_encodes_like_uppercase():
    np.testing.assert_array_equal(one_hot_encode("acgtnAcGt"), one_hot_encode("ACGTNACGT"))


def test_n_and_iupac_codes_are_all_zero_rows():
    x = one_hot_encode("NRYSWKMBDHVUnryswkmbdhvu")
    assert not x.any()
    assert decode_one_hot(x) == ["N" * 24]


def test_invalid_character_is_an_error():
    with pytest.raises(InputError, match=r"sequence 2: invalid character 'X' at position 3"):
        one_hot_encode(["ACGT", "ACXT"])


def test_unequal_lengths_are_an_error():
    with pytest.raises(InputError, match=r"sequence 3: length 3 differs .* length 4"):
        one_hot_encode(["ACGT", "ACGT", "ACG"])


def test_reverse_complement_of_one_hot_equals_one_hot_of_reverse_complement():
    seqs = _random_seqs(np.random.default_rng(1), 20, 41)
    x = one_hot_encode(seqs)
    expected = one_hot_encode([reverse_complement_str(s) for s in seqs])
    np.testing.assert_array_equal(reverse_complement(x), expected)
    np.testing.assert_array_equal(reverse_complement(reverse_complement(x)), x)
    assert reverse_complement_str("AACgtNRy") == "rYNacGTT"


# --------------------------------------------------------------------------- FASTA

def test_read_fasta_streams_records_keeping_case(write_fasta):
    path = write_fasta([("s1", "ACGTACGTAC"), ("s2 description", "ggccNNaatt")], width=4)
    records = list(read_fasta(path))
    assert records == [(Region("s1", 0, 10, "+", "s1"), "ACGTACGTAC"),
                       (Region("s2", 0, 10, "+", "s2"), "ggccNNaatt")]
    assert chrom_sizes(path) == {"s1": 10, "s2": 10}
    assert list(read_fasta(path, start=1)) == records[1:]
    assert list(read_fasta(path, stop=1)) == records[:1]


def test_bgzip_fasta_is_read(tmp_path):
    from Bio import bgzf

    path = tmp_path / "g.fa.gz"
    with bgzf.BgzfWriter(str(path), "wb") as fh:
        fh.write(b">a\nACGTAC\nGG\n>b\nTTTT\n")
    assert [s for _, s in read_fasta(path)] == ["ACGTACGG", "TTTT"]
    assert [s for _, s in fetch_regions(path, [Region("a", 2, 7)])] == ["GTACG"]


def test_plain_gzip_fasta_asks_for_bgzip(tmp_path):
    path = tmp_path / "plain.fa.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(">a\nACGT\n")
    with pytest.raises(InputError, match=r"plain\.fa\.gz: .*bgzip"):
        list(read_fasta(path))


@pytest.mark.parametrize("text, pattern", [
    ("ACGT\n>a\nACGT\n", r"bad\.fa: malformed FASTA: .*line 1"),
    (">a\nACGT\n>b\n>c\nAC\n", r"bad\.fa record 2 \(b\): header with no sequence"),
    (">a\nACGT\n>b\nAC#T\n", r"bad\.fa record 2 \(b\): invalid character '#' at position 3"),
    ("", r"bad\.fa: empty FASTA file"),
    ("\n\n", r"bad\.fa: empty FASTA file"),
    (">a\nACG\n>a\nACG\n", r"bad\.fa: malformed FASTA: .*[Dd]uplicate"),
    (">a\nACG\nACGTA\nAC\n", r"bad\.fa: malformed FASTA: .*>a at line 3"),
])
def test_malformed_fasta(write_text, text, pattern):
    path = write_text("bad.fa", text)
    with pytest.raises(InputError, match=pattern):
        list(read_fasta(path))


def test_missing_fasta(tmp_path):
    with pytest.raises(InputError, match=r"nope\.fa: no such FASTA file"):
        list(read_fasta(tmp_path / "nope.fa"))


def test_index_that_cannot_be_built(write_fasta):
    # tests run as root, who may write anywhere: a directory in the way of the .fai fails
    # portably where a read-only directory would not
    path = write_fasta([("a", "ACGT")], name="ro.fa")
    os.mkdir(f"{path}.fai")
    with pytest.raises(InputError, match=r"ro\.fa: cannot read or build the FASTA index "
                                         r".*ro\.fa\.fai"):
        list(read_fasta(path))


# --------------------------------------------------------------------------- BED

def test_hand_checked_regions_with_strand_and_lowercase(genome, write_text):
    bed = write_text("r.bed", "track name=x\nbrowser position chr1\n# comment\n\n"
                              "chr1\t4\t10\n"
                              "chr1\t4\t10\tr2\t0\t-\n"
                              "chr2\t2\t6\t.\t0\t.\n"
                              "chr2\t2\t6\tr4\t0\t-\n")
    regions = list(read_bed(bed))
    assert regions == [Region("chr1", 4, 10), Region("chr1", 4, 10, "-", "r2"),
                       Region("chr2", 2, 6), Region("chr2", 2, 6, "-", "r4")]
    seqs = [s for _, s in fetch_regions(genome, regions)]
    assert seqs == ["AACCGG", "CCGGTT", "gtNN", "NNac"]


def test_gzipped_bed(genome, tmp_path):
    bed = tmp_path / "r.bed.gz"
    with gzip.open(bed, "wt") as fh:
        fh.write("chr1\t0\t4\n")
    assert [s for _, s in fetch_regions(genome, read_bed(bed))] == ["ACGT"]


def test_resize_rule():
    # odd-length region [4, 10): centre base 7; odd width centred, even width one extra left
    assert resize(4, 10, 3) == (6, 9)
    assert resize(4, 10, 4) == (5, 9)
    # odd-length region [12, 17): centre base 14
    assert resize(12, 17, 3) == (13, 16)
    assert resize(12, 17, 2) == (13, 15)
    assert resize(0, 10, 4, centre=17) == (15, 19)


@pytest.mark.parametrize("width, expected", [(3, ["CCG", "AAC"]), (4, ["ACCG", "AAAC"]),
                                             (2, ["CC", "AA"])])
def test_resized_regions(genome, write_text, width, expected):
    bed = write_text("r.bed", "chr1\t4\t10\nchr1\t12\t17\n")
    assert [s for _, s in fetch_regions(genome, read_bed(bed, width=width))] == expected


def test_summit_centred_resizing(genome, write_text):
    bed = write_text("p.narrowPeak", "chr1\t10\t20\tp1\t0\t+\t5\t1\t1\t7\n"
                                     "chr1\t10\t20\tp2\t0\t-\t5\t1\t1\t7\n"
                                     "chr1\t10\t20\tp3\t0\t+\t5\t1\t1\t-1\n")
    # summit base 17 (C): width 3 -> [16, 19), width 4 -> [15, 19); -1 = no summit -> centre 15
    regions = list(read_bed(bed, width=4, use_summit=True))
    assert [(r.start, r.end) for r in regions] == [(15, 19), (15, 19), (13, 17)]
    assert [s for _, s in fetch_regions(genome, regions)] == ["CCCG", "CGGG", "AACC"]
    assert [s for _, s in fetch_regions(genome, read_bed(bed, 3, True))][:2] == ["CCG", "CGG"]
    # without use_summit the peak centre (15) is used: [14, 17)
    assert [s for _, s in fetch_regions(genome, read_bed(bed, width=3))][0] == "ACC"


def test_padding_beyond_chromosome_end(genome):
    got = [s for _, s in fetch_regions(genome, [Region("chr1", 30, 36), Region("chr1", -2, 3),
                                                Region("chr1", 40, 43)], pad=True)]
    assert got == ["GANNNN", "NNACG", "NNN"]


@pytest.mark.parametrize("line, pattern", [
    ("chr1\t10\t10", r"r\.bed line 2: end \(10\) <= start \(10\)"),
    ("chr1\t10\t5", r"r\.bed line 2: end \(5\) <= start \(10\)"),
    ("chr1\tten\t20", r"r\.bed line 2: start 'ten' is not an integer"),
    ("chr1\t1\t2.5", r"r\.bed line 2: end '2\.5' is not an integer"),
    ("chr1\t10", r"r\.bed line 2: expected at least 3 columns"),
    ("chr1\t1\t5\tx\t0\t*", r"r\.bed line 2: strand '\*'"),
    ("chr1\t-1\t5", r"r\.bed line 2: start \(-1\) < 0"),
])
def test_bad_bed_lines(write_text, line, pattern):
    bed = write_text("r.bed", "chr1\t0\t4\n" + line + "\n")
    with pytest.raises(InputError, match=pattern):
        list(read_bed(bed))


def test_summit_needs_column_10(write_text):
    bed = write_text("r.bed", "chr1\t0\t4\n")
    with pytest.raises(InputError, match=r"r\.bed line 1: no summit \(column 10\)"):
        list(read_bed(bed, width=2, use_summit=True))


def test_unknown_chromosome_and_outside_region_with_line(genome, write_text):
    sizes = chrom_sizes(genome)
    assert sizes == {"chr1": 32, "chr2": 12}
    bed = write_text("r.bed", "chr1\t0\t4\nchrZ\t0\t4\n")
    with pytest.raises(InputError, match=r"r\.bed line 2: unknown chromosome 'chrZ'"):
        list(read_bed(bed, chrom_sizes=sizes))
    bed = write_text("s.bed", "chr1\t0\t4\nchr1\t0\t4\nchr2\t10\t13\n")
    with pytest.raises(InputError, match=r"s\.bed line 3: region chr2:10-13 outside "
                                         r"chromosome chr2 \(length 12\)"):
        list(read_bed(bed, chrom_sizes=sizes))
    # resizing can push a region over the edge
    bed = write_text("t.bed", "chr1\t0\t4\n")
    with pytest.raises(InputError, match=r"t\.bed line 1: region chr1:-3-7 outside"):
        list(read_bed(bed, width=10, chrom_sizes=sizes))


def test_fetch_errors_name_genome_and_region(genome):
    with pytest.raises(InputError, match=r"genome\.fa region r1: unknown chromosome 'chrZ'"):
        list(fetch_regions(genome, [Region("chrZ", 0, 4, "+", "r1")]))
    with pytest.raises(InputError, match=r"genome\.fa region chr1:30-33\(\+\): region "
                                         r"chr1:30-33 outside chromosome chr1 \(length 32\)"):
        list(fetch_regions(genome, [Region("chr1", 30, 33)]))


def test_empty_bed(write_text):
    with pytest.raises(InputError, match=r"e\.bed: no regions"):
        list(read_bed(write_text("e.bed", "track x\n")))


# --------------------------------------------------------------------------- batching

def test_iter_batches_sizes_and_content(write_fasta):
    seqs = _random_seqs(np.random.default_rng(2), 23, 15)
    path = write_fasta([(f"s{i}", s) for i, s in enumerate(seqs)])
    batches = list(iter_batches(read_fasta(path), 10))
    assert [len(r) for r, _ in batches] == [10, 10, 3]
    assert [x.shape for _, x in batches] == [(10, 15, 4), (10, 15, 4), (3, 15, 4)]
    assert [r.name for rs, _ in batches for r in rs] == [f"s{i}" for i in range(23)]
    np.testing.assert_array_equal(np.concatenate([x for _, x in batches]), one_hot_encode(seqs))


def test_iter_batches_is_lazy():
    endless = ((Region(f"c{i}", 0, 4), "ACGT") for i in itertools.count())
    first_two = list(itertools.islice(iter_batches(endless, 5), 2))
    assert [r[-1].chrom for r, _ in first_two] == ["c4", "c9"]


def test_iter_batches_unequal_length_names_record_and_lengths(write_fasta):
    path = write_fasta([("a", "ACGT"), ("b", "ACGT"), ("c", "ACG")], name="u.fa")
    with pytest.raises(InputError, match=r"u\.fa record 3 \(c\): length 3 differs from "
                                         r"length 4 of the first record \(a\)"):
        list(iter_batches(read_fasta(path), 2, source=str(path)))
