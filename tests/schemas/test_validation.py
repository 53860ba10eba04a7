"""Validation of provider extracts: each kind of bad input gets a precise reason."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkwatch.schemas.codelists import codes_for, icd10_problem, icpc_problem, long_covid_codelist
from linkwatch.schemas.validation import (
    LAYOUTS,
    Problem,
    RowResult,
    bsn_eleven_test,
    validate_file,
    validate_row,
)

TODAY = date(2026, 1, 1)
GP = LAYOUTS["gp_consultation"]
GOOD_GP: dict[str, str] = {
    "source_record_id": "gp-1",
    "provider_id": "GP0001",
    "event_time": "",
    "national_id": "111222333",
    "given_name": "Anna",
    "family_name": "de Vries",
    "date_of_birth": "1961-05-04",
    "birth_year": "",
    "sex": "F",
    "postcode": "9712 CP",
    "house_number": "12A",
    "episode_id": "EP1",
    "icpc_code": "R83",
    "episode_start_date": "2021-03-01",
    "contact_date": "2021-03-04",
    "contact_type": "CONSULTATION",
}
GOOD_OOH: dict[str, str] = {
    "source_record_id": "ooh-1",
    "provider_id": "HAP9",
    "national_id": "",
    "given_name": "J.",
    "family_name": "Jansen",
    "date_of_birth": "",
    "birth_year": "1950",
    "sex": "M",
    "postcode": "9712",
    "house_number": "",
    "contact_start_time": "2021-03-04 21:05:00.000Z",
    "contact_type": "TELEPHONE",
    "urgency": "U5",
    "entry_complaint": "Hoesten",
    "icpc_code": "R05",
    "referral": "NONE",
}


def check(row: dict[str, str], layout: str = "gp_consultation") -> RowResult:
    return validate_row(LAYOUTS[layout], row, 7, TODAY)


def only_problem(result: RowResult) -> Problem:
    assert result.values is None
    assert len(result.problems) == 1, result.problems
    return result.problems[0]


def test_a_good_row_becomes_typed_values() -> None:
    result = check(GOOD_GP)
    assert result.ok
    assert result.values is not None
    assert result.values["date_of_birth"] == date(1961, 5, 4)
    assert result.values["postcode"] == "9712CP"
    assert result.values["sex"] == "FEMALE"
    assert result.values["national_id"] == "111222333"
    assert check(GOOD_OOH, "ooh_contact").ok


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("birth_year", "19x0", "not an integer"),
        ("birth_year", "1850", "below the plausible minimum"),
        ("contact_type", "VISIT", "not one of CONSULTATION"),
        ("sex", "Q", "not a sex code"),
        ("house_number", "twelve", "not a house number"),
        ("national_id", "123456789", "fails the eleven-test"),
        ("national_id", "12-AB", "not a BSN"),
    ],
)
def test_wrong_types_name_the_field_value_and_reason(field: str, value: str, reason: str) -> None:
    problem = only_problem(check(GOOD_GP | {field: value}))
    assert (problem.record_number, problem.field, problem.value) == (7, field, value)
    assert reason in problem.reason


@pytest.mark.parametrize("field", ["source_record_id", "provider_id", "episode_id", "contact_date"])
def test_missing_required_fields(field: str) -> None:
    problem = only_problem(check(GOOD_GP | {field: ""}))
    assert (problem.field, problem.reason) == (field, "required field is missing")


def test_optional_fields_may_be_missing() -> None:
    row = GOOD_GP | {"national_id": "", "given_name": "", "postcode": "", "icpc_code": ""}
    assert check(row).ok


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"date_of_birth": "1980-02-30"}, "date_of_birth", "not a valid date"),
        ({"contact_date": "2021-13-01"}, "contact_date", "not a valid date"),
        ({"contact_date": "04-03-2021"}, "contact_date", "not a valid date"),
        ({"date_of_birth": "1890-01-01"}, "date_of_birth", "before 1900"),
        ({"date_of_birth": "2021-03-05"}, "date_of_birth", "after the event date"),
        (
            {"contact_date": "2027-01-01", "episode_start_date": "2027-01-01"},
            "contact_date",
            "in the future",
        ),
        ({"episode_start_date": "1985-01-01"}, "episode_start_date", "before 1990"),
        ({"episode_start_date": "2021-03-05"}, "episode_start_date", "after contact_date"),
        ({"birth_year": "1962"}, "birth_year", "disagrees with date_of_birth"),
    ],
)
def test_impossible_and_implausible_dates(changes: dict[str, str], field: str, reason: str) -> None:
    problems = check(GOOD_GP | changes).problems
    assert any(p.field == field and reason in p.reason for p in problems), problems


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("Q83", "unknown ICPC-1 chapter 'Q'"),
        ("R00", "rubric numbers run from 01"),
        ("R8", "not an ICPC-1 code"),
        ("R83.00", "subcodes run from .01"),
        ("R83.02", "is not valid on 2021-06-01 (valid until 2021-03-31)"),
    ],
)
def test_unknown_icpc_codes(code: str, reason: str) -> None:
    row = GOOD_GP | {"icpc_code": code}
    if code == "R83.02":
        row |= {"contact_date": "2021-06-01", "episode_start_date": "2021-06-01"}
    problem = only_problem(check(row))
    assert problem.field == "icpc_code"
    assert reason in problem.reason


def test_nhg_subcodes_are_checked_against_their_validity_date() -> None:
    assert icpc_problem("R83.02", date(2021, 3, 31)) is None
    assert "valid until 2021-03-31" in (icpc_problem("R83.02", date(2021, 4, 1)) or "")
    assert "valid from 2021-04-01" in (icpc_problem("B99.02", date(2020, 1, 1)) or "")
    assert icpc_problem("T90.07") is None  # subcodes outside the shipped table pass on format


def test_icd10_codes() -> None:
    assert icd10_problem("U07.1", date(2021, 1, 1)) is None
    assert icd10_problem("U071") is None
    assert icd10_problem("J12.8") is None
    assert "unknown ICD-10 code U07.9" in (icd10_problem("U07.9") or "")
    assert "not valid on 2020-03-01" in (icd10_problem("U09.9", date(2020, 3, 1)) or "")
    assert "not an ICD-10 code" in (icd10_problem("7071") or "")


def test_hospital_secondary_diagnoses_are_checked_one_by_one() -> None:
    row = {
        "source_record_id": "h1",
        "provider_id": "ZH1",
        "admission_date": "2021-03-10",
        "discharge_date": "2021-03-09",
        "main_diagnosis": "u071",
        "secondary_diagnoses": "J12.8;U07.9",
        "admission_type": "acute",
    }
    problems = check(row, "hospital_episode").problems
    assert {p.field for p in problems} == {"admission_date", "secondary_diagnoses"}
    good = check(
        row | {"discharge_date": "2021-03-12", "secondary_diagnoses": "J12.8|I10"},
        "hospital_episode",
    )
    assert good.values is not None
    assert good.values["main_diagnosis"] == "U07.1"
    assert good.values["secondary_diagnoses"] == ["J12.8", "I10"]
    assert good.values["admission_type"] == "ACUTE"


@pytest.mark.parametrize("postcode", ["0123AB", "1234SA", "12345", "1234ABC", "AB1234", "1234-AB"])
def test_malformed_postcodes(postcode: str) -> None:
    problem = only_problem(check(GOOD_GP | {"postcode": postcode}))
    assert problem.field == "postcode"
    assert "not a Dutch postcode" in problem.reason


def test_wrong_urgency_and_times_in_an_ooh_row() -> None:
    problems = check(
        GOOD_OOH | {"urgency": "U7", "contact_start_time": "yesterday"}, "ooh_contact"
    ).problems
    assert {p.field for p in problems} == {"urgency", "contact_start_time"}


def test_long_covid_codelist_is_versioned_by_date() -> None:
    assert codes_for("covid_confirmed", date(2021, 1, 4), "ICPC1") == {"R83"}
    assert codes_for("covid_confirmed", date(2022, 1, 3), "ICPC1") == {"R83", "R83.03"}
    assert "U09.9" not in codes_for("post_covid", date(2020, 6, 1))
    assert codes_for("post_covid", date(2021, 6, 1)) == {"U09.9"}
    assert {"A04", "R02", "P20", "K04", "N16"} <= codes_for("long_covid_symptom", date(2022, 1, 1))
    assert all(icpc_problem(e.code) is None for e in long_covid_codelist() if e.system == "ICPC1")
    assert all(icd10_problem(e.code) is None for e in long_covid_codelist() if e.system == "ICD10")
    with pytest.raises(KeyError, match="unknown concept"):
        codes_for("flu", date(2022, 1, 1))


# -- files --------------------------------------------------------------------------------------
def write_csv(path: Path, rows: list[dict[str, str]], encoding: str = "utf-8") -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def results(path: Path, source: str = "gp_consultation", **kwargs: Any) -> list[RowResult]:
    return list(validate_file(path, source, today=TODAY, **kwargs))


def test_bad_rows_do_not_affect_their_neighbours(tmp_path: Path) -> None:
    rows = [GOOD_GP | {"source_record_id": f"gp-{i}"} for i in range(1, 6)]
    rows[1] = rows[1] | {"postcode": "0000XX"}
    rows[3] = rows[3] | {"contact_date": "2021-02-30"}
    out = results(write_csv(tmp_path / "gp.csv", rows))
    assert [r.record_number for r in out] == [1, 2, 3, 4, 5]
    assert [r.ok for r in out] == [True, False, True, False, True]
    assert [(p.record_number, p.field) for r in out for p in r.problems] == [
        (2, "postcode"),
        (4, "contact_date"),
    ]


def test_latin1_bytes_are_reported_in_their_record_and_field(tmp_path: Path) -> None:
    rows = [GOOD_GP, GOOD_GP | {"source_record_id": "gp-2", "family_name": "Hélène"}, GOOD_GP]
    path = tmp_path / "latin1.csv"
    path.write_bytes(write_csv(tmp_path / "tmp.csv", rows).read_text("utf-8").encode("latin-1"))
    out = results(path)
    assert [r.ok for r in out] == [True, False, True]
    problem = out[1].problems[0]
    assert (problem.record_number, problem.field, problem.value) == (2, "family_name", "Hélène")
    assert "not valid UTF-8" in problem.reason
    assert "latin-1" in problem.reason
    # Read as latin-1 on purpose, the same file is fine.
    assert all(r.ok for r in results(path, encoding="latin-1"))


def test_utf8_with_a_byte_order_mark_and_diacritics_is_fine(tmp_path: Path) -> None:
    rows = [GOOD_GP | {"family_name": "Y\u0131lmaz", "given_name": "Aïcha"}]
    path = write_csv(tmp_path / "bom.csv", rows, encoding="utf-8-sig")
    (only,) = results(path)
    assert only.ok
    assert only.values is not None
    assert only.values["family_name"] == "Y\u0131lmaz"


def test_empty_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    (result,) = results(empty)
    assert (result.record_number, result.problems[0].reason) == (0, "file is empty")
    header_only = tmp_path / "header.csv"
    header_only.write_text(",".join(GP.names) + "\n")
    (result,) = results(header_only)
    assert result.problems[0].reason == "file has a header but no records"


def test_a_file_of_another_sources_layout_is_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ooh.csv", [GOOD_OOH])
    (result,) = results(path, "gp_consultation")
    problem = result.problems[0]
    assert problem.record_number == 0
    assert problem.reason == "the file has the ooh_contact layout, not gp_consultation"
    assert "contact_date" in problem.field


def test_a_file_missing_required_columns(tmp_path: Path) -> None:
    row = {k: v for k, v in GOOD_GP.items() if k != "episode_id"}
    (result,) = results(write_csv(tmp_path / "gp.csv", [row]))
    assert result.problems[0].field == "episode_id"
    assert "required column(s) missing" in result.problems[0].reason


def test_rows_with_the_wrong_number_of_cells(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "gp.csv", [GOOD_GP, GOOD_GP])
    text = path.read_text().splitlines()
    text[2] = text[2] + ",extra"
    path.write_text("\n".join(text) + "\n")
    out = results(path)
    assert [r.ok for r in out] == [True, False]
    assert "row has 17 cells, the header has 16" in out[1].problems[0].reason


def test_json_lines_and_parquet_are_read_too(tmp_path: Path) -> None:
    jsonl = tmp_path / "gp.jsonl"
    lines = [json.dumps(GOOD_GP), "{not json", json.dumps(GOOD_GP | {"sex": "X?"})]
    jsonl.write_text("\n".join(lines) + "\n")
    out = results(jsonl)
    assert [r.ok for r in out] == [True, False, False]
    assert "not valid JSON" in out[1].problems[0].reason
    assert out[2].problems[0].field == "sex"

    table = pa.table(
        {k: [v or None] for k, v in GOOD_GP.items()}
        | {"contact_date": [date(2021, 3, 4)], "birth_year": pa.array([None], pa.int32())}
    )
    pq.write_table(table, tmp_path / "gp.parquet")
    (result,) = results(tmp_path / "gp.parquet")
    assert result.ok, result.problems


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 999_999_999))
def test_the_eleven_test_accepts_exactly_the_weighted_multiples_of_eleven(number: int) -> None:
    digits = f"{number:09d}"
    weighted = sum((9 - i) * int(d) for i, d in enumerate(digits[:8])) - int(digits[8])
    assert bsn_eleven_test(digits) == (weighted % 11 == 0 and number != 0)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(GP.names), st.text(max_size=12)))
def test_validation_never_crashes_and_every_problem_names_a_known_field(
    row: dict[str, str],
) -> None:
    result = validate_row(GP, GOOD_GP | row, 3, TODAY)
    assert result.ok == (not result.problems)
    assert all(p.record_number == 3 and p.field in GP.names for p in result.problems)
