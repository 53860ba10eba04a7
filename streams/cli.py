"""The ``linkwatch`` command: one entry point, one subcommand per job."""

from __future__ import annotations

import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import typer

from linkwatch.deploy.errors import StackError
from linkwatch.deploy.status import ComponentStatus
from linkwatch.streams.cli_support import err, fail, load_settings, out
from linkwatch.streams.config import ConfigError
from linkwatch.streams.warehouse import WarehouseError

app = typer.Typer(
    name="linkwatch",
    help="linkwatch: public-health surveillance on linked electronic health records.",
    no_args_is_help=True,
    add_completion=False,
    epilog="Example: linkwatch stack up && linkwatch stack status",
)
stack_app = typer.Typer(
    help="Start, stop and inspect the local Kafka broker and ClickHouse.",
    no_args_is_help=True,
    epilog="Example: linkwatch stack up --clickhouse-server",
)
app.add_typer(stack_app, name="stack")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML settings file (also $LINKWATCH_CONFIG); environment variables override it.",
        exists=False,
        dir_okay=False,
    ),
]


@app.callback()
def _root(ctx: typer.Context, config: ConfigOption = None) -> None:
    """linkwatch: public-health surveillance on linked electronic health records."""
    ctx.obj = {"config": config}


def _step_printer() -> Any:
    """A step callback that prints each step with the time it took."""
    state: dict[str, Any] = {"label": None, "t": 0.0}

    def finish() -> None:
        if state["label"] is not None:
            err.print(
                f"  [green]✓[/] {state['label']} ({time.monotonic() - state['t']:.1f} s)",
                highlight=False,
            )
            state["label"] = None

    def step(label: str) -> None:
        finish()
        err.print(f"  [cyan]…[/] {label}", highlight=False)
        state["label"], state["t"] = label, time.monotonic()

    step.finish = finish  # type: ignore[attr-defined]
    return step


@app.command()
def version() -> None:
    """Print linkwatch's version and those of the engines it drives.

    Example: linkwatch version
    """
    rows = {"linkwatch": metadata.version("linkwatch"), "python": platform.python_version()}
    for dist in ("confluent-kafka", "faust-streaming", "chdb", "clickhouse-driver", "fastavro"):
        try:
            rows[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            rows[dist] = "not installed"
    try:
        import confluent_kafka

        rows["librdkafka"] = confluent_kafka.libversion()[0]
    except ImportError:
        pass
    for name, value in rows.items():
        out.print(f"{name:<18} {value}", highlight=False)


def _print_status(rows: list[ComponentStatus], as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps([r.as_dict() for r in rows]))
        return
    colours = {"healthy": "green", "busy": "green", "unhealthy": "red", "stopped": "yellow"}
    for r in rows:
        pid = f"pid {r.pid}" if r.pid else ""
        out.print(
            f"[bold]{r.name:<18}[/] [{colours[r.state]}]{r.state:<9}[/] {r.version or '-':<10} "
            f"{r.address}  {pid}",
            highlight=False,
        )
        role = f"  {r.role}" + (f" — {r.detail}" if r.detail else "")
        out.print(role, style="dim", highlight=False)
        if r.data_dir:
            out.print(f"  data {r.data_dir}", style="dim", highlight=False, soft_wrap=True)
        if r.log:
            out.print(f"  log  {r.log}", style="dim", highlight=False, soft_wrap=True)


@stack_app.command("up")
def stack_up(
    ctx: typer.Context,
    clickhouse_server: Annotated[
        bool,
        typer.Option(
            "--clickhouse-server",
            help="Also start the local ClickHouse server (native protocol) from its own config.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Start the local Kafka broker and open the embedded warehouse (idempotent).

    The first run downloads the Kafka broker's jars with Maven into the cache
    directory. Running it again while everything runs changes nothing.

    Example: linkwatch stack up --clickhouse-server
    """
    from linkwatch.streams.stack import Stack

    try:
        stack = Stack(load_settings(ctx))
        step = _step_printer()
        rows = stack.up(clickhouse_server=clickhouse_server, step=step)
        step.finish()
    except (StackError, ConfigError, WarehouseError) as exc:
        raise fail(exc) from None
    _print_status(rows, as_json)
    if not all(r.healthy for r in rows):
        raise typer.Exit(code=1)


@stack_app.command("down")
def stack_down(ctx: typer.Context) -> None:
    """Stop the local Kafka broker and ClickHouse server; harmless when nothing runs.

    Data stays on disk: the next `stack up` finds every topic and table again.

    Example: linkwatch stack down
    """
    from linkwatch.streams.stack import Stack

    try:
        stopped = Stack(load_settings(ctx)).down()
    except (StackError, ConfigError) as exc:
        raise fail(exc) from None
    out.print("stopped: " + ", ".join(stopped) if stopped else "nothing was running")


@stack_app.command("status")
def stack_status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Show each component's health, version, address, pid, data directory and log file.

    Exits 1 when a component is not healthy, so scripts can wait on it.

    Example: linkwatch stack status --json
    """
    from linkwatch.streams.stack import Stack

    try:
        rows = Stack(load_settings(ctx)).status()
    except (StackError, ConfigError) as exc:
        raise fail(exc) from None
    _print_status(rows, as_json)
    if not all(r.healthy for r in rows):
        raise typer.Exit(code=1)


def _register_commands() -> None:
    import importlib
    import pkgutil

    from linkwatch.streams import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(app)


_register_commands()


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
