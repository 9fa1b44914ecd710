"""Tests of dnalift.fileio: atomic writes (one temp-name convention, temp removed on failure)."""

from __future__ import annotations

import os

import pytest

from dnalift import fileio
from dnalift.errors import InputError


def test_atomic_output_and_check_output_path(tmp_path):
    with pytest.raises(ValueError):
        with fileio.atomic_output(tmp_path / "o.txt") as tmp:
            tmp.write_text("half")
            raise ValueError
    assert list(tmp_path.iterdir()) == []
    with fileio.atomic_output(tmp_path / "o.txt") as tmp:
        tmp.write_text("done")
    assert (tmp_path / "o.txt").read_text() == "done"
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InputError, match="not a directory"):
        fileio.check_output_path(blocker / "out.h5")
    # checking creates nothing; the first file written creates the missing directories
    assert fileio.check_output_path(tmp_path / "new" / "deep" / "out.h5").name == "out.h5"
    assert not (tmp_path / "new").exists()
    with fileio.atomic_output(tmp_path / "new" / "deep" / "out.h5") as tmp:
        tmp.write_text("x")
    assert (tmp_path / "new" / "deep" / "out.h5").read_text() == "x"


def test_failed_job_removes_the_directories_it_created(tmp_path):
    """A tracked job that fails: its temporary file and the directories made for it go."""
    registry = fileio.OutputRegistry()
    with fileio.track_outputs(registry):
        made = fileio.make_parents(tmp_path / "a" / "b" / "o.tsv")
        kept = fileio.make_parents(tmp_path / "a" / "b" / "p.tsv")
        with pytest.raises(ValueError):
            with fileio.atomic_output(tmp_path / "a" / "b" / "o.tsv") as tmp:
                tmp.write_text("half")
                raise ValueError
    assert (made, kept) == ([tmp_path / "a", tmp_path / "a" / "b"], [])
    registry.remove_all()
    assert list(tmp_path.iterdir()) == []


def test_messages_show_final_names_not_temporary_ones():
    pid = os.getpid()
    text = (f"[Errno 2] No such file or directory: 'nodir/.h.tsv.{pid}.tmp'; "
            f"/a/.o.h5.12.tmp.h5 and .r.7.tmp.d")
    assert fileio.public_names(text) == ("[Errno 2] No such file or directory: 'nodir/h.tsv'; "
                                         "/a/o.h5 and r")
    assert fileio.public_names("keep .hidden and a.b.12.tmp") == "keep .hidden and a.b.12.tmp"


def test_temp_name_convention(tmp_path):
    pid = os.getpid()
    assert fileio.temp_path(tmp_path / "a.h5").name == f".a.h5.{pid}.tmp"
    assert fileio.temp_path(tmp_path / "m.keras", keep_suffix=True).name == \
        f".m.keras.{pid}.tmp.keras"
    assert fileio.temp_path(tmp_path / "a.h5").parent == tmp_path


def test_write_text_removes_temp_file_when_the_write_raises(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")
    with pytest.raises(UnicodeEncodeError):  # fails inside the write, after the temp exists
        fileio.write_text(target, "ok \u00e9", encoding="ascii")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]
    assert target.read_text() == "old"  # the previous file is untouched
    fileio.write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


def test_open_atomic_streams_and_cleans_up(tmp_path):
    target = tmp_path / "s.bed"
    with pytest.raises(RuntimeError):
        with fileio.open_atomic(target) as handle:
            handle.write("chr1\t0\t10\n")
            assert fileio.temp_path(target).exists()
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with fileio.open_atomic(target) as handle:
        handle.write("chr1\t0\t10\n")
    assert target.read_text() == "chr1\t0\t10\n"


def test_commit_and_discard(tmp_path):
    atomic = fileio.AtomicPath(tmp_path / "x.bin")
    atomic.tmp.write_bytes(b"\x00\x01")
    assert atomic.commit() == tmp_path / "x.bin"
    assert (tmp_path / "x.bin").read_bytes() == b"\x00\x01" and not atomic.tmp.exists()
    other = fileio.AtomicPath(tmp_path / "y.bin")
    other.tmp.write_bytes(b"1")
    other.discard()
    other.discard()  # idempotent
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.bin"]


