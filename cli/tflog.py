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
import os
import sys
from typing import Iterator

from dnalift.cli import importhook

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


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up and info/warning/error logging (unless the user
    set ``TF_CPP_MIN_LOG_LEVEL`` or TensorFlow is already imported)."""
    if LEVEL_VAR in os.environ or "tensorflow" in sys.modules:
        return
    os.environ[LEVEL_VAR] = _QUIET_LEVEL
    importhook.on_first_import("tensorflow", stderr_to_devnull)


def loud_tensorflow() -> None:
    """Undo :func:`quiet_tensorflow` (``-v``), if TensorFlow is not imported yet."""
    if importhook.pending("tensorflow") and "tensorflow" not in sys.modules:
        importhook.cancel("tensorflow")
        os.environ.pop(LEVEL_VAR, None)
