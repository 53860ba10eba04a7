"""The alerting stage: weekly series per stratum, detectors, alert state, and where alerts go.

Every cycle (the worker runs one a minute; ``linkwatch alerts run`` runs them on its
own) :meth:`AlertingStage.run_once`:

1. finds the last complete week. With the ``data`` clock (the default) the current
   week is the latest week the warehouse holds events for, capped at the wall-clock
   week, so a replay of past extracts is evaluated as it arrives; with the ``wall``
   clock it is the week of ``now``. The current week is never evaluated: it is
   partial, and a partial week must not alarm.
2. when complete weeks have appeared since the last cycle, rebuilds the weekly series
   of every watched stratum from the ``weekly_counts`` pre-aggregate (one query per
   margin; weeks without events count zero), and runs each configured detector on
   the new weeks only. Farrington's ``b`` (years of history) is lowered to the years
   a series has, week by week, so a warehouse with two years of data is watched too;
   the ``b`` used is kept in the evidence.
3. feeds each evaluated week to the stratum's :class:`AlertTracker`: an alarm opens
   an alert, further alarms extend it, and it closes after ``quiet_weeks_to_close``
   weeks without alarm, so one signal is one alert. Alert ids are a hash of kind,
   method, stratum and first week, so recomputing the same weeks gives the same ids.
   The deprivation gradient (Q5 against Q1, ``ses-q5-vs-q1``) is watched per code
   group beside the detectors. Each of the ``n`` tests of a cycle (a stratum under a
   detector, or a code group's gradient) runs at level ``family_alpha / n``
   (Bonferroni), so a year of null data opens at most about ``52 * family_alpha``
   alerts. That holds because Farrington runs without its trend here: with the
   package's defaults it alarms about twice as often as its level at three years of
   history. :class:`AlertingConfig` gives the measurements and what is left uncalibrated.
4. runs the data-quality checks (a source or provider that stopped sending, a practice
   that stopped coding, a growing pipeline lag) as ``data_quality`` alerts; the silence
   checks pause while the given lag is above its threshold.
5. publishes every new or changed alert to ``linkwatch.alerts.v1`` (Avro, keyed by
   alert id) and waits for Kafka to acknowledge it, then writes it to the ``alerts``
   table (``ReplacingMergeTree(version)``, read with ``FINAL``) and the week's
   detector output to ``detector_results``.

State survives a restart: open alerts are read back from the ``alerts`` table, and
the last evaluated week of each method from ``detector_results``. An alert whose
content is already stored is neither written nor published again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import logging
import math
import re
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from linkwatch.surveillance.detection import DetectionError, DetectionTable, IntArray
from linkwatch.surveillance.ears import first_week as ears_first_week
from linkwatch.surveillance.methods import METHODS, Method

if TYPE_CHECKING:
    from confluent_kafka import Producer

    from linkwatch.schemas.registry import SchemaRegistry
    from linkwatch.streams.warehouse import Warehouse

log = logging.getLogger("linkwatch.alerting")

EPIDEMIOLOGICAL = "epidemiological"
DATA_QUALITY = "data_quality"
OPEN = "open"
CLOSED = "closed"
DIMENSIONS = ("region", "age_band", "sex", "ses_quintile")
GRADIENT_METHOD = "ses-q5-vs-q1"
GRADIENT_BASELINE = 52
GRADIENT_GUARD = 3
WEEK = dt.timedelta(days=7)
DEFAULT_MARGINS: tuple[tuple[str, ...], ...] = (
    (),
    ("region",),
    ("age_band",),
    ("sex",),
    ("ses_quintile",),
)
ALERT_COLUMNS = (
    "alert_id", "kind", "state", "method", "code_group", "region", "age_band", "sex",
    "ses_quintile", "first_week", "last_week", "observed", "expected", "upperbound", "score",
    "evidence", "opened_at", "updated_at", "version",
)  # fmt: skip
# Where the stage departs from the package's defaults, under the configured parameters
# (see AlertingConfig): Farrington's trend is off unless the parameters name it.
STAGE_DEFAULTS: Mapping[str, Mapping[str, str]] = {"farrington-flexible": {"trend": "false"}}
RESULT_COLUMNS = (
    "method", "code_group", "region", "age_band", "sex", "ses_quintile", "week",
    "observed", "expected", "upperbound", "alarm", "computed_at",
)  # fmt: skip


class AlertingError(RuntimeError):
    """A cycle could not finish (bad configuration, unacknowledged alerts); the message says why."""


def monday(day: dt.date) -> dt.date:
    """The Monday of the ISO week holding ``day``."""
    return day - dt.timedelta(days=day.weekday())


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


# ---------------------------------------------------------------------------
# strata
# ---------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Stratum:
    """One watched cell: a code group and a value (or '' / 0 for all) of each dimension."""

    code_group: str
    region: str = ""
    age_band: str = ""
    sex: str = ""
    ses_quintile: int = 0

    @property
    def key(self) -> str:
        """The stratum as one string (part of the alert id)."""
        return "|".join(
            (self.code_group, self.region, self.age_band, self.sex, str(self.ses_quintile))
        )

    @property
    def label(self) -> str:
        """Human-readable, e.g. ``symptom_fatigue / Groningen / SES Q5``."""
        parts = [self.code_group]
        parts += [v for v in (self.region, self.age_band, self.sex) if v]
        if self.ses_quintile:
            parts.append(f"SES Q{self.ses_quintile}")
        if len(parts) == 1:
            parts.append("national")
        return " / ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "code_group": self.code_group,
            "region": self.region,
            "age_band": self.age_band,
            "sex": self.sex,
            "ses_quintile": self.ses_quintile,
        }


def alert_id(kind: str, method: str, subject: str, first: dt.date) -> str:
    """The stable id of the alert of ``method`` on ``subject`` that starts at ``first``."""
    text = f"{kind}\x1f{method}\x1f{subject}\x1f{first.isoformat()}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


# ---------------------------------------------------------------------------
# alerts and their state
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WeekResult:
    """A detector's result for one week of one stratum."""

    week: dt.date
    observed: float
    expected: float
    upperbound: float
    alarm: bool
    score: float

    def as_json(self) -> dict[str, Any]:
        return {
            "week": self.week.isoformat(),
            "observed": self.observed,
            "expected": _finite(self.expected),
            "upperbound": _finite(self.upperbound),
            "alarm": self.alarm,
            "score": _finite(self.score),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WeekResult:
        return cls(
            week=dt.date.fromisoformat(str(data["week"])),
            observed=float(data["observed"]),
            expected=_nan(data.get("expected")),
            upperbound=_nan(data.get("upperbound")),
            alarm=bool(data.get("alarm", False)),
            score=_nan(data.get("score")),
        )


@dataclass(frozen=True)
class Alert:
    """One alert as stored in the ``alerts`` table and published on ``linkwatch.alerts.v1``."""

    alert_id: str
    kind: str
    state: str
    method: str
    stratum: Stratum
    first_week: dt.date
    last_week: dt.date
    observed: float
    expected: float
    upperbound: float
    score: float
    weeks: tuple[WeekResult, ...]
    opened_at: dt.datetime
    updated_at: dt.datetime
    version: int
    subject: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def last_evaluated(self) -> dt.date:
        """The latest week this alert has seen (alarming or not)."""
        return self.weeks[-1].week if self.weeks else self.last_week

    def evidence(self) -> dict[str, Any]:
        """The evidence JSON of the ``alerts`` table."""
        return {
            "stratum": self.stratum.as_dict(),
            "label": self.stratum.label,
            "subject": dict(self.subject),
            "weeks": [w.as_json() for w in self.weeks],
            **dict(self.details),
        }

    def content(self) -> tuple[Any, ...]:
        """What makes two versions of an alert differ (not their timestamps or version)."""
        return (
            self.state,
            self.last_week,
            _finite(self.observed),
            _finite(self.expected),
            _finite(self.upperbound),
            _finite(self.score),
            json.dumps(self.evidence(), sort_keys=True),
        )

    def row(self) -> dict[str, Any]:
        """The row of the ``alerts`` table."""
        return {
            "alert_id": self.alert_id,
            "kind": self.kind,
            "state": self.state,
            "method": self.method,
            **self.stratum.as_dict(),
            "first_week": self.first_week,
            "last_week": self.last_week,
            "observed": float(self.observed),
            "expected": float(self.expected),
            "upperbound": float(self.upperbound),
            "score": float(self.score),
            "evidence": json.dumps(self.evidence(), sort_keys=True),
            "opened_at": self.opened_at,
            "updated_at": self.updated_at,
            "version": self.version,
        }

    def avro_record(self) -> dict[str, Any]:
        """The record of the ``alert`` Avro schema."""
        return {
            "schema_version": 1,
            "alert_id": self.alert_id,
            "kind": self.kind.upper(),
            "state": self.state.upper(),
            "method": self.method,
            **self.stratum.as_dict(),
            "subject": dict(self.subject),
            "first_week": self.first_week,
            "last_week": self.last_week,
            "observed": float(self.observed),
            "expected": _finite(self.expected),
            "upperbound": _finite(self.upperbound),
            "score": _finite(self.score),
            "weeks": [
                {
                    "week": w.week,
                    "observed": w.observed,
                    "expected": _finite(w.expected),
                    "upperbound": _finite(w.upperbound),
                    "alarm": w.alarm,
                    "score": _finite(w.score),
                }
                for w in self.weeks
            ],
            "evidence_json": json.dumps(self.evidence(), sort_keys=True),
            "opened_at": self.opened_at,
            "updated_at": self.updated_at,
            "version": self.version,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Alert:
        """An alert read back from the ``alerts`` table."""
        evidence = json.loads(row["evidence"] or "{}")
        details = {
            k: v for k, v in evidence.items() if k not in ("stratum", "label", "subject", "weeks")
        }
        return cls(
            alert_id=str(row["alert_id"]),
            kind=str(row["kind"]),
            state=str(row["state"]),
            method=str(row["method"]),
            stratum=Stratum(
                str(row["code_group"]),
                str(row["region"]),
                str(row["age_band"]),
                str(row["sex"]),
                int(row["ses_quintile"]),
            ),
            first_week=_as_date(row["first_week"]),
            last_week=_as_date(row["last_week"]),
            observed=float(row["observed"]),
            expected=float(row["expected"]),
            upperbound=float(row["upperbound"]),
            score=float(row["score"]),
            weeks=tuple(WeekResult.from_json(w) for w in evidence.get("weeks", [])),
            opened_at=_as_utc(row["opened_at"]),
            updated_at=_as_utc(row["updated_at"]),
            version=int(row["version"]),
            subject={str(k): str(v) for k, v in evidence.get("subject", {}).items()},
            details=details,
        )


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _as_utc(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return dt.datetime.fromisoformat(str(value)).replace(tzinfo=dt.UTC)


def _version(now: dt.datetime, previous: int = 0) -> int:
    return max(int(now.timestamp() * 1000), previous + 1)


class AlertTracker:
    """The alert state of one method on one stratum: at most one open alert at a time.

    Weeks are fed in order with :meth:`observe`. An alarm opens an alert (or extends the
    open one); the open alert closes once ``quiet_weeks_to_close`` weeks in a row have
    passed without alarm, so alarms separated by fewer quiet weeks are one alert.
    Weeks up to the last one the open alert has seen are ignored, so replaying weeks
    after a restart changes nothing.
    """

    def __init__(
        self,
        method: str,
        stratum: Stratum,
        quiet_weeks_to_close: int,
        *,
        open_alert: Alert | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        if quiet_weeks_to_close < 1:
            raise AlertingError(f"quiet_weeks_to_close={quiet_weeks_to_close}: must be at least 1")
        self.method = method
        self.stratum = stratum
        self.quiet_weeks_to_close = quiet_weeks_to_close
        self.open: Alert | None = open_alert
        self.details = dict(details or {})

    def observe(
        self,
        result: WeekResult,
        now: dt.datetime,
        context: Sequence[Mapping[str, Any]] = (),
    ) -> list[Alert]:
        """Feed one evaluated week; return the alerts it opened, changed or closed."""
        current = self.open
        if current is not None and result.week <= current.last_evaluated:
            return []
        if result.alarm:
            if current is None:
                opened = Alert(
                    alert_id=alert_id(EPIDEMIOLOGICAL, self.method, self.stratum.key, result.week),
                    kind=EPIDEMIOLOGICAL,
                    state=OPEN,
                    method=self.method,
                    stratum=self.stratum,
                    first_week=result.week,
                    last_week=result.week,
                    observed=result.observed,
                    expected=result.expected,
                    upperbound=result.upperbound,
                    score=result.score,
                    weeks=(result,),
                    opened_at=now,
                    updated_at=now,
                    version=_version(now),
                    details={**self.details, "baseline_weeks": list(context)},
                )
                self.open = opened
                return [opened]
            extended = replace(
                current,
                last_week=result.week,
                observed=result.observed,
                expected=result.expected,
                upperbound=result.upperbound,
                score=result.score,
                weeks=(*current.weeks, result),
                updated_at=now,
                version=_version(now, current.version),
            )
            self.open = extended
            return [extended]
        if current is None:
            return []
        quiet = (result.week - current.last_week).days // 7
        state = CLOSED if quiet >= self.quiet_weeks_to_close else OPEN
        changed = replace(
            current,
            state=state,
            weeks=(*current.weeks, result),
            updated_at=now,
            version=_version(now, current.version),
        )
        self.open = changed if state == OPEN else None
        return [changed]


# ---------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertingConfig:
    """What the alerting stage watches and how.

    ``methods`` maps detector names (as ``linkwatch detect`` spells them) to their text
    parameters; empty parameters are the R package's defaults, except the level and
    Farrington's trend.

    ``family_alpha`` (default 0.5) is the expected number of false alarms per evaluated
    week over every test the stage runs at a level (each watched stratum under each
    detector that has a level, and the deprivation gradient of each code group), so
    each of those ``n`` tests runs at level ``family_alpha / n`` (Bonferroni; at most
    0.5). Alarms in consecutive weeks of a stratum are one alert, so a year of weekly
    evaluation of data without any signal opens at most about ``52 * family_alpha``
    false alerts. Watching hundreds of strata at the package's per-series 0.05 would
    raise that many times 0.05 false alarms every week (about 22 a week for the 443
    series of the demo); set ``family_alpha`` None to use each detector's own ``alpha``.

    The budget holds only where a threshold keeps its level this far in the tail (75
    strata give 0.0067 each). Farrington's does once its trend is off, so the stage runs
    ``farrington-flexible`` with ``trend=false`` unless its parameters name ``trend``
    (:data:`STAGE_DEFAULTS`). With the package's default reweighting, the dispersion
    that the trend's t-test and the prediction's standard error use is computed with
    the outbreak weights where the working weights belong (the package's behaviour,
    which linkwatch reproduces), so it comes out near ``phi / mu`` instead of ``phi``:
    the trend is kept in 70 to 90 % of the weeks of a stable series (``b=3``, means 30
    to 300) instead of 5 %, and its extrapolation error (two years beyond the middle of
    three years of history) is left out of the threshold. On stable Poisson series
    (means 10 to 1,000 a week, 49,000 series-weeks each) at level 0.0067 the package's
    defaults alarm 1.8 to 2.0 times as often as the level with ``b=3`` and 1.3 to 1.5
    times with ``b=5``; with the trend off, 0.82 to 1.03 times for ``b`` from 2 to 5.
    Seasonality inside the reference windows inflates the dispersion of large strata,
    which makes them more conservative still. Without the trend, a slow rise over years
    (practices joining, a growing list size) alarms instead of being absorbed into the
    baseline; ``trend=true`` brings back the package's behaviour and its excess of false
    alarms, and ``trend=true`` with ``reweight=false`` tests the trend correctly (0.9 to
    1.05 times the level with ``b=3``) but leaves past outbreaks in the baseline at full
    weight. With ``b`` of 1 or 2 (less than three years of history, as in the demo) the
    package fits no trend in any case. The EARS detectors are not calibrated this far in
    the tail: at 0.0067 their normal threshold on a 7-week baseline alarms 4 to 6 times
    as often as the level, and a stage running them raises several times its budget.

    ``margins`` lists the dimension sets to watch per code group: ``()`` is national,
    ``("region",)`` each province, ``("region", "age_band")`` each province and age
    band, and so on.
    ``code_groups`` None watches every code group in the warehouse. A source or provider
    is silent when it sent nothing for ``silence_days`` while its rate over the
    ``history_days`` before would have given at least ``min_expected_events``. A lag above
    ``lag_threshold_seconds`` that grew over ``lag_growth_cycles`` cycles is a lag alert,
    and (``defer_while_lagging``) detection waits until the lag is back under it.
    """

    methods: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: {"farrington-flexible": {}}
    )
    margins: tuple[tuple[str, ...], ...] = DEFAULT_MARGINS
    code_groups: tuple[str, ...] | None = None
    clock: Literal["data", "wall"] = "data"
    quiet_weeks_to_close: int = 3
    max_catch_up_weeks: int = 156
    min_stratum_events: int = 1
    family_alpha: float | None = 0.5
    baseline_context_weeks: int = 8
    ses_gradient: bool = True
    # data quality
    data_quality: bool = True
    silence_days: int = 14
    history_days: int = 56
    min_expected_events: float = 10.0
    lag_threshold_seconds: float = 900.0
    lag_growth_cycles: int = 5
    defer_while_lagging: bool = True

    def __post_init__(self) -> None:
        if not self.methods:
            raise AlertingError("no detector configured: give at least one method")
        for name in self.methods:
            if name not in METHODS:
                raise AlertingError(
                    f"unknown detector {name!r}; known: {', '.join(sorted(METHODS))}"
                )
            try:
                METHODS[name].parse(self.parameters(name))
            except DetectionError as exc:
                raise AlertingError(str(exc)) from None
        for dims in self.margins:
            unknown = [d for d in dims if d not in DIMENSIONS]
            if unknown or len(set(dims)) != len(dims):
                raise AlertingError(
                    f"margin {dims!r}: expected distinct dimensions among {', '.join(DIMENSIONS)}"
                )
        if self.clock not in ("data", "wall"):
            raise AlertingError(f"clock={self.clock!r}: expected data or wall")
        if self.quiet_weeks_to_close < 1:
            raise AlertingError("quiet_weeks_to_close must be at least 1")
        if self.max_catch_up_weeks < 1:
            raise AlertingError("max_catch_up_weeks must be at least 1")
        if self.family_alpha is not None and not self.family_alpha > 0.0:
            raise AlertingError(f"family_alpha={self.family_alpha}: must be positive")
        if self.silence_days < 1 or self.history_days < 1:
            raise AlertingError("silence_days and history_days must be at least 1")
        if self.lag_growth_cycles < 2:
            raise AlertingError("lag_growth_cycles must be at least 2")

    def parameters(self, method: str) -> dict[str, str]:
        """The text parameters ``method`` runs with: the configured ones over the stage's
        defaults (:data:`STAGE_DEFAULTS`)."""
        return {**STAGE_DEFAULTS.get(method, {}), **self.methods[method]}


@dataclass(frozen=True)
class _Detector:
    name: str
    method: Method
    values: dict[str, Any]

    @property
    def has_level(self) -> bool:
        """Whether ``alpha`` is the detector's significance level (not glrnb's dispersion)."""
        return self.name != "glrnb"

    def first_week(self, b: int | None = None) -> int:
        """The first 1-based week with enough history (Farrington with ``b`` years)."""
        if self.name == "farrington-flexible":
            years = b if b is not None else int(self.values.get("b", 5))
            return 52 * years + int(self.values.get("w", 3)) + 1
        if self.name.startswith("ears-"):
            return ears_first_week(self.name[-2:].upper(), int(self.values.get("baseline", 7)))
        return 53

    def history_weeks(self) -> int:
        if self.name == "glrnb":
            return 52 * 5
        return self.first_week()

    def groups(self, first: int, last: int) -> list[tuple[int, int, dict[str, Any]]]:
        """Split weeks first..last into runs sharing the parameters they can be run with."""
        if self.name != "farrington-flexible":
            start = max(first, self.first_week())
            return [(start, last, dict(self.values))] if start <= last else []
        b = int(self.values.get("b", 5))
        w = int(self.values.get("w", 3))
        runs: list[tuple[int, int, dict[str, Any]]] = []
        for week in range(first, last + 1):
            years = min(b, (week - w - 1) // 52)
            if years < 1:
                continue
            if runs and runs[-1][2]["b"] == years:
                runs[-1] = (runs[-1][0], week, runs[-1][2])
            else:
                runs.append((week, week, {**self.values, "b": years}))
        return runs


# ---------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------


class AlertingMetrics:
    """The alerting stage's Prometheus metrics, in the registry the caller passes."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self.open_alerts = Gauge(
            "linkwatch_alerts_open",
            "Alerts currently open, by kind and code group",
            ["kind", "code_group"],
            registry=r,
        )
        self.opened = Counter(
            "linkwatch_alerts_opened_total",
            "Alerts opened by this process, by kind and code group",
            ["kind", "code_group"],
            registry=r,
        )
        self.closed = Counter(
            "linkwatch_alerts_closed_total",
            "Alerts closed by this process, by kind",
            ["kind"],
            registry=r,
        )
        self.cycle_seconds = Histogram(
            "linkwatch_alerting_cycle_seconds",
            "Duration of one alerting cycle",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
            registry=r,
        )
        self.cycle_failures = Counter(
            "linkwatch_alerting_cycle_failures_total",
            "Alerting cycles that failed",
            registry=r,
        )
        self.strata = Gauge(
            "linkwatch_alerting_strata_evaluated",
            "Series (method x stratum) the last cycle evaluated",
            registry=r,
        )
        self.last_cycle = Gauge(
            "linkwatch_alerting_last_cycle_timestamp_seconds",
            "When the last alerting cycle finished (Unix time)",
            registry=r,
        )
        self.last_week = Gauge(
            "linkwatch_alerting_last_complete_week_timestamp_seconds",
            "Monday of the last complete week the detectors have evaluated (Unix time)",
            registry=r,
        )
        self.lag = Gauge(
            "linkwatch_alerting_pipeline_lag_seconds",
            "Pipeline lag the last cycle was given (the data-quality lag check's input)",
            registry=r,
        )

    def set_open(self, alerts: Iterable[Alert]) -> None:
        counts: dict[tuple[str, str], int] = {}
        for a in alerts:
            key = (a.kind, a.stratum.code_group)
            counts[key] = counts.get(key, 0) + 1
        self.open_alerts.clear()
        for kind in (EPIDEMIOLOGICAL, DATA_QUALITY):
            self.open_alerts.labels(kind, "all")  # present at 0 so rules see the series
        for (kind, group), n in counts.items():
            self.open_alerts.labels(kind, group).set(n)


# ---------------------------------------------------------------------------
# the stage
# ---------------------------------------------------------------------------


@dataclass
class CycleReport:
    """What one cycle did."""

    started_at: dt.datetime
    seconds: float = 0.0
    last_complete_week: dt.date | None = None
    weeks_evaluated: list[dt.date] = field(default_factory=list)
    series_evaluated: int = 0
    detector_errors: int = 0
    alarms: int = 0
    opened: list[Alert] = field(default_factory=list)
    updated: list[Alert] = field(default_factory=list)
    closed: list[Alert] = field(default_factory=list)
    written: int = 0
    published: int = 0
    results_written: int = 0
    open_alerts: int = 0
    note: str = ""

    def summary(self) -> str:
        weeks = (
            f"{len(self.weeks_evaluated)} week(s) "
            f"{self.weeks_evaluated[0]}..{self.weeks_evaluated[-1]}"
            if self.weeks_evaluated
            else "no new complete week"
        )
        return (
            f"{weeks}, {self.series_evaluated} series, {self.alarms} alarm(s); "
            f"{len(self.opened)} opened, {len(self.updated)} updated, {len(self.closed)} closed, "
            f"{self.open_alerts} open; {self.published} published in {self.seconds:.2f} s"
            + (f" ({self.note})" if self.note else "")
        )


class AlertingStage:
    """Weekly detection over the warehouse's pre-aggregates, with alert state and outputs.

    ``producer`` None keeps alerts in the warehouse only (nothing is published).
    ``metrics`` defaults to metrics in a registry of their own.
    """

    def __init__(
        self,
        warehouse: Warehouse,
        database: str,
        producer: Producer | None = None,
        config: AlertingConfig | None = None,
        *,
        metrics: AlertingMetrics | None = None,
        registry: SchemaRegistry | None = None,
        topic: str | None = None,
    ) -> None:
        from linkwatch.dashboards.model import check_identifier
        from linkwatch.schemas.registry import SchemaRegistry
        from linkwatch.streams.topics import ALERTS

        check_identifier(database, "database")
        self.warehouse = warehouse
        self.database = database
        self.producer = producer
        self.config = config or AlertingConfig()
        self.metrics = metrics or AlertingMetrics()
        self.registry = registry or SchemaRegistry.shipped()
        self.topic = topic or ALERTS.name
        self.detectors = [
            _Detector(name, METHODS[name], METHODS[name].parse(self.config.parameters(name)))
            for name in self.config.methods
        ]
        self._trackers: dict[tuple[str, Stratum], AlertTracker] = {}
        self._dq_open: dict[tuple[str, str], Alert] = {}
        self._watermark: dict[str, dt.date] = {}
        self._lags: deque[float] = deque(maxlen=self.config.lag_growth_cycles)
        self._recovered = False

    # -- state ---------------------------------------------------------------------------
    def open_alerts(self) -> list[Alert]:
        """Every open alert this stage holds."""
        epi = [t.open for t in self._trackers.values() if t.open is not None]
        return sorted([*epi, *self._dq_open.values()], key=lambda a: a.alert_id)

    def recover(self) -> None:
        """Open alerts and the last evaluated weeks, from the warehouse (at the first cycle)."""
        db = self.database
        rows = self.warehouse.query(
            f"SELECT {', '.join(ALERT_COLUMNS)} FROM {db}.alerts FINAL WHERE state = 'open'"
        ).dicts()
        self._trackers.clear()
        self._dq_open.clear()
        for row in rows:
            alert = Alert.from_row(row)
            if alert.kind == DATA_QUALITY:
                self._dq_open[(alert.method, _subject_key(alert.subject))] = alert
            else:
                self._tracker(alert.method, alert.stratum).open = alert
        for method, week in self.warehouse.query(
            f"SELECT method, max(week) FROM {db}.detector_results GROUP BY method"
        ).rows:
            self._watermark[str(method)] = _as_date(week)
        self._recovered = True
        self.metrics.set_open(self.open_alerts())
        log.info("alerting: recovered %d open alert(s), watermarks %s", len(rows), self._watermark)

    def _tracker(
        self, method: str, stratum: Stratum, details: Mapping[str, Any] | None = None
    ) -> AlertTracker:
        key = (method, stratum)
        tracker = self._trackers.get(key)
        if tracker is None:
            tracker = AlertTracker(method, stratum, self.config.quiet_weeks_to_close)
            self._trackers[key] = tracker
        if details is not None:
            tracker.details = dict(details)
        return tracker

    # -- the cycle -----------------------------------------------------------------------
    def run_once(
        self,
        now: dt.datetime | None = None,
        lag_seconds: float | None = None,
        catching_up: bool = False,
    ) -> CycleReport:
        """One cycle at ``now`` (UTC; default the current time). ``lag_seconds`` is the
        pipeline's current lag (e.g. the oldest unprocessed event's age), for the lag check.
        ``catching_up``: the pipeline has a backlog to work through (a replay of extracts
        published moments ago is behind in events though not in seconds); detection and
        the silence checks wait for it as for a lag."""
        now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        now = now.replace(microsecond=(now.microsecond // 1000) * 1000)
        started = time.monotonic()
        report = CycleReport(started_at=now)
        try:
            if not self._recovered:
                self.recover()
            changed: list[Alert] = []
            results: dict[str, list[Any]] = {c: [] for c in RESULT_COLUMNS}
            last_complete = self._last_complete_week(now)
            report.last_complete_week = last_complete
            behind = lag_seconds is not None and lag_seconds > self.config.lag_threshold_seconds
            if (behind or catching_up) and self.config.defer_while_lagging:
                # A backlog fills past weeks unevenly across sources and partitions; the
                # weeks are evaluated once it has drained, with their first weeks intact.
                report.note = (
                    f"detection deferred: the pipeline is {lag_seconds:.0f} s behind"
                    if behind
                    else "detection deferred: the pipeline is working through a backlog"
                )
            elif last_complete is not None:
                changed += self._detect(last_complete, now, report, results)
            if self.config.data_quality:
                changed += self._data_quality(now, lag_seconds, catching_up)
            self._commit(changed, results, report)
            for detector in self.detectors:
                if report.weeks_evaluated:
                    self._watermark[detector.name] = report.weeks_evaluated[-1]
        except Exception:
            # What this cycle changed in memory is not stored: start the next cycle again
            # from the warehouse, so the same weeks are evaluated and published again.
            self._recovered = False
            self.metrics.cycle_failures.inc()
            raise
        finally:
            report.seconds = time.monotonic() - started
            self.metrics.cycle_seconds.observe(report.seconds)
        open_now = self.open_alerts()
        report.open_alerts = len(open_now)
        m = self.metrics
        m.set_open(open_now)
        m.strata.set(report.series_evaluated)
        m.last_cycle.set(time.time())
        if lag_seconds is not None:
            m.lag.set(lag_seconds)
        if report.weeks_evaluated:
            last = report.weeks_evaluated[-1]
            m.last_week.set(dt.datetime.combine(last, dt.time(), dt.UTC).timestamp())
        for a in report.opened:
            m.opened.labels(a.kind, a.stratum.code_group).inc()
        for a in report.closed:
            m.closed.labels(a.kind).inc()
        return report

    def _last_complete_week(self, now: dt.datetime) -> dt.date | None:
        wall = monday(now.date())
        if self.config.clock == "wall":
            return wall - WEEK
        latest = self.warehouse.query(
            f"SELECT max(week), count() FROM {self.database}.weekly_counts "
            "WHERE week <= {wall:Date}",
            {"wall": wall},
        ).rows[0]
        if not latest[1]:
            return None
        return _as_date(latest[0]) - WEEK

    # -- epidemiological ---------------------------------------------------------------------
    def _weeks_to_evaluate(self, detector: _Detector, last_complete: dt.date) -> list[dt.date]:
        mark = self._watermark.get(detector.name)
        first = last_complete - (self.config.max_catch_up_weeks - 1) * WEEK
        if mark is not None:
            first = max(first, mark + WEEK)
        weeks = []
        week = first
        while week <= last_complete:
            weeks.append(week)
            week += WEEK
        return weeks

    def _detect(
        self,
        last_complete: dt.date,
        now: dt.datetime,
        report: CycleReport,
        results: dict[str, list[Any]],
    ) -> list[Alert]:
        plan = {d.name: self._weeks_to_evaluate(d, last_complete) for d in self.detectors}
        wanted = sorted({w for weeks in plan.values() for w in weeks})
        if not wanted:
            return []
        history = max(d.history_weeks() for d in self.detectors)
        bounds = self.warehouse.query(
            f"SELECT min(week) FROM {self.database}.weekly_counts WHERE week <= {{last:Date}}",
            {"last": last_complete},
        ).scalar()
        data_start = monday(_as_date(bounds))
        start = max(data_start, wanted[0] - history * WEEK)
        series = self.load_series(start, last_complete)
        n_weeks = (last_complete - start).days // 7 + 1
        report.weeks_evaluated = [w for w in wanted if w >= start]
        level = self._series_level(series)
        changed: list[Alert] = []
        for detector in self.detectors:
            weeks = [w for w in plan[detector.name] if w >= start]
            if not weeks:
                continue
            first_index = (weeks[0] - start).days // 7 + 1
            runs = detector.groups(first_index, n_weeks)
            if level is not None and detector.has_level:
                runs = [(a, b, {**values, "alpha": level}) for a, b, values in runs]
            strata = set(series) | {s for (m, s) in self._trackers if m == detector.name}
            for stratum in sorted(strata):
                observed = series.get(stratum)
                by_week: dict[dt.date, WeekResult] = {}
                used: dict[str, Any] = {}
                if observed is not None and runs:
                    report.series_evaluated += 1
                    for first, last, values in runs:
                        try:
                            table = detector.method.run(observed, dict(values), (first, last))
                        except DetectionError as exc:
                            report.detector_errors += 1
                            log.warning("%s on %s: %s", detector.name, stratum.label, exc)
                            continue
                        used = {k: _jsonable(v) for k, v in values.items()}
                        for computed in _week_results(table, start):
                            by_week[computed.week] = computed
                            _append_result(results, detector.name, stratum, computed, now)
                tracker = self._tracker(
                    detector.name,
                    stratum,
                    {"method": detector.name, "parameters": used} if used else None,
                )
                for week in weeks:
                    found = by_week.get(week)
                    if found is None:
                        if tracker.open is None:
                            continue
                        count = (
                            int(observed[(week - start).days // 7]) if observed is not None else 0
                        )
                        found = WeekResult(week, float(count), math.nan, math.nan, False, math.nan)
                    result = found
                    report.alarms += int(result.alarm)
                    context: list[dict[str, Any]] = []
                    if result.alarm and tracker.open is None and observed is not None:
                        context = _baseline_context(
                            observed, start, week, self.config.baseline_context_weeks
                        )
                    changed += tracker.observe(result, now, context)
                if tracker.open is None and observed is None:
                    del self._trackers[(detector.name, stratum)]
        if self.config.ses_gradient:
            weeks = [w for w in plan[self.detectors[0].name] if w >= start]
            gradient_level = 0.05 if level is None else level
            changed += self._ses_gradient(
                series, start, weeks, gradient_level, now, report, results
            )
        return changed

    def _gradient_groups(self, series: Mapping[Stratum, IntArray]) -> list[str]:
        """The code groups whose deprivation gradient is watched (both Q1 and Q5 present)."""
        if not self.config.ses_gradient:
            return []
        groups = {s.code_group for s in series}
        return sorted(
            g
            for g in groups
            if Stratum(g, ses_quintile=5) in series and Stratum(g, ses_quintile=1) in series
        )

    def _series_level(self, series: Mapping[Stratum, IntArray]) -> float | None:
        """The level of each test under ``family_alpha``, None without a family budget.

        The family is every test the stage runs at a level: each stratum under each
        detector that has one, and the deprivation gradient of each code group.
        """
        if self.config.family_alpha is None:
            return None
        tests = len(series) * sum(d.has_level for d in self.detectors)
        tests += len(self._gradient_groups(series))
        return min(self.config.family_alpha / max(tests, 1), 0.5)

    def _ses_gradient(
        self,
        series: Mapping[Stratum, IntArray],
        start: dt.date,
        weeks: list[dt.date],
        level: float,
        now: dt.datetime,
        report: CycleReport,
        results: dict[str, list[Any]],
    ) -> list[Alert]:
        """The deprivation gradient: has the most deprived quintile's share of Q1 + Q5 grown?

        Given the week's events in Q1 and Q5 together, Q5's count is binomial with the share
        it had over the baseline (52 weeks, the latest ``GRADIENT_GUARD`` left out) when the
        Q5/Q1 rate ratio is unchanged; the week alarms above that binomial's upper quantile.
        Each code group's test runs at ``level``, its share of the family budget. The
        evidence carries the rate ratio per 100,000 when population denominators exist.
        """
        from scipy import stats

        cfg = self.config
        population = self._quintile_population()
        changed: list[Alert] = []
        for group in self._gradient_groups(series):
            q5 = series[Stratum(group, ses_quintile=5)]
            q1 = series[Stratum(group, ses_quintile=1)]
            stratum = Stratum(group, ses_quintile=5)
            tracker = self._tracker(
                GRADIENT_METHOD,
                stratum,
                {"method": GRADIENT_METHOD, "parameters": {"alpha": level}},
            )
            evaluated = False
            for week in weeks:
                i = (week - start).days // 7
                lo, hi = i - GRADIENT_BASELINE - GRADIENT_GUARD, i - GRADIENT_GUARD
                if lo < 0:
                    continue
                base5, base_n = int(q5[lo:hi].sum()), int(q5[lo:hi].sum() + q1[lo:hi].sum())
                x5, n = int(q5[i]), int(q5[i] + q1[i])
                if base_n == 0 or n == 0:
                    continue
                evaluated = True
                share = base5 / base_n
                upper = float(stats.binom.ppf(1.0 - level, n, share))
                expected = n * share
                spread = math.sqrt(max(n * share * (1.0 - share), 1e-12))
                result = WeekResult(
                    week,
                    float(x5),
                    expected,
                    upper,
                    bool(x5 > upper and n >= 5),
                    (x5 - expected) / spread,
                )
                _append_result(results, GRADIENT_METHOD, stratum, result, now)
                report.alarms += int(result.alarm)
                context: list[dict[str, Any]] = []
                if result.alarm and tracker.open is None:
                    context = [
                        {
                            "week": (start + j * WEEK).isoformat(),
                            "q5": int(q5[j]),
                            "q1": int(q1[j]),
                            "rate_ratio": _rate_ratio(int(q5[j]), int(q1[j]), population),
                        }
                        for j in range(max(0, i - cfg.baseline_context_weeks), i + 1)
                    ]
                changed += tracker.observe(result, now, context)
            report.series_evaluated += int(evaluated)
        return changed

    def _quintile_population(self) -> dict[int, float]:
        from linkwatch.streams.warehouse import WarehouseError

        try:
            rows = self.warehouse.query(
                f"SELECT ses_quintile, sum(population) FROM {self.database}.population_strata "
                "GROUP BY ses_quintile"
            ).rows
        except WarehouseError:  # no area table yet: the rate ratio is left out of the evidence
            return {}
        return {int(q): float(p) for q, p in rows if p}

    def load_series(self, start: dt.date, end: dt.date) -> dict[Stratum, IntArray]:
        """Weekly counts of every watched stratum from ``start`` to ``end`` (Mondays), zeros
        filled in; strata with fewer than ``min_stratum_events`` events are left out."""
        n_weeks = (end - start).days // 7 + 1
        out: dict[Stratum, IntArray] = {}
        groups = self.config.code_groups
        for dims in self.config.margins:
            cols = "".join(f", {d}" for d in dims)
            conditions = "".join(
                f" AND {d} != 0" if d == "ses_quintile" else f" AND {d} != ''" for d in dims
            )
            if groups is not None:
                conditions += f" AND code_group IN {_string_list(groups)}"
            sql = (
                f"SELECT code_group, week{cols}, sum(events) AS n "
                f"FROM {self.database}.weekly_counts "
                "WHERE week >= {start:Date} AND week <= {end:Date}" + conditions + " "
                f"GROUP BY code_group, week{cols}"
            )
            params: dict[str, Any] = {"start": start, "end": end}
            for row in self.warehouse.query(sql, params).rows:
                values = dict(zip(dims, row[2:-1], strict=True))
                stratum = Stratum(
                    str(row[0]),
                    str(values.get("region", "")),
                    str(values.get("age_band", "")),
                    str(values.get("sex", "")),
                    int(values.get("ses_quintile", 0)),
                )
                array = out.get(stratum)
                if array is None:
                    array = out[stratum] = np.zeros(n_weeks, dtype=np.int64)
                array[(_as_date(row[1]) - start).days // 7] += int(row[-1])
        minimum = max(self.config.min_stratum_events, 1)
        return {s: a for s, a in out.items() if int(a.sum()) >= minimum}

    # -- data quality --------------------------------------------------------------------------
    def _data_quality(
        self, now: dt.datetime, lag_seconds: float | None, catching_up: bool = False
    ) -> list[Alert]:
        cfg = self.config
        findings: dict[tuple[str, str], tuple[dict[str, str], dt.date, dict[str, Any]]] = {}
        today = now.date()
        latest = self.warehouse.query(
            f"SELECT max(day), count() FROM {self.database}.daily_counts WHERE day <= {{t:Date}}",
            {"t": today},
        ).rows[0]
        behind = catching_up or (
            lag_seconds is not None and lag_seconds > cfg.lag_threshold_seconds
        )
        checked: set[str] = set()
        if lag_seconds is not None:
            checked.add("lag_growing")
        if not behind:
            checked |= {"source_silent", "provider_silent", "provider_not_coding"}
        if latest[1] and not behind:
            # While the pipeline is behind, a quiet source may only be queued: the lag
            # check speaks for it instead.
            reference = _as_date(latest[0]) if cfg.clock == "data" else today
            findings.update(self._silent_sources(reference))
            findings.update(self._silent_providers(reference))
        if lag_seconds is not None:
            self._lags.append(float(lag_seconds))
            lags = list(self._lags)
            growing = (
                len(lags) == cfg.lag_growth_cycles
                and all(b >= a for a, b in itertools.pairwise(lags))
                and lags[-1] > lags[0]
            )
            current = self._dq_open.get(("lag_growing", ""))
            if lags[-1] > cfg.lag_threshold_seconds and (growing or current is not None):
                onset = current.first_week if current is not None else today
                findings[("lag_growing", "")] = (
                    {},
                    onset,
                    {
                        "observed": lags[-1],
                        "expected": cfg.lag_threshold_seconds,
                        "score": lags[-1] / cfg.lag_threshold_seconds,
                        "lags_seconds": lags,
                        "threshold_seconds": cfg.lag_threshold_seconds,
                    },
                )
        changed: list[Alert] = []
        for key, (subject, onset, measured) in findings.items():
            check = key[0]
            previous = self._dq_open.get(key)
            if previous is not None and previous.first_week != monday(onset):
                changed.append(self._close_dq(previous, now))
                previous = None
            details = {
                k: v for k, v in measured.items() if k not in ("observed", "expected", "score")
            }
            details["check"] = check
            alert = Alert(
                alert_id=previous.alert_id
                if previous
                else alert_id(DATA_QUALITY, check, key[1], onset),
                kind=DATA_QUALITY,
                state=OPEN,
                method=check,
                stratum=Stratum("all"),
                first_week=monday(onset),
                last_week=monday(now.date() if check == "lag_growing" else onset),
                observed=float(measured["observed"]),
                expected=float(measured["expected"]),
                upperbound=math.nan,
                score=float(measured["score"]),
                weeks=(),
                opened_at=previous.opened_at if previous else now,
                updated_at=now,
                version=_version(now, previous.version if previous else 0),
                subject=subject,
                details=details,
            )
            if previous is None or previous.content() != alert.content():
                changed.append(alert)
                self._dq_open[key] = alert
        # A check that did not run this cycle leaves its alerts as they are.
        for key in [k for k in self._dq_open if k not in findings and k[0] in checked]:
            changed.append(self._close_dq(self._dq_open[key], now))
        return changed

    def _close_dq(self, alert: Alert, now: dt.datetime) -> Alert:
        self._dq_open.pop((alert.method, _subject_key(alert.subject)), None)
        return replace(alert, state=CLOSED, updated_at=now, version=_version(now, alert.version))

    def _silent_sources(
        self, reference: dt.date
    ) -> dict[tuple[str, str], tuple[dict[str, str], dt.date, dict[str, Any]]]:
        cfg = self.config
        cut = reference - dt.timedelta(days=cfg.silence_days - 1)
        start = cut - dt.timedelta(days=cfg.history_days)
        rows = self.warehouse.query(
            f"SELECT source, max(day) AS last_day, "
            "sumIf(events, day < {cut:Date}) AS before, sumIf(events, day >= {cut:Date}) AS recent "
            f"FROM {self.database}.daily_counts "
            "WHERE code_group = 'all' AND day >= {start:Date} AND day <= {ref:Date} "
            "GROUP BY source",
            {"cut": cut, "start": start, "ref": reference},
        ).rows
        found = {}
        for source, last_day, before, recent in rows:
            expected = float(before) * cfg.silence_days / cfg.history_days
            if int(recent) == 0 and expected >= cfg.min_expected_events:
                subject = {"source": str(source)}
                onset = _as_date(last_day) + dt.timedelta(days=1)
                found[("source_silent", _subject_key(subject))] = (
                    subject,
                    onset,
                    {
                        "observed": 0.0,
                        "expected": expected,
                        "score": float((reference - _as_date(last_day)).days),
                        "last_event_day": _as_date(last_day).isoformat(),
                        "reference_day": reference.isoformat(),
                        "events_before": int(before),
                    },
                )
        return found

    def _silent_providers(
        self, reference: dt.date
    ) -> dict[tuple[str, str], tuple[dict[str, str], dt.date, dict[str, Any]]]:
        cfg = self.config
        cut = reference - dt.timedelta(days=cfg.silence_days - 1)
        start = cut - dt.timedelta(days=cfg.history_days)
        rows = self.warehouse.query(
            "SELECT source, provider_id, max(event_date) AS last_day, "
            "countIf(event_date < {cut:Date}) AS before, "
            "countIf(event_date >= {cut:Date}) AS recent, "
            "countIf(event_date < {cut:Date} AND notEmpty(codes)) AS coded_before, "
            "countIf(event_date >= {cut:Date} AND notEmpty(codes)) AS coded_recent, "
            "maxIf(event_date, notEmpty(codes)) AS last_coded "
            f"FROM {self.database}.linked_events "
            "WHERE event_date >= {start:Date} AND event_date <= {ref:Date} "
            "GROUP BY source, provider_id",
            {"cut": cut, "start": start, "ref": reference},
        ).rows
        found = {}
        scale = cfg.silence_days / cfg.history_days
        for (
            source,
            provider,
            last_day,
            before,
            recent,
            coded_before,
            coded_recent,
            last_coded,
        ) in rows:
            subject = {"source": str(source), "provider_id": str(provider)}
            key = _subject_key(subject)
            expected = float(before) * scale
            coded_expected = float(coded_before) * scale
            if int(recent) == 0 and expected >= cfg.min_expected_events:
                found[("provider_silent", key)] = (
                    subject,
                    _as_date(last_day) + dt.timedelta(days=1),
                    {
                        "observed": 0.0,
                        "expected": expected,
                        "score": float((reference - _as_date(last_day)).days),
                        "last_event_day": _as_date(last_day).isoformat(),
                        "reference_day": reference.isoformat(),
                        "events_before": int(before),
                    },
                )
            elif (
                int(coded_recent) == 0
                and coded_expected >= cfg.min_expected_events
                and int(recent) >= cfg.min_expected_events
            ):
                found[("provider_not_coding", key)] = (
                    subject,
                    _as_date(last_coded) + dt.timedelta(days=1),
                    {
                        "observed": 0.0,
                        "expected": coded_expected,
                        "score": float((reference - _as_date(last_coded)).days),
                        "last_coded_day": _as_date(last_coded).isoformat(),
                        "uncoded_events_recent": int(recent),
                        "reference_day": reference.isoformat(),
                    },
                )
        return found

    # -- outputs -------------------------------------------------------------------------------
    def _commit(
        self, changed: list[Alert], results: dict[str, list[Any]], report: CycleReport
    ) -> None:
        latest: dict[str, Alert] = {}
        for alert in changed:
            latest[alert.alert_id] = alert  # several changes in one cycle: the last one counts
        stored = self._stored(list(latest))
        to_write: list[Alert] = []
        for alert in latest.values():
            before = stored.get(alert.alert_id)
            if before is not None:
                if before.content() == alert.content():
                    continue
                alert = replace(
                    alert,
                    opened_at=before.opened_at,
                    version=max(alert.version, before.version + 1),
                )
            to_write.append(alert)
            if before is None or (before.state == CLOSED and alert.state == OPEN):
                report.opened.append(alert)
                if alert.state == CLOSED:  # opened and closed again within one catch-up
                    report.closed.append(alert)
            elif alert.state == CLOSED:
                report.closed.append(alert)
            else:
                report.updated.append(alert)
        if to_write:
            self._publish(to_write)
            report.published = len(to_write) if self.producer is not None else 0
            columns: dict[str, list[Any]] = {c: [] for c in ALERT_COLUMNS}
            for alert in to_write:
                for name, value in alert.row().items():
                    columns[name].append(value)
            self.warehouse.insert(f"{self.database}.alerts", columns)
            report.written = len(to_write)
        if results["method"]:
            report.results_written = self.warehouse.insert(
                f"{self.database}.detector_results", results
            )

    def _stored(self, ids: list[str]) -> dict[str, Alert]:
        if not ids:
            return {}
        rows = self.warehouse.query(
            f"SELECT {', '.join(ALERT_COLUMNS)} FROM {self.database}.alerts FINAL "
            f"WHERE alert_id IN {_string_list(ids)}"
        ).dicts()
        return {str(r["alert_id"]): Alert.from_row(r) for r in rows}

    def _publish(self, alerts: list[Alert]) -> None:
        if self.producer is None:
            return
        failures: list[str] = []

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                failures.append(str(err))

        for alert in alerts:
            value = self.registry.encode(alert.avro_record(), "alert")
            while True:
                try:
                    self.producer.produce(
                        self.topic,
                        key=alert.alert_id.encode(),
                        value=value,
                        on_delivery=on_delivery,
                    )
                    break
                except BufferError:
                    self.producer.poll(0.05)
        remaining = self.producer.flush(60)
        if remaining or failures:
            raise AlertingError(
                f"{remaining} alert(s) unacknowledged by Kafka, {len(failures)} failed: "
                f"{failures[:3]}; they are published again at the next cycle"
            )


def _rate_ratio(q5: int, q1: int, population: Mapping[int, float]) -> float | None:
    if q1 == 0 or not population.get(5) or not population.get(1):
        return None
    return (q5 / population[5]) / (q1 / population[1])


def _string_list(values: Iterable[str]) -> str:
    # Alert ids and code-group names only: checked, so they can be written as literals
    # (servers before 22 cannot bind array parameters).
    items = []
    for value in values:
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", value):
            raise AlertingError(f"{value!r} is not a code group or alert id")
        items.append(f"'{value}'")
    return "(" + ", ".join(items) + ")"


def _subject_key(subject: Mapping[str, str]) -> str:
    return ",".join(f"{k}={subject[k]}" for k in sorted(subject))


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


def _week_results(table: DetectionTable, start: dt.date) -> list[WeekResult]:
    return [
        WeekResult(
            week=start + (int(w) - 1) * WEEK,
            observed=float(o),
            expected=float(e),
            upperbound=float(u),
            alarm=bool(a),
            score=float(s),
        )
        for w, o, e, u, a, s in zip(
            table.week,
            table.observed,
            table.expected,
            table.upperbound,
            table.alarm,
            table.score,
            strict=True,
        )
    ]


def _append_result(
    results: dict[str, list[Any]],
    method: str,
    stratum: Stratum,
    result: WeekResult,
    now: dt.datetime,
) -> None:
    for name, value in (
        ("method", method),
        ("code_group", stratum.code_group),
        ("region", stratum.region),
        ("age_band", stratum.age_band),
        ("sex", stratum.sex),
        ("ses_quintile", stratum.ses_quintile),
        ("week", result.week),
        ("observed", result.observed),
        ("expected", result.expected),
        ("upperbound", result.upperbound),
        ("alarm", int(result.alarm)),
        ("computed_at", now),
    ):
        results[name].append(value)


def _baseline_context(
    observed: IntArray, start: dt.date, week: dt.date, n: int
) -> list[dict[str, Any]]:
    index = (week - start).days // 7
    return [
        {"week": (start + i * WEEK).isoformat(), "observed": int(observed[i])}
        for i in range(max(0, index - n), index)
    ]
