"""Validation of provider extracts: every problem as (record number, field, value, reason).

A provider extract is a table with one row per event in a flat *layout* (the columns of
:data:`LAYOUTS`): the envelope (``source_record_id``, ``provider_id``, optional
``event_time``), the identity columns in clear text as the provider holds them
(``national_id``, names, date of birth or birth year, sex, postcode, house number) and
the source's own columns. Validation turns each row into typed values or into a list of
:class:`Problem` s; a bad row never affects its neighbours.

Record numbers count data rows from 1 (the header is not a record); problems about the
file as a whole (empty file, wrong layout) have record number 0.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from linkwatch.schemas.codelists import icd10_problem, icpc_problem, normalise_icd10

EARLIEST_EVENT = date(1990, 1, 1)
EARLIEST_BIRTH = date(1900, 1, 1)
MAX_AGE_YEARS = 115
PC6_PATTERN = re.compile(r"^[1-9][0-9]{3} ?(?!SA|SD|SS)[A-Z]{2}$")
PC4_PATTERN = re.compile(r"^[1-9][0-9]{3}$")
HOUSE_NUMBER_PATTERN = re.compile(r"^[1-9][0-9]{0,4}(?:[ \-/]?[A-Za-z0-9]{1,4})?$")
SECONDARY_SEPARATORS = re.compile(r"[;|]")
SEX_VALUES = {
    "m": "MALE", "male": "MALE", "man": "MALE",
    "f": "FEMALE", "v": "FEMALE", "female": "FEMALE", "vrouw": "FEMALE",
    "o": "OTHER", "x": "OTHER", "other": "OTHER",
    "u": "UNKNOWN", "unknown": "UNKNOWN", "onbekend": "UNKNOWN",
}  # fmt: skip


class Kind(StrEnum):
    """How a column's text is parsed and checked."""

    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"
    DATETIME = "datetime"
    ENUM = "enum"
    SEX = "sex"
    ICPC = "icpc"
    ICD10 = "icd10"
    ICD10_LIST = "icd10_list"
    POSTCODE = "postcode"
    PC4 = "pc4"
    HOUSE_NUMBER = "house_number"
    NATIONAL_ID = "national_id"


@dataclass(frozen=True)
class Column:
    """One column of a provider layout."""

    name: str
    kind: Kind
    required: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class Layout:
    """The flat columns of one source's extract."""

    source: str
    columns: tuple[Column, ...]
    event_date_column: str

    @property
    def names(self) -> tuple[str, ...]:
        """Column names in order."""
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> frozenset[str]:
        """Names of the required columns."""
        return frozenset(c.name for c in self.columns if c.required)

    @property
    def own_columns(self) -> frozenset[str]:
        """Columns that only this source has (not envelope or identity)."""
        return frozenset(self.names) - COMMON_COLUMN_NAMES


@dataclass(frozen=True)
class Problem:
    """Why one value of one record was rejected."""

    record_number: int
    field: str
    value: str
    reason: str

    def __str__(self) -> str:
        where = f"record {self.record_number}" if self.record_number else "file"
        return f"{where}: {self.field or '-'}={self.value!r}: {self.reason}"

    @property
    def category(self) -> str:
        """A stable word for the kind of problem, for counts and dead-letter headers."""
        reason = self.reason
        for prefix, name in _CATEGORIES:
            if reason.startswith(prefix) or (prefix.startswith("~") and prefix[1:] in reason):
                return name
        return "file_problem" if self.record_number == 0 else "invalid_value"


