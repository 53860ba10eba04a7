"""Enrichment and the idempotent sink, on the real embedded ClickHouse."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from linkwatch.dashboards.model import create_model
from linkwatch.streams.enrich import AreaTable, LinkOutcome, age_at, age_band, linked_row
from linkwatch.streams.ingest import IngestedEvent
from linkwatch.streams.pipeline import EventLoader, _json
from linkwatch.streams.shared_sink import LinkedMessage, decode_linked, row_from_linked
from linkwatch.streams.sink import WarehouseSink
from linkwatch.streams.warehouse import EmbeddedWarehouse


def area(pc4: str, year: int, quintile: int) -> dict[str, Any]:
    return {
        "pc4": pc4,
        "year": year,
        "households": 100,
        "ses_woa_mean": 0.1,
        "ses_quintile": quintile,
        "population": [{"age_band": "AGE_45_64", "sex": "FEMALE", "count": 40}],
    }


def event(
    offset: int, when: dt.datetime, *, postcode: str = "9712AB", codes: tuple[str, ...] = ("R05",)
) -> IngestedEvent:
    return IngestedEvent(
        source="gp_consultation",
        topic="ehr.gp.v1",
        partition=offset % 2,
        offset=offset,
        schema_version=2,
        event_id=f"e-{offset}",
        event_time=when,
        provider_id="GP-1",
        source_record_id=f"r-{offset}",
        identity={
            "date_of_birth": dt.date(1970, 6, 15),
            "birth_year": 1970,
            "sex": "FEMALE",
            "postcode": postcode,
        },
        codes=tuple(("ICPC", c) for c in codes),
    )


def test_ages_from_full_dates_and_from_birth_years() -> None:
    assert age_at({"date_of_birth": dt.date(1970, 6, 15)}, dt.date(2020, 6, 14)) == 49
    assert age_at({"date_of_birth": dt.date(1970, 6, 15)}, dt.date(2020, 6, 15)) == 50
    assert age_at({"birth_year": 1970}, dt.date(2020, 1, 1)) == 50
    assert age_at({}, dt.date(2020, 1, 1)) is None
    assert [age_band(a) for a in (0, 14, 15, 44, 45, 64, 65, 104)] == [
        "0_14", "0_14", "15_24", "25_44", "45_64", "45_64", "65_plus", "65_plus"
    ]  # fmt: skip
    assert age_band(None) == "unknown"


@given(st.integers(min_value=0, max_value=120), st.integers(min_value=0, max_value=120))
def test_age_bands_are_ordered_like_ages(a: int, b: int) -> None:
    order = ["0_14", "15_24", "25_44", "45_64", "65_plus"]
    if a <= b:
        assert order.index(age_band(a)) <= order.index(age_band(b))


def test_areas_take_the_events_year_or_the_nearest_one() -> None:
    table = AreaTable()
    table.update(area("9712", 2020, 2))
    table.update(area("9712", 2022, 4))
    assert table.lookup("9712", 2022).ses_quintile == 4  # type: ignore[union-attr]
    assert table.lookup("9712", 2021).ses_quintile == 2  # type: ignore[union-attr]  # latest earlier
    assert table.lookup("9712", 2019).ses_quintile == 2  # type: ignore[union-attr]  # earliest later
    assert table.lookup("1011", 2020) is None
    assert table.lookup("9712", 2020).region == "Groningen"  # type: ignore[union-attr]


def test_a_linked_row_carries_area_age_and_code_groups() -> None:
    table = AreaTable()
    table.update(area("9712", 2021, 5))
    row = linked_row(
        event(7, dt.datetime(2021, 3, 2, 10, tzinfo=dt.UTC), codes=("R05",)),
        LinkOutcome("P-1", "new", 0.0),
        table,
    )
    assert row["pc4"] == "9712"
    assert row["region"] == "Groningen"
    assert row["ses_quintile"] == 5
    assert row["age_band"] == "45_64"
    assert row["codes"] == ["R05"]
    assert row["code_groups"]  # cough is a Long COVID symptom cluster
    unknown = linked_row(
        event(8, dt.datetime(2021, 3, 2, tzinfo=dt.UTC), postcode=""),
        LinkOutcome("P-2", "new", 0.0),
        table,
    )
    assert (unknown["pc4"], unknown["region"], unknown["ses_quintile"]) == ("", "", 0)


def _rows(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    table = AreaTable()
    table.update(area("9712", 2021, 3))
    start = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    events = [event(i, start + dt.timedelta(hours=rng.randrange(24 * 200))) for i in range(n)]
    return [
        linked_row(e, LinkOutcome(f"P-{i % 50}", "linked", 12.5), table)
        for i, e in enumerate(events)
    ]


def _counts(wh: EmbeddedWarehouse, db: str) -> tuple[int, int, int]:
    raw = wh.query(
        "SELECT count(), uniqExact(kafka_topic, kafka_partition, kafka_offset) "
        f"FROM {db}.linked_events"
    ).rows[0]
    weekly = wh.query(
        f"SELECT sum(events) FROM {db}.weekly_counts WHERE code_group = 'all'"
    ).scalar()
    return int(raw[0]), int(raw[1]), int(weekly)


def test_a_linked_message_gives_back_its_row() -> None:
    for row in _rows(20, seed=3):
        assert row_from_linked(_json(row)) == row


def test_linked_messages_that_are_not_rows_are_dead_lettered_with_their_place() -> None:
    rows = _rows(4, seed=5)
    wrong_type = dict(rows[2], ses_quintile="high")
    values = [
        _json(rows[0]),
        b"\x00\x01 not json",
        _json({k: v for k, v in rows[1].items() if k != "person_id"}),
        _json(wrong_type),
        _json(dict(rows[3], event_time="yesterday")),
        None,  # a tombstone: nothing to load, nothing wrong
    ]
    messages = [LinkedMessage(1, 100 + i, b"P-1", v, 1.5) for i, v in enumerate(values)]
    loaded, stamps, letters = decode_linked(messages)
    assert loaded == [rows[0]]
    assert stamps == [1.5]
    assert [(d.source_partition, d.source_offset) for d in letters] == [
        (1, 101), (1, 102), (1, 104), (1, 103)
    ]  # fmt: skip
    reasons = " | ".join(d.reason for d in letters)
    assert "not a JSON document" in reasons
    assert "missing fields: person_id" in reasons
    assert "event_time 'yesterday' is not an ISO time" in reasons
    assert "wrong type" in reasons
    assert all(d.reason_code == "bad_linked_row" and d.original for d in letters)


def test_an_event_seen_twice_in_one_batch_is_loaded_once(
    embedded_warehouse: EmbeddedWarehouse, warehouse_db: str
) -> None:
    # A shared loader can meet an event and its replay in one batch of the linked topic.
    create_model(embedded_warehouse, warehouse_db)
    loader = EventLoader(WarehouseSink(embedded_warehouse, warehouse_db))
    rows = _rows(500, seed=4)
    assert loader.load(rows[:300] + rows[200:400]) == 400
    loader.forget_partitions()  # as after a rebalance: what is stored is read again
    assert loader.load(rows[350:]) == 100
    assert _counts(embedded_warehouse, warehouse_db) == (500, 500, 500)


def test_replayed_blocks_are_dropped_and_views_stay_equal_to_the_raw_rows(
    embedded_warehouse: EmbeddedWarehouse, warehouse_db: str
) -> None:
    create_model(embedded_warehouse, warehouse_db)
    sink = WarehouseSink(embedded_warehouse, warehouse_db)
    rows = _rows(2000, seed=1)
    sink.write_events(rows[:1200])
    sink.write_events(rows[:1200])  # the same batch again, as after a crash before the commit
    sink.write_events(rows[1200:])
    assert _counts(embedded_warehouse, warehouse_db) == (2000, 2000, 2000)


def test_a_replay_cut_differently_is_filtered_by_stored_offsets(
    embedded_warehouse: EmbeddedWarehouse, warehouse_db: str
) -> None:
    create_model(embedded_warehouse, warehouse_db)
    sink = WarehouseSink(embedded_warehouse, warehouse_db)
    rows = _rows(1000, seed=2)
    sink.write_events(rows[:600])
    replay = rows[400:]  # the batch after the restart starts earlier and ends later
    stored: set[tuple[int, int]] = set()
    for partition in (0, 1):
        offsets = [r["kafka_offset"] for r in replay if r["kafka_partition"] == partition]
        stored |= {
            (partition, o)
            for o in sink.stored_offsets("ehr.gp.v1", partition, min(offsets), max(offsets))
        }
    fresh = [r for r in replay if (r["kafka_partition"], r["kafka_offset"]) not in stored]
    assert len(fresh) == 400
    sink.write_events(fresh)
    assert _counts(embedded_warehouse, warehouse_db) == (1000, 1000, 1000)


def test_areas_and_population_are_written(
    embedded_warehouse: EmbeddedWarehouse, warehouse_db: str
) -> None:
    create_model(embedded_warehouse, warehouse_db)
    table = AreaTable()
    table.update(area("9712", 2021, 3))
    table.update(area("1011", 2021, 1))
    sink = WarehouseSink(embedded_warehouse, warehouse_db)
    assert sink.write_areas(table.all()) == 2
    rows = embedded_warehouse.query(
        f"SELECT pc4, region, ses_quintile FROM {warehouse_db}.areas FINAL ORDER BY pc4"
    ).rows
    assert rows == [("1011", "Noord-Holland", 1), ("9712", "Groningen", 3)]
    pop = embedded_warehouse.query(
        f"SELECT sum(population) FROM {warehouse_db}.area_population FINAL"
    ).scalar()
    assert pop == 80
