"""TensorFlow's C++ logging on the command line (process start-up, before TensorFlow loads).

TensorFlow's native libraries print ~8 lines to stderr when they load and initialise
(oneDNN, CUDA stubs, ``failed call to cuInit`` on CPU machines, XLA service), even with
``-q``. :func:`quiet_tensorflow` (called by the console entry point) sets
``TF_CPP_MIN_LOG_LEVEL=3`` (fatal only) and, because the lines printed before absl's
logging is initialised ignore that variable, sends file descriptor 2 to ``/dev/null``
while the ``tensorflow`` package itself is imported. Python exceptions are unaffected (they
are printed after the import). A ``TF_CPP_MIN_LOG_LEVEL`` set by the user is respected;
``dnalift score -v`` calls :func:`loud_tensorflow` to keep everything.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys
from typing import Any, Iterator

LEVEL_VAR = "TF_CPP_MIN_LOG_LEVEL"
_QUIET_LEVEL = "3"


@contextlib.contextmanager
def stderr_to_devnull() -> Iterator[None]:
    """File descriptor 2 goes to ``/dev/null`` inside the block (native writes included)."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class _QuietLoader(importlib.abc.Loader):
    """Executes a module through its own loader with stderr silenced."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        with stderr_to_devnull():
            self._loader.exec_module(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` like the rest of ``sys.meta_path`` does and silences its
    import; removes itself after the first use."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "tensorflow":
            return None
        _remove_finder()
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def _remove_finder() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietTensorFlowImport)]


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up and info/warning/error logging (unless the user
    set ``TF_CPP_MIN_LOG_LEVEL`` or TensorFlow is already imported)."""
    if LEVEL_VAR in os.environ or "tensorflow" in sys.modules:
        return
    os.environ[LEVEL_VAR] = _QUIET_LEVEL
    sys.meta_path.insert(0, _QuietTensorFlowImport())


def loud_tensorflow() -> None:
    """Undo :func:`quiet_tensorflow` (``-v``), if TensorFlow is not imported yet."""
    installed = any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path)
    if installed and "tensorflow" not in sys.modules:
        _remove_finder()
        os.environ.pop(LEVEL_VAR, None)