# Ordered (reason prefix, category); a prefix starting with "~" matches anywhere in the reason.
_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("file is empty", "empty_file"),
    ("file has a header but no records", "empty_file"),
    ("file has no records", "empty_file"),
    ("~layout, not", "wrong_layout"),
    ("required column(s) missing", "missing_columns"),
    ("required field is missing", "missing_field"),
    ("row has", "wrong_cell_count"),
    ("not valid JSON", "malformed_record"),
    ("not a JSON object", "malformed_record"),
    ("~not valid UTF-8", "bad_encoding"),
    ("~undecodable", "bad_encoding"),
    ("binary value", "bad_encoding"),
    ("not a valid date", "invalid_date"),
    ("not a valid date-time", "invalid_date"),
    ("~implausible", "implausible_date"),
    ("date of birth after", "implausible_date"),
    ("birth year after", "implausible_date"),
    ("disagrees with date_of_birth", "inconsistent_values"),
    ("after ", "inconsistent_values"),
    ("~ICPC", "invalid_code"),
    ("~ICD-10", "invalid_code"),
    ("~NHG subcode", "invalid_code"),
    ("~postcode", "invalid_postcode"),
    ("not a BSN", "invalid_national_id"),
    ("not an integer", "wrong_type"),
    ("not a number", "wrong_type"),
    ("not a finite number", "wrong_type"),
    ("not one of", "unknown_value"),
    ("not a sex code", "unknown_value"),
    ("not a house number", "invalid_value"),
    ("below the plausible", "out_of_range"),
    ("above the plausible", "out_of_range"),
)


