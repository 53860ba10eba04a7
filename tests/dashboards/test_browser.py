"""The dashboard in headless Chromium, served over a sample warehouse by uvicorn."""

from __future__ import annotations

import csv
import io
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from linkwatch.dashboards.model import create_model
from linkwatch.dashboards.panels import PANELS
from linkwatch.dashboards.sample_data import load_sample, sample_events
from linkwatch.dashboards.web import create_app
from linkwatch.streams.warehouse import EmbeddedWarehouse
from tests.browser import CHROMIUM, watch_console

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="Debian chromium is not installed (/usr/bin/chromium)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def sample_database(embedded_warehouse: EmbeddedWarehouse) -> Iterator[str]:
    database = f"web_{uuid.uuid4().hex[:8]}"
    create_model(embedded_warehouse, database)
    load_sample(embedded_warehouse, database)
    yield database
    embedded_warehouse.command(f"DROP DATABASE IF EXISTS {database}")


@pytest.fixture(scope="module")
def dashboard_url(embedded_warehouse: EmbeddedWarehouse, sample_database: str) -> Iterator[str]:
    import uvicorn

    port = free_port()
    app = create_app(embedded_warehouse, sample_database, refresh_seconds=10)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the dashboard server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_dashboard_renders_filters_exports_and_suppresses(
    dashboard_url: str,
    artifacts_dir: Path,
    embedded_warehouse: EmbeddedWarehouse,
    sample_database: str,
) -> None:
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            watch_console(page, problems)
            page.set_default_timeout(15_000)
            page.goto(dashboard_url + "/")
            page.wait_for_function("document.body.dataset.refreshed !== undefined", timeout=30_000)

            # Every panel drew something from data.
            for p in PANELS:
                card = page.locator(f"#panel-{p.name}")
                assert card.get_attribute("data-loaded") == "true", p.name
                assert int(card.get_attribute("data-rows") or "0") > 0, p.name
                if p.chart not in ("table", "stat"):
                    assert card.locator(".chart .main-svg").count() > 0, f"{p.name} has no chart"
            assert page.locator("#error").is_hidden()
            page.screenshot(path=str(artifacts_dir / "dashboard-overview.png"), full_page=True)

            # Small provinces show as suppressed in the chart titles and in the data table.
            region = page.locator("#panel-region_weekly")
            assert "Zeeland (" in region.locator(".chart").inner_text()
            # A province with every week suppressed says so instead of showing empty axes.
            assert "every week <10: suppressed" in region.locator(".chart").inner_text()
            assert int(region.get_attribute("data-hidden") or "0") > 0
            region.locator("details summary").click()
            suppressed = region.locator("td.suppressed")
            assert suppressed.count() > 0
            assert suppressed.first.inner_text() == "<10"
            region.screenshot(path=str(artifacts_dir / "dashboard-suppressed-province.png"))

            # A filter changes the data: only women in the age band x sex panel.
            before = page.evaluate("document.body.dataset.refreshed")
            age_sex = page.locator("#panel-age_sex")
            assert age_sex.get_attribute("data-rows") == "10"
            page.select_option("select[name=sex]", "FEMALE")
            page.wait_for_function(
                f"document.body.dataset.refreshed !== '{before}'", timeout=30_000
            )
            assert age_sex.get_attribute("data-rows") == "5"
            # The chart itself was redrawn with the filtered data (Plotly keeps it on the div).
            traces = age_sex.locator(".chart").evaluate("div => div.data.map(t => t.name)")
            assert traces == ["Female"]

            # A filter that leaves a province to itself shows its suppressed cells.
            page.select_option("select[name=region]", "Zeeland")
            page.wait_for_function(
                "document.querySelector('#panel-region_weekly').dataset.rows !== undefined "
                "&& document.querySelector('select[name=region]').value === 'Zeeland'"
            )
            page.wait_for_timeout(500)
            page.screenshot(path=str(artifacts_dir / "dashboard-filtered.png"), full_page=True)

            # CSV export of a panel, with the filters applied and small numbers suppressed.
            with page.expect_download() as download_info:
                region.locator("a.csv").click()
            download = download_info.value
            target = artifacts_dir / "region_weekly-zeeland.csv"
            download.save_as(target)
            rows = list(csv.DictReader(io.StringIO(target.read_text())))
            assert rows
            assert {r["region"] for r in rows} == {"Zeeland"}
            assert {r["events"] for r in rows} == {"<10"}

            # New events committed to the warehouse appear without a reload (auto-refresh).
            freshness = page.locator("#panel-freshness")
            before_total = freshness.locator(".stat b").first.inner_text()
            batch = sample_events(seed=99, weeks=1)
            embedded_warehouse.insert(f"{sample_database}.linked_events", batch)
            expected_total = int(before_total) + len(batch["event_id"])
            page.wait_for_function(
                "document.querySelector('#panel-freshness .stat b').textContent === "
                f"'{expected_total}'",
                timeout=15_000,  # one refresh period (10 s) and the queries
            )
        finally:
            browser.close()
    assert problems == []
