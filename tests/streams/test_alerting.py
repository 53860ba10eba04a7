"""The alerting stage: alert state, detection over the warehouse, data quality, Kafka output."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import yaml

from linkwatch.dashboards.model import create_model
from linkwatch.dashboards.regions import PROVINCES
from linkwatch.schemas.registry import SchemaRegistry
from linkwatch.streams.alerting import (
    CLOSED,
    DATA_QUALITY,
    EPIDEMIOLOGICAL,
    OPEN,
    WEEK,
    Alert,
    AlertingConfig,
    AlertingError,
    AlertingMetrics,
    AlertingStage,
    AlertTracker,
    Stratum,
    WeekResult,
    _Detector,
    alert_id,
    monday,
)
from linkwatch.streams.warehouse import EmbeddedWarehouse
from linkwatch.surveillance.methods import METHODS

REPO = Path(__file__).resolve().parents[2]
AGE_BANDS = ("0_14", "15_24", "25_44", "45_64", "65_plus")
AGE_SHARE = np.array([0.16, 0.12, 0.25, 0.27, 0.20])
SEXES = ("MALE", "FEMALE")
FIRST_WEEK = dt.date(2019, 1, 7)
N_WEEKS = 208
OUTBREAK_WEEK = 190  # 0-based index of the first outbreak week
OUTBREAK_REGION = "Groningen"
OUTBREAK_GROUP = "symptom_fatigue"
NOW_AFTER = FIRST_WEEK + N_WEEKS * WEEK + dt.timedelta(days=2)


# ---------------------------------------------------------------------------
# unit: alert state
# ---------------------------------------------------------------------------

NOW = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
STRATUM = Stratum("symptom_fatigue", region="Groningen")


def week(i: int) -> dt.date:
    return dt.date(2023, 1, 2) + i * WEEK


def result(i: int, alarm: bool, observed: float = 10.0) -> WeekResult:
    return WeekResult(week(i), observed, 5.0, 8.0, alarm, 2.0 if alarm else 0.3)


def feed(tracker: AlertTracker, alarms: str, start: int = 0) -> list[Alert]:
    changes: list[Alert] = []
    for i, flag in enumerate(alarms, start=start):
        changes += tracker.observe(result(i, flag == "x"), NOW + dt.timedelta(minutes=i))
    return changes


def test_alarms_with_short_gaps_are_one_alert_that_closes_after_quiet_weeks() -> None:
    tracker = AlertTracker("farrington-flexible", STRATUM, quiet_weeks_to_close=3)
    changes = feed(tracker, "..xx.x..x...")
    ids = {c.alert_id for c in changes}
    assert ids == {alert_id(EPIDEMIOLOGICAL, "farrington-flexible", STRATUM.key, week(2))}
    assert changes[0].state == OPEN
    assert changes[0].first_week == week(2)
    final = changes[-1]
    assert final.state == CLOSED
    assert final.first_week == week(2)
    assert final.last_week == week(8)
    assert [w.week for w in final.weeks] == [week(i) for i in range(2, 12)]
    assert [w.alarm for w in final.weeks] == [c == "x" for c in "xx.x..x..."]
    assert tracker.open is None
    versions = [c.version for c in changes]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)


def test_a_new_alarm_after_closing_is_a_new_alert() -> None:
    tracker = AlertTracker("ears-c3", STRATUM, quiet_weeks_to_close=2)
    changes = feed(tracker, "x..x")
    ids = [c.alert_id for c in changes]
    assert changes[2].state == CLOSED
    assert changes[3].state == OPEN
    assert ids[0] == ids[1] == ids[2] != ids[3]
    assert changes[3].first_week == week(3)


def test_quiet_weeks_below_the_limit_keep_the_alert_open() -> None:
    tracker = AlertTracker("farrington-flexible", STRATUM, quiet_weeks_to_close=4)
    changes = feed(tracker, "x...")
    assert all(c.state == OPEN for c in changes)
    assert tracker.open is not None
    assert tracker.open.last_week == week(0)


def test_weeks_already_seen_are_ignored_after_recovery() -> None:
    first = AlertTracker("farrington-flexible", STRATUM, quiet_weeks_to_close=3)
    feed(first, "xx.")
    recovered = Alert.from_row(first.open.row() if first.open else {})
    second = AlertTracker("farrington-flexible", STRATUM, 3, open_alert=recovered)
    assert feed(second, "xx.") == []  # the same weeks again: nothing changes
    more = feed(second, "x", start=3)
    assert [a.alert_id for a in more] == [recovered.alert_id]
    assert more[0].last_week == week(3)
    assert len(more[0].weeks) == 4


def test_alert_row_and_evidence_round_trip() -> None:
    tracker = AlertTracker("farrington-flexible", STRATUM, 3, details={"parameters": {"b": 2}})
    alert = feed(tracker, "x")[0]
    row = alert.row()
    evidence = json.loads(row["evidence"])
    assert evidence["stratum"]["region"] == "Groningen"
    assert evidence["weeks"][0] == {
        "week": "2023-01-02",
        "observed": 10.0,
        "expected": 5.0,
        "upperbound": 8.0,
        "alarm": True,
        "score": 2.0,
    }
    assert evidence["parameters"] == {"b": 2}
    back = Alert.from_row(row)
    assert back.content() == alert.content()


def test_configuration_errors_name_the_value() -> None:
    with pytest.raises(AlertingError, match="unknown detector 'cusum'"):
        AlertingConfig(methods={"cusum": {}})
    with pytest.raises(AlertingError, match="unknown parameter 'x'"):
        AlertingConfig(methods={"farrington-flexible": {"x": "1"}})
    with pytest.raises(AlertingError, match="margin"):
        AlertingConfig(margins=(("province",),))
    with pytest.raises(AlertingError, match="quiet_weeks_to_close"):
        AlertTracker("ears-c3", STRATUM, 0)


def test_farrington_uses_the_years_of_history_a_series_has() -> None:
    method = METHODS["farrington-flexible"]
    detector = _Detector("farrington-flexible", method, method.parse({}))
    # w = 3: one year of history from week 56, two from 108, ... up to the default b = 5.
    assert detector.groups(50, 60) == [(56, 60, {"b": 1})]
    assert detector.groups(100, 120) == [(100, 107, {"b": 1}), (108, 120, {"b": 2})]
    assert detector.groups(400, 401) == [(400, 401, {"b": 5})]
    ears = _Detector("ears-c3", METHODS["ears-c3"], {})
    assert ears.groups(1, 20) == [(12, 20, {})]


def test_alert_avro_record_round_trips_through_the_shipped_schema() -> None:
    tracker = AlertTracker("farrington-flexible", STRATUM, 3)
    alert = feed(tracker, "x.")[-1]
    registry = SchemaRegistry.shipped()
    writer, record = registry.decode(registry.encode(alert.avro_record(), "alert"))
    assert writer.name == "alert"
    assert writer.version == 1
    assert record["alert_id"] == alert.alert_id
    assert record["kind"] == "EPIDEMIOLOGICAL"
    assert record["state"] == "OPEN"
    assert record["first_week"] == week(0)
    assert record["region"] == "Groningen"
    assert record["weeks"][1]["alarm"] is False
    assert json.loads(record["evidence_json"])["label"] == "symptom_fatigue / Groningen"


# ---------------------------------------------------------------------------
# deploy/alertmanager
# ---------------------------------------------------------------------------


def _exposed_metric_names() -> set[str]:
    from linkwatch.streams.worker import Metrics

    names: set[str] = set()
    for registry in (AlertingMetrics().registry, Metrics().registry):
        for family in registry.collect():
            # Metrics with labels have no samples until used: name them from their type.
            suffixes = {
                "counter": ("_total",),
                "histogram": ("_bucket", "_sum", "_count"),
                "gauge": ("",),
            }.get(family.type, ("",))
            names |= {family.name + suffix for suffix in suffixes}
            names |= {sample.name for sample in family.samples}
    return names


def test_alerting_rules_use_only_metrics_linkwatch_exposes() -> None:
    rules = yaml.safe_load((REPO / "deploy/alertmanager/linkwatch-rules.yml").read_text())
    exposed = _exposed_metric_names()
    used: set[str] = set()
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert len(alerts) >= 6
    for rule in alerts:
        assert rule["alert"]
        assert rule["expr"]
        assert rule["annotations"]["summary"]
        assert rule["labels"]["severity"] in ("page", "warning", "info")
        used |= set(re.findall(r"\blinkwatch_[a-z_]+", rule["expr"]))
    assert used, "the rules should query linkwatch's metrics"
    missing = sorted(n for n in used if n not in exposed)
    assert missing == [], f"rules use metrics nobody exposes: {missing}"
    assert {"linkwatch_alerts_open", "linkwatch_end_to_end_seconds_bucket"} <= used


def test_alertmanager_example_routes_by_severity() -> None:
    config = yaml.safe_load((REPO / "deploy/alertmanager/alertmanager.yml").read_text())
    receivers = {r["name"] for r in config["receivers"]}
    routes = [config["route"], *config["route"].get("routes", [])]
    assert all(r["receiver"] in receivers for r in routes)
    assert any("severity" in str(r.get("matchers", "")) for r in routes)


# ---------------------------------------------------------------------------
# integration: the warehouse
# ---------------------------------------------------------------------------


def synthetic_counts(
    seed: int, outbreak: bool, n_weeks: int = N_WEEKS, season: float = 0.25
) -> dict[str, Any]:
    """Weekly counts per code group and full stratum, as the materialized view writes them.

    'all' holds every event, so it includes the code groups' events. With ``outbreak``
    symptom_fatigue in Groningen doubles (after a two-week ramp) from OUTBREAK_WEEK on.
    """
    rng = np.random.default_rng(seed)
    cells = [
        (region, age, sex, ses)
        for region in PROVINCES
        for age in AGE_BANDS
        for sex in SEXES
        for ses in range(1, 6)
    ]
    region_share = np.full(len(PROVINCES), 1.0 / len(PROVINCES))
    share = np.array(
        [
            region_share[PROVINCES.index(r)] * AGE_SHARE[AGE_BANDS.index(a)] * 0.5 * 0.2
            for r, a, _, _ in cells
        ]
    )
    t = np.arange(n_weeks)
    amplitude = season
    season = 1.0 + amplitude * np.cos(2 * np.pi * t / 52.0)
    national = {"covid": 500.0, "symptom_fatigue": 360.0, "other": 2000.0}
    counts = {
        g: rng.poisson(np.outer(season * mean, share)) for g, mean in national.items()
    }  # weeks x cells
    if outbreak:
        in_region = np.array([c[0] == OUTBREAK_REGION for c in cells])
        factor = np.zeros(n_weeks)
        ramp = (1.4, 1.7, 2.0)
        for i in range(OUTBREAK_WEEK, min(n_weeks, OUTBREAK_WEEK + 10)):
            factor[i] = ramp[min(i - OUTBREAK_WEEK, 2)] - 1.0
        extra_mean = np.outer(season * national["symptom_fatigue"] * factor, share * in_region)
        counts["symptom_fatigue"] = counts["symptom_fatigue"] + rng.poisson(extra_mean)
    counts["all"] = counts["covid"] + counts["symptom_fatigue"] + counts.pop("other")
    columns: dict[str, list[Any]] = {
        k: [] for k in ("week", "code_group", "region", "age_band", "sex", "ses_quintile", "n")
    }
    weeks = [FIRST_WEEK + i * WEEK for i in range(n_weeks)]
    for group, table in counts.items():
        wi, ci = np.nonzero(table)
        columns["week"] += [weeks[i] for i in wi]
        columns["code_group"] += [group] * len(wi)
        for j, name in enumerate(("region", "age_band", "sex", "ses_quintile")):
            columns[name] += [cells[c][j] for c in ci]
        columns["n"] += table[wi, ci].tolist()
    return columns


def load_counts(
    warehouse: EmbeddedWarehouse,
    db: str,
    columns: dict[str, Any],
    weeks: tuple[dt.date, dt.date] | None = None,
) -> None:
    keep = np.ones(len(columns["week"]), dtype=bool)
    if weeks is not None:
        w = np.array(columns["week"], dtype="datetime64[D]")
        keep = (w >= np.datetime64(weeks[0])) & (w <= np.datetime64(weeks[1]))
    pick = np.flatnonzero(keep)
    table = pa.table(
        {
            "week": pa.array([columns["week"][i] for i in pick], pa.date32()),
            "code_group": [columns["code_group"][i] for i in pick],
            "source": ["gp_consultation"] * len(pick),
            "region": [columns["region"][i] for i in pick],
            "age_band": [columns["age_band"][i] for i in pick],
            "sex": [columns["sex"][i] for i in pick],
            "ses_quintile": pa.array([columns["ses_quintile"][i] for i in pick], pa.uint8()),
            "events": pa.array([columns["n"][i] for i in pick], pa.uint64()),
        }
    )
    warehouse.insert(f"{db}.weekly_counts", table)


@pytest.fixture
def model_db(embedded_warehouse: EmbeddedWarehouse, warehouse_db: str) -> str:
    create_model(embedded_warehouse, warehouse_db)
    return warehouse_db


def stored_alerts(warehouse: EmbeddedWarehouse, db: str) -> list[dict[str, Any]]:
    return warehouse.query(
        f"SELECT alert_id, kind, state, method, code_group, region, age_band, sex, ses_quintile, "
        f"first_week, last_week, evidence, version FROM {db}.alerts FINAL ORDER BY alert_id"
    ).dicts()


def contains_outbreak(row: dict[str, Any]) -> bool:
    return row["code_group"] in (OUTBREAK_GROUP, "all") and row["region"] in (OUTBREAK_REGION, "")


def test_an_outbreak_in_one_stratum_opens_one_alert_there_week_by_week(
    embedded_warehouse: EmbeddedWarehouse, model_db: str
) -> None:
    columns = synthetic_counts(seed=7, outbreak=True)
    outbreak_start = FIRST_WEEK + OUTBREAK_WEEK * WEEK
    # The history up to four weeks before the outbreak, then one week at a time, as the
    # worker sees it; the week being filled is partial and must not be evaluated.
    first_live = OUTBREAK_WEEK - 4
    load_counts(embedded_warehouse, model_db, columns, (FIRST_WEEK, FIRST_WEEK + first_live * WEEK))
    # A budget of 0.05 false alarms a week over the 78 tests (75 series, 3 gradients):
    # about three false alerts in the 60 weeks evaluated and 0.4 in the 8 weeks after the
    # outbreak starts, so an alert elsewhere then would be a real fault.
    config = AlertingConfig(max_catch_up_weeks=52, family_alpha=0.05)
    stage = AlertingStage(embedded_warehouse, model_db, None, config)
    first = stage.run_once(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert first.last_complete_week == FIRST_WEEK + (first_live - 1) * WEEK
    assert len(first.weeks_evaluated) == 52
    assert first.series_evaluated == 3 * 25 + 3  # and the SES gradient per code group
    ids_seen: dict[str, list[str]] = {}
    for i in range(first_live + 1, OUTBREAK_WEEK + 8):
        current = FIRST_WEEK + i * WEEK
        load_counts(embedded_warehouse, model_db, columns, (current, current))
        report = stage.run_once(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        assert report.weeks_evaluated == [current - WEEK]
        for alert in report.opened + report.updated + report.closed:
            ids_seen.setdefault(alert.stratum.label, []).append(alert.alert_id)

    rows = stored_alerts(embedded_warehouse, model_db)
    target = [
        r for r in rows if r["code_group"] == OUTBREAK_GROUP and r["region"] == OUTBREAK_REGION
        and not r["age_band"] and not r["sex"] and not r["ses_quintile"]
    ]  # fmt: skip
    assert len(target) == 1, rows
    found = target[0]
    delay = (found["first_week"] - outbreak_start).days // 7
    assert 0 <= delay < 3, f"alert opened {delay} weeks after the outbreak started"
    assert found["state"] == OPEN
    assert found["kind"] == EPIDEMIOLOGICAL
    assert len(set(ids_seen["symptom_fatigue / Groningen"])) == 1
    evidence = json.loads(found["evidence"])
    assert evidence["weeks"][0]["alarm"] is True
    assert evidence["weeks"][0]["observed"] > evidence["weeks"][0]["upperbound"]
    assert len(evidence["baseline_weeks"]) == config.baseline_context_weeks
    assert evidence["parameters"]["b"] == 3
    # Every alert opened since the outbreak began is in a stratum that holds its events.
    since = [r for r in rows if r["first_week"] >= outbreak_start]
    assert [r for r in since if not contains_outbreak(r)] == []
    # The partial week (the last one loaded) has no detector output.
    last_loaded = FIRST_WEEK + (OUTBREAK_WEEK + 7) * WEEK
    weeks = embedded_warehouse.query(
        f"SELECT max(week), count() FROM {model_db}.detector_results"
    ).rows[0]
    assert weeks[0] == last_loaded - WEEK
    assert stage.metrics.open_alerts.labels(EPIDEMIOLOGICAL, OUTBREAK_GROUP)._value.get() >= 1


def test_a_rerun_or_a_restart_gives_the_same_alerts(
    embedded_warehouse: EmbeddedWarehouse, model_db: str
) -> None:
    columns = synthetic_counts(seed=7, outbreak=True, n_weeks=OUTBREAK_WEEK + 12)
    load_counts(embedded_warehouse, model_db, columns)
    config = AlertingConfig(max_catch_up_weeks=30, margins=((), ("region",)))
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    first = AlertingStage(embedded_warehouse, model_db, None, config).run_once(now)
    assert first.opened, "the outbreak should open alerts"
    before = stored_alerts(embedded_warehouse, model_db)

    # A restart: state from the warehouse, nothing new to evaluate, nothing written.
    restarted = AlertingStage(embedded_warehouse, model_db, None, config)
    again = restarted.run_once(now + dt.timedelta(minutes=1))
    assert again.weeks_evaluated == []
    assert again.written == 0
    assert {a.alert_id for a in restarted.open_alerts()} == {
        r["alert_id"] for r in before if r["state"] == OPEN
    }

    # A full recomputation (detector output lost): the same ids and content, no new rows.
    embedded_warehouse.command(f"TRUNCATE TABLE {model_db}.detector_results")
    recomputed = AlertingStage(embedded_warehouse, model_db, None, config)
    report = recomputed.run_once(now + dt.timedelta(minutes=2))
    assert len(report.weeks_evaluated) == 30
    assert report.written == 0
    assert stored_alerts(embedded_warehouse, model_db) == before
    raw = embedded_warehouse.query(f"SELECT count() FROM {model_db}.alerts").scalar()
    assert raw == len(before)


def test_a_null_scenario_alerts_no_more_than_the_nominal_rate(
    embedded_warehouse: EmbeddedWarehouse, model_db: str
) -> None:
    columns = synthetic_counts(seed=11, outbreak=False)
    load_counts(embedded_warehouse, model_db, columns)
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    # Each series at the package's own level: alpha = 0.05 per stratum and week.
    per_series = AlertingConfig(max_catch_up_weeks=52, family_alpha=None)
    report = AlertingStage(embedded_warehouse, model_db, None, per_series).run_once(now)
    stratum_weeks = int(
        embedded_warehouse.query(
            f"SELECT count() FROM {model_db}.detector_results WHERE isFinite(upperbound)"
        ).scalar()
    )
    assert stratum_weeks >= 0.9 * report.series_evaluated * 52
    alpha = 0.05
    rows = stored_alerts(embedded_warehouse, model_db)
    assert len(rows) <= alpha * stratum_weeks, (len(rows), stratum_weeks)
    # Alarms in consecutive weeks are one alert, so there are fewer alerts than alarms.
    assert 0 < len(rows) < report.alarms
    assert all(r["kind"] == EPIDEMIOLOGICAL for r in rows)

    # The default: a budget of 0.5 false alarms a week over every test (Bonferroni), so
    # a null year opens at most 26 alerts, in each of six null data sets.
    budget = AlertingConfig(max_catch_up_weeks=52)
    assert budget.family_alpha is not None
    opened: dict[int, int] = {}
    for seed in (11, 1, 2, 3, 4, 5):
        for table in ("weekly_counts", "alerts", "detector_results"):
            embedded_warehouse.command(f"TRUNCATE TABLE {model_db}.{table}")
        load_counts(embedded_warehouse, model_db, synthetic_counts(seed=seed, outbreak=False))
        report = AlertingStage(embedded_warehouse, model_db, None, budget).run_once(now)
        assert len(report.weeks_evaluated) == 52
        assert report.series_evaluated == 75 + 3
        opened[seed] = len(report.opened)
    assert max(opened.values()) <= budget.family_alpha * 52, opened


def test_farrington_as_the_stage_runs_it_keeps_its_level_far_in_the_tail() -> None:
    # Stable Poisson series with three years of history, at 0.5 / 75: about the level the
    # default budget gives each test of the null scenario.
    level = 0.5 / 75
    rng = np.random.default_rng(2024)
    series = [rng.poisson(50.0, size=208) for _ in range(400)]
    method = METHODS["farrington-flexible"]

    def rate(params: dict[str, str]) -> float:
        values = {**method.parse(params), "b": 3, "alpha": level}
        alarms = [method.run(y, dict(values), (160, 208)).alarm for y in series]
        return float(np.mean(alarms)) / level

    stage = AlertingConfig().parameters("farrington-flexible")
    assert stage == {"trend": "false"}
    # With the package's defaults the reweighted dispersion (about phi / mu) keeps a
    # spurious trend in most weeks and leaves its extrapolation error out of the threshold.
    assert rate({}) > 1.4
    assert rate(stage) < 1.15
    # A configured trend is the user's choice and is kept.
    chosen = AlertingConfig(methods={"farrington-flexible": {"trend": "true", "b": "4"}})
    assert chosen.parameters("farrington-flexible") == {"trend": "true", "b": "4"}


def test_a_widening_deprivation_gradient_opens_a_q5_versus_q1_alert(
    embedded_warehouse: EmbeddedWarehouse, model_db: str
) -> None:
    columns = synthetic_counts(seed=5, outbreak=False, n_weeks=150)
    rng = np.random.default_rng(5)
    start = FIRST_WEEK + 140 * WEEK
    # covid rises by 80 % in the most deprived quintile only, from week 140 on.
    for i, (group, ses, when) in enumerate(
        zip(columns["code_group"], columns["ses_quintile"], columns["week"], strict=True)
    ):
        if group in ("covid", "all") and ses == 5 and when >= start:
            columns["n"][i] += int(rng.poisson(0.8 * columns["n"][i]))
    load_counts(embedded_warehouse, model_db, columns)
    config = AlertingConfig(
        max_catch_up_weeks=12, family_alpha=0.05, margins=((), ("ses_quintile",))
    )
    report = AlertingStage(embedded_warehouse, model_db, None, config).run_once(
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    )
    gradient = [a for a in report.opened if a.method == "ses-q5-vs-q1"]
    # 'all' holds the covid events, so its gradient may move too; fatigue's must not.
    assert {a.stratum.code_group for a in gradient} <= {"covid", "all"}
    covid = [a for a in gradient if a.stratum == Stratum("covid", ses_quintile=5)]
    assert len(covid) == 1
    assert start <= covid[0].first_week <= start + 2 * WEEK
    evidence = json.loads(covid[0].row()["evidence"])
    assert {"q5", "q1", "rate_ratio"} <= set(evidence["baseline_weeks"][-1])


def _daily(db: str, warehouse: EmbeddedWarehouse, rows: list[tuple[dt.date, str, int]]) -> None:
    warehouse.insert(
        f"{db}.daily_counts",
        {
            "day": [r[0] for r in rows],
            "code_group": ["all"] * len(rows),
            "source": [r[1] for r in rows],
            "region": ["Utrecht"] * len(rows),
            "age_band": ["25_44"] * len(rows),
            "sex": ["FEMALE"] * len(rows),
            "ses_quintile": [3] * len(rows),
            "events": [r[2] for r in rows],
        },
    )


def test_data_quality_alerts_for_a_silent_source_and_a_growing_lag(
    embedded_warehouse: EmbeddedWarehouse, model_db: str
) -> None:
    start = dt.date(2022, 1, 3)
    days = [start + dt.timedelta(days=i) for i in range(90)]
    # GP sends every day; out-of-hours stops after day 69.
    rows = [(d, "gp_consultation", 40) for d in days]
    rows += [(d, "ooh_contact", 5) for d in days[:70]]
    _daily(model_db, embedded_warehouse, rows)
    config = AlertingConfig(methods={"ears-c3": {}}, lag_growth_cycles=3)
    stage = AlertingStage(embedded_warehouse, model_db, None, config)
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    report = stage.run_once(now, lag_seconds=10)
    assert [(a.method, dict(a.subject)) for a in report.opened] == [
        ("source_silent", {"source": "ooh_contact"})
    ]
    silent = report.opened[0]
    assert silent.kind == DATA_QUALITY
    assert silent.first_week == dt.date(2022, 3, 14)
    assert json.loads(silent.row()["evidence"])["last_event_day"] == days[69].isoformat()
    assert stage.run_once(now + dt.timedelta(minutes=1), lag_seconds=10).written == 0

    # The lag grows over three cycles past the threshold: one lag alert, closed when it drops.
    for i, lag in enumerate((1000.0, 1500.0)):
        stage.run_once(now + dt.timedelta(minutes=2 + i), lag_seconds=lag)
    lag_alerts = [a for a in stage.open_alerts() if a.method == "lag_growing"]
    assert len(lag_alerts) == 1
    assert lag_alerts[0].observed == 1500.0
    # The source resumes: its alert closes; the lag drops: so does the lag alert.
    _daily(model_db, embedded_warehouse, [(days[-1], "ooh_contact", 6)])
    report = stage.run_once(now + dt.timedelta(minutes=5), lag_seconds=5)
    assert sorted(a.method for a in report.closed) == ["lag_growing", "source_silent"]
    states = {r["method"]: r["state"] for r in stored_alerts(embedded_warehouse, model_db)}
    assert states == {"source_silent": CLOSED, "lag_growing": CLOSED}


def test_data_quality_alert_for_a_practice_that_stops_coding(
    embedded_warehouse: EmbeddedWarehouse, model_db: str
) -> None:
    start = dt.datetime(2022, 1, 3, 9, tzinfo=dt.UTC)
    n = 80
    columns: dict[str, list[Any]] = {
        "event_id": [],
        "source": [],
        "provider_id": [],
        "person_id": [],
        "link_outcome": [],
        "codes": [],
        "code_groups": [],
        "event_time": [],
    }
    for day in range(n):
        for practice in ("GP001", "GP002"):
            for k in range(3):
                coded = practice == "GP001" or day < 60
                columns["event_id"].append(f"{practice}-{day}-{k}")
                columns["source"].append("gp_consultation")
                columns["provider_id"].append(practice)
                columns["person_id"].append(f"p{k}")
                columns["link_outcome"].append("linked")
                columns["codes"].append(["A04"] if coded else [])
                columns["code_groups"].append(["symptom_fatigue"] if coded else [])
                columns["event_time"].append(start + dt.timedelta(days=day))
    embedded_warehouse.insert(f"{model_db}.linked_events", columns)
    stage = AlertingStage(
        embedded_warehouse, model_db, None, AlertingConfig(methods={"ears-c3": {}})
    )
    report = stage.run_once(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    dq = [a for a in report.opened if a.kind == DATA_QUALITY]
    assert [(a.method, dict(a.subject)) for a in dq] == [
        ("provider_not_coding", {"source": "gp_consultation", "provider_id": "GP002"})
    ]
    # The window is the 14 days to the latest event day (day 79) and the 56 days before it
    # (days 10-65); GP002 coded 3 events a day on days 10-59 of those.
    assert math.isclose(dq[0].expected, 50 * 3 * 14 / 56)
    assert dq[0].first_week == monday(dt.date(2022, 1, 3) + dt.timedelta(days=60))
    assert json.loads(dq[0].row()["evidence"])["uncoded_events_recent"] == 14 * 3


def test_a_steady_cycle_is_cheap_and_a_new_week_is_quick(
    embedded_warehouse: EmbeddedWarehouse, model_db: str
) -> None:
    columns = synthetic_counts(seed=3, outbreak=False)
    last = FIRST_WEEK + (N_WEEKS - 2) * WEEK
    load_counts(embedded_warehouse, model_db, columns, (FIRST_WEEK, last))
    stage = AlertingStage(embedded_warehouse, model_db, None, AlertingConfig(max_catch_up_weeks=4))
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    stage.run_once(now)
    steady = stage.run_once(now + dt.timedelta(minutes=1))
    assert steady.weeks_evaluated == []
    assert steady.seconds < 1.0
    load_counts(embedded_warehouse, model_db, columns, (last + WEEK, last + WEEK))
    # While the pipeline is behind, detection waits (the backlog may hold older weeks).
    deferred = stage.run_once(now + dt.timedelta(minutes=2), lag_seconds=3600)
    assert deferred.weeks_evaluated == []
    assert "deferred" in deferred.note
    new_week = stage.run_once(now + dt.timedelta(minutes=3), lag_seconds=2)
    assert new_week.weeks_evaluated == [last]
    assert new_week.series_evaluated == 75 + 3
    assert new_week.seconds < 20.0


# ---------------------------------------------------------------------------
# integration: Kafka
# ---------------------------------------------------------------------------


def test_alerts_are_published_as_avro_keyed_by_alert_id(
    embedded_warehouse: EmbeddedWarehouse, model_db: str, bootstrap_servers: str
) -> None:
    from linkwatch.streams.kafka_clients import make_producer, read_topic
    from linkwatch.streams.topics import ALERTS, TopicSpec, ensure_topics

    topic = TopicSpec(f"test.alerts.{uuid.uuid4().hex[:8]}", 1, "alerts under test")
    ensure_topics(bootstrap_servers, (ALERTS, topic))
    columns = synthetic_counts(seed=7, outbreak=True, n_weeks=OUTBREAK_WEEK + 6)
    load_counts(embedded_warehouse, model_db, columns)
    producer = make_producer(bootstrap_servers)
    config = AlertingConfig(max_catch_up_weeks=10, margins=((), ("region",)))
    stage = AlertingStage(embedded_warehouse, model_db, producer, config, topic=topic.name)
    report = stage.run_once(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert report.published == report.written > 0
    registry = SchemaRegistry.shipped()
    messages = [(k, registry.decode(v)) for k, v in read_topic(bootstrap_servers, topic.name) if v]
    assert len(messages) == report.published
    stored = {r["alert_id"]: r for r in stored_alerts(embedded_warehouse, model_db)}
    for key, (writer, record) in messages:
        assert writer.name == "alert"
        assert key == record["alert_id"].encode()
        row = stored[record["alert_id"]]
        assert record["state"] == row["state"].upper()
        assert record["version"] == row["version"]
        assert record["first_week"] == row["first_week"]
        assert json.loads(record["evidence_json"]) == json.loads(row["evidence"])
    # A second cycle with nothing new publishes nothing.
    assert stage.run_once(dt.datetime(2026, 1, 1, 0, 1, tzinfo=dt.UTC)).published == 0
    assert len(list(read_topic(bootstrap_servers, topic.name))) == report.published