@dataclass(frozen=True)
class ColumnMapping:
    """How a provider's own extract maps onto a linkwatch layout.

    ``rename`` maps the provider's column names to linkwatch's; ``constants`` gives
    values for linkwatch columns the extract does not have (e.g. ``provider_id``).
    Loaded from a TOML file with ``[columns]`` and ``[constants]`` tables.
    """

    rename: Mapping[str, str] = field(default_factory=dict)
    constants: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ColumnMapping:
        import tomllib

        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"cannot read the column mapping {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"column mapping {path} is not valid TOML: {exc}") from None
        unknown = set(data) - {"columns", "constants"}
        if unknown:
            raise ValueError(
                f"column mapping {path}: unknown table(s) {', '.join(sorted(unknown))}; "
                "expected [columns] and [constants]"
            )
        rename, constants = data.get("columns", {}), data.get("constants", {})
        for table, content in (("columns", rename), ("constants", constants)):
            bad = [k for k, v in content.items() if not isinstance(v, str | int)]
            if bad:
                raise ValueError(f"column mapping {path}: [{table}] {bad[0]} must be a string")
        return cls(
            {k: str(v) for k, v in rename.items()}, {k: str(v) for k, v in constants.items()}
        )

    def header(self, header: list[str]) -> list[str]:
        renamed = [self.rename.get(h, h) for h in header]
        return renamed + [c for c in self.constants if c not in renamed]

    def row(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {self.rename.get(k, k): v for k, v in row.items()}
        for name, value in self.constants.items():
            if out.get(name) in (None, ""):
                out[name] = value
        return out


@dataclass
class RowResult:
    """The outcome of validating one record: typed values, or the problems found."""

    record_number: int
    values: dict[str, Any] | None
    problems: list[Problem] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the record is valid."""
        return self.values is not None and not self.problems


ENVELOPE_COLUMNS = (
    Column("source_record_id", Kind.TEXT, required=True),
    Column("provider_id", Kind.TEXT, required=True),
    Column("event_time", Kind.DATETIME),
)
IDENTITY_COLUMNS = (
    Column("national_id", Kind.NATIONAL_ID),
    Column("given_name", Kind.TEXT),
    Column("family_name", Kind.TEXT),
    Column("date_of_birth", Kind.DATE),
    Column("birth_year", Kind.INTEGER, minimum=EARLIEST_BIRTH.year, maximum=2100),
    Column("sex", Kind.SEX),
    Column("postcode", Kind.POSTCODE),
    Column("house_number", Kind.HOUSE_NUMBER),
)
COMMON_COLUMN_NAMES = frozenset(c.name for c in ENVELOPE_COLUMNS + IDENTITY_COLUMNS)

LAYOUTS: dict[str, Layout] = {
    "gp_consultation": Layout(
        "gp_consultation",
        ENVELOPE_COLUMNS
        + IDENTITY_COLUMNS
        + (
            Column("episode_id", Kind.TEXT, required=True),
            Column("icpc_code", Kind.ICPC),
            Column("episode_start_date", Kind.DATE, required=True),
            Column("contact_date", Kind.DATE, required=True),
            Column(
                "contact_type",
                Kind.ENUM,
                required=True,
                choices=("CONSULTATION", "TELEPHONE", "HOME_VISIT", "E_CONSULTATION", "OTHER"),
            ),
        ),
        event_date_column="contact_date",
    ),
    "ooh_contact": Layout(
        "ooh_contact",
        ENVELOPE_COLUMNS
        + IDENTITY_COLUMNS
        + (
            Column("contact_start_time", Kind.DATETIME, required=True),
            Column(
                "contact_type",
                Kind.ENUM,
                required=True,
                choices=("TELEPHONE", "CONSULTATION", "HOME_VISIT", "OTHER"),
            ),
            Column("urgency", Kind.ENUM, choices=("U0", "U1", "U2", "U3", "U4", "U5")),
            Column("entry_complaint", Kind.TEXT),
            Column("icpc_code", Kind.ICPC),
            Column(
                "referral",
                Kind.ENUM,
                choices=(
                    "NONE",
                    "OWN_GP",
                    "EMERGENCY_DEPARTMENT",
                    "MEDICAL_SPECIALIST",
                    "AMBULANCE",
                    "OTHER",
                ),
            ),
        ),
        event_date_column="contact_start_time",
    ),
    "hospital_episode": Layout(
        "hospital_episode",
        ENVELOPE_COLUMNS
        + IDENTITY_COLUMNS
        + (
            Column("admission_date", Kind.DATE, required=True),
            Column("discharge_date", Kind.DATE),
            Column("admission_type", Kind.ENUM, choices=("ACUTE", "ELECTIVE", "UNKNOWN")),
            Column(
                "care_type",
                Kind.ENUM,
                choices=("CLINICAL", "DAY_ADMISSION", "LONG_OBSERVATION", "UNKNOWN"),
            ),
            Column("main_diagnosis", Kind.ICD10),
            Column("secondary_diagnoses", Kind.ICD10_LIST),
        ),
        event_date_column="admission_date",
    ),
}


# -- single values ----------------------------------------------------------------------------
class _Invalid(ValueError):
    pass


def bsn_eleven_test(digits: str) -> bool:
    """The Dutch BSN eleven-test: 9*d1 + 8*d2 + ... + 2*d8 - d9 is a multiple of 11 (and not 0)."""
    if len(digits) != 9 or not digits.isdigit():
        return False
    total = sum((9 - i) * int(d) for i, d in enumerate(digits[:8])) - int(digits[8])
    return total % 11 == 0 and digits != "000000000"


def _parse_date(text: str) -> date:
    try:
        if len(text) > 10 and text[10] in "T ":
            return _parse_datetime(text).date()  # a date exported as a midnight time stamp
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise _Invalid("not a valid date: expected YYYY-MM-DD with a real month and day") from None


def _parse_datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _Invalid(
            "not a valid date-time: expected ISO 8601, e.g. 2021-03-04T18:30:00"
        ) from None
    # Local times without an offset are taken as UTC: extracts carry no zone.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_value(column: Column, text: str, on: date | None = None) -> Any:
    """Parse one non-empty cell; raises ValueError with the reason when it is invalid."""
    kind = column.kind
    if kind is Kind.TEXT:
        return text
    if kind in (Kind.INTEGER, Kind.DECIMAL):
        try:
            number: float = int(text) if kind is Kind.INTEGER else float(text)
        except ValueError:
            raise _Invalid(f"not {'an integer' if kind is Kind.INTEGER else 'a number'}") from None
        if isinstance(number, float) and not math.isfinite(number):
            raise _Invalid("not a finite number")
        if column.minimum is not None and number < column.minimum:
            raise _Invalid(f"below the plausible minimum {column.minimum:g}")
        if column.maximum is not None and number > column.maximum:
            raise _Invalid(f"above the plausible maximum {column.maximum:g}")
        return number
    if kind is Kind.DATE:
        return _parse_date(text)
    if kind is Kind.DATETIME:
        return _parse_datetime(text)
    if kind is Kind.ENUM:
        upper = text.strip().upper()
        if upper not in column.choices:
            raise _Invalid(f"not one of {', '.join(column.choices)}")
        return upper
    if kind is Kind.SEX:
        sex = SEX_VALUES.get(text.strip().lower())
        if sex is None:
            raise _Invalid("not a sex code: expected M, F (or V), O or U")
        return sex
    if kind is Kind.ICPC:
        code = text.strip().upper()
        reason = icpc_problem(code, on)
        if reason:
            raise _Invalid(reason)
        return code
    if kind is Kind.ICD10:
        code = text.strip().upper()
        reason = icd10_problem(code, on)
        if reason:
            raise _Invalid(reason)
        return normalise_icd10(code)
    if kind is Kind.ICD10_LIST:
        codes = []
        for part in SECONDARY_SEPARATORS.split(text):
            code = part.strip().upper()
            if not code:
                continue
            reason = icd10_problem(code, on)
            if reason:
                raise _Invalid(f"{code}: {reason}")
            codes.append(normalise_icd10(code))
        return codes
    if kind is Kind.POSTCODE:
        code = text.strip().upper().replace(" ", "")
        if PC6_PATTERN.match(code) or PC4_PATTERN.match(code):
            return code
        raise _Invalid(
            "not a Dutch postcode: expected PC6 (four digits not starting with 0 and two "
            "letters other than SA, SD, SS, e.g. 1234AB) or PC4 (e.g. 1234)"
        )
    if kind is Kind.PC4:
        if PC4_PATTERN.match(text.strip()):
            return text.strip()
        raise _Invalid("not a 4-digit Dutch postcode area (1000-9999)")
    if kind is Kind.HOUSE_NUMBER:
        if HOUSE_NUMBER_PATTERN.match(text.strip()):
            return text.strip()
        raise _Invalid("not a house number: expected digits with an optional addition, e.g. 12A")
    if kind is Kind.NATIONAL_ID:
        digits = re.sub(r"[\s.\-]", "", text).zfill(9)
        if not digits.isdigit() or len(digits) != 9:
            raise _Invalid("not a BSN: expected 8 or 9 digits")
        if not bsn_eleven_test(digits):
            raise _Invalid("not a BSN: fails the eleven-test")
        return digits
    raise AssertionError(f"unhandled column kind {kind}")


def _as_text(value: Any) -> str | None:
    """Cells from Parquet or JSON arrive typed; validation works on their text."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    if isinstance(value, bytes):
        raise _Invalid("binary value where text was expected")
    text = str(value).strip()
    return text or None


def _event_day(layout: Layout, values: Mapping[str, Any]) -> date | None:
    value = values.get(layout.event_date_column)
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else None


@cache
def _validation_order(layout: Layout) -> tuple[Column, ...]:
    # The event date decides which code versions apply, so it is parsed first.
    return tuple(sorted(layout.columns, key=lambda c: c.name != layout.event_date_column))


def validate_row(
    layout: Layout, row: Mapping[str, Any], record_number: int, today: date | None = None
) -> RowResult:
    """Validate one record against a layout, collecting every problem in it."""
    today = today or date.today()
    problems: list[Problem] = []
    values: dict[str, Any] = {}

    def problem(name: str, value: Any, reason: str) -> None:
        problems.append(Problem(record_number, name, "" if value is None else str(value), reason))

    event_day: date | None = None
    for column in _validation_order(layout):
        raw = row.get(column.name)
        try:
            text = _as_text(raw)
        except _Invalid as exc:
            problem(column.name, repr(raw), str(exc))
            continue
        if text is None:
            if column.required:
                problem(column.name, "", "required field is missing")
            values[column.name] = [] if column.kind is Kind.ICD10_LIST else None
            continue
        if max(text) >= "\udc80" and any("\udc80" <= ch <= "\udcff" for ch in text):
            problem(
                column.name,
                text.encode("utf-8", "surrogateescape").decode("latin-1"),
                "not valid UTF-8: the file looks latin-1 (Windows-1252) encoded; "
                "re-export it as UTF-8 or read it with encoding latin-1",
            )
            continue
        try:
            values[column.name] = parse_value(column, text, event_day)
        except ValueError as exc:
            problem(column.name, text, str(exc))
        if column.name == layout.event_date_column:
            event_day = _event_day(layout, values)
    problems.extend(_cross_field_problems(layout, values, record_number, today))
    if problems:
        return RowResult(record_number, None, problems, dict(row))
    return RowResult(record_number, values, [], dict(row))


def _cross_field_problems(
    layout: Layout, v: Mapping[str, Any], record_number: int, today: date
) -> Iterator[Problem]:
    def p(name: str, reason: str) -> Problem:
        value = v.get(name)
        return Problem(record_number, name, "" if value is None else str(value), reason)

    latest = today + timedelta(days=1)
    event_day = _event_day(layout, v)
    for name, value in v.items():
        day = value.date() if isinstance(value, datetime) else value
        if not isinstance(day, date) or name == "date_of_birth":
            continue
        if day < EARLIEST_EVENT:
            yield p(name, f"implausible date: before {EARLIEST_EVENT.isoformat()}")
        elif day > latest:
            yield p(name, f"implausible date: in the future (after {today.isoformat()})")
    dob: date | None = v.get("date_of_birth")
    if dob is not None:
        if dob < EARLIEST_BIRTH:
            yield p("date_of_birth", f"implausible date of birth: before {EARLIEST_BIRTH}")
        elif event_day is not None and dob > event_day:
            yield p("date_of_birth", f"date of birth after the event date {event_day.isoformat()}")
        elif event_day is not None and event_day.year - dob.year > MAX_AGE_YEARS:
            yield p("date_of_birth", f"implausible age: over {MAX_AGE_YEARS} at the event")
        birth_year = v.get("birth_year")
        if birth_year is not None and birth_year != dob.year:
            yield p("birth_year", f"disagrees with date_of_birth {dob.isoformat()}")
    elif (year := v.get("birth_year")) is not None and event_day and year > event_day.year:
        yield p("birth_year", f"birth year after the event year {event_day.year}")
    pairs = {
        "gp_consultation": ("episode_start_date", "contact_date"),
        "hospital_episode": ("admission_date", "discharge_date"),
    }
    if layout.source in pairs:
        first, second = pairs[layout.source]
        a, b = v.get(first), v.get(second)
        if isinstance(a, date) and isinstance(b, date) and a > b:
            yield p(first, f"after {second} {b.isoformat()}")


# -- files ------------------------------------------------------------------------------------
def detect_format(path: Path) -> str:
    """'csv', 'parquet' or 'jsonl' from the file name."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "csv"


def read_rows(
    path: Path, fmt: str | None = None, encoding: str = "utf-8"
) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]], list[Problem]]:
    """Header, numbered rows and file-level problems of an extract (CSV, Parquet, JSON lines).

    Undecodable bytes in a CSV are kept (as surrogate escapes) so that validation can
    name the record and field they are in, instead of rejecting the whole file.
    """
    fmt = fmt or detect_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        if table.num_rows == 0:
            return table.column_names, iter(()), [Problem(0, "", "", "file has no records")]
        return table.column_names, enumerate(table.to_pylist(), start=1), []
    data = path.read_bytes()
    if not data.strip():
        return [], iter(()), [Problem(0, "", "", "file is empty")]
    text = data.decode(encoding, errors="surrogateescape").removeprefix("\ufeff")
    if fmt == "jsonl":
        return _jsonl_rows(text)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader)]
    rows = list(reader)
    if not any(any(cell.strip() for cell in r) for r in rows):
        return header, iter(()), [Problem(0, "", "", "file has a header but no records")]
    return header, _csv_rows(header, rows), []


def _csv_rows(header: list[str], rows: list[list[str]]) -> Iterator[tuple[int, dict[str, Any]]]:
    number = 0
    for cells in rows:
        if not any(c.strip() for c in cells):
            continue  # blank lines are not records
        number += 1
        row: dict[str, Any] = {
            name: (cells[i] if i < len(cells) else None) for i, name in enumerate(header)
        }
        if len(cells) != len(header):
            row["__cells__"] = len(cells)
        yield number, row


def _jsonl_rows(text: str) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]], list[Problem]]:
    header: list[str] = []
    rows: list[tuple[int, dict[str, Any]]] = []
    number = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        number += 1
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            obj = {"__invalid_json__": f"not valid JSON: {exc.msg} at column {exc.colno}"}
        if not isinstance(obj, dict):
            obj = {"__invalid_json__": "not a JSON object"}
        for key in obj:
            if key not in header and not key.startswith("__"):
                header.append(key)
        rows.append((number, obj))
    return header, iter(rows), []


def count_records(path: Path, fmt: str | None = None) -> int:
    """How many records an extract holds, cheaply (for progress bars; blank lines excluded).

    For CSV this counts lines, so a quoted cell spanning lines makes it an over-estimate.
    """
    fmt = fmt or detect_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    lines = 0
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                lines += 1
    return max(0, lines - 1) if fmt == "csv" else lines


def layout_problem(layout: Layout, header: Iterable[str]) -> Problem | None:
    """Why a file with this header cannot be read as ``layout`` (None when it can)."""
    present = set(header)
    missing = sorted(layout.required - present)
    if not missing:
        return None
    for other in LAYOUTS.values():
        if other is not layout and other.required <= present and other.own_columns & present:
            return Problem(
                0,
                ",".join(missing),
                ",".join(sorted(other.own_columns & present)),
                f"the file has the {other.source} layout, not {layout.source}",
            )
    return Problem(0, ",".join(missing), "", f"required column(s) missing for {layout.source}")


def validate_file(
    path: Path,
    source: str,
    *,
    fmt: str | None = None,
    encoding: str = "utf-8",
    today: date | None = None,
    mapping: ColumnMapping | None = None,
) -> Iterator[RowResult]:
    """Validate every record of an extract, yielding one result per record.

    A file-level problem (empty file, another source's layout, missing columns) is
    yielded as a result with record number 0 and ends the file. With ``mapping``,
    the provider's column names are renamed and constant columns filled first.
    """
    layout = LAYOUTS.get(source)
    if layout is None:
        raise KeyError(f"unknown source {source!r} (known: {', '.join(LAYOUTS)})")
    header, rows, file_problems = read_rows(path, fmt, encoding)
    if file_problems:
        yield RowResult(0, None, file_problems)
        return
    if mapping is not None:
        header = mapping.header(header)
        rows = ((number, mapping.row(row)) for number, row in rows)
    wrong_layout = layout_problem(layout, header)
    if wrong_layout is not None:
        yield RowResult(0, None, [wrong_layout])
        return
    for number, row in rows:
        if "__invalid_json__" in row:
            yield RowResult(number, None, [Problem(number, "", "", row["__invalid_json__"])], row)
            continue
        if "__cells__" in row:
            cells = row.pop("__cells__")
            reason = f"row has {cells} cells, the header has {len(header)}"
            yield RowResult(number, None, [Problem(number, "", "", reason)], row)
            continue
        yield validate_row(layout, row, number, today)
