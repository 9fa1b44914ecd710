"""Property-style bad-input suite: every option of every command, one bad value at a time.

The cases come from one table (:data:`COMMANDS`: a valid command line per command, the
content cases of its file options, bad strings, and the output options that may not name
another argument) and from the option types themselves (:mod:`dnalift.cli.options`): every
``InputFile`` option gets a missing file, an empty file, a directory and a device; every
``OutputFile``/``OutputDir`` an existing directory/file and a parent that is a file; every
``Int``/``Float`` (and tuple of them) values below and above its range, a huge value, NaN,
infinity and text. For each case the suite asserts: exit status 2, exactly one line on
stderr, ``dnalift: error: ...`` without a traceback, naming the option and/or the file; no
input file changed (hashed before and after), no file created anywhere under the test's
directories, and nothing new in ``$TMPDIR``.

Most cases run in-process through click's ``CliRunner`` (the same ``_Group`` error handling
as the console script); :func:`test_process_level` runs a few through the real ``dnalift``
process. Cases whose id contains ``same_path`` expect the refusal of an output path that is
the same file as another argument (branch ``paths``).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dnalift.cli.main import cli
from dnalift.cli.options import Float, InputDir, InputFile, Int, OutputDir, OutputFile

from test_scoring import MODEL, TEST_FA, _records, write_fasta

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REPO = Path(__file__).resolve().parents[1]
MEME = REPO / "data" / "simulated" / "motifs.meme"
HUGE_INT = str(2**64)


# --------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Command:
    """One command of the table.

    Attributes
    ----------
    base : tuple of str
        A valid command line (after the command words); ``{name}`` is a fixture file
        (:func:`files`), ``{out}`` the case's fresh output directory.
    content : dict
        File option -> content cases (``binary``, ``truncated``, ``header``) tested for it.
    context : dict
        Option -> (options to drop from ``base``, arguments to add) that make the option
        meaningful (e.g. ``--bed`` needs ``--genome`` instead of ``--fasta``).
    strings : dict
        Option -> ((bad value, text the error must contain), ...).
    same_path : tuple
        (output option, other option) pairs: the output given the other's path.
    """

    base: tuple[str, ...]
    content: dict[str, tuple[str, ...]] = field(default_factory=dict)
    context: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)
    strings: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    same_path: tuple[tuple[str, str], ...] = ()


_BED = (("--fasta",), ("--genome", "{genome}"))
COMMANDS: dict[str, Command] = {
    "score": Command(
        base=("--model", "{model}", "--fasta", "{fasta}", "--output", "{out}/s.h5",
              "--shuffles", "2", "-q"),
        content={"--model": ("binary", "truncated"), "--fasta": ("binary", "truncated"),
                 "--bed": ("binary",), "--genome": ("binary",),
                 "--reference-fasta": ("binary", "truncated"),
                 "--task-names": ("empty_names", "duplicate_names")},
        context={"--bed": _BED, "--genome": (("--fasta",), ("--bed", "{bed}")),
                 "--width": (("--fasta",), ("--bed", "{bed}", "--genome", "{genome}")),
                 "--reference-fasta": (("--shuffles",), ("--reference", "fasta")),
                 "--freqs": (("--shuffles",), ())},
        strings={"--freqs": (("a,c,g,t", "--freqs 'a,c,g,t'"), ("0.5,-0.1,0.3,0.3", "--freqs"),
                             ("0.25,0.25,0.25", "--freqs"), ("nan,0.25,0.25,0.5", "--freqs"),
                             ("0.4,0.4,0.4,0.4", "--freqs")),
                 "--shard": (("0/3", "--shard"), ("2/1", "--shard"), ("1/0", "--shard"),
                             ("x", "--shard"), ("-1/3", "--shard")),
                 "--task-names": (("a,b,a", "--task-names"), (",", "--task-names")),
                 "--target": (("profile", "--target profile"), ("counts", "--target counts")),
                 "--task": (("7", "7"), ("nope", "nope"))},
        same_path=(("--output", "--fasta"), ("--output", "--model"), ("--bigwig", "--output"),
                   ("--bigwig", "--fasta"))),
    "merge": Command(
        base=("{h5}", "--output", "{out}/m.h5"),
        content={"SHARDS": ("binary", "truncated")},
        same_path=(("--output", "SHARDS"), ("--bigwig", "--output"))),
    "simulate": Command(
        base=("--output", "{out}/sim", "-n", "8", "--length", "100"),
        content={"--motifs": ("binary",)},
        strings={"--splits": (("0.5 0.5 0.5", "--splits"),)}),
    "train": Command(base=("--data", "{simdir}", "--output", "{out}/train", "--epochs", "1")),
    "motifs": Command(
        base=("--h5", "{h5}", "--output", "{out}/hits.tsv"),
        content={"--h5": ("binary", "truncated"), "--motifs": ("binary",),
                 "--embedded": ("binary",), "--model": ("binary", "truncated")},
        context={"--model": (("--h5",), ("--fasta", "{fasta}", "--method", "rescale")),
                 "--fasta": (("--h5",), ("--model", "{model}", "--method", "rescale")),
                 "-k": ((), ("--reference", "shuffle")), "--seed": ((), ("--reference", "shuffle")),
                 "--summary": ((), ("--embedded", "{embedded}"))},
        strings={"--background": (("a,c,g,t", "--background"), ("0,0.5,0.25,0.25", "--background"),
                                  ("0.5,0.5", "--background"))},
        same_path=(("--output", "--h5"), ("--summary", "--output"), ("--figure", "--output"))),
    "plot": Command(
        base=("--hits", "{hits}", "--output", "{out}/p.png"),
        content={"--hits": ("binary", "header"), "--h5": ("binary", "truncated"),
                 "--embedded": ("binary",)},
        context={"--h5": (("--hits",), ("--sequence", "{seq}")),
                 "--start": (("--hits",), ("--h5", "{h5}", "--sequence", "{seq}")),
                 "--end": (("--hits",), ("--h5", "{h5}", "--sequence", "{seq}")),
                 "--embedded": (("--hits",), ("--h5", "{h5}", "--sequence", "{seq}")),
                 "--sequence": (("--hits",), ("--h5", "{h5}"))},
        strings={"--sequence": (("nope", "nope"),)},
        # (the logo options with --hits are refused: --sequence needs the --h5 context)
        same_path=(("--output", "--hits"),)),
    "tile": Command(
        base=("--genome", "{genome}", "--width", "50", "--output", "{out}/t.bed"),
        content={"--genome": ("binary",)},
        strings={"--include": (("chr(", "--include"),), "--exclude": (("(", "--exclude"),)},
        same_path=(("--output", "--genome"),)),
    "discover view": Command(base=("--h5", "{h5}", "--output", "{out}/v.h5"),
                             content={"--h5": ("binary", "truncated")},
                             strings={"--task": (("nope", "nope"),)},
                             same_path=(("--output", "--h5"),)),
    "discover modisco": Command(base=("--h5", "{h5}", "--output", "{out}/mo.h5")),
    "discover report": Command(base=("--modisco", "{h5}", "--motifs", "{meme}",
                                     "--output", "{out}/report")),
    "discover name": Command(base=("--modisco", "{h5}", "--motifs", "{meme}",
                                   "--output", "{out}/n.tsv"),
                             content={"--motifs": ("binary",)}),
    "discover hits": Command(base=("--h5", "{h5}", "--modisco", "{h5}",
                                   "--output", "{out}/h.bed")),
    "discover track": Command(base=("--h5", "{h5}", "--hits", "{hitsbed}", "--region", "{seq}",
                                    "--output", "{out}/tr.png"),
                              content={"--h5": ("binary", "truncated")}),
}


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Valid inputs of every command (a score file and a hit table made by dnalift)."""
    d = tmp_path_factory.mktemp("inputs")
    records = _records(TEST_FA, 4)
    fasta = write_fasta(d / "seqs.fa", records)
    genome = write_fasta(d / "genome.fa", [("chr1", "".join(s for _, s in records))])
    for fa in (fasta, genome):
        import pyfaidx
        pyfaidx.Faidx(str(fa)).close()  # the indexes exist before any case
    (d / "regions.bed").write_text("chr1\t0\t200\tr1\nchr1\t300\t500\tr2\n")
    (d / "embedded.tsv").write_text("name\tstart\tend\tmotif\tstrand\tsequence\n"
                                    f"{records[0][0]}\t70\t80\tGATA_disc1\t+\tGGAGATAAGG\n")
    (d / "hits.bed").write_text(f"{records[0][0]}\t70\t80\tGATA\t1\t+\n")
    simdir = d / "sim"
    simdir.mkdir()
    runner = CliRunner()
    res = runner.invoke(cli, ["score", "--model", str(MODEL), "--fasta", str(fasta), "--output",
                              str(d / "scores.h5"), "--shuffles", "2", "-q"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["motifs", "--h5", str(d / "scores.h5"), "--output",
                              str(d / "hits.tsv"), "--pvalue", "0.01"])
    assert res.exit_code == 0, res.output
    return {"model": MODEL, "fasta": fasta, "genome": genome, "bed": d / "regions.bed",
            "h5": d / "scores.h5", "hits": d / "hits.tsv", "meme": MEME,
            "embedded": d / "embedded.tsv", "hitsbed": d / "hits.bed", "simdir": simdir,
            "seq": records[0][0]}


# --------------------------------------------------------------------------- the cases
@dataclass(frozen=True)
class Case:
    """One bad command line: command words, the bad option, how it is made bad, and the
    texts its error line must contain."""

    command: str
    option: str
    kind: str
    value: tuple[str, ...] = ()
    needles: tuple[str, ...] = ()
    extra: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())

    @property
    def id(self) -> str:
        return f"{self.command.replace(' ', '-')}:{self.option}:{self.kind}"


