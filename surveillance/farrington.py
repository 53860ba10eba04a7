"""Farrington's outbreak detector in its flexible form (``farringtonFlexible``).

The method of Farrington, Andrews, Beale and Catchpole (1996), "A statistical
algorithm for the early detection of outbreaks of infectious disease", JRSS A
159(3):547-563, with the improvements of Noufaily, Enki, Farrington, Garthwaite,
Andrews and Charlett (2013), "An improved algorithm for outbreak detection in
multiple surveillance systems", Statistics in Medicine 32(7):1206-1222, as the R
package ``surveillance`` implements them in ``farringtonFlexible`` (Salmon,
Schumacher and Höhle 2016, "Monitoring count time series in R: aberration
detection in public health surveillance", J. Stat. Softw. 70(10), section 3.1).

For each evaluated week ``k`` a quasi-Poisson log-linear model is fitted to the
reference data: the weeks ``k - i*freq`` (``i = 1..b``) each with ``w`` weeks on
either side, plus, when ``no_periods > 1``, every week in between, grouped into a
seasonal factor of ``no_periods`` levels (Noufaily et al. 2013, section 3.2). The
most recent ``past_weeks_not_included`` weeks are left out. The fit follows the
package in its details:

* the model with a linear trend is fitted first; if IRLS does not converge it is
  refitted without trend (Farrington et al. 1996, section 3.3);
* past outbreaks are down-weighted: Anscombe residuals above ``weights_threshold``
  get weight ``gamma * s**-2`` and the model is refitted with these prior weights
  (Farrington et al. 1996, section 3.4; Noufaily et al. 2013 use 2.58);
* the trend is kept only if its t-test p-value on the reweighted fit is below
  ``p_threshold_trend``, at least three years of data are used and the predicted
  value does not exceed the largest reference count; otherwise the whole fit,
  reweighting included, is redone without trend;
* the dispersion is ``phi = max(1, Pearson chi2 / df)``; the prediction's standard
  error uses the unclamped Pearson estimate, as R's ``predict.glm`` does;
* thresholds: ``delta`` is Farrington's power-transformed normal approximation
  (section 3.5, 2/3-power by default, variance ``mu0 * (phi + var(mu0)/mu0)``);
  ``nbPlugin`` is the negative-binomial quantile at the predicted mean and
  ``muan`` the one at the upper ``1 - alpha`` normal limit of the linear
  predictor (Noufaily et al. 2013, section 3.4);
* ``limit54 = (cases, period)``: no alarm (and no upper bound) unless the last
  ``period`` weeks, the current one included, hold at least ``cases`` cases.

Where the limit54 rule fails, the upper bound is NaN as in the package, but the
expected count is still reported (the package leaves it NA); where no model
converges, expected, upper bound and score are NaN (the package reports NA and
leaves expected at 0).

The score is ``(y - predFit) / (upper - predFit)`` with ``predFit`` the fitted
value on the scale of the threshold method, so for ``nbPlugin`` and ``muan`` it is
the linear predictor, exactly as the package computes it; a week alarms when its
score exceeds 1, the limit54 rule holds and the count is not zero.

All weeks of one series share the same design matrix relative to the evaluated
week, so the fits for every week run as one batch of small IRLS problems.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from scipy import stats

from linkwatch.surveillance.detection import (
    BoolArray,
    DetectionError,
    DetectionTable,
    FloatArray,
    IntArray,
    as_counts,
    evaluation_weeks,
)

THRESHOLD_METHODS = ("delta", "nbPlugin", "muan")
POWER_TRANSFORMS = {"none": 1.0, "1/2": 0.5, "2/3": 2.0 / 3.0}

# R's glm.control(): the IRLS convergence tolerance on the relative deviance
# change and the iteration limit.
GLM_EPSILON = 1e-8
GLM_MAXIT = 25


@dataclass(frozen=True)
class FarringtonControl:
    """The control list of ``farringtonFlexible``, with the package's defaults.

    ``past_weeks_not_included`` None means ``w``, as in the package. ``freq`` is
    the number of weeks in a year of the series (52 for weekly data).
    """

    b: int = 5
    w: int = 3
    reweight: bool = True
    weights_threshold: float = 2.58
    alpha: float = 0.05
    trend: bool = True
    p_threshold_trend: float = 0.05
    limit54: tuple[int, int] = (5, 4)
    power_trans: str = "2/3"
    no_periods: int = 1
    past_weeks_not_included: int | None = None
    threshold_method: str = "delta"
    freq: int = 52

    def __post_init__(self) -> None:
        if self.b < 1:
            raise DetectionError(f"parameter b={self.b}: needs at least one year (b >= 1)")
        if self.w < 0:
            raise DetectionError(f"parameter w={self.w}: the half-window must be >= 0")
        if not 0.0 < self.alpha < 1.0:
            raise DetectionError(f"parameter alpha={self.alpha}: must lie strictly between 0 and 1")
        if self.weights_threshold <= 0:
            raise DetectionError(
                f"parameter weights_threshold={self.weights_threshold}: must be positive"
            )
        if not 0.0 <= self.p_threshold_trend <= 1.0:
            raise DetectionError(
                f"parameter p_threshold_trend={self.p_threshold_trend}: must lie in [0, 1]"
            )
        cases, period = self.limit54
        if cases < 0 or period < 1:
            raise DetectionError(
                f"parameter limit54={cases},{period}: needs cases >= 0 and period >= 1"
            )
        if self.power_trans not in POWER_TRANSFORMS:
            raise DetectionError(
                f"parameter power_trans={self.power_trans!r}: expected one of "
                + ", ".join(POWER_TRANSFORMS)
            )
        if self.threshold_method not in THRESHOLD_METHODS:
            raise DetectionError(
                f"parameter threshold_method={self.threshold_method!r}: expected one of "
                + ", ".join(THRESHOLD_METHODS)
            )
        if self.no_periods < 1:
            raise DetectionError(f"parameter no_periods={self.no_periods}: must be >= 1")
        gap = self.freq - 2 * self.w - 1
        if self.no_periods > 1 and gap < self.no_periods - 1:
            raise DetectionError(
                f"parameter no_periods={self.no_periods}: the {gap} weeks between two reference "
                f"windows cannot hold {self.no_periods - 1} seasonal periods"
            )
        if self.past_weeks_not_included is not None and self.past_weeks_not_included < 0:
            raise DetectionError(
                f"parameter past_weeks_not_included={self.past_weeks_not_included}: must be >= 0"
            )
        if 2 * self.w + 1 > self.freq:
            raise DetectionError(f"parameter w={self.w}: windows overlap across years")

    @property
    def weeks_not_included(self) -> int:
        """The number of most recent weeks (before the current one) left out of the fit."""
        return self.w if self.past_weeks_not_included is None else self.past_weeks_not_included

    @property
    def first_week(self) -> int:
        """The first 1-based week with ``b`` years of history and a full window."""
        return self.freq * self.b + self.w + 1

    @classmethod
    def farrington_1996(cls, **overrides: Any) -> FarringtonControl:
        """The original settings: reweighting threshold 1, delta threshold, no seasonal factor."""
        base: dict[str, Any] = {
            "weights_threshold": 1.0,
            "no_periods": 1,
            "threshold_method": "delta",
        }
        return cls(**{**base, **overrides})

    @classmethod
    def noufaily_2013(cls, **overrides: Any) -> FarringtonControl:
        """The improved settings of Noufaily et al. (2013), as in the package's example.

        A 10-level seasonal factor, the last 26 weeks excluded, reweighting above
        2.58, the trend kept whenever the other conditions hold, and the
        negative-binomial plug-in threshold.
        """
        base: dict[str, Any] = {
            "no_periods": 10,
            "past_weeks_not_included": 26,
            "weights_threshold": 2.58,
            "p_threshold_trend": 1.0,
            "threshold_method": "nbPlugin",
        }
        return cls(**{**base, **overrides})

    def with_changes(self, **changes: Any) -> FarringtonControl:
        """A copy with some settings changed (validated again)."""
        known = {f.name for f in fields(self)}
        for name in changes:
            if name not in known:
                raise DetectionError(f"unknown farrington parameter {name!r}")
        return replace(self, **changes)


@dataclass(frozen=True)
class ReferenceDesign:
    """Where the reference weeks lie relative to the evaluated week, and their period."""

    offsets: IntArray  # negative offsets from the evaluated week, ascending
    periods: IntArray  # seasonal factor level of each reference week (1..no_periods)


def reference_design(control: FarringtonControl) -> ReferenceDesign:
    """The reference weeks of ``farringtonFlexible`` as offsets from the evaluated week.

    Mirrors the package's ``blocks``: the window of ``w`` weeks around each of the
    ``b`` past years' same week gets level ``no_periods``; with ``no_periods > 1``
    the weeks between two windows are cut into ``no_periods - 1`` consecutive
    blocks (the first ``rest`` blocks one week longer). The current window
    ``k-w..k`` also belongs to level ``no_periods`` but, like the last
    ``past_weeks_not_included`` weeks, only enters the data when not excluded.
    """
    f, b, w, p = control.freq, control.b, control.w, control.no_periods
    level: dict[int, int] = {o: p for o in range(-w, 1)}
    for i in range(1, b + 1):
        ref = -i * f
        for o in range(ref - w, ref + w + 1):
            level[o] = p
        if p != 1:
            gap = f - 2 * w - 1
            base_length, rest = divmod(gap, p - 1)
            lengths = [base_length + (1 if j < rest else 0) for j in range(p - 1)]
            start = ref + w + 1
            for j, length in enumerate(lengths, start=1):
                for o in range(start, start + length):
                    level[o] = j
                start += length
    excluded = range(-control.weeks_not_included, 1)
    offsets = np.array(sorted(o for o in level if o not in excluded), dtype=np.int64)
    periods = np.array([level[int(o)] for o in offsets], dtype=np.int64)
    if not np.any(periods == p):
        raise DetectionError(
            f"parameter past_weeks_not_included={control.weeks_not_included} removes every "
            "reference week of the current period"
        )
    return ReferenceDesign(offsets=offsets, periods=periods)


def _design_matrix(design: ReferenceDesign, control: FarringtonControl, trend: bool) -> FloatArray:
    """Columns: intercept, [centred time], seasonal dummies with the current period as base.

    Centring time on the evaluated week and taking the current period as the
    factor's base level is a reparametrisation of the package's model (same
    fitted values, deviance, dispersion, trend p-value and prediction), chosen so
    that the prediction for the evaluated week is the intercept alone.
    """
    columns = [np.ones(design.offsets.shape[0])]
    if trend:
        columns.append(design.offsets / float(control.freq))
    if control.no_periods != 1:
        for level in np.unique(design.periods):
            if level != control.no_periods:
                columns.append((design.periods == level).astype(np.float64))
    return np.column_stack(columns)


@dataclass
class _QuasiPoissonFit:
    """A batch of IRLS fits sharing one design matrix (rows = evaluated weeks)."""

    beta: FloatArray  # (K, q)
    mu: FloatArray  # (K, n)
    cov_unscaled: FloatArray  # (K, q, q), (X'WX)^-1 at the last iteration
    working_weights: FloatArray  # (K, n), prior * mu at the last iteration
    converged: BoolArray  # (K,)
    dispersion: FloatArray  # (K,), Pearson chi2 / df, as summary.glm


def _poisson_deviance(y: FloatArray, mu: FloatArray, prior: FloatArray) -> FloatArray:
    ratio = np.where(y > 0, y / np.where(y > 0, mu, 1.0), 1.0)
    with np.errstate(divide="ignore"):
        terms = y * np.log(ratio) - (y - mu)
    return np.asarray(2.0 * np.sum(prior * terms, axis=1), dtype=np.float64)


def _fit_quasipoisson(x: FloatArray, y: FloatArray, prior: FloatArray) -> _QuasiPoissonFit:
    """IRLS for a log-link quasi-Poisson GLM, one fit per row of ``y``.

    Follows R's ``glm.fit``: start at ``mu = y + 0.1``, stop when the relative
    deviance change falls below 1e-8 (each row on its own), at most 25
    iterations; the covariance and working weights are those of the last
    iteration, as R keeps them.
    """
    k_rows, n = y.shape
    q = x.shape[1]
    mu = y + 0.1
    eta = np.log(mu)
    dev_old = _poisson_deviance(y, mu, prior)
    beta = np.zeros((k_rows, q))
    xtx_last = np.zeros((k_rows, q, q))
    wk_last = np.zeros((k_rows, n))
    converged = np.zeros(k_rows, dtype=bool)
    active = np.arange(k_rows)
    for _ in range(GLM_MAXIT):
        if active.size == 0:
            break
        m, e, ya, pa = mu[active], eta[active], y[active], prior[active]
        z = e + (ya - m) / m
        wk = pa * m
        xtw = np.transpose(wk[:, :, None] * x[None, :, :], (0, 2, 1))  # (A, q, n)
        xtx = xtw @ x
        rhs = xtw @ z[:, :, None]
        b_new = np.linalg.solve(xtx, rhs)[:, :, 0]
        e_new = b_new @ x.T
        m_new = np.exp(e_new)
        dev = _poisson_deviance(ya, m_new, pa)
        done = np.abs(dev - dev_old[active]) / (np.abs(dev) + 0.1) < GLM_EPSILON
        beta[active], eta[active], mu[active] = b_new, e_new, m_new
        xtx_last[active], wk_last[active], dev_old[active] = xtx, wk, dev
        converged[active[done]] = True
        active = active[~done]
    cov = np.asarray(np.linalg.inv(xtx_last), dtype=np.float64)
    df = n - q
    pearson = np.sum(wk_last * ((y - mu) / mu) ** 2, axis=1)
    dispersion = pearson / df if df > 0 else np.full(k_rows, np.nan)
    return _QuasiPoissonFit(beta, mu, cov, wk_last, converged, dispersion)


def _hat_values(x: FloatArray, fit: _QuasiPoissonFit) -> FloatArray:
    return np.asarray(
        fit.working_weights * np.einsum("ni,kij,nj->kn", x, fit.cov_unscaled, x), dtype=np.float64
    )


def _anscombe_residuals(
    x: FloatArray, y: FloatArray, fit: _QuasiPoissonFit, phi: FloatArray
) -> FloatArray:
    """Anscombe residuals scaled by ``sqrt(phi (1 - h))`` (Farrington et al. 1996, 3.4)."""
    mu = fit.mu
    raw = 1.5 * (y ** (2.0 / 3.0) * mu ** (-1.0 / 6.0) - np.sqrt(mu))
    return np.asarray(raw / np.sqrt(phi[:, None] * (1.0 - _hat_values(x, fit))), dtype=np.float64)


def outbreak_weights(residuals: FloatArray, threshold: float) -> FloatArray:
    """Prior weights that down-weight past outbreaks (Farrington et al. 1996, 3.4).

    Weeks with Anscombe residual ``s`` above ``threshold`` get ``gamma / s**2``,
    the others ``gamma``, with ``gamma`` chosen so that the weights sum to the
    number of weeks. Works row by row on a 2-D array.
    """
    s = np.atleast_2d(residuals)
    above = s > threshold
    inv_sq = np.where(above, 1.0 / np.where(above, s, 1.0) ** 2, 1.0)
    gamma = s.shape[1] / np.sum(inv_sq, axis=1)
    return np.asarray(gamma[:, None] * inv_sq, dtype=np.float64).reshape(np.shape(residuals))


@dataclass
class _FinalModel:
    fit: _QuasiPoissonFit
    phi: FloatArray
    ok: BoolArray
    # The dispersion the trend test and the prediction's standard error use.
    # After reweighting, the package stores the outbreak weights in the model's
    # `weights` slot, where summary.glm expects the working weights, so its
    # Pearson estimate becomes sum(omega * ((y - mu) / mu)^2) / df.
    inference_dispersion: FloatArray


def _fit_flexible(x: FloatArray, y: FloatArray, control: FarringtonControl) -> _FinalModel:
    """The package's ``algo.farrington.fitGLM.flexible`` for one design, all rows at once."""
    ones = np.ones_like(y)
    fit = _fit_quasipoisson(x, y, ones)
    phi = np.maximum(fit.dispersion, 1.0)
    ok = fit.converged.copy()
    inference_dispersion = fit.dispersion
    if control.reweight:
        omega = outbreak_weights(_anscombe_residuals(x, y, fit, phi), control.weights_threshold)
        # R does not check the convergence of the reweighted fit.
        fit = _fit_quasipoisson(x, y, omega)
        phi = np.maximum(fit.dispersion, 1.0)
        df = x.shape[0] - x.shape[1]
        pearson = np.sum(omega * ((y - fit.mu) / fit.mu) ** 2, axis=1)
        inference_dispersion = pearson / df if df > 0 else np.full(y.shape[0], np.nan)
    return _FinalModel(fit, phi, ok, np.asarray(inference_dispersion, dtype=np.float64))


