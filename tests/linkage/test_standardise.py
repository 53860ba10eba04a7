"""Standardisation of names, dates, sex, postcodes and house numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkwatch.linkage.dutch_identities import make_population
from linkwatch.linkage.standardise import (
    RawRecord,
    fold_text,
    standardise,
    standardise_date_of_birth,
    standardise_family_name,
    standardise_given_name,
    standardise_house_number,
    standardise_many,
    standardise_postcode,
    standardise_sex,
)


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Renée", "renee"),
        ("  ANAÏS  ", "anais"),
        ("Çelik", "celik"),
        ("d'Hondt", "dhondt"),
        ("O'Brien-Smith", "obrien-smith"),
        ("Jan  Pieter", "jan pieter"),
        ("Øster", "oster"),
    ],
)
def test_fold_text_drops_case_diacritics_and_punctuation(raw: str, folded: str) -> None:
    assert fold_text(raw) == folded


@given(st.text(max_size=30))
def test_fold_text_is_idempotent(text: str) -> None:
    once = fold_text(text)
    assert fold_text(once) == once


@pytest.mark.parametrize(
    ("raw", "name", "parts", "prefix"),
    [
        ("van der Berg", "berg", ("berg",), "van der"),
        ("Van Den Berg", "berg", ("berg",), "van den"),
        ("Berg, van den", "berg", ("berg",), "van den"),
        ("ter Horst", "horst", ("horst",), "ter"),
        ("in 't Veld", "veld", ("veld",), "in t"),
        ("Jansen-de Vries", "jansen vries", ("jansen", "vries"), None),
        ("de Vries - Jansen", "vries jansen", ("vries", "jansen"), "de"),
        ("Bakker", "bakker", ("bakker",), None),
        ("Van", "van", ("van",), None),
    ],
)
def test_family_name_separates_prefix_and_parts(
    raw: str, name: str, parts: tuple[str, ...], prefix: str | None
) -> None:
    family = standardise_family_name(raw)
    assert (family.name, family.parts, family.tussenvoegsel) == (name, parts, prefix)


@pytest.mark.parametrize(
    ("raw", "name", "initials"),
    [
        ("Jan", "jan", "j"),
        ("J.P.", None, "jp"),
        ("J. P.", None, "jp"),
        ("Jan P.", "jan", "jp"),
        ("Jan-Pieter", "jan-pieter", "jp"),
        ("Anna Maria", "anna", "am"),
        ("JP", None, "jp"),
        ("Émile", "emile", "e"),
    ],
)
def test_given_name_keeps_first_name_and_initials(
    raw: str, name: str | None, initials: str
) -> None:
    given_name = standardise_given_name(raw)
    assert (given_name.name, given_name.initials) == (name, initials)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1985-03-07", (1985, 3, 7)),
        ("19850307", (1985, 3, 7)),
        ("07-03-1985", (1985, 3, 7)),
        ("7/3/1985", (1985, 3, 7)),
        ("07.03.1985", (1985, 3, 7)),
        ("1985/03/07", (1985, 3, 7)),
        ("1985", (1985, None, None)),
        ("1985-03-07T00:00:00", (1985, 3, 7)),
    ],
)
def test_dates_of_birth_in_several_formats(
    raw: str, expected: tuple[int, int | None, int | None]
) -> None:
    date = standardise_date_of_birth(raw)
    assert (date.year, date.month, date.day) == expected
    assert date.problem is None


def test_impossible_date_keeps_components_and_reports() -> None:
    swapped = standardise_date_of_birth("1985-13-07")
    assert (swapped.year, swapped.month, swapped.day) == (1985, 13, 7)
    assert swapped.problem == "not a calendar date"
    assert standardise_date_of_birth("1985-02-30").problem == "not a calendar date"
    leap = standardise_date_of_birth("1900-02-29")
    assert leap.problem is not None
    assert standardise_date_of_birth("2000-02-29").problem is None


@pytest.mark.parametrize("raw", ["1066", "yesterday", "85-3-7", "2150-01-01"])
def test_unreadable_dates_are_missing_with_a_problem(raw: str) -> None:
    date = standardise_date_of_birth(raw)
    assert date.year is None
    assert date.problem


@pytest.mark.parametrize(
    ("raw", "sex", "ok"),
    [("M", "M", True), ("v", "F", True), ("vrouw", "F", True), ("1", "M", True), ("2", "F", True),
     ("onbekend", None, True), ("Q", None, False)],
)  # fmt: skip
def test_sex_codes(raw: str, sex: str | None, ok: bool) -> None:
    assert standardise_sex(raw) == (sex, ok)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1234 ab", ("1234AB", "1234")),
        ("1234AB", ("1234AB", "1234")),
        (" 1234-ab ", ("1234AB", "1234")),
        ("1234", (None, "1234")),
        ("0800", (None, "0800")),
        ("4223.0", (None, "4223")),
        ("ABCD", (None, None)),
        ("0234AB", (None, None)),
    ],
)
def test_postcodes(raw: str, expected: tuple[str | None, str | None]) -> None:
    assert standardise_postcode(raw) == expected


@given(
    st.integers(1000, 9999),
    st.sampled_from(["AB", "XZ", "KL"]),
    st.sampled_from(["", " ", "  ", "-"]),
)
def test_postcode_formatting_never_changes_the_postcode(pc4: int, letters: str, sep: str) -> None:
    for variant in (f"{pc4}{sep}{letters}", f"{pc4}{sep}{letters.lower()}"):
        assert standardise_postcode(variant) == (f"{pc4}{letters}", str(pc4))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("12", (12, None)), ("12a", (12, "A")), ("12-A", (12, "A")), ("12 hs", (12, "HS")),
     ("12-2", (12, "2")), ("8.0", (8, None)), ("a12", (None, None)), ("0", (None, None))],
)  # fmt: skip
def test_house_numbers_with_additions(raw: str, expected: tuple[int | None, str | None]) -> None:
    assert standardise_house_number(raw) == expected


def test_standardise_reports_malformed_values_with_record_and_field() -> None:
    record = standardise(
        RawRecord(
            record_id="gp-7",
            source="gp",
            given_name="Émile",
            family_name="van der Berg",
            date_of_birth="31-02-1970",
            sex="X?",
            postcode="12AB34",
            house_number="twelve",
        )
    )
    fields = {issue.field for issue in record.issues}
    assert fields == {"date_of_birth", "sex", "postcode", "house_number"}
    assert all(issue.record_id == "gp-7" for issue in record.issues)
    assert "gp-7" in str(record.issues[0])
    assert record.given_name == "emile"
    assert record.family_name == "berg"
    assert record.tussenvoegsel == "van der"
    assert (record.postcode, record.pc4, record.house_number, record.sex) == (
        None,
        None,
        None,
        None,
    )


def test_blank_and_nan_values_are_missing_not_malformed() -> None:
    record = standardise(
        RawRecord(record_id="r1", given_name="nan", family_name="  ", postcode="", sex=None)
    )
    assert record.issues == ()
    assert record.given_name is None
    assert record.family_name is None
    assert not record.has_linkable_content


def test_many_records_standardise_as_one_by_one_with_their_issues() -> None:
    raw, _ = make_population(300, seed=21)
    raw += [
        RawRecord("odd1", "gp", " 12 34 ", "J.P.", "van der Berg", "31-02-1980", "x", "1234", "0"),
        RawRecord("odd2", "gp", None, "---", "...", "1870", "V", "12345", "12a"),
        RawRecord("odd3", " ooh ", "nan", "Émma", "Jansen-de Vries", "1980-13-45", "", "1234 ab"),
        RawRecord("odd4", "gp", "t", "jp", "Vries, de", "19800102", "M", "1234.0", "12.0"),
        RawRecord("odd5", "gp", given_name="Jan", date_of_birth="1980-1-2T00:00", city=" Den Haag"),
        RawRecord("odd6", "gp", given_name="Jan", date_of_birth="1980-02-29", street="Dorpsstraat"),
    ]
    raw += raw[-6:]  # repeated values are read once, and still reported per record
    many = standardise_many(raw)
    one_by_one = [standardise(r) for r in raw]
    assert len(many) == len(one_by_one)
    assert list(many) == one_by_one == [many[n] for n in range(len(many))]
    assert many[-3:] == one_by_one[-3:]
    assert many[-1] == one_by_one[-1]
    assert [r.issues for r in many] == [r.issues for r in one_by_one]
    assert sum(len(r.issues) for r in many) >= 10
    assert list(many.column("family_parts")) == [r.family_parts for r in one_by_one]
