"""What every ``linkwatch`` command shares: its consoles, settings, and how it fails."""

from __future__ import annotations

import typer
from rich.console import Console

from linkwatch.streams.config import ConfigError, Settings

out = Console()
err = Console(stderr=True)


def fail(message: object) -> typer.Exit:
    """Print ``message`` as one error line on stderr; raise the returned exit (code 1)."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def load_settings(ctx: typer.Context) -> Settings:
    """Settings from ``--config`` (or ``$LINKWATCH_CONFIG``) and the environment, validated."""
    try:
        return Settings.load((ctx.find_root().obj or {}).get("config"))
    except ConfigError as exc:
        raise fail(exc) from None


def kafka_bootstrap(ctx: typer.Context) -> str:
    """The configured Kafka cluster's bootstrap servers, after checking a broker answers."""
    from linkwatch.streams.kafka_clients import KafkaUnavailable, require_broker

    settings = load_settings(ctx)
    try:
        require_broker(settings.bootstrap_servers)
    except KafkaUnavailable as exc:
        raise fail(exc) from None
    return settings.bootstrap_servers
