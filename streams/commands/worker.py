"""``linkwatch worker``: run the pipeline (ingest, link, enrich, load) until stopped."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from linkwatch.streams.cli_support import err, fail, load_settings


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker(
        ctx: typer.Context,
        dashboard_port: Annotated[
            int, typer.Option(help="Serve the dashboard from the worker on this port (0: do not).")
        ] = 0,
    ) -> None:
        """Consume the provider topics and keep the warehouse up to date, until stopped.

        Needs a trained linkage model (LINKWATCH_LINKAGE_MODEL). Rebuilds the area table
        and the linker from their topics first, then loads every accepted event exactly
        once in effect; unusable messages go to the dead-letter topic. Serves /healthz,
        /readyz, /status and /metrics on 127.0.0.1:LINKWATCH_WORKER_PORT (6066), and with
        --dashboard-port the dashboard too (the embedded warehouse opens in one process only).

        Several workers: one links, the others stand by to take over. With a ClickHouse
        server and LINKWATCH_SHARED_SINK=true every worker also loads its share of the
        warehouse from linkwatch.linked.v1.

        Example: LINKWATCH_LINKAGE_MODEL=model.json linkwatch worker

        Example (second worker, shared load): CLICKHOUSE_URL=clickhouse://localhost:9000
        LINKWATCH_SHARED_SINK=true LINKWATCH_WORKER_PORT=6067 linkwatch worker
        """
        from linkwatch.streams.kafka_clients import KafkaUnavailable, require_broker
        from linkwatch.streams.warehouse import WarehouseError
        from linkwatch.streams.worker import WorkerError, run

        settings = load_settings(ctx)
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        for noisy in ("faust", "mode", "aiokafka", "linkwatch.kafka"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        try:
            require_broker(settings.bootstrap_servers)
            err.print(
                f"linkwatch worker: Kafka {settings.bootstrap_servers}, status on "
                f"http://127.0.0.1:{settings.worker_port}/status",
                highlight=False,
            )
            run(settings, dashboard_port or None)
        except (KafkaUnavailable, WorkerError, WarehouseError) as exc:
            raise fail(exc) from None