def _command(words: str) -> click.Command:
    cmd = cli
    for word in words.split():
        cmd = cmd.commands[word]
    return cmd


def _flag(param: click.Parameter) -> str:
    """The longest name of an option (the one click's messages quote last), or an argument's
    metavar-like name."""
    if isinstance(param, click.Argument):
        return param.name.upper()
    return max(param.opts, key=len)


def _number_values(t: click.ParamType) -> list[tuple[str, str]]:
    """(kind, value) pairs that the Int/Float type ``t`` refuses: zero, negative, just below
    and just above its range, huge, NaN, infinite, fractional (integers) and not a number."""
    lo = hi = None
    if t.min is not None:
        lo = t.min - (0 if t.min_open else 1 if isinstance(t, Int) else 0.5)
    if t.max is not None and t.max < 2**63 - 1:
        hi = t.max + (0 if t.max_open else 1 if isinstance(t, Int) else 0.5)
    candidates = [("zero", "0"), ("negative", "-1"), ("below", lo), ("above", hi),
                  ("huge", HUGE_INT if isinstance(t, Int) else "1e400"), ("nan", "nan"),
                  ("inf", "-inf"), ("fraction", "1.5"), ("text", "abc")]
    out = []
    for kind, value in candidates:
        if value is None or any(v == str(value) for _, v in out):
            continue
        try:
            t.convert(str(value), None, None)
        except click.BadParameter:
            out.append((kind, str(value)))
    return out


