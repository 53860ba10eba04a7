"""The dashboard as an analyst sees it, served by a worker over what the pipeline loaded.

Synthetic providers publish to a real broker, `linkwatch worker --dashboard-port` links and
loads the events into its embedded warehouse and serves the dashboard, and headless Chromium
looks at it: no console errors, the panels drawn from the pipeline's data, a filter that
changes the charts, small numbers suppressed, and the freshness panel counting every event.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from linkwatch.dashboards.panels import PANELS
from linkwatch.deploy.kafka import KafkaBroker
from linkwatch.deploy.process import free_ports
from linkwatch.streams.publish import ProviderPublisher, publish_areas
from tests.browser import CHROMIUM, watch_console
from tests.pipeline.harness import (
    LINKWATCH,
    POLICY,
    TODAY,
    make_world,
    wait_for,
    worker_env,
)

# Panels that need a signal in the data (a Long COVID case, an open alert) may be empty for a
# small population; they must then say so rather than fail.
MAY_BE_EMPTY = {"long_covid_weekly", "alerts_open"}


def scored_weeks(port: int) -> list[dict[str, Any]]:
    """National weekly rows with the detectors' expected value, from the dashboard's API."""
    url = f"http://127.0.0.1:{port}/api/panels/national_weekly?code_group=all"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            rows = json.loads(response.read())["rows"]
    except OSError:
        return []
    return [r for r in rows if r["expected_per_100k"] and r["rate_per_100k"] is not None]


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian chromium is not installed")
@pytest.mark.integration
def test_the_dashboard_shows_what_the_pipeline_loaded(
    fresh_kafka_broker: KafkaBroker, tmp_path: Path, artifacts_dir: Path
) -> None:
    from playwright.sync_api import sync_playwright

    world = make_world(tmp_path / "world", persons=3000, years=2, seed=8)
    bootstrap = fresh_kafka_broker.bootstrap_servers
    publish_areas(bootstrap, world.areas)
    publisher = ProviderPublisher(bootstrap, POLICY)
    published = sum(
        publisher.publish_file(path, source, today=TODAY).published
        for source, path in world.extracts.items()
    )
    publisher.close()
    env, port = worker_env(bootstrap, world, tmp_path)
    env["LINKWATCH_ALERTING_INTERVAL"] = "5"
    (dashboard_port,) = free_ports(1)
    with open(tmp_path / "worker.log", "wb") as log:
        proc = subprocess.Popen(
            [LINKWATCH, "worker", "--dashboard-port", str(dashboard_port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    problems: list[str] = []
    try:
        wait_for(port, lambda s: s.get("processed", 0) >= published, proc, timeout=300)
        # The detectors have scored the loaded weeks (once the backlog was worked through),
        # and their expected band follows the national series it was computed from.
        deadline = time.monotonic() + 180
        while not (weekly := scored_weeks(dashboard_port)):
            assert time.monotonic() < deadline, "no detector results within 180 s"
            time.sleep(2)
        ratios = sorted(r["rate_per_100k"] / r["expected_per_100k"] for r in weekly)
        assert len(ratios) >= 40
        assert 0.8 <= ratios[len(ratios) // 2] <= 1.25, ratios
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                watch_console(page, problems)
                page.set_default_timeout(20_000)
                page.goto(f"http://127.0.0.1:{dashboard_port}/")
                page.wait_for_function(
                    "document.body.dataset.refreshed !== undefined", timeout=60_000
                )
                assert page.locator("#error").is_hidden()
                for p in PANELS:
                    card = page.locator(f"#panel-{p.name}")
                    assert card.get_attribute("data-loaded") == "true", p.name
                    rows = int(card.get_attribute("data-rows") or "0")
                    if rows == 0:
                        assert p.name in MAY_BE_EMPTY, f"{p.name} shows no data"
                        assert "No data" in card.inner_text(), p.name
                    elif p.chart not in ("table", "stat"):
                        assert card.locator(".chart .main-svg").count() > 0, p.name
                page.screenshot(
                    path=str(artifacts_dir / "dashboard-from-pipeline.png"), full_page=True
                )

                # Every event the pipeline loaded is counted by the freshness panel.
                total = page.locator("#panel-freshness .stat b").first.inner_text()
                assert int(total.replace(",", "")) == published

                # Small numbers of a population of 3,000 are suppressed, not shown.
                region = page.locator("#panel-region_weekly")
                assert int(region.get_attribute("data-hidden") or "0") > 0

                # A filter redraws the charts with the filtered data.
                age_sex = page.locator("#panel-age_sex")
                before = page.evaluate("document.body.dataset.refreshed")
                page.select_option("select[name=sex]", "FEMALE")
                page.wait_for_function(
                    f"document.body.dataset.refreshed !== '{before}'", timeout=30_000
                )
                traces = age_sex.locator(".chart").evaluate("div => div.data.map(t => t.name)")
                assert traces == ["Female"]
                page.screenshot(
                    path=str(artifacts_dir / "dashboard-from-pipeline-women.png"), full_page=True
                )
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(60)
    assert problems == []
