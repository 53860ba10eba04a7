"""Simulated weekly surveillance series with injected outbreaks.

Baselines follow the design of Noufaily et al. (2013), Statistics in Medicine
32(7):1206-1222, section 4.1: negative-binomial counts with mean
``exp(theta + beta t + sum_j (gamma1 cos(2 pi j t / 52) + gamma2 sin(2 pi j t / 52)))``
and variance ``phi * mean``. Outbreaks start at chosen weeks; each has a size
drawn as Poisson with mean ``k`` times the baseline standard deviation at its
start, and its cases are spread over the following weeks with log-normal delays,
as in that paper. Everything is drawn from one seeded generator, so a scenario
and a seed always give the same series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linkwatch.surveillance.detection import FloatArray, IntArray


@dataclass(frozen=True)
class BaselineScenario:
    """Parameters of the negative-binomial baseline (Noufaily et al. 2013, table 1)."""

    theta: float
    beta: float = 0.0
    gamma1: float = 0.0
    gamma2: float = 0.0
    harmonics: int = 0
    phi: float = 1.0


def baseline_mean(scenario: BaselineScenario, n_weeks: int) -> FloatArray:
    """The expected count of weeks 1..n_weeks."""
    t = np.arange(1, n_weeks + 1, dtype=np.float64)
    log_mean = scenario.theta + scenario.beta * t
    for j in range(1, scenario.harmonics + 1):
        angle = 2.0 * np.pi * j * t / 52.0
        log_mean = log_mean + scenario.gamma1 * np.cos(angle) + scenario.gamma2 * np.sin(angle)
    return np.asarray(np.exp(log_mean), dtype=np.float64)


def simulate_series(
    scenario: BaselineScenario,
    n_weeks: int,
    seed: int,
    outbreak_starts: tuple[int, ...] = (),
    outbreak_k: float = 5.0,
) -> tuple[IntArray, IntArray]:
    """Counts of weeks 1..n_weeks and the number of outbreak cases in each week.

    ``outbreak_starts`` are 1-based weeks; ``outbreak_k`` scales the outbreak size
    in baseline standard deviations.
    """
    rng = np.random.default_rng(seed)
    mean = baseline_mean(scenario, n_weeks)
    if scenario.phi > 1.0:
        counts = rng.negative_binomial(mean / (scenario.phi - 1.0), 1.0 / scenario.phi)
    else:
        counts = rng.poisson(mean)
    extra = np.zeros(n_weeks, dtype=np.int64)
    for start in outbreak_starts:
        sd = np.sqrt(scenario.phi * mean[start - 1])
        size = int(rng.poisson(outbreak_k * sd))
        delays = np.floor(rng.lognormal(0.0, 0.5, size=size)).astype(np.int64)
        weeks = start - 1 + delays
        np.add.at(extra, weeks[weeks < n_weeks], 1)
    return np.asarray(counts + extra, dtype=np.int64), extra