def _cases_of(words: str, spec: Command) -> list[Case]:
    cases: list[Case] = []
    for param in _command(words).params:
        flag = _flag(param)
        t = param.type
        extra = spec.context.get(flag, ((), ()))
        types = t.types if isinstance(t, click.Tuple) else [t]
        if isinstance(t, InputFile):
            for kind in ("missing", "empty", "directory", "device"):
                cases.append(Case(words, flag, kind, extra=extra))
        elif isinstance(t, InputDir):
            cases += [Case(words, flag, "missing", extra=extra),
                      Case(words, flag, "file", extra=extra)]
        elif isinstance(t, (OutputFile, OutputDir)):
            cases += [Case(words, flag, "exists_other_kind", extra=extra),
                      Case(words, flag, "parent_is_file", extra=extra)]
        elif isinstance(types[0], (Int, Float)):
            for kind, value in _number_values(types[0]):
                values = (value,) + ("0.1",) * (len(types) - 1)
                cases.append(Case(words, flag, kind, values, (flag,), extra))
        elif isinstance(t, click.Choice):
            cases.append(Case(words, flag, "choice", ("bogus",), (flag,), extra))
        for kind in spec.content.get(flag, ()):
            cases.append(Case(words, flag, kind, extra=extra))
        for i, (value, needle) in enumerate(spec.strings.get(flag, ())):
            cases.append(Case(words, flag, f"string{i}", tuple(value.split(" ")), (needle,),
                              extra))
        for out_flag, other in spec.same_path:
            if out_flag == flag:
                needles = tuple(f for f in (out_flag, other) if f.startswith("-"))
                cases.append(Case(words, flag, f"same_path_as_{other}", (other,), needles,
                                  spec.context.get(other, extra)))
    return cases


CASES = [c for words, spec in COMMANDS.items() for c in _cases_of(words, spec)]


