"""farringtonFlexible's pieces and invariants, without R."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkwatch.surveillance.detection import DetectionError
from linkwatch.surveillance.farrington import (
    FarringtonControl,
    farrington_flexible,
    outbreak_weights,
    reference_design,
)
from linkwatch.surveillance.simulation import BaselineScenario, simulate_series


def test_reference_weeks_are_b_years_back_plus_minus_w() -> None:
    design = reference_design(FarringtonControl(b=2, w=1))
    assert design.offsets.tolist() == [-105, -104, -103, -53, -52, -51]
    assert set(design.periods.tolist()) == {1}


def test_no_periods_covers_every_week_between_windows_and_excludes_recent_weeks() -> None:
    control = FarringtonControl(b=2, w=3, no_periods=10, past_weeks_not_included=26)
    design = reference_design(control)
    assert design.offsets.tolist() == list(range(-107, -26))
    # The 45 weeks between two windows form 9 blocks of 5, in order.
    first_gap = design.periods[(design.offsets >= -100) & (design.offsets <= -56)]
    assert first_gap.tolist() == [j for j in range(1, 10) for _ in range(5)]
    assert design.periods[design.offsets == -52].item() == 10


def test_weights_sum_to_the_number_of_weeks_and_downweight_large_residuals() -> None:
    residuals = np.array([0.1, -1.0, 3.0, 5.0, 0.5])
    weights = outbreak_weights(residuals, 2.58)
    assert weights.sum() == pytest.approx(residuals.size)
    assert weights[3] < weights[2] < weights[0]
    assert weights[0] == weights[1] == weights[4]


def _series(seed: int, outbreak: int | None = None) -> np.ndarray:
    scenario = BaselineScenario(theta=1.5, gamma1=0.4, gamma2=0.2, harmonics=1, phi=1.5)
    starts = () if outbreak is None else (outbreak,)
    counts, _ = simulate_series(scenario, 330, seed=seed, outbreak_starts=starts, outbreak_k=10)
    return counts


def test_large_outbreak_raises_an_alarm_within_three_weeks() -> None:
    table = farrington_flexible(_series(3, outbreak=300), week_range=(290, 330))
    alarm_weeks = table.week[table.alarm]
    assert any(300 <= w <= 302 for w in alarm_weeks), alarm_weeks


def test_limit54_blocks_alarms_and_leaves_the_threshold_undefined() -> None:
    counts = np.zeros(300, dtype=np.int64)
    counts[-1] = 3  # three cases after years of silence: below the 5-in-4-weeks rule
    table = farrington_flexible(counts, week_range=(300, 300))
    assert not table.alarm[0]
    assert np.isnan(table.upperbound[0])
    lenient = farrington_flexible(counts, FarringtonControl(limit54=(0, 4)), week_range=(300, 300))
    assert lenient.alarm[0]


@pytest.mark.parametrize("method", ["delta", "nbPlugin", "muan"])
def test_nothing_alarms_on_a_week_with_zero_cases(method: str) -> None:
    counts = _series(5, outbreak=250)
    counts[-1] = 0
    table = farrington_flexible(counts, FarringtonControl(threshold_method=method))
    assert not table.alarm[-1]


def test_too_short_series_and_bad_range_are_errors_naming_the_week() -> None:
    with pytest.raises(DetectionError, match="needs at least 264"):
        farrington_flexible(np.ones(100, dtype=int))
    with pytest.raises(DetectionError, match="first week with enough history is week 264"):
        farrington_flexible(np.ones(300, dtype=int), week_range=(10, 20))
    with pytest.raises(DetectionError, match="week 7: observed count -1"):
        farrington_flexible([1] * 6 + [-1] + [1] * 300)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"alpha": 1.5}, "alpha"),
        ({"threshold_method": "exact"}, "threshold_method"),
        ({"limit54": (5, 0)}, "limit54"),
        ({"no_periods": 50}, "no_periods"),
        ({"power_trans": "3/4"}, "power_trans"),
    ],
)
def test_bad_controls_name_the_parameter(changes: dict[str, object], message: str) -> None:
    with pytest.raises(DetectionError, match=message):
        FarringtonControl(**changes)  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    method=st.sampled_from(["delta", "nbPlugin", "muan"]),
    no_periods=st.sampled_from([1, 10]),
)
def test_threshold_is_never_below_expected_and_runs_are_deterministic(
    seed: int, method: str, no_periods: int
) -> None:
    counts = _series(seed)
    control = FarringtonControl(threshold_method=method, no_periods=no_periods, limit54=(0, 4))
    first = farrington_flexible(counts, control, week_range=(300, 330))
    again = farrington_flexible(counts, control, week_range=(300, 330))
    defined = ~np.isnan(first.upperbound)
    # The NB quantile is an integer and may round just below a small mean.
    slack = 0.0 if method == "delta" else 1.0
    assert np.all(first.upperbound[defined] + slack >= first.expected[defined])
    assert np.array_equal(first.alarm, again.alarm)
    np.testing.assert_array_equal(first.upperbound, again.upperbound)
    # An alarm means the count exceeds the threshold.
    assert np.all(first.observed[first.alarm] > first.upperbound[first.alarm])
