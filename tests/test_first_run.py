"""The first ten minutes of a new user: the README's commands change no shipped file, a job
says at once what it loads, cheap checks come before TensorFlow, one output-directory rule
for every command, and clear messages for damaged inputs."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dnalift.cli.main import cli
from dnalift.fileio import file_sha256

from test_scoring import TEST_FA, _records, write_fasta

REPO = Path(__file__).resolve().parents[1]
SIMULATED = REPO / "data" / "simulated"
MODEL = SIMULATED / "model.keras"


def _run_cli(*args: str | os.PathLike, cwd: Path | None = None
             ) -> tuple[int, str, bool]:
    """(exit status, stderr, whether TensorFlow was imported) of ``dnalift ARGS`` run in a
    fresh process through the console entry's ``run_cli``."""
    code = ("import sys; from dnalift.cli.process import run_cli; "
            "rc = run_cli(sys.argv[1:]); print(rc, 'tensorflow' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                         text=True, timeout=300, cwd=cwd)
    rc, imported = res.stdout.split()[-2:]
    return int(rc), res.stderr, imported == "True"


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dnalift: error: "), stderr
    return lines[0]


# --------------------------------------------------------------------------- train
def test_train_writes_a_new_directory_and_refuses_existing_models(tmp_path):
    """The README's `dnalift train --data data/simulated` would write ./trained, never the
    shipped model; existing model files there are refused without --force (before training,
    TensorFlow not imported) and left as they were."""
    trained = tmp_path / "trained"
    trained.mkdir()
    (trained / "model.keras").write_text("an earlier model")
    shipped = {p: file_sha256(p) for p in SIMULATED.glob("model*")}
    rc, err, imported = _run_cli("train", "--data", SIMULATED, cwd=tmp_path)
    line = _one_error_line(err)
    assert rc == 2 and not imported
    assert line == ("dnalift: error: --output trained: trained/model.keras exists; use --force "
                    "to overwrite, or another --output")
    assert (trained / "model.keras").read_text() == "an earlier model"
    assert {p: file_sha256(p) for p in SIMULATED.glob("model*")} == shipped
    assert "[default: trained]" in CliRunner().invoke(cli, ["train", "--help"]).output


def test_saving_the_h5_model_prints_no_legacy_warning(tmp_path, capfd, caplog):
    import keras

    from dnalift.simulated import train as tr
    inputs = keras.Input((20, 4))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs)))
    caplog.set_level(logging.INFO)
    written = tr.save_model(model, tmp_path / "out", ["t"], {"auroc_test": {}})
    assert sorted(written) == ["model.h5", "model.h5.tasks.txt", "model.keras",
                               "model.keras.tasks.txt", "model.metrics.json"]
    captured = capfd.readouterr()
    assert "legacy" not in captured.err + captured.out + caplog.text


# --------------------------------------------------------------------------- score
@pytest.fixture
def three(tmp_path) -> Path:
    return write_fasta(tmp_path / "three.fa", _records(TEST_FA, 3))


def test_cheap_checks_run_before_tensorflow(tmp_path, three):
    """Repeated sidecar task names, a sequence length that does not fit the model's stored
    input and a truncated .keras file: one line, exit 2, TensorFlow never imported."""
    model = tmp_path / "m.keras"
    shutil.copy(MODEL, model)
    (tmp_path / "m.keras.tasks.txt").write_text("both\nboth\ntal\n")
    rc, err, imported = _run_cli("score", "--model", model, "--fasta", three)
    assert (rc, imported) == (2, False)
    assert "task-name sidecar" in _one_error_line(err) and "'both'" in err
    short = write_fasta(tmp_path / "short.fa", [("s1", "ACGT" * 10)])
    rc, err, imported = _run_cli("score", "--model", MODEL, "--fasta", short)
    assert (rc, imported) == (2, False)
    assert _one_error_line(err) == (f"dnalift: error: {short} region s1:0-40: length 40 but "
                                    f"the model takes 200 ({MODEL})")
    truncated = tmp_path / "t.keras"
    truncated.write_bytes(MODEL.read_bytes()[:300])
    rc, err, imported = _run_cli("score", "--model", truncated, "--fasta", three)
    assert (rc, imported) == (2, False)
    assert _one_error_line(err) == (f"dnalift: error: {truncated}: not a valid .keras file "
                                    "(not a zip archive: truncated, or another format saved "
                                    "under a .keras name)")


def test_truncated_keras_file_in_the_library(tmp_path):
    from dnalift.errors import InputError
    from dnalift.models import load_model, read_model_config, stored_input_length
    text = tmp_path / "m.keras"
    text.write_text("not a model\n")
    with pytest.raises(InputError, match=r"m\.keras: not a valid \.keras file"):
        load_model(text)
    assert stored_input_length(read_model_config(MODEL)) == 200
    assert stored_input_length(read_model_config(SIMULATED / "model.h5")) == 200


def test_mode_lists_every_engine_mode():
    from dnalift.engine.names import MODES
    option = next(p for p in cli.commands["score"].params if p.name == "mode")
    assert list(option.type.choices) == list(MODES)
    assert "integrated_gradients" in CliRunner().invoke(cli, ["score", "--help"]).output


