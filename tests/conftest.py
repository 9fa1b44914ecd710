"""Shared, generic test fixtures (small files written into pytest's tmp_path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import pytest


@pytest.fixture(scope="session")
def built_models() -> Callable[[str, Callable[[], Any]], Any]:
    """Keras models (and DeepLIFT engines over them) built once per test session (per xdist
    worker) and shared by the test modules: ``built_models(key, build)`` calls ``build()``
    the first time ``key`` is asked for. Tests must not change what they get. An engine
    reused keeps its traced step: tests that share one should also share an ``xdist_group``
    so that they run on the same worker."""
    built: dict[str, Any] = {}

    def get(key: str, build: Callable[[], Any]) -> Any:
        if key not in built:
            built[key] = build()
        return built[key]
    return get


@pytest.fixture
def write_text(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write ``text`` to ``tmp_path / name`` and return the path."""
    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return _write


@pytest.fixture
def write_fasta(tmp_path: Path) -> Callable[..., Path]:
    """Write ``(name, sequence)`` records as FASTA (``width`` bases per line)."""
    def _write(records: Iterable[tuple[str, str]], name: str = "seqs.fa",
               width: int = 60) -> Path:
        lines = []
        for rec, seq in records:
            lines.append(f">{rec}")
            lines.extend(seq[i:i + width] for i in range(0, len(seq), width))
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n")
        return path
    return _write