def _discrete_quantile(
    p: float, mean: FloatArray, cdf: Any, ppf: Any, shape: tuple[FloatArray, ...]
) -> FloatArray:
    """Smallest x with F(x) >= p (1 - 64 eps), R's fuzz for left continuity."""
    target = p * (1.0 - 64.0 * np.finfo(float).eps)
    q = np.asarray(ppf(p, *shape), dtype=np.float64)
    q = np.where(np.isfinite(q), q, 0.0)
    for _ in range(4):
        down = (q > 0) & (cdf(q - 1, *shape) >= target)
        up = cdf(q, *shape) < target
        if not (down.any() or up.any()):
            break
        q = q - down + up
    return np.where(np.isfinite(mean), q, np.nan)


def _delta_threshold(
    mu0: FloatArray, se_fit: FloatArray, phi: FloatArray, y: FloatArray, control: FarringtonControl
) -> tuple[FloatArray, FloatArray]:
    exponent = POWER_TRANSFORMS[control.power_trans]
    tau = phi + se_fit**2 / mu0
    if control.power_trans == "none":
        se = np.sqrt(mu0 * tau)
    elif control.power_trans == "1/2":
        se = np.sqrt(0.25 * tau)
    else:
        se = np.sqrt(4.0 / 9.0 * mu0 ** (1.0 / 3.0) * tau)
    z = stats.norm.ppf(1.0 - control.alpha)
    with np.errstate(invalid="ignore"):
        bounds = np.stack(
            [(mu0**exponent - z * se) ** (1 / exponent), (mu0**exponent + z * se) ** (1 / exponent)]
        )
    upper = np.nanmax(np.where(np.isnan(bounds), -np.inf, bounds), axis=0)
    upper = np.where(np.isfinite(upper), upper, np.nan)
    score = (y - mu0) / (upper - mu0)
    return upper, score


