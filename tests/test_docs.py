"""Documentation that cannot rot: README.md and the manual under docs/.

- Every shell or Python block marked ``<!-- runnable -->`` (the line right above its fence)
  runs on the shipped example data, in a scratch directory whose ``data`` is the repository's
  (read only) and where ``results/`` is written; a failure names the file and line.
- Every relative link of README.md resolves; the manual builds with ``mkdocs build --strict``
  (any warning, e.g. a broken link, a missing page or a docstring mkdocstrings cannot
  render, fails) where the ``docs`` extra is installed.
- Every command's ``--help`` gives an example and shows its defaults.
"""

from __future__ import annotations

import enum
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dnalift.cli.main import cli

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
MARK = "<!-- runnable -->"
FENCE = re.compile(r"```(bash|python)\s*$")


def runnable_blocks(page: Path) -> list[tuple[int, str, str]]:
    """``(line, language, code)`` of the blocks marked runnable in ``page`` (1-based line of
    the opening fence)."""
    lines = page.read_text().splitlines()
    blocks = []
    for i, line in enumerate(lines[:-1]):
        if line.strip() != MARK:
            continue
        fence = FENCE.match(lines[i + 1])
        assert fence, f"{page.name}:{i + 1}: {MARK} must stand right above a bash/python fence"
        end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
        blocks.append((i + 2, fence.group(1), "\n".join(lines[i + 2:end])))
    return blocks


RUNNABLE = [p for p in PAGES if runnable_blocks(p)]


def test_runnable_blocks_are_marked_somewhere():
    assert REPO / "README.md" in RUNNABLE
    assert len(RUNNABLE) >= 3, RUNNABLE


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: str(p.relative_to(REPO)))
def test_runnable_blocks_run(page, tmp_path):
    (tmp_path / "data").symlink_to(REPO / "data")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for line, language, code in runnable_blocks(page):
        where = f"{page.relative_to(REPO)}:{line}"
        if language == "bash":
            res = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=tmp_path, env=env,
                                 capture_output=True, text=True, timeout=600)
        else:
            res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                                 capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, f"{where}: exit {res.returncode}\n{res.stderr[-3000:]}"
    assert not (REPO / "data" / "simulated").joinpath("results").exists()


def test_readme_links_resolve():
    text = (REPO / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert len(local) > 10
    missing = [t for t in local if not (REPO / t).exists()]
    assert missing == []


def test_readme_is_one_screen_and_keeps_the_two_commands():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    assert ("python3 -m pip install -e . && dnalift score --model data/simulated/model.h5 "
            "--fasta data/simulated/test.fa --output results/example.h5 --bigwig "
            "results/example.bw") in text
    assert 'python3 -m pip install -e ".[test]" && python3 -m pytest -q -n auto' in text


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None,
                    reason="needs the docs extra: pip install -e '.[docs]'")
def test_manual_builds_without_warnings(tmp_path):
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                          str(tmp_path / "site")], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=600)
    assert res.returncode == 0, res.stderr[-5000:]
    cli_page = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text()
    for command in cli.list_commands(click.Context(cli)):
        assert f"dnalift {command}" in cli_page, command
    assert "one_hot_encode" in (tmp_path / "site" / "reference" / "api" / "index.html").read_text()


# --------------------------------------------------------------------------- --help

def all_commands() -> list[tuple[str, ...]]:
    """Every command path, e.g. ``("score",)``, ``("discover", "hits")``."""
    paths = []
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        paths.append((name,))
        if isinstance(command, click.Group):
            paths.extend((name, sub) for sub in command.list_commands(ctx))
    return paths


@pytest.mark.parametrize("path", all_commands(), ids=" ".join)
def test_help_gives_an_example_and_the_defaults(path):
    res = CliRunner().invoke(cli, [*path, "--help"], terminal_width=100)
    assert res.exit_code == 0, res.output
    assert "Example" in res.output and f"dnalift {' '.join(path)}" in res.output, res.output
    ctx = click.Context(cli, info_name="dnalift", **cli.context_settings)
    command = cli
    for name in path:
        sub = command.get_command(ctx, name)
        ctx = click.Context(sub, info_name=name, parent=ctx, **sub.context_settings)
        command = sub
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden or param.is_flag:
            continue
        default = param.get_default(ctx, call=False)
        if param.required or default is None or isinstance(default, enum.Enum) or (
                isinstance(default, (list, tuple)) and not default):
            continue  # no default (click >= 8.3 says so with a sentinel enum, UNSET)
        record = param.get_help_record(ctx)
        assert record is not None and "default" in record[1], (param.name, record)
