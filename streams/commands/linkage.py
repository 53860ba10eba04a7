"""``linkwatch link`` and ``linkwatch linkage train|explain|evaluate``: record linkage from files.

The commands only read arguments, call :mod:`linkwatch.linkage` and print; numpy and the
linkage library are imported inside the commands so that ``linkwatch --help`` stays fast.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from linkwatch.streams.cli_support import err, fail, out

if TYPE_CHECKING:
    from collections.abc import Iterator
    from contextlib import AbstractContextManager

    from linkwatch.linkage.fellegi_sunter import FellegiSunterModel
    from linkwatch.linkage.standardise import StandardisationIssue, StandardRecord

linkage_app = typer.Typer(
    help="Train, explain and evaluate the Fellegi-Sunter linkage model.",
    no_args_is_help=True,
    epilog="Example: linkwatch linkage train --input gp.csv --output model.json",
)

InputOption = Annotated[
    list[Path],
    typer.Option(
        "--input", help="Identity CSV (record_id,source,national_id,given_name,...); repeatable."
    ),
]

#: Malformed values printed before the rest are only counted.
_SHOWN_ISSUES = 10


def _progress() -> AbstractContextManager[object]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


def _read_and_standardise(
    inputs: list[Path],
) -> tuple[list[StandardRecord], list[StandardisationIssue]]:
    from linkwatch.linkage.identity_csv import IdentityFileError, read_identity_files
    from linkwatch.linkage.standardise import standardise

    if not inputs:
        raise fail("give at least one --input file")
    try:
        raw = read_identity_files(inputs)
    except IdentityFileError as exc:
        raise fail(exc) from None
    records = [standardise(r) for r in raw]
    issues = [issue for r in records for issue in r.issues]
    return records, issues


def _report_issues(issues: list[StandardisationIssue], issues_path: Path | None) -> None:
    if not issues:
        return
    for issue in issues[:_SHOWN_ISSUES]:
        err.print(f"[yellow]malformed:[/] {issue}", highlight=False, soft_wrap=True)
    more = len(issues) - _SHOWN_ISSUES
    hint = f"; all written to {issues_path}" if issues_path else "; --issues FILE writes them all"
    err.print(
        f"{len(issues)} malformed value(s) treated as missing"
        + (f" ({more} more not shown{hint})" if more > 0 else ""),
        highlight=False,
    )
    if issues_path is not None:
        with issues_path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["record_id", "field", "value", "reason"])
            writer.writerows((i.record_id, i.field, i.value, i.reason) for i in issues)


def _train(records: list[StandardRecord], u_pairs: int) -> FellegiSunterModel:
    from linkwatch.linkage.fellegi_sunter import TrainingOptions, train_model

    with _progress() as progress:
        tasks: dict[str, object] = {}

        def report(stage: str, done: int, total: int) -> None:
            task = tasks.get(stage)
            if task is None:
                task = tasks[stage] = progress.add_task(stage, total=total)  # type: ignore[attr-defined]
            progress.update(task, completed=done, total=total)  # type: ignore[attr-defined]

        try:
            return train_model(records, options=TrainingOptions(u_pairs=u_pairs), progress=report)
        except ValueError as exc:
            raise fail(exc) from None


def _load_model(path: Path) -> FellegiSunterModel:
    from linkwatch.linkage.fellegi_sunter import FellegiSunterModel, ModelFileError

    try:
        return FellegiSunterModel.load(path)
    except OSError as exc:
        raise fail(f"{path}: cannot read model ({exc.strerror})") from None
    except ModelFileError as exc:
        raise fail(exc) from None


def link(
    inputs: InputOption,
    output: Annotated[Path, typer.Option("--output", help="Where to write record_id,person_id.")],
    model_path: Annotated[
        Path | None,
        typer.Option("--model", help="Trained model JSON; without it, train on the inputs first."),
    ] = None,
    pairs_path: Annotated[
        Path | None,
        typer.Option(
            "--pairs", help="Also write every scored pair (record ids, match weight, probability)."
        ),
    ] = None,
    shuffle: Annotated[
        int | None,
        typer.Option("--shuffle", help="Process the records in an order shuffled with this seed."),
    ] = None,
    issues_path: Annotated[
        Path | None,
        typer.Option(
            "--issues", help="Write every malformed value (record, field, value, reason)."
        ),
    ] = None,
    u_pairs: Annotated[
        int, typer.Option("--u-pairs", help="Random pairs for u when training.")
    ] = 150_000,
) -> None:
    """Assign a person id to every input record with the incremental linkage engine.

    Records are processed one by one in input order (or shuffled with --shuffle SEED): each is
    linked to the best person above the model's link threshold, starts a new person, or merges
    persons it links. Without --model the model is first trained, unsupervised, on the inputs.

    Example: linkwatch link --input gp.csv --input hospital.csv --output clusters.csv
    """
    from linkwatch.linkage.clusters import link_batch
    from linkwatch.linkage.fellegi_sunter import weight_to_probability
    from linkwatch.linkage.identity_csv import write_person_map

    records, issues = _read_and_standardise(inputs)
    _report_issues(issues, issues_path)
    model = _load_model(model_path) if model_path else _train(records, u_pairs)
    with _progress() as progress:
        task = progress.add_task("linking records", total=len(records))  # type: ignore[attr-defined]
        result = link_batch(
            records,
            model,
            shuffle_seed=shuffle,
            progress=lambda n: progress.advance(task, n),  # type: ignore[attr-defined]
            collect_pairs=pairs_path is not None,
        )
    try:
        write_person_map(output, result.record_ids, result.person_ids)
        if pairs_path is not None:
            with pairs_path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["record_id_l", "record_id_r", "match_weight", "match_probability"])
                writer.writerows(
                    (a, b, f"{w:.4f}", f"{weight_to_probability(w):.6g}")
                    for a, b, w in result.pairs
                )
    except OSError as exc:
        raise fail(f"cannot write output: {exc}") from None
    counts = result.counts
    out.print(
        f"{counts.records} records → {len(set(result.person_ids))} persons "
        f"({counts.linked} linked, {counts.merges} merges, "
        f"{counts.unlinkable} without anything to link on, "
        f"{counts.review_pairs} pairs for review, "
        f"{result.blocking.capped_blocks} blocks over the size cap); written to {output}",
        highlight=False,
    )


def train(
    inputs: InputOption,
    output: Annotated[Path, typer.Option("--output", help="Where to write the model JSON.")],
    u_pairs: Annotated[int, typer.Option("--u-pairs", help="Random pairs for u.")] = 150_000,
) -> None:
    """Train the Fellegi-Sunter model on unlabelled identity records and write it as JSON.

    u comes from random record pairs, m from EM on the blocked pairs of each blocking pass,
    and the prior from the expected number of matches.

    Example: linkwatch linkage train --input gp.csv --input hospital.csv --output model.json
    """
    records, issues = _read_and_standardise(inputs)
    _report_issues(issues, None)
    model = _train(records, u_pairs)
    try:
        model.save(output)
    except OSError as exc:
        raise fail(f"{output}: cannot write model ({exc.strerror})") from None
    summary = model.summary
    for name, iterations in summary.em_iterations.items():
        state = "converged" if summary.em_converged.get(name) else "stopped"
        out.print(
            f"EM pass {name!r}: {summary.em_pairs[name]} pairs, {iterations} iterations, {state}"
        )
    out.print(
        f"prior match probability {model.prior:.3g} "
        f"(≈{summary.expected_matches:.0f} matching pairs); "
        f"model written to {output}",
        highlight=False,
    )


def explain(
    model_path: Annotated[Path, typer.Option("--model", help="Model JSON to explain.")],
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Also draw the level weights as an HTML chart.")
    ] = None,
) -> None:
    """Print every comparison level with its m, u and match weight (and draw them).

    Example: linkwatch linkage explain --model model.json --chart weights.html
    """
    from rich.table import Table

    from linkwatch.linkage.charts import model_weights_html

    model = _load_model(model_path)
    table = Table(title=f"{model_path}: prior {model.prior:.3g}, link ≥ {model.link_threshold}")
    for column in ("comparison", "level", "meaning", "m", "u", "weight"):
        table.add_column(column, justify="right" if column in ("m", "u", "weight") else "left")
    for comparison in model.comparisons:
        for lvl in comparison.levels:
            table.add_row(
                comparison.spec.name,
                lvl.spec.label,
                lvl.spec.description,
                "-" if lvl.spec.is_null else f"{lvl.m:.4g}",
                "-" if lvl.spec.is_null else f"{lvl.u:.4g}",
                f"{lvl.weight:+.2f}",
            )
    out.print(table)
    if chart is not None:
        chart.write_text(model_weights_html(model), encoding="utf-8")
        out.print(f"chart written to {chart}")


def _read_sources(inputs: list[Path], truth: Path) -> dict[str, str]:
    from linkwatch.linkage.identity_csv import IdentityFileError, read_identity_csv, read_person_map

    sources: dict[str, str] = {}
    try:
        for path in inputs:
            sources.update((r.record_id, r.source) for r in read_identity_csv(path))
        if not sources:
            with truth.open(newline="", encoding="utf-8-sig") as handle:
                header = next(csv.reader(handle), [])
            if "source" in header:
                sources = read_person_map(truth, value_column="source")
    except IdentityFileError as exc:
        raise fail(exc) from None
    return sources


def _print_pair_completeness(
    inputs: list[Path], truth: dict[str, str], model_path: Path | None
) -> None:
    from linkwatch.linkage.blocking import DEFAULT_BLOCK_CAP, DEFAULT_PASSES, pair_completeness

    records, _ = _read_and_standardise(inputs)
    passes, cap = DEFAULT_PASSES, DEFAULT_BLOCK_CAP
    if model_path is not None:
        model = _load_model(model_path)
        passes, cap = model.passes, model.block_cap
    result = pair_completeness(records, truth, passes, cap)
    per_pass = ", ".join(f"{name} {share:.3f}" for name, share in result.per_pass.items())
    out.print(
        f"blocking pair completeness {result.completeness:.4f} "
        f"({result.found} of {result.true_pairs} true pairs; {result.candidate_pairs} candidate "
        f"pairs); per pass: {per_pass}",
        highlight=False,
    )


def _read_pairs(path: Path) -> Iterator[tuple[str, str, float]]:
    with path.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                yield row["record_id_l"], row["record_id_r"], float(row["match_weight"])
            except (KeyError, ValueError):
                raise fail(
                    f"{path}:{line}: expected record_id_l,record_id_r,match_weight,..."
                ) from None


def evaluate(
    clusters: Annotated[
        Path, typer.Option("--clusters", help="record_id,person_id from `linkwatch link`.")
    ],
    truth: Annotated[
        Path, typer.Option("--truth", help="record_id,person_id of the true persons.")
    ],
    inputs: Annotated[
        list[Path] | None,
        typer.Option(
            "--input",
            help="The linked input files, for each record's source (cross-source figures).",
        ),
    ] = None,
    pairs_path: Annotated[
        Path | None,
        typer.Option("--pairs", help="Scored pairs from `linkwatch link --pairs`, for the curve."),
    ] = None,
    model_path: Annotated[
        Path | None, typer.Option("--model", help="Model, to mark its link threshold.")
    ] = None,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Write the HTML chart here.")
    ] = None,
) -> None:
    """Print pairwise precision, recall and F1 (all pairs and cross-source) and cluster counts.

    Sources come from --input files or a `source` column of the truth file. With --pairs the
    chart shows precision, recall and F1 of the scored pairs against the match-weight threshold.

    Example: linkwatch linkage evaluate --clusters clusters.csv --truth truth.csv --chart eval.html
    """
    import numpy as np
    from rich.table import Table

    from linkwatch.linkage.charts import evaluation_html
    from linkwatch.linkage.evaluation import evaluate_clusters, threshold_curve
    from linkwatch.linkage.identity_csv import IdentityFileError, read_person_map

    try:
        predicted = read_person_map(clusters)
        true = read_person_map(truth)
    except IdentityFileError as exc:
        raise fail(exc) from None
    sources = _read_sources(inputs or [], truth)
    result = evaluate_clusters(predicted, true, sources or None)
    table = Table(title=f"{clusters} against {truth}")
    for column in ("pairs", "precision", "recall", "F1", "true pairs", "predicted pairs"):
        table.add_column(column, justify="left" if column == "pairs" else "right")
    rows = [("all", result.all_pairs)]
    if sources:
        rows.append(("cross-source", result.cross_source))
    for name, scores in rows:
        table.add_row(
            name,
            f"{scores.precision:.4f}",
            f"{scores.recall:.4f}",
            f"{scores.f1:.4f}",
            str(scores.true_pairs),
            str(scores.predicted_pairs),
        )
    out.print(table)
    if not sources:
        out.print("cross-source figures need sources: pass the linked files with --input")
    out.print(
        f"{result.records} records; persons found {result.predicted_persons} "
        f"({result.predicted_singletons} single-record), true persons {result.true_persons} "
        f"({result.true_singletons} single-record)"
        + (
            f"; {result.records_without_truth} records not in the truth file"
            if result.records_without_truth
            else ""
        ),
        highlight=False,
    )
    if inputs:
        _print_pair_completeness(inputs, true, model_path)
    if chart is not None:
        curve = []
        link_weight = None
        if model_path is not None:
            link_weight = _load_model(model_path).link_weight
        if pairs_path is not None:
            pairs = list(_read_pairs(pairs_path))
            if pairs:
                weights = [w for _, _, w in pairs]
                grid = np.linspace(max(min(weights), -20.0), min(max(weights), 40.0), 61)
                curve = threshold_curve(pairs, true, grid)
        chart.write_text(evaluation_html(result, curve, link_weight), encoding="utf-8")
        out.print(f"chart written to {chart}")


def register(app: typer.Typer) -> None:
    """Add ``link`` and the ``linkage`` group to the root app."""
    app.command("link")(link)
    linkage_app.command("train")(train)
    linkage_app.command("explain")(explain)
    linkage_app.command("evaluate")(evaluate)
    app.add_typer(linkage_app, name="linkage")
