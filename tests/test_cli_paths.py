"""An output that is the same file as an input (same name, hard link, symbolic link) or as
another output is refused before any work: exit 2, one line naming both options, the input's
bytes unchanged (:func:`dnalift.fileio.check_distinct`, :func:`dnalift.cli.paths.files`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyfaidx
import pytest
from click.testing import CliRunner

from dnalift.cli.main import cli
from dnalift.fileio import file_sha256

from test_scoring import MODEL, TEST_FA, _records, write_fasta

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """Real input files: FASTA, genome, BED, model, score/shard HDF5 files, a hit table."""
    write_fasta(tmp_path / "good.fa", _records(TEST_FA, 3))
    write_fasta(tmp_path / "ref.fa", _records(TEST_FA, 3))
    write_fasta(tmp_path / "genome.fa", [("chr1", "ACGT" * 200)])
    (tmp_path / "r.bed").write_text("chr1\t100\t300\ta\n")
    for name in ("m.h5", "m2.h5", "good.h5", "s1.h5", "s2.h5"):
        shutil.copy(MODEL, tmp_path / name)  # HDF5 files (never opened: refused first)
    (tmp_path / "hits.tsv").write_text("sequence\tmotif\tstart\n")
    pyfaidx.Faidx(str(tmp_path / "good.fa")).close()  # good.fa.fai
    return tmp_path


def _score(d: Path, *more: str) -> list[str]:
    return ["score", "--model", str(d / "m.h5"), "--fasta", str(d / "good.fa"), *more]


#: (case, command line with {d} for the directory, output option, the input it names).
CASES = [
    ("fasta as bigwig", _score(Path("{d}"), "--bigwig", "{d}/good.fa"), "--bigwig", "--fasta"),
    ("genome as bigwig", ["score", "--model", "{d}/m.h5", "--bed", "{d}/r.bed", "--genome",
                          "{d}/genome.fa", "--bigwig", "{d}/genome.fa"], "--bigwig", "--genome"),
    ("fasta as output, --force", _score(Path("{d}"), "--output", "{d}/good.fa", "--force"),
     "--output", "--fasta"),
    ("model as output, --force", _score(Path("{d}"), "--output", "{d}/m.h5", "--force"),
     "--output", "--model"),
    ("second model as output", _score(Path("{d}"), "--model", "{d}/m2.h5", "--output",
                                      "{d}/m2.h5"), "--output", "--model"),
    ("reference fasta as output", _score(Path("{d}"), "--reference-fasta", "{d}/ref.fa",
                                         "--output", "{d}/ref.fa"), "--output",
     "--reference-fasta"),
    ("fasta index as output", _score(Path("{d}"), "--output", "{d}/good.fa.fai"), "--output",
     "--fasta index"),
    ("shard as merge output", ["merge", "{d}/s1.h5", "{d}/s2.h5", "--output", "{d}/s1.h5",
                               "--force"], "--output", "SHARDS"),
    ("genome as tile output", ["tile", "--genome", "{d}/genome.fa", "--width", "100",
                               "--output", "{d}/genome.fa"], "--output", "--genome"),
    ("h5 as motifs output", ["motifs", "--h5", "{d}/good.h5", "--output", "{d}/good.h5"],
     "--output", "--h5"),
    ("h5 as plot output", ["plot", "--h5", "{d}/good.h5", "--sequence", "seq1", "--output",
                           "{d}/good.h5"], "--output", "--h5"),
    ("hits as plot output", ["plot", "--hits", "{d}/hits.tsv", "--output", "{d}/hits.tsv"],
     "--output", "--hits"),
    ("h5 as discover view output", ["discover", "view", "--h5", "{d}/good.h5", "--output",
                                    "{d}/good.h5"], "--output", "--h5"),
    ("h5 as discover track output", ["discover", "track", "--h5", "{d}/good.h5", "--hits",
                                     "{d}/hits.tsv", "--region", "seq1", "--output",
                                     "{d}/hits.tsv"], "--output", "--hits"),
    ("h5 as discover modisco output", ["discover", "modisco", "--h5", "{d}/good.h5",
                                       "--output", "{d}/good.h5"], "--output", "--h5"),
    ("modisco file as discover report log", ["discover", "report", "--modisco", "{d}/s1.h5",
                                             "--motifs", "{d}/hits.tsv", "--output",
                                             "{d}/report", "--log", "{d}/s1.h5"],
     "--log", "--modisco"),
    ("motif file as discover name pairs", ["discover", "name", "--modisco", "{d}/s1.h5",
                                           "--motifs", "{d}/hits.tsv", "--output",
                                           "{d}/p.tsv", "--pairs", "{d}/hits.tsv"],
     "--pairs", "--motifs"),
    ("patterns as discover hits output", ["discover", "hits", "--h5", "{d}/good.h5",
                                          "--modisco", "{d}/s1.h5", "--patterns",
                                          "{d}/hits.tsv", "--output", "{d}/hits.tsv"],
     "--output", "--patterns"),
    ("FASTA as simulate output", ["simulate", "--motifs", "{d}/good.fa", "--output", "{d}",
                                  "-n", "10"], "--output", "--motifs"),
]

#: How the output names the input: the same name, a hard link, a symbolic link.
VARIANTS = ("same name", "hard link", "symbolic link")


def _link(target: Path, variant: str) -> Path:
    """A name for ``target`` (itself, a hard link or a symbolic link in a sub-directory)."""
    if variant == "same name":
        return target
    link = target.parent / "links" / target.name
    link.parent.mkdir(exist_ok=True)
    if variant == "hard link":
        os.link(target, link)
    else:
        link.symlink_to(target)
    return link


def _invoke(args: list[str]):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def _refused(res, output_option: str, input_option: str, kind: str = "overwrite an input"):
    lines = res.stderr.strip().splitlines()
    assert res.exit_code == 2, res.output
    assert len(lines) == 1 and lines[0].startswith("dnalift: error: "), res.stderr
    assert lines[0].startswith(f"dnalift: error: {output_option} "), lines[0]
    assert f"is the same file as {input_option} " in lines[0], lines[0]
    assert lines[0].endswith(f"refusing to {kind}"), lines[0]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case, argv, output_option, input_option", CASES,
                         ids=[c[0] for c in CASES])
def test_output_that_is_an_input_is_refused(files, case, argv, output_option, input_option,
                                            variant):
    args = [a.replace("{d}", str(files)) for a in argv]
    victim = Path(args[args.index(output_option) + 1])
    if output_option == "--output" and args[0] == "simulate":
        victim = files / "test.fa"  # a file the simulation writes into --output
        shutil.copy(files / "good.fa", victim)
        args[args.index("--motifs") + 1] = str(_link(victim, variant))
    else:
        args[args.index(output_option) + 1] = str(_link(victim, variant))
    before = {p.name: file_sha256(p) for p in files.iterdir() if p.is_file()}
    res = _invoke(args)
    _refused(res, output_option, input_option)
    assert {p.name: file_sha256(p) for p in files.iterdir() if p.is_file()} == before
    assert not list(files.glob(".*.tmp*"))


def test_two_outputs_in_one_file_are_refused(files, tmp_path):
    same = tmp_path / "same.h5"
    res = _invoke(_score(files, "--output", str(same), "--bigwig", str(same)))
    _refused(res, "--bigwig", "--output", "write two outputs to one file")
    # several --target: one file per head, OUTPUT stem + .profile.h5 / .counts.h5
    res = _invoke(_score(files, "--target", "profile", "--target", "counts", "--output",
                         str(tmp_path / "o.h5"), "--bigwig", str(tmp_path / "o.counts.h5")))
    _refused(res, "--output (counts)", "--bigwig", "write two outputs to one file")
    assert not same.exists() and not (tmp_path / "o.counts.h5").exists()


def test_default_paths_count(files, monkeypatch):
    """The default --output (in the current directory) and the shipped motif file."""
    monkeypatch.chdir(files)
    shutil.copy(files / "m.h5", files / "good.dnalift.h5")
    res = _invoke(["score", "--model", str(files / "good.dnalift.h5"), "--fasta",
                   str(files / "good.fa")])
    _refused(res, "--output (default)", "--model")
    shipped = REPO / "data" / "simulated" / "motifs.meme"
    digest = file_sha256(shipped)
    res = _invoke(["motifs", "--h5", str(files / "good.h5"), "--output", str(shipped)])
    _refused(res, "--output", "--motifs (default)")
    assert file_sha256(shipped) == digest


def test_train_refuses_a_model_file_that_is_a_data_file(files, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(files / "good.fa", data / "train.fa")
    out = tmp_path / "out"
    out.mkdir()
    os.link(data / "train.fa", out / "model.keras")
    res = _invoke(["train", "--data", str(data), "--output", str(out)])
    _refused(res, "--output", "--data")


def test_simulate_keeps_the_motif_file_it_reads(tmp_path):
    """``dnalift simulate --output DIR`` with DIR/motifs.meme as the motifs: the file is
    read, not rewritten (same inode, same bytes); the other files are written."""
    shutil.copy(REPO / "data" / "simulated" / "motifs.meme", tmp_path / "motifs.meme")
    before = os.stat(tmp_path / "motifs.meme")
    res = _invoke(["simulate", "--motifs", str(tmp_path / "motifs.meme"), "--output",
                   str(tmp_path), "-n", "40"])
    assert res.exit_code == 0, res.output
    after = os.stat(tmp_path / "motifs.meme")
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert (tmp_path / "train.fa").read_text().count(">") == 32


def test_refused_before_tensorflow_is_imported(files):
    """The check comes first: the process never imports TensorFlow."""
    code = ("import sys; from dnalift.cli.process import run_cli; "
            "rc = run_cli(sys.argv[1:]); print(rc, 'tensorflow' in sys.modules)")
    args = [str(a) for a in _score(files, "--output", str(files / "m.h5"), "--force")]
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         timeout=120)
    assert res.stdout.split() == ["2", "False"], (res.stdout, res.stderr)
    assert res.stderr.startswith("dnalift: error: --output ") and "--model" in res.stderr
