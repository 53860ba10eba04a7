"""Failures that must lose nothing: the real worker process, the real broker, real chDB.

Each test streams a synthetic population through ``linkwatch worker`` while something
breaks — the worker is SIGKILLed at random moments, the broker is SIGKILLed and
restarted, malformed messages are mixed in — and then checks the warehouse: every
accepted event exactly once, every pre-aggregate equal to a recount from the raw rows,
every event's person (following merges) equal to the person a linker rebuilt from the
recovery log gives it, and every malformed message in the dead-letter topic.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from linkwatch.deploy.clickhouse_server import ClickHouseServer
from linkwatch.deploy.kafka import KafkaBroker
from linkwatch.deploy.process import free_ports
from linkwatch.linkage.fellegi_sunter import FellegiSunterModel
from linkwatch.schemas.events import to_event
from linkwatch.schemas.registry import SchemaRegistry
from linkwatch.schemas.validation import validate_file
from linkwatch.streams import topics
from linkwatch.streams.deadletter import read_dead_letters
from linkwatch.streams.kafka_clients import make_producer, read_topic
from linkwatch.streams.linker import StreamLinker, record_from_log
from linkwatch.streams.publish import SOURCE_TOPICS, ProviderPublisher, publish_areas
from linkwatch.streams.warehouse import ServerWarehouse
from tests.pipeline.harness import (
    POLICY,
    TODAY,
    World,
    make_world,
    snapshot_of,
    start_worker,
    status,
    wait_drained,
    wait_for,
    warehouse_snapshot,
    worker_env,
)

pytestmark = pytest.mark.integration
SEED = int(os.environ.get("LINKWATCH_CHAOS_SEED", "20261122"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """About 100,000 events from three providers over two years."""
    return make_world(tmp_path_factory.mktemp("world"), persons=12_800, years=2, seed=31)


def share_of(world: World, root: Path, parts: int) -> World:
    """The first 1/``parts`` of each provider's extract, with the world's areas and model."""
    extracts = {}
    for source, path in world.extracts.items():
        lines = path.read_text().splitlines(keepends=True)
        extracts[source] = root / f"{source}.csv"
        extracts[source].write_text("".join(lines[: 1 + len(lines) // parts]))
    return World(extracts, world.areas, world.model)


def publish_in_background(bootstrap: str, world: World) -> tuple[threading.Thread, list[int]]:
    published: list[int] = []

    def run() -> None:
        publisher = ProviderPublisher(bootstrap, POLICY)
        try:
            for source, path in world.extracts.items():
                published.append(publisher.publish_file(path, source, today=TODAY).published)
        finally:
            publisher.close()

    thread = threading.Thread(target=run, name="providers")
    thread.start()
    return thread, published


def check_warehouse(root: Path, bootstrap: str, world: World, expected: int) -> dict[str, Any]:
    """Exactly once, aggregates = recount, persons = the recovered linker's."""
    snap = warehouse_snapshot(root / "warehouse")
    assert (snap["count"], snap["distinct"]) == (expected, expected)
    for table in ("weekly_counts", "daily_counts"):
        assert snap[table] == snap[table + "_recount"], f"{table} differs from a recount"

    log = [v for _, v in read_topic(bootstrap, topics.LINKER_LOG.name) if v]
    ids = [record_from_log(entry).record_id for entry in log]
    assert len(ids) == len(set(ids)) == expected, "the linker log holds each identity once"
    linker = StreamLinker(FellegiSunterModel.load(world.model))
    linker.restore(log)
    persons = linker.engine.person_ids()
    recovered = {event_id: persons[row] for row, event_id in enumerate(ids)}
    assert snap["persons"] == recovered
    return snap


