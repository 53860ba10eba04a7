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
when the step is below 1e-6, after 1000 steps or below -18. The searches of all
windows of a block of weeks run side by side, and each window's score and
information come from cumulative sums over a grid of ``kappa`` with a Taylor
correction instead of a pass over its weeks (see ``_WindowCalculus``).

The result's ``expected`` is ``mu0``; ``upperbound`` and ``score`` are the GLR
statistic, which is what the package stores as ``upperbound`` in its default
``ret = "value"`` mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

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
# How many monitoring weeks are searched side by side before checking for an alarm.
_CHUNK = 32


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


def _design(weeks: FloatArray, control: GlrNbControl) -> FloatArray:
    columns = [np.ones_like(weeks)]
    if control.trend:
        columns.append(weeks)
    for s in range(1, control.harmonics + 1):
        angle = 2.0 * s * np.pi / control.freq * weeks
        columns += [np.cos(angle), np.sin(angle)]
    return np.column_stack(columns)


def _nb_deviance(y: FloatArray, mu: FloatArray, theta: float | None) -> float:
    if theta is None:
        ratio = np.where(y > 0, y / mu, 1.0)
        return float(2.0 * np.sum(y * np.log(ratio) - (y - mu)))
    return float(
        2.0
        * np.sum(
            y * np.log(np.maximum(1.0, y) / mu) - (y + theta) * np.log((y + theta) / (mu + theta))
        )
    )


def _irls(
    x: FloatArray, y: FloatArray, theta: float | None, eta_start: FloatArray | None
) -> tuple[FloatArray, FloatArray]:
    """R's ``glm.fit`` with log link: Poisson (theta None) or negative binomial."""
    if eta_start is None:
        # The families' `initialize`: poisson starts at y + 0.1, negative.binomial
        # at y + (y == 0) / 6.
        mu = y + 0.1 if theta is None else y + (y == 0) / 6.0
        eta = np.log(mu)
    else:
        eta = eta_start
        mu = np.exp(eta)
    dev_old = _nb_deviance(y, mu, theta)
    beta = np.zeros(x.shape[1])
    for _ in range(GLM_MAXIT):
        variance = mu if theta is None else mu + mu**2 / theta
        weight = np.sqrt(mu**2 / variance)
        z = eta + (y - mu) / mu
        beta = np.linalg.lstsq(x * weight[:, None], z * weight, rcond=None)[0]
        eta = x @ beta
        mu = np.exp(eta)
        dev = _nb_deviance(y, mu, theta)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < GLM_EPSILON:
            break
        dev_old = dev
    return beta, mu


def _theta_ml(y: FloatArray, mu: FloatArray, limit: int = GLM_MAXIT) -> float:
    """MASS's ``theta.ml``: Newton-Raphson for the negative-binomial shape."""
    n = float(y.shape[0])
    eps = np.finfo(float).eps ** 0.25
    t0 = n / float(np.sum((y / mu - 1.0) ** 2))
    delta = 1.0
    it = 1
    while it < limit and abs(delta) > eps:
        t0 = abs(t0)
        score = np.sum(
            special.digamma(t0 + y)
            - special.digamma(t0)
            + np.log(t0)
            + 1.0
            - np.log(t0 + mu)
            - (y + t0) / (mu + t0)
        )
        info = np.sum(
            -special.polygamma(1, t0 + y)
            + special.polygamma(1, t0)
            - 1.0 / t0
            + 2.0 / (mu + t0)
            - (y + t0) / (mu + t0) ** 2
        )
        delta = float(score / info)
        t0 += delta
        it += 1
    return max(t0, 0.0)


def _nb_loglik(theta: float, mu: FloatArray, y: FloatArray) -> float:
    return float(
        np.sum(
            special.gammaln(theta + y)
            - special.gammaln(theta)
            - special.gammaln(y + 1.0)
            + theta * np.log(theta)
            + y * np.log(mu + (y == 0))
            - (theta + y) * np.log(theta + mu)
        )
    )


def _glm_nb(x: FloatArray, y: FloatArray) -> tuple[FloatArray, float]:
    """MASS's ``glm.nb``: alternate IRLS for the mean and ``theta.ml`` for the shape."""
    _, mu = _irls(x, y, None, None)
    theta = _theta_ml(y, mu)
    d1 = np.sqrt(2.0 * max(1, y.shape[0] - x.shape[1]))
    delta = 1.0
    loglik = _nb_loglik(theta, mu, y)
    loglik_old = loglik + 2.0 * d1
    beta = np.zeros(x.shape[1])
    it = 0
    while (it := it + 1) <= GLM_MAXIT and abs(loglik_old - loglik) / d1 + abs(delta) > GLM_EPSILON:
        beta, mu_new = _irls(x, y, theta, np.log(mu))
        previous = theta
        # MASS updates theta with the mean of the previous alternation.
        theta = _theta_ml(y, mu)
        mu = mu_new
        delta = previous - theta
        loglik_old, loglik = loglik, _nb_loglik(theta, mu, y)
    return beta, theta


