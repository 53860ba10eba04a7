"""Negative-binomial GLR CUSUM (``glrnb`` of the R package ``surveillance``).

Höhle and Paul (2008), "Count data regression charts for the monitoring of
surveillance time series", Computational Statistics & Data Analysis
52(9):4357-4368, sections 2.2-3 (the intercept chart); Höhle (2010), "Online
change-point detection in categorical time series", in Statistical Modelling and
Regression Structures, pp. 377-397; Salmon, Schumacher and Höhle (2016), J. Stat.
Softw. 70(10), section 3.4.

The in-control mean ``mu0_t`` comes from a negative-binomial log-linear model
``log mu0_t = b0 [+ b1 t] + sum_s (g_s cos(2 pi s t / 52) + d_s sin(2 pi s t / 52))``
fitted to the weeks before the first evaluated week (``MASS::glm.nb`` when the
dispersion ``alpha`` is not given, ``alpha = 1 / theta``; otherwise a GLM with
that dispersion). For a change ``mu1_t = exp(kappa) mu0_t`` starting at week
``k``, the chart computes at each week ``n``

    GLR_n = max_k sup_kappa l_{n,k}(kappa),
    l_{n,k}(kappa) = sum_{i=k}^{n} kappa x_i + (x_i + 1/alpha) log((1 + alpha mu0_i)
                                                 / (1 + alpha mu0_i exp(kappa))),

with ``kappa`` restricted to ``kappa >= 0`` (``dir = "inc"``) or ``<= 0``
(``"dec"``), and raises an alarm the first time ``GLR_n >= c_arl``; the chart then
restarts after the alarm week. ``M`` limits how far back ``k`` may lie (-1: no
limit) and ``Mtilde`` is the number of weeks needed to estimate ``kappa``.

Like the package's C code, ``kappa`` is found by Newton-Raphson for each ``k`` in
turn, started from the previous ``k``'s estimate (0.5 for the first), stopping
when the step is below 1e-6, after 1000 steps or below -18. linkwatch reaches the
same estimates without following every search: it bounds each window's maximum
from one evaluation, proves where the package's search converges, solves exactly
only the windows that may give a week's largest ``l_{n,k}`` and follows the
package step by step where a search may fail (see ``_Block``). Each window's score,
information and ``l_{n,k}`` come from cumulative sums over a grid of ``kappa`` with
a Taylor correction instead of a pass over its weeks (see ``_WindowCalculus``).

The result's ``expected`` is ``mu0``; ``upperbound`` and ``score`` are the GLR
statistic, which is what the package stores as ``upperbound`` in its default
``ret = "value"`` mode.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special
from scipy.linalg import lapack

from linkwatch.surveillance.detection import (
    BoolArray,
    DetectionError,
    DetectionTable,
    FloatArray,
    IntArray,
    as_counts,
    evaluation_weeks,
)

GLM_EPSILON = 1e-8
GLM_MAXIT = 25
# How many monitoring weeks have their windows prepared together.
_BLOCK = 128
# How many weeks are first evaluated together after an alarm.
_SPAN = 16


@dataclass(frozen=True)
class GlrNbControl:
    """The control list of ``glrnb`` (intercept chart), with the package's defaults.

    ``alpha`` None estimates the dispersion with ``glm.nb`` on the training weeks.
    ``harmonics`` (``mu0$S``) and ``trend`` (``mu0$trend``) shape the in-control model.
    """

    c_arl: float = 5.0
    alpha: float | None = None
    m: int = -1
    mtilde: int = 1
    direction: str = "inc"
    harmonics: int = 1
    trend: bool = False
    freq: int = 52

    def __post_init__(self) -> None:
        if self.c_arl <= 0:
            raise DetectionError(f"parameter c_arl={self.c_arl}: must be positive")
        if self.alpha is not None and self.alpha <= 0:
            raise DetectionError(
                f"parameter alpha={self.alpha}: the negative-binomial dispersion must be > 0"
            )
        if self.mtilde < 1:
            raise DetectionError(f"parameter mtilde={self.mtilde}: must be >= 1")
        if self.m != -1 and self.m < self.mtilde:
            raise DetectionError(f"parameter m={self.m}: must be -1 (no limit) or >= mtilde")
        if self.direction not in ("inc", "dec"):
            raise DetectionError(f"parameter dir={self.direction!r}: expected inc or dec")
        if self.harmonics < 0:
            raise DetectionError(f"parameter s={self.harmonics}: must be >= 0")

    @property
    def n_coefficients(self) -> int:
        """Number of coefficients of the in-control model."""
        return 1 + int(self.trend) + 2 * self.harmonics


@functools.lru_cache(maxsize=64)
def _design_between(first: int, last: int, trend: bool, harmonics: int, freq: int) -> FloatArray:
    """The design of weeks ``first..last``, built once and shared (read-only) by every
    series monitored over the same weeks with the same model."""
    weeks = np.arange(first, last + 1, dtype=np.float64)
    x = _design(weeks, GlrNbControl(trend=trend, harmonics=harmonics, freq=freq))
    x.setflags(write=False)
    return x


def _design(weeks: FloatArray, control: GlrNbControl) -> FloatArray:
    columns = [np.ones_like(weeks)]
    if control.trend:
        columns.append(weeks)
    for s in range(1, control.harmonics + 1):
        angle = 2.0 * s * np.pi / control.freq * weeks
        columns += [np.cos(angle), np.sin(angle)]
    return np.column_stack(columns)


class _Training:
    """The training counts ``y`` and the sums over them that every fit step reuses."""

    def __init__(self, y: FloatArray) -> None:
        self.y = y
        self.y_log_y = float(np.dot(y, np.log(np.maximum(1.0, y))))
        self.total = float(y.sum())
        self.is_zero = y == 0
        # theta.ml's sums over the levels j < y (see _theta_ml).
        self.levels = _exceedances(y)
        self.steps = np.arange(self.levels.shape[0], dtype=np.float64)
        self.log_factorial = special.gammaln(y + 1.0)


class _Deviance:
    """The deviance of a Poisson (theta None) or negative-binomial fit to counts ``y``.

    ``y log(y / mu)`` is split into ``y log y`` (fixed) and ``y eta``, so each
    evaluation costs one logarithm and two dot products.
    """

    def __init__(self, data: _Training, theta: float | None) -> None:
        y = data.y
        self.y, self.theta = y, theta
        if theta is None:
            self.constant = data.y_log_y - data.total
        else:
            self.y_theta = y + theta
            self.constant = data.y_log_y - float(np.dot(self.y_theta, np.log(self.y_theta)))

    def __call__(self, eta: FloatArray, mu: FloatArray) -> float:
        if self.theta is None:
            return 2.0 * (self.constant - float(np.dot(self.y, eta)) + float(mu.sum()))
        return 2.0 * (
            self.constant
            - float(np.dot(self.y, eta))
            + float(np.dot(self.y_theta, np.log(mu + self.theta)))
        )


def _solve_normal(gram: FloatArray, rhs: FloatArray) -> FloatArray:
    """Solve the normal equations ``gram beta = rhs`` (Cholesky; least squares if singular)."""
    _, beta, info = lapack.dposv(gram, rhs)
    if info != 0:
        beta = np.linalg.lstsq(gram, rhs, rcond=None)[0]
    return np.asarray(beta, dtype=np.float64)


def _irls(
    x: FloatArray, data: _Training, theta: float | None, eta_start: FloatArray | None
) -> tuple[FloatArray, FloatArray]:
    """R's ``glm.fit`` with log link: Poisson (theta None) or negative binomial."""
    y = data.y
    if eta_start is None:
        # The families' `initialize`: poisson starts at y + 0.1, negative.binomial
        # at y + (y == 0) / 6.
        mu = y + 0.1 if theta is None else y + data.is_zero / 6.0
        eta = np.log(mu)
    else:
        eta = eta_start
        mu = np.exp(eta)
    deviance = _Deviance(data, theta)
    dev_old = deviance(eta, mu)
    beta = np.zeros(x.shape[1])
    xt = x.T
    for _ in range(GLM_MAXIT):
        # Working weights mu^2 / V(mu) of the log link; the weighted least-squares
        # step solves its normal equations (the designs have at most a few columns).
        weight = mu if theta is None else mu / (1.0 + mu / theta)
        z = eta + y / mu - 1.0
        xw = xt * weight
        beta = _solve_normal(np.dot(xw, x), np.dot(xw, z))
        eta = np.dot(x, beta)
        mu = np.exp(eta)
        dev = deviance(eta, mu)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < GLM_EPSILON:
            break
        dev_old = dev
    return beta, mu


