"""``linkwatch detect``: the CSV interface and its errors."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from linkwatch.streams.cli import app
from linkwatch.surveillance.farrington import FarringtonControl, farrington_flexible
from linkwatch.surveillance.simulation import BaselineScenario, simulate_series

runner = CliRunner()
COUNTS, _ = simulate_series(
    BaselineScenario(theta=1.2, gamma1=0.5, harmonics=1, phi=1.5),
    320,
    seed=2,
    outbreak_starts=(300,),
)


def _write(path: Path, weeks: list[str], counts: list[str]) -> Path:
    path.write_text(
        "week,observed\n" + "".join(f"{w},{c}\n" for w, c in zip(weeks, counts, strict=True))
    )
    return path


def _series(tmp_path: Path, dated: bool = False) -> Path:
    if dated:
        monday = dt.date(2018, 1, 1)
        weeks = [str(monday + dt.timedelta(weeks=i)) for i in range(len(COUNTS))]
    else:
        weeks = [str(i + 1) for i in range(len(COUNTS))]
    return _write(tmp_path / "series.csv", weeks, [str(c) for c in COUNTS])


def test_farrington_output_matches_the_library(tmp_path: Path) -> None:
    out = tmp_path / "alarms.csv"
    result = runner.invoke(
        app,
        [
            "detect",
            "--method",
            "farrington-flexible",
            "--input",
            str(_series(tmp_path)),
            "--output",
            str(out),
            "--range",
            "290:320",
            "--param",
            "no_periods=10",
            "--param",
            "threshold_method=nbPlugin",
            "--param",
            "limit54=5,4",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["week", "observed", "expected", "upperbound", "alarm", "score"]
    expected = farrington_flexible(
        COUNTS, FarringtonControl(no_periods=10, threshold_method="nbPlugin"), (290, 320)
    )
    assert [int(r["week"]) for r in rows] == expected.week.tolist()
    assert [int(r["alarm"]) for r in rows] == expected.alarm.astype(int).tolist()
    assert f"{int(expected.alarm.sum())} alarm(s)" in result.output


@pytest.mark.parametrize("method", ["ears-c1", "ears-c2", "ears-c3", "glrnb"])
def test_dated_input_keeps_its_dates(tmp_path: Path, method: str) -> None:
    out = tmp_path / "alarms.csv"
    result = runner.invoke(
        app,
        [
            "detect",
            "--method",
            method,
            "--input",
            str(_series(tmp_path, True)),
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert rows[-1]["week"] == str(dt.date(2018, 1, 1) + dt.timedelta(weeks=len(COUNTS) - 1))
    assert {r["alarm"] for r in rows} <= {"0", "1"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "cusum"], "--method 'cusum'"),
        (["--method", "ears-c1", "--param", "lambda=3"], "unknown parameter 'lambda'"),
        (["--method", "ears-c1", "--param", "alpha"], "expected NAME=VALUE"),
        (["--method", "farrington-flexible", "--param", "limit54=5"], "limit54"),
        (["--method", "farrington-flexible", "--param", "trend=maybe"], "trend"),
        (["--method", "farrington-flexible", "--range", "12:30"], "week 264"),
        (["--method", "ears-c1", "--range", "30-40"], "FIRST:LAST"),
        (["--method", "ears-c1", "--range", "30:400"], "ends after"),
    ],
)
def test_bad_arguments_fail_with_one_clear_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(
        app,
        ["detect", "--input", str(_series(tmp_path)), "--output", str(tmp_path / "o.csv"), *args],
    )
    assert result.exit_code == 1
    assert message in result.output


@pytest.mark.parametrize(
    ("weeks", "counts", "message"),
    [
        (["1", "2", "4"], ["1", "2", "3"], "week 3 is missing"),
        (["1", "2", "2"], ["1", "2", "3"], "appears twice"),
        (["1", "2", "3"], ["1", "-2", "3"], "line 3: observed='-2' is negative"),
        (["1", "2", "3"], ["1", "2.5", "3"], "not a whole number"),
        (["1", "2", "3"], ["1", "", "3"], "observed is empty"),
        (["2024-01-01", "2024-01-09", "2024-01-15"], ["1", "2", "3"], "not a Monday"),
        (["2024-01-01", "2024-01-15"], ["1", "2"], "week 2024-01-08 is missing"),
        (["1", "2024-01-08"], ["1", "2"], "mixes"),
        (["1", "2", "3"], ["1", "2", "3"], "needs at least 8"),
    ],
)
def test_bad_series_fail_naming_the_problem(
    tmp_path: Path, weeks: list[str], counts: list[str], message: str
) -> None:
    path = _write(tmp_path / "bad.csv", weeks, counts)
    result = runner.invoke(
        app,
        [
            "detect",
            "--method",
            "ears-c1",
            "--input",
            str(path),
            "--output",
            str(tmp_path / "o.csv"),
        ],
    )
    assert result.exit_code == 1
    assert message in result.output


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("week,count\n1,2\n")
    result = runner.invoke(
        app,
        [
            "detect",
            "--method",
            "ears-c1",
            "--input",
            str(path),
            "--output",
            str(tmp_path / "o.csv"),
        ],
    )
    assert result.exit_code == 1
    assert "no 'observed' column" in result.output