def test_stale_fasta_index_is_named(tmp_path):
    from dnalift.errors import InputError
    from dnalift.sequences import chrom_sizes
    records = _records(TEST_FA, 2)
    fasta = write_fasta(tmp_path / "g.fa", records)
    assert list(chrom_sizes(fasta).values()) == [200, 200]  # builds g.fa.fai
    index = (tmp_path / "g.fa.fai").read_bytes()
    write_fasta(fasta, [("new", "ACGT" * 5)] + records)  # edited after indexing
    (tmp_path / "g.fa.fai").write_bytes(index)  # and the index looks newer
    with pytest.raises(InputError) as err:
        chrom_sizes(fasta)
    assert str(err.value) == (
        f"{fasta}.fai: stale FASTA index (record '{records[0][0]}' is not at byte "
        f"{len(records[0][0]) + 2}: {fasta} changed after it was indexed); delete {fasta}.fai "
        f"(dnalift rebuilds it) or rebuild it with `samtools faidx {fasta}`")


# ------------------------------------------------------------- output directories
@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> tuple[Path, str]:
    """A score file of two all-N regions and one sequence (2 shuffles), and the log."""
    from dnalift import scoring
    from dnalift.references import ReferenceSpec

    d = tmp_path_factory.mktemp("scored")
    (name, seq), = _records(TEST_FA, 1)
    fasta = write_fasta(d / "n.fa", [("n1", "N" * 200), ("n2", "N" * 200), (name, seq)])
    log, handler = [], logging.Handler()
    handler.emit = lambda record: log.append(record.getMessage())
    logger = logging.getLogger("dnalift")
    logger.addHandler(handler)
    try:
        scoring.score(str(MODEL), scoring.open_inputs(fasta=fasta), d / "s.h5",
                      reference=ReferenceSpec("shuffle", k=2))
    finally:
        logger.removeHandler(handler)
    return d / "s.h5", "\n".join(log)


def test_all_n_regions_are_warned_about(scored):
    assert ("2 of 3 regions have no A, C, G or T (all N: n1, n2); their scores are all zero"
            in scored[1])


def _commands(d: Path, h5: Path, out: Path) -> dict[str, list[str]]:
    """One invocation per command writing under ``out``."""
    (name, _), = _records(TEST_FA, 1)
    return {
        "tile": ["tile", "--genome", str(d / "genome.fa"), "--width", "50", "--output",
                 str(out / "t.bed")],
        "motifs": ["motifs", "--h5", str(h5), "--output", str(out / "h.tsv")],
        "plot": ["plot", "--h5", str(h5), "--sequence", name, "--output", str(out / "p.png")],
        "merge": ["merge", str(h5), "--output", str(out / "m.h5")],
    }


@pytest.mark.parametrize("command", ["tile", "motifs", "plot", "merge"])
def test_one_output_directory_rule(command, scored, tmp_path):
    """A missing directory (and its parents) is created when the output is written; a path
    through a file is refused before any work, exit 2, one line, without a temporary name."""
    h5, _ = scored
    write_fasta(tmp_path / "genome.fa", [("chr1", "ACGT" * 50)])
    made = _commands(tmp_path, h5, tmp_path / "new" / "deeper")[command]
    res = CliRunner().invoke(cli, made)
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "new" / "deeper").iterdir())) == 1
    (tmp_path / "blocker").write_text("")
    refused = _commands(tmp_path, h5, tmp_path / "blocker" / "sub")[command]
    res = CliRunner().invoke(cli, refused)
    assert res.exit_code == 2
    line = _one_error_line(res.output)
    assert f"{tmp_path / 'blocker'} is not a directory" in line and ".tmp" not in line
    assert not (tmp_path / "blocker").is_dir()


def test_discover_report_without_its_extra_leaves_no_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    fake = tmp_path / "modisco.h5"
    fake.write_bytes(b"x")
    res = CliRunner().invoke(cli, ["discover", "report", "--modisco", str(fake), "--motifs",
                                   str(SIMULATED / "motifs.meme"), "--output",
                                   str(tmp_path / "report" / "r")])
    assert res.exit_code == 2
    assert "modisco" in _one_error_line(res.output)
    assert not (tmp_path / "report").exists()


# --------------------------------------------------------------------------- start-up
def test_commands_are_imported_on_first_use():
    """`dnalift --version` imports no command module (nor pandas); `--help` lists them all."""
    code = ("import sys; from dnalift.cli.main import cli; "
            "from dnalift.cli.process import run_cli; run_cli(['--version']); "
            "print(sorted(m for m in sys.modules if m.startswith('dnalift.cli.') and "
            "m not in ('dnalift.cli.main', 'dnalift.cli.process', 'dnalift.cli.logstream', "
            "'dnalift.cli.tflog')), 'pandas' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert res.stdout.splitlines()[-1] == "[] False", res.stdout
    listed = CliRunner().invoke(cli, ["--help"]).output.split("Commands:")[1].split()
    assert {"discover", "merge", "motifs", "plot", "score", "simulate", "tile",
            "train"} <= set(listed)


def test_ci_runs_the_readme_test_command():
    """`.ci/run` runs exactly the README's second command (install, then the suite)."""
    readme = (REPO / "README.md").read_text()
    command = next(line for line in readme.splitlines()
                   if line.startswith('python3 -m pip install -e ".[test]" && '))
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines()
          if line.startswith("python3 -m p") and "--upgrade pip" not in line
          and ".[docs]" not in line]
    # the suite's exit status is kept (`|| rc=$?`) so the SLURM tests run after it too
    assert [c.replace(" -q -e", " -e").removesuffix(" || rc=$?") for c in ci] == \
        command.split(" && ")
