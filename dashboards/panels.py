"""Every dashboard panel's SQL in one place, with its parameters and disclosure rules.

The web dashboard, the JSON API and the Grafana dashboards all read their queries
from here (``sql/panels/<name>.sql``). A panel's SQL names the database as ``${db}``
and the stratum filters as ``${f_<filter>}``; both are expanded by :func:`panel_sql`
from fixed text, never from user input. Values travel as ClickHouse query parameters
(``{region:String}``), validated first by :class:`Filters`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from string import Template
from typing import Any, Literal

from linkwatch.dashboards.code_groups import code_group_names
from linkwatch.dashboards.disclosure import Partition, Table2D
from linkwatch.dashboards.model import DEFAULT_DATABASE, check_identifier
from linkwatch.dashboards.regions import PROVINCES

AGE_BANDS = ("0_14", "15_24", "25_44", "45_64", "65_plus")
SEXES = ("MALE", "FEMALE")
SOURCES = ("gp_consultation", "ooh_contact", "hospital_episode")
SES_QUINTILES = (1, 2, 3, 4, 5)

# The stratum filters: '' (or 0 for the quintile) selects every value.
FILTER_SQL = {
    "f_region": "({region:String} = '' OR region = {region:String})",
    "f_age_band": "({age_band:String} = '' OR age_band = {age_band:String})",
    "f_sex": "({sex:String} = '' OR sex = {sex:String})",
    "f_ses_quintile": "({ses_quintile:UInt8} = 0 OR ses_quintile = {ses_quintile:UInt8})",
    "f_source": "({source:String} = '' OR source = {source:String})",
}
Chart = Literal["timeseries", "small_multiples", "grouped_bar", "lines", "bar", "table", "stat"]


class FilterError(ValueError):
    """A filter value the dashboards do not know; the message names the filter and the choices."""


class UnknownPanel(FilterError):
    """A panel name that is not in :data:`PANELS`."""


@dataclass(frozen=True)
class Panel:
    """One panel: its query, how to draw it and which of its columns are disclosure-controlled.

    ``counts`` are the columns holding counts of events (suppressed below the threshold);
    ``rates`` maps each column derived from counts to the counts it comes from (suppressed
    when any of them is). ``secondary`` says which published totals a reader could
    subtract from: a :class:`Partition` (categories adding up to a total shown elsewhere)
    or a :class:`Table2D` (a two-way table with its row and column totals).
    """

    name: str
    title: str
    chart: Chart
    description: str
    counts: tuple[str, ...] = ()
    rates: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    secondary: Partition | Table2D | None = None
    x: str = ""
    y: str = ""
    series: str = ""

    @property
    def sql_template(self) -> str:
        """The panel's SQL as shipped, with ``${db}`` and ``${f_*}`` placeholders."""
        return (
            resources.files("linkwatch.dashboards")
            .joinpath("sql", "panels", f"{self.name}.sql")
            .read_text("utf-8")
        )


PANELS: tuple[Panel, ...] = (
    Panel(
        "national_weekly",
        "Weekly rate per 100,000 with expected band and alarms",
        "timeseries",
        "Events of the code group per 100,000 inhabitants by ISO week; the band is the "
        "detectors' expected value and upper threshold; red marks are alarms.",
        counts=("events",),
        rates={"rate_per_100k": ("events",)},
        x="week",
        y="rate_per_100k",
    ),
    Panel(
        "long_covid_weekly",
        "Long COVID case definition: persons per 100,000",
        "timeseries",
        "Persons first meeting the case definition each week: a symptom-cluster code 4-52 "
        "weeks after an index COVID episode, or a post-COVID code (U09.9, SNOMED 1119303003).",
        counts=("persons",),
        rates={"rate_per_100k": ("persons",)},
        x="week",
        y="rate_per_100k",
    ),
    Panel(
        "region_weekly",
        "By province",
        "small_multiples",
        "Weekly rate per 100,000 in each province.",
        counts=("events",),
        rates={"rate_per_100k": ("events",)},
        secondary=Partition(by=("week",), category="region", count="events"),
        x="week",
        y="rate_per_100k",
        series="region",
    ),
    Panel(
        "age_sex",
        "By age band and sex",
        "grouped_bar",
        "Rate per 100,000 over the period by age band and sex.",
        counts=("events",),
        rates={"rate_per_100k": ("events",)},
        secondary=Table2D(rows="age_band", cols="sex", count="events"),
        x="age_band",
        y="rate_per_100k",
        series="sex",
    ),
    Panel(
        "ses_weekly",
        "By SES quintile",
        "lines",
        "Weekly rate per 100,000 per SES quintile (1 highest SES, 5 lowest).",
        counts=("events",),
        rates={"rate_per_100k": ("events",)},
        secondary=Partition(by=("week",), category="ses_quintile", count="events"),
        x="week",
        y="rate_per_100k",
        series="ses_quintile",
    ),
    Panel(
        "ses_gap",
        "Q5/Q1 rate ratio",
        "timeseries",
        "Weekly rate in the lowest-SES quintile divided by the rate in the highest.",
        counts=("events_q1", "events_q5"),
        rates={"rate_ratio_q5_q1": ("events_q1", "events_q5")},
        x="week",
        y="rate_ratio_q5_q1",
    ),
    Panel(
        "source_weekly",
        "By source",
        "lines",
        "Weekly events from GP practices, out-of-hours services and hospitals.",
        counts=("events",),
        secondary=Partition(by=("week",), category="source", count="events"),
        x="week",
        y="events",
        series="source",
    ),
    Panel(
        "symptom_mix",
        "Symptom mix",
        "bar",
        "Events per Long COVID symptom cluster over the period.",
        counts=("events",),
        x="symptom_cluster",
        y="events",
    ),
    Panel("alerts_open", "Open alerts", "table", "Open alerts with their evidence."),
    Panel(
        "freshness",
        "Freshness",
        "stat",
        "Latest event time, latest commit and the lag between them.",
    ),
    Panel(
        "linkage_quality",
        "Linkage quality",
        "stat",
        "Share of events linked to a known person, review queue, merges, distinct persons.",
    ),
)
PANELS_BY_NAME = {p.name: p for p in PANELS}