# --------------------------------------------------------------------------- running a case
def _tree(*dirs: Path) -> dict[Path, str]:
    """SHA-256 of every file under ``dirs`` (directories are walked)."""
    out = {}
    for d in dirs:
        paths = [d] if d.is_file() else [p for p in d.rglob("*") if p.is_file()]
        for p in paths:
            if p.suffix != ".fai":  # FASTA indexes are built when missing (not outputs)
                out[p] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _argv(case: Case, files: dict[str, Path], out: Path, bad: Path) -> list[str]:
    """The case's command line: the valid base, its context, then the bad value."""
    spec = COMMANDS[case.command]
    names = {k: str(v) for k, v in files.items()} | {"out": str(out)}
    drop, add = case.extra
    base = [a.format(**names) for a in spec.base]
    for opt in drop:
        i = base.index(opt)
        del base[i:i + 2]
    base += [a.format(**names) for a in add]
    value = _bad_value(case, files, base, bad)
    if case.option.isupper():  # the positional argument (merge SHARDS) comes first
        return case.command.split() + value + base[1:]
    if case.option in base:
        i = base.index(case.option)
        del base[i:i + 1 + len(value)]
    return case.command.split() + base + [case.option] + value


def _bad_value(case: Case, files: dict[str, Path], base: list[str], bad: Path) -> list[str]:
    """The bad value(s) of the case; files it needs are written under ``bad``."""
    if case.value and not case.kind.startswith("same_path"):
        return list(case.value)
    good = _good_file(case, files)
    kind = case.kind
    if kind.startswith("same_path"):
        other = case.value[0]
        src = Path(base[0] if other.isupper() else base[base.index(other) + 1])
        if not src.exists():  # another output: the very same path
            return [str(src)]
        copy = bad / src.name
        shutil.copyfile(src, copy)  # an input: a copy, never risk the shared fixture
        if other.isupper():
            base[0] = str(copy)
        else:
            base[base.index(other) + 1] = str(copy)
        return [str(copy)]
    path = bad / f"{kind}{good.suffix if good else ''}"
    if kind == "missing":
        path = bad / "missing" / f"none{good.suffix if good else ''}"
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "directory":
        path = bad / "a_directory"
        path.mkdir()
    elif kind == "exists_other_kind":  # a directory for a file output, and vice versa
        path = bad / "existing"
        if isinstance(_param(case).type, OutputDir):
            path.write_text("a file where a directory is expected\n")
        else:
            path.mkdir()
    elif kind == "file":
        path = bad / "a_file"
        path.write_text("not a directory\n")
    elif kind == "device":
        path = Path(os.devnull)
    elif kind == "parent_is_file":
        (bad / "blocker").write_text("")
        path = bad / "blocker" / "o.out"
    elif kind == "binary":
        path.write_bytes(bytes(range(256))[::-1] * 64)
    elif kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2 - 7])
    elif kind == "header":
        path.write_text(good.read_text().splitlines()[0] + "\n")
    elif kind == "empty_names":
        path = bad / "names.txt"
        path.write_text("\n\n")
    elif kind == "duplicate_names":
        path = bad / "names.txt"
        path.write_text("both\ngata\nboth\n")
    else:  # pragma: no cover
        raise AssertionError(kind)
    return [str(path)]


def _param(case: Case) -> click.Parameter:
    return next(p for p in _command(case.command).params if _flag(p) == case.option)


_GOOD = {"--model": "model", "--fasta": "fasta", "--genome": "genome", "--bed": "bed",
         "--h5": "h5", "SHARDS": "h5", "--hits": "hits", "--motifs": "meme",
         "--embedded": "embedded", "--reference-fasta": "fasta", "--modisco": "h5",
         "--patterns": "hits", "--task-names": "embedded"}


def _good_file(case: Case, files: dict[str, Path]) -> Path | None:
    """A valid file of the option's kind (its suffix, and the source of truncated copies)."""
    key = _GOOD.get(case.option)
    if case.command == "discover track" and case.option == "--hits":
        key = "hitsbed"
    return files[key] if key else None


def _needles(case: Case, argv: list[str]) -> tuple[str, ...]:
    """What the error line must contain: the option for click-level failures, the file
    for a file whose content is bad."""
    if case.needles:
        return case.needles
    value = argv[argv.index(case.option) + 1] if case.option in argv else None
    if case.option.isupper():
        value = argv[len(case.command.split())]
    if case.kind in ("binary", "truncated", "header", "empty_names", "duplicate_names"):
        return (value,)
    return (case.option, value) if not case.option.isupper() else (value,)


