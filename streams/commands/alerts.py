"""``linkwatch alerts``: run the alerting stage over the warehouse and list its alerts."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from linkwatch.streams.cli_support import fail, load_settings, out

_CLOCKS = ("data", "wall")


def _params(items: list[str]) -> dict[str, dict[str, str]]:
    """``METHOD`` or ``METHOD:NAME=VALUE[;NAME=VALUE]`` items as the stage's method table."""
    methods: dict[str, dict[str, str]] = {}
    for item in items:
        name, _, rest = item.partition(":")
        params: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in rest.split(";"))):
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise ValueError(
                    f"--method {item!r}: expected METHOD:NAME=VALUE, e.g. ears-c3:alpha=0.01"
                )
            params[key.strip()] = value.strip()
        methods[name.strip()] = params
    return methods


def _margins(items: list[str]) -> tuple[tuple[str, ...], ...]:
    """``national``, ``region``, ``region+age_band`` ... as dimension tuples."""
    return tuple(() if m == "national" else tuple(m.split("+")) for m in items)


def register(app: typer.Typer) -> None:
    alerts = typer.Typer(
        help="Run the alerting stage (detectors over the weekly counts) and list its alerts.",
        no_args_is_help=True,
        epilog="Example: linkwatch alerts run --once",
    )
    app.add_typer(alerts, name="alerts")

    @alerts.command("run")
    def run(
        ctx: typer.Context,
        once: Annotated[bool, typer.Option("--once", help="Run one cycle and stop.")] = False,
        interval: Annotated[
            float, typer.Option(help="Seconds between cycles when not --once.", min=1.0)
        ] = 60.0,
        method: Annotated[
            list[str] | None,
            typer.Option(
                "--method",
                metavar="METHOD[:NAME=VALUE;...]",
                help=(
                    "Detector to run, repeatable (default farrington-flexible with the package "
                    "defaults), e.g. ears-c3 or farrington-flexible:b=3;alpha=0.01."
                ),
            ),
        ] = None,
        margin: Annotated[
            list[str] | None,
            typer.Option(
                "--margin",
                metavar="DIMS",
                help=(
                    "Strata to watch per code group, repeatable: national, region, age_band, sex, "
                    "ses_quintile, or combinations such as region+age_band "
                    "(default: national and each single dimension)."
                ),
            ),
        ] = None,
        family_alpha: Annotated[
            float,
            typer.Option(
                help=(
                    "Expected false alarms per week over all tests (strata x detectors, plus "
                    "the deprivation gradients; each runs at this level divided by their "
                    "number); 0 uses each detector's own alpha."
                ),
                min=0.0,
            ),
        ] = 0.5,
        clock: Annotated[
            str,
            typer.Option(
                help=(
                    "data: the current week is the latest week with events (replays of past "
                    "extracts); wall: the week of the system clock."
                ),
            ),
        ] = "data",
        publish: Annotated[
            bool,
            typer.Option(
                "--publish/--no-publish", help="Publish alerts to linkwatch.alerts.v1 (Kafka)."
            ),
        ] = True,
    ) -> None:
        """Evaluate the complete weeks not yet evaluated, update the alerts and publish changes.

        The process holds the warehouse: with the embedded warehouse, stop the worker
        first (the worker runs the same stage on its own timer).

        Example: linkwatch alerts run --once --method farrington-flexible --method ears-c3
        """
        from linkwatch.streams.alerting import AlertingConfig, AlertingError, AlertingStage
        from linkwatch.streams.warehouse import WarehouseError, open_warehouse

        settings = load_settings(ctx)
        if clock not in _CLOCKS:
            raise fail(f"--clock {clock!r}: expected data or wall")
        try:
            config = AlertingConfig(
                methods=_params(method) if method else {"farrington-flexible": {}},
                margins=_margins(margin) if margin else AlertingConfig().margins,
                family_alpha=family_alpha or None,
                clock="data" if clock == "data" else "wall",
            )
        except (AlertingError, ValueError) as exc:
            raise fail(exc) from None
        producer: Any = None
        if publish:
            from linkwatch.streams.cli_support import kafka_bootstrap
            from linkwatch.streams.kafka_clients import make_producer
            from linkwatch.streams.topics import ALERTS, ensure_topics

            bootstrap = kafka_bootstrap(ctx)
            ensure_topics(bootstrap, (ALERTS,))
            producer = make_producer(bootstrap)
        from linkwatch.dashboards.model import create_model

        try:
            warehouse = open_warehouse(settings.clickhouse_url, settings.embedded_warehouse_dir)
            create_model(warehouse, settings.database)
        except WarehouseError as exc:
            raise fail(exc) from None
        try:
            stage = AlertingStage(warehouse, settings.database, producer, config)
            while True:
                try:
                    report = stage.run_once()
                except (AlertingError, WarehouseError) as exc:
                    if once:
                        raise fail(exc) from None
                    out.print(f"[red]cycle failed:[/] {exc}", highlight=False)
                else:
                    out.print(report.summary(), highlight=False)
                    for alert in report.opened:
                        out.print(
                            f"  [bold]opened[/] {alert.kind} {alert.method} "
                            f"{alert.stratum.label} from {alert.first_week}",
                            highlight=False,
                        )
                if once:
                    return
                time.sleep(interval)
        except KeyboardInterrupt:
            return
        finally:
            warehouse.close()

    @alerts.command("list")
    def list_(
        ctx: typer.Context,
        all_alerts: Annotated[
            bool, typer.Option("--all", help="Also closed alerts (newest first).")
        ] = False,
        kind: Annotated[
            str | None,
            typer.Option(help="Only epidemiological or data_quality alerts."),
        ] = None,
        limit: Annotated[int, typer.Option(help="Show at most this many.", min=1)] = 50,
        as_json: Annotated[
            bool, typer.Option("--json", help="One JSON object per line, evidence included.")
        ] = False,
    ) -> None:
        """Show the open alerts (or all) from the warehouse, with stratum, weeks and evidence.

        Example: linkwatch alerts list --kind epidemiological
        """
        from linkwatch.streams.alerting import ALERT_COLUMNS, Alert
        from linkwatch.streams.warehouse import WarehouseError, open_warehouse

        settings = load_settings(ctx)
        if kind not in (None, "epidemiological", "data_quality"):
            raise fail(f"--kind {kind!r}: expected epidemiological or data_quality")
        conditions = ["1"]
        if not all_alerts:
            conditions.append("state = 'open'")
        if kind:
            conditions.append("kind = {kind:String}")
        try:
            with open_warehouse(
                settings.clickhouse_url, settings.embedded_warehouse_dir
            ) as warehouse:
                rows = warehouse.query(
                    f"SELECT {', '.join(ALERT_COLUMNS)} FROM {settings.database}.alerts FINAL "
                    f"WHERE {' AND '.join(conditions)} ORDER BY updated_at DESC LIMIT {limit}",
                    {"kind": kind or ""},
                ).dicts()
        except WarehouseError as exc:
            raise fail(exc) from None
        found = [Alert.from_row(r) for r in rows]
        if as_json:
            for alert in found:
                row = alert.row()
                row["evidence"] = alert.evidence()
                typer.echo(json.dumps(row, default=str, sort_keys=True))
            return
        title = f"{len(found)} {'' if all_alerts else 'open '}alert(s) in {settings.database}"
        table = Table(title=title, title_justify="left")
        for col in (
            "kind",
            "state",
            "method",
            "stratum / subject",
            "weeks",
            "observed",
            "expected",
        ):
            table.add_column(col)
        for a in found:
            subject = ", ".join(f"{k}={v}" for k, v in a.subject.items()) or a.stratum.label
            expected = "-" if a.expected != a.expected else f"{a.expected:.1f}"
            table.add_row(
                a.kind,
                a.state,
                a.method,
                subject,
                f"{a.first_week}..{a.last_week}",
                f"{a.observed:g}",
                expected,
            )
        out.print(table)
