"""The warehouse model on the embedded engine: idempotent creation, views equal to raw
queries (also after a replayed batch), merges followed, and the cluster variant's shape."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkwatch.dashboards.code_groups import code_groups_of
from linkwatch.dashboards.model import (
    ModelError,
    cluster_ddl,
    create_model,
    legacy_statements,
    schema_statements,
)
from linkwatch.dashboards.sample_data import sample_events
from linkwatch.streams.warehouse import EmbeddedWarehouse, ServerWarehouse

KEY = "code_group, source, region, age_band, sex, ses_quintile"


def view_vs_raw(wh: EmbeddedWarehouse, db: str, grain: str) -> tuple[list[Any], list[Any]]:
    table, column, raw_column = {
        "weekly": ("weekly_counts", "week", "iso_week"),
        "daily": ("daily_counts", "day", "event_date"),
    }[grain]
    view = wh.query(
        f"SELECT {column}, {KEY}, sum(events) AS n FROM {db}.{table} "
        f"GROUP BY {column}, {KEY} ORDER BY ALL"
    ).rows
    raw = wh.query(
        f"SELECT {raw_column} AS {column}, "
        "arrayJoin(arrayConcat(['all'], arrayDistinct(CAST(code_groups, 'Array(String)')))) "
        f"AS code_group, source, region, age_band, sex, ses_quintile, count() AS n "
        f"FROM {db}.linked_events GROUP BY {column}, {KEY} ORDER BY ALL"
    ).rows
    return view, raw


def test_model_is_created_idempotently(
    embedded_warehouse: EmbeddedWarehouse, warehouse_db: str
) -> None:
    assert create_model(embedded_warehouse, warehouse_db) == 3
    assert create_model(embedded_warehouse, warehouse_db) == 3
    tables = set(
        embedded_warehouse.query(
            "SELECT name FROM system.tables WHERE database = {db:String}", {"db": warehouse_db}
        ).column("name")
    )
    assert {
        "linked_events", "persons", "person_merges", "areas", "area_population", "code_groups",
        "alerts", "detector_results", "weekly_counts", "weekly_counts_mv", "daily_counts",
        "daily_counts_mv", "population_strata", "schema_version", "long_covid_persons",
        "long_covid_persons_mv", "long_covid_onsets", "long_covid_onsets_mv",
        "long_covid_delta", "long_covid_delta_mv", "long_covid_strata", "long_covid_strata_mv",
        "freshness", "freshness_mv", "linkage_daily", "linkage_daily_mv", "person_days",
        "person_days_mv", "person_days_merged", "long_covid_corrections",
        "long_covid_corrections_blocks_mv", "long_covid_corrections_merges_mv",
        "long_covid_corrections_onsets_mv", "person_merges_latest",
    } <= tables  # fmt: skip
    rows = embedded_warehouse.query(
        f"SELECT count() FROM {warehouse_db}.code_groups WHERE code_group = 'post_covid'"
    ).scalar()
    assert rows == 2  # U09.9 and SNOMED 1119303003, loaded once
    versions = embedded_warehouse.query(f"SELECT count() FROM {warehouse_db}.schema_version")
    assert versions.scalar() == 3


def test_views_equal_the_raw_query_after_a_replayed_batch(
    embedded_warehouse: EmbeddedWarehouse, warehouse_db: str
) -> None:
    create_model(embedded_warehouse, warehouse_db)
    events = sample_events(seed=3, weeks=10)
    half = len(events["event_id"]) // 2
    first = {k: v[:half] for k, v in events.items()}
    second = {k: v[half:] for k, v in events.items()}
    table = f"{warehouse_db}.linked_events"
    embedded_warehouse.insert(table, first, dedup_token="ehr.gp.v1/0/0-999")
    embedded_warehouse.insert(table, second, dedup_token="ehr.gp.v1/0/1000-1999")
    embedded_warehouse.insert(table, first, dedup_token="ehr.gp.v1/0/0-999")  # replay
    assert embedded_warehouse.query(f"SELECT count() FROM {table}").scalar() == len(
        events["event_id"]
    )
    for grain in ("weekly", "daily"):
        view, raw = view_vs_raw(embedded_warehouse, warehouse_db, grain)
        assert view == raw
        assert sum(r[-1] for r in view if r[1] == "all") == len(events["event_id"])


batches = st.lists(
    st.tuples(st.integers(0, 5), st.integers(1, 40)), min_size=1, max_size=6
)  # (batch number, rows): repeated numbers are replays of the same batch


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=batches)
def test_views_match_raw_counts_for_any_replay_pattern(
    embedded_warehouse: EmbeddedWarehouse, warehouse_db: str, plan: list[tuple[int, int]]
) -> None:
    create_model(embedded_warehouse, warehouse_db)
    embedded_warehouse.command(f"TRUNCATE TABLE {warehouse_db}.linked_events")
    embedded_warehouse.command(f"TRUNCATE TABLE {warehouse_db}.weekly_counts")
    embedded_warehouse.command(f"TRUNCATE TABLE {warehouse_db}.daily_counts")
    pool = sample_events(seed=11, weeks=3)
    sizes: dict[int, int] = {}
    token_salt = dt.datetime.now().isoformat()  # TRUNCATE keeps dedup hashes: fresh tokens
    for number, rows in plan:
        size = sizes.setdefault(number, rows)  # a replay resends the same rows
        start = number * 40
        batch = {k: v[start : start + size] for k, v in pool.items()}
        embedded_warehouse.insert(
            f"{warehouse_db}.linked_events", batch, dedup_token=f"{token_salt}/{number}"
        )
    expected = sum(sizes.values())
    assert (
        embedded_warehouse.query(f"SELECT count() FROM {warehouse_db}.linked_events").scalar()
        == expected
    )
    view, raw = view_vs_raw(embedded_warehouse, warehouse_db, "weekly")
    assert view == raw


def test_distinct_persons_follow_merges(
    embedded_warehouse: EmbeddedWarehouse, warehouse_db: str
) -> None:
    from linkwatch.dashboards.panels import Filters
    from linkwatch.dashboards.service import PanelService

    create_model(embedded_warehouse, warehouse_db)
    when = dt.datetime(2022, 3, 1, 10, tzinfo=dt.UTC)
    people = ["a", "b", "c", "d"]
    embedded_warehouse.insert(
        f"{warehouse_db}.linked_events",
        {
            "event_id": [f"e{i}" for i in range(4)], "source": ["gp_consultation"] * 4,
            "provider_id": ["GP-1"] * 4, "person_id": people, "link_outcome": ["new"] * 4,
            "link_weight": [10.0] * 4, "codes": [["A04"]] * 4,
            "code_groups": [code_groups_of(["A04"], when.date())] * 4, "event_time": [when] * 4,
            "age_band": ["25_44"] * 4, "sex": ["FEMALE"] * 4, "pc4": ["9712"] * 4,
            "region": ["Groningen"] * 4, "ses_quintile": [2] * 4, "kafka_topic": ["t"] * 4,
            "kafka_partition": [0] * 4, "kafka_offset": [0, 1, 2, 3],
        },
    )  # fmt: skip
    service = PanelService(embedded_warehouse, warehouse_db)
    period = Filters(date_from=dt.date(2022, 1, 1), date_to=dt.date(2022, 12, 31))

    def persons() -> int:
        return int(service.run("linkage_quality", period).data.rows[0]["persons"])

    assert persons() == 4
    merged = dt.datetime(2022, 4, 1, tzinfo=dt.UTC)
    merges = f"{warehouse_db}.person_merges"
    embedded_warehouse.insert(
        merges,
        {"person_id": ["b"], "canonical_person_id": ["a"], "merged_at": [merged], "version": [1]},
    )
    assert persons() == 3
    # 'a' is merged into 'c' later: the linker rewrites everyone 'a' had absorbed.
    embedded_warehouse.insert(
        merges,
        {
            "person_id": ["a", "b"],
            "canonical_person_id": ["c", "c"],
            "merged_at": [merged, merged],
            "version": [2, 2],
        },
    )
    assert persons() == 2


def test_freshness_and_linkage_quality_equal_the_raw_queries(
    embedded_warehouse: EmbeddedWarehouse, warehouse_db: str
) -> None:
    from linkwatch.dashboards.panels import Filters, panel, panel_sql
    from linkwatch.dashboards.reference import raw_sql

    wh, db = embedded_warehouse, warehouse_db
    create_model(wh, db)
    period = Filters(date_from=dt.date(2022, 2, 1), date_to=dt.date(2022, 5, 31)).params()

    def panel_rows(name: str) -> list[tuple[Any, ...]]:
        return wh.query(panel_sql(panel(name), db), period).rows

    def matches() -> None:
        fresh = panel_rows("freshness")
        assert [r[:4] for r in fresh] == wh.query(raw_sql("freshness", db)).rows
        assert fresh[0][4] >= 0  # seconds since the last commit
        raw = wh.query(raw_sql("linkage_quality", db), period).rows
        assert repr(panel_rows("linkage_quality")) == repr(raw)  # NaN mean when empty
        # A period cutting months: whole months from the monthly rows, the edges by day.
        for cut in ((dt.date(2022, 2, 10), dt.date(2022, 4, 20)),
                    (dt.date(2022, 3, 1), dt.date(2022, 3, 30))):  # fmt: skip
            params = Filters(*cut).params()
            got = wh.query(panel_sql(panel("linkage_quality"), db), params).rows
            assert repr(got) == repr(wh.query(raw_sql("linkage_quality", db), params).rows)

    matches()  # an empty warehouse
    events = sample_events(seed=5, weeks=20)
    third = len(events["event_id"]) // 3
    table = f"{db}.linked_events"
    first = {k: v[:third] for k, v in events.items()}
    wh.insert(table, first, dedup_token="fresh/0")
    wh.insert(table, {k: v[third : 2 * third] for k, v in events.items()}, dedup_token="fresh/1")
    wh.insert(table, first, dedup_token="fresh/0")  # a replay
    matches()
    # A model created before the freshness view existed: events it never saw are found
    # when the model is brought up to date.
    wh.command(f"DROP TABLE {db}.freshness_mv")
    wh.command(f"DROP TABLE {db}.freshness")
    wh.insert(table, {k: v[2 * third :] for k, v in events.items()}, dedup_token="fresh/2")
    create_model(wh, db)
    matches()
    # Merges: into an id with events, into one without, and a merge rewritten later.
    persons = sorted(set(events["person_id"]))
    merged = dt.datetime(2022, 4, 1, tzinfo=dt.UTC)
    wh.insert(
        f"{db}.person_merges",
        {
            "person_id": [persons[1], persons[2], persons[3], persons[1]],
            "canonical_person_id": [persons[0], persons[0], "nobody-yet", persons[4]],
            "merged_at": [merged] * 4,
            "version": [1, 1, 1, 2],
        },
    )
    matches()
    assert panel_rows("linkage_quality")[0][3] == 3


def test_bad_database_names_are_refused() -> None:
    with pytest.raises(ModelError, match="database"):
        schema_statements("x; DROP TABLE y")


def test_cluster_variant_has_replicated_local_tables_and_distributed_fronts() -> None:
    ddl = cluster_ddl("prod", "lw")
    local = [s for s in ddl.statements if re.match(r"CREATE TABLE IF NOT EXISTS lw\.\w+_local ", s)]
    fronts = [s for s in ddl.statements if "ENGINE = Distributed(" in s]
    views = [s for s in ddl.statements if s.startswith("CREATE MATERIALIZED VIEW")]
    assert ddl.statements[0] == "CREATE DATABASE IF NOT EXISTS lw ON CLUSTER prod"
    assert all(" ON CLUSTER prod" in s for s in ddl.statements)
    # The Long COVID delta table only passes blocks between views: local, no front.
    (delta,) = [s for s in local if "lw.long_covid_delta_local " in s]
    assert "ENGINE = Null" in delta
    local.remove(delta)
    assert len(local) == len(fronts) == 19
    for statement in local:
        assert re.search(
            r"ENGINE = Replicated\w*MergeTree\('/clickhouse/tables/\{shard\}/lw/", statement
        )
        assert "'{replica}'" in statement
        assert "non_replicated_deduplication_window" not in statement
    assert (
        "ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/lw/weekly_counts', "
        "'{replica}', events)" in ddl.script()
    )
    assert "Distributed(prod, lw, linked_events_local, cityHash64(event_id))" in ddl.script()
    # Views aggregate each shard's own events into its local tables.
    assert len(views) == 14
    for view in views:
        assert re.search(r" TO lw\.\w+_local AS", view)
        assert re.search(
            r"FROM lw\.(linked_events|long_covid_delta|person_merges|long_covid_corrections)_local",
            view,
        )
    counts = [v for v in views if "_counts_mv " in v]
    assert len(counts) == 2
    for view in counts:
        assert "TO lw.weekly_counts_local" in view or "TO lw.daily_counts_local" in view
    # The Long COVID delta view reads the state of its own shard.
    (delta_view,) = [v for v in views if "lw.long_covid_delta_mv " in v]
    assert "FROM lw.long_covid_persons_local" in delta_view
    assert "Distributed(prod, lw, long_covid_persons_local, cityHash64(person_id))" in ddl.script()
    person_sharded = cluster_ddl("prod", "lw", sharding_key="cityHash64(person_id)").script()
    assert "Distributed(prod, lw, linked_events_local, cityHash64(person_id))" in person_sharded
    with pytest.raises(ModelError, match="cluster"):
        cluster_ddl("prod cluster")


def test_the_model_on_debians_clickhouse_server_leaves_out_only_what_it_cannot_hold(
    server_warehouse: ServerWarehouse,
) -> None:
    db = "model_legacy"
    assert create_model(server_warehouse, db) == create_model(server_warehouse, db) == 3
    _, skipped = legacy_statements(schema_statements(db))
    assert skipped
    assert all(name.startswith((f"{db}.long_covid", f"{db}.person_days_merge")) for name in skipped)
    tables = {
        r[0]
        for r in server_warehouse.query(
            f"SELECT name FROM system.tables WHERE database = '{db}'"
        ).rows
    }
    assert {
        "linked_events", "persons", "person_merges", "weekly_counts", "daily_counts", "freshness"
    } <= tables  # fmt: skip
    assert not {name.split(".", 1)[1] for name in skipped} & tables
    # The pre-aggregates follow inserts there too.
    server_warehouse.insert(
        f"{db}.linked_events",
        {
            "event_id": ["e1", "e2"],
            "source": ["gp_consultation"] * 2,
            "provider_id": ["p"] * 2,
            "person_id": ["P1", "P2"],
            "link_outcome": ["new"] * 2,
            "link_weight": [0.0, 0.0],
            "codes": [["R05"], ["A04"]],
            "code_groups": [[], ["symptom_fatigue"]],
            "event_time": [dt.datetime(2024, 3, 4, 10, tzinfo=dt.UTC)] * 2,
            "age_band": ["25_44"] * 2,
            "sex": ["FEMALE"] * 2,
            "pc4": ["1011"] * 2,
            "region": ["Noord-Holland"] * 2,
            "ses_quintile": [3, 3],
            "kafka_topic": ["t"] * 2,
            "kafka_partition": [0, 0],
            "kafka_offset": [0, 1],
        },
    )
    weekly = dict(
        server_warehouse.query(
            f"SELECT code_group, sum(events) FROM {db}.weekly_counts GROUP BY code_group"
        ).rows
    )
    assert weekly == {"all": 2, "symptom_fatigue": 1}
    latest = server_warehouse.query(
        f"SELECT toString(maxMerge(latest_event_time)) FROM {db}.freshness"
    ).scalar()
    assert latest == "2024-03-04 10:00:00"
