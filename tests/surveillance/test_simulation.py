"""The simulated series used for verification and benchmarks."""

from __future__ import annotations

import numpy as np

from linkwatch.surveillance.simulation import BaselineScenario, baseline_mean, simulate_series

SCENARIO = BaselineScenario(theta=2.0, beta=0.002, gamma1=0.5, gamma2=0.2, harmonics=1, phi=2.0)


def test_same_seed_same_series_and_outbreaks_add_cases_after_their_start() -> None:
    first, extra = simulate_series(SCENARIO, 300, seed=9, outbreak_starts=(100, 250))
    again, _ = simulate_series(SCENARIO, 300, seed=9, outbreak_starts=(100, 250))
    assert np.array_equal(first, again)
    assert extra[:99].sum() == 0
    assert extra[99:110].sum() > 0
    assert extra[249:260].sum() > 0
    assert np.all(first >= extra)


def test_baseline_has_the_scenarios_mean_and_overdispersion() -> None:
    counts, _ = simulate_series(SCENARIO, 20_000, seed=1)
    mean = baseline_mean(SCENARIO, 20_000)
    pearson = np.mean((counts - mean) ** 2 / mean)
    assert abs(counts.mean() / mean.mean() - 1) < 0.02
    assert 1.8 < pearson < 2.2