def test_file_sha256(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert fileio.file_sha256(tmp_path / "f") == \
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_registry_tracks_temps_and_renames_and_removes_everything(tmp_path):
    registry = fileio.OutputRegistry()
    with fileio.track_outputs(registry):
        with fileio.atomic_output(tmp_path / "a.txt") as tmp:
            assert registry.temps == {tmp}
            tmp.write_text("a")
        assert registry.temps == set() and registry.committed == [tmp_path / "a.txt"]
        pending = fileio.AtomicPath(tmp_path / "b.txt")
        pending.tmp.write_text("half")
        with fileio.temp_directory(tmp_path / "b.txt") as scratch:
            assert scratch.name == f".b.txt.{os.getpid()}.tmp.d" and scratch in registry.temps
            (scratch / "x").write_text("x")
            assert registry.remove_all() == [tmp_path / "a.txt"]
            assert not scratch.exists()
    assert list(tmp_path.iterdir()) == []  # committed output, temp file and directory gone
    fileio.write_text(tmp_path / "c.txt", "c")  # untracked outside the block
    assert registry.committed == [] and (tmp_path / "c.txt").read_text() == "c"


def test_remove_stale_temps_only_of_dead_processes(tmp_path):
    import subprocess
    import sys
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "o.h5"
    stale = [tmp_path / f".o.h5.{dead.pid}.tmp", tmp_path / f".o.h5.{dead.pid}.tmp.keras"]
    for p in stale:
        p.write_text("x")
    (tmp_path / f".o.h5.{dead.pid}.tmp.d").mkdir()
    stale.append(tmp_path / f".o.h5.{dead.pid}.tmp.d")
    keep = [tmp_path / f".o.h5.{os.getpid()}.tmp", tmp_path / f".o.h5.{os.getppid()}.tmp",
            tmp_path / f".other.h5.{dead.pid}.tmp", tmp_path / f".o.h5.{dead.pid}.tmpx"]
    for p in keep:
        p.write_text("y")
    assert sorted(fileio.remove_stale_temps(out)) == sorted(stale)
    assert sorted(tmp_path.iterdir()) == sorted(keep)


def test_fault_hook_raises_at_its_point_only(monkeypatch, tmp_path):
    import errno
    from dnalift import faults
    monkeypatch.setenv(faults.ENV, "rename@1:ENOSPC")
    registry = fileio.OutputRegistry()
    with fileio.track_outputs(registry):
        fileio.write_text(tmp_path / "a.txt", "a")  # rename 0: fine
        with pytest.raises(OSError) as info:
            fileio.write_text(tmp_path / "b.txt", "b")
    assert info.value.errno == errno.ENOSPC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]  # no temp file left


def test_file_identity_follows_hard_and_symbolic_links(tmp_path):
    a = tmp_path / "a.fa"
    a.write_text(">s\nACGT\n")
    os.link(a, tmp_path / "hard.fa")
    (tmp_path / "sym.fa").symlink_to(a)
    (tmp_path / "d").mkdir()
    (tmp_path / "up").symlink_to(tmp_path)
    assert fileio.same_file(a, tmp_path / "hard.fa")
    assert fileio.same_file(a, tmp_path / "sym.fa")
    assert fileio.same_file(a, tmp_path / "d" / ".." / "a.fa")
    # a file that does not exist yet: the same path once symbolic links are resolved
    assert fileio.same_file(tmp_path / "new.h5", tmp_path / "up" / "new.h5")
    assert not fileio.same_file(a, tmp_path / "new.h5")
    b = tmp_path / "b.fa"
    b.write_text(a.read_text())  # same bytes, another file
    assert not fileio.same_file(a, b)


def test_check_distinct_names_both_options(tmp_path):
    fa = tmp_path / "in.fa"
    fa.write_text(">s\nACGT\n")
    os.link(fa, tmp_path / "hard.fa")
    fileio.check_distinct({"--fasta": fa, "--model": None}, {"--output": tmp_path / "o.h5",
                                                              "--bigwig": None})
    with pytest.raises(InputError) as err:
        fileio.check_distinct({"--fasta": str(fa)}, {"--bigwig": str(tmp_path / "hard.fa")})
    assert str(err.value) == (f"--bigwig {tmp_path / 'hard.fa'} is the same file as --fasta "
                              f"{fa}; refusing to overwrite an input")
    with pytest.raises(InputError, match=r"^--output .*shard2\.h5 is the same file as "
                                         r"SHARDS .*shard2\.h5; refusing to overwrite"):
        fileio.check_distinct({"SHARDS": (tmp_path / "shard1.h5", tmp_path / "shard2.h5")},
                              {"--output": tmp_path / "shard2.h5"})
    with pytest.raises(InputError, match=r"^--bigwig .*o\.h5 is the same file as --output "
                                         r".*o\.h5; refusing to write two outputs to one file"):
        fileio.check_distinct({}, {"--output": tmp_path / "o.h5",
                                   "--bigwig": tmp_path / "." / "o.h5"})
    assert fa.read_text() == ">s\nACGT\n"
