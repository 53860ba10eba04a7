"""A small, deterministic sample warehouse: areas, linked events, merges, detector output.

For trying the dashboards without the pipeline (``linkwatch serve --sample``) and for
tests. Everything is drawn from a seeded numpy generator, so a seed gives the same
rows everywhere. Zeeland gets very few events on purpose, so its cells show as
suppressed; Groningen gets a fatigue signal in its last weeks, with an open alert.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from linkwatch.dashboards.code_groups import code_groups_of
from linkwatch.dashboards.panels import AGE_BANDS, SEXES, SOURCES
from linkwatch.dashboards.regions import province_of_pc4
from linkwatch.streams.warehouse import Warehouse

# (pc4, SES quintile): two areas per province in most provinces, one tiny one in Zeeland.
AREAS = (
    ("9712", 2), ("9901", 5), ("8911", 3), ("8441", 4), ("9401", 4), ("7811", 5),
    ("7511", 4), ("8011", 2), ("1315", 3), ("8232", 4), ("6511", 3), ("7311", 4),
    ("3511", 1), ("3431", 2), ("1012", 1), ("2011", 2), ("2511", 3), ("3011", 5),
    ("4331", 3), ("5611", 2), ("4811", 3), ("6211", 4), ("5911", 5),
)  # fmt: skip
SMALL_AREA = "4331"  # Zeeland: population too small to show its counts
CODES = {
    "gp_consultation": ["A04", "R02", "R05", "P20", "K04", "N16", "N01", "L18", "R83", "R74"],
    "ooh_contact": ["R02", "K04", "A11", "R05", "R74", "N17"],
    "hospital_episode": ["U07.1", "U09.9", "R53", "J18.9"],
}
SOURCE_SHARE = (0.75, 0.17, 0.08)
AGE_SHARE = (0.16, 0.12, 0.25, 0.27, 0.20)


@dataclass(frozen=True)
class SampleSummary:
    """What :func:`load_sample` wrote."""

    events: int
    weeks: int
    first_week: dt.date
    last_week: dt.date


def sample_events(
    *, seed: int = 7, weeks: int = 26, last_week: dt.date = dt.date(2022, 6, 27)
) -> dict[str, list[Any]]:
    """Linked events column by column, ordered by event time."""
    rng = np.random.default_rng(seed)
    first = last_week - dt.timedelta(weeks=weeks - 1)
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "event_id", "source", "provider_id", "person_id", "link_outcome", "link_weight",
            "codes", "code_groups", "event_time", "age_band", "sex", "pc4", "region",
            "ses_quintile", "kafka_topic", "kafka_partition", "kafka_offset",
        )
    }  # fmt: skip
    offset = 0
    for w in range(weeks):
        monday = first + dt.timedelta(weeks=w)
        for pc4, quintile in AREAS:
            base = 1.0 if pc4 == SMALL_AREA else 6.0 + 1.5 * quintile
            n = int(rng.poisson(base))
            signal = pc4 == "9712" and w >= weeks - 4
            if signal:
                n += 12 + 4 * (w - (weeks - 4))
            for j in range(n):
                source = str(rng.choice(SOURCES, p=SOURCE_SHARE))
                code = "A04" if signal and j % 2 == 0 else str(rng.choice(CODES[source]))
                when = dt.datetime.combine(
                    monday + dt.timedelta(days=int(rng.integers(0, 7))),
                    dt.time(int(rng.integers(7, 22)), int(rng.integers(0, 60))),
                    tzinfo=dt.UTC,
                )
                person = int(rng.integers(0, 4000))
                outcome = str(rng.choice(["linked", "new", "review"], p=[0.8, 0.17, 0.03]))
                cols["event_id"].append(f"ev-{seed}-{offset:07d}")
                cols["source"].append(source)
                cols["provider_id"].append(f"{source[:3].upper()}-{pc4[:2]}")
                cols["person_id"].append(f"p{person:05d}")
                cols["link_outcome"].append(outcome)
                cols["link_weight"].append(float(round(rng.normal(14.0, 3.0), 2)))
                cols["codes"].append([code])
                cols["code_groups"].append(code_groups_of([code], when.date()))
                cols["event_time"].append(when)
                cols["age_band"].append(str(rng.choice(AGE_BANDS, p=AGE_SHARE)))
                cols["sex"].append(str(rng.choice(SEXES)))
                cols["pc4"].append(pc4)
                cols["region"].append(province_of_pc4(pc4))
                cols["ses_quintile"].append(quintile)
                cols["kafka_topic"].append(f"ehr.{source.split('_')[0]}.v1")
                cols["kafka_partition"].append(0)
                cols["kafka_offset"].append(offset)
                offset += 1
    order = sorted(range(offset), key=lambda i: cols["event_time"][i])
    return {k: [v[i] for i in order] for k, v in cols.items()}


def sample_areas(year: int = 2022) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """The ``areas`` and ``area_population`` tables' rows for :data:`AREAS`."""
    areas: dict[str, list[Any]] = {"pc4": [], "year": [], "region": [], "ses_quintile": []}
    pop: dict[str, list[Any]] = {"pc4": [], "year": [], "age_band": [], "sex": [], "population": []}
    for pc4, quintile in AREAS:
        areas["pc4"].append(pc4)
        areas["year"].append(year)
        areas["region"].append(province_of_pc4(pc4))
        areas["ses_quintile"].append(quintile)
        total = 300 if pc4 == SMALL_AREA else 20000
        for band, share in zip(AGE_BANDS, AGE_SHARE, strict=True):
            for sex in SEXES:
                pop["pc4"].append(pc4)
                pop["year"].append(year)
                pop["age_band"].append(band)
                pop["sex"].append(sex)
                pop["population"].append(int(total * share / 2))
    return areas, pop


