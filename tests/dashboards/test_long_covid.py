"""The Long COVID case definition panel: index COVID, symptoms 4-52 weeks later, merges,
and its pre-aggregated state equal to the definition over raw events."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from linkwatch.dashboards.code_groups import code_groups_of
from linkwatch.dashboards.model import create_model
from linkwatch.dashboards.panels import (
    AGE_BANDS,
    SEXES,
    SOURCES,
    Filters,
    panel,
    panel_sql,
)
from linkwatch.dashboards.reference import raw_sql
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

    def week(n: int) -> dt.date:
        return START + dt.timedelta(weeks=n)

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


CODES = ("R83", "R74", "U07.1", "A04", "R02", "P20", "N01", "U09.9", "A03", "R05")
REGIONS = ("Groningen", "Friesland", "Utrecht")
# (date_from, date_to, filters): the whole history, a year cut through the middle of
# persons' histories, and one value of each stratum filter in turn.
PERIODS = (
    (dt.date(2000, 1, 3), dt.date(2099, 12, 27)),
    (dt.date(2022, 7, 4), dt.date(2023, 7, 2)),
)
STRATA: tuple[dict[str, object], ...] = (
    {},
    {"source": "ooh_contact"},
    {"region": "Utrecht"},
    {"age_band": "25_44"},
    {"sex": "MALE"},
    {"ses_quintile": 2},
    {"region": "Groningen", "sex": "FEMALE", "source": "gp_consultation"},
)


def generated_events(seed: int, persons: int) -> list[dict[str, object]]:
    """Random histories over three years; strata vary within a person on purpose."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for p in range(persons):
        index = START + dt.timedelta(days=rng.randrange(0, 700))
        for _ in range(rng.randrange(1, 9)):
            codes = [rng.choice(CODES)]
            if rng.random() < 0.08:
                codes.append(rng.choice(CODES))  # an event with two codes
            # Dates cluster around the 4- and 52-week edges of someone's index date.
            offset = rng.choice((-30, 0, 27, 28, 29, 100, 363, 364, 365, rng.randrange(-300, 800)))
            when = max(START, index + dt.timedelta(days=offset))
            rows.append(
                event(f"p{p}", 0, codes[0], len(rows))
                | {
                    "codes": codes,
                    "code_groups": sorted({g for c in codes for g in code_groups_of([c], when)}),
                    "event_time": dt.datetime.combine(when, dt.time(rng.randrange(24)), dt.UTC),
                    "source": rng.choice(SOURCES),
                    "region": rng.choice(REGIONS),
                    "age_band": rng.choice(AGE_BANDS[1:4]),
                    "sex": rng.choice(SEXES),
                    "ses_quintile": rng.randrange(1, 4),
                }
            )
    return rows


def merge_rows(rows: list[tuple[str, str, int]]) -> dict[str, list[object]]:
    when = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
    return {
        "person_id": [r[0] for r in rows],
        "canonical_person_id": [r[1] for r in rows],
        "merged_at": [when] * len(rows),
        "version": [r[2] for r in rows],
    }


def raw_definition(db: str) -> str:
    """The case definition over raw linked events: what the pre-aggregated panel must equal."""
    return raw_sql("long_covid_weekly", db)


def panel_vs_raw(wh: EmbeddedWarehouse, db: str) -> list[tuple[object, ...]]:
    """Mismatches between the panel and the raw definition over every period and filter."""
    panel_sql_text = panel_sql(panel("long_covid_weekly"), db)
    raw = raw_definition(db)
    mismatches: list[tuple[object, ...]] = []
    for date_from, date_to in PERIODS:
        for strata in STRATA:
            params = Filters(date_from, date_to, **strata).params()  # type: ignore[arg-type]
            got = [(r[0], r[1]) for r in wh.query(panel_sql_text, params).rows]
            want = [(r[0], r[1]) for r in wh.query(raw, params).rows]
            if got != want:
                mismatches.append((date_from, strata, got, want))
    return mismatches


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pre_aggregated_panel_equals_the_raw_definition_with_merges_and_shuffled_blocks(
    embedded_warehouse: EmbeddedWarehouse, warehouse_db: str, seed: int
) -> None:
    create_model(embedded_warehouse, warehouse_db)
    rows = generated_events(seed, persons=120)
    random.Random(seed).shuffle(rows)  # later events often arrive before earlier ones
    table = f"{warehouse_db}.linked_events"
    cut = sorted(random.Random(seed + 100).sample(range(1, len(rows)), 6))
    blocks = [rows[a:b] for a, b in zip([0, *cut], [*cut, len(rows)], strict=True)]
    merges = f"{warehouse_db}.person_merges"
    # Merges before some events arrive: p1 and p2 are absorbed by p0, p4 by p3.
    embedded_warehouse.insert(merges, merge_rows([("p1", "p0", 1), ("p2", "p0", 1)]))
    embedded_warehouse.insert(merges, merge_rows([("p4", "p3", 1)]))
    for n, block in enumerate(blocks):
        columns = {k: [r[k] for r in block] for k in block[0]}
        embedded_warehouse.insert(table, columns, dedup_token=f"seed{seed}/block{n}")
        if n == 2:
            embedded_warehouse.insert(table, columns)  # a replay without a token: duplicates
    parts = embedded_warehouse.query(
        "SELECT count() FROM system.parts WHERE database = {db:String} "
        "AND table = 'long_covid_persons' AND active",
        {"db": warehouse_db},
    ).scalar()
    assert parts > 1  # the state really is spread over several insert blocks
    assert panel_vs_raw(embedded_warehouse, warehouse_db) == []
    # Later merges: p0 (with everyone it absorbed) into p5, so the linker rewrites p1 and
    # p2 too; p6 into p7; p8 into an id that has no events of its own.
    embedded_warehouse.insert(
        merges,
        merge_rows(
            [("p0", "p5", 2), ("p1", "p5", 2), ("p2", "p5", 2), ("p6", "p7", 1), ("p8", "x", 1)]
        ),
    )
    assert panel_vs_raw(embedded_warehouse, warehouse_db) == []
    # Background merges of the state and the onset counts change nothing.
    for table in ("long_covid_persons", "long_covid_onsets", "long_covid_strata"):
        embedded_warehouse.command(f"OPTIMIZE TABLE {warehouse_db}.{table} FINAL")
    assert panel_vs_raw(embedded_warehouse, warehouse_db) == []
    total = embedded_warehouse.query(
        f"SELECT sum(persons) FROM ({raw_definition(warehouse_db)})",
        Filters(*PERIODS[0]).params(),
    ).scalar()
    assert total > 20  # the generated data holds a fair number of cases