def test_sigkill_of_the_worker_at_random_moments_loses_and_duplicates_nothing(
    fresh_kafka_broker: KafkaBroker, world: World, tmp_path: Path
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap_servers
    topics.ensure_topics(bootstrap)
    publish_areas(bootstrap, world.areas)
    env, port = worker_env(bootstrap, world, tmp_path)
    log = tmp_path / "worker.log"
    rng = random.Random(SEED)
    publishing, published = publish_in_background(bootstrap, world)
    kills = []
    try:
        for _ in range(3):
            proc = start_worker(env, log)
            target = rng.randint(1_000, 12_000)
            wait_for(port, lambda s, t=target: s["processed"] >= t, proc, timeout=300)
            time.sleep(rng.uniform(0.0, 1.0))
            kills.append(status(port).get("processed"))
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        proc = start_worker(env, log)
        publishing.join(600)
        assert not publishing.is_alive()
        wait_drained(bootstrap, port, proc)
        final = status(port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        publishing.join(600)
    total = sum(published)
    assert total > 90_000
    assert len(kills) == 3
    assert final["indexed_identities"] == total
    check_warehouse(tmp_path, bootstrap, world, total)


def test_a_broker_sigkill_and_restart_mid_stream_loses_nothing(
    fresh_kafka_broker: KafkaBroker, world: World, tmp_path: Path
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap_servers
    topics.ensure_topics(bootstrap)
    publish_areas(bootstrap, world.areas)
    part = share_of(world, tmp_path, 4)
    env, port = worker_env(bootstrap, part, tmp_path)
    log = tmp_path / "worker.log"
    publishing, published = publish_in_background(bootstrap, part)
    proc = start_worker(env, log)
    restarts = 0
    try:
        wait_for(port, lambda s: s["processed"] >= 3_000, proc, timeout=300)
        fresh_kafka_broker.kill()
        time.sleep(2)
        assert fresh_kafka_broker.start()
        publishing.join(600)
        assert not publishing.is_alive()
        # An operator's supervisor restarts a worker that gave up while the broker was away.
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                restarts += 1
                proc = start_worker(env, log)
            try:
                wait_drained(bootstrap, port, proc, timeout=30)
                break
            except AssertionError:
                assert time.monotonic() < deadline, "the backlog did not drain"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        publishing.join(600)
    assert restarts <= 1
    check_warehouse(tmp_path, bootstrap, part, sum(published))


def malformed_messages(
    world: World, count: int, rng: random.Random
) -> list[tuple[str, bytes, str]]:
    """(topic, value, kind): random bytes, truncated Avro, wrong schema, impossible dates."""
    registry = SchemaRegistry.shipped()
    samples: list[tuple[str, dict[str, Any]]] = []
    for source, path in world.extracts.items():
        for n, result in enumerate(validate_file(path, source, today=TODAY)):
            if n >= 50:
                break
            samples.append((source, to_event(source, result.values or {}, POLICY)))
    out = []
    kinds = ("random_bytes", "truncated", "wrong_schema", "impossible_date")
    for i in range(count):
        kind = kinds[i % len(kinds)]
        source, event = samples[rng.randrange(len(samples))]
        topic = SOURCE_TOPICS[source]
        event = {**event, "event_id": f"bad-{i}"}
        if kind == "random_bytes":
            value = rng.randbytes(rng.randint(1, 200))
        elif kind == "truncated":
            whole = registry.encode(event, source)
            value = whole[: rng.randint(1, len(whole) - 1)]
        elif kind == "wrong_schema":
            other = next(s for s in SOURCE_TOPICS if s != source)
            other_event = next(e for s, e in samples if s == other)
            value = registry.encode({**other_event, "event_id": f"bad-{i}"}, other)
        else:
            year = rng.choice((1850, 1901, 2200))
            value = registry.encode(
                {**event, "event_time": event["event_time"].replace(year=year)}, source
            )
        out.append((topic, value, kind))
    return out


def test_ten_thousand_malformed_messages_go_to_the_dead_letter_topic_and_good_events_load(
    fresh_kafka_broker: KafkaBroker, world: World, tmp_path: Path
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap_servers
    topics.ensure_topics(bootstrap)
    publish_areas(bootstrap, world.areas)
    rng = random.Random(SEED)
    bad = malformed_messages(world, 10_000, rng)
    part = share_of(world, tmp_path, 5)
    publishing, published = publish_in_background(bootstrap, part)
    producer = make_producer(bootstrap)
    for n, (topic, value, _) in enumerate(bad):
        producer.produce(topic, key=f"bad-{n}".encode(), value=value)
        if n % 500 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    publishing.join(600)
    env, port = worker_env(bootstrap, part, tmp_path)
    proc = start_worker(env, tmp_path / "worker.log")
    try:
        wait_drained(bootstrap, port, proc)
        final = status(port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    good = sum(published)
    assert final["dead_lettered"] == len(bad)
    letters = list(read_dead_letters(bootstrap))
    from_providers = [
        d for d in letters if d.source_topic in SOURCE_TOPICS.values() and d.stage == "ingest"
    ]
    assert len(from_providers) == len(bad)
    assert all(d.reason for d in from_providers)
    reasons = Counter(d.reason_code for d in from_providers)
    assert set(reasons) >= {"undecodable"}, reasons
    by_value = {d.original for d in from_providers}
    assert all(value in by_value for _, value, _ in bad), "every malformed message, byte for byte"
    snap = warehouse_snapshot(tmp_path / "warehouse")
    assert (snap["count"], snap["distinct"]) == (good, good)
    print(json.dumps(reasons))


def test_a_standby_worker_takes_over_when_the_active_one_dies(
    fresh_kafka_broker: KafkaBroker, world: World, tmp_path: Path
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap_servers
    topics.ensure_topics(bootstrap)
    publish_areas(bootstrap, world.areas)
    part = share_of(world, tmp_path, 5)
    env_a, port_a = worker_env(bootstrap, part, tmp_path)
    env_b = {**env_a, "LINKWATCH_WORKER_PORT": str(free_ports(1)[0])}
    port_b = int(env_b["LINKWATCH_WORKER_PORT"])
    active = start_worker(env_a, tmp_path / "worker-a.log")
    standby = None
    try:
        wait_for(port_a, lambda s: s["ready"], active, timeout=120)
        standby = start_worker(env_b, tmp_path / "worker-b.log")
        deadline = time.monotonic() + 60
        while "standby" not in (tmp_path / "worker-b.log").read_text():
            assert time.monotonic() < deadline, "the second worker did not stand by"
            assert standby.poll() is None
            time.sleep(0.5)
        assert status(port_b) == {}  # a standby holds nothing and serves nothing
        publishing, published = publish_in_background(bootstrap, part)
        wait_for(port_a, lambda s: s["processed"] >= 4_000, active, timeout=300)
        active.send_signal(signal.SIGKILL)
        active.wait(30)
        publishing.join(600)
        assert not publishing.is_alive()
        taken = wait_for(port_b, lambda s: s["ready"], standby, timeout=180)
        wait_drained(bootstrap, port_b, standby)
        standby.send_signal(signal.SIGTERM)
        assert standby.wait(60) == 0
    finally:
        for proc in (active, standby):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert taken["indexed_identities"] >= 4_000
    assert "this worker is the active linker" in (tmp_path / "worker-b.log").read_text()
    check_warehouse(tmp_path, bootstrap, part, sum(published))


def test_a_clickhouse_server_away_for_60_seconds_loses_and_duplicates_nothing(
    fresh_kafka_broker: KafkaBroker,
    fresh_clickhouse_server: ClickHouseServer,
    world: World,
    tmp_path: Path,
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap_servers
    server = fresh_clickhouse_server
    topics.ensure_topics(bootstrap)
    publish_areas(bootstrap, world.areas)
    part = share_of(world, tmp_path, 6)
    env, port = worker_env(bootstrap, part, tmp_path)
    env["CLICKHOUSE_URL"] = server.url
    publishing, published = publish_in_background(bootstrap, part)
    proc = start_worker(env, tmp_path / "worker.log")
    try:
        wait_for(port, lambda s: s["processed"] >= 3_000, proc, timeout=300)
        assert server.stop()
        time.sleep(60)
        assert proc.poll() is None, "the worker waits for the warehouse"
        stalled = status(port)["processed"]
        assert server.start()
        publishing.join(600)
        assert not publishing.is_alive()
        wait_drained(bootstrap, port, proc)
        final = status(port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        publishing.join(600)
    total = sum(published)
    assert final["processed"] == total
    assert stalled < total
    text = (tmp_path / "worker.log").read_text()
    # It waited (in the adapter's retries, or the pipeline's, whichever met the outage).
    assert "; retrying" in text or "warehouse unavailable" in text
    with ServerWarehouse(server.url) as wh:
        snap = snapshot_of(wh)
    assert (snap["count"], snap["distinct"]) == (total, total)
    for table in ("weekly_counts", "daily_counts"):
        assert snap[table] == snap[table + "_recount"], f"{table} differs from a recount"
