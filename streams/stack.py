"""The local stack as one thing: Kafka broker, warehouse and, on request, a ClickHouse server.

``linkwatch stack up|down|status`` and the test fixtures both go through
``Stack``, so tests start exactly what an operator starts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from linkwatch.deploy.clickhouse_server import ClickHouseServer
from linkwatch.deploy.kafka import KafkaBroker, metadata_answers
from linkwatch.deploy.status import ComponentStatus
from linkwatch.streams.config import Settings
from linkwatch.streams.warehouse import EmbeddedWarehouse, ServerWarehouse, WarehouseError

Step = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


class Stack:
    """The servers linkwatch runs locally, configured from ``Settings``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.kafka = KafkaBroker(
            version=settings.kafka_version,
            port=settings.kafka_port,
            controller_port=settings.kafka_controller_port,
            data_dir=settings.data_dir / "kafka",
            run_dir=settings.state_dir,
            cache_dir=settings.cache_dir,
            heap=settings.kafka_heap,
            start_timeout=settings.start_timeout,
        )
        self.clickhouse_server = ClickHouseServer(
            tcp_port=settings.clickhouse_tcp_port,
            http_port=settings.clickhouse_http_port,
            interserver_port=settings.clickhouse_interserver_port,
            data_dir=settings.data_dir / "clickhouse-server",
            run_dir=settings.state_dir,
            start_timeout=settings.start_timeout,
        )

    @property
    def warehouse_dir(self) -> Path:
        return self.settings.embedded_warehouse_dir

    def up(self, *, clickhouse_server: bool = False, step: Step = _quiet) -> list[ComponentStatus]:
        """Start what is not running yet; on any failure stop what this call started."""
        started: list[KafkaBroker | ClickHouseServer] = []
        try:
            if self.settings.local_kafka:
                if not self.kafka.jars_installed():
                    step(
                        f"Downloading Apache Kafka {self.settings.kafka_version} with Maven (once)"
                    )
                    self.kafka.install()
                step(f"Starting the Kafka broker on {self.kafka.bootstrap_servers}")
                if self.kafka.start():
                    started.append(self.kafka)
            if clickhouse_server:
                step(f"Starting the ClickHouse server on port {self.settings.clickhouse_tcp_port}")
                if self.clickhouse_server.start():
                    started.append(self.clickhouse_server)
            if not self.settings.clickhouse_url:
                step(f"Opening the embedded warehouse at {self.warehouse_dir}")
                self._touch_embedded()
        except BaseException:
            for component in reversed(started):
                component.stop()
            raise
        return self.status()

    def down(self, step: Step = _quiet) -> list[str]:
        """Stop the local servers; returns the names of those that were running."""
        stopped = []
        step("Stopping the ClickHouse server")
        if self.clickhouse_server.stop():
            stopped.append("clickhouse-server")
        step("Stopping the Kafka broker")
        if self.kafka.stop():
            stopped.append("kafka")
        return stopped

    def status(self) -> list[ComponentStatus]:
        """One row per component that this configuration uses or that runs."""
        rows = [self._kafka_status(), self._warehouse_status()]
        if (
            self.clickhouse_server.state_file.exists()
            and self.settings.clickhouse_url != self.clickhouse_server.url
        ):
            rows.append(self.clickhouse_server.status())
        return rows

    # -- internals ----------------------------------------------------------
    def _worker_status(self) -> dict[str, Any]:
        """The local worker's /status, or {} when none answers."""
        import json
        import urllib.request

        url = f"http://127.0.0.1:{self.settings.worker_port}/status"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                data = json.loads(response.read())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _touch_embedded(self) -> None:
        if EmbeddedWarehouse.holder(self.warehouse_dir) is not None:
            return  # held by a running linkwatch process: it is open and serving
        with EmbeddedWarehouse(self.warehouse_dir) as wh:
            wh.version()

    def _kafka_status(self) -> ComponentStatus:
        if self.settings.local_kafka:
            return self.kafka.status()
        external = ComponentStatus(
            name="kafka",
            role="Kafka cluster (KAFKA_BOOTSTRAP_SERVERS)",
            state="unhealthy",
            version="external",
            address=self.settings.bootstrap_servers,
            pid=None,
            data_dir="",
            log="",
        )
        if metadata_answers(self.settings.bootstrap_servers):
            return external.with_state("healthy")
        return external.with_state("unhealthy", "no metadata answer")

    def _warehouse_status(self) -> ComponentStatus:
        url = self.settings.clickhouse_url
        if url:
            row = ComponentStatus(
                name="warehouse",
                role="ClickHouse server (CLICKHOUSE_URL)",
                state="unhealthy",
                version="",
                address=url,
                pid=None,
                data_dir="",
                log="",
            )
            try:
                server = ServerWarehouse(url, retry_timeout=2.0)
                try:
                    row.version = server.version()
                finally:
                    server.close()
            except WarehouseError as exc:
                return row.with_state("unhealthy", str(exc).splitlines()[0])
            if (
                self.settings.clickhouse_url == self.clickhouse_server.url
                and self.clickhouse_server.running()
            ):
                row.log = str(self.clickhouse_server.log_file)
                row.data_dir = str(self.clickhouse_server.data_dir)
            return row.with_state("healthy")
        path = self.warehouse_dir
        row = ComponentStatus(
            name="warehouse",
            role="embedded ClickHouse (chDB)",
            state="stopped",
            version="",
            address="in-process",
            pid=None,
            data_dir=str(path),
            log="",
        )
        if not path.exists():
            return row.with_state("stopped", "not created yet: run `linkwatch stack up`")
        holder = EmbeddedWarehouse.holder(path)
        if holder is not None:
            row.pid = holder
            served = self._worker_status()
            if served.get("pid") == holder:
                row.version = str(served.get("warehouse", {}).get("version", ""))
                return row.with_state("busy", f"held by the worker (pid {holder}), which serves it")
            return row.with_state("busy", f"open in process {holder}, which serves its queries")
        try:
            with EmbeddedWarehouse(path) as wh:
                row.version = wh.version()
        except WarehouseError as exc:
            return row.with_state("unhealthy", str(exc).splitlines()[0])
        return row.with_state("healthy")
