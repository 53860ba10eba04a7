"""Dashboard panel latency on a large synthetic warehouse: materialized views against raw rows.

Fills an embedded (chDB) warehouse in a temporary directory with N synthetic linked
events (generated inside ClickHouse: three years, every stratum, realistic code mix) and
the area tables, then measures every panel as the dashboard runs it (SQL + disclosure
control, ``PanelService.run``) over its default period, p50 and p95 of repeated runs,
without filters and with a province and sex filter.
For the panels that read the pre-aggregated weekly or daily counts it also runs the same
SQL against the raw ``linked_events`` rows, and prints the ratio raw / view; for the Long
COVID, freshness and linkage-quality panels it runs their definition over the raw events
and merges, and checks that both give the same rows (linkage quality counts distinct
persons with HyperLogLog: its other columns must be equal, and the printed figure is how
far its person count is from the exact one). One person id in ``LINKWATCH_BENCH_MERGED_EVERY``
(500 by default) is merged into another, as the linker does when a record links two persons,
in one insert after the events: the linkage-quality panel corrects for each merged id when it
reads, so its latency grows with the number of merged ids; the Long COVID onset counts hold
their merge correction already (the warehouse computes it when the merges arrive: the time
that insert took is printed). Timing starts once the background
merges of the load have finished (at most five minutes) and after one untimed run of each
panel, so the figures are those of a settled warehouse; the load average printed with
them tells how busy the machine was.

Usage: [LINKWATCH_BENCH_MERGED_EVERY=500] python bench/bench_panels.py [events ...]
       (default: 10000000 events)
Targets: p95 <= 100 ms at 10M events, <= 300 ms at 100M. Never fails on time.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from linkwatch.dashboards.code_groups import code_groups_of
from linkwatch.dashboards.model import create_model
from linkwatch.dashboards.panels import PANELS, Filters, panel_sql
from linkwatch.dashboards.reference import RAW_PANELS
from linkwatch.dashboards.reference import raw_sql as reference_sql
from linkwatch.dashboards.regions import PC4_RANGES
from linkwatch.dashboards.service import PanelService
from linkwatch.streams.warehouse import EmbeddedWarehouse, Warehouse

DB = "bench"
CODES = (
    "R05",
    "A04",
    "R02",
    "P20",
    "K04",
    "N16",
    "R74",
    "R83",
    "A03",
    "L18",
    "N01",
    "P06",
    "U07.1",
    "U09.9",
)
RUNS = 15
MERGED_EVERY = int(os.environ.get("LINKWATCH_BENCH_MERGED_EVERY", "500"))
BATCH = 250_000  # events per insert: well below the insert block size, so one block each
RAW_WEEKLY = (
    "(SELECT iso_week AS week, "
    "arrayJoin(arrayConcat(['all'], arrayDistinct(CAST(code_groups, 'Array(String)')))) "
    "AS code_group, "
    "source, region, age_band, sex, ses_quintile, toUInt64(1) AS events FROM {db}.linked_events)"
)
RAW_DAILY = RAW_WEEKLY.replace("iso_week AS week", "event_date AS day")
# Columns of a panel compared with its raw definition (all when not named).
RAW_WIDTH = {"freshness": 4}
# Columns counted approximately (HyperLogLog), compared as a relative difference.
APPROXIMATE = {"linkage_quality": (4, "persons")}


def _sql_text(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "\\'") + "'" for v in values) + "]"


def fill(wh: Warehouse, events: int) -> tuple[float, float]:
    """Generate ``events`` linked events, merges and the area tables.

    Returns the seconds it all took and the seconds the insert of the merges took.
    """
    start = time.perf_counter()
    create_model(wh, DB)
    on = __import__("datetime").date(2022, 6, 1)
    persons = max(1, events // 4)
    groups = "map(" + ", ".join(f"'{c}', {_sql_text(code_groups_of([c], on))}" for c in CODES) + ")"
    region = (
        "multiIf("
        + ", ".join(f"pc4n <= {last}, '{prov}'" for _, last, prov in PC4_RANGES)
        + ", '')"
    )
    span = 3 * 365 * 86400
    # Inserted in batches of at most one block, one after another, as the sink's batches
    # reach linked_events: the Long COVID onset counts rely on it.
    for first in range(0, events, BATCH):
        wh.command(
            f"""
            INSERT INTO {DB}.linked_events
                (event_id, source, provider_id, person_id, link_outcome, link_weight, codes,
                 code_groups,
                 event_time, age_band, sex, pc4, region, ses_quintile, kafka_topic, kafka_partition,
                 kafka_offset)
            SELECT
                toString(number) AS event_id,
                multiIf(h % 100 < 80, 'gp_consultation',
                        h % 100 < 95, 'ooh_contact', 'hospital_episode'),
                concat('P-', toString(h % 500)),
                concat('P', toString(pn)),
                if(h % 10 = 0, 'new', 'linked'),
                toFloat32(12.5),
                [code],
                {groups}[code],
                toDateTime64('2020-01-01 00:00:00', 3, 'UTC')
                    + toIntervalSecond(intDiv(number * {span}, {events})),
                ['0_14', '15_24', '25_44', '45_64', '65_plus'][1 + cityHash64(pn, 5) % 5],
                ['MALE', 'FEMALE'][1 + cityHash64(pn, 6) % 2],
                toString(pc4n),
                {region},
                toUInt8(1 + (pc4n * 7) % 5),
                'ehr.gp.v1',
                toUInt32(number % 4),
                number
            FROM
            (
                SELECT number, cityHash64(number, 1) AS h,
                       cityHash64(number, 3) % {persons} AS pn,
                       -- A person keeps their sex, age band and area from event to event.
                       1000 + cityHash64(pn, 7) % 9000 AS pc4n,
                       {_sql_text(list(CODES))}[1 + cityHash64(number, 4) % {len(CODES)}] AS code
                FROM numbers({first}, {min(BATCH, events - first)})
            )
            SETTINGS max_insert_threads = 1
            """
        )
    merging = time.perf_counter()
    wh.command(
        f"""
        INSERT INTO {DB}.person_merges (person_id, canonical_person_id, merged_at, version)
        SELECT concat('P', toString(number)), concat('P', toString(number - 1)),
               toDateTime64('2023-01-01 00:00:00', 3, 'UTC'), 1
        FROM numbers({persons})
        WHERE number % {MERGED_EVERY} = 1
        """
    )
    merging = time.perf_counter() - merging
    wh.command(
        f"""
        INSERT INTO {DB}.areas (pc4, year, region, ses_quintile, ses_woa_mean, households)
        SELECT toString(pc4n), 2022, {region}, toUInt8(1 + (pc4n * 7) % 5), 0.0, 1000
        FROM (SELECT 1000 + number AS pc4n FROM numbers(9000))
        """
    )
    wh.command(
        f"""
        INSERT INTO {DB}.area_population (pc4, year, age_band, sex, population)
        SELECT toString(1000 + intDiv(number, 10)), 2022,
               ['0_14', '15_24', '25_44', '45_64', '65_plus'][1 + intDiv(number % 10, 2)],
               ['MALE', 'FEMALE'][1 + number % 2], toUInt32(200)
        FROM numbers(90000)
        """
    )
    return time.perf_counter() - start, merging


def settle(wh: Warehouse, timeout: float = 300.0) -> float:
    """Wait until no background merge runs in the bench database; return the seconds waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        running = wh.query(
            "SELECT count() FROM system.merges WHERE database = {db:String}", {"db": DB}
        ).scalar()
        if int(running) == 0:
            break
        time.sleep(1.0)
    return time.perf_counter() - start


