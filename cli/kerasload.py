"""Keras without its optional integrations in a ``dnalift`` process (process start-up).

Importing Keras 3 also imports, when they are installed, scikit-learn (for the
``keras.wrappers`` estimators), pandas (DataFrame inputs to ``fit``/``predict``) and
matplotlib (the ``keras.visualization`` image galleries). None of these is used by dnalift's
engine, yet together they cost ~2 s of the ~6 s a ``dnalift score`` process spends importing
Keras and TensorFlow on a 2-core machine (scikit-learn alone ~1.3 s, most of it
``scipy.stats``), and a test suite, a Snakemake workflow or a job array starts many such
processes.

:func:`lean_keras` (called by the console entry point, like
:func:`dnalift.cli.tflog.quiet_tensorflow`) makes those packages unimportable *only while
the* ``keras`` *package itself is being imported*. Keras guards each of them with
``try: import ... except ImportError`` and leaves that integration off: in a ``dnalift``
process, ``keras.wrappers.SKLearnClassifier`` and friends report scikit-learn missing, and
Keras' ``fit``/``predict`` do not accept pandas objects; dnalift calls neither. Afterwards
the packages import normally (``dnalift motifs`` uses pandas and scikit-learn's auROC). A
package already imported before Keras is left to Keras as it is. Library use (notebooks,
``CliRunner``) never comes here and gets Keras unchanged.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Any

#: Keras' optional integrations that dnalift does not use: not loaded during its import.
SKIPPED = ("sklearn", "pandas", "matplotlib")


class _Unimportable(importlib.abc.MetaPathFinder):
    """Refuses ``names`` and their submodules (``ModuleNotFoundError``)."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(
                f"{fullname} is not loaded while Keras is imported by dnalift", name=fullname)
        return None


class _WithoutLoader(importlib.abc.Loader):
    """Executes a module through its own loader while ``names`` are unimportable."""

    def __init__(self, loader: Any, names: tuple[str, ...]) -> None:
        self._loader = loader
        self._names = names

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        names = tuple(n for n in self._names if n not in sys.modules)
        blocker = _Unimportable(names)
        sys.meta_path.insert(0, blocker)
        try:
            self._loader.exec_module(module)
        finally:
            sys.meta_path[:] = [f for f in sys.meta_path if f is not blocker]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _LeanImport(importlib.abc.MetaPathFinder):
    """Finds ``package`` like the rest of ``sys.meta_path`` does and imports it while
    ``skipped`` are unimportable; removes itself at its first use."""

    def __init__(self, package: str, skipped: tuple[str, ...]) -> None:
        self.package = package
        self.skipped = skipped

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.package:
            return None
        sys.meta_path[:] = [f for f in sys.meta_path if f is not self]
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _WithoutLoader(spec.loader, self.skipped)
        return spec


def lean_import(package: str, skipped: tuple[str, ...]) -> None:
    """Import top-level ``package``, when it is first imported, while the top-level
    packages ``skipped`` (those not imported yet) cannot be imported (no-op if ``package``
    is already imported or already set up so)."""
    if package in sys.modules or any(isinstance(f, _LeanImport) and f.package == package
                                     for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _LeanImport(package, skipped))


def lean_keras() -> None:
    """Import Keras, when it is first imported, without :data:`SKIPPED`."""
    lean_import("keras", SKIPPED)