def _noufaily_threshold(
    eta0: FloatArray,
    se_link: FloatArray,
    phi: FloatArray,
    y: FloatArray,
    control: FarringtonControl,
) -> tuple[FloatArray, FloatArray]:
    q = 1.0 - control.alpha
    if control.threshold_method == "nbPlugin":
        mean = np.exp(eta0)
    else:
        mean = np.exp(stats.norm.ppf(q, loc=eta0, scale=se_link))
    mean = np.where(np.isfinite(mean), mean, np.nan)
    upper = np.full_like(eta0, np.nan)
    nb = np.isfinite(mean) & (phi > 1.0)
    if nb.any():
        size, prob = mean[nb] / (phi[nb] - 1.0), 1.0 / phi[nb]
        upper[nb] = _discrete_quantile(
            q, mean[nb], stats.nbinom.cdf, stats.nbinom.ppf, (size, prob)
        )
    pois = np.isfinite(mean) & ~(phi > 1.0)
    if pois.any():
        upper[pois] = _discrete_quantile(
            q, mean[pois], stats.poisson.cdf, stats.poisson.ppf, (mean[pois],)
        )
    score = (y - eta0) / (upper - eta0)
    return upper, score


def farrington_flexible(
    observed: Any,
    control: FarringtonControl | None = None,
    week_range: tuple[int, int] | None = None,
) -> DetectionTable:
    """Run ``farringtonFlexible`` on one weekly series.

    ``observed`` holds the counts of weeks 1..n; ``week_range`` is the inclusive,
    1-based range of weeks to evaluate (default: every week from
    ``control.first_week``). Returns one row per evaluated week; ``score`` is the
    package's ``control$score``.
    """
    control = control or FarringtonControl()
    counts = as_counts(observed)
    weeks = evaluation_weeks(counts.shape[0], control.first_week, week_range, "farrington-flexible")
    # Reference data that are (almost) all zero drive the fitted means towards 0;
    # the undefined values that follow end as NaN thresholds, where R gives NA.
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        return _farrington_weeks(counts, weeks, control)


