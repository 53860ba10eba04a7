"""Grafana dashboards for production: the same panels and SQL, for the ClickHouse plugin.

:func:`dashboard` builds the dashboard JSON from :data:`PANELS`; the shipped file
``deploy/grafana/dashboards/linkwatch.json`` is its output (regenerate it with
``python -m linkwatch.dashboards.grafana > deploy/grafana/dashboards/linkwatch.json``;
a test keeps the two equal). Each panel's query is the panel's own SQL with Grafana's
time range and dashboard variables in place of the query parameters, wrapped in the
primary suppression of its counts and the rates derived from them.

Grafana talks to ClickHouse directly, so only primary suppression applies there;
secondary suppression needs the linkwatch API. Public dashboards should read the
API (``linkwatch serve``), and the Grafana data source user should be read-only.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from linkwatch.dashboards.code_groups import code_group_names
from linkwatch.dashboards.disclosure import DEFAULT_THRESHOLD
from linkwatch.dashboards.model import DEFAULT_DATABASE
from linkwatch.dashboards.panels import (
    AGE_BANDS,
    PANELS,
    SES_QUINTILES,
    SEXES,
    SOURCES,
    Panel,
    panel_sql,
)
from linkwatch.dashboards.regions import PROVINCES

DATASOURCE = {"type": "grafana-clickhouse-datasource", "uid": "${datasource}"}
ALL = "__all"  # Grafana's value for "All" in the stratum variables
# Query parameter -> Grafana expression. "All" arrives as ALL and becomes '' (or 0).
GRAFANA_PARAMETERS = {
    "{date_from:Date}": "toDate($__fromTime)",
    "{date_to:Date}": "toDate($__toTime)",
    "{code_group:String}": "'${code_group}'",
    "{region:String}": f"replaceRegexpOne('${{region}}', '^{ALL}$', '')",
    "{age_band:String}": f"replaceRegexpOne('${{age_band}}', '^{ALL}$', '')",
    "{sex:String}": f"replaceRegexpOne('${{sex}}', '^{ALL}$', '')",
    "{source:String}": f"replaceRegexpOne('${{source}}', '^{ALL}$', '')",
    "{ses_quintile:UInt8}": "toUInt8OrZero('${ses_quintile}')",
}
PANEL_TYPES = {
    "timeseries": "timeseries",
    "small_multiples": "timeseries",
    "lines": "timeseries",
    "grouped_bar": "barchart",
    "bar": "barchart",
    "table": "table",
    "stat": "stat",
}


def grafana_sql(
    p: Panel, database: str = DEFAULT_DATABASE, threshold: int = DEFAULT_THRESHOLD
) -> str:
    """The panel's SQL as Grafana runs it: variables and macros, primary suppression."""
    inner = panel_sql(p, database)
    for parameter, expression in GRAFANA_PARAMETERS.items():
        inner = inner.replace(parameter, expression)
    leftover = re.findall(r"\{\w+:[^{}]+\}", inner)
    if leftover:
        raise ValueError(f"panel {p.name}: no Grafana value for {', '.join(leftover)}")
    small = {c: f"({c} > 0 AND {c} < {threshold})" for c in p.counts}
    replaced = [f"if({small[c]}, NULL, {c}) AS {c}" for c in p.counts]
    for rate, sources in p.rates.items():
        condition = " OR ".join(small[s] for s in sources)
        replaced.append(f"if({condition}, NULL, {rate}) AS {rate}")
    columns = "*"
    if p.x == "week":
        columns = "toDateTime(week) AS time, * EXCEPT (week)"
    if replaced:
        columns += " REPLACE (" + ", ".join(replaced) + ")"
    return f"SELECT {columns}\nFROM\n(\n{inner.strip()}\n)"


def _custom_variable(name: str, label: str, values: list[str]) -> dict[str, Any]:
    options = [{"text": "All", "value": ALL, "selected": True}]
    options += [{"text": v, "value": v, "selected": False} for v in values]
    return {
        "type": "custom",
        "name": name,
        "label": label,
        "query": ",".join(values),
        "includeAll": True,
        "allValue": ALL,
        "multi": False,
        "current": {"text": "All", "value": ALL},
        "options": options,
    }


def variables(database: str = DEFAULT_DATABASE) -> list[dict[str, Any]]:
    """The dashboard variables: data source, code group and one per stratum."""
    groups = list(code_group_names())
    return [
        {
            "type": "datasource",
            "name": "datasource",
            "label": "ClickHouse",
            "query": "grafana-clickhouse-datasource",
        },
        {
            "type": "query",
            "name": "code_group",
            "label": "Code group",
            "datasource": DATASOURCE,
            "query": (
                f"SELECT 'all' UNION ALL SELECT DISTINCT code_group FROM {database}.code_groups"
            ),
            "definition": "code groups",
            "includeAll": False,
            "multi": False,
            "refresh": 1,
            "current": {"text": "all", "value": "all"},
            "options": [{"text": g, "value": g, "selected": g == "all"} for g in groups],
        },
        _custom_variable("region", "Province", list(PROVINCES)),
        _custom_variable("age_band", "Age band", list(AGE_BANDS)),
        _custom_variable("sex", "Sex", list(SEXES)),
        _custom_variable("ses_quintile", "SES quintile", [str(q) for q in SES_QUINTILES]),
        _custom_variable("source", "Source", list(SOURCES)),
    ]


def _panel_json(p: Panel, index: int, database: str, threshold: int) -> dict[str, Any]:
    wide = p.name in ("national_weekly", "region_weekly")
    width = 24 if wide else 12
    timeseries = p.x == "week"
    return {
        "id": index + 1,
        "type": PANEL_TYPES[p.chart],
        "title": p.title,
        "description": p.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": 0 if wide else (index % 2) * 12, "y": index * 9, "w": width, "h": 9},
        "targets": [
            {
                "refId": "A",
                "datasource": DATASOURCE,
                "editorType": "sql",
                "format": 0 if timeseries else 1,
                "queryType": "timeseries" if timeseries else "table",
                "rawSql": grafana_sql(p, database, threshold),
            }
        ],
        "options": {},
        "fieldConfig": {"defaults": {"noValue": f"<{threshold} (suppressed)"}, "overrides": []},
    }


def dashboard(
    database: str = DEFAULT_DATABASE, threshold: int = DEFAULT_THRESHOLD
) -> dict[str, Any]:
    """The Grafana dashboard JSON (schema of Grafana 10+) for every panel."""
    return {
        "uid": "linkwatch-surveillance",
        "title": "linkwatch — Long COVID surveillance",
        "description": "Rates per 100,000 by week and stratum, with small numbers suppressed.",
        "tags": ["linkwatch", "surveillance"],
        "timezone": "utc",
        "refresh": "10s",
        "schemaVersion": 39,
        "editable": False,
        "time": {"from": "now-1y", "to": "now"},
        "templating": {"list": variables(database)},
        "panels": [_panel_json(p, i, database, threshold) for i, p in enumerate(PANELS)],
    }


def main() -> None:
    """Print the dashboard JSON (the content of ``deploy/grafana/dashboards/linkwatch.json``)."""
    sys.stdout.write(json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
