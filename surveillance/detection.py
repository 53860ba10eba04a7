"""What every detector returns, and the checks every detector applies to its input.

A detector reads one weekly series of counts and returns one :class:`DetectionTable`:
for each evaluated week its observed count, the expected count under the baseline
model, the upper bound (threshold) above which the week alarms, the alarm itself and
the detector's score. This mirrors what the R package ``surveillance`` keeps in an
``sts`` object (``observed``, ``upperbound``, ``alarm`` and ``control$expected`` /
``control$score``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class DetectionError(ValueError):
    """A series or a parameter a detector cannot work with; the message names it."""


@dataclass(frozen=True)
class DetectionTable:
    """One row per evaluated week of one series.

    ``week`` is the 1-based index of the week in the input series. ``upperbound``
    is NaN where the detector defines no threshold (for example where Farrington's
    ``limit54`` rule finds too few recent cases, as the R package does), and
    ``alarm`` is then false.
    """

    method: str
    week: IntArray
    observed: IntArray
    expected: FloatArray
    upperbound: FloatArray
    alarm: BoolArray
    score: FloatArray

    def __len__(self) -> int:
        return int(self.week.shape[0])

    def to_frame(self) -> pd.DataFrame:
        """The table as a pandas DataFrame with columns week..score (alarm as 0/1)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "week": self.week,
                "observed": self.observed,
                "expected": self.expected,
                "upperbound": self.upperbound,
                "alarm": self.alarm.astype(np.int64),
                "score": self.score,
            }
        )

    def as_records(self) -> list[dict[str, Any]]:
        """The rows as plain dicts, e.g. for JSON or an Avro payload."""
        return [
            {
                "week": int(w),
                "observed": int(o),
                "expected": float(e),
                "upperbound": float(u),
                "alarm": bool(a),
                "score": float(s),
            }
            for w, o, e, u, a, s in zip(
                self.week,
                self.observed,
                self.expected,
                self.upperbound,
                self.alarm,
                self.score,
                strict=True,
            )
        ]


def as_counts(observed: Sequence[float] | npt.ArrayLike) -> IntArray:
    """Validate a series of weekly counts and return it as int64.

    Raises :class:`DetectionError` naming the first week (1-based) whose value is
    missing, negative or not a whole number.
    """
    values = np.asarray(observed, dtype=np.float64)
    if values.ndim != 1:
        raise DetectionError(f"observed must be a one-dimensional series, got shape {values.shape}")
    finite = np.isfinite(values)
    if finite.all() and (values >= 0).all() and (values == np.floor(values)).all():
        return values.astype(np.int64)
    for position, value in enumerate(values, start=1):  # name the first bad week
        if not np.isfinite(value):
            raise DetectionError(f"week {position}: observed count is missing ({value})")
        if value < 0:
            raise DetectionError(f"week {position}: observed count {value:g} is negative")
        if value != np.floor(value):
            raise DetectionError(f"week {position}: observed count {value:g} is not a whole number")
    return values.astype(np.int64)


def evaluation_weeks(
    n_weeks: int, first_possible: int, week_range: tuple[int, int] | None, method: str
) -> IntArray:
    """The 1-based weeks to evaluate, checked against the history a method needs.

    ``first_possible`` is the first week with enough history; ``week_range`` is an
    inclusive (first, last) pair, or None for every week from ``first_possible`` on.
    """
    if n_weeks < first_possible:
        raise DetectionError(
            f"{method}: the series has {n_weeks} weeks but needs at least {first_possible} "
            f"(the first week that can be evaluated is week {first_possible})"
        )
    if week_range is None:
        return np.arange(first_possible, n_weeks + 1, dtype=np.int64)
    first, last = week_range
    if first > last:
        raise DetectionError(f"range {first}:{last} is empty (first week after last week)")
    if last > n_weeks:
        raise DetectionError(f"range {first}:{last} ends after the series' last week {n_weeks}")
    if first < first_possible:
        raise DetectionError(
            f"{method}: range {first}:{last} starts at week {first}, but the first week with "
            f"enough history is week {first_possible}"
        )
    return np.arange(first, last + 1, dtype=np.int64)