def panel(name: str) -> Panel:
    """The panel called ``name``; FilterError listing the panels otherwise."""
    try:
        return PANELS_BY_NAME[name]
    except KeyError:
        known = ", ".join(PANELS_BY_NAME)
        raise UnknownPanel(f"unknown panel {name!r} (panels: {known})") from None


def panel_sql(p: Panel, database: str = DEFAULT_DATABASE) -> str:
    """The panel's SQL for ``database``, with ClickHouse ``{name:Type}`` parameters."""
    check_identifier(database, "database")
    return Template(p.sql_template).substitute(db=database, **FILTER_SQL)


def sql_parameters(sql: str) -> dict[str, str]:
    """The ``{name:Type}`` parameters a query takes, by name."""
    return {m[1]: m[2] for m in re.finditer(r"\{(\w+):([^{}]+)\}", sql)}


@dataclass(frozen=True)
class Filters:
    """Validated panel parameters: a period and one optional value per stratum."""

    date_from: dt.date
    date_to: dt.date
    code_group: str = "all"
    region: str = ""
    age_band: str = ""
    sex: str = ""
    ses_quintile: int = 0
    source: str = ""

    @classmethod
    def parse(
        cls,
        values: Mapping[str, str | None],
        *,
        default_period: tuple[dt.date, dt.date],
        code_groups: tuple[str, ...] | None = None,
        regions: tuple[str, ...] = PROVINCES,
    ) -> Filters:
        """Filters from query-string values; FilterError naming the filter and its choices."""
        known = {"date_from", "date_to", "code_group", "region", "age_band", "sex"}
        known |= {"ses_quintile", "source"}
        unknown = sorted(k for k in values if k not in known)
        if unknown:
            raise FilterError(
                f"unknown filter {unknown[0]!r} (filters: {', '.join(sorted(known))})"
            )

        def text(name: str) -> str:
            value = values.get(name)
            return "" if value is None else str(value).strip()

        def choice(name: str, options: tuple[str, ...], default: str = "") -> str:
            value = text(name) or default
            if value and value not in options:
                shown = ", ".join(options[:25]) + (" ..." if len(options) > 25 else "")
                raise FilterError(f"{name}={value[:40]!r} is not known (choices: {shown})")
            return value

        def day(name: str, default: dt.date) -> dt.date:
            value = text(name)
            if not value:
                return default
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise FilterError(f"{name}={value[:40]!r}: expected a date as YYYY-MM-DD") from None

        date_from = day("date_from", default_period[0])
        date_to = day("date_to", default_period[1])
        if date_from > date_to:
            raise FilterError(
                f"date_from {date_from.isoformat()} is after date_to {date_to.isoformat()}"
            )
        quintile = choice("ses_quintile", tuple(str(q) for q in SES_QUINTILES))
        return cls(
            date_from=date_from,
            date_to=date_to,
            code_group=choice("code_group", code_groups or code_group_names(), "all"),
            region=choice("region", regions),
            age_band=choice("age_band", AGE_BANDS),
            sex=choice("sex", SEXES),
            ses_quintile=int(quintile) if quintile else 0,
            source=choice("source", SOURCES),
        )

    def params(self) -> dict[str, Any]:
        """The ClickHouse query parameters."""
        return {
            "date_from": self.date_from,
            "date_to": self.date_to,
            "code_group": self.code_group,
            "region": self.region,
            "age_band": self.age_band,
            "sex": self.sex,
            "ses_quintile": self.ses_quintile,
            "source": self.source,
        }
