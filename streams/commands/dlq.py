"""``linkwatch dlq``: read the dead-letter topic: what was refused, where, and why."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer
from rich.table import Table

from linkwatch.streams.cli_support import kafka_bootstrap, out


def register(app: typer.Typer) -> None:
    dlq = typer.Typer(
        help="Inspect the dead-letter topic.",
        no_args_is_help=True,
        epilog="Example: linkwatch dlq show --summary",
    )
    app.add_typer(dlq, name="dlq")

    @dlq.command("show")
    def show(
        ctx: typer.Context,
        limit: Annotated[
            int, typer.Option(help="Show at most this many of the latest dead letters.")
        ] = 20,
        summary: Annotated[
            bool, typer.Option("--summary", help="Only counts by stage and reason.")
        ] = False,
    ) -> None:
        """List dead letters (newest last) with stage, reason, field, value and source position.

        Example: linkwatch dlq show --limit 50
        """
        from linkwatch.streams.deadletter import read_dead_letters

        letters = read_dead_letters(kafka_bootstrap(ctx))
        if summary:
            counts = Counter((d.stage, d.reason_code) for d in letters)
            table = Table(title=f"{len(letters):,} dead letters", title_justify="left")
            for col in ("stage", "reason", "count"):
                table.add_column(col)
            for (stage, code), n in counts.most_common():
                table.add_row(stage, code, f"{n:,}")
            out.print(table)
            return
        table = Table(
            title=f"latest {min(limit, len(letters))} of {len(letters):,} dead letters",
            title_justify="left",
        )
        for col in ("stage", "reason", "record", "field", "value", "from"):
            table.add_column(col, overflow="fold")
        for d in letters[-limit:]:
            where = (
                f"{d.source_topic}[{d.source_partition}]@{d.source_offset}"
                if d.source_topic
                else f"{d.source_file}:{d.record_number}"
            )
            table.add_row(
                d.stage, d.reason, d.record_id or "-", d.field or "-", (d.value or "-")[:40], where
            )
        out.print(table)
