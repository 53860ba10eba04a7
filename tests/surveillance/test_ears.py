"""EARS C1-C3 against hand computations, and invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from linkwatch.surveillance.detection import DetectionError
from linkwatch.surveillance.ears import ears_c


def test_c1_bound_is_mean_plus_z_sd_of_the_previous_seven_weeks() -> None:
    counts = [2, 4, 3, 5, 1, 2, 4, 20]
    table = ears_c(counts, "C1")
    baseline = np.array(counts[:7], dtype=float)
    z = stats.norm.ppf(0.999)
    assert table.week.tolist() == [8]
    assert table.upperbound[0] == pytest.approx(baseline.mean() + z * baseline.std(ddof=1))
    assert table.alarm[0]


def test_c2_skips_a_two_week_guard_band() -> None:
    counts = [1, 1, 1, 1, 1, 1, 2, 50, 50, 3]
    table = ears_c(counts, "C2", min_sigma=1.0)
    # Week 10's baseline is weeks 1..7, so the spikes in weeks 8-9 do not raise it.
    assert table.week.tolist() == [10]
    baseline = np.array(counts[:7], dtype=float)
    z = stats.norm.ppf(0.999)
    assert table.upperbound[0] == pytest.approx(baseline.mean() + z * max(baseline.std(ddof=1), 1))


def test_c3_alarms_on_two_lagged_exceedances_as_the_package_does() -> None:
    quiet = [3, 4, 3, 5, 4, 3, 4, 3, 4, 5, 3, 4]
    counts = [*quiet, 12, 12, 4]
    table = ears_c(counts, "C3")
    # Week 15 is ordinary, but weeks 13 and 14 exceed their C2 bounds strongly.
    assert table.alarm[-1]
    assert table.score[-1] > 0


def test_flat_baseline_without_min_sigma_leaves_c3_undefined() -> None:
    table = ears_c([2] * 20, "C3")
    assert np.isnan(table.upperbound).all()
    assert not table.alarm.any()


def test_defaults_and_errors() -> None:
    with pytest.raises(DetectionError, match="minimum baseline is 3"):
        ears_c([1] * 20, "C1", baseline=2)
    with pytest.raises(DetectionError, match="needs at least 12"):
        ears_c([1] * 11, "C3")
    with pytest.raises(DetectionError, match="C4"):
        ears_c([1] * 20, "C4")
    with pytest.raises(DetectionError, match="not a whole number"):
        ears_c([1.5] * 20, "C1")


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(0, 200), min_size=12, max_size=60),
    method=st.sampled_from(["C1", "C2", "C3"]),
    min_sigma=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_alarm_is_exactly_observed_above_the_bound(
    counts: list[int], method: str, min_sigma: float
) -> None:
    table = ears_c(counts, method, min_sigma=min_sigma)
    defined = ~np.isnan(table.upperbound)
    assert np.array_equal(table.alarm[defined], table.observed[defined] > table.upperbound[defined])
    assert not table.alarm[~defined].any()
    if method != "C3":
        assert np.all(table.upperbound[defined] >= table.expected[defined])
    again = ears_c(counts, method, min_sigma=min_sigma)
    assert np.array_equal(table.alarm, again.alarm)
