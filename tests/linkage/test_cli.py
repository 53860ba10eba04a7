"""``linkwatch link`` and ``linkwatch linkage train|explain|evaluate`` on files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from linkwatch.linkage.dutch_identities import make_population
from linkwatch.linkage.identity_csv import write_identity_csv, write_person_map
from linkwatch.streams.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("linkage-cli")
    raw, truth = make_population(600, seed=21)
    paths = {}
    for source in ("gp", "ooh", "hospital"):
        paths[source] = folder / f"{source}.csv"
        write_identity_csv(paths[source], [r for r in raw if r.source == source])
    paths["truth"] = folder / "truth.csv"
    write_person_map(paths["truth"], list(truth), list(truth.values()))
    paths["folder"] = folder
    return paths


def _inputs(files: dict[str, Path]) -> list[str]:
    return [arg for s in ("gp", "ooh", "hospital") for arg in ("--input", str(files[s]))]


def test_link_trains_links_and_evaluates(files: dict[str, Path]) -> None:
    folder = files["folder"]
    clusters, pairs = folder / "clusters.csv", folder / "pairs.csv"
    result = runner.invoke(
        app, ["link", *_inputs(files), "--output", str(clusters), "--pairs", str(pairs)]
    )
    assert result.exit_code == 0, result.output
    with clusters.open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["record_id", "person_id"]
    with files["truth"].open() as handle:
        assert len(rows) == sum(1 for _ in handle)
    chart = folder / "evaluation.html"
    result = runner.invoke(
        app,
        ["linkage", "evaluate", "--clusters", str(clusters), "--truth", str(files["truth"]),
         *_inputs(files), "--pairs", str(pairs), "--chart", str(chart)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "cross-source" in result.output
    assert "blocking pair completeness" in result.output
    f1_all = float(
        next(line for line in result.output.splitlines() if "│ all" in line).split("│")[4]
    )
    assert f1_all >= 0.97
    assert "<svg" in chart.read_text()


def test_train_explain_and_link_with_a_saved_model(files: dict[str, Path]) -> None:
    folder = files["folder"]
    model = folder / "model.json"
    result = runner.invoke(
        app, ["linkage", "train", *_inputs(files), "--output", str(model), "--u-pairs", "30000"]
    )
    assert result.exit_code == 0, result.output
    assert "EM pass" in result.output
    assert json.loads(model.read_text())["format"] == "linkwatch-fellegi-sunter"
    chart = folder / "weights.html"
    result = runner.invoke(
        app, ["linkage", "explain", "--model", str(model), "--chart", str(chart)]
    )
    assert result.exit_code == 0, result.output
    assert "date_of_birth" in result.output
    assert "day-month swapped" in chart.read_text()
    out_a, out_b = folder / "a.csv", folder / "b.csv"
    for out, extra in ((out_a, []), (out_b, ["--shuffle", "3"])):
        result = runner.invoke(
            app, ["link", *_inputs(files), "--model", str(model), "--output", str(out), *extra]
        )
        assert result.exit_code == 0, result.output

    def partition(path: Path) -> set[frozenset[str]]:
        groups: dict[str, set[str]] = {}
        with path.open() as handle:
            for row in csv.DictReader(handle):
                groups.setdefault(row["person_id"], set()).add(row["record_id"])
        return {frozenset(g) for g in groups.values()}

    assert partition(out_a) == partition(out_b)


def test_a_model_of_another_version_is_refused_in_one_line(files: dict[str, Path]) -> None:
    model = files["folder"] / "old-model.json"
    model.write_text(json.dumps({"format": "linkwatch-fellegi-sunter", "format_version": 0}))
    result = runner.invoke(
        app,
        [
            "link",
            *_inputs(files),
            "--model",
            str(model),
            "--output",
            str(files["folder"] / "x.csv"),
        ],
    )
    assert result.exit_code == 1
    assert "format version 0 is not supported" in result.output


def test_a_bad_header_names_the_file_and_columns(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name\n1,Jan\n")
    result = runner.invoke(
        app, ["link", "--input", str(bad), "--output", str(tmp_path / "out.csv")]
    )
    assert result.exit_code == 1
    assert "bad.csv" in result.output
    assert "record_id" in result.output


def test_malformed_values_are_reported_with_record_and_field(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_text(
        "record_id,source,national_id,given_name,family_name,date_of_birth,sex,postcode,house_number,city\n"
        "r1,gp,,Jan,Bakker,1970-13-45,M,1234AB,12,Utrecht\n"
        "r2,gp,,Jan,Bakker,1970-05-06,Q,1234AB,12,Utrecht\n"
        "r3,gp,,,,,,1234AB,12,Utrecht\n"
    )
    issues = tmp_path / "issues.csv"
    result = runner.invoke(
        app,
        [
            "link",
            "--input",
            str(data),
            "--output",
            str(tmp_path / "out.csv"),
            "--issues",
            str(issues),
            "--u-pairs",
            "10",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "record r1: field date_of_birth" in result.output
    assert "record r2: field sex = 'Q'" in result.output
    assert "1 without anything to link on" in result.output
    assert issues.read_text().count("\n") == 3
