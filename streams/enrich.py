"""The enrich stage: area SES, region, age band and code groups for every linked event.

The area table is fed by the compacted ``ref.area-ses.v1`` topic (latest value per
PC4 and year); an event takes the values of its area for the event's year, or the
nearest year the table has. Everything an event lacks is recorded as unknown
(age band ``unknown``, SES quintile 0, region ``''``), never guessed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from linkwatch.dashboards.code_groups import code_groups_of
from linkwatch.dashboards.regions import province_of_pc4
from linkwatch.streams.ingest import IngestedEvent

AGE_BANDS = (
    (0, 14, "0_14"),
    (15, 24, "15_24"),
    (25, 44, "25_44"),
    (45, 64, "45_64"),
    (65, 200, "65_plus"),
)
UNKNOWN_AGE = "unknown"
# area_ses's AgeBand symbols -> the warehouse's band labels
_AVRO_BANDS = {
    "AGE_0_14": "0_14",
    "AGE_15_24": "15_24",
    "AGE_25_44": "25_44",
    "AGE_45_64": "45_64",
    "AGE_65_PLUS": "65_plus",
}


def age_at(identity: Mapping[str, Any], day: dt.date) -> int | None:
    """Age in whole years on ``day``; from the birth year alone, the age reached that year."""
    dob = identity.get("date_of_birth")
    if isinstance(dob, dt.date):
        return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))
    year = identity.get("birth_year")
    return day.year - int(year) if year else None


def age_band(age: int | None) -> str:
    if age is None or age < 0:
        return UNKNOWN_AGE
    for low, high, label in AGE_BANDS:
        if low <= age <= high:
            return label
    return UNKNOWN_AGE


@dataclass(frozen=True)
class Area:
    """One area in one year."""

    pc4: str
    year: int
    region: str
    ses_quintile: int  # 1 highest SES .. 5 lowest; 0 unknown
    ses_woa_mean: float | None
    households: int | None
    population: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (age band, sex) -> n


class AreaTable:
    """Areas by PC4 and year, kept up to date from the compacted reference topic."""

    def __init__(self) -> None:
        self._areas: dict[str, dict[int, Area]] = {}

    def __len__(self) -> int:
        return sum(len(years) for years in self._areas.values())

    def update(self, record: Mapping[str, Any]) -> Area:
        """Take one ``area_ses`` record (the latest value for its key wins)."""
        pc4 = str(record["pc4"])
        try:
            region = province_of_pc4(pc4)
        except ValueError:
            region = ""
        area = Area(
            pc4=pc4,
            year=int(record["year"]),
            region=region,
            ses_quintile=int(record.get("ses_quintile") or 0),
            ses_woa_mean=record.get("ses_woa_mean"),
            households=record.get("households"),
            population={
                (_AVRO_BANDS.get(c["age_band"], c["age_band"]), c["sex"]): int(c["count"])
                for c in record.get("population") or ()
            },
        )
        self._areas.setdefault(pc4, {})[area.year] = area
        return area

    def lookup(self, pc4: str, year: int) -> Area | None:
        """The area in ``year``, else the latest earlier year, else the earliest later one."""
        years = self._areas.get(pc4)
        if not years:
            return None
        if year in years:
            return years[year]
        earlier = [y for y in years if y < year]
        return years[max(earlier)] if earlier else years[min(years)]

    def all(self) -> Iterable[Area]:
        for years in self._areas.values():
            yield from years.values()


@dataclass(frozen=True)
class LinkOutcome:
    """What the linker decided for an event's identity."""

    person_id: str
    outcome: str  # linked | new | review
    weight: float


def linked_row(event: IngestedEvent, link: LinkOutcome, areas: AreaTable) -> dict[str, Any]:
    """The ``linked_events`` row of one event."""
    day = event.event_time.date()
    postcode = event.identity.get("postcode") or ""
    pc4 = postcode[:4] if len(postcode) >= 4 and postcode[:4].isdigit() else ""
    area = areas.lookup(pc4, day.year) if pc4 else None
    region = area.region if area else _province_or_blank(pc4)
    codes = [code for _, code in event.codes]
    return {
        "event_id": event.event_id,
        "source": event.source,
        "provider_id": event.provider_id,
        "person_id": link.person_id,
        "link_outcome": link.outcome,
        "link_weight": float(link.weight),
        "codes": codes,
        "code_groups": code_groups_of(codes, day),
        "event_time": event.event_time,
        "age_band": age_band(age_at(event.identity, day)),
        "sex": event.identity.get("sex") or "UNKNOWN",
        "pc4": pc4,
        "region": region,
        "ses_quintile": area.ses_quintile if area else 0,
        "kafka_topic": event.topic,
        "kafka_partition": event.partition,
        "kafka_offset": event.offset,
    }


def _province_or_blank(pc4: str) -> str:
    if not pc4:
        return ""
    try:
        return province_of_pc4(pc4)
    except ValueError:
        return ""
