"""``linkwatch topics``: create and inspect linkwatch's Kafka topics."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

out = Console()
err = Console(stderr=True)


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
        from linkwatch.streams.config import Settings
        from linkwatch.streams.kafka_clients import KafkaUnavailable, require_broker
        from linkwatch.streams.topics import ALL_TOPICS, ensure_topics

        settings = Settings.load((ctx.find_root().obj or {}).get("config"))
        try:
            require_broker(settings.bootstrap_servers)
            created = ensure_topics(settings.bootstrap_servers)
        except KafkaUnavailable as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None
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
        from linkwatch.streams.config import Settings
        from linkwatch.streams.kafka_clients import KafkaUnavailable, make_admin, require_broker
        from linkwatch.streams.topics import ALL_TOPICS, describe_topics

        settings = Settings.load((ctx.find_root().obj or {}).get("config"))
        try:
            require_broker(settings.bootstrap_servers)
        except KafkaUnavailable as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None
        names = [s.name for s in ALL_TOPICS]
        if all_topics:
            present = make_admin(settings.bootstrap_servers).list_topics(timeout=10).topics
            names += sorted(n for n in present if n not in names and not n.startswith("__"))
        states = {s.name: s for s in describe_topics(settings.bootstrap_servers, names)}
        table = Table(title=f"Kafka topics at {settings.bootstrap_servers}", title_justify="left")
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
