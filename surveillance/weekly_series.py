"""Reading and writing one weekly series as CSV (columns ``week`` and ``observed``).

``week`` is either the 1-based index of the week (1, 2, 3, ...) or the ISO date
of the week's Monday (2024-01-01, 2024-01-08, ...). Rows may come in any order;
the weeks must form an unbroken run. A missing week, a repeated week, a date that
is not a Monday, or a count that is empty, negative or not whole is an error that
names the line and the value.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linkwatch.surveillance.detection import DetectionError, DetectionTable, IntArray


@dataclass(frozen=True)
class WeeklySeries:
    """Counts of weeks 1..n, with the labels the input used for them."""

    observed: IntArray
    labels: tuple[str, ...]
    dated: bool


def _parse_count(text: str, line: int) -> int:
    stripped = text.strip()
    try:
        value = float(stripped)
    except ValueError:
        raise DetectionError(f"line {line}: observed={text!r} is not a number") from None
    if not math.isfinite(value):
        raise DetectionError(f"line {line}: observed={text!r} is not a count")
    if value < 0:
        raise DetectionError(f"line {line}: observed={text!r} is negative")
    if value != math.floor(value):
        raise DetectionError(f"line {line}: observed={text!r} is not a whole number")
    return int(value)


def _parse_week(text: str, line: int) -> int | dt.date:
    stripped = text.strip()
    if stripped.isdigit():
        index = int(stripped)
        if index < 1:
            raise DetectionError(f"line {line}: week={text!r} must be 1 or more")
        return index
    try:
        day = dt.date.fromisoformat(stripped)
    except ValueError:
        raise DetectionError(
            f"line {line}: week={text!r} is neither a week number nor an ISO date"
        ) from None
    if day.weekday() != 0:
        raise DetectionError(f"line {line}: week={text!r} is a {day:%A}, not a Monday")
    return day


def read_weekly_series(path: Path) -> WeeklySeries:
    """Read a CSV file with columns ``week`` and ``observed`` into a checked series."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise DetectionError(f"{path}: cannot be read ({exc.strerror})") from None
    with handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        for required in ("week", "observed"):
            if required not in columns:
                raise DetectionError(
                    f"{path}: no {required!r} column (found: {', '.join(columns) or 'none'})"
                )
        reader.fieldnames = columns
        rows: list[tuple[int | dt.date, int, int]] = []
        for line, row in enumerate(reader, start=2):
            week_text, count_text = row.get("week"), row.get("observed")
            if week_text is None or not week_text.strip():
                raise DetectionError(f"{path} line {line}: week is empty")
            if count_text is None or not count_text.strip():
                raise DetectionError(f"{path} line {line}: observed is empty")
            try:
                rows.append((_parse_week(week_text, line), _parse_count(count_text, line), line))
            except DetectionError as exc:
                raise DetectionError(f"{path} {exc}") from None
    if not rows:
        raise DetectionError(f"{path}: no weeks")
    kinds = {isinstance(week, dt.date) for week, _, _ in rows}
    if len(kinds) > 1:
        raise DetectionError(f"{path}: week mixes week numbers and dates")
    dated = kinds == {True}
    rows.sort(key=lambda r: r[0])
    previous: int | dt.date | None = None
    for week, _, line in rows:
        if previous is not None:
            if week == previous:
                raise DetectionError(f"{path} line {line}: week {week} appears twice")
            expected = (
                previous + dt.timedelta(days=7) if isinstance(previous, dt.date) else previous + 1
            )
            if week != expected:
                raise DetectionError(
                    f"{path}: week {expected} is missing "
                    f"(the series jumps from {previous} to {week})"
                )
        previous = week
    first = rows[0][0]
    if not dated and first != 1:
        raise DetectionError(f"{path}: week numbers start at {first}, expected 1")
    return WeeklySeries(
        observed=np.array([count for _, count, _ in rows], dtype=np.int64),
        labels=tuple(str(week) for week, _, _ in rows),
        dated=dated,
    )


def write_detection_csv(path: Path, table: DetectionTable, labels: tuple[str, ...]) -> None:
    """Write one row per evaluated week: week (as labelled in the input) and the results."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["week", "observed", "expected", "upperbound", "alarm", "score"])
        for record in table.as_records():
            writer.writerow(
                [
                    labels[record["week"] - 1],
                    record["observed"],
                    _number(record["expected"]),
                    _number(record["upperbound"]),
                    int(record["alarm"]),
                    _number(record["score"]),
                ]
            )


def _number(value: float) -> str:
    # Empty for undefined values (NaN), full precision otherwise.
    return "" if not math.isfinite(value) else repr(value)
