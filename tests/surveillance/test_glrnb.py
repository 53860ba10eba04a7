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


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    alpha=st.sampled_from([0.05, 0.3, 1.0]),
    direction=st.sampled_from(["inc", "dec"]),
    m=st.sampled_from([-1, 12]),
    offset=st.sampled_from([0, 7, 45]),
)
def test_block_search_equals_the_package_window_by_window(
    seed: int, alpha: float, direction: str, m: int, offset: int
) -> None:
    from linkwatch.surveillance.glrnb import _Block, _in_sequence, _WindowCalculus

    rng = np.random.default_rng(seed)
    mu0 = rng.uniform(0.5, 8.0, 60)
    x = rng.poisson(mu0 * rng.choice([1.0, 2.5], size=60)).astype(np.float64)
    control = GlrNbControl(alpha=alpha, m=m, direction=direction)
    sign = 1.0 if direction == "inc" else -1.0
    with np.errstate(all="ignore"):
        calculus = _WindowCalculus(x, mu0, alpha)
        # The block is built before the chart restarts at `offset` (an alarm).
        block = _Block(calculus, 40, 60, 0 if m == -1 else 40 - m, control)
        first = max(40, offset)
        fast = block.glr(offset, first, 60, control)
        slow = _in_sequence(calculus, offset, np.arange(first, 60), control, sign)
    if fast is not None:
        # Monitoring downwards, a window without cases is valued at its supremum;
        # the package stops its search at kappa ~ -18, within a relative e^-18.
        tolerance = 1e-9 if direction == "inc" else 1e-7
        np.testing.assert_allclose(fast, slow, rtol=tolerance, atol=1e-9)


def test_searches_that_overflow_end_at_zero_as_in_the_package() -> None:
    # A baseline of ~1e-12 (no cases in training) makes every Newton-Raphson
    # search from 0.5 or 0 overflow: the package's statistic stays 0.
    from linkwatch.surveillance.glrnb import _Block, _in_sequence, _WindowCalculus

    rng = np.random.default_rng(2)
    x = rng.poisson(3.0, 50).astype(np.float64)
    mu0 = np.full(50, 2.3e-12)
    control = GlrNbControl(alpha=0.5)
    with np.errstate(all="ignore"):
        calculus = _WindowCalculus(x, mu0, 0.5)
        fast = _Block(calculus, 0, 50, 0, control).glr(0, 0, 50, control)
        slow = _in_sequence(calculus, 0, np.arange(50), control, 1.0)
    assert fast is not None
    np.testing.assert_array_equal(fast, slow)
    assert np.all(fast == 0.0)


def test_weeks_without_cases_when_monitoring_downwards() -> None:
    # A drop to zero: the windows without a case end their searches below -18.
    from linkwatch.surveillance.glrnb import _Block, _in_sequence, _WindowCalculus

    rng = np.random.default_rng(4)
    mu0 = rng.uniform(2.0, 6.0, 80)
    x = rng.poisson(mu0).astype(np.float64)
    x[55:68] = 0.0
    control = GlrNbControl(alpha=0.3, direction="dec")
    with np.errstate(all="ignore"):
        calculus = _WindowCalculus(x, mu0, 0.3)
        fast = _Block(calculus, 40, 80, 0, control).glr(0, 40, 80, control)
        slow = _in_sequence(calculus, 0, np.arange(40, 80), control, -1.0)
    assert fast is not None
    assert slow[27] > 5.0  # the drop is clear by week 67
    np.testing.assert_allclose(fast, slow, rtol=1e-7, atol=1e-9)


def test_the_chart_restarts_after_each_alarm_as_a_fresh_run() -> None:
    # Monitoring from the week after an alarm gives the same statistic as the
    # chart continuing after that alarm.
    counts, _ = simulate_series(SCENARIO, 260, seed=21, outbreak_starts=(150, 200), outbreak_k=5)
    control = GlrNbControl(alpha=0.2, c_arl=4.0)
    table = glrnb(counts, control, (105, 260))
    alarms = table.week[table.alarm]
    assert alarms.size >= 2
    from linkwatch.surveillance.glrnb import _chart, _WindowCalculus

    first = int(alarms[0]) - 105 + 1
    with np.errstate(all="ignore"):
        rest, rest_alarm = _chart(
            _WindowCalculus(table.observed[first:].astype(np.float64), table.expected[first:], 0.2),
            control,
        )
    np.testing.assert_allclose(table.score[first:], np.where(rest > 0, rest, 0.0), rtol=1e-12)
    np.testing.assert_array_equal(table.alarm[first:], rest_alarm)


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


@pytest.mark.parametrize("seed", [0, 3, 8, 21])
@pytest.mark.parametrize("phi", [1.0, 1.2, 4.0])
def test_negative_binomial_fit_stops_where_the_package_stopping_rule_does(
    seed: int, phi: float
) -> None:
    # glm.nb's alternation evaluated step by step: the log-likelihood at every
    # alternation, theta.ml at every alternation. The fit linkwatch uses gives
    # the same coefficients and shape to the last bit, including near-Poisson
    # counts (phi ~ 1) where the alternation runs long.
    from linkwatch.surveillance.glrnb import (
        GLM_EPSILON,
        GLM_MAXIT,
        _design,
        _glm_nb,
        _irls,
        _nb_loglik,
        _theta_ml,
        _Training,
    )

    scenario = BaselineScenario(theta=1.2, gamma1=0.5, gamma2=-0.3, harmonics=1, phi=phi)
    counts, _ = simulate_series(scenario, 156, seed=seed)
    y = counts.astype(np.float64)
    x = _design(np.arange(1, 157, dtype=np.float64), GlrNbControl())
    data = _Training(y)
    _, mu = _irls(x, data, None, None)
    theta = _theta_ml(data, mu)
    d1 = np.sqrt(2.0 * max(1, y.shape[0] - x.shape[1]))
    delta, loglik = 1.0, _nb_loglik(theta, mu, data)
    loglik_old, beta, it = loglik + 2.0 * d1, np.zeros(x.shape[1]), 0
    while (it := it + 1) <= GLM_MAXIT and abs(loglik_old - loglik) / d1 + abs(delta) > GLM_EPSILON:
        beta, mu_new = _irls(x, data, theta, np.log(mu))
        previous, theta = theta, _theta_ml(data, mu)
        mu, delta = mu_new, previous - theta
        loglik_old, loglik = loglik, _nb_loglik(theta, mu, data)
    fitted_beta, fitted_theta = _glm_nb(x, y)
    assert fitted_theta == theta
    np.testing.assert_array_equal(fitted_beta, beta)


def test_series_monitored_over_the_same_weeks_share_one_read_only_design() -> None:
    # The in-control design of the training and monitored weeks is built once and
    # shared; each series' fit and mu0 are bit for bit those of a design of its own.
    from linkwatch.surveillance.glrnb import _design, _design_between, _glm_nb, in_control_mean

    control = GlrNbControl(harmonics=2)
    shared = _design_between(1, 156, control.trend, control.harmonics, control.freq)
    assert not shared.flags.writeable
    own_train = _design(np.arange(1, 157, dtype=np.float64), control)
    own_test = _design(np.arange(157, 261, dtype=np.float64), control)
    np.testing.assert_array_equal(shared, own_train)
    for seed in (1, 2):
        counts, _ = simulate_series(SCENARIO, 260, seed=seed)
        mu0, alpha = in_control_mean(counts, 157, 260, control)
        beta, theta = _glm_nb(own_train, counts[:156].astype(np.float64))
        np.testing.assert_array_equal(mu0, np.exp(own_test @ beta))
        assert alpha == 1.0 / theta
