"""The Long COVID case definition panel: index COVID, symptoms 4-52 weeks later, merges."""

from __future__ import annotations

import datetime as dt

from linkwatch.dashboards.code_groups import code_groups_of
from linkwatch.dashboards.model import create_model
from linkwatch.dashboards.panels import Filters
from linkwatch.dashboards.service import PanelService
from linkwatch.streams.warehouse import EmbeddedWarehouse

START = dt.date(2022, 1, 3)  # a Monday


def event(person: str, week: int, code: str, n: int) -> dict[str, object]:
    when = dt.datetime.combine(START + dt.timedelta(weeks=week, days=1), dt.time(9), dt.UTC)
    return {
        "event_id": f"{person}-{n}", "source": "gp_consultation", "provider_id": "GP-1",
        "person_id": person, "link_outcome": "linked", "link_weight": 12.0, "codes": [code],
        "code_groups": code_groups_of([code], when.date()), "event_time": when,
        "age_band": "45_64", "sex": "FEMALE", "pc4": "9712", "region": "Groningen",
        "ses_quintile": 4, "kafka_topic": "ehr.gp.v1", "kafka_partition": 0, "kafka_offset": n,
    }  # fmt: skip


def test_case_definition_counts_each_person_once_at_the_week_they_qualify(
    embedded_warehouse: EmbeddedWarehouse, warehouse_db: str
) -> None:
    create_model(embedded_warehouse, warehouse_db)
    plan = [
        ("a", 0, "R83"), ("a", 2, "A04"), ("a", 6, "A04"), ("a", 9, "R02"),  # qualifies week 6
        ("b", 5, "A04"),  # symptoms without an index COVID episode: not a case
        ("c", 0, "U07.1"), ("c", 60, "A04"),  # symptom after more than 52 weeks: not a case
        ("d", 3, "U09.9"),  # explicit post-COVID code: a case in week 3
        ("e", 1, "R74"),  # index episode of 'e' ...
        ("f", 8, "P20"),  # ... whose symptom was recorded under 'f', merged into 'e' below
    ]  # fmt: skip
    rows = [event(p, w, c, n) for n, (p, w, c) in enumerate(plan)]
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    embedded_warehouse.insert(f"{warehouse_db}.linked_events", columns)
    service = PanelService(embedded_warehouse, warehouse_db, threshold=1)  # show every count
    period = Filters(date_from=START, date_to=START + dt.timedelta(weeks=70))

    def cases() -> dict[dt.date, int]:
        result = service.run("long_covid_weekly", period).data
        return {r["week"]: r["persons"] for r in result.rows}

    week = lambda n: START + dt.timedelta(weeks=n)  # noqa: E731
    assert cases() == {week(3): 1, week(6): 1}
    merged = dt.datetime(2022, 5, 1, tzinfo=dt.UTC)
    embedded_warehouse.insert(
        f"{warehouse_db}.person_merges",
        {"person_id": ["f"], "canonical_person_id": ["e"], "merged_at": [merged], "version": [1]},
    )
    assert cases() == {week(3): 1, week(6): 1, week(8): 1}
    # With the default threshold these single persons are not shown.
    hidden = PanelService(embedded_warehouse, warehouse_db).run("long_covid_weekly", period)
    assert all(r["persons"] is None for r in hidden.data.rows)
