"""Pipeline throughput and latency: ``linkwatch worker`` against two ceilings, in one run.

Starts a private Kafka broker (the code of ``linkwatch stack up``, free ports, a
temporary directory), generates a synthetic three-provider population, trains the
linkage model on it and publishes it as a backlog. Then, one after another:

* **bare confluent-kafka**: one consumer reads the backlog, decodes every event with
  fastavro (the shipped schemas) and inserts batches of 1,000 rows into chDB;
* **bare faust**: a Faust agent with the worker's settings (same application
  options, ``take_events`` with the same batch size) that only decodes the events;
* **linkwatch worker**: the real worker process (ingest, link, enrich, load into chDB,
  linker log, linked / merge / review outputs), from start to an empty backlog;
* **latency**: with the worker idle, new events are published at a fixed rate and the
  worker's own end-to-end histogram (publish time → warehouse commit) gives p50 / p99;
* **linker**: a fresh linker rebuilt from the worker's recovery log (time, identities/s)
  and the memory it holds per identity.

Prints each figure and the ratios to the ceilings. Never fails on time.

Usage: python bench/bench_pipeline.py [events] [rate] [seconds]
       (defaults: 1000000 events, 1000 events/s for 60 s)
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from confluent_kafka import Consumer

from linkwatch.deploy.process import free_ports
from linkwatch.linkage.fellegi_sunter import FellegiSunterModel, train_model
from linkwatch.linkage.identity_csv import read_identity_files
from linkwatch.linkage.standardise import standardise
from linkwatch.schemas.events import IdentityPolicy, to_event
from linkwatch.schemas.pseudonymise import PseudonymDomain
from linkwatch.schemas.registry import SchemaRegistry
from linkwatch.schemas.synth import SynthConfig, generate
from linkwatch.schemas.validation import validate_file
from linkwatch.streams import topics
from linkwatch.streams.config import Settings
from linkwatch.streams.kafka_clients import make_producer, read_topic
from linkwatch.streams.linker import StreamLinker
from linkwatch.streams.publish import SOURCE_TOPICS, ProviderPublisher, publish_areas
from linkwatch.streams.stack import Stack
from linkwatch.streams.warehouse import EmbeddedWarehouse

TODAY = date(2030, 1, 1)
POLICY = IdentityPolicy(
    domain=PseudonymDomain("bench", "1", b"bench-secret-0123456789abcdef"), clear_names=True
)
TRAINING_SAMPLE = 120_000
EVENTS_PER_PERSON_YEAR = 3.9  # what the synthetic population produces, measured
LINKWATCH = str(Path(sys.executable).parent / "linkwatch")


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def write_population(root: Path, persons: int, seed: int, prefix: str = "") -> dict[str, Path]:
    data = generate(SynthConfig(persons=persons, years=2, seed=seed))
    paths: dict[str, Path] = {}
    root.mkdir(parents=True, exist_ok=True)
    for source, table in data.extracts.items():
        if prefix:
            ids = pc.binary_join_element_wise(prefix, table["source_record_id"], "")
            table = table.set_column(0, "source_record_id", ids)
        paths[source] = root / f"{source}.csv"
        pacsv.write_csv(table, paths[source])
    if not prefix:
        identity = []
        for source, table in data.identity_files.items():
            identity.append(root / f"{source}.identity.csv")
            pacsv.write_csv(table, identity[-1])
        # Trained on a sample: the model's parameters settle long before a million records.
        records = read_identity_files(identity)
        sample = random.Random(seed).sample(records, min(len(records), TRAINING_SAMPLE))
        train_model([standardise(r) for r in sample]).save(root / "model.json")
        pacsv.write_csv(data.areas, root / "areas.csv")
    return paths


def encoded_events(paths: dict[str, Path]) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, Avro value) of every valid row, sources interleaved as they arrive."""
    registry = SchemaRegistry.shipped()
    topic_of = SOURCE_TOPICS
    per_source = []
    for source, path in paths.items():
        rows = []
        for result in validate_file(path, source, today=TODAY):
            if result.ok:
                event = to_event(source, result.values or {}, POLICY)
                rows.append(
                    (topic_of[source], event["event_id"].encode(), registry.encode(event, source))
                )
        per_source.append(rows)
    out: list[tuple[str, bytes, bytes]] = []
    for i in range(max(len(r) for r in per_source)):
        out.extend(rows[i] for rows in per_source if i < len(rows))
    return out


