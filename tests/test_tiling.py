"""Tests of genome tiling (dnalift.tiling and ``dnalift tile``)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from dnalift import tiling
from dnalift.cli.main import cli
from dnalift.errors import InputError

#   chr1  ACGTACGTACG   11 bp, clean
#   chr2  NNNNACGTNA    10 bp, N run at the start, one N at 8
#   chr3  ACG            3 bp, shorter than any width used here
#   chrUn_x acgtRYacgt  10 bp, soft-masked, two IUPAC codes at 4-5
GENOME = {
    "chr1": "ACGTACGTACG",
    "chr2": "NNNNACGTNA",
    "chr3": "ACG",
    "chrUn_x": "acgtRYacgt",
}


@pytest.fixture()
def genome(tmp_path):
    path = tmp_path / "genome.fa"
    path.write_text("".join(f">{name}\n{seq}\n" for name, seq in GENOME.items()))
    return path


def _starts(tiles):
    return {t.chrom: t.starts.tolist() for t in tiles}


def test_window_starts_edges():
    # last window [6, 10) ends exactly at the end: kept
    assert tiling.window_starts(10, 4, 3).tolist() == [0, 3, 6]
    # [9, 13) would run past 11: dropped; cover_end adds [7, 11)
    assert tiling.window_starts(11, 4, 3).tolist() == [0, 3, 6]
    assert tiling.window_starts(11, 4, 3, cover_end=True).tolist() == [0, 3, 6, 7]
    # cover_end adds nothing when the tail is already covered
    assert tiling.window_starts(10, 4, 3, cover_end=True).tolist() == [0, 3, 6]
    # step > width leaves gaps; a sequence exactly one window long; shorter than a window
    assert tiling.window_starts(12, 2, 5).tolist() == [0, 5, 10]
    assert tiling.window_starts(4, 4, 1).tolist() == [0]
    assert tiling.window_starts(3, 4, 1, cover_end=True).tolist() == []


def test_n_fractions_by_hand():
    mask = tiling.ambiguous_mask("NNNNACGTNA")
    assert mask.tolist() == [True] * 4 + [False] * 4 + [True, False]
    # windows NNNN, NNAC, ACGT, GTNA
    assert tiling.n_fractions(mask, np.array([0, 2, 4, 6]), 4).tolist() == [1.0, 0.5, 0.0, 0.25]
    # soft-masked bases are bases; IUPAC codes count as N
    assert tiling.ambiguous_mask("acgtRYn.").tolist() == [False] * 4 + [True] * 4


@pytest.mark.parametrize("max_n, chr2", [
    (0.0, [4]),
    (0.25, [4, 6]),
    (0.5, [2, 4, 6]),
    (1.0, [2, 4, 6]),  # the all-N window [0, 4) is dropped whatever the threshold
])
def test_n_rich_filter(genome, max_n, chr2):
    tiles = list(tiling.tile_genome(genome, 4, 2, include="^chr2$", max_n_fraction=max_n))
    assert _starts(tiles) == {"chr2": chr2}
    assert tiles[0].n_candidates == 4


def test_tile_genome_overlapping_windows_and_selection(genome):
    tiles = list(tiling.tile_genome(genome, 4, 3, max_n_fraction=0.25))
    # chr2: NNNN (1.0) NACG (.25) GTNA (.25); chrUn_x: acgt (0) tRYa (.5) acgt (0)
    assert _starts(tiles) == {"chr1": [0, 3, 6], "chr2": [3, 6], "chr3": [], "chrUn_x": [0, 6]}
    tiles = list(tiling.tile_genome(genome, 4, 3, exclude="_|^chr3$", cover_end=True))
    assert _starts(tiles) == {"chr1": [0, 3, 6, 7], "chr2": [3, 6]}
    assert [t.chrom for t in tiling.tile_genome(genome, 4, 3, include="chr[12]$")] == \
        ["chr1", "chr2"]


def test_regions_and_bed_text(genome, tmp_path):
    out = tmp_path / "sub" / "tiles.bed"
    summary = tiling.write_bed(tiling.tile_genome(genome, 4, 3, include="^chr[12]$"), out)
    assert out.read_text() == (
        "chr1\t0\t4\tchr1:0-4\nchr1\t3\t7\tchr1:3-7\nchr1\t6\t10\tchr1:6-10\n"
        "chr2\t3\t7\tchr2:3-7\nchr2\t6\t10\tchr2:6-10\n")
    assert summary == tiling.TilingSummary(n_windows=5, n_chromosomes=2, n_dropped=1)
    region = next(tiling.tile_genome(genome, 4, 3)).regions().__next__()
    assert (region.chrom, region.start, region.end, region.strand, region.name) == \
        ("chr1", 0, 4, "+", "chr1:0-4")


def test_chunked_reading_matches_brute_force():
    rng = np.random.default_rng(0)
    seq = np.array(list("ACGTN"))[rng.choice(5, 5000, p=[.2, .2, .2, .2, .2])]
    seq[1000:1600] = "N"
    seq = "".join(seq)
    width, step, max_n = 50, 7, 0.2
    expected = [s for s in range(0, len(seq) - width + 1, step)
                if seq[s:s + width].count("N") / width <= max_n]

    def fetch(chrom, start, end):
        return seq[start:end]

    for chunk in (1, 64, 999, 1 << 20):
        tiles = tiling.tile_chromosome("c", len(seq), fetch, width, step,
                                       max_n_fraction=max_n, chunk=chunk)
        assert tiles.starts.tolist() == expected


def test_cli_tile(genome, tmp_path):
    out = tmp_path / "tiles.bed"
    res = CliRunner().invoke(cli, ["tile", "--genome", str(genome), "--width", "4",
                                   "--exclude", "_", "--output", str(out)])
    assert res.exit_code == 0, res.output
    # step defaults to width: chr1 [0,4) [4,8) (8,12 runs past 11); chr2 [4,8) (8-10 short)
    assert out.read_text() == "chr1\t0\t4\tchr1:0-4\nchr1\t4\t8\tchr1:4-8\nchr2\t4\t8\tchr2:4-8\n"
    assert "3 windows on 3 chromosomes" in res.output


@pytest.mark.parametrize("args, message", [
    (["--width", "4", "--include", "chr(", "--output", "x.bed"],
     "--include 'chr(': not a regular expression"),
    (["--width", "0", "--output", "x.bed"], "Invalid value for '--width': 0 is not in the range"),
    (["--width", "4", "--step", "0", "--output", "x.bed"],
     "Invalid value for '--step': 0 is not in the range"),
    (["--width", "4", "--max-n-fraction", "1.5", "--output", "x.bed"],
     "Invalid value for '--max-n-fraction': 1.5 is not in the range 0<=x<=1"),
    (["--width", "4", "--include", "chrZ", "--output", "x.bed"], "no chromosome matches"),
    (["--width", "100", "--output", "x.bed"], "no window passes the filters"),
])
def test_cli_tile_errors_leave_no_output(genome, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["tile", "--genome", str(genome), *args])
    assert res.exit_code == 2
    assert message in res.output and res.output.startswith("dnalift: error: ")
    assert list(tmp_path.glob("x.bed*")) == []


def test_missing_genome_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such genome FASTA"):
        list(tiling.tile_genome(tmp_path / "none.fa", 4, 4))