def _exceedances(y: FloatArray) -> FloatArray:
    """``counts[j]`` = how many of the (integer) ``y`` exceed ``j``, for j = 0..max(y) - 1."""
    tally = np.bincount(y.astype(np.int64))
    return np.asarray(y.shape[0] - np.cumsum(tally)[:-1], dtype=np.float64)


_THETA_EPS = float(np.finfo(float).eps ** 0.25)


def _theta_ml(data: _Training, mu: FloatArray, limit: int = GLM_MAXIT) -> float:
    """MASS's ``theta.ml``: Newton-Raphson for the negative-binomial shape.

    For integer counts ``digamma(t + y) - digamma(t)`` is ``sum_{j<y} 1 / (t + j)``
    and ``trigamma(t) - trigamma(t + y)`` is ``sum_{j<y} 1 / (t + j)^2``; both sums
    run over the distinct levels j once, weighted by how many counts exceed j.
    """
    y, levels = data.y, data.levels
    n = float(y.shape[0])
    t0 = n / float(np.sum((y / mu - 1.0) ** 2))
    # t + mu_i, t + j and t + y_i side by side; the three sums over the weeks in one call.
    shifts = np.concatenate([mu, data.steps, y])
    weeks = y.shape[0]
    levels_end = weeks + data.steps.shape[0]
    terms = np.empty((3, weeks))
    delta = 1.0
    it = 1
    while it < limit and abs(delta) > _THETA_EPS:
        t0 = abs(t0)
        shifted = t0 + shifts
        total = shifted[:weeks]
        inverse = 1.0 / shifted[weeks:levels_end]
        share = np.divide(shifted[levels_end:], total, out=terms[1])
        np.log(total, out=terms[0])
        np.divide(np.subtract(2.0, share, out=terms[2]), total, out=terms[2])
        log_sum, share_sum, info_sum = terms.sum(axis=1).tolist()
        score = float(np.dot(levels, inverse)) + n * (math.log(t0) + 1.0) - log_sum - share_sum
        info = float(np.dot(levels, inverse * inverse)) - n / t0 + info_sum
        delta = score / info
        t0 += delta
        it += 1
    return max(t0, 0.0)


def _nb_loglik(theta: float, mu: FloatArray, data: _Training) -> float:
    y = data.y
    return float(
        np.sum(
            special.gammaln(theta + y)
            - special.gammaln(theta)
            - data.log_factorial
            + theta * np.log(theta)
            + y * np.log(mu + data.is_zero)
            - (theta + y) * np.log(theta + mu)
        )
    )


class _Likelihood:
    """The negative-binomial log-likelihood of one (theta, mu), computed on first use."""

    def __init__(self, theta: float, mu: FloatArray, data: _Training) -> None:
        self.theta, self.mu, self.data = theta, mu, data
        self._value: float | None = None

    @property
    def value(self) -> float:
        if self._value is None:
            self._value = _nb_loglik(self.theta, self.mu, self.data)
        return self._value

    @property
    def finite(self) -> bool:
        """Whether the log-likelihood is surely finite (so it cannot stop the fit by NaN)."""
        mu = self.mu
        return 0.0 < self.theta < 1e100 and float(mu.min()) > 0.0 and float(mu.max()) < 1e100


def _glm_nb(x: FloatArray, y: FloatArray) -> tuple[FloatArray, float]:
    """MASS's ``glm.nb``: alternate IRLS for the mean and ``theta.ml`` for the shape.

    The alternation stops once ``|L_old - L| / d1 + |delta theta|`` is at most
    1e-8; the log-likelihoods ``L`` are only evaluated when ``|delta theta|``
    alone does not already exceed it.
    """
    data = _Training(y)
    _, mu = _irls(x, data, None, None)
    theta = _theta_ml(data, mu)
    d1 = np.sqrt(2.0 * max(1, y.shape[0] - x.shape[1]))
    delta = 1.0
    current = _Likelihood(theta, mu, data)
    previous_fit: _Likelihood | None = None  # None: L_old is L + 2 d1
    beta = np.zeros(x.shape[1])
    it = 0
    fitted = mu  # theta is already theta.ml's answer for this mean
    while (it := it + 1) <= GLM_MAXIT:
        if not (abs(delta) > GLM_EPSILON and current.finite):
            loglik = current.value
            loglik_old = loglik + 2.0 * d1 if previous_fit is None else previous_fit.value
            if not abs(loglik_old - loglik) / d1 + abs(delta) > GLM_EPSILON:
                break
        beta, mu_new = _irls(x, data, theta, np.log(mu))
        previous = theta
        # MASS updates theta with the mean of the previous alternation.
        if mu is not fitted:
            theta = _theta_ml(data, mu)
        mu = mu_new
        delta = previous - theta
        previous_fit, current = current, _Likelihood(theta, mu, data)
    return beta, theta