def bare_confluent(bootstrap: str, expected: int, root: Path) -> float:
    """Consume → fastavro decode → batched chDB insert; returns events/s."""
    registry = SchemaRegistry.shipped()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-bare-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([t.name for t in topics.PROVIDER_TOPICS])
    schema = pa.schema(
        [
            ("event_id", pa.string()),
            ("event_time", pa.timestamp("ms", tz="UTC")),
            ("provider_id", pa.string()),
            ("kafka_partition", pa.uint32()),
            ("kafka_offset", pa.uint64()),
        ]
    )
    seen = 0
    started: float | None = None
    with EmbeddedWarehouse(root / "bare-warehouse") as warehouse:
        warehouse.command("CREATE DATABASE IF NOT EXISTS bare")
        warehouse.command(
            "CREATE TABLE bare.events (event_id String, event_time DateTime64(3, 'UTC'), "
            "provider_id LowCardinality(String), kafka_partition UInt32, kafka_offset UInt64) "
            "ENGINE = MergeTree PARTITION BY toYYYYMM(event_time) ORDER BY (event_time, event_id)"
        )
        while seen < expected:
            batch = consumer.consume(1000, timeout=1.0)
            if not batch:
                continue
            if started is None:
                started = time.perf_counter()
            rows = []
            for msg in batch:
                if msg.error() is not None or not msg.value():
                    continue
                _, record = registry.decode(msg.value())
                rows.append(
                    {
                        "event_id": record["event_id"],
                        "event_time": record["event_time"],
                        "provider_id": record["provider_id"],
                        "kafka_partition": msg.partition(),
                        "kafka_offset": msg.offset(),
                    }
                )
            warehouse.insert("bare.events", pa.Table.from_pylist(rows, schema=schema))
            consumer.commit(asynchronous=True)
            seen += len(rows)
        elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    return seen / elapsed


def bare_faust_main(bootstrap: str, expected: int, port: int, report: Path) -> None:
    """The bare Faust agent (run in its own process): consume and decode, nothing else."""
    import faust

    from linkwatch.streams.worker import faust_app

    # Faust's folder goes under the run's temporary folder (the report's), removed at the end.
    settings = Settings.load(
        environ={}, kafka_bootstrap_servers=bootstrap, worker_port=port, state_dir=report.parent
    )
    registry = SchemaRegistry.shipped()
    app = faust_app(settings, f"bench-faust-{uuid.uuid4().hex[:8]}")
    provider = app.topic(
        *(t.name for t in topics.PROVIDER_TOPICS), key_serializer="raw", value_serializer="raw"
    )
    state: dict[str, Any] = {"seen": 0, "started": None}

    @app.agent(provider, concurrency=1)
    async def decode(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_wait):
            if state["started"] is None:
                state["started"] = time.perf_counter()
            for event in events:
                registry.decode(event.message.value)
            state["seen"] += len(events)
            if state["seen"] >= expected:
                elapsed = time.perf_counter() - state["started"]
                report.write_text(json.dumps({"events": state["seen"], "seconds": elapsed}))
                os._exit(0)

    worker = faust.Worker(app, override_logging=False, redirect_stdouts=False, quiet=True)
    worker.execute_from_commandline()


def bare_faust(bootstrap: str, expected: int, root: Path) -> float:
    report = root / "bare-faust.json"
    (port,) = free_ports(1)
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--bare-faust",
            bootstrap,
            str(expected),
            str(port),
            str(report),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(root / "bare-faust.log", "wb"),  # noqa: SIM115
    )
    try:
        proc.wait(3600)
    finally:
        if proc.poll() is None:
            proc.kill()
    result = json.loads(report.read_text())
    return float(result["events"]) / float(result["seconds"])


def get(port: int, path: str) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def status(port: int) -> dict[str, Any]:
    text = get(port, "/status")
    return dict(json.loads(text)) if text else {}


