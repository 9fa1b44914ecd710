"""float32 against float64: how many digits the engine keeps, per model of the test zoo.

For every case of ``tests/zoo.py`` (random weights) and every DeepLIFT mode, N sequences with
K dinucleotide shuffles are scored once in float32 and once in float64 with the same weights
and references. The figure per case is ``max |s32 - s64| / max |s64|`` for the hypothetical
and the actual scores (relative to the largest float64 score of the case), the measure of
issue 18. Extra models: the max-pool model of issue 18 section 5 (Conv -> BatchNorm ->
MaxPool -> Dense) with and without BatchNormalization.

    python bench/precision.py [--modes rescale,genomics_default] [--json PATH]

Not a timing benchmark: it measures agreement, so it belongs next to the other figures that
the manual (docs/performance.md) reports, and its library entry ``measure(case, mode)`` is what the precision test
asserts on (``tests/test_precision.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

MODES = ("rescale", "revealcancel", "genomics_default")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--cases", default="", help="comma-separated case ids (default all)")
    parser.add_argument("--maxpool", default="rescale")
    parser.add_argument("--n", type=int, default=3)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import zoo
    import precision_models
    rows = []
    cases = [(c.id, c.build, c.output, c.tasks) for c in zoo.CASES if c.needs is None]
    cases += [(name, build, None, None) for name, build in precision_models.EXTRA.items()]
    if args.cases:
        cases = [c for c in cases if c[0] in args.cases.split(",")]
    built = {}
    for cid, build, output, tasks in cases:
        arch = cid.split("-")[0]
        if arch not in built:
            built[arch] = build()
        for mode in args.modes.split(","):
            hyp, act = precision_models.float32_error(built[arch], mode, output, tasks,
                                                      n=args.n, k=args.k,
                                                      maxpool=args.maxpool)
            rows.append({"case": cid, "mode": mode, "hyp": hyp, "actual": act})
            print(f"{cid:34s} {mode:17s} hyp {hyp:8.2e}  actual {act:8.2e}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
