"""Tests of dnalift.bigwig: the overlap rule and bigWig values (minus strand flipped)."""

from __future__ import annotations

import numpy as np
import pyBigWig
import pytest

from dnalift import bigwig
from dnalift.errors import InputError
from dnalift.sequences import Region as Reg


def test_owned_segments_nearest_centre_and_ties():
    # centres 5 and 11: base 7 (midpoint 7.5) is nearer 5, base 8 (8.5) nearer 11
    seg = bigwig.owned_segments(np.array([0, 6]), np.array([10, 16]), np.array([0, 1]))
    assert seg == [(0, 8, 0), (8, 16, 1)]
    # centres 5 and 6: base 5 (5.5) is a tie -> earlier input row wins, whatever the start
    seg = bigwig.owned_segments(np.array([0, 1]), np.array([10, 11]), np.array([1, 0]))
    assert seg == [(0, 5, 1), (5, 11, 0)]
    seg = bigwig.owned_segments(np.array([0, 1]), np.array([10, 11]), np.array([0, 1]))
    assert seg == [(0, 6, 0), (6, 11, 1)]
    # nested regions with the same centre: the earlier (inner) one wins the tie
    seg = bigwig.owned_segments(np.array([0, 40]), np.array([100, 60]), np.array([1, 0]))
    assert seg == [(0, 40, 1), (40, 60, 0), (60, 100, 1)]
    # gaps stay uncovered; a tiny window gives the same bases per row
    starts, ends = np.array([0, 3, 20, 25]), np.array([8, 11, 30, 28])
    big = bigwig.owned_segments(starts, ends, np.arange(4))
    small = bigwig.owned_segments(starts, ends, np.arange(4), window=3)

    def per_base(segs):
        return {p: r for a, b, r in segs for p in range(a, b)}
    assert per_base(big) == per_base(small)
    assert sorted(per_base(big)) == list(range(0, 11)) + list(range(20, 30))
    assert all(b <= a2 for (_, b, _), (a2, _, _) in zip(big, big[1:]))


def test_bigwig_values_minus_strand_and_overlap(tmp_path):
    regions = [Reg("chr2", 0, 10, "+"), Reg("chr1", 4, 14, "-"), Reg("chr1", 0, 10, "+")]
    actual = np.arange(30, dtype=np.float32).reshape(3, 10)
    path = bigwig.write_bigwig(tmp_path / "t.bw", regions, actual, {"chr1": 20, "chr2": 12})
    bw = pyBigWig.open(str(path))
    assert bw.chroms() == {"chr1": 20, "chr2": 12}
    np.testing.assert_array_equal(bw.values("chr2", 0, 10), actual[0])
    # chr1: centres 9 (row 1, minus) and 5 (row 2): base 6 (6.5) -> row 2, base 7 (7.5) -> tie
    # -> row 1 (earlier); row 1 is flipped: genome base 4 + j holds actual[1][9 - j]
    got = np.array(bw.values("chr1", 0, 14))
    want = np.concatenate([actual[2][0:7], actual[1][::-1][7 - 4:14 - 4]])
    np.testing.assert_array_equal(got, want)
    assert np.isnan(bw.values("chr1", 14, 15)[0])
    bw.close()


def test_bigwig_rejects_unknown_chromosome(tmp_path):
    with pytest.raises(InputError, match="chrX"):
        bigwig.write_bigwig(tmp_path / "t.bw", [Reg("chrX", 0, 4)], np.zeros((1, 4)), {"chr1": 9})
    assert list(tmp_path.iterdir()) == []