def in_control_mean(
    counts: IntArray, first_week: int, n_weeks: int, control: GlrNbControl
) -> tuple[FloatArray, float]:
    """``mu0`` for weeks ``first_week..n_weeks`` and the dispersion ``alpha``.

    The model is fitted to weeks ``1..first_week - 1``, as the package's
    ``estimateGLRNbHook`` does.
    """
    train = np.arange(1, first_week, dtype=np.float64)
    y = counts[: first_week - 1].astype(np.float64)
    x = _design(train, control)
    if control.alpha is None:
        beta, theta = _glm_nb(x, y)
        if not np.isfinite(theta) or theta <= 0:
            raise DetectionError(
                "glrnb: the negative-binomial dispersion cannot be estimated from the training "
                "weeks; give alpha"
            )
        alpha = 1.0 / theta
    else:
        beta, _ = _irls(x, y, 1.0 / control.alpha, None)
        alpha = control.alpha
    test = np.arange(first_week, n_weeks + 1, dtype=np.float64)
    return np.exp(_design(test, control) @ beta), alpha


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


def _logistic_derivatives(order: int) -> list[dict[tuple[int, int], float]]:
    """Derivatives of ``s(kappa) = 1 / (1 + c exp(kappa))`` as polynomials in s and t = 1 - s.

    ``ds/dkappa = -s t`` and ``dt/dkappa = s t``, so each derivative of a monomial
    ``s^a t^b`` is ``-a s^a t^(b+1) + b s^(a+1) t^b``. Keeping s and t apart (t is
    computed as ``u / (1 + u)``) avoids the cancellation of ``1 - s`` for small u.
    """
    polys: list[dict[tuple[int, int], float]] = [{(1, 0): 1.0}]
    for _ in range(order):
        nxt: dict[tuple[int, int], float] = {}
        for (i, j), c in polys[-1].items():
            if i:
                nxt[(i, j + 1)] = nxt.get((i, j + 1), 0.0) - i * c
            if j:
                nxt[(i + 1, j)] = nxt.get((i + 1, j), 0.0) + j * c
        polys.append(nxt)
    return polys


