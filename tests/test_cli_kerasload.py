"""Keras imported without its optional integrations in a ``dnalift`` process
(``dnalift.cli.kerasload``): the mechanism on throw-away packages in this process, and the
real Keras in a fresh process that scores the shipped data."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from dnalift.cli.kerasload import SKIPPED, lean_import

from test_scoring import TEST_FA, _records, write_fasta

MODEL = Path(__file__).resolve().parents[1] / "data" / "simulated" / "model.h5"

HOST = '''
try:
    import {opt}
except ImportError:
    {opt} = None
try:
    from {opt} import sub
except ImportError:
    sub = None
import {other}
'''


@pytest.fixture
def packages(tmp_path, monkeypatch, request):
    """Names of a host package, the optional package it tries and a plain one it needs,
    written under ``tmp_path`` (unique names; removed from ``sys.modules`` afterwards)."""
    tag = request.node.name.replace("[", "_").replace("]", "").replace("-", "_")
    host, opt, other = f"host_{tag}", f"opt_{tag}", f"other_{tag}"
    (tmp_path / host).mkdir()
    (tmp_path / host / "__init__.py").write_text(HOST.format(opt=opt, other=other))
    (tmp_path / opt).mkdir()
    (tmp_path / opt / "__init__.py").write_text("VALUE = 7\n")
    (tmp_path / opt / "sub.py").write_text("VALUE = 8\n")
    (tmp_path / f"{other}.py").write_text("VALUE = 9\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    meta_path = list(sys.meta_path)
    yield host, opt, other
    sys.meta_path[:] = meta_path
    for name in [m for m in sys.modules if m.partition(".")[0] in (host, opt, other)]:
        del sys.modules[name]


def test_skipped_packages_are_unimportable_only_while_the_host_is_imported(packages):
    host, opt, other = packages
    before = list(sys.meta_path)
    lean_import(host, (opt,))
    lean_import(host, (opt,))  # a second call adds nothing
    assert len(sys.meta_path) == len(before) + 1
    module = importlib.import_module(host)
    assert getattr(module, opt) is None and module.sub is None
    assert opt not in sys.modules and f"{opt}.sub" not in sys.modules
    assert getattr(module, other).VALUE == 9  # everything else imports as usual
    assert sys.meta_path == before  # the finder and the blocker are gone
    assert importlib.import_module(opt).VALUE == 7  # and afterwards the package imports
    assert importlib.import_module(f"{opt}.sub").VALUE == 8


def test_a_package_imported_before_is_left_to_the_host(packages):
    host, opt, _ = packages
    optional = importlib.import_module(opt)
    lean_import(host, (opt,))
    module = importlib.import_module(host)
    assert getattr(module, opt) is optional
    assert module.sub.VALUE == 8  # a submodule of an imported package is not refused either


def test_the_blocker_is_removed_when_the_host_import_fails(packages, tmp_path):
    host, opt, _ = packages
    (tmp_path / host / "__init__.py").write_text("raise RuntimeError('broken host')\n")
    before = list(sys.meta_path)
    lean_import(host, (opt,))
    with pytest.raises(RuntimeError, match="broken host"):
        importlib.import_module(host)
    assert sys.meta_path == before
    assert importlib.import_module(opt).VALUE == 7


def test_a_dnalift_process_scores_with_keras_loaded_without_its_integrations(tmp_path):
    """A real ``score`` run: Keras leaves scikit-learn, pandas and matplotlib unloaded (each
    of its integrations off), the job succeeds, and both import normally afterwards."""
    fasta = write_fasta(tmp_path / "two.fa", _records(TEST_FA, 2))
    out = tmp_path / "out.h5"
    code = (
        "import sys\n"
        "from dnalift.cli.kerasload import lean_keras, SKIPPED\n"
        "from dnalift.cli.process import run_cli\n"
        "lean_keras()\n"
        "rc = run_cli(sys.argv[1:])\n"
        "import keras.src.wrappers.sklearn_wrapper as w\n"
        "import keras.src.trainers.data_adapters.array_slicing as a\n"
        "import keras.src.visualization.plot_image_gallery as g\n"
        "loaded = [m for m in SKIPPED if m in sys.modules]\n"
        "from sklearn.metrics import roc_auc_score\n"
        "import pandas\n"
        "print(rc, loaded, w.sklearn is None, a.pandas is None, g.plt is None,\n"
        "      roc_auc_score([0, 1, 1], [0.1, 0.8, 0.4]), len(pandas.Series([1, 2])))\n")
    args = ["score", "--model", str(MODEL), "--fasta", str(fasta), "--shuffles", "2",
            "--output", str(out), "-q"]
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-1] == "0 [] True True True 1.0 2", res.stdout
    assert set(SKIPPED) == {"sklearn", "pandas", "matplotlib"}
    with h5py.File(out) as f:
        assert f["contrib_scores"].shape[0] == 2


def test_the_module_is_packaged_with_the_command_line():
    """setup.cfg builds the package ``dnalift.cli`` from ``cli/``: a module placed in a
    ``dnalift/cli/`` folder imports in an editable install but is missing from a wheel."""
    import dnalift.cli.kerasload as kerasload
    repo = Path(__file__).resolve().parents[1]
    assert Path(kerasload.__file__).resolve().parent == repo / "cli"
    assert not (repo / "dnalift" / "cli").exists()