def latency_histogram(port: int) -> dict[float, float]:
    """Cumulative bucket counts of the worker's end-to-end latency histogram."""
    out: dict[float, float] = {}
    for line in get(port, "/metrics").splitlines():
        if line.startswith("linkwatch_end_to_end_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """A quantile of the observations between two histogram readings (linear in a bucket)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1]
    if total <= 0:
        return float("nan")
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= rank:
            if bound == float("inf"):
                return lower
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, cumulative
    return lower


def paced(events: list[tuple[str, bytes, bytes]], bootstrap: str, rate: float) -> float:
    """Publish ``events`` at ``rate`` per second; returns the rate achieved."""
    producer = make_producer(bootstrap)
    started = time.perf_counter()
    for n, (topic, key, value) in enumerate(events):
        due = started + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        producer.produce(topic, key=key, value=value)
        producer.poll(0)
    producer.flush(60)
    return len(events) / (time.perf_counter() - started)


def wait_processed(
    port: int, proc: subprocess.Popen[bytes], target: int
) -> Iterator[dict[str, Any]]:
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the worker exited with {proc.returncode}")
        current = status(port)
        if current:
            yield current
            if current.get("processed", 0) >= target:
                return
        time.sleep(0.5)


def main(events: int, rate: float, seconds: float) -> None:
    root = Path(tempfile.mkdtemp(prefix="linkwatch-bench-pipeline-"))
    kafka, controller, tcp, http, inter, worker_port = free_ports(6)
    settings = Settings.load(
        environ={},
        data_dir=root / "data",
        state_dir=root / "state",
        kafka_port=kafka,
        kafka_controller_port=controller,
        clickhouse_tcp_port=tcp,
        clickhouse_http_port=http,
        clickhouse_interserver_port=inter,
        worker_port=worker_port,
    )
    broker = Stack(settings).kafka
    print(f"private Kafka {settings.kafka_version} broker on {broker.bootstrap_servers}")
    broker.start()
    bootstrap = broker.bootstrap_servers
    try:
        persons = max(100, round(events / (2 * EVENTS_PER_PERSON_YEAR)))
        t = time.perf_counter()
        paths = write_population(root / "backlog", persons, seed=11)
        live = encoded_events(
            write_population(root / "live", max(100, round(rate * seconds / 7.8)), 12, "live-")
        )[: int(rate * seconds)]
        print(f"population: {persons:,} persons, model trained ({time.perf_counter() - t:.0f} s)")

        topics.ensure_topics(bootstrap)
        publish_areas(bootstrap, root / "backlog" / "areas.csv")
        t = time.perf_counter()
        publisher = ProviderPublisher(bootstrap, POLICY)
        published = sum(
            publisher.publish_file(path, source, today=TODAY).published
            for source, path in paths.items()
        )
        publisher.close()
        publish_seconds = time.perf_counter() - t
        print(f"backlog: {published:,} events published ({published / publish_seconds:,.0f}/s)")

        print("ceiling 1: bare confluent-kafka consume → fastavro decode → chDB insert …")
        confluent_rate = bare_confluent(bootstrap, published, root)
        print(f"  {confluent_rate:,.0f} events/s")
        print("ceiling 2: bare faust agent, worker settings, decode only …")
        faust_rate = bare_faust(bootstrap, published, root)
        print(f"  {faust_rate:,.0f} events/s")

        print("linkwatch worker: ingest → link → enrich → warehouse …")
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "LINKWATCH_DATA_DIR": str(root / "data"),
            "LINKWATCH_WAREHOUSE_DIR": str(root / "warehouse"),
            "LINKWATCH_STATE_DIR": str(root / "state"),
            "LINKWATCH_LINKAGE_MODEL": str(root / "backlog" / "model.json"),
            "LINKWATCH_WORKER_PORT": str(worker_port),
        }
        env.pop("CLICKHOUSE_URL", None)
        log = open(root / "worker.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([LINKWATCH, "worker"], env=env, stdout=log, stderr=log)
        try:
            first: tuple[float, int] | None = None
            last = (0.0, 0)
            for current in wait_processed(worker_port, proc, published):
                now, done = time.perf_counter(), int(current.get("processed", 0))
                if first is None and done > 0:
                    first = (now, done)
                last = (now, done)
            assert first is not None
            worker_rate = (last[1] - first[1]) / max(last[0] - first[0], 1e-9)
            print(f"  {worker_rate:,.0f} events/s ({last[1]:,} events)")

            print(f"latency: {len(live):,} new events at {rate:,.0f}/s into the idle worker …")
            before = latency_histogram(worker_port)
            achieved = paced(live, bootstrap, rate)
            for _ in wait_processed(worker_port, proc, published + len(live)):
                pass
            after = latency_histogram(worker_port)
            p50, p99 = quantile(before, after, 0.5), quantile(before, after, 0.99)
            print(f"  published at {achieved:,.0f}/s; p50 {p50:.3f} s, p99 {p99:.3f} s")
            proc.send_signal(signal.SIGKILL)
            proc.wait(120)

            print("restart after SIGKILL: linker from its snapshot and the log's tail …")
            t = time.perf_counter()
            proc = subprocess.Popen([LINKWATCH, "worker"], env=env, stdout=log, stderr=log)
            while not status(worker_port).get("ready"):
                if proc.poll() is not None:
                    raise SystemExit(f"the worker exited with {proc.returncode}")
                time.sleep(0.2)
            ready_seconds = time.perf_counter() - t
            recovered = status(worker_port)
            proc.send_signal(signal.SIGTERM)
            proc.wait(120)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
        lines = [
            line
            for line in (root / "worker.log").read_text().splitlines()
            if "linked identities" in line
        ]
        print(f"  ready in {ready_seconds:.1f} s: {lines[-1].split(': ', 1)[-1] if lines else ''}")

        print("linker: rebuilt from its recovery log …")
        model = FellegiSunterModel.load(root / "backlog" / "model.json")
        rss = rss_bytes()
        linker = StreamLinker(model)
        t = time.perf_counter()
        entries = sum(1 for _, v in read_topic(bootstrap, topics.LINKER_LOG.name) if v)
        read_seconds = time.perf_counter() - t
        t = time.perf_counter()
        linker.restore(v for _, v in read_topic(bootstrap, topics.LINKER_LOG.name) if v)
        restore_seconds = time.perf_counter() - t - read_seconds
        assert len(linker) == entries
        held = linker.memory_bytes()
        grown = rss_bytes() - rss
        n = len(linker)

        print()
        print(f"{'figure':<58} {'value':>14}")
        rows = [
            ("events in the backlog", f"{published:,}"),
            ("bare confluent-kafka + fastavro + chDB (events/s)", f"{confluent_rate:,.0f}"),
            ("bare faust agent, decode only (events/s)", f"{faust_rate:,.0f}"),
            ("linkwatch worker, whole pipeline (events/s)", f"{worker_rate:,.0f}"),
            ("ratio worker / bare faust", f"{worker_rate / faust_rate:.3f}"),
            ("ratio worker / bare confluent", f"{worker_rate / confluent_rate:.3f}"),
            (f"end-to-end latency p50 at {achieved:,.0f} events/s (s)", f"{p50:.3f}"),
            (f"end-to-end latency p99 at {achieved:,.0f} events/s (s)", f"{p99:.3f}"),
            ("worker ready after SIGKILL, snapshot + log tail (s)", f"{ready_seconds:.1f}"),
            ("  identities it then held", f"{recovered.get('indexed_identities', 0):,}"),
            ("linker log read (identities/s)", f"{n / read_seconds:,.0f}"),
            ("linker rebuilt from the whole log (identities/s)", f"{n / restore_seconds:,.0f}"),
            ("linker identities", f"{n:,}"),
            ("linker structures per identity (bytes)", f"{held / max(n, 1):,.0f}"),
            ("process memory grown per identity (bytes)", f"{grown / max(n, 1):,.0f}"),
        ]
        for label, value in rows:
            print(f"{label:<58} {value:>14}")
    finally:
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)  # the broker's log and the warehouses


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--bare-faust":
        bare_faust_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))
    else:
        main(
            int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000,
            float(sys.argv[2]) if len(sys.argv) > 2 else 1000.0,
            float(sys.argv[3]) if len(sys.argv) > 3 else 60.0,
        )
