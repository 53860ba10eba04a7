"""Reading and writing the identity CSV files that ``linkwatch link`` works on.

Input header: ``record_id,source,national_id,given_name,family_name,date_of_birth,sex,postcode,
house_number,city`` (an extra ``street`` column is read when present); empty means missing.
Output: ``record_id,person_id``; truth files have the same shape.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path

from linkwatch.linkage.standardise import RawRecord

INPUT_COLUMNS: tuple[str, ...] = (
    "record_id",
    "source",
    "national_id",
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "postcode",
    "house_number",
    "city",
)


class IdentityFileError(ValueError):
    """An input file that cannot be read, with the file, line and problem named."""


def read_identity_csv(path: Path) -> Iterator[RawRecord]:
    """Yield the raw records of one input file, checking the header first."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise IdentityFileError(f"{path}: cannot open ({exc.strerror})") from None
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in INPUT_COLUMNS if c not in header]
        if missing:
            raise IdentityFileError(
                f"{path}: header lacks column(s) {', '.join(missing)} "
                f"(expected {','.join(INPUT_COLUMNS)})"
            )
        has_street = "street" in header
        for line, row in enumerate(reader, start=2):
            record_id = (row.get("record_id") or "").strip()
            if not record_id:
                raise IdentityFileError(f"{path}:{line}: field record_id is empty")
            yield RawRecord(
                record_id=record_id,
                source=row.get("source") or "",
                national_id=row.get("national_id"),
                given_name=row.get("given_name"),
                family_name=row.get("family_name"),
                date_of_birth=row.get("date_of_birth"),
                sex=row.get("sex"),
                postcode=row.get("postcode"),
                house_number=row.get("house_number"),
                city=row.get("city"),
                street=row.get("street") if has_street else None,
            )


def read_identity_files(paths: Iterable[Path]) -> list[RawRecord]:
    """Read several input files in order, refusing a record id seen twice."""
    records: list[RawRecord] = []
    seen: dict[str, Path] = {}
    for path in paths:
        for record in read_identity_csv(path):
            if record.record_id in seen:
                raise IdentityFileError(
                    f"{path}: record_id {record.record_id!r} "
                    f"already read from {seen[record.record_id]}"
                )
            seen[record.record_id] = path
            records.append(record)
    return records


def write_identity_csv(path: Path, records: Iterable[RawRecord]) -> None:
    """Write raw records in the input format (with ``street`` when any record has one)."""
    rows = list(records)
    with_street = any(r.street for r in rows)
    columns = [*INPUT_COLUMNS, "street"] if with_street else list(INPUT_COLUMNS)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for r in rows:
            writer.writerow([getattr(r, c) or "" for c in columns])


def read_person_map(path: Path, value_column: str = "person_id") -> dict[str, str]:
    """Read a ``record_id,person_id`` file (clusters or truth) into a dict."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise IdentityFileError(f"{path}: cannot open ({exc.strerror})") from None
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        for column in ("record_id", value_column):
            if column not in header:
                raise IdentityFileError(
                    f"{path}: header lacks column {column} (expected record_id,{value_column})"
                )
        out: dict[str, str] = {}
        for line, row in enumerate(reader, start=2):
            record_id = (row["record_id"] or "").strip()
            person = (row[value_column] or "").strip()
            if not record_id or not person:
                raise IdentityFileError(f"{path}:{line}: empty record_id or {value_column}")
            out[record_id] = person
        return out


def write_person_map(path: Path, record_ids: Iterable[str], person_ids: Iterable[str]) -> None:
    """Write ``record_id,person_id`` rows."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["record_id", "person_id"])
        writer.writerows(zip(record_ids, person_ids, strict=True))
