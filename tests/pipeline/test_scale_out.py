"""Scale-out: two workers share the load and give the warehouse one worker gives.

The same synthetic population goes through two deployments, each on a broker of its
own: one worker alone (the embedded warehouse), and two workers with a shared load on
the ClickHouse server. In the second, both workers load their share of the linked
topic while one links; the linking worker is SIGKILLed halfway and the other takes
the linker over and goes on. The two warehouses must hold the same events with the
same fields, the same pre-aggregates (each equal to a recount of its raw rows), and
the same persons.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from linkwatch.deploy.clickhouse_server import ClickHouseServer
from linkwatch.deploy.kafka import KafkaBroker
from linkwatch.deploy.process import free_ports
from linkwatch.streams import topics
from linkwatch.streams.deadletter import read_dead_letters
from linkwatch.streams.kafka_clients import make_producer
from linkwatch.streams.publish import publish_areas
from linkwatch.streams.shared_sink import LOADER_GROUP
from linkwatch.streams.stack import Stack
from linkwatch.streams.warehouse import ServerWarehouse
from tests.conftest import make_settings
from tests.pipeline.harness import (
    World,
    make_world,
    metrics,
    provider_lag,
    snapshot_of,
    start_worker,
    status,
    wait_drained,
    wait_for,
    warehouse_snapshot,
    worker_env,
)
from tests.pipeline.test_failures import publish_in_background

pytestmark = pytest.mark.integration
DATABASE = "scale_out"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """About 30,000 events from three providers over two years."""
    return make_world(tmp_path_factory.mktemp("world"), persons=4_000, years=2, seed=37)


def one_worker(world: World, root: Path) -> dict[str, Any]:
    """The warehouse one worker gives, on a broker of its own."""
    broker = Stack(make_settings(root)).kafka
    broker.start()
    try:
        bootstrap = broker.bootstrap_servers
        topics.ensure_topics(bootstrap)
        publish_areas(bootstrap, world.areas)
        publishing, _ = publish_in_background(bootstrap, world)
        publishing.join(600)
        env, port = worker_env(bootstrap, world, root)
        proc = start_worker(env, root / "worker.log")
        try:
            wait_drained(bootstrap, port, proc)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    finally:
        broker.stop()
    return warehouse_snapshot(root / "warehouse")


def wait_loaded(bootstrap: str, procs: list[Any], timeout: float = 600) -> None:
    """Until the loaders have committed all of the linked topic."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), "a worker exited"
        if provider_lag(bootstrap, LOADER_GROUP, (topics.LINKED,)) == 0:
            return
        time.sleep(1)
    raise AssertionError("the linked topic was not loaded in time")


def clusters(persons: dict[str, str]) -> set[tuple[str, str]]:
    """The pairs of events that belong to one person."""
    members: dict[str, list[str]] = defaultdict(list)
    for event_id, person in persons.items():
        members[person].append(event_id)
    return {pair for ids in members.values() for pair in combinations(sorted(ids), 2)}


def test_two_workers_share_the_load_and_give_what_one_worker_gives(
    fresh_kafka_broker: KafkaBroker,
    clickhouse_server: ClickHouseServer,
    world: World,
    tmp_path: Path,
) -> None:
    alone = one_worker(world, tmp_path / "alone")

    bootstrap = fresh_kafka_broker.bootstrap_servers
    topics.ensure_topics(bootstrap)
    publish_areas(bootstrap, world.areas)
    with ServerWarehouse(clickhouse_server.url) as wh:
        wh.command(f"DROP DATABASE IF EXISTS {DATABASE}")
    root = tmp_path / "shared"
    env_a, port_a = worker_env(bootstrap, world, root)
    env_a.update(
        CLICKHOUSE_URL=clickhouse_server.url,
        LINKWATCH_DATABASE=DATABASE,
        LINKWATCH_SHARED_SINK="true",
    )
    port_b = free_ports(1)[0]
    env_b = {**env_a, "LINKWATCH_WORKER_PORT": str(port_b)}
    first = start_worker(env_a, tmp_path / "worker-a.log")
    second = None
    try:
        wait_for(port_a, lambda s: s["ready"], first, timeout=120)
        second = start_worker(env_b, tmp_path / "worker-b.log")
        # The second stands by as the linker and loads half of the linked partitions.
        joined = wait_for(port_b, lambda s: len(s["loading_partitions"] or []) == 2, second)
        assert joined["role"] == "standby"
        wait_for(port_a, lambda s: len(s["loading_partitions"] or []) == 2, first)
        publishing, published = publish_in_background(bootstrap, world)
        wait_for(port_a, lambda s: s["processed"] >= 12_000, first, timeout=300)
        before = {"a": status(port_a), "b": status(port_b)}
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        publishing.join(600)
        assert not publishing.is_alive()
        taken = wait_for(port_b, lambda s: s["ready"], second, timeout=180)
        wait_drained(bootstrap, port_b, second)
        wait_loaded(bootstrap, [second])
        # Messages on the linked topic that are not rows go to the dead-letter topic.
        producer = make_producer(bootstrap)
        for partition, junk in enumerate((b"not a row", b'{"event_id": "x"}')):
            producer.produce(topics.LINKED.name, value=junk, partition=partition)
        assert producer.flush(30) == 0
        wait_loaded(bootstrap, [second])
        exported = metrics(port_b)
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
    print(json.dumps({"before_kill": before, "taken_over": taken}, default=str))
    # Both loaded part of the events while the first linked them all.
    assert before["a"]["loaded"] > 0
    assert before["b"]["loaded"] > 0
    assert before["b"]["processed"] == 0
    assert taken["role"] == "active"
    assert "this worker is the active linker" in (tmp_path / "worker-b.log").read_text()
    # Its loads are measured from the providers' publish time, and its linked lag exported.
    count = "linkwatch_end_to_end_seconds_count"
    latency = next(line for line in exported.splitlines() if line.startswith(count))
    assert float(latency.split()[-1]) > 0
    lag = r'linkwatch_consumer_lag\{partition="\d",topic="linkwatch.linked.v1"\}'
    assert re.search(lag, exported)

    refused = [d for d in read_dead_letters(bootstrap) if d.reason_code == "bad_linked_row"]
    assert sorted(d.original for d in refused) == [b"not a row", b'{"event_id": "x"}']
    assert all(d.source_topic == topics.LINKED.name for d in refused)
    assert all(d.source_offset is not None for d in refused)
    assert 'linkwatch_dead_letters_total{reason="bad_linked_row"} 2.0' in exported

    with ServerWarehouse(clickhouse_server.url) as wh:
        shared = json.loads(json.dumps(snapshot_of(wh, DATABASE), default=str))
    total = sum(published)
    assert (shared["count"], shared["distinct"]) == (total, total)
    assert (alone["count"], alone["distinct"]) == (total, total)
    for table in ("weekly_counts", "daily_counts"):
        assert shared[table] == shared[table + "_recount"], f"{table} differs from a recount"
        assert shared[table] == alone[table], f"{table} differs from one worker's"
    assert shared["event_fields"] == alone["event_fields"]
    # Persons: each event's person (following merges) groups the events as one worker does.
    pairs_shared, pairs_alone = clusters(shared["persons"]), clusters(alone["persons"])
    agreement = len(pairs_shared & pairs_alone) / max(1, len(pairs_shared | pairs_alone))
    print(f"pairs of events of one person: {len(pairs_alone)}; agreement {agreement:.5f}")
    assert agreement >= 0.995