def timed(run: object) -> tuple[float, float]:
    samples = []
    for _ in range(RUNS):
        t = time.perf_counter()
        run()  # type: ignore[operator]
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def bench_size(events: int) -> None:
    path = Path(tempfile.mkdtemp(prefix="linkwatch-bench-panels-"))
    try:
        with EmbeddedWarehouse(path) as wh:
            measure(wh, events)
    finally:
        shutil.rmtree(path, ignore_errors=True)  # 100M events take about 8 GB


def measure(wh: Warehouse, events: int) -> None:
    """Fill ``wh`` with ``events`` events, then time every panel on it."""
    seconds, merging = fill(wh, events)
    waited = settle(wh)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    merges = int(wh.query(f"SELECT count() FROM {DB}.person_merges").scalar())
    print(
        f"\n== {events:,} events (loaded in {seconds:.1f} s, of which {merges:,} merges with "
        f"their Long COVID correction in {merging:.1f} s; parts settled in {waited:.1f} s, "
        f"chDB {wh.version()}, load average {load})"
    )
    service = PanelService(wh, DB)
    filters = Filters(*service.default_period())
    # The filtered columns: the same period for one province and sex, as a user narrows it.
    filtered = replace(filters, region="Utrecht", sex="MALE")
    params = filters.params()
    head = f"{'panel':<20} {'p50 ms':>8} {'p95 ms':>8} {'filt p50':>8} {'filt p95':>8}"
    print(f"{head}   {'raw p50':>8} {'raw p95':>8} {'raw/view':>9}")
    for p in PANELS:
        service.run(p.name, filters)  # untimed: the first run reads the parts from disk
        p50, p95 = timed(lambda name=p.name: service.run(name, filters))
        f50, f95 = timed(lambda name=p.name: service.run(name, filtered))
        sql = panel_sql(p, DB)
        raw = ""
        if f"{DB}.weekly_counts" in sql or f"{DB}.daily_counts" in sql:
            raw_sql = sql.replace(f"{DB}.weekly_counts", RAW_WEEKLY.format(db=DB))
            raw_sql = raw_sql.replace(f"{DB}.daily_counts", RAW_DAILY.format(db=DB))
            r50, r95 = timed(lambda s=raw_sql: wh.query(s, params))
            raw = f"{r50:>8.1f} {r95:>8.1f} {r50 / p50:>8.1f}x"
        elif p.name in RAW_PANELS:
            width = RAW_WIDTH.get(p.name)
            raw_sql = reference_sql(p.name, DB)
            r50, r95 = timed(lambda s=raw_sql: wh.query(s, params))
            got = [r[:width] for r in wh.query(sql, params).rows]
            want = wh.query(raw_sql, params).rows
            note = ""
            if p.name in APPROXIMATE:
                column, label = APPROXIMATE[p.name]
                off = got[0][column] / max(1, want[0][column]) - 1
                note = f" ({label} {off:+.3%} from exact)"
                got = [r[:column] + r[column + 1 :] for r in got]
                want = [r[:column] + r[column + 1 :] for r in want]
            same = repr(want) == repr(got)  # repr: NaN equals NaN
            raw = f"{r50:>8.1f} {r95:>8.1f} {r50 / p50:>8.1f}x  equal to raw: {same}{note}"
        print(f"{p.name:<20} {p50:>8.1f} {p95:>8.1f} {f50:>8.1f} {f95:>8.1f}   {raw}")


def main(sizes: list[int]) -> None:
    # chDB opens one directory per process at a time: each size closes its warehouse first.
    for events in sizes:
        bench_size(events)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10_000_000])
