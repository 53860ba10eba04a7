"""The negative-binomial GLR CUSUM: baseline model, chart behaviour and invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkwatch.surveillance.detection import DetectionError
from linkwatch.surveillance.glrnb import GlrNbControl, estimated_alpha, glrnb
from linkwatch.surveillance.simulation import BaselineScenario, baseline_mean, simulate_series

SCENARIO = BaselineScenario(theta=1.5, gamma1=0.6, gamma2=0.3, harmonics=1, phi=2.0)


def test_in_control_mean_recovers_the_seasonal_baseline_and_dispersion() -> None:
    counts, _ = simulate_series(SCENARIO, 520, seed=11)
    table = glrnb(counts, GlrNbControl(), (469, 520))
    truth = baseline_mean(SCENARIO, 520)[468:]
    assert np.max(np.abs(table.expected / truth - 1)) < 0.15
    # Variance phi * mu is NB with alpha = (phi - 1) / mu: about 0.5 / 4.5 here.
    assert 0.03 < estimated_alpha(counts, GlrNbControl(), 469) < 0.3


def test_outbreak_is_detected_and_the_chart_restarts_after_an_alarm() -> None:
    counts, _ = simulate_series(SCENARIO, 260, seed=4)
    counts[200:204] += 25
    table = glrnb(counts, GlrNbControl(), (105, 260))
    alarm_weeks = table.week[table.alarm].tolist()
    assert any(201 <= w <= 203 for w in alarm_weeks), alarm_weeks
    first = table.week.tolist().index(alarm_weeks[0])
    # After the alarm week the statistic starts again from a fresh window.
    assert table.score[first] >= 5.0
    assert table.score[first + 1] < table.score[first]


def test_quiet_series_scores_stay_below_the_threshold_mostly() -> None:
    counts, _ = simulate_series(SCENARIO, 400, seed=8)
    table = glrnb(counts, GlrNbControl(c_arl=8.0), (105, 400))
    assert table.alarm.sum() <= 3


def test_bad_parameters_are_errors() -> None:
    with pytest.raises(DetectionError, match="alpha"):
        GlrNbControl(alpha=0.0)
    with pytest.raises(DetectionError, match="dir"):
        GlrNbControl(direction="up")
    with pytest.raises(DetectionError, match="needs at least 53"):
        glrnb(np.ones(40, dtype=int))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 5000), c_arl=st.sampled_from([3.0, 5.0]))
def test_alarms_are_exactly_the_weeks_where_the_statistic_reaches_c_arl(
    seed: int, c_arl: float
) -> None:
    counts, _ = simulate_series(SCENARIO, 200, seed=seed, outbreak_starts=(170,), outbreak_k=6)
    control = GlrNbControl(alpha=0.2, c_arl=c_arl)
    table = glrnb(counts, control, (105, 200))
    assert np.array_equal(table.alarm, table.score >= c_arl)
    assert np.all(table.score >= 0)
    again = glrnb(counts, control, (105, 200))
    np.testing.assert_array_equal(table.score, again.score)


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    alpha=st.sampled_from([0.05, 0.3, 1.0]),
    direction=st.sampled_from([1.0, -1.0]),
)
def test_parallel_window_search_equals_the_sequential_one(
    seed: int, alpha: float, direction: float
) -> None:
    from linkwatch.surveillance.glrnb import (
        _Chunk,
        _chunk_in_parallel,
        _chunk_in_sequence,
        _WindowCalculus,
    )

    rng = np.random.default_rng(seed)
    mu0 = rng.uniform(0.5, 8.0, 60)
    x = rng.poisson(mu0 * rng.choice([1.0, 2.5], size=60)).astype(np.float64)
    ns = np.arange(40, 56)
    low = np.zeros_like(ns)
    ks = np.arange(56)
    in_window = ks[None, :] <= ns[:, None]
    cum = np.concatenate([[0.0], np.cumsum((x - mu0) / (1 + alpha * mu0))])
    s0 = cum[ns + 1][:, None] - cum[ks][None, :]
    chunk = _Chunk(ns, low, in_window, in_window & (direction * s0 > 0))
    if not chunk.searched.any():
        return
    parallel = _chunk_in_parallel(chunk, _WindowCalculus(x, mu0, alpha), 0, direction)
    sequential = _chunk_in_sequence(chunk, x, mu0, alpha, direction)
    if parallel is not None:
        np.testing.assert_allclose(parallel, sequential, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kappa", [-17.9, -3.21, 0.0, 0.013, 0.5, 2.77, 7.99, 9.5, 30.0])
def test_window_calculus_matches_direct_sums(kappa: float) -> None:
    from linkwatch.surveillance.glrnb import _WindowCalculus

    rng = np.random.default_rng(3)
    mu0 = rng.uniform(0.2, 20.0, 80)
    x = rng.poisson(mu0 * 1.7).astype(np.float64)
    alpha = 0.15
    calculus = _WindowCalculus(x, mu0, alpha)
    ks, ns = np.array([0, 10, 40, 79]), np.array([79, 50, 41, 79])
    score, info = calculus.score_info(np.full(4, kappa), ks, ns)
    lnk = calculus.log_glr(np.full(4, kappa), ks, ns)
    for w in range(4):
        xs, ms = x[ks[w] : ns[w] + 1], mu0[ks[w] : ns[w] + 1]
        scaled = np.exp(kappa) * ms
        direct_score = np.sum((xs - scaled) / (1 + alpha * scaled))
        direct_info = np.exp(kappa) * np.sum(ms * (alpha * xs + 1) / (1 + alpha * scaled) ** 2)
        direct_lnk = np.sum(
            kappa * xs + (xs + 1 / alpha) * np.log((1 + alpha * ms) / (1 + alpha * scaled))
        )
        scale = np.sum(xs + 1 / alpha)
        assert score[w] == pytest.approx(direct_score, rel=1e-10, abs=1e-11 * scale)
        assert info[w] == pytest.approx(direct_info, rel=1e-10, abs=1e-11 * scale)
        assert lnk[w] == pytest.approx(direct_lnk, rel=1e-10, abs=1e-11 * scale)
