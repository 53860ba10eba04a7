"""``linkwatch demo``: the whole system on one machine, until Ctrl-C."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from linkwatch.streams.cli_support import err, fail, load_settings


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        ctx: typer.Context,
        persons: Annotated[
            int, typer.Option(help="Size of the synthetic population.", min=100)
        ] = 20_000,
        seed: Annotated[int, typer.Option(help="Seed of the synthetic population.")] = 1,
        dashboard_port: Annotated[
            int, typer.Option(help="Port of the dashboard (0: none).")
        ] = 8050,
    ) -> None:
        """Run linkwatch end to end: stack, synthetic providers, linkage, warehouse, dashboard.

        Starts the local Kafka broker and embedded ClickHouse, generates a synthetic
        population with an injected Long COVID signal, trains the linkage model, publishes
        the GP, out-of-hours and hospital extracts and the area table, then runs the worker
        with the dashboard until Ctrl-C. Steps already done are skipped on the next run.

        Example: linkwatch demo --persons 5000
        """
        from linkwatch.deploy.errors import StackError
        from linkwatch.streams.demo import DemoPlan, prepare
        from linkwatch.streams.kafka_clients import KafkaUnavailable
        from linkwatch.streams.warehouse import WarehouseError
        from linkwatch.streams.worker import WorkerError, run

        settings = load_settings(ctx)

        def say(message: str) -> None:
            err.print(f"[cyan]demo:[/] {message}", highlight=False)

        try:
            worker_settings = prepare(settings, DemoPlan(persons=persons, seed=seed), say)
            logging.basicConfig(
                level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
            )
            for noisy in ("faust", "mode", "aiokafka", "linkwatch.kafka"):
                logging.getLogger(noisy).setLevel(logging.WARNING)
            port = worker_settings.worker_port
            say(
                f"dashboard http://127.0.0.1:{dashboard_port}/  status http://127.0.0.1:{port}/status"
            )
            say(f"metrics http://127.0.0.1:{port}/metrics — Ctrl-C stops the worker")
            run(worker_settings, dashboard_port or None)
        except (StackError, KafkaUnavailable, WorkerError, WarehouseError, ValueError) as exc:
            raise fail(exc) from None
