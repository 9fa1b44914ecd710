"""float32 scores against float64 scores of the same model, references and weights.

Place in the data flow: references -> engine, twice (``tests/precision_models.py``). The measure
is ``max |s32 - s64| / max |s64|`` of the hypothetical and the actual scores. Before the
realised-difference quotients and the max-pool tie rule (issue 18) it was up to 2.5e-4 on the
CREsted zoo and 8-15% on ``maxpool_bn``; after, at most 3.4e-6 over every zoo model, mode and
the max-pool models (``bench/precision.py`` prints the table). The tolerance leaves a margin
for other CPUs' kernels: the remaining error is the float32 rounding of the convolutions'
outputs, to which the max-pool λ split and a ReLU's secant near its kink are sensitive.
"""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras")

import precision_models  # noqa: E402
import zoo  # noqa: E402

#: Allowed ``max |s32 - s64| / max |s64|`` (measured at most 3.4e-6 on AMD EPYC, AVX-512,
#: with 2 sequences x 3 references; 3.9e-6 with the 3 x 2 of the zoo cases below).
TOL = 1e-5


@pytest.fixture
def models(built_models):
    """Each architecture built once per session: ``models(arch, build) -> keras.Model``."""
    return built_models


@pytest.mark.parametrize("case", [pytest.param(c, marks=zoo.xdist_group(c), id=c.id)
                                  for c in zoo.CASES if c.needs is None])
def test_float32_matches_float64_on_the_zoo(case, models):
    """3 sequences x 2 references, as tests/test_architectures.py: its float64
    genomics_default engine (and traced step) of the case is reused here."""
    model = models(case.arch, case.build)
    hyp, act = precision_models.float32_error(
        model, "genomics_default", case.output, case.tasks, n=3, k=2,
        engines=lambda dtype, build: models(zoo.engine_key(case, "genomics_default", dtype),
                                            build))
    assert hyp <= TOL and act <= TOL, (hyp, act)


@pytest.mark.parametrize("maxpool", ["rescale", "gradient"])
@pytest.mark.parametrize("mode", ["rescale", "revealcancel", "genomics_default"])
def test_maxpool_after_batchnorm_is_stable_in_precision(mode, maxpool, models):
    """Conv(relu) -> BatchNorm -> MaxPool: the ReLU's zeros become one constant per channel,
    exact ties in the pool windows that the reference windows turn into near-ties; the tie
    rule (first position within ``TIE_ULPS`` of the maximum) decides them alike in float32 and
    float64 (before: 8-15% apart)."""
    model = models("maxpool_bn", precision_models.EXTRA["maxpool_bn"])
    hyp, act = precision_models.float32_error(model, mode, maxpool=maxpool, n=2, k=5)
    assert hyp <= TOL and act <= TOL, (hyp, act)
