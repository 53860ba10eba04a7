"""The area reference table: SES-WOA scores and population by age band and sex per PC4 area.

Reads the layout of CBS's PC4 SES-WOA tables as linkwatch ships them (one row per
PC4 and year: households, mean SES-WOA score, quintile, inhabitants per age band
and sex) from CSV or Parquet, including CBS's conventions: "." for a suppressed
value and a decimal comma. Rows become ``area_ses`` records; every unusable value
is a :class:`Problem` naming the row and column.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from linkwatch.schemas.validation import ColumnMapping, Problem, read_rows

AGE_BANDS = {
    "0_14": "AGE_0_14",
    "15_24": "AGE_15_24",
    "25_44": "AGE_25_44",
    "45_64": "AGE_45_64",
    "65_plus": "AGE_65_PLUS",
}
SEXES = {"male": "MALE", "female": "FEMALE"}
POPULATION_COLUMNS = {
    f"population_{sex}_{band}": (AGE_BANDS[band], SEXES[sex]) for sex in SEXES for band in AGE_BANDS
}
REQUIRED = ("pc4", "year")
_PC4 = re.compile(r"^[1-9][0-9]{3}$")


def _number(text: Any, *, integer: bool) -> float | int | None:
    """CBS cells: '.' or empty means suppressed/unknown; decimal comma allowed."""
    if text is None:
        return None
    if isinstance(text, int | float) and not isinstance(text, bool):
        if isinstance(text, float) and np.isnan(text):
            return None
        return int(text) if integer else float(text)
    value = str(text).strip()
    if value in ("", ".", "-"):
        return None
    value = value.replace(",", ".")
    number = float(value)
    if integer:
        if not number.is_integer():
            raise ValueError("not a whole number")
        return int(number)
    return number


def read_areas(
    path: Path, *, fmt: str | None = None, mapping: ColumnMapping | None = None
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """``area_ses`` records and the problems of the rows that could not be read.

    Quintiles missing from the table are derived from the mean scores of all areas
    in the same year (quintile 1 = highest SES, 5 = lowest), as CBS defines its
    20 %-categories on the distribution of area means.
    """
    header, rows, problems = read_rows(path, fmt)
    if problems:
        return [], problems
    if mapping is not None:
        header = mapping.header(header)
        rows = ((n, mapping.row(r)) for n, r in rows)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        return [], [
            Problem(0, ",".join(missing), "", "required column(s) missing for the area table")
        ]
    records: list[dict[str, Any]] = []
    for number, row in rows:
        record, row_problems = _record(number, row)
        if row_problems:
            problems.extend(row_problems)
        else:
            records.append(record)
    _fill_quintiles(records)
    return records, problems


def _record(number: int, row: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    problems: list[Problem] = []

    def bad(column: str, reason: str) -> None:
        problems.append(
            Problem(number, column, "" if row.get(column) is None else str(row.get(column)), reason)
        )

    pc4 = str(row.get("pc4") or "").strip()
    if not _PC4.match(pc4):
        bad("pc4", "not a 4-digit Dutch postcode area (1000-9999)")
    values: dict[str, Any] = {}
    for column, integer in (
        ("year", True),
        ("households", True),
        ("ses_woa_mean", False),
        ("ses_quintile", True),
    ):
        try:
            values[column] = _number(row.get(column), integer=integer)
        except ValueError:
            bad(column, "not a number" if not integer else "not a whole number")
    if values.get("year") is None and not any(p.field == "year" for p in problems):
        bad("year", "required field is missing")
    elif values.get("year") is not None and not 2000 <= values["year"] <= 2100:
        bad("year", "implausible year: expected 2000-2100")
    quintile = values.get("ses_quintile")
    if quintile is not None and not 1 <= quintile <= 5:
        bad("ses_quintile", "not a quintile: expected 1-5")
    population = []
    for column, (band, sex) in POPULATION_COLUMNS.items():
        if column not in row:
            continue
        try:
            count = _number(row.get(column), integer=True)
        except ValueError:
            bad(column, "not a whole number")
            continue
        if count is None:
            continue
        if count < 0:
            bad(column, "a population count cannot be negative")
            continue
        population.append({"age_band": band, "sex": sex, "count": count})
    record = {
        "schema_version": 1,
        "pc4": pc4,
        "year": values.get("year"),
        "households": values.get("households"),
        "ses_woa_mean": values.get("ses_woa_mean"),
        "ses_quintile": quintile,
        "population": population,
    }
    return record, problems


def _fill_quintiles(records: list[dict[str, Any]]) -> None:
    by_year: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        if record["ses_quintile"] is None and record["ses_woa_mean"] is not None:
            by_year.setdefault(record["year"], [])
    for year in by_year:
        scored = [r for r in records if r["year"] == year and r["ses_woa_mean"] is not None]
        means = np.array([r["ses_woa_mean"] for r in scored])
        cuts = np.quantile(means, [0.2, 0.4, 0.6, 0.8])
        for record in scored:
            if record["ses_quintile"] is None:
                # Higher score = higher SES = quintile 1.
                record["ses_quintile"] = 5 - int(
                    np.searchsorted(cuts, record["ses_woa_mean"], side="right")
                )


def area_key(record: dict[str, Any]) -> bytes:
    """The compacted topic's key: one value per area and year."""
    return f"{record['pc4']}/{record['year']}".encode()