def in_control_mean(
    counts: IntArray, first_week: int, n_weeks: int, control: GlrNbControl
) -> tuple[FloatArray, float]:
    """``mu0`` for weeks ``first_week..n_weeks`` and the dispersion ``alpha``.

    The model is fitted to weeks ``1..first_week - 1``, as the package's
    ``estimateGLRNbHook`` does.
    """
    y = counts[: first_week - 1].astype(np.float64)
    shape = (control.trend, control.harmonics, control.freq)
    x = _design_between(1, first_week - 1, *shape)
    if control.alpha is None:
        beta, theta = _glm_nb(x, y)
        if not np.isfinite(theta) or theta <= 0:
            raise DetectionError(
                "glrnb: the negative-binomial dispersion cannot be estimated from the training "
                "weeks; give alpha"
            )
        alpha = 1.0 / theta
    else:
        beta, _ = _irls(x, _Training(y), 1.0 / control.alpha, None)
        alpha = control.alpha
    return np.exp(_design_between(first_week, n_weeks, *shape) @ beta), alpha


@dataclass(frozen=True)
class _Chunk:
    """The windows ``k..n`` of the weeks ``n`` in one chunk, and which need a search."""

    ns: IntArray  # 0-based weeks n of the chunk
    low: IntArray  # first change point k allowed for each n
    in_window: BoolArray  # (rows, b): k is an allowed change point of n
    searched: BoolArray  # (rows, b): the window's maximum lies on the monitored side


def _newton(
    start: FloatArray, xw: FloatArray, mw: FloatArray, mask: FloatArray, alpha: float
) -> FloatArray:
    """The package's Newton-Raphson for kappa, one window per row, each stopping on its own."""
    masked_x, masked_mu = mask * xw, mask * mw
    alpha_mu = alpha * mw
    info_weight = masked_mu * (alpha * xw + 1.0)
    new = start.copy()
    old = np.full(start.shape[0], 0.4)
    steps = np.zeros(start.shape[0], dtype=np.int64)
    live = np.arange(start.shape[0])  # rows of the compacted arrays, in the full arrays
    going = (new > -18) & (np.abs(new - old) > 1e-6)
    while going.any():
        if going.sum() < 0.75 * live.shape[0]:
            # Compact the working arrays to the searches still running.
            keep = np.flatnonzero(going)
            live, masked_x, masked_mu = live[keep], masked_x[keep], masked_mu[keep]
            alpha_mu, info_weight = alpha_mu[keep], info_weight[keep]
            going = going[keep]
        g = live[going]
        kap = new[g]
        every = bool(going.all())
        mx, mm = (masked_x, masked_mu) if every else (masked_x[going], masked_mu[going])
        am, iw = (alpha_mu, info_weight) if every else (alpha_mu[going], info_weight[going])
        growth = np.exp(kap)[:, None]
        inverse = 1.0 / (1.0 + growth * am)
        score = np.sum((mx - growth * mm) * inverse, axis=1)
        fisher = np.exp(kap) * np.sum(iw * inverse * inverse, axis=1)
        old[g] = kap
        new[g] = kap + score / fisher
        steps[g] += 1
        going = (new[live] > -18) & (np.abs(new[live] - old[live]) > 1e-6) & (steps[live] < 1000)
    return new


def _log_glr(
    kap: FloatArray, xw: FloatArray, mw: FloatArray, mask: FloatArray, alpha: float
) -> FloatArray:
    ratio = (1.0 + alpha * mw) / (1.0 + alpha * mw * np.exp(kap)[:, None])
    return np.asarray(
        np.sum(mask * (kap[:, None] * xw + (xw + 1.0 / alpha) * np.log(ratio)), axis=1),
        dtype=np.float64,
    )


