"""The Grafana dashboard: its shape, its SQL being the panels' SQL, and that SQL running."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from linkwatch.dashboards.grafana import ALL, GRAFANA_PARAMETERS, dashboard, grafana_sql
from linkwatch.dashboards.model import create_model
from linkwatch.dashboards.panels import PANELS, Filters, panel_sql
from linkwatch.dashboards.sample_data import load_sample
from linkwatch.dashboards.service import PanelService
from linkwatch.streams.warehouse import EmbeddedWarehouse

GRAFANA_DIR = Path(__file__).resolve().parents[2] / "deploy" / "grafana"


def shipped() -> dict[str, object]:
    return dict(json.loads((GRAFANA_DIR / "dashboards" / "linkwatch.json").read_text()))


def test_shipped_dashboard_is_the_generated_one() -> None:
    assert shipped() == dashboard()


def test_dashboard_shape() -> None:
    board = shipped()
    panels = board["panels"]
    assert isinstance(panels, list)
    assert [p["title"] for p in panels] == [p.title for p in PANELS]
    assert len({p["id"] for p in panels}) == len(panels)
    names = [v["name"] for v in board["templating"]["list"]]  # type: ignore[index]
    assert names == [
        "datasource",
        "code_group",
        "region",
        "age_band",
        "sex",
        "ses_quintile",
        "source",
    ]
    for p in panels:
        assert p["type"] in {"timeseries", "barchart", "table", "stat"}
        assert set(p["gridPos"]) == {"x", "y", "w", "h"}
        (target,) = p["targets"]
        assert target["datasource"]["type"] == "grafana-clickhouse-datasource"
        assert target["editorType"] == "sql"
        assert target["format"] in (0, 1)


def test_each_query_is_the_panel_sql_with_grafana_values() -> None:
    reverse = {expression: parameter for parameter, expression in GRAFANA_PARAMETERS.items()}
    for p, target in zip(PANELS, (q["targets"][0] for q in shipped()["panels"]), strict=True):  # type: ignore[attr-defined]
        raw = target["rawSql"]
        assert raw == grafana_sql(p)
        inner = re.search(r"\nFROM\n\(\n(.*)\n\)$", raw, re.S)
        assert inner is not None, p.name
        text = inner.group(1)
        for expression, parameter in reverse.items():
            text = text.replace(expression, parameter)
        assert text == panel_sql(p).strip(), p.name
        for count in p.counts:  # primary suppression of every count
            assert f"if(({count} > 0 AND {count} < 10), NULL, {count}) AS {count}" in raw


def yaml_values(path: Path) -> dict[str, str]:
    """``key: value`` pairs of a small provisioning file (no YAML parser needed for these)."""
    pairs = re.findall(r"^[ \t]*-?[ \t]*(\w+):[ \t]*(\S.*?)[ \t]*$", path.read_text(), re.M)
    return dict(pairs)


def test_provisioning_files_point_at_the_plugin_and_the_dashboards() -> None:
    source = yaml_values(GRAFANA_DIR / "provisioning/datasources/clickhouse.yaml")
    assert source["apiVersion"] == "1"
    assert source["type"] == "grafana-clickhouse-datasource"
    assert source["defaultDatabase"] == "linkwatch"
    provider = yaml_values(GRAFANA_DIR / "provisioning/dashboards/linkwatch.yaml")
    assert provider["type"] == "file"
    assert provider["path"].startswith("/")


@pytest.fixture(scope="module")
def linkwatch_db(embedded_warehouse: EmbeddedWarehouse) -> Iterator[str]:
    # Grafana's SQL names the database 'linkwatch'; a private one is swapped in below.
    name = f"gf_{uuid.uuid4().hex[:8]}"
    create_model(embedded_warehouse, name)
    load_sample(embedded_warehouse, name)
    yield name
    embedded_warehouse.command(f"DROP DATABASE IF EXISTS {name}")


def as_grafana_would_run(sql: str, values: dict[str, str], start: dt.date, end: dt.date) -> str:
    sql = sql.replace("$__fromTime", f"toDateTime('{start.isoformat()} 00:00:00')")
    sql = sql.replace("$__toTime", f"toDateTime('{end.isoformat()} 23:59:59')")
    for name, value in values.items():
        sql = sql.replace("${" + name + "}", value)
    assert re.search(r"\$(__\w+Time|\{)", sql) is None
    return sql


@pytest.mark.parametrize("region", [ALL, "Zeeland"])
def test_grafana_queries_run_and_suppress_like_the_api(
    embedded_warehouse: EmbeddedWarehouse, linkwatch_db: str, region: str
) -> None:
    service = PanelService(embedded_warehouse, linkwatch_db)
    start, end = dt.date(2022, 1, 1), dt.date(2022, 7, 3)
    values = {"code_group": "all", "region": region, "age_band": ALL, "sex": ALL}
    values |= {"ses_quintile": ALL, "source": ALL}
    filters = Filters(start, end, region="" if region == ALL else region)
    for p in PANELS:
        if p.name == "ses_gap":
            continue  # the API derives it from the quintile panel; Grafana runs its own SQL
        sql = as_grafana_would_run(grafana_sql(p, linkwatch_db), values, start, end)
        grafana = embedded_warehouse.query(sql).dicts()
        api = service.run(p.name, filters).data
        assert len(grafana) == len(api.rows), p.name
        for g, a in zip(grafana, api.rows, strict=True):
            for count in p.counts:
                # Grafana hides what is small; the API hides that and its complements.
                if g[count] is None:
                    assert a[count] is None
                elif a[count] is not None:
                    assert g[count] == a[count]
                assert g[count] is None or not 0 < g[count] < 10
