"""``linkwatch serve``: the surveillance dashboard and its JSON API over the warehouse."""

from __future__ import annotations

import os
from typing import Annotated

import typer

PORT_ENV = "LINKWATCH_DASHBOARD_PORT"
DATABASE_ENV = "LINKWATCH_DATABASE"
DEFAULT_PORT = 8050


def _port_from_env() -> int:
    raw = os.environ.get(PORT_ENV, "").strip()
    if not raw:
        return DEFAULT_PORT
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ValueError(f"{PORT_ENV}={raw!r}: expected a TCP port number (1-65535)")
    return int(raw)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(help=f"Port to listen on (also ${PORT_ENV}; default {DEFAULT_PORT})."),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(help=f"Warehouse database (also ${DATABASE_ENV}; default linkwatch)."),
    ] = None,
    threshold: Annotated[
        int | None,
        typer.Option(
            help="Suppress counts below this (also $LINKWATCH_SUPPRESSION_THRESHOLD; default 10).",
            min=1,
        ),
    ] = None,
    sample: Annotated[
        bool,
        typer.Option("--sample", help="Load a small deterministic sample into the database first."),
    ] = False,
) -> None:
    """Serve the web dashboard and the JSON API (OpenAPI at /docs) over the warehouse.

    The process that serves holds the warehouse: with the embedded warehouse no other
    process can open it meanwhile. The model is created when it is missing.

    Example: linkwatch serve --sample --port 8050
    """
    from rich.console import Console

    from linkwatch.dashboards.disclosure import DisclosureError, threshold_from_env
    from linkwatch.dashboards.model import DEFAULT_DATABASE, ModelError, create_model
    from linkwatch.streams.config import ConfigError, Settings
    from linkwatch.streams.warehouse import WarehouseError, open_warehouse

    err = Console(stderr=True)
    config = (ctx.find_root().obj or {}).get("config")
    try:
        settings = Settings.load(config)
        listen_port = port if port is not None else _port_from_env()
        limit = threshold if threshold is not None else threshold_from_env()
        db = database or os.environ.get(DATABASE_ENV, "").strip() or DEFAULT_DATABASE
        warehouse = open_warehouse(settings.clickhouse_url, settings.embedded_warehouse_dir)
    except (ConfigError, DisclosureError, ValueError, WarehouseError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    try:
        import uvicorn

        from linkwatch.dashboards.web import create_app

        create_model(warehouse, db)
        if sample:
            from linkwatch.dashboards.sample_data import load_sample

            summary = load_sample(warehouse, db)
            err.print(
                f"sample: {summary.events} events over {summary.weeks} weeks", highlight=False
            )
        app = create_app(warehouse, db, threshold=limit)
        err.print(
            f"dashboard on http://{host}:{listen_port}/ (API docs /docs) over "
            f"{warehouse.engine} {warehouse.location}, database {db}",
            highlight=False,
        )
        uvicorn.run(app, host=host, port=listen_port, log_level="warning")
    except (ModelError, WarehouseError, OSError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    finally:
        warehouse.close()


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the ``linkwatch`` command."""
    app.command("serve")(serve)
