"""``linkwatch topics``: create and inspect linkwatch's Kafka topics."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from linkwatch.streams.cli_support import kafka_bootstrap, out


def register(app: typer.Typer) -> None:
    topics = typer.Typer(
        help="Create and inspect linkwatch's Kafka topics.",
        no_args_is_help=True,
        epilog="Example: linkwatch topics create",
    )
    app.add_typer(topics, name="topics")

    @topics.command("create")
    def create(ctx: typer.Context) -> None:
        """Create every topic linkwatch uses that does not exist yet (the worker does this too).

        Example: linkwatch topics create
        """
        from linkwatch.streams.topics import ALL_TOPICS, ensure_topics

        created = ensure_topics(kafka_bootstrap(ctx))
        for spec in ALL_TOPICS:
            mark = "[green]created[/]" if spec.name in created else "exists "
            out.print(
                f"{mark}  {spec.name:<26} {spec.partitions} partition(s)  {spec.purpose}",
                highlight=False,
            )

    @topics.command("list")
    def list_(
        ctx: typer.Context,
        all_topics: Annotated[
            bool, typer.Option("--all", help="Also topics linkwatch does not own.")
        ] = False,
    ) -> None:
        """Show linkwatch's topics with partitions, message counts and non-default configuration.

        Example: linkwatch topics list
        """
        from linkwatch.streams.kafka_clients import make_admin
        from linkwatch.streams.topics import ALL_TOPICS, describe_topics

        bootstrap = kafka_bootstrap(ctx)
        names = [s.name for s in ALL_TOPICS]
        if all_topics:
            present = make_admin(bootstrap).list_topics(timeout=10).topics
            names += sorted(n for n in present if n not in names and not n.startswith("__"))
        states = {s.name: s for s in describe_topics(bootstrap, names)}
        table = Table(title=f"Kafka topics at {bootstrap}", title_justify="left")
        for col in ("topic", "partitions", "messages", "configuration"):
            table.add_column(col)
        for name in names:
            s = states.get(name)
            if s is None:
                table.add_row(name, "-", "-", "[yellow]missing: run `linkwatch topics create`[/]")
            else:
                conf = ", ".join(f"{k}={v}" for k, v in sorted(s.config.items()))
                table.add_row(name, str(s.partitions), f"{s.messages:,}", conf)
        out.print(table)