def check_one_line_error(code: int, stderr: str, needles: tuple[str, ...], want: int = 2) -> str:
    """Assert a failed run's status and its one ``dnalift: error:`` line; return the line."""
    lines = stderr.strip().splitlines()
    assert code == want, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("dnalift: error: ") and "Traceback" not in stderr, stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, files, tmp_path, monkeypatch):
    out, bad, tmpdir = tmp_path / "out", tmp_path / "bad", tmp_path / "tmpdir"
    for d in (out, bad, tmpdir):
        d.mkdir()
    argv = _argv(case, files, out, bad)
    inputs = _tree(files["h5"].parent, MODEL, MEME, bad)
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    monkeypatch.chdir(out)
    res = CliRunner().invoke(cli, argv)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        import traceback
        pytest.fail("".join(traceback.format_exception(res.exception)))
    check_one_line_error(res.exit_code, res.stderr, _needles(case, argv))
    assert _tree(files["h5"].parent, MODEL, MEME, bad) == inputs
    assert list(out.rglob("*")) == []
    assert list(tmpdir.iterdir()) == []


def test_every_option_is_in_the_table():
    """Every numeric and file option of every command has a checked type (so a case here)."""
    def walk(cmd: click.Command, words: str):
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                yield from walk(sub, f"{words} {name}".strip())
        else:
            yield words, cmd
    covered = {(c.command, c.option) for c in CASES}
    for words, cmd in walk(cli, ""):
        assert words in COMMANDS, words
        for p in cmd.params:
            t = p.type.types[0] if isinstance(p.type, click.Tuple) else p.type
            assert not isinstance(t, click.Path) or isinstance(
                t, (InputFile, InputDir, OutputFile, OutputDir)), (words, p.name)
            assert t not in (click.INT, click.FLOAT), (words, p.name)
            if isinstance(t, (click.Path, Int, Float, click.Choice)):
                assert (words, _flag(p)) in covered, (words, p.name)
    assert len(CASES) >= 300


# --------------------------------------------------------------------------- whole processes
def _dnalift() -> str:
    exe = Path(sys.executable).parent / "dnalift"
    return str(exe) if exe.exists() else shutil.which("dnalift")


PROCESS_CASES = {
    "seed_2^64": (["score", "--model", "{model}", "--fasta", "{fasta}", "--seed", HUGE_INT,
                   "--output", "{out}/s.h5"], ("'--seed'", HUGE_INT)),
    "pvalue_0": (["motifs", "--h5", "{h5}", "--pvalue", "0", "--output", "{out}/h.tsv"],
                 ("'--pvalue'", "0<x<=1")),
    "pseudocount_-1": (["motifs", "--h5", "{h5}", "--pseudocount", "-1", "--output",
                        "{out}/h.tsv"], ("'--pseudocount'",)),
    "fasta_stdin": (["score", "--model", "{model}", "--fasta", "/dev/stdin", "--output",
                     "{out}/s.h5"], ("'--fasta'", "/dev/stdin", "regular", "write it to a file")),
    "empty_hits": (["plot", "--hits", "{empty}", "--output", "{out}/p.png"], ("'--hits'",)),
    "tile_step_0": (["tile", "--genome", "{genome}", "--width", "10", "--step", "0",
                     "--output", "{out}/t.bed"], ("'--step'",)),
    "target_profile": (["score", "--model", "{model}", "--fasta", "{fasta}", "--target",
                        "profile", "--shuffles", "2", "-q", "--output", "{out}/s.h5"],
                       ("--target profile", "targets that fit it: logit")),
}