def _farrington_weeks(
    counts: IntArray, weeks: IntArray, control: FarringtonControl
) -> DetectionTable:
    design = reference_design(control)
    rows = (weeks - 1)[:, None] + design.offsets[None, :]
    y = counts[rows].astype(np.float64)
    current = counts[weeks - 1].astype(np.float64)
    k_rows = weeks.shape[0]

    x_trend = _design_matrix(design, control, trend=True)
    x_flat = _design_matrix(design, control, trend=False)

    beta0 = np.full(k_rows, np.nan)
    cov00 = np.full(k_rows, np.nan)
    disp = np.full(k_rows, np.nan)
    phi = np.full(k_rows, np.nan)
    ok = np.zeros(k_rows, dtype=bool)
    need_flat = np.ones(k_rows, dtype=bool)

    if control.trend:
        trended = _fit_flexible(x_trend, y, control)
        fit = trended.fit
        eta_hat = fit.beta[:, 0]
        t_stat = fit.beta[:, 1] / np.sqrt(trended.inference_dispersion * fit.cov_unscaled[:, 1, 1])
        p_value = 2.0 * stats.t.sf(np.abs(t_stat), x_trend.shape[0] - x_trend.shape[1])
        keep = (
            trended.ok
            & (control.b >= 3)
            & (p_value < control.p_threshold_trend)
            & (np.exp(eta_hat) <= y.max(axis=1))
        )
        beta0[keep], cov00[keep] = eta_hat[keep], fit.cov_unscaled[keep, 0, 0]
        disp[keep], phi[keep] = trended.inference_dispersion[keep], trended.phi[keep]
        ok[keep] = True
        need_flat = ~keep
    if need_flat.any():
        flat = _fit_flexible(x_flat, y[need_flat], control)
        idx = np.flatnonzero(need_flat)
        beta0[idx], cov00[idx] = flat.fit.beta[:, 0], flat.fit.cov_unscaled[:, 0, 0]
        disp[idx], phi[idx], ok[idx] = flat.inference_dispersion, flat.phi, flat.ok

    se_link = np.sqrt(cov00 * disp)
    if control.threshold_method == "delta":
        expected = np.exp(beta0)
        upper, score = _delta_threshold(expected, se_link * expected, phi, current, control)
    else:
        expected = np.exp(beta0)
        upper, score = _noufaily_threshold(beta0, se_link, phi, current, control)

    cases, period = control.limit54
    csum = np.concatenate([[0], np.cumsum(counts)])
    recent = csum[weeks] - csum[np.maximum(weeks - period, 0)]
    enough = recent >= cases
    upper = np.where(ok & enough, upper, np.nan)
    score = np.where(ok, score, np.nan)
    expected = np.where(ok, expected, np.nan)
    with np.errstate(invalid="ignore"):
        alarm = ok & enough & (score > 1.0) & (current != 0)
    return DetectionTable(
        method="farrington-flexible",
        week=weeks,
        observed=counts[weeks - 1],
        expected=expected,
        upperbound=upper,
        alarm=np.asarray(alarm, dtype=bool),
        score=score,
    )