class _WindowCalculus:
    """Score, information and ``l_{n,k}`` of any window at any kappa in O(1).

    For kappa on a grid (step 0.05 from -8.05 to 8) the terms of
    ``l_{n,k}``, of the score and of its first derivatives are summed cumulatively
    over the weeks, so that a window's value at a grid point is a difference of
    two cumulative sums; between grid points a Taylor polynomial of order 7 in
    ``delta = kappa - grid point`` (``|delta| <= 0.025``, convergence radius pi)
    gives them to about 1e-15 relative. Kappa outside the grid is evaluated
    directly from the window's weeks.
    """

    STEP = 0.05
    LOW = -161  # grid index of -8.05
    HIGH = 160  # grid index of 8.0
    TERMS = 7

    def __init__(self, x: FloatArray, mu0: FloatArray, alpha: float) -> None:
        self.x, self.mu0, self.alpha = x, mu0, alpha
        self.grid = np.arange(self.LOW, self.HIGH + 1) * self.STEP
        self.polys = _logistic_derivatives(self.TERMS)
        channels = 2 * self.TERMS + 2
        # Grid rows are filled on first use: the searches visit few of them.
        self.cumulative = np.empty((self.grid.shape[0], x.shape[0] + 1, channels))
        self.ready = np.zeros(self.grid.shape[0], dtype=bool)
        self.factorial = np.cumprod(np.concatenate([[1.0], np.arange(1.0, self.TERMS + 1)]))

    def _fill(self, rows: IntArray) -> None:
        x, mu0, alpha = self.x, self.mu0, self.alpha
        grid = self.grid[rows]
        growth = np.exp(grid)[:, None]
        u = alpha * mu0[None, :] * growth
        s_val, t_val = 1.0 / (1.0 + u), u / (1.0 + u)
        c = x + 1.0 / alpha
        s_pow, t_pow = [np.ones_like(u)], [np.ones_like(u)]
        for _ in range(self.TERMS + 1):
            s_pow.append(s_pow[-1] * s_val)
            t_pow.append(t_pow[-1] * t_val)
        terms = np.zeros((rows.shape[0], x.shape[0] + 1, self.TERMS + 2))
        terms[:, 1:, 0] = grid[:, None] * x + c * (np.log1p(alpha * mu0) - np.log1p(u))
        terms[:, 1:, 1] = (x - growth * mu0) * s_val
        for order, poly in enumerate(self.polys[1:], start=2):
            value = np.zeros_like(u)
            for (i, j), coef in poly.items():
                value += coef * (s_pow[i] * t_pow[j])
            terms[:, 1:, order] = c * value
        # Channel 0 is l, channels 1.. hold f^(j) / j! (Taylor coefficients of the
        # score), and the last TERMS channels (j + 1) f^(j+1) / (j + 1)!, those of
        # the score's derivative.
        terms[:, :, 1:] /= self.factorial
        derivative = terms[:, :, 2:] * np.arange(1.0, self.TERMS + 1)
        self.cumulative[rows] = np.cumsum(np.concatenate([terms, derivative], axis=2), axis=1)
        self.ready[rows] = True

    def _sums(
        self, kappa: FloatArray, ks: IntArray, ns: IntArray
    ) -> tuple[FloatArray, FloatArray, BoolArray]:
        position = np.rint(kappa / self.STEP)
        inside = np.isfinite(kappa) & (position >= self.LOW) & (position <= self.HIGH)
        index = np.where(inside, position - self.LOW, 0).astype(np.int64)
        missing = index[inside & ~self.ready[index]]
        if missing.size:
            self._fill(np.unique(missing))
        delta = np.where(inside, kappa - self.grid[index], 0.0)
        sums = self.cumulative[index, ns + 1] - self.cumulative[index, ks]
        return sums, delta, inside

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
        powers = np.vander(delta, self.TERMS, increasing=True)
        t = self.TERMS
        score = np.einsum("ij,ij->i", sums[:, 1 : t + 1], powers)
        info = -np.einsum("ij,ij->i", sums[:, t + 2 :], powers)
        if not inside.all():
            for w in np.flatnonzero(~inside):
                score[w], info[w], _ = self._exact(float(kappa[w]), int(ks[w]), int(ns[w]))
        return score, info

    def log_glr(self, kappa: FloatArray, ks: IntArray, ns: IntArray) -> FloatArray:
        """``l_{n,k}(kappa)`` of each window."""
        sums, delta, inside = self._sums(kappa, ks, ns)
        t = self.TERMS
        powers = np.vander(delta, t + 1, increasing=True)[:, 1:] / np.arange(1.0, t + 1)
        value = sums[:, 0] + np.einsum("ij,ij->i", sums[:, 1 : t + 1], powers)
        for w in np.flatnonzero(~inside):
            value[w] = self._exact(float(kappa[w]), int(ks[w]), int(ns[w]))[2]
        return np.asarray(value, dtype=np.float64)

    def newton(self, start: FloatArray, ks: IntArray, ns: IntArray) -> FloatArray:
        """The package's Newton-Raphson for kappa, one window per entry."""
        new = start.copy()
        old = np.full(start.shape[0], 0.4)
        steps = np.zeros(start.shape[0], dtype=np.int64)
        going = (new > -18) & (np.abs(new - old) > 1e-6)
        while going.any():
            g = np.flatnonzero(going)
            kap = new[g]
            score, info = self.score_info(kap, ks[g], ns[g])
            old[g] = kap
            new[g] = kap + score / info
            steps[g] += 1
            going = (new > -18) & (np.abs(new - old) > 1e-6) & (steps < 1000)
        return new