@pytest.mark.parametrize("name", sorted(PROCESS_CASES))
def test_process_level(name, files, tmp_path):
    """The console script: status 2, one stderr line, no output, nothing in $TMPDIR."""
    out, tmpdir = tmp_path / "out", tmp_path / "tmpdir"
    out.mkdir()
    tmpdir.mkdir()
    (tmp_path / "empty.tsv").write_bytes(b"")
    names = {k: str(v) for k, v in files.items()} | {"out": str(out),
                                                     "empty": str(tmp_path / "empty.tsv")}
    args, needles = PROCESS_CASES[name]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's
    env.update(TMPDIR=str(tmpdir), CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([_dnalift()] + [a.format(**names) for a in args], input=b">x\nACGT\n",
                          capture_output=True, env=env, cwd=out, timeout=300)
    check_one_line_error(proc.returncode, proc.stderr.decode(), needles)
    assert proc.stdout == b""
    assert list(out.iterdir()) == []
    assert list(tmpdir.iterdir()) == [], "left in TMPDIR"


# --------------------------------------------------------------------------- issue 19 fixes
def _run(*args) -> tuple[int, str]:
    res = CliRunner().invoke(cli, [str(a) for a in args])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.stderr


def test_usage_errors_are_one_line_naming_command_and_option():
    code, err = _run("motifs", "--pvalue", "0", "--output", "x.tsv")
    assert code == 2
    assert err == ("dnalift: error: motifs: Invalid value for '--pvalue': 0.0 is not in the "
                   "range 0<x<=1 (see 'dnalift motifs --help')\n")
    code, err = _run("discover", "hits", "--lambda", "nan")
    assert code == 2 and err == ("dnalift: error: discover hits: Invalid value for '--lambda': "
                                 "'nan' is not a finite number (see 'dnalift discover hits "
                                 "--help')\n")
    code, err = _run("tile", "--width", "10")
    assert code == 2 and err.startswith("dnalift: error: tile: Missing option '--genome'")
    code, err = _run("nosuch")
    assert code == 2 and err == "dnalift: error: No such command 'nosuch' (see 'dnalift --help')\n"


@pytest.mark.parametrize("args, shown", [
    (("--pvalue", "0"), "0.0 is not in the range 0<x<=1"),
    (("--pvalue", "1.5"), "1.5 is not in the range 0<x<=1"),
    (("--pvalue", "-0.1"), "-0.1 is not in the range 0<x<=1"),
    (("--pseudocount", "-1"), "-1.0 is not in the range x>0"),
    (("--pseudocount", "0"), "0.0 is not in the range x>0"),
])
def test_motifs_thresholds_are_range_checked(args, shown):
    code, err = _run("motifs", *args, "--output", "x.tsv")
    assert code == 2 and f"Invalid value for '{args[0]}': {shown}" in err
    # the library refuses them too (a pseudocount of 0 used to crash the p-value grid)
    from dnalift import pwm
    value = float(args[1])
    with pytest.raises(pwm.InputError, match=args[0].lstrip("-")):
        pwm.check_thresholds(value if args[0] == "--pseudocount" else 0.1,
                             value if args[0] == "--pvalue" else 1e-3)


def test_help_shows_the_ranges():
    assert "0<x<=1" in CliRunner().invoke(cli, ["motifs", "--help"]).output
    assert "0<=x<=2^63-1" in CliRunner().invoke(cli, ["score", "--help"]).output
    assert "0<=x<=2^32-1" in CliRunner().invoke(cli, ["train", "--help"]).output


def test_float_rejects_nan_and_infinity():
    t = Float(0, 1)
    assert t.convert("0.5", None, None) == 0.5
    for bad in ("nan", "inf", "-inf", "1e400"):
        with pytest.raises(click.BadParameter):
            t.convert(bad, None, None)
    assert math.isfinite(Float().convert("-1e300", None, None))


def test_targets_that_do_not_fit_a_classifier_are_refused(files, tmp_path):
    for kind in ("profile", "counts"):
        code, err = _run("score", "--model", files["model"], "--fasta", files["fasta"],
                         "--target", kind, "--shuffles", 2, "-q", "--output", tmp_path / "s.h5")
        assert code == 2, err
        assert f"--target {kind} needs a {kind if kind == 'profile' else 'count'} head" in err
        assert ("the model's output 'output' has shape (3,), a sigmoid output (a classifier's "
                "probabilities); targets that fit it: logit") in err
    assert list(tmp_path.iterdir()) == []


def test_which_targets_fit_which_outputs():
    import keras
    from dnalift.deeplift import DeepLift
    from dnalift.errors import InputError
    inp = keras.Input((50, 4))
    flat = keras.layers.Flatten()(inp)
    linear1 = keras.Model(inp, keras.layers.Dense(1)(flat))        # a log-count head
    assert DeepLift(linear1, target="counts").task_labels == ["counts"]
    with pytest.raises(InputError, match=r"--target profile needs a profile head.*has shape "
                                         r"\(1,\), a linear output; targets that fit it: "
                                         r"logit, counts"):
        DeepLift(linear1, target="profile")
    softmax = keras.Model(inp, keras.layers.Dense(40, activation="softmax")(flat))
    assert DeepLift(softmax, target="profile").task_labels == ["profile"]
    with pytest.raises(InputError, match="fit it: logit, profile"):
        DeepLift(softmax, target="counts")


def _save(model, path: Path) -> Path:
    model.save(path)
    return path


@pytest.mark.parametrize("shape, shown", [((100, 5), "(100, 5)"), ((400,), "(400,)"),
                                          ((4, 100), "(4, 100)")])
def test_model_input_must_be_one_hot_length_by_4(shape, shown, tmp_path):
    import keras
    inp = keras.Input(shape)
    x = keras.layers.Flatten()(inp) if len(shape) > 1 else inp
    model = _save(keras.Model(inp, keras.layers.Dense(2)(x)), tmp_path / "m.keras")
    fasta = write_fasta(tmp_path / "s.fa", [("a", "ACGT" * 25)])
    code, err = _run("score", "--model", model, "--fasta", fasta, "--output", tmp_path / "o.h5",
                     "--shuffles", 2, "-q")
    assert code == 2, err
    assert err.strip() == (f"dnalift: error: {model}: the model's input has shape {shown} (batch "
                           "axis left out); dnalift needs one-hot DNA of shape (L, 4): L "
                           "positions, then 4 channels in the order A, C, G, T (flat, "
                           "channels-first or other-alphabet inputs are not supported: reshape "
                           "or permute them inside the model)")
    assert not (tmp_path / "o.h5").exists()


def test_seed_range(files, tmp_path):
    from dnalift.errors import InputError
    from dnalift.references import ReferenceSpec
    code, err = _run("score", "--model", files["model"], "--fasta", files["fasta"], "--seed",
                     2**64, "--output", tmp_path / "s.h5")
    assert code == 2 and ("Invalid value for '--seed': 18446744073709551616 is not in the range "
                          "0<=x<=2^63-1") in err
    assert ReferenceSpec(seed=2**63 - 1).seed_value == 2**63 - 1
    with pytest.raises(InputError, match="seed must be an integer >= 0 and <= "):
        ReferenceSpec(seed=2**63)
    code, err = _run("train", "--seed", 2**32, "--output", tmp_path / "t")
    assert code == 2 and "'--seed': 4294967296 is not in the range 0<=x<=2^32-1" in err


def test_largest_seed_is_stored(files, tmp_path):
    import h5py
    code, err = _run("score", "--model", files["model"], "--fasta", files["fasta"], "--seed",
                     2**63 - 1, "--shuffles", 2, "-q", "--output", tmp_path / "s.h5")
    assert code == 0, err
    with h5py.File(tmp_path / "s.h5", "r") as f:
        assert int(f.attrs["seed"]) == 2**63 - 1


def test_plot_with_an_empty_or_headerless_hit_table(files, tmp_path):
    from dnalift import plots
    from dnalift.errors import InputError
    empty = tmp_path / "empty.tsv"
    empty.write_bytes(b"")
    code, err = _run("plot", "--hits", empty, "--output", tmp_path / "p.png")
    assert code == 2 and f"Invalid value for '--hits': '{empty}' is empty (0 bytes)" in err
    with pytest.raises(InputError, match=r"empty hit table \(no header line\)"):
        plots.plot_hits_file(empty, tmp_path / "p.png")  # was pandas.errors.EmptyDataError
    header = tmp_path / "header.tsv"
    header.write_text(files["hits"].read_text().splitlines()[0] + "\n")
    code, err = _run("plot", "--hits", header, "--output", tmp_path / "p.png")
    assert code == 2 and err == (f"dnalift: error: {header}: the hit table has no hits (header "
                                 "line only)\n")
    assert not (tmp_path / "p.png").exists()


def test_task_names_empty_file_and_duplicates(files, tmp_path):
    base = ["score", "--model", files["model"], "--fasta", files["fasta"], "--shuffles", 2,
            "-q", "--output", tmp_path / "s.h5"]
    empty = tmp_path / "names.txt"
    empty.write_text("\n")
    code, err = _run(*base, "--task-names", empty)
    assert code == 2 and err == (f"dnalift: error: {empty}: --task-names file is empty (no "
                                 "names; one task name per line)\n")
    dup = tmp_path / "dup.txt"
    dup.write_text("gata\ntal\ngata\n")
    code, err = _run(*base, "--task-names", dup)
    assert code == 2 and err == (f"dnalift: error: {dup} (--task-names file): task name 'gata' "
                                 "appears twice (names 1 and 3); task names must differ\n")
    code, err = _run(*base, "--task-names", "a,b,a")
    assert code == 2 and "--task-names 'a,b,a': task name 'a' appears twice" in err
    model = tmp_path / "m.h5"
    shutil.copyfile(files["model"], model)
    Path(f"{model}.tasks.txt").write_text("x\ny\nx\n")
    code, err = _run(*base[:2], model, *base[3:])
    assert code == 2 and (f"{model}.tasks.txt (task-name sidecar): task name 'x' appears "
                          "twice") in err
    assert not (tmp_path / "s.h5").exists()


@pytest.mark.parametrize("freqs, problem", [
    ("a,c,g,t", "'a' is not a number"),
    ("0.5,-0.1,0.3,0.3", "values must be finite and >= 0"),
    ("0.3,0.3,0.4", "need 4 values (A, C, G, T), got 3"),
    ("0.3,0.3,0.3,0.3", "must sum to 1 (sum is 1.2)"),
])
def test_freqs_messages_name_the_option_and_the_form(files, tmp_path, freqs, problem):
    code, err = _run("score", "--model", files["model"], "--fasta", files["fasta"], "--freqs",
                     freqs, "--output", tmp_path / "s.h5")
    assert code == 2 and err == (f"dnalift: error: --freqs {freqs!r}: {problem}; expected "
                                 "A,C,G,T: 4 numbers >= 0 summing to 1, e.g. 0.3,0.2,0.2,0.3\n")


def test_tile_errors_name_the_options(files):
    from dnalift import tiling
    from dnalift.errors import InputError
    for args, message in (((0, 1, 0.5), "--width 0: the window width must be >= 1"),
                          ((5, 0, 0.5), "--step 0: the distance between window starts"),
                          ((5, 5, 1.5), "--max-n-fraction 1.5: the largest fraction")):
        with pytest.raises(InputError, match=message):
            list(tiling.tile_genome(files["genome"], *args[:2], max_n_fraction=args[2]))
    with pytest.raises(InputError, match=r"--include 'chr\(': not a regular expression"):
        list(tiling.tile_genome(files["genome"], 5, 5, include="chr("))


def test_fasta_from_a_pipe_says_how_to_use_one(tmp_path):
    from dnalift import sequences
    from dnalift.errors import InputError
    fifo = tmp_path / "pipe.fa"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match=r"pipe.fa: not a regular file; a FASTA must be a "
                                         r"regular, indexable file \(to use a pipe, write it "
                                         r"to a file first"):
        sequences.open_fasta(fifo)  # stat only: the pipe is never opened
    with pytest.raises(InputError, match="a_dir: a directory; a BED must be a regular"):
        (tmp_path / "a_dir").mkdir()
        list(sequences.read_bed(tmp_path / "a_dir"))


