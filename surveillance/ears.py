"""The EARS C1, C2 and C3 detectors (``earsC`` of the R package ``surveillance``).

Hutwagner, Thompson, Seeman and Treadwell (2003), "The bioterrorism preparedness
and response Early Aberration Reporting System (EARS)", J. Urban Health 80(2
Suppl 1):i89-i96; Fricker, Hegler and Dunfee (2008), "Comparing syndromic
surveillance detection methods: EARS' versus a CUSUM-based methodology", Stat.
Med. 27(17):3407-3429, section 2; Salmon, Schumacher and Höhle (2016), J. Stat.
Softw. 70(10), section 3.3.

With a baseline of ``baseline`` weeks (7 by default), mean ``m`` and standard
deviation ``s`` (floored at ``min_sigma``):

* C1 uses the ``baseline`` weeks just before the current one; the upper bound is
  ``m + z * s`` with ``z`` the ``1 - alpha`` normal quantile (alpha 0.001);
* C2 does the same with a guard band of two weeks (weeks ``t-baseline-2..t-3``);
* C3 works from the C2 statistics ``C2_t = (y_t - m_t) / s_t`` of the two previous
  weeks: the package's upper bound is ``y_t + s_t (z - max(0, C2_{t-2} - 1) -
  max(0, C2_{t-1} - 1))``, floored at 0 (alpha 0.025). A week therefore alarms
  when the two lagged exceedances sum to more than ``z`` (the package does not add
  the current week's term, and we follow it).

Weeks whose baseline has zero spread and ``min_sigma = 0`` give the same
undefined values as the package: C3's bound is then NaN and no alarm is raised.
The score is the week's C1/C2 statistic, and for C3 the sum of the three
``max(0, C2 - 1)`` terms (Hutwagner et al. 2003).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import stats

from linkwatch.surveillance.detection import (
    DetectionError,
    DetectionTable,
    FloatArray,
    IntArray,
    as_counts,
    evaluation_weeks,
)

EARS_METHODS = ("C1", "C2", "C3")
DEFAULT_ALPHA = {"C1": 0.001, "C2": 0.001, "C3": 0.025}
# How many weeks before the current one the last baseline week lies.
_LAG = {"C1": 1, "C2": 3, "C3": 3}


def first_week(method: str, baseline: int) -> int:
    """The first 1-based week ``earsC`` evaluates by default."""
    return baseline + {"C1": 1, "C2": 3, "C3": 5}[method]


def _baseline_stats(
    counts: IntArray, weeks: IntArray, baseline: int, lag: int, min_sigma: float
) -> tuple[FloatArray, FloatArray]:
    """Mean and floored standard deviation of the baseline of each week in ``weeks``."""
    windows = sliding_window_view(counts.astype(np.float64), baseline)
    # The window for week t ends at week t - lag, so it starts at t - lag - baseline + 1.
    ref = windows[weeks - lag - baseline]
    mean = ref.mean(axis=1)
    sd = ref.std(axis=1, ddof=1)
    return mean, np.maximum(sd, min_sigma)


def ears_c(
    observed: Any,
    method: str = "C1",
    alpha: float | None = None,
    baseline: int = 7,
    min_sigma: float = 0.0,
    week_range: tuple[int, int] | None = None,
) -> DetectionTable:
    """Run EARS ``method`` (C1, C2 or C3) on one weekly series.

    ``alpha`` defaults to the package's 0.001 for C1 and C2 and 0.025 for C3.
    ``week_range`` is the inclusive, 1-based range of weeks to evaluate (default:
    every week from ``baseline + 1``, ``+ 3`` or ``+ 5``).
    """
    if method not in EARS_METHODS:
        raise DetectionError(f"EARS method {method!r}: expected one of C1, C2, C3")
    if baseline < 3:
        raise DetectionError(f"parameter baseline={baseline}: the minimum baseline is 3 weeks")
    if min_sigma < 0:
        raise DetectionError(f"parameter min_sigma={min_sigma}: must be >= 0")
    level = DEFAULT_ALPHA[method] if alpha is None else alpha
    if not 0.0 < level < 1.0:
        raise DetectionError(f"parameter alpha={level}: must lie strictly between 0 and 1")
    counts = as_counts(observed)
    name = f"ears-{method.lower()}"
    weeks = evaluation_weeks(counts.shape[0], first_week(method, baseline), week_range, name)
    z = float(stats.norm.ppf(1.0 - level))
    y = counts[weeks - 1].astype(np.float64)

    with np.errstate(divide="ignore", invalid="ignore"):
        if method in ("C1", "C2"):
            mean, sigma = _baseline_stats(counts, weeks, baseline, _LAG[method], min_sigma)
            upper = mean + z * sigma
            score = (y - mean) / sigma
        else:
            # Weeks are contiguous, so C2 is needed on the two weeks before the first too.
            extended = np.arange(weeks[0] - 2, weeks[-1] + 1)
            mean_ext, sigma_ext = _baseline_stats(counts, extended, baseline, _LAG["C3"], min_sigma)
            c2 = (counts[extended - 1] - mean_ext) / sigma_ext
            part2 = np.maximum(0.0, c2[:-2] - 1.0)
            part1 = np.maximum(0.0, c2[1:-1] - 1.0)
            sigma, mean = sigma_ext[2:], mean_ext[2:]
            # np.maximum propagates NaN as R's pmax does: undefined bounds stay NaN.
            upper = np.maximum(0.0, y + sigma * (z - (part2 + part1)))
            score = part2 + part1 + np.maximum(0.0, c2[2:] - 1.0)
        alarm = np.where(np.isnan(upper), False, y > upper)
    return DetectionTable(
        method=name,
        week=weeks,
        observed=counts[weeks - 1],
        expected=np.asarray(mean, dtype=np.float64),
        upperbound=np.asarray(upper, dtype=np.float64),
        alarm=np.asarray(alarm, dtype=bool),
        score=np.asarray(score, dtype=np.float64),
    )