def load_sample(warehouse: Warehouse, database: str, *, seed: int = 7) -> SampleSummary:
    """Fill ``database`` (whose model exists) with the sample; idempotent per seed."""
    events = sample_events(seed=seed)
    warehouse.insert(f"{database}.linked_events", events, dedup_token=f"sample-{seed}")
    areas, pop = sample_areas()
    warehouse.insert(f"{database}.areas", areas)
    warehouse.insert(f"{database}.area_population", pop)
    merged_at = dt.datetime(2022, 6, 1, tzinfo=dt.UTC)
    warehouse.insert(
        f"{database}.person_merges",
        {
            "person_id": ["p00001", "p00002"],
            "canonical_person_id": ["p00003", "p00003"],
            "merged_at": [merged_at, merged_at],
            "version": [1, 1],
        },
    )
    weeks = sorted({t.date() - dt.timedelta(days=t.weekday()) for t in events["event_time"]})
    _sample_detector_output(warehouse, database, events, weeks)
    return SampleSummary(len(events["event_id"]), len(weeks), weeks[0], weeks[-1])


def _sample_detector_output(
    warehouse: Warehouse, database: str, events: dict[str, list[Any]], weeks: list[dt.date]
) -> None:
    # A moving-average band stands in for the detectors' output, so the expected band
    # and the alert table have something to show before the alerting stage has run.
    per_week = {w: 0 for w in weeks}
    for t in events["event_time"]:
        per_week[t.date() - dt.timedelta(days=t.weekday())] += 1
    counts = [per_week[w] for w in weeks]
    rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "method", "code_group", "region", "age_band", "sex", "ses_quintile", "week",
            "observed", "expected", "upperbound", "alarm", "computed_at",
        )
    }  # fmt: skip
    now = dt.datetime(2022, 7, 4, tzinfo=dt.UTC)
    for i in range(8, len(weeks)):
        past = counts[i - 8 : i]
        expected = float(np.mean(past))
        upper = expected + 2.58 * float(np.std(past) + 1.0)
        for k, v in (
            ("method", "sample-moving-average"), ("code_group", "all"), ("region", ""),
            ("age_band", ""), ("sex", ""), ("ses_quintile", 0), ("week", weeks[i]),
            ("observed", float(counts[i])), ("expected", expected), ("upperbound", upper),
            ("alarm", int(counts[i] > upper)), ("computed_at", now),
        ):  # fmt: skip
            rows[k].append(v)
    warehouse.insert(f"{database}.detector_results", rows)
    evidence = {"weeks": [w.isoformat() for w in weeks[-4:]], "note": "sample data"}
    warehouse.insert(
        f"{database}.alerts",
        {
            "alert_id": ["sample-fatigue-groningen"],
            "kind": ["epidemiological"],
            "state": ["open"],
            "method": ["sample-moving-average"],
            "code_group": ["symptom_fatigue"],
            "region": ["Groningen"],
            "age_band": [""],
            "sex": [""],
            "ses_quintile": [0],
            "first_week": [weeks[-4]],
            "last_week": [weeks[-1]],
            "observed": [float(counts[-1])],
            "expected": [float(np.mean(counts[-12:-4]))],
            "upperbound": [float(np.mean(counts[-12:-4]) * 1.3)],
            "score": [3.1],
            "evidence": [json.dumps(evidence)],
            "opened_at": [now],
            "updated_at": [now],
            "version": [1],
        },
    )
