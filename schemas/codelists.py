"""Clinical code formats and the code lists shipped with linkwatch, versioned by validity date.

Dutch GPs code with ICPC-1 plus NHG subcodes (``R83``, ``T90.02``); hospitals code with
WHO ICD-10 (``U07.1``). The NHG revises its subcodes (``R83.02`` was retired in April
2021), so every code list row carries a validity interval and lookups take a date.

Data files (``schemas/codes/*.csv``):

* ``long_covid_codelist.csv`` — the Long COVID case definition: concept, system, code,
  label, valid_from, valid_to, note.
* ``nhg_subcodes.csv`` — NHG subcodes whose validity linkwatch knows. Subcodes not in
  this file are accepted on format: linkwatch does not ship the full NHG-Tabel 24.
* ``icd10_provisional.csv`` — the WHO provisional ``U0x``/``U1x`` codes for COVID-19;
  other codes in that range are unknown.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources

ICPC_CHAPTERS = frozenset("ABDFHKLNPRSTUWXYZ")
ICPC_PATTERN = re.compile(r"^(?P<rubric>[A-Z][0-9]{2})(?:\.(?P<sub>[0-9]{2}))?$")
ICD10_PATTERN = re.compile(r"^[A-Z][0-9]{2}(?:\.?[0-9A-Z]{1,2})?$")
# WHO reserves U00-U49 for provisional assignment; the COVID-19 codes live there.
ICD10_PROVISIONAL = re.compile(r"^U[0-4][0-9]")


@dataclass(frozen=True)
class CodeEntry:
    """One code in a code list with its validity interval (inclusive; None = open)."""

    concept: str
    system: str
    code: str
    label: str
    valid_from: date | None
    valid_to: date | None
    note: str = ""

    def valid_on(self, day: date) -> bool:
        """Whether the code is valid on ``day``."""
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )

    def validity(self) -> str:
        """Human-readable validity, e.g. 'valid from 2021-04-01'."""
        parts = []
        if self.valid_from:
            parts.append(f"from {self.valid_from.isoformat()}")
        if self.valid_to:
            parts.append(f"until {self.valid_to.isoformat()}")
        return "valid " + " ".join(parts) if parts else "always valid"


def _optional_date(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("linkwatch.schemas").joinpath("codes", name).read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _entries(
    rows: Iterable[dict[str, str]], concept: str = "", system: str = ""
) -> list[CodeEntry]:
    return [
        CodeEntry(
            concept=row.get("concept", concept),
            system=row.get("system", system),
            code=row["code"],
            label=row["label"],
            valid_from=_optional_date(row["valid_from"]),
            valid_to=_optional_date(row["valid_to"]),
            note=row.get("note", ""),
        )
        for row in rows
    ]


@cache
def long_covid_codelist() -> tuple[CodeEntry, ...]:
    """All rows of the shipped Long COVID case definition."""
    return tuple(_entries(_read_csv("long_covid_codelist.csv")))


@cache
def nhg_subcodes() -> dict[str, CodeEntry]:
    """NHG subcodes with known validity, by code."""
    return {e.code: e for e in _entries(_read_csv("nhg_subcodes.csv"), "nhg_subcode", "ICPC1")}


@cache
def icd10_provisional_codes() -> dict[str, CodeEntry]:
    """WHO provisional (U00-U49) codes linkwatch knows, by code."""
    return {e.code: e for e in _entries(_read_csv("icd10_provisional.csv"), "provisional", "ICD10")}


def codes_for(concept: str, on: date, system: str | None = None) -> frozenset[str]:
    """Codes of a case-definition concept valid on a date.

    Example: ``codes_for("covid_confirmed", date(2022, 1, 3), "ICPC1")`` is
    ``{"R83", "R83.03"}``.
    """
    entries = [e for e in long_covid_codelist() if e.concept == concept]
    if not entries:
        known = sorted({e.concept for e in long_covid_codelist()})
        raise KeyError(f"unknown concept {concept!r} (known: {', '.join(known)})")
    return frozenset(
        e.code for e in entries if e.valid_on(on) and (system is None or e.system == system)
    )


def icpc_problem(code: str, on: date | None = None) -> str | None:
    """Why ``code`` is not a valid ICPC-1 (NHG) code on ``on``, or None when it is."""
    match = ICPC_PATTERN.match(code)
    if match is None:
        return "not an ICPC-1 code: expected a chapter letter and two digits, e.g. R83 or T90.02"
    rubric, sub = match["rubric"], match["sub"]
    if rubric[0] not in ICPC_CHAPTERS:
        return (
            f"unknown ICPC-1 chapter {rubric[0]!r} (chapters are {''.join(sorted(ICPC_CHAPTERS))})"
        )
    if rubric[1:] == "00":
        return "unknown ICPC-1 rubric: rubric numbers run from 01 to 99"
    if sub is not None:
        if sub == "00":
            return "unknown NHG subcode: subcodes run from .01"
        entry = nhg_subcodes().get(code)
        if entry is not None and on is not None and not entry.valid_on(on):
            return f"NHG subcode {code} is not valid on {on.isoformat()} ({entry.validity()})"
    return None


def normalise_icd10(code: str) -> str:
    """ICD-10 code with the dot after the third character: 'U071' -> 'U07.1'."""
    code = code.strip().upper()
    if len(code) > 3 and code[3] != ".":
        return f"{code[:3]}.{code[3:]}"
    return code


def icd10_problem(code: str, on: date | None = None) -> str | None:
    """Why ``code`` is not a valid WHO ICD-10 code on ``on``, or None when it is."""
    if ICD10_PATTERN.match(code) is None:
        return (
            "not an ICD-10 code: expected a letter, two digits and an optional "
            "subcategory, e.g. U07.1"
        )
    normal = normalise_icd10(code)
    if ICD10_PROVISIONAL.match(normal):
        entry = icd10_provisional_codes().get(normal)
        if entry is None:
            known = ", ".join(sorted(icd10_provisional_codes()))
            return f"unknown ICD-10 code {normal} in the provisional U00-U49 range (known: {known})"
        if on is not None and not entry.valid_on(on):
            return f"ICD-10 code {normal} is not valid on {on.isoformat()} ({entry.validity()})"
    return None
