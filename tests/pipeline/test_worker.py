"""`linkwatch worker` as an operator runs it: real Kafka, real chDB, a real process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

from linkwatch.deploy.kafka import KafkaBroker
from linkwatch.deploy.process import free_ports
from linkwatch.linkage.fellegi_sunter import train_model
from linkwatch.linkage.identity_csv import read_identity_files
from linkwatch.linkage.standardise import standardise
from linkwatch.schemas.events import IdentityPolicy
from linkwatch.schemas.pseudonymise import PseudonymDomain
from linkwatch.schemas.synth import SynthConfig, generate
from linkwatch.streams.publish import ProviderPublisher, publish_areas
from tests.pipeline.harness import LINKWATCH, TODAY, wait_for
from tests.pipeline.harness import metrics as harness_metrics


def warehouse_counts(path: Path) -> tuple[int, ...]:
    raw = "SELECT count(), uniqExact(event_id) FROM linkwatch.linked_events"
    weekly = "SELECT sum(events) FROM linkwatch.weekly_counts WHERE code_group = 'all'"
    code = (
        "from linkwatch.streams.warehouse import EmbeddedWarehouse\n"
        f"with EmbeddedWarehouse({str(path)!r}) as wh:\n"
        f"    raw = wh.query({raw!r}).rows[0]\n"
        f"    print(raw[0], raw[1], wh.query({weekly!r}).scalar())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return tuple(int(x) for x in out.stdout.split())


@pytest.mark.integration
def test_the_worker_loads_every_event_once_and_recovers_its_linker(
    fresh_kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    data = generate(SynthConfig(persons=400, years=1, seed=21))
    paths = {}
    for source, table in data.extracts.items():
        paths[source] = tmp_path / f"{source}.csv"
        pacsv.write_csv(table, paths[source])
    identity = []
    for source, table in data.identity_files.items():
        identity.append(tmp_path / f"{source}.identity.csv")
        pacsv.write_csv(table, identity[-1])
    model_path = tmp_path / "model.json"
    train_model([standardise(r) for r in read_identity_files(identity)]).save(model_path)
    areas = tmp_path / "areas.csv"
    pacsv.write_csv(data.areas, areas)

    bootstrap = fresh_kafka_broker.bootstrap_servers
    policy = IdentityPolicy(
        domain=PseudonymDomain("nl-ehr", "1", b"secret-0123456789abcdef"), clear_names=True
    )
    publish_areas(bootstrap, areas)
    publisher = ProviderPublisher(bootstrap, policy)
    published = sum(publisher.publish_file(p, s, today=TODAY).published for s, p in paths.items())
    publisher.close()

    (port,) = free_ports(1)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "LINKWATCH_WAREHOUSE_DIR": str(tmp_path / "warehouse"),
        "LINKWATCH_STATE_DIR": str(tmp_path / "state"),
        "LINKWATCH_SNAPSHOT_EVERY": "300",
        "LINKWATCH_ALERTING_INTERVAL": "5",
        "LINKWATCH_LINKAGE_MODEL": str(model_path),
        "LINKWATCH_WORKER_PORT": str(port),
        "LINKWATCH_BATCH_WAIT": "0.2",
    }
    env.pop("CLICKHOUSE_URL", None)
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([LINKWATCH, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        first = wait_for(port, lambda s: s["processed"] >= published, proc)
        assert first["processed"] == published
        assert first["dead_lettered"] == 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            metrics = response.read().decode()
        total = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("linkwatch_events_total{")
        )
        assert total == published
        # Consumer lag per provider partition, measured every few seconds: none once drained.
        lags: list[float] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            lags = [
                float(line.rsplit(" ", 1)[1])
                for line in harness_metrics(port).splitlines()
                if line.startswith("linkwatch_consumer_lag{")
            ]
            if len(lags) == 12 and sum(lags) == 0:
                break
            time.sleep(1)
        assert len(lags) == 12  # 3 provider topics x 4 partitions
        assert sum(lags) == 0
        # The detectors ran over the loaded weeks.
        cycles: list[float] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (cycles and cycles[0] > 0):
            time.sleep(1)
            cycles = [
                float(line.rsplit(" ", 1)[1])
                for line in harness_metrics(port).splitlines()
                if line.startswith("linkwatch_alerting_last_cycle_timestamp_seconds ")
            ]
        assert cycles
        assert cycles[0] > 0
        # `stack status` reports the warehouse the worker holds, with the engine's version.
        stack = subprocess.run(
            [LINKWATCH, "stack", "status", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        rows = {r["name"]: r for r in json.loads(stack.stdout)}
        assert rows["warehouse"]["state"] == "busy"
        assert rows["warehouse"]["pid"] == proc.pid
        assert rows["warehouse"]["version"] == first["warehouse"]["version"] != ""
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert warehouse_counts(tmp_path / "warehouse") == (published, published, published)

    # Restarted, it rebuilds the linker from its snapshot and the log's tail, then from the
    # whole log when the snapshot is unusable, and loads nothing twice.
    snapshot = tmp_path / "state" / "worker" / "linker.snapshot"
    assert snapshot.exists()
    for damage in (False, True):
        if damage:
            snapshot.write_bytes(snapshot.read_bytes()[:1000])
        proc = subprocess.Popen(
            [LINKWATCH, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            again = wait_for(port, lambda s: s["ready"], proc)
            assert again["indexed_identities"] == published
            assert again["linker_log_position"] == published
            assert again["processed"] == 0
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    log.close()
    text = (tmp_path / "worker.log").read_text()
    from_snapshot = [int(n) for n in re.findall(r"\((\d+) from a snapshot", text)]
    assert from_snapshot[0] == 0  # the first start had none
    assert from_snapshot[1] >= published - 300  # the restart replayed only the log's tail
    assert from_snapshot[2] == 0  # the damaged snapshot was not used ...
    assert "not used" in text  # ... and the log says so
    assert warehouse_counts(tmp_path / "warehouse") == (published, published, published)
