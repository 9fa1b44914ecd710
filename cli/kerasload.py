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

import contextlib
import importlib.abc
import sys
from typing import Any, Iterator

from dnalift.cli import importhook

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


@contextlib.contextmanager
def unimportable(names: tuple[str, ...]) -> Iterator[None]:
    """Inside the block, the top-level packages ``names`` that are not imported yet cannot
    be imported."""
    blocker = _Unimportable(tuple(n for n in names if n not in sys.modules))
    sys.meta_path.insert(0, blocker)
    try:
        yield
    finally:
        sys.meta_path[:] = [f for f in sys.meta_path if f is not blocker]


def lean_import(package: str, skipped: tuple[str, ...]) -> None:
    """Import top-level ``package``, when it is first imported, while the top-level
    packages ``skipped`` (those not imported yet) cannot be imported (no-op if ``package``
    is already imported or already set up so)."""
    importhook.on_first_import(package, lambda: unimportable(skipped))


def lean_keras() -> None:
    """Import Keras, when it is first imported, without :data:`SKIPPED`."""
    lean_import("keras", SKIPPED)
