"""The synthetic population: published-figure calibration, determinism, files and truth."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from linkwatch.schemas.synth import (
    SignalSpecError,
    SynthConfig,
    generate,
    parse_signal,
    write_outputs,
)
from linkwatch.schemas.synth.generator import IDENTITY_FILE_COLUMNS, SOURCES, SynthData
from linkwatch.schemas.synth.population import Population, make_population, to_days
from linkwatch.schemas.validation import bsn_eleven_test, validate_file

START, END = date(2020, 1, 1), date(2022, 12, 31)


@pytest.fixture(scope="module")
def large_population() -> Population:
    """Enough people for the calibration to be checked within tolerance (seeded)."""
    return make_population(np.random.SeedSequence(11).spawn(2), 100_000, START, END, 0.10)


@pytest.fixture(scope="module")
def small() -> SynthData:
    signal = parse_signal("name=fatigue,region=all,codes=A04+P20,start=2021-W20,increase=3,ramp=2")
    return generate(SynthConfig(persons=3_000, years=2, seed=5, signals=(signal,)))


@pytest.fixture(scope="module")
def written(small: SynthData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    write_outputs(small, out)
    return out


def post_covid_rate(pop: Population, mask: np.ndarray) -> float:
    infected = pop.infection_day >= 0
    return float(pop.post_covid[infected & mask].mean())


# -- calibration to published figures ---------------------------------------------------------
def test_post_covid_follows_five_to_fifteen_percent_of_infections(
    large_population: Population,
) -> None:
    everyone = np.ones(large_population.size, dtype=bool)
    assert 0.09 <= post_covid_rate(large_population, everyone) <= 0.11
    low = make_population(np.random.SeedSequence(3).spawn(2), 30_000, START, END, 0.05)
    assert 0.04 <= post_covid_rate(low, np.ones(low.size, dtype=bool)) <= 0.06


def test_post_covid_is_more_common_in_women(large_population: Population) -> None:
    pop = large_population
    ratio = post_covid_rate(pop, pop.sex == "F") / post_covid_rate(pop, pop.sex == "M")
    assert 1.5 <= ratio <= 1.95  # published female:male 1.5-1.9


def test_post_covid_has_a_deprivation_gradient(large_population: Population) -> None:
    pop = large_population
    ratio = post_covid_rate(pop, pop.quintile == 5) / post_covid_rate(pop, pop.quintile == 1)
    assert 1.2 <= ratio <= 1.65  # published Q5/Q1 about 1.4
    rates = [post_covid_rate(pop, pop.quintile == q) for q in range(1, 6)]
    assert rates[4] > rates[0]


def test_post_covid_peaks_at_ages_45_to_74_and_with_comorbidity(
    large_population: Population,
) -> None:
    pop = large_population
    age = pop.age_on(pop.infection_day)
    middle = post_covid_rate(pop, (age >= 45) & (age < 75))
    assert middle > 1.8 * post_covid_rate(pop, age < 30)
    assert middle > post_covid_rate(pop, age >= 75)
    lung = pop.comorbidity["lung"]
    assert post_covid_rate(pop, lung) > 1.4 * post_covid_rate(pop, ~lung)


def test_infections_follow_the_dutch_waves(large_population: Population) -> None:
    days = large_population.infection_day[large_population.infection_day >= 0]
    omicron = ((days >= to_days(date(2022, 1, 1))) & (days < to_days(date(2022, 4, 1)))).sum()
    summer_2021 = ((days >= to_days(date(2021, 5, 15))) & (days < to_days(date(2021, 6, 30)))).sum()
    assert omicron > 5 * summer_2021
    assert 0.4 < (large_population.infection_day >= 0).mean() < 0.7


def test_quintiles_are_area_based_fifths(large_population: Population) -> None:
    counts = np.bincount(large_population.areas.quintile)[1:]
    assert counts.max() - counts.min() <= 1
    means = [
        large_population.areas.ses_mean[large_population.areas.quintile == q].mean()
        for q in range(1, 6)
    ]
    assert means == sorted(means, reverse=True)  # quintile 1 has the highest SES


def test_national_ids_are_valid_and_unique(large_population: Population) -> None:
    ids = [i for i in large_population.national_id.tolist() if i]
    assert 0.97 < len(ids) / large_population.size < 1.0
    assert len(set(ids)) == len(ids)
    assert all(bsn_eleven_test(i) for i in ids[:5000])


# -- determinism -----------------------------------------------------------------------------
def test_the_same_seed_gives_the_same_extracts(small: SynthData) -> None:
    again = generate(small.config)
    for source in SOURCES:
        assert again.extracts[source].equals(small.extracts[source])
        assert again.identity_files[source].equals(small.identity_files[source])
    assert again.records.equals(small.records)
    other = generate(SynthConfig(persons=3_000, years=2, seed=6))
    assert not other.extracts["gp_consultation"].equals(small.extracts["gp_consultation"])


def test_a_signal_does_not_change_the_other_sources(small: SynthData) -> None:
    plain = generate(SynthConfig(persons=3_000, years=2, seed=5))
    assert plain.extracts["hospital_episode"].equals(small.extracts["hospital_episode"])
    assert plain.persons.equals(small.persons)


# -- contents --------------------------------------------------------------------------------
def records_of(data: SynthData, source: str, kind: str) -> list[dict[str, object]]:
    records = data.records.filter(
        pc.and_(pc.equal(data.records["source"], source), pc.equal(data.records["kind"], kind))
    )
    return records.to_pylist()


def test_post_covid_consultations_fall_4_to_52_weeks_after_infection(small: SynthData) -> None:
    persons = {p["person_id"]: p for p in small.persons.to_pylist()}
    gp = {r["source_record_id"]: r for r in small.extracts["gp_consultation"].to_pylist()}
    rows = records_of(small, "gp_consultation", "post_covid")
    assert rows
    for r in rows:
        infection = persons[r["person_id"]]["infection_date"]
        assert persons[r["person_id"]]["post_covid"]
        weeks = (gp[r["record_id"]]["contact_date"] - infection).days / 7
        assert 4 <= weeks <= 52


def test_hospital_codes_covid_and_post_covid(small: SynthData) -> None:
    rows = small.extracts["hospital_episode"].to_pylist()
    mains = {r["main_diagnosis"] for r in rows}
    assert {"U07.1", "U07.2"} <= mains
    assert "U09.9" not in mains  # coded after the manifestation
    u099 = [r for r in rows if "U09.9" in (r["secondary_diagnoses"] or "")]
    assert all(r["admission_date"] >= date(2020, 9, 1) for r in u099)
    assert any(r["main_diagnosis"] is None for r in rows)  # coding lag at the end of the period


def test_identifier_quality_differs_by_source(small: SynthData) -> None:
    def share_with_national_id(source: str) -> float:
        column = small.extracts[source]["national_id"]
        return 1 - column.null_count / len(column)

    assert share_with_national_id("gp_consultation") < 0.3
    assert share_with_national_id("hospital_episode") > 0.85
    gp_years_only = small.extracts["gp_consultation"]["date_of_birth"].null_count
    assert gp_years_only > 0.2 * small.extracts["gp_consultation"].num_rows
    errors = " ".join(e for e in small.records["identity_errors"].to_pylist() if e)
    for kind in ("initials_only", "duplicate_registration", "given_name_typo", "stale_address"):
        assert kind in errors


def test_injected_signal_is_recorded_in_the_truth(small: SynthData) -> None:
    (signal,) = small.signals
    injected = records_of(small, "gp_consultation", "injected")
    assert len(injected) == signal["injected_records"] > 0
    assert sum(signal["injected_per_week"].values()) == len(injected)
    gp = {r["source_record_id"]: r for r in small.extracts["gp_consultation"].to_pylist()}
    for r in injected:
        assert r["signal"] == "fatigue"
        row = gp[r["record_id"]]
        assert row["contact_date"] >= date(2021, 5, 17)
        assert row["icpc_code"] in ("A04", "P20", None)  # None: the practice did not code it


def test_signal_specifications_are_checked() -> None:
    with pytest.raises(SignalSpecError, match="expected key=value"):
        parse_signal("region")
    with pytest.raises(SignalSpecError, match="missing codes="):
        parse_signal("start=2022-01-03,increase=2")
    with pytest.raises(SignalSpecError, match="must be above 1"):
        parse_signal("codes=A04,start=2022-01-03,increase=0.5")
    with pytest.raises(SignalSpecError, match="outside the period"):
        SynthConfig(signals=(parse_signal("codes=A04,start=2031-01-06,increase=2"),))
    assert parse_signal("codes=a04+p20,start=2022-W10,increase=2").start == date(2022, 3, 7)


# -- files ------------------------------------------------------------------------------------
def test_every_extract_row_passes_validation(written: Path) -> None:
    for source in SOURCES:
        for suffix in ("csv", "parquet"):
            results = list(
                validate_file(written / f"{source}.{suffix}", source, today=date(2026, 1, 1))
            )
            problems = [p for r in results for p in r.problems]
            assert results, (source, suffix)
            assert problems == [], (source, suffix, problems[:3])


def test_identity_files_are_in_the_linkage_input_format(written: Path, small: SynthData) -> None:
    for source in SOURCES:
        with (written / "linkage" / f"{source}.identity.csv").open(encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            assert tuple(reader.fieldnames or ()) == IDENTITY_FILE_COLUMNS
            rows = list(reader)
        truth = pacsv.read_csv(written / "linkage" / f"{source}.truth.csv").to_pylist()
        assert [r["record_id"] for r in rows] == [t["record_id"] for t in truth]
        assert len(rows) == small.extracts[source].num_rows
        for r in rows[:500]:
            assert r["source"] == source
            dob = r["date_of_birth"]
            assert dob == "" or len(dob) in (4, 10)
            assert r["sex"] in ("M", "F", "")
    persons = set(small.persons["person_id"].to_pylist())
    assert set(small.records["person_id"].to_pylist()) <= persons


def test_the_area_table_has_denominators_for_every_year(written: Path, small: SynthData) -> None:
    areas = pacsv.read_csv(written / "areas.csv").to_pylist()
    years = {a["year"] for a in areas}
    assert years == {2020, 2021}
    first_year = [a for a in areas if a["year"] == 2020]
    total = sum(v for a in first_year for k, v in a.items() if k.startswith("population_"))
    assert total == small.population.size
    assert {a["ses_quintile"] for a in areas} == {1, 2, 3, 4, 5}


def test_manifest_lists_what_was_written(written: Path, small: SynthData) -> None:
    manifest = json.loads((written / "manifest.json").read_text())
    assert manifest["config"]["seed"] == 5
    assert manifest["counts"]["gp_consultation"] == small.extracts["gp_consultation"].num_rows
    for name in manifest["files"]:
        assert (written / name).is_file()


def test_the_synth_command(tmp_path: Path) -> None:
    from linkwatch.streams.cli import app

    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["synth", "--persons", "500", "--years", "1", "--out", str(out), "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    assert "500 persons" in result.output
    assert (out / "gp_consultation.csv").is_file()
    assert not (out / "gp_consultation.parquet").exists()
    bad = runner.invoke(app, ["synth", "--out", str(out), "--inject", "codes=A04"])
    assert bad.exit_code == 1
    assert "missing start=" in bad.output
