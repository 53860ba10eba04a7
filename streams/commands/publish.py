"""``linkwatch publish``: validate, pseudonymise and publish provider extracts to Kafka."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from linkwatch.streams.cli_support import err, fail, load_settings, out

if TYPE_CHECKING:
    from rich.progress import TaskID

    from linkwatch.streams.publish import PublishReport


SOURCES = ("gp_consultation", "ooh_contact", "hospital_episode")


def register(app: typer.Typer) -> None:
    @app.command("publish")
    def publish(
        ctx: typer.Context,
        inputs: Annotated[
            list[Path],
            typer.Argument(
                help="Extract files (CSV, Parquet, JSON lines); - reads standard input."
            ),
        ],
        source: Annotated[str, typer.Option(help=f"What the extract holds: {', '.join(SOURCES)}.")],
        fmt: Annotated[
            str | None,
            typer.Option("--format", help="csv, parquet or jsonl (default: from the file name)."),
        ] = None,
        encoding: Annotated[str, typer.Option(help="Text encoding of CSV / JSON input.")] = "utf-8",
        mapping: Annotated[
            Path | None,
            typer.Option(
                help="TOML file mapping your column names ([columns]) and constants ([constants])."
            ),
        ] = None,
        rejects: Annotated[
            Path, typer.Option(help="Where to write one line per problem of every rejected record.")
        ] = Path("rejects.csv"),
        allow_rejects: Annotated[
            bool, typer.Option("--allow-rejects", help="Exit 0 even when records were rejected.")
        ] = False,
        secret_file: Annotated[
            Path | None,
            typer.Option(
                help="File holding the pseudonymisation secret (else $LINKWATCH_PSEUDONYM_SECRET)."
            ),
        ] = None,
        pseudonym_domain: Annotated[
            str, typer.Option(help="Label of the pseudonym domain.")
        ] = "nl-ehr",
        pseudonym_version: Annotated[
            str, typer.Option(help="Version of the pseudonym domain's key.")
        ] = "1",
        bloom: Annotated[
            bool,
            typer.Option(
                "--bloom", help="Add Bloom-filter (CLK) encodings of names and date of birth."
            ),
        ] = False,
        clear_names: Annotated[
            bool,
            typer.Option(
                "--clear-names", help="Send names in clear (only where the agreement allows)."
            ),
        ] = False,
        pc4_only: Annotated[
            bool, typer.Option("--pc4-only", help="Send only the 4-digit postcode area.")
        ] = False,
        today: Annotated[
            str | None,
            typer.Option(help="Date that counts as today for plausibility checks (YYYY-MM-DD)."),
        ] = None,
    ) -> None:
        """Validate every record, pseudonymise identifiers, and publish to the source's Kafka topic.

        Identifiers are pseudonymised before anything leaves this machine: the national id
        becomes a keyed HMAC-SHA256 token in a labelled, versioned pseudonym domain; names
        leave only as Bloom-filter encodings (--bloom) or, where allowed, in clear
        (--clear-names). Records are produced with the idempotent producer (acks=all), keyed
        by the provider's record id. Every rejected record goes to the rejects file and the
        dead-letter topic with its record number, field, value and reason. The secret comes
        from a file or the environment, never from the command line.

        Exit code 1 when anything was rejected or not delivered (unless --allow-rejects for
        rejects).

        Example: linkwatch publish --source gp_consultation gp.csv --secret-file /etc/lw/secret
        """
        import sys

        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        from linkwatch.schemas.events import IdentityPolicy
        from linkwatch.schemas.pseudonymise import (
            BloomEncoder,
            PseudonymDomain,
            SecretError,
            load_secret,
        )
        from linkwatch.schemas.validation import ColumnMapping, count_records
        from linkwatch.streams.kafka_clients import KafkaUnavailable
        from linkwatch.streams.publish import (
            ProviderPublisher,
            RejectsFile,
            iter_inputs,
        )

        if source not in SOURCES:
            raise fail(f"--source {source!r} is not one of {', '.join(SOURCES)}")
        if fmt is not None and fmt not in ("csv", "parquet", "jsonl"):
            raise fail(f"--format {fmt!r} is not one of csv, parquet, jsonl")
        settings = load_settings(ctx)
        try:
            secret = load_secret(secret_file)
            policy = IdentityPolicy(
                domain=PseudonymDomain(pseudonym_domain, pseudonym_version, secret),
                bloom=BloomEncoder(secret, version=pseudonym_version) if bloom else None,
                clear_names=clear_names,
                postcode_pc4_only=pc4_only,
            )
            column_mapping = ColumnMapping.load(mapping) if mapping else None
            as_of = date.fromisoformat(today) if today else None
        except (SecretError, ValueError) as exc:
            raise fail(str(exc)) from None
        for path in inputs:
            if str(path) != "-" and not path.is_file():
                raise fail(f"input {path} does not exist or is not a file")

        rejects_file = RejectsFile(rejects)
        try:
            publisher = ProviderPublisher(settings.bootstrap_servers, policy, rejects=rejects_file)
        except KafkaUnavailable as exc:
            rejects_file.close()
            raise fail(str(exc)) from None

        reports: list[PublishReport] = []
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
        )
        try:
            with Progress(*columns, console=err, transient=False) as progress:
                for path, name in iter_inputs(inputs, sys.stdin.buffer.read):
                    total = count_records(path, fmt or (None if name != "<stdin>" else "csv"))
                    task = progress.add_task(Path(name).name, total=total, rate="")
                    started = progress.get_time()

                    def advance(n: int, task: TaskID = task, started: float = started) -> None:
                        progress.advance(task, n)
                        done = progress.tasks[task].completed
                        elapsed = max(progress.get_time() - started, 1e-9)
                        progress.update(task, rate=f"{done / elapsed:,.0f} rec/s")

                    reports.append(
                        publisher.publish_file(
                            path,
                            source,
                            fmt=fmt or (None if name != "<stdin>" else "csv"),
                            encoding=encoding,
                            mapping=column_mapping,
                            today=as_of,
                            input_name=name,
                            on_progress=advance,
                        )
                    )
                    progress.update(task, total=progress.tasks[task].completed)
        finally:
            publisher.close()
            rejects_file.close()

        _print_summary(reports, rejects_file.path if rejects_file.lines else None)
        failed = sum(r.failed for r in reports)
        rejected = any(r.rejected or r.file_problems for r in reports)
        if failed or (rejected and not allow_rejects):
            raise typer.Exit(code=1)


def _print_summary(reports: Sequence[PublishReport], rejects: Path | None) -> None:
    for r in reports:
        rate = r.read / r.seconds if r.seconds else 0.0
        reasons = ", ".join(f"{k} {v:,}" for k, v in r.rejected_by_reason.most_common())
        out.print(f"[bold]{r.input}[/] -> {r.topic}", highlight=False)
        if r.file_problems:
            for problem in r.file_problems:
                out.print(f"  [red]refused:[/] {problem.reason}", highlight=False)
        out.print(
            f"  read {r.read:,}  published [green]{r.published:,}[/]  "
            f"rejected [yellow]{r.rejected:,}[/]{f' ({reasons})' if r.rejected else ''}  "
            f"not delivered {r.failed:,}",
            highlight=False,
        )
        out.print(f"  {r.seconds:.1f} s, {rate:,.0f} records/s", style="dim", highlight=False)
        for message in r.delivery_errors[:5]:
            out.print(f"  [red]not delivered:[/] {message}", highlight=False)
    if rejects is not None:
        out.print(f"rejected records: {rejects} (and the dead-letter topic: `linkwatch dlq show`)")
