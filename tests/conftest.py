"""Session fixtures: the real Kafka broker and ClickHouse engines, started by the same
code as ``linkwatch stack up``, on free loopback ports and in temporary directories.

Tests that use a server fixture are marked ``integration`` automatically; every
other test is marked ``unit``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from linkwatch.deploy.clickhouse_server import ClickHouseServer
from linkwatch.deploy.kafka import KafkaBroker
from linkwatch.deploy.process import free_ports
from linkwatch.streams.config import Settings
from linkwatch.streams.stack import Stack
from linkwatch.streams.warehouse import EmbeddedWarehouse, ServerWarehouse

INTEGRATION_FIXTURES = {
    "kafka_broker",
    "bootstrap_servers",
    "fresh_kafka_broker",
    "clickhouse_server",
    "fresh_clickhouse_server",
    "server_warehouse",
    "embedded_warehouse",
    "warehouse_db",
    "stack_settings",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("integration") or names & INTEGRATION_FIXTURES:
            item.add_marker(pytest.mark.integration)
        elif not item.get_closest_marker("unit"):
            item.add_marker(pytest.mark.unit)


def make_settings(root: Path, **overrides: Any) -> Settings:
    """Settings for a private stack under ``root`` on free ports; jars from the shared cache."""
    kafka, controller, tcp, http, inter, worker = free_ports(6)
    values: dict[str, Any] = {
        "data_dir": root / "data",
        "state_dir": root / "state",
        "cache_dir": os.environ.get("LINKWATCH_CACHE_DIR", str(Path.home() / ".cache/linkwatch")),
        "kafka_port": kafka,
        "kafka_controller_port": controller,
        "clickhouse_tcp_port": tcp,
        "clickhouse_http_port": http,
        "clickhouse_interserver_port": inter,
        "worker_port": worker,
    }
    values.update(overrides)
    return Settings.load(environ={}, **values)


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="session")
def kafka_broker(stack_settings: Settings) -> Iterator[KafkaBroker]:
    """One real broker for the whole test session."""
    broker = Stack(stack_settings).kafka
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def bootstrap_servers(kafka_broker: KafkaBroker) -> str:
    return kafka_broker.bootstrap_servers


@pytest.fixture
def fresh_kafka_broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    """A broker of its own, for tests that kill or restart it."""
    broker = Stack(make_settings(tmp_path)).kafka
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def clickhouse_server(stack_settings: Settings) -> Iterator[ClickHouseServer]:
    """One real ClickHouse server (Debian's package) for the whole test session."""
    server = Stack(stack_settings).clickhouse_server
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fresh_clickhouse_server(tmp_path: Path) -> Iterator[ClickHouseServer]:
    """A ClickHouse server of its own, for tests that restart it."""
    server = Stack(make_settings(tmp_path)).clickhouse_server
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server_warehouse(clickhouse_server: ClickHouseServer) -> Iterator[ServerWarehouse]:
    wh = ServerWarehouse(clickhouse_server.url, retry_timeout=30)
    yield wh
    wh.close()


@pytest.fixture(scope="session")
def embedded_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedWarehouse]:
    """The embedded (chDB) warehouse: one directory per process, so one per test session."""
    wh = EmbeddedWarehouse(tmp_path_factory.mktemp("warehouse"))
    yield wh
    wh.close()


@pytest.fixture
def warehouse_db(embedded_warehouse: EmbeddedWarehouse) -> Iterator[str]:
    """A database of its own in the embedded warehouse, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    embedded_warehouse.command(f"CREATE DATABASE {name}")
    yield name
    embedded_warehouse.command(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests save what a person should look at (screenshots, charts)."""
    path = Path(__file__).resolve().parent.parent / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
