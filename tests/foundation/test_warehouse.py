"""The warehouse adapter on real ClickHouse engines: chDB in-process and the Debian server."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pytest

from linkwatch.deploy.clickhouse_server import ClickHouseServer
from linkwatch.streams.warehouse import (
    EmbeddedWarehouse,
    ServerWarehouse,
    WarehouseBusy,
    WarehouseError,
)


def _events_ddl(table: str, dedup: bool = True) -> str:
    setting = " SETTINGS non_replicated_deduplication_window = 1000" if dedup else ""
    return (
        f"CREATE TABLE {table} (event_id UInt64, source String, event_date Date, weight Float64) "
        f"ENGINE = MergeTree ORDER BY event_id{setting}"
    )


def _batch(start: int, n: int) -> dict[str, list[object]]:
    return {
        "event_id": list(range(start, start + n)),
        "source": ["gp" if i % 2 else "hospital" for i in range(start, start + n)],
        "event_date": [
            dt.date(2024, 1, 1) + dt.timedelta(days=i % 300) for i in range(start, start + n)
        ],
        "weight": [i / 10 for i in range(start, start + n)],
    }


# -- embedded (chDB) ---------------------------------------------------------


def test_embedded_insert_and_query_with_parameters(
    embedded_warehouse: EmbeddedWarehouse, warehouse_db: str
) -> None:
    wh = embedded_warehouse
    table = f"{warehouse_db}.events"
    wh.command(_events_ddl(table))
    assert wh.insert(table, _batch(0, 1000)) == 1000
    result = wh.query(
        f"SELECT source, count() AS n, min(event_date) AS first FROM {table} "
        "WHERE event_date >= {since:Date} AND source = {src:String} GROUP BY source",
        {"since": dt.date(2024, 1, 1), "src": "gp"},
    )
    assert result.columns == ["source", "n", "first"]
    assert result.rows == [("gp", 500, dt.date(2024, 1, 2))]
    assert result.dicts() == [{"source": "gp", "n": 500, "first": dt.date(2024, 1, 2)}]


def test_embedded_insert_accepts_an_arrow_table(
    embedded_warehouse: EmbeddedWarehouse, warehouse_db: str
) -> None:
    table = f"{warehouse_db}.events"
    embedded_warehouse.command(_events_ddl(table))
    embedded_warehouse.insert(table, pa.table(_batch(0, 10)))
    assert embedded_warehouse.query(f"SELECT sum(event_id) FROM {table}").scalar() == 45


def test_embedded_replayed_batch_with_the_same_token_is_dropped(
    embedded_warehouse: EmbeddedWarehouse, warehouse_db: str
) -> None:
    wh = embedded_warehouse
    table = f"{warehouse_db}.events"
    wh.command(_events_ddl(table))
    wh.insert(table, _batch(0, 500), dedup_token="ehr.gp.v1/0/0-499")
    wh.insert(table, _batch(0, 500), dedup_token="ehr.gp.v1/0/0-499")  # a replay after a crash
    wh.insert(table, _batch(500, 500), dedup_token="ehr.gp.v1/0/500-999")
    assert wh.query(f"SELECT count(), uniqExact(event_id) FROM {table}").rows == [(1000, 1000)]


def test_embedded_errors_name_the_statement(embedded_warehouse: EmbeddedWarehouse) -> None:
    with pytest.raises(WarehouseError, match="no_such_table"):
        embedded_warehouse.query("SELECT * FROM no_such_table")


def test_embedded_warehouse_is_refused_to_a_second_process(
    embedded_warehouse: EmbeddedWarehouse,
) -> None:
    code = (
        "import sys\n"
        "from linkwatch.streams.warehouse import EmbeddedWarehouse, WarehouseBusy\n"
        "try:\n"
        f"    EmbeddedWarehouse({embedded_warehouse.location!r})\n"
        "except WarehouseBusy as exc:\n"
        "    print(exc); sys.exit(3)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 3, out.stderr
    assert f"is open in process {__import__('os').getpid()}" in out.stdout
    assert EmbeddedWarehouse.holder(Path(embedded_warehouse.location)) == __import__("os").getpid()


def test_one_process_holds_one_embedded_directory(
    embedded_warehouse: EmbeddedWarehouse, tmp_path: Path
) -> None:
    with pytest.raises(WarehouseBusy, match="already holds the embedded warehouse"):
        EmbeddedWarehouse(tmp_path / "other")
    # The same directory opened twice shares the one session.
    with EmbeddedWarehouse(Path(embedded_warehouse.location)) as again:
        assert again.version() == embedded_warehouse.version()
    assert embedded_warehouse.version()


def test_embedded_data_persists_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "persist"
    write = (
        "from linkwatch.streams.warehouse import EmbeddedWarehouse\n"
        f"with EmbeddedWarehouse({str(path)!r}) as wh:\n"
        "    wh.command('CREATE TABLE t (x UInt32) ENGINE = MergeTree ORDER BY x')\n"
        "    wh.insert('t', {'x': list(range(1234))})\n"
    )
    read = (
        "from linkwatch.streams.warehouse import EmbeddedWarehouse\n"
        f"with EmbeddedWarehouse({str(path)!r}) as wh:\n"
        "    print(wh.query('SELECT count(), sum(x) FROM t').rows)\n"
    )
    for code in (write, read):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str([(1234, sum(range(1234)))])


# -- ClickHouse server over the native protocol -------------------------------


def test_server_insert_select_and_parameters(server_warehouse: ServerWarehouse) -> None:
    wh = server_warehouse
    wh.command("DROP TABLE IF EXISTS default.events_basic")
    wh.command(_events_ddl("default.events_basic", dedup=False))
    assert wh.insert("default.events_basic", _batch(0, 10_000)) == 10_000
    result = wh.query(
        "SELECT source, count() AS n FROM default.events_basic WHERE event_date >= {since:Date} "
        "AND source IN ({a:String}, {b:String}) GROUP BY source ORDER BY source",
        {"since": dt.date(2024, 1, 1), "a": "gp", "b": "it's quoted"},
    )
    assert result.rows == [("gp", 5000)]
    assert result.types == ["String", "UInt64"]
    assert wh.version().startswith(("18.", "2"))


def test_server_errors_are_not_retried(server_warehouse: ServerWarehouse) -> None:
    with pytest.raises(WarehouseError, match="no_such_table"):
        server_warehouse.query("SELECT * FROM default.no_such_table")


def test_server_restart_mid_stream_loses_no_rows(fresh_clickhouse_server: ClickHouseServer) -> None:
    server = fresh_clickhouse_server
    wh = ServerWarehouse(server.url, retry_timeout=60)
    wh.command(_events_ddl("default.events_restart", dedup=False))
    batches, size = 40, 2_500
    restarted = threading.Event()

    def restart() -> None:
        server.stop()
        server.start()
        restarted.set()

    restarter: threading.Thread | None = None
    for b in range(batches):
        if b == batches // 3:
            restarter = threading.Thread(target=restart)
            restarter.start()
        wh.insert("default.events_restart", _batch(b * size, size))
    assert restarter is not None
    restarter.join(120)
    assert restarted.is_set()
    count, distinct = wh.query(
        "SELECT count(), uniqExact(event_id) FROM default.events_restart"
    ).rows[0]
    assert (count, distinct) == (batches * size, batches * size)
    wh.close()