def test_binary_bed_names_file_and_line(tmp_path):
    from dnalift import sequences
    from dnalift.errors import InputError
    bed = tmp_path / "r.bed"
    bed.write_bytes(b"chr1\t0\t10\n\xff\xfe\x00\n")
    with pytest.raises(InputError, match=r"r.bed: not a text file \(byte 0xff is not UTF-8; "
                                         r"a binary file\?\)"):
        list(sequences.read_bed(bed))


def test_simulate_splits_must_sum_to_one(tmp_path):
    code, err = _run("simulate", "--output", tmp_path / "sim", "--splits", "0.5", "0.5", "0.5")
    assert code == 2 and ("Invalid value for '--splits': 0.5 0.5 0.5 sum to 1.5; the "
                          "train/valid/test fractions must sum to 1") in err
    assert not (tmp_path / "sim").exists()


def test_cheap_failures_do_not_import_tensorflow(files, tmp_path):
    """Options and files are checked before TensorFlow is imported (one fresh interpreter
    runs every command line, then reports whether ``tensorflow`` was imported)."""
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    m, fa = str(files["model"]), str(files["fasta"])
    out = str(tmp_path / "o.h5")
    argvs = [["score", "--model", m, "--fasta", str(tmp_path / "none.fa"), "--output", out],
             ["score", "--model", m, "--fasta", fa, "--task-names", str(empty), "--output", out],
             ["score", "--model", m, "--fasta", fa, "--freqs", "a,c,g,t", "--output", out],
             ["score", "--model", m, "--fasta", fa, "--seed", HUGE_INT, "--output", out],
             ["score", "--model", m, "--fasta", fa, "--shard", "0/2", "--output", out],
             ["score", "--model", m, "--fasta", os.devnull, "--output", out],
             ["motifs", "--h5", str(files["h5"]), "--pvalue", "0", "--output", out],
             ["motifs", "--h5", str(files["h5"]), "--background", "1,0,0,0", "--output", out],
             ["plot", "--hits", str(empty), "--output", out],
             ["tile", "--genome", str(files["genome"]), "--width", "0", "--output", out]]
    script = ("import sys, json\nfrom dnalift.cli.process import run_cli\n"
              "codes = [run_cli(a) for a in json.loads(sys.argv[1])]\n"
              "print(json.dumps([codes, 'tensorflow' in sys.modules, 'keras' in sys.modules]))")
    import json
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(argvs)], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    codes, tf, keras = json.loads(proc.stdout.strip().splitlines()[-1])
    assert codes == [2] * len(argvs), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == len(argvs), proc.stderr
    assert not tf and not keras
