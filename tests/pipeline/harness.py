"""Running ``linkwatch worker`` as an operator does, and looking at what it left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
from confluent_kafka import Consumer, KafkaException, TopicPartition

from linkwatch.deploy.process import free_ports
from linkwatch.linkage.fellegi_sunter import train_model
from linkwatch.linkage.identity_csv import read_identity_files
from linkwatch.linkage.standardise import standardise
from linkwatch.schemas.events import IdentityPolicy
from linkwatch.schemas.pseudonymise import PseudonymDomain
from linkwatch.schemas.synth import SynthConfig, generate
from linkwatch.streams import topics
from linkwatch.streams.warehouse import Warehouse
from linkwatch.streams.worker import WORKER_GROUP

LINKWATCH = str(Path(sys.executable).parent / "linkwatch")
TODAY = date(2030, 1, 1)
POLICY = IdentityPolicy(
    domain=PseudonymDomain("nl-ehr", "1", b"secret-0123456789abcdef"), clear_names=True
)


@dataclass(frozen=True)
class World:
    """A synthetic population's provider extracts, areas and a linkage model trained on it."""

    extracts: dict[str, Path]
    areas: Path
    model: Path


def make_world(root: Path, persons: int, years: int = 1, seed: int = 21) -> World:
    data = generate(SynthConfig(persons=persons, years=years, seed=seed))
    root.mkdir(parents=True, exist_ok=True)
    extracts = {}
    for source, table in data.extracts.items():
        extracts[source] = root / f"{source}.csv"
        pacsv.write_csv(table, extracts[source])
    identity = []
    for source, table in data.identity_files.items():
        identity.append(root / f"{source}.identity.csv")
        pacsv.write_csv(table, identity[-1])
    model = root / "model.json"
    train_model([standardise(r) for r in read_identity_files(identity)]).save(model)
    areas = root / "areas.csv"
    pacsv.write_csv(data.areas, areas)
    return World(extracts, areas, model)


def worker_env(bootstrap: str, world: World, root: Path) -> tuple[dict[str, str], int]:
    (port,) = free_ports(1)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "LINKWATCH_WAREHOUSE_DIR": str(root / "warehouse"),
        "LINKWATCH_STATE_DIR": str(root / "state"),
        "LINKWATCH_LINKAGE_MODEL": str(world.model),
        "LINKWATCH_WORKER_PORT": str(port),
        "LINKWATCH_BATCH_WAIT": "0.2",
    }
    env.pop("CLICKHOUSE_URL", None)
    return env, port


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [LINKWATCH, "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def status(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as response:
            return dict(json.loads(response.read()))
    except OSError:
        return {}


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def wait_for(
    port: int, done: Any, proc: subprocess.Popen[bytes], timeout: float = 240
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the worker exited with {proc.returncode}"
        current = status(port)
        if current and done(current):
            return current
        time.sleep(0.25)
    raise AssertionError(f"worker did not get there in {timeout} s: {status(port)}")


def provider_lag(
    bootstrap: str,
    group: str = WORKER_GROUP,
    specs: tuple[topics.TopicSpec, ...] = topics.PROVIDER_TOPICS,
) -> int:
    """Messages of ``specs`` (the provider topics) ``group`` has not committed yet (-1: unknown)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        parts = [TopicPartition(t.name, p) for t in specs for p in range(t.partitions)]
        try:
            committed = consumer.committed(parts, timeout=10)
            lag = 0
            for tp in committed:
                _, high = consumer.get_watermark_offsets(tp, timeout=10)
                lag += high - max(tp.offset, 0)
        except KafkaException:  # the group coordinator is loading or moving: ask again later
            return -1
        return lag
    finally:
        consumer.close()


def wait_drained(
    bootstrap: str, port: int, proc: subprocess.Popen[bytes], timeout: float = 600
) -> None:
    """Until the worker has committed every provider message (and is still running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the worker exited with {proc.returncode}"
        lag = provider_lag(bootstrap)
        if lag == 0:
            return
        time.sleep(1)
    raise AssertionError(f"backlog not drained in {timeout} s: lag {provider_lag(bootstrap)}")


def snapshot_of(wh: Warehouse, db: str = "linkwatch") -> dict[str, Any]:
    """Counts, pre-aggregates with their recount from raw rows, and each event's person.

    Plain SQL that a ClickHouse 18.16 server answers too; merges are followed in Python.
    """
    keys = "code_group, source, region, age_band, sex, ses_quintile"
    groups = "arrayJoin(arrayConcat(['all'], arrayDistinct(CAST(code_groups, 'Array(String)'))))"

    def q(sql: str) -> list[list[Any]]:
        return [list(r) for r in wh.query(sql).rows]

    out: dict[str, Any] = {}
    [[out["count"], out["distinct"]]] = q(
        f"SELECT count(), uniqExact(event_id) FROM {db}.linked_events"
    )
    for table, day, view_day in (
        ("weekly_counts", "iso_week", "week"),
        ("daily_counts", "event_date", "day"),
    ):
        out[table] = sorted(
            q(
                f"SELECT toString({view_day}) AS d, {keys}, sum(events) AS n FROM {db}.{table} "
                f"GROUP BY d, {keys} HAVING n > 0"
            )
        )
        out[table + "_recount"] = sorted(
            q(
                f"SELECT toString({day}) AS d, {groups} AS code_group, source, region, "
                f"age_band, sex, ses_quintile, count() FROM {db}.linked_events GROUP BY d, {keys}"
            )
        )
    canonical = dict(
        q(
            f"SELECT person_id, argMax(canonical_person_id, version) "
            f"FROM {db}.person_merges GROUP BY person_id"
        )
    )
    out["event_fields"] = {
        event_id: fields
        for event_id, *fields in q(
            "SELECT event_id, source, provider_id, toUnixTimestamp(event_time), "
            f"age_band, sex, pc4, region, ses_quintile, codes FROM {db}.linked_events"
        )
    }
    out["persons"] = {
        event_id: canonical.get(person, person)
        for event_id, person in q(f"SELECT event_id, person_id FROM {db}.linked_events")
    }
    return out


_SNAPSHOT = """
import json, sys
from linkwatch.streams.warehouse import EmbeddedWarehouse
from tests.pipeline.harness import snapshot_of
with EmbeddedWarehouse(sys.argv[1]) as wh:
    print(json.dumps(snapshot_of(wh), default=str))
"""


def warehouse_snapshot(path: Path) -> dict[str, Any]:
    """Counts, pre-aggregates with their recount from raw rows, and each event's person."""
    out = subprocess.run(
        [sys.executable, "-c", _SNAPSHOT, str(path)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))