class _WindowCalculus:
    """Score, information and ``l_{n,k}`` of any window at any kappa in O(1).

    For kappa on a grid (step 0.2 from -20 to 709.4, rows filled on first use)
    the terms of ``l_{n,k}``, of the score and of its first derivatives are summed
    cumulatively over the weeks, so that a window's value at a grid point is a
    difference of two cumulative sums; between grid points a Taylor polynomial of
    order 10 in ``delta = kappa - grid point`` (``|delta| <= 0.1``, convergence
    radius pi) gives them to about 1e-15 relative. Kappa outside the grid is
    evaluated directly from the window's weeks (past ``exp`` overflow the package's
    sums are NaN).
    """

    STEP = 0.2
    LOW = -100  # grid index of -20
    HIGH = 3547  # grid index of 709.4
    TERMS = 10

    def __init__(self, x: FloatArray, mu0: FloatArray, alpha: float) -> None:
        self.x, self.mu0, self.alpha = x, mu0, alpha
        self.channels = self.TERMS + 2
        self.stride = x.shape[0] + 1
        # Grid rows are filled on first use (the searches visit few of them) and
        # stored in order of filling; slot[i] is where grid point LOW + i is stored.
        self.slot = np.full(self.HIGH - self.LOW + 1, -1, dtype=np.int64)
        # Row r of `table` holds the channels at week r % stride of grid slot r // stride;
        # `head` holds the first three channels (l, score, its derivative) one channel
        # a row, for the evaluation of many windows at once.
        self.table = np.empty((16 * self.stride, self.channels))
        self.head = np.empty((3, 16 * self.stride))
        self.used = 0
        self.inverse_factorial = 1.0 / np.cumprod(
            np.concatenate([[1.0], np.arange(1.0, self.TERMS + 1)])
        )
        self.orders = np.arange(1.0, self.TERMS + 1)
        self.log_base = np.log1p(alpha * mu0)
        # Weekly terms of the score at kappa = 0, summed cumulatively.
        self.score_at_zero = np.concatenate([[0.0], np.cumsum((x - mu0) / (1.0 + alpha * mu0))])
        self.cum_x = np.concatenate([[0.0], np.cumsum(x)])
        self.cum_mu = np.concatenate([[0.0], np.cumsum(mu0)])

    def _fill(self, points: IntArray) -> None:
        stride = self.stride
        need = self.used + points.shape[0]
        if need * stride > self.table.shape[0]:
            size = max(need, 2 * self.used) * stride
            table, head = np.empty((size, self.channels)), np.empty((3, size))
            table[: self.used * stride] = self.table[: self.used * stride]
            head[:, : self.used * stride] = self.head[:, : self.used * stride]
            self.table, self.head = table, head
        x, mu0, alpha = self.x, self.mu0, self.alpha
        grid = (points + self.LOW) * self.STEP
        growth = np.exp(grid)[:, None]
        u = alpha * mu0[None, :] * growth
        s_val, t_val = 1.0 / (1.0 + u), u / (1.0 + u)
        c = x + 1.0 / alpha
        terms = np.empty((self.channels, points.shape[0], stride))
        terms[:, :, 0] = 0.0
        terms[0, :, 1:] = grid[:, None] * x + c * (self.log_base - np.log1p(u))
        terms[1, :, 1:] = (x - growth * mu0) * s_val
        # Channels 2.. hold c times the Taylor coefficients a_j (j = 1..TERMS) of
        # s(kappa + delta) = 1 / (1 + u e^delta), so that channels 1.. are the Taylor
        # coefficients of the score. From (1 + u e^delta) s = 1: a_0 = s and
        # a_j = -t sum_{i=1..j} a_{j-i} / i!.
        shape = s_val.shape
        coefficients = np.empty((self.TERMS + 1, s_val.size))
        coefficients[0] = s_val.reshape(-1)
        minus_t = -t_val.reshape(-1)
        for j in range(1, self.TERMS + 1):
            np.dot(self.inverse_factorial[j:0:-1], coefficients[:j], out=coefficients[j])
            coefficients[j] *= minus_t
        terms[2:, :, 1:] = c * coefficients[1:].reshape(self.TERMS, *shape)
        np.cumsum(terms, axis=2, out=terms)
        flat = terms.reshape(self.channels, -1)
        self.table[self.used * stride : need * stride] = flat.T
        self.head[:, self.used * stride : need * stride] = flat[:3]
        self.slot[points] = np.arange(self.used, need)
        self.used = need

    def _base(self, position: FloatArray) -> tuple[IntArray, BoolArray, bool]:
        """Where the sums of grid positions ``position`` (kappa / STEP) start in storage.

        Also which positions lie on the grid (False for NaN) and whether all do; rows
        not yet filled are filled.
        """
        point = position - self.LOW
        half = 0.5 * (self.HIGH - self.LOW)
        inside = np.abs(point - half) <= half  # 0 <= point <= HIGH - LOW
        every = bool(inside.all())
        if not every:
            point = np.where(inside, point, 0.0)
        where = point.astype(np.intp)
        index = self.slot.take(where)
        if index.size and index.min() < 0:
            missing = where[(index < 0) & inside]
            if missing.size:
                missing.sort()
                self._fill(missing[np.concatenate([[True], missing[1:] != missing[:-1]])])
                index = self.slot.take(where)
        if not every:
            index = np.where(inside, index, 0)
        return index * self.stride, inside, every

    def _sums(
        self, kappa: FloatArray, ks: IntArray, ns: IntArray
    ) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Channel sums of each window at its nearest grid point (one row per window)."""
        position = np.rint(kappa / self.STEP)
        base, inside, every = self._base(position)
        sums = self.table.take(base + ns + 1, axis=0) - self.table.take(base + ks, axis=0)
        delta = kappa - position * self.STEP
        if not every:
            delta = np.where(inside, delta, 0.0)
        return sums, delta, inside

    def _powers(self, delta: FloatArray, count: int) -> FloatArray:
        """``delta ** j`` for j = 0..count - 1, one row per power."""
        powers = np.empty((count, delta.shape[0]))
        powers[0] = 1.0
        if delta.shape[0] < 128:
            powers[1:] = delta
            return np.asarray(np.multiply.accumulate(powers, axis=0, out=powers), dtype=np.float64)
        # Row by row is faster for many windows (the same products).
        powers[1] = delta
        for j in range(2, count):
            np.multiply(powers[j - 1], delta, out=powers[j])
        return powers

    def _exact(self, kappa: float, k: int, n: int) -> tuple[float, float, float]:
        xs, ms = self.x[k : n + 1], self.mu0[k : n + 1]
        scaled = np.exp(kappa) * ms
        denom = 1.0 + self.alpha * scaled
        score = float(np.sum((xs - scaled) / denom))
        info = float(np.exp(kappa) * np.sum(ms * (self.alpha * xs + 1.0) / denom**2))
        ratio = (1.0 + self.alpha * ms) / (1.0 + self.alpha * ms * np.exp(kappa))
        lnk = float(np.sum(kappa * xs + (xs + 1.0 / self.alpha) * np.log(ratio)))
        return score, info, lnk

    def score_info(
        self, kappa: FloatArray, ks: IntArray, ns: IntArray
    ) -> tuple[FloatArray, FloatArray]:
        """The score and Fisher information (minus the score's derivative) of each window."""
        sums, delta, inside = self._sums(kappa, ks, ns)
        powers = self._powers(delta, self.TERMS)
        t = self.TERMS
        score = np.einsum("ij,ji->i", sums[:, 1 : t + 1], powers)
        info = -np.einsum("ij,ji,j->i", sums[:, 2:], powers, self.orders)
        if not inside.all():
            # Beyond exp's range every term of the package's sums is NaN.
            overflow = ~inside & ~(np.exp(kappa) < np.inf)
            score[overflow] = info[overflow] = np.nan
            for w in np.flatnonzero(~inside & ~overflow):
                score[w], info[w], _ = self._exact(float(kappa[w]), int(ks[w]), int(ns[w]))
        return score, info

    def expansion(
        self, kappa: FloatArray, ks: IntArray, ns: IntArray
    ) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Channel sums at the grid point nearest kappa (one row per channel), that point's
        position (kappa / STEP rounded) and whether it lies on the grid."""
        position = np.rint(kappa / self.STEP)
        base, inside, _ = self._base(position)
        sums = self.table.take(base + ns + 1, axis=0) - self.table.take(base + ks, axis=0)
        return np.ascontiguousarray(sums.T), position, inside

    def evaluate(
        self, sums: FloatArray, position: FloatArray, inside: BoolArray, kappa: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Score, information and ``l_{n,k}`` at kappa from an ``expansion`` around ``position``.

        NaN where the position is off the grid.
        """
        every = bool(inside.all())
        delta = kappa - position * self.STEP
        if not every:
            delta = np.where(inside, delta, 0.0)
        t = self.TERMS
        powers = self._powers(delta, t + 1)
        score = np.einsum("jw,jw->w", sums[1 : t + 1], powers[:t])
        info = -np.einsum("jw,jw,j->w", sums[2:], powers[:t], self.orders)
        lnk = sums[0] + np.einsum("jw,jw,j->w", sums[1 : t + 1], powers[1:], 1.0 / self.orders)
        if not every:
            outside = ~inside
            score[outside] = info[outside] = lnk[outside] = np.nan
        return score, info, lnk

    def at_grid(
        self, kappa: FloatArray, ks: IntArray, ns: IntArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """The grid point nearest each kappa, and the window's score, information and l there."""
        position = np.rint(kappa / self.STEP)
        base, inside, every = self._base(position)
        end, begin = base + ns + 1, base + ks
        lnk, score, info = (row.take(end) - row.take(begin) for row in self.head)
        np.negative(info, out=info)
        if not every:
            outside = ~inside
            score[outside] = info[outside] = lnk[outside] = np.nan
        return position * self.STEP, score, info, lnk

    def log_glr(self, kappa: FloatArray, ks: IntArray, ns: IntArray) -> FloatArray:
        """``l_{n,k}(kappa)`` of each window."""
        sums, delta, inside = self._sums(kappa, ks, ns)
        t = self.TERMS
        powers = self._powers(delta, t + 1)[1:]
        value = sums[:, 0] + np.einsum("ij,ji,j->i", sums[:, 1 : t + 1], powers, 1.0 / self.orders)
        for w in np.flatnonzero(~inside):
            value[w] = self._exact(float(kappa[w]), int(ks[w]), int(ns[w]))[2]
        return np.asarray(value, dtype=np.float64)

    def newton(self, start: FloatArray, ks: IntArray, ns: IntArray) -> tuple[FloatArray, BoolArray]:
        """The package's Newton-Raphson for kappa, one window per entry.

        Returns where each search stopped and whether it stopped by converging
        (a step below 1e-6 above -18), in which case it stopped at the window's
        maximum.
        """
        new = start.copy()
        old = np.full(start.shape[0], 0.4)
        steps = np.zeros(start.shape[0], dtype=np.int64)
        active = np.flatnonzero((new > -18) & (np.abs(new - old) > 1e-6))
        ks, ns = ks[active], ns[active]
        while active.size:
            kap = new[active]
            score, info = self.score_info(kap, ks, ns)
            moved = kap + score / info
            old[active], new[active] = kap, moved
            steps[active] += 1
            going = (moved > -18) & (np.abs(moved - kap) > 1e-6) & (steps[active] < 1000)
            if not going.all():
                active, ks, ns = active[going], ks[going], ns[going]
        converged = (steps > 0) & (new > -18) & (np.abs(new - old) <= 1e-6)
        return new, converged


def _chunk_in_sequence(
    chunk: _Chunk, x: FloatArray, mu0: FloatArray, alpha: float, direction: float
) -> FloatArray:
    """GLR of the chunk's weeks, change point by change point, as the C code runs."""
    b = int(chunk.ns[-1]) + 1
    kappa = np.zeros(chunk.ns.shape[0])
    last_k = np.full(chunk.ns.shape[0], -2)
    best = np.where(chunk.in_window.any(axis=1), 0.0, -1e99)
    for k in np.flatnonzero(chunk.searched.any(axis=0)):
        rows = np.flatnonzero(chunk.searched[:, k])
        start = np.where(
            last_k[rows] == k - 1, kappa[rows], np.where(chunk.low[rows] == k, 0.5, 0.0)
        )
        mask = (np.arange(k, b)[None, :] <= chunk.ns[rows, None]).astype(np.float64)
        xw = np.broadcast_to(x[k:b], mask.shape)
        mw = np.broadcast_to(mu0[k:b], mask.shape)
        kap = direction * np.fmax(0.0, direction * _newton(start, xw, mw, mask, alpha))
        kappa[rows], last_k[rows] = kap, k
        best[rows] = np.maximum(best[rows], _log_glr(kap, xw, mw, mask, alpha))
    return np.asarray(best, dtype=np.float64)


def _clip(kappa: FloatArray, direction: float) -> FloatArray:
    """The package's ``dir * fmax(0, dir * kappa)`` (NaN becomes 0)."""
    return np.asarray(direction * np.fmax(0.0, direction * kappa), dtype=np.float64)


def _bounds(
    a: FloatArray, score: FloatArray, info: FloatArray, lnk: FloatArray, scale: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Bounds on a window's maximum ``r`` and on ``l_{n,k}(r)`` from one point ``a``.

    Given the score, information and ``l_{n,k}`` at ``a``: (lowest r, highest r,
    highest and lowest ``l_{n,k}(r)``), infinite where they say nothing. ``scale``
    (the sum of ``x + 1/alpha`` over the window) sizes the rounding allowance.
    """
    with np.errstate(all="ignore"):
        size = np.abs(score)
        d = size / info
        near = np.log1p(d)  # r lies at least this far from a, at most `far`
        short = d < 1.0
        far = np.negative(np.log1p(np.negative(d)))
        long = ~short
        some_long = bool(long.any())
        if some_long:
            far[long] = np.inf
        rising = score > 0
        # l(r) - l(a) lies between the integrals of the score's bounds.
        upper = lnk + far * (size - info) + size
        if some_long:
            upper[long] = np.inf
        lower = lnk + near * (size + info) - size
        unusable = ~(np.isfinite(lower) & (info > 0))
        wide = 1.0 + np.abs(a)
        scaled = 1e-11 * scale
        slack = 1e-9 * wide + scaled / info
        rounding = 1e-9 * np.abs(lnk) + scaled * wide
        lo = a + np.where(rising, near, -far)
        hi = a + np.where(rising, far, -near)
        lo -= slack
        hi += slack
        upper += rounding
        lower -= rounding
        if unusable.any():
            lo[unusable] = -np.inf
            hi[unusable] = np.inf
            upper[unusable] = np.inf
            lower[unusable] = -np.inf
    return lo, hi, upper, lower


# Outcome of the package's search of a window from a given start.
_FAIL = 0  # stopped without converging, at a kappa that clips to 0
_OK = 1  # converged to the window's maximum
_ODD = -1  # anything else (the chart then follows the package window by window)
_UNKNOWN = -2
Codes = npt.NDArray[np.int8]


class _Block:
    """The windows ``k..n`` (``k >= first_k``) of a block of weeks ``n``, for the chart.

    The package searches kappa for the windows of week ``n`` in order of ``k``,
    each search started where the previous one stopped (0.5 for the first
    window). Two facts let the windows be handled side by side.

    The information ``I(kappa)`` changes by at most a factor ``e^|d|`` over a
    distance ``d`` (``|d log I / d kappa| <= 1``). So (i) the Newton-Raphson
    converges to the window's unique maximum ``r`` from any start within 1 of
    ``r`` (a step from an error ``e`` leaves at most ``e^|e| - 1 - |e| < 0.72 |e|``),
    and (ii) the score ``S_a`` and information ``I_a`` at one point ``a`` bound
    ``r`` to ``[a + log(1 + d), a - log(1 - d)]`` (``d = S_a / I_a > 0``; mirrored
    for ``d < 0``) and ``l_{n,k}(r)`` between the integrals of the matching
    bounds of the score. Every window is evaluated once at its Poisson estimate;
    the maximum is solved exactly only for the windows that may hold the week's
    largest ``l_{n,k}``, and a search is followed step by step only where its start
    may lie 1 or more from ``r``.

    A search that does not converge stops at a kappa that clips to 0 (NaN past an
    overflow, or below -18), so the next window starts from 0: with the outcome
    of each window from its predecessor's maximum and from 0, the chain of starts
    of every week is a two-state automaton, solved with cumulative sums. A
    window whose score at ``kappa = 0`` does not point in the monitored direction
    has its maximum on the other side of 0; whatever its start, the search ends
    clipped at 0 with ``l_{n,k} = 0`` and the next window starts from 0.
    """

    MARGIN = 1.0 - 1e-9

    def __init__(
        self,
        calculus: _WindowCalculus,
        first_row: int,
        end_row: int,
        first_k: int,
        control: GlrNbControl,
    ) -> None:
        direction = 1.0 if control.direction == "inc" else -1.0
        self.calculus, self.direction = calculus, direction
        self.rows = np.arange(first_row, end_row)
        self.ks = np.arange(first_k, end_row)
        alpha = calculus.alpha
        shape = (self.rows.shape[0], self.ks.shape[0])
        columns = shape[1]
        score_at_zero = calculus.score_at_zero
        s0 = score_at_zero[self.rows + 1][:, None] - score_at_zero[self.ks][None, :]
        # Change points k <= n - (Mtilde - 1) are the only ones ever searched.
        possible = self.ks[None, :] <= self.rows[:, None] - (control.mtilde - 1)
        self.side = possible & (direction * s0 > 0)
        # Windows are numbered in row-major order of their cells.
        cells = np.flatnonzero(self.side)
        ri, ci = np.divmod(cells, columns)
        self.wn, self.wk = self.rows[ri], self.ks[ci]
        count = cells.shape[0]
        self.flat = np.full(shape, -1, dtype=np.int64)
        self.flat.reshape(-1)[cells] = np.arange(count)
        cum_x, cum_mu = calculus.cum_x, calculus.cum_mu
        cases = cum_x[self.wn + 1] - cum_x[self.wk]
        with np.errstate(divide="ignore"):
            self.guess = np.log(cases / (cum_mu[self.wn + 1] - cum_mu[self.wk]))
        length = (self.wn - self.wk + 1).astype(np.float64)
        scale = cases + length / alpha
        bounds = _bounds(*calculus.at_grid(self.guess, self.wk, self.wn), scale)
        self.lo, self.hi, self.upper, self.lower = bounds
        self.root = np.full(count, np.nan)
        self.value = np.full(count, np.nan)
        self.found = np.zeros(count, dtype=bool)
        self.solved = np.zeros(count, dtype=bool)
        # Windows without a case (monitored downwards): every search steps down
        # past -18 and stops, and the searches of the shorter windows after it start
        # and stop there. l_{n,k} there is its supremum sum log(1 + alpha mu0) / alpha
        # less at most sum mu0 e^-18 (about 1e-7 relative).
        self.empty = (cases == 0) & (direction < 0)
        if self.empty.any():
            e = np.flatnonzero(self.empty)
            cum_log = np.concatenate([[0.0], np.cumsum(np.log1p(alpha * calculus.mu0))])
            value = (cum_log[self.wn[e] + 1] - cum_log[self.wk[e]]) / alpha
            self.solved[e] = self.found[e] = True
            self.root[e], self.value[e] = -np.inf, value
            self.upper[e], self.lower[e] = value, value
        # Outcome of each window started from its predecessor's maximum (from 0
        # when the predecessor's maximum is on the other side of 0).
        # Each window's predecessor (-1: none, or the first column); index -1 of the
        # bounds extended by 0 gives the package's start 0 there.
        later = ci > 0
        p = np.where(later, self.flat.reshape(-1)[cells - 1], -1)
        p_lo = np.append(self.lo, 0.0)[p]
        p_hi = np.append(self.hi, 0.0)[p]
        safe = (np.fmax(self.hi - p_lo, p_hi - self.lo) < self.MARGIN) & (self.lo > -17)
        safe &= (p_hi < 0.4 - 1e-6) | (p_lo > 0.4 + 1e-6)
        codes = np.where(safe, _OK, _UNKNOWN).astype(np.int8)
        todo = np.flatnonzero(~safe & later)
        # The best lower bound among the windows of each week from each change point on.
        lower = np.full(shape, -np.inf)
        lower.reshape(-1)[cells] = self.lower
        self.best_after = np.maximum.accumulate(lower[:, ::-1], axis=1)[:, ::-1]
        self.cells, self.ri, self.ci, self.possible = cells, ri, ci, possible
        # The chart restarts at the first change point or after an alarm: without a
        # limit M, only after a week whose windows may reach c_arl.
        if control.m == -1:
            restart = first_row + 1 - first_k
            may_alarm = np.zeros(columns + 1, dtype=bool)
            may_alarm[ri[self.upper >= control.c_arl * (1.0 - 1e-6)] + restart] = True
            self.starts = may_alarm[:columns]
            self.starts[0] = True
        else:
            self.starts = np.ones(columns, dtype=bool)
        candidates = self._candidates()
        if todo.size:
            tw, tp = todo, p[todo]
            # The predecessors' maxima, solved with the windows `_prepare` needs.
            self._solve(np.concatenate([tp[tp >= 0], candidates]))
            usable = (tp < 0) | self.found[np.maximum(tp, 0)]
            codes[todo[~usable]] = _FAIL  # never used: the predecessor fails
            start = np.where(tp >= 0, self.root[np.maximum(tp, 0)], 0.0)
            codes[todo[usable]] = self._outcomes(start[usable], tw[usable])
        self.after = np.full(shape, _UNKNOWN, dtype=np.int8)
        self.after.reshape(-1)[cells[later]] = codes[later]
        # Outcomes from the package's 0.5 (first window of a week) and from 0; a
        # search from 0.5 within 1 of the maximum converges (see _outcomes).
        self.half = np.full(shape, _UNKNOWN, dtype=np.int8)
        self.zero = np.full(shape, _UNKNOWN, dtype=np.int8)
        converges = (np.fmax(self.hi - 0.5, 0.5 - self.lo) < self.MARGIN) & (self.lo > -17.0)
        self.half.reshape(-1)[cells[converges | self.empty]] = _OK
        self._prepare(candidates)
        # The last column of each week whose search from its predecessor's maximum
        # may not converge.
        stalls = np.flatnonzero(later & (codes != _OK))
        self.last_stall = np.full(shape[0], -1, dtype=np.int64)
        np.maximum.at(self.last_stall, ri[stalls], ci[stalls])

    def _candidates(self) -> IntArray:
        """The windows that may hold their week's largest ``l_{n,k}`` (see ``_prepare``)."""
        column = np.arange(self.starts.shape[0])
        latest = np.maximum.accumulate(np.where(self.starts, column, 0))
        return np.flatnonzero(self.upper >= self.best_after[self.ri, latest[self.ci]])

    def _prepare(self, candidates: IntArray | None = None) -> None:
        """Solve the windows that may hold their week's largest ``l_{n,k}`` and set ``suffix``.

        For a chart (re)started at a column of ``starts``, the candidates are the
        windows whose bound reaches the best lower bound among the windows of the
        week from that start on; ``suffix[row, c]`` is then the week's GLR for a
        chart started at any ``c`` of ``starts``.
        """
        if candidates is None:
            candidates = self._candidates()
        self._solve(candidates)
        if not self.found[candidates].all() and not self.starts.all():
            # A search failed: the shorter windows may decide, as for any start.
            self._solve(np.flatnonzero(self.upper >= self.best_after[self.ri, self.ci]))
            self.starts[:] = True
        # Where every search after the first of a week converges (the usual case),
        # the week's GLR for a chart started at k is the largest l_{n,k'} over
        # k' >= k: l at the maximum for the windows solved, 0 for the windows
        # whose maximum is on the other side of 0. Windows not solved cannot hold
        # that largest value (a later window's lower bound exceeds their bound).
        best = np.where(self.possible, 0.0, -np.inf)
        best.reshape(-1)[self.cells] = np.where(self.found, self.value, -np.inf)
        self.suffix = np.maximum.accumulate(best[:, ::-1], axis=1)[:, ::-1]

    def _solve(self, ws: IntArray) -> None:
        """Find the maximum ``r`` and ``l_{n,k}(r)`` of windows ``ws`` (flat indices).

        Newton-Raphson from the middle of the window's bounds on ``r`` until a step
        is below 1e-6; ``r`` is then that last step's end and ``l(r)`` is
        ``l + S^2 / (2 I)`` at its start (both to about 1e-12).
        """
        ws = ws[~self.solved[ws]]
        if not ws.size:
            return
        if ws.size > 1 and not (ws[1:] > ws[:-1]).all():
            ws = np.unique(ws)
        self.solved[ws] = True
        lo, hi = self.lo[ws], self.hi[ws]
        kappa = np.where(hi - lo < 2.0, 0.5 * (lo + hi), self.guess[ws])
        calculus = self.calculus
        # The sums around a grid point serve every step that stays nearest to it.
        sums, position, inside = calculus.expansion(kappa, self.wk[ws], self.wn[ws])
        for _ in range(100):
            score, info, lnk = calculus.evaluate(sums, position, inside, kappa)
            step = score / info
            moved = kappa + step
            done = np.abs(step) <= 1e-6  # False for NaN
            if done.any():
                w = ws[done]
                self.found[w] = True
                self.root[w] = moved[done]
                self.value[w] = (lnk + 0.5 * score * step)[done]
            going = ~done & (moved > -40.0) & (moved < 700.0)
            if not going.any():
                break
            if not going.all():
                ws, moved = ws[going], moved[going]
                sums, position, inside = sums[:, going], position[going], inside[going]
            kappa = moved
            shifted = np.flatnonzero(np.rint(kappa / calculus.STEP) != position)
            if shifted.size:
                w = ws[shifted]
                sums[:, shifted], position[shifted], inside[shifted] = calculus.expansion(
                    kappa[shifted], self.wk[w], self.wn[w]
                )

    def _outcomes(self, start: FloatArray, ws: IntArray) -> Codes:
        """How the package's search of windows ``ws`` ends from ``start``."""
        lo, hi = self.lo[ws], self.hi[ws]
        # Starts within 1e-6 of the package's initial 0.4, or at or below -18, end
        # the search before its first step.
        safe = (np.fmax(hi - start, start - lo) < self.MARGIN) & (lo > -17.0)
        safe &= np.abs(start - 0.4) > 1e-6
        safe |= self.empty[ws]
        codes = np.where(safe, _OK, _ODD).astype(np.int8)
        todo = np.flatnonzero(~safe)
        if todo.size:
            tw = ws[todo]
            end, converged = self.calculus.newton(start[todo], self.wk[tw], self.wn[tw])
            stop = _clip(end, self.direction)
            codes[todo] = np.where(converged, _OK, np.where(stop == 0.0, _FAIL, _ODD))
            self._record(tw[converged & ~self.solved[tw]], end[converged & ~self.solved[tw]])
        return codes

    def _record(self, ws: IntArray, roots: FloatArray) -> None:
        if ws.size:
            ws, first = np.unique(ws, return_index=True)
            roots = roots[first]
            self.solved[ws] = self.found[ws] = True
            self.root[ws] = roots
            self.value[ws] = self.calculus.log_glr(roots, self.wk[ws], self.wn[ws])

    def _fill(self, table: Codes, ri: IntArray, ci: IntArray, start: float) -> None:
        """Outcomes from a fixed ``start`` of windows (ri, ci) not yet known."""
        unknown = table[ri, ci] == _UNKNOWN
        if unknown.any():
            ri, ci = ri[unknown], ci[unknown]
            table[ri, ci] = self._outcomes(np.full(ri.shape[0], start), self.flat[ri, ci])

    def _fill_part(
        self, table: Codes, mask: BoolArray, part: tuple[slice, slice], start: float
    ) -> None:
        ri, ci = np.nonzero(mask)
        if ri.size:
            self._fill(table, ri + part[0].start, ci + part[1].start, start)

    def _clean(self, at: IntArray, first: IntArray, any_window: BoolArray) -> FloatArray | None:
        """The GLR of rows ``at`` whose windows from column ``first`` all converge, else None."""
        first = np.where(any_window, first, 0)
        if not self.starts[first].all():
            self.starts[first] = True
            self._prepare()
        starts = any_window & self.side[at, first]
        half = self.half[at, first]
        unknown = starts & (half == _UNKNOWN)
        if unknown.any():
            self._fill(self.half, at[unknown], first[unknown], 0.5)
            half = self.half[at, first]
        if not ((self.last_stall[at] <= first) & (~starts | (half == _OK))).all():
            return None
        return np.where(any_window, self.suffix[at, first], -1e99)

    def _clean_column(
        self, column: int, start: int, stop: int, windowless: int
    ) -> FloatArray | None:
        """``_clean`` of rows ``start..stop - 1`` that all start at ``column`` (no limit M).

        The first ``windowless`` of these rows have no window yet (Mtilde > 1).
        """
        begin = start + windowless
        stall = self.last_stall[start:stop]
        if (stall[:windowless] > 0).any() or (stall[windowless:] > column).any():
            return None
        if begin < stop and not self.starts[column]:
            self.starts[column] = True
            self._prepare()
        side = self.side[begin:stop, column]
        half = self.half[begin:stop, column]
        unknown = np.flatnonzero(side & (half == _UNKNOWN))
        if unknown.size:
            self._fill(self.half, unknown + begin, np.full(unknown.shape[0], column), 0.5)
            half = self.half[begin:stop, column]
        if not (half[side] == _OK).all():
            return None
        values = np.empty(stop - start)
        values[:windowless] = -1e99
        values[windowless:] = self.suffix[begin:stop, column]
        return values

    def glr(
        self, offset: int, from_row: int, to_row: int, control: GlrNbControl
    ) -> FloatArray | None:
        """GLR of weeks ``from_row..to_row - 1``, the chart having started at ``offset``.

        None when a search ends somewhere other than at its maximum or clipped to 0.
        """
        first_row = int(self.rows[0])
        rows = self.rows[from_row - first_row : to_row - first_row]
        if control.m == -1:
            fast = self._clean_column(
                offset - int(self.ks[0]),
                from_row - first_row,
                to_row - first_row,
                min(max(offset + control.mtilde - 1 - from_row, 0), to_row - from_row),
            )
            if fast is not None:
                return fast
        low = (
            np.full_like(rows, offset) if control.m == -1 else np.maximum(offset, rows - control.m)
        )
        up = rows - (control.mtilde - 1)
        if control.m != -1:
            fast = self._clean(rows - first_row, low - int(self.ks[0]), low <= up)
            if fast is not None:
                return fast
        # Only these rows, and the columns from the earliest change point to the last week.
        part = (
            slice(from_row - first_row, to_row - first_row),
            slice(max(0, int(low.min()) - int(self.ks[0])), to_row - int(self.ks[0])),
        )
        ks = self.ks[part[1]]
        window = (ks[None, :] >= low[:, None]) & (ks[None, :] <= up[:, None])
        searched = window & self.side[part]
        first = window & (ks[None, :] == low[:, None])
        self._fill_part(self.half, searched & first, part, 0.5)
        from_ideal = np.where(first, self.half[part], self.after[part])
        if (from_ideal[searched] == _ODD).any():
            return None
        ideal_ok = from_ideal == _OK
        if ideal_ok[searched].all():
            ok = searched
        else:
            troubled = (searched & ~ideal_ok).any(axis=1)
            need = searched & ~first & troubled[:, None]
            self._fill_part(self.zero, need, part, 0.0)
            zero = self.zero[part]
            if (zero[need] == _ODD).any():
                return None
            zero_ok = np.where(need, zero == _OK, ideal_ok)
            # Two states after each window: the next search starts from this
            # window's maximum (True) or from 0 (False).
            reset = first | (window & ~searched) | (searched & (ideal_ok == zero_ok))
            reset_to = searched & ideal_ok
            flip = searched & ~first & ~ideal_ok & zero_ok
            column = np.arange(ks.shape[0])
            last = np.maximum.accumulate(np.where(reset, column, 0), axis=1)
            flips = np.cumsum(flip, axis=1)
            parity = (flips - np.take_along_axis(flips, last, axis=1)) % 2 == 1
            state = np.take_along_axis(reset_to, last, axis=1) ^ parity
            before = np.concatenate(
                [np.zeros((rows.shape[0], 1), dtype=bool), state[:, :-1]], axis=1
            )
            ok = searched & np.where(first | before, ideal_ok, zero_ok)
        base = np.where(window.any(axis=1), 0.0, -1e99)
        ri, ci = np.nonzero(ok)
        if not ri.size:
            return base
        w = self.flat[part][ri, ci]
        best_lower = base.copy()
        np.maximum.at(best_lower, ri, self.lower[w])
        pick = self.upper[w] >= best_lower[ri]
        self._solve(w[pick])
        if not self.found[w[pick]].all():
            return None
        best = base.copy()
        np.maximum.at(best, ri[pick], self.value[w[pick]])
        return best


def _in_sequence(
    calculus: _WindowCalculus, offset: int, rows: IntArray, control: GlrNbControl, direction: float
) -> FloatArray:
    """GLR of weeks ``rows`` (chart started at ``offset``), window by window as the C code."""
    x, mu0, alpha = calculus.x[offset:], calculus.mu0[offset:], calculus.alpha
    ns = rows - offset
    low = np.zeros_like(ns) if control.m == -1 else np.maximum(0, ns - control.m)
    up = ns - (control.mtilde - 1)
    ks = np.arange(int(ns[-1]) + 1)
    in_window = (low[:, None] <= ks[None, :]) & (ks[None, :] <= up[:, None])
    score_at_zero = np.concatenate([[0.0], np.cumsum((x - mu0) / (1.0 + alpha * mu0))])
    s0 = score_at_zero[ns + 1][:, None] - score_at_zero[ks][None, :]
    chunk = _Chunk(ns, low, in_window, in_window & (direction * s0 > 0))
    return _chunk_in_sequence(chunk, x, mu0, alpha, direction)


def _chart(calculus: _WindowCalculus, control: GlrNbControl) -> tuple[FloatArray, BoolArray]:
    """The package's chart with restarts: GLR statistic and alarms of every week."""
    n_weeks = calculus.x.shape[0]
    direction = 1.0 if control.direction == "inc" else -1.0
    n0 = max(control.mtilde - 1, 0)
    glr = np.zeros(n_weeks)
    alarm = np.zeros(n_weeks, dtype=bool)
    offset, row = 0, n0
    block: _Block | None = None
    span = _SPAN
    while row < n_weeks:
        if block is None or row > block.rows[-1]:
            end = min(row + _BLOCK, n_weeks)
            first_k = offset if control.m == -1 else max(offset, row - control.m)
            block = _Block(calculus, row, end, first_k, control)
        # Weeks are taken a few at a time after an alarm (alarms come in runs),
        # more and more while there is none.
        stop = min(row + span, int(block.rows[-1]) + 1)
        values = block.glr(offset, row, stop, control)
        if values is None:
            values = _in_sequence(calculus, offset, np.arange(row, stop), control, direction)
        hits = np.flatnonzero(values >= control.c_arl)
        if hits.size:
            at = row + int(hits[0])
            glr[row : at + 1] = values[: hits[0] + 1]
            alarm[at] = True
            offset = at + 1
            row = offset + n0
            span = _SPAN
        else:
            glr[row:stop] = values
            row = stop
            span *= 2
    return glr, alarm


def _counts(observed: Any) -> IntArray:
    """The weekly counts as int64, checked in one pass (``as_counts`` names a bad week)."""
    values = np.asarray(observed, dtype=np.float64)
    if values.ndim == 1 and bool(
        np.all(np.isfinite(values) & (values >= 0) & (values == np.floor(values)))
    ):
        return values.astype(np.int64)
    return as_counts(observed)


def glrnb(
    observed: Any,
    control: GlrNbControl | None = None,
    week_range: tuple[int, int] | None = None,
) -> DetectionTable:
    """Run the negative-binomial GLR CUSUM on one weekly series.

    ``week_range`` is the inclusive, 1-based range of weeks to monitor; the
    in-control model is fitted to the weeks before it (default: start after
    one year, week ``freq + 1``).
    """
    control = control or GlrNbControl()
    counts = _counts(observed)
    minimum = control.n_coefficients + 2
    if week_range is None:
        weeks = evaluation_weeks(counts.shape[0], control.freq + 1, None, "glrnb")
    else:
        weeks = evaluation_weeks(counts.shape[0], minimum, week_range, "glrnb")
    first = int(weeks[0])
    mu0_all, alpha = in_control_mean(counts, first, int(weeks[-1]), control)
    x = counts[weeks - 1].astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        statistic, alarm = _chart(_WindowCalculus(x, mu0_all, alpha), control)
    statistic = np.where(np.isfinite(statistic) & (statistic > 0), statistic, 0.0)
    return DetectionTable(
        method="glrnb",
        week=weeks,
        observed=counts[weeks - 1],
        expected=mu0_all,
        upperbound=statistic,
        alarm=alarm,
        score=statistic.copy(),
    )


def estimated_alpha(observed: Any, control: GlrNbControl, first_week: int) -> float:
    """The dispersion ``glrnb`` uses when monitoring starts at ``first_week``."""
    counts = as_counts(observed)
    return in_control_mean(counts, first_week, first_week, control)[1]