#: What schema version 3 added for the merge correction, views first.
CORRECTION_OBJECTS = (
    "long_covid_corrections_blocks_mv", "long_covid_corrections_merges_mv",
    "long_covid_corrections_onsets_mv", "long_covid_corrections", "person_merges_latest",
)  # fmt: skip


def test_a_model_of_schema_version_2_gets_its_merge_correction_from_the_state(
    embedded_warehouse: EmbeddedWarehouse, warehouse_db: str
) -> None:
    wh, db = embedded_warehouse, warehouse_db
    create_model(wh, db)
    # What version 2 left: no correction (its panel corrected at every query, from
    # copies of the state of the merged ids), merges and events stored under it.
    for name in CORRECTION_OBJECTS:
        wh.command(f"DROP TABLE {db}.{name}")
    for name in ("long_covid_persons_merged", "long_covid_strata_merged"):
        wh.command(f"CREATE TABLE {db}.{name} (person_id String) ENGINE = MergeTree ORDER BY ()")
    wh.command(f"DELETE FROM {db}.schema_version WHERE version = 3")
    rows = generated_events(9, persons=80)
    wh.insert(f"{db}.linked_events", {k: [r[k] for r in rows] for k in rows[0]})
    wh.insert(f"{db}.person_merges", merge_rows([("p1", "p0", 1), ("p3", "p2", 1)]))
    assert panel_vs_raw(wh, db) != []  # without the correction, merged persons count twice

    assert create_model(wh, db) == 3
    assert panel_vs_raw(wh, db) == []
    left = set(wh.query(f"SELECT name FROM system.tables WHERE database = '{db}'").column("name"))
    assert not left & {"long_covid_persons_merged", "long_covid_strata_merged"}
    # Later merges and blocks go on from the correction built.
    wh.insert(f"{db}.person_merges", merge_rows([("p0", "p4", 2), ("p1", "p4", 2)]))
    more = generated_events(10, persons=20)
    for r in more:
        r["event_id"] = f"later-{r['event_id']}"
    wh.insert(f"{db}.linked_events", {k: [r[k] for r in more] for k in more[0]})
    assert panel_vs_raw(wh, db) == []


def test_a_model_of_schema_version_1_is_upgraded_and_its_state_rebuilt_from_the_events(
    embedded_warehouse: EmbeddedWarehouse, warehouse_db: str
) -> None:
    wh, db = embedded_warehouse, warehouse_db
    create_model(wh, db)
    # What version 1 left: onsets without filter masks, no daily linkage quality, and
    # events that reached linked_events before today's views existed.
    for name in (
        "long_covid_delta_mv", "long_covid_persons_mv", "long_covid_onsets_mv",
        "long_covid_strata_mv", "long_covid_onsets", "linkage_daily_mv", "linkage_daily",
        "person_days_mv", "person_days", "person_days_merged_mv", "person_days_merges_mv",
        "person_days_merged", *CORRECTION_OBJECTS,
    ):  # fmt: skip
        wh.command(f"DROP TABLE {db}.{name}")
    wh.command(f"CREATE TABLE {db}.long_covid_onsets (day Date, persons Int64) "
               "ENGINE = SummingMergeTree(persons) ORDER BY day")  # fmt: skip
    wh.command(f"DELETE FROM {db}.schema_version WHERE version >= 2")
    rows = generated_events(7, persons=80)
    wh.insert(f"{db}.linked_events", {k: [r[k] for r in rows] for k in rows[0]})
    wh.insert(f"{db}.person_merges", merge_rows([("p1", "p0", 1), ("p3", "p2", 1)]))

    assert create_model(wh, db) == 3
    assert "mask" in wh.query(f"DESCRIBE TABLE {db}.long_covid_onsets").column("name")
    assert panel_vs_raw(wh, db) == []
    period = Filters(*PERIODS[0]).params()
    quality = wh.query(panel_sql(panel("linkage_quality"), db), period).rows
    assert repr(quality) == repr(wh.query(raw_sql("linkage_quality", db), period).rows)
    assert quality[0][0] == len(rows)
    # Later blocks go on from the rebuilt state.
    more = generated_events(8, persons=30)
    for r in more:
        r["event_id"] = f"later-{r['event_id']}"
    wh.insert(f"{db}.linked_events", {k: [r[k] for r in more] for k in more[0]})
    assert panel_vs_raw(wh, db) == []
