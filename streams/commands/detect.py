"""``linkwatch detect``: run one outbreak detector over one weekly series in a CSV file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

_METHOD_NAMES = ("farrington-flexible", "ears-c1", "ears-c2", "ears-c3", "glrnb")


def _parse_range(text: str) -> tuple[int, int]:
    first, sep, last = text.partition(":")
    if not sep or not first.strip().isdigit() or not last.strip().isdigit():
        raise ValueError(
            f"--range {text!r}: expected FIRST:LAST with 1-based week numbers, e.g. 300:350"
        )
    return int(first), int(last)


def _parse_params(items: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--param {item!r}: expected NAME=VALUE, e.g. b=5")
        if name.strip() in params:
            raise ValueError(f"--param {name.strip()!r} is given twice")
        params[name.strip()] = value.strip()
    return params


def detect(
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="Detector: " + ", ".join(_METHOD_NAMES) + ".",
            show_default=False,
        ),
    ],
    input_path: Annotated[
        Path,
        typer.Option(
            "--input",
            help="CSV with columns week (1-based index or ISO date of the Monday) and observed.",
            dir_okay=False,
            show_default=False,
        ),
    ],
    output_path: Annotated[
        Path,
        typer.Option(
            "--output",
            help="CSV to write: week, observed, expected, upperbound, alarm (0/1), score.",
            dir_okay=False,
            show_default=False,
        ),
    ],
    week_range: Annotated[
        str | None,
        typer.Option(
            "--range",
            metavar="FIRST:LAST",
            help="1-based inclusive weeks to evaluate (default: every week with enough history).",
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            metavar="NAME=VALUE",
            help=(
                "Detector parameter, repeatable; R control names in snake_case. "
                "farrington-flexible: b, w, alpha, no_periods, weights_threshold, "
                "past_weeks_not_included, p_threshold_trend, threshold_method "
                "(delta|nbPlugin|muan), trend, reweight, limit54 (e.g. 5,4), power_trans. "
                "ears-c1/c2/c3: alpha, baseline, min_sigma. "
                "glrnb: c_arl, alpha, m, mtilde, dir, s, trend."
            ),
        ),
    ] = None,
) -> None:
    """Run an outbreak detector over a weekly series, as the R package surveillance does.

    Writes one row per evaluated week with the expected count, the upper bound
    (threshold), the alarm and the detector's score. Prints the number of alarms.

    Example: linkwatch detect --method farrington-flexible --input series.csv --output alarms.csv
    """
    from rich.console import Console

    from linkwatch.surveillance.detection import DetectionError
    from linkwatch.surveillance.methods import run_detector
    from linkwatch.surveillance.weekly_series import read_weekly_series, write_detection_csv

    err = Console(stderr=True)
    try:
        if method not in _METHOD_NAMES:
            raise DetectionError(f"--method {method!r}: expected one of {', '.join(_METHOD_NAMES)}")
        weeks = _parse_range(week_range) if week_range is not None else None
        params = _parse_params(param or [])
        series = read_weekly_series(input_path)
        with err.status(f"running {method} over {series.observed.shape[0]} weeks"):
            table = run_detector(method, series.observed, params, weeks)
        write_detection_csv(output_path, table, series.labels)
    except (DetectionError, ValueError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    except OSError as exc:
        err.print(f"[bold red]error:[/] {output_path}: {exc.strerror}", highlight=False)
        raise typer.Exit(code=1) from None
    alarms = int(table.alarm.sum())
    first, last = int(table.week[0]), int(table.week[-1])
    typer.echo(
        f"{method}: {len(table)} weeks evaluated ({first}..{last}), {alarms} alarm(s) "
        f"-> {output_path}"
    )


def register(app: typer.Typer) -> None:
    """Add ``detect`` to the root command."""
    app.command("detect")(detect)
