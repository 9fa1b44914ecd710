"""Tests of the figures (dnalift.plots): PNGs are written, sized as asked, and not blank."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from dnalift import plots
from dnalift.errors import InputError
from test_motifs import write_scores_h5


def _png(path):
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.ndim == 3
    return img


def _nontrivial(img) -> bool:
    """More than a handful of distinct colours: something was drawn."""
    flat = (img[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    return len(np.unique(flat, axis=0)) > 20


def _hits(rng):
    n = 60
    hits = pd.DataFrame({"name": [f"s{i}" for i in range(n)],
                         "motif": np.where(np.arange(n) % 2, "GATA", "TAL"),
                         "start": 0, "end": 10, "strand": "+",
                         "score": rng.uniform(2, 12, n), "embedded": np.arange(n) % 3 == 0})
    for m in ("rescale", "revealcancel"):
        for t in ("both", "gata"):
            hits[f"contrib.{m}.{t}"] = rng.normal(size=n)
    return hits


def test_hit_scatter_png(tmp_path):
    hits = _hits(np.random.default_rng(0))
    out = tmp_path / "hits.png"
    w, h = plots.plot_hits(hits, out, methods=["rescale", "revealcancel"], tasks=["both", "gata"],
                           dpi=50)
    img = _png(out)
    assert img.shape[:2] == (h, w)  # 2 columns x (2 tasks x 2 motifs) rows
    assert (w, h) == (int(round(3.2 * 2 * 50)), int(round(2.6 * 4 * 50)))
    assert _nontrivial(img)
    with pytest.raises(InputError, match="contrib.gradient.both"):
        plots.plot_hits(hits, out, methods=["gradient"], tasks=["both"])


def test_logo_png_and_contribution_matrix(tmp_path):
    onehot = np.eye(4)[[0, 1, 2, 3, 0, 0]]
    actual = np.array([1.0, -0.5, 2.0, 0.0, 0.3, -1.0])
    mat = plots.contribution_matrix(onehot, actual)
    assert mat.shape == (6, 4)
    np.testing.assert_array_equal(mat.sum(axis=1), actual)
    assert mat[2, 2] == 2.0 and mat[2, 0] == 0.0
    out = tmp_path / "logo.png"
    w, h = plots.plot_logo(mat, out, title="t", highlight=[(1, 3)], dpi=60)
    img = _png(out)
    assert img.shape[:2] == (h, w) and w >= 6 * 60
    assert _nontrivial(img)
    with pytest.raises(InputError):
        plots.plot_logo(np.zeros((5, 3)), out)


def test_cli_plot_logo_from_h5(tmp_path):
    from dnalift.cli.plot import plot

    rng = np.random.default_rng(1)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (3, 50))]
    contrib = rng.normal(size=(3, 2, 50)).astype(np.float32)
    h5 = tmp_path / "scores.h5"
    write_scores_h5(h5, ["seq00000", "seq00001", "seq00002"], x, contrib, ["both", "gata"])
    emb = tmp_path / "emb.tsv"
    pd.DataFrame({"name": ["seq00001"], "start": [5], "end": [15], "motif": ["GATA"]}).to_csv(
        emb, sep="\t", index=False)
    out = tmp_path / "logo.png"
    res = CliRunner().invoke(plot, ["--h5", str(h5), "--sequence", "seq00001",
                                   "--task", "gata", "--embedded", str(emb), "--output", str(out)])
    assert res.exit_code == 0, res.output
    assert _nontrivial(_png(out))
    bad = CliRunner().invoke(plot, ["--h5", str(h5), "--sequence", "seq99",
                                    "--output", str(tmp_path / "x.png")])
    assert isinstance(bad.exception, InputError)
    assert "no sequence named seq99" in str(bad.exception)
    assert not (tmp_path / "x.png").exists()
