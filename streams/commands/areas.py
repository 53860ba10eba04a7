"""``linkwatch load-areas``: publish the area SES and population table to its compacted topic."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from linkwatch.streams.cli_support import fail, kafka_bootstrap, out


def register(app: typer.Typer) -> None:
    @app.command("load-areas")
    def load_areas(
        ctx: typer.Context,
        table: Annotated[
            Path,
            typer.Argument(help="PC4 SES-WOA table (CSV or Parquet).", exists=True, dir_okay=False),
        ],
        mapping: Annotated[
            Path | None,
            typer.Option(help="TOML file mapping your column names ([columns]) to linkwatch's."),
        ] = None,
        allow_rejects: Annotated[
            bool, typer.Option("--allow-rejects", help="Exit 0 even when rows were rejected.")
        ] = False,
    ) -> None:
        """Publish per-PC4 SES-WOA scores, quintiles and population by age band and sex.

        The table has one row per PC4 area and year: pc4, year, households, ses_woa_mean,
        ses_quintile and population_<male|female>_<0_14|15_24|25_44|45_64|65_plus>, with CBS's
        conventions ("." for suppressed, decimal comma). Missing quintiles are derived from the
        areas' mean scores (1 = highest SES). Records go to the compacted topic ref.area-ses.v1,
        keyed pc4/year, so loading a corrected table replaces the old values.

        Example: linkwatch load-areas data/synth/areas.csv
        """
        from linkwatch.schemas.validation import ColumnMapping
        from linkwatch.streams.publish import publish_areas

        bootstrap = kafka_bootstrap(ctx)
        try:
            column_mapping = ColumnMapping.load(mapping) if mapping else None
            report = publish_areas(bootstrap, table, mapping=column_mapping)
        except ValueError as exc:
            raise fail(exc) from None
        out.print(f"{report.published:,} areas published to {report.topic}", highlight=False)
        for problem in report.rejected[:20]:
            out.print(f"  [yellow]rejected[/] {problem}", highlight=False)
        if len(report.rejected) > 20:
            out.print(f"  … and {len(report.rejected) - 20} more (see `linkwatch dlq show`)")
        if report.rejected and not allow_rejects:
            raise typer.Exit(1)
