"""A package's first import run inside a context (process start-up, before it loads).

The console entry point changes how two heavy packages load without changing the packages:
TensorFlow imports with file descriptor 2 silenced (:mod:`dnalift.cli.tflog`) and Keras
imports while its optional integrations are unimportable (:mod:`dnalift.cli.kerasload`).
:func:`on_first_import` puts a finder first on ``sys.meta_path`` that finds the package like
the rest of ``sys.meta_path`` does, removes itself, and has the package's own loader execute
it inside ``context()``.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Any, Callable, ContextManager


class _LoaderIn(importlib.abc.Loader):
    """Executes a module through its own loader inside ``context()``."""

    def __init__(self, loader: Any, context: Callable[[], ContextManager]) -> None:
        self._loader = loader
        self._context = context

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        with self._context():
            self._loader.exec_module(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _FirstImport(importlib.abc.MetaPathFinder):
    """Finds ``package`` and wraps its loader (:class:`_LoaderIn`); removes itself at its
    first use."""

    def __init__(self, package: str, context: Callable[[], ContextManager]) -> None:
        self.package = package
        self.context = context

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.package:
            return None
        cancel(self.package)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _LoaderIn(spec.loader, self.context)
        return spec


def pending(package: str) -> bool:
    """Whether :func:`on_first_import` waits for ``package``'s import."""
    return any(isinstance(f, _FirstImport) and f.package == package for f in sys.meta_path)


def on_first_import(package: str, context: Callable[[], ContextManager]) -> None:
    """Run the import of top-level ``package``, when it first happens, inside ``context()``
    (no-op if ``package`` is already imported or already waited for)."""
    if package not in sys.modules and not pending(package):
        sys.meta_path.insert(0, _FirstImport(package, context))


def cancel(package: str) -> None:
    """Stop waiting for ``package``'s import (:func:`on_first_import`)."""
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not (isinstance(f, _FirstImport) and f.package == package)]