def _chunk_in_parallel(
    chunk: _Chunk, calculus: _WindowCalculus, offset: int, direction: float
) -> FloatArray | None:
    """GLR of the chunk's weeks with every searched window solved at once.

    Each window's Newton search must start from its predecessor's result, which is
    only known after that search. Converged searches end at the window's unique
    maximum whatever their start, so the searches are run in rounds, each started
    from the previous round's results, until every start equals its predecessor's
    result (to 1e-7); the last round is then what the sequential search computes.
    None when that does not settle within a few rounds.
    """
    rows, local_ks = np.nonzero(chunk.searched)
    ks, ns = local_ks + offset, chunk.ns[rows] + offset
    pair_id = np.full(chunk.searched.shape, -1)
    pair_id[rows, local_ks] = np.arange(rows.shape[0])
    first = local_ks == chunk.low[rows]
    before = np.where(first, -1, pair_id[rows, np.maximum(local_ks - 1, 0)])
    # First round: a window whose predecessor is searched starts from the Poisson
    # estimate log(sum x / sum mu0) of that predecessor, a guess of where the
    # predecessor's search ends.
    cum_x = np.concatenate([[0.0], np.cumsum(calculus.x)])
    cum_mu = np.concatenate([[0.0], np.cumsum(calculus.mu0)])
    prev_k = np.maximum(ks - 1, 0)
    with np.errstate(divide="ignore"):
        guess = np.log((cum_x[ns + 1] - cum_x[prev_k]) / (cum_mu[ns + 1] - cum_mu[prev_k]))
    guess = direction * np.fmax(0.0, direction * guess)
    start = np.where(first, 0.5, np.where(before >= 0, guess, 0.0))
    kap = direction * np.fmax(0.0, direction * calculus.newton(start, ks, ns))
    for _ in range(6):
        implied = np.where(first, 0.5, np.where(before >= 0, kap[np.maximum(before, 0)], 0.0))
        moved = np.abs(implied - start) > 1e-7
        if not moved.any():
            best = np.where(chunk.in_window.any(axis=1), 0.0, -1e99)
            np.maximum.at(best, rows, calculus.log_glr(kap, ks, ns))
            return np.asarray(best, dtype=np.float64)
        # A search's result depends on its start alone: redo only those that moved.
        start = implied
        redo = np.flatnonzero(moved)
        found = calculus.newton(start[redo], ks[redo], ns[redo])
        kap[redo] = direction * np.fmax(0.0, direction * found)
    return None


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


def _glr_until_alarm(
    calculus: _WindowCalculus, offset: int, control: GlrNbControl
) -> tuple[int, FloatArray]:
    """One run of the package's ``glr_nb_window``: 0-based alarm index (or len) and GLR values.

    A window ``k..n`` whose score at ``kappa = 0`` does not point in the monitored
    direction has its (unique) maximum on the other side of 0, so the package's
    Newton search ends clipped at 0 with ``l_{n,k} = 0`` whatever its start. Such
    windows are settled from cumulative sums; the search runs only on the others,
    each started where the package would start it (the previous window's
    estimate, 0 after a settled window, 0.5 for the first window of a week).
    """
    x, mu0, alpha = calculus.x[offset:], calculus.mu0[offset:], calculus.alpha
    length = x.shape[0]
    direction = 1.0 if control.direction == "inc" else -1.0
    mtilde, m = control.mtilde, control.m
    n0 = max(mtilde - 1, 0)
    glr = np.zeros(length)
    score_at_zero = np.concatenate([[0.0], np.cumsum((x - mu0) / (1.0 + alpha * mu0))])
    for a in range(n0, length, _CHUNK):
        b = min(a + _CHUNK, length)
        ns = np.arange(a, b)
        low = np.zeros_like(ns) if m == -1 else np.maximum(0, ns - m)
        up = ns - (mtilde - 1)
        ks = np.arange(b)
        in_window = (low[:, None] <= ks[None, :]) & (ks[None, :] <= up[:, None])
        s0 = score_at_zero[ns + 1][:, None] - score_at_zero[ks][None, :]
        chunk = _Chunk(ns, low, in_window, in_window & (direction * s0 > 0))
        if not chunk.searched.any():
            best = np.where(in_window.any(axis=1), 0.0, -1e99)
        else:
            found = _chunk_in_parallel(chunk, calculus, offset, direction)
            best = (
                found if found is not None else _chunk_in_sequence(chunk, x, mu0, alpha, direction)
            )
        glr[a:b] = best
        hits = np.flatnonzero(best >= control.c_arl)
        if hits.size:
            alarm_at = a + int(hits[0])
            glr[alarm_at + 1 :] = 0.0
            return alarm_at, glr
    return length, glr


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
    counts = as_counts(observed)
    minimum = control.n_coefficients + 2
    if week_range is None:
        weeks = evaluation_weeks(counts.shape[0], control.freq + 1, None, "glrnb")
    else:
        weeks = evaluation_weeks(counts.shape[0], minimum, week_range, "glrnb")
    first = int(weeks[0])
    mu0_all, alpha = in_control_mean(counts, first, int(weeks[-1]), control)
    x = counts[weeks - 1].astype(np.float64)
    statistic = np.zeros(weeks.shape[0])
    alarm: BoolArray = np.zeros(weeks.shape[0], dtype=bool)
    done = 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        calculus = _WindowCalculus(x, mu0_all, alpha)
    while done < weeks.shape[0]:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            at, values = _glr_until_alarm(calculus, done, control)
        if at < values.shape[0]:
            statistic[done : done + at + 1] = values[: at + 1]
            alarm[done + at] = True
            done += at + 1
        else:
            statistic[done:] = values
            done = weeks.shape[0]
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
