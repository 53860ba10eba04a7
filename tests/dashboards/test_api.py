"""The JSON API and CSV export over a sample warehouse: panels, filters, bad input."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from linkwatch.dashboards.model import create_model
from linkwatch.dashboards.panels import PANELS, panel_sql, sql_parameters
from linkwatch.dashboards.sample_data import load_sample
from linkwatch.dashboards.web import create_app
from linkwatch.streams.warehouse import EmbeddedWarehouse


@pytest.fixture(scope="module")
def sample_db(embedded_warehouse: EmbeddedWarehouse) -> Iterator[str]:
    name = f"api_{uuid.uuid4().hex[:8]}"
    create_model(embedded_warehouse, name)
    load_sample(embedded_warehouse, name)
    yield name
    embedded_warehouse.command(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(scope="module")
def client(embedded_warehouse: EmbeddedWarehouse, sample_db: str) -> TestClient:
    return TestClient(create_app(embedded_warehouse, sample_db))


@pytest.mark.parametrize("name", [p.name for p in PANELS])
def test_every_panel_answers_with_data(client: TestClient, name: str) -> None:
    response = client.get(f"/api/panels/{name}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rows"], f"{name} returned no rows"
    assert set(body["columns"]) == set(body["rows"][0])


def test_panel_sql_takes_only_the_declared_parameters() -> None:
    allowed = {"date_from", "date_to", "code_group", "region", "age_band", "sex"}
    allowed |= {"ses_quintile", "source"}
    for p in PANELS:
        assert set(sql_parameters(panel_sql(p))) <= allowed, p.name


def test_national_counts_equal_the_raw_events(
    client: TestClient, embedded_warehouse: EmbeddedWarehouse, sample_db: str
) -> None:
    query = "code_group=symptom_fatigue&sex=FEMALE&source=gp_consultation"
    body = client.get(f"/api/panels/national_weekly?{query}").json()
    shown = {r["week"]: r["events"] for r in body["rows"] if r["events"] is not None}
    raw = embedded_warehouse.query(
        f"SELECT toString(iso_week) AS week, count() AS n FROM {sample_db}.linked_events "
        "WHERE has(code_groups, 'symptom_fatigue') AND sex = 'FEMALE' "
        "AND source = 'gp_consultation' GROUP BY week"
    )
    expected = {w: n for w, n in raw.rows if n >= 10}
    assert shown == expected
    hidden_weeks = {r["week"] for r in body["rows"] if r["events"] is None}
    assert hidden_weeks == {w for w, n in raw.rows if n < 10}


def test_small_province_is_suppressed_in_json_and_csv(client: TestClient) -> None:
    body = client.get("/api/panels/region_weekly?region=Zeeland").json()
    assert body["rows"]
    assert all(r["events"] is None and r["rate_per_100k"] is None for r in body["rows"])
    reasons = {h["reason"] for h in body["hidden"]}
    assert reasons == {"primary", "derived"}
    response = client.get("/api/panels/region_weekly/csv?region=Zeeland")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows
    assert {r["events"] for r in rows} == {"<10"}
    assert {r["rate_per_100k"] for r in rows} == {"suppressed"}


def test_secondary_suppression_protects_the_national_total(client: TestClient) -> None:
    body = client.get("/api/panels/region_weekly").json()
    by_week: dict[str, list[dict[str, object]]] = {}
    for r in body["rows"]:
        by_week.setdefault(str(r["week"]), []).append(r)
    for rows in by_week.values():
        hidden = [r for r in rows if r["events"] is None]
        assert len(hidden) != 1  # one hidden province would equal national minus the rest


def test_ratio_is_hidden_when_a_quintile_count_is(client: TestClient) -> None:
    query = "region=Zeeland"
    by_q = client.get(f"/api/panels/ses_weekly?{query}").json()
    gap = client.get(f"/api/panels/ses_gap?{query}").json()
    hidden_weeks = {r["week"] for r in by_q["rows"] if r["events"] is None}
    assert hidden_weeks
    for r in gap["rows"]:
        if r["week"] in hidden_weeks:
            assert r["rate_ratio_q5_q1"] is None


def test_filter_changes_the_data(client: TestClient) -> None:
    everyone = client.get("/api/panels/age_sex").json()["rows"]
    women = client.get("/api/panels/age_sex?sex=FEMALE").json()["rows"]
    assert {r["sex"] for r in everyone} == {"FEMALE", "MALE"}
    assert {r["sex"] for r in women} == {"FEMALE"}


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("region=Atlantis", 400, "region='Atlantis' is not known"),
        ("region=x'%20OR%201=1--", 400, "is not known"),
        ("sex=X", 400, "sex='X' is not known"),
        ("ses_quintile=9", 400, "ses_quintile='9' is not known"),
        ("code_group=nope", 400, "code_group='nope' is not known"),
        ("date_from=yesterday", 400, "expected a date as YYYY-MM-DD"),
        ("date_from=2022-05-01&date_to=2022-01-01", 400, "is after date_to"),
        ("colour=red", 400, "unknown filter 'colour'"),
    ],
)
def test_bad_filters_get_a_reason(
    client: TestClient, query: str, status: int, message: str
) -> None:
    response = client.get(f"/api/panels/age_sex?{query}")
    assert response.status_code == status
    assert message in response.json()["detail"]
    assert "Traceback" not in response.text
    assert "SELECT" not in response.text


def test_unknown_panel_is_not_found(client: TestClient) -> None:
    response = client.get("/api/panels/nope")
    assert response.status_code == 404
    assert "unknown panel 'nope'" in response.json()["detail"]


def test_period_without_data_is_empty_not_an_error(client: TestClient) -> None:
    response = client.get("/api/panels/national_weekly?date_from=2030-01-01&date_to=2030-03-01")
    assert response.status_code == 200
    assert response.json()["rows"] == []


def test_missing_model_is_a_clear_503(embedded_warehouse: EmbeddedWarehouse) -> None:
    app = create_app(embedded_warehouse, f"missing_{uuid.uuid4().hex[:6]}")
    response = TestClient(app).get("/api/panels/age_sex")
    assert response.status_code == 503
    assert "has no linkwatch model" in response.json()["detail"]


def test_openapi_describes_the_panels_api(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    params = {p["name"] for p in spec["paths"]["/api/panels/{name}"]["get"]["parameters"]}
    assert {"name", "date_from", "date_to", "region", "age_band", "sex", "ses_quintile"} <= params
    assert "/api/panels/{name}/csv" in spec["paths"]


def test_serve_command_documents_itself_and_rejects_bad_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from linkwatch.streams.cli import app

    runner = CliRunner()
    help_text = runner.invoke(app, ["serve", "--help"]).output
    assert "Example: linkwatch serve" in help_text
    monkeypatch.setenv("LINKWATCH_DASHBOARD_PORT", "99999")
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 1
    assert "LINKWATCH_DASHBOARD_PORT='99999': expected a TCP port number" in result.output
