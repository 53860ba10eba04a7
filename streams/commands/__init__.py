"""Subcommands of ``linkwatch``, one module per job.

Every module here defines ``register(app: typer.Typer) -> None`` that adds its
commands (or a command group) to the root app; ``linkwatch.streams.cli``
discovers the modules, so adding a command never edits a shared file.
"""
