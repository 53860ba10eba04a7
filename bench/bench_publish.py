"""Publish throughput: ``linkwatch publish`` against a bare producer of the same bytes.

Starts a private Kafka broker (the same code as ``linkwatch stack up``, free ports, a
temporary directory), writes a synthetic GP extract, and measures in one run:

* linkwatch: validate + pseudonymise + Avro-encode + produce (idempotent, acks=all),
  through ``ProviderPublisher.publish_file`` — records/s until every record is acknowledged;
* baseline: a bare confluent-kafka producer (same settings) sending the exact bytes
  linkwatch produced, pre-encoded — records/s until acknowledged.

Prints both rates and their ratio. Never fails on time.

Usage: python bench/bench_publish.py [records]   (default 50000)
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import pyarrow.csv as pacsv
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from linkwatch.deploy.process import free_ports
from linkwatch.schemas.events import IdentityPolicy
from linkwatch.schemas.pseudonymise import PseudonymDomain
from linkwatch.schemas.synth import SynthConfig, generate
from linkwatch.streams.config import Settings
from linkwatch.streams.kafka_clients import make_producer
from linkwatch.streams.publish import ProviderPublisher
from linkwatch.streams.stack import Stack
from linkwatch.streams.topics import TopicSpec, ensure_topics


def read_values(bootstrap: str, topic: str, partitions: int) -> list[tuple[bytes, bytes]]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False}
    )
    parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)]
    total = sum(consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts)
    consumer.assign(parts)
    out: list[tuple[bytes, bytes]] = []
    while len(out) < total:
        for msg in consumer.consume(2000, timeout=5):
            if msg.error() is None:
                out.append((msg.key() or b"", msg.value() or b""))
    consumer.close()
    return out


def main(records: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="linkwatch-bench-publish-"))
    kafka, controller, tcp, http, inter = free_ports(5)
    settings = Settings.load(
        environ={},
        data_dir=root / "data",
        state_dir=root / "state",
        kafka_port=kafka,
        kafka_controller_port=controller,
        clickhouse_tcp_port=tcp,
        clickhouse_http_port=http,
        clickhouse_interserver_port=inter,
    )
    broker = Stack(settings).kafka
    print(
        f"starting a private Kafka {settings.kafka_version} broker on {broker.bootstrap_servers} …"
    )
    broker.start()
    try:
        persons = max(300, records // 7)
        data = generate(SynthConfig(persons=persons, years=2, seed=3))
        table = data.extracts["gp_consultation"].slice(0, records)
        path = root / "gp.csv"
        pacsv.write_csv(table, path)
        n = table.num_rows
        run = uuid.uuid4().hex[:8]
        ours, bare = f"bench.gp.{run}", f"bench.bare.{run}"
        ensure_topics(
            broker.bootstrap_servers, (TopicSpec(ours, 4, "bench"), TopicSpec(bare, 4, "bench"))
        )
        policy = IdentityPolicy(domain=PseudonymDomain("bench", "1", b"bench-secret-0123456789"))

        publisher = ProviderPublisher(
            broker.bootstrap_servers,
            policy,
            topic_for={"gp_consultation": ours},
            dead_letter_topic=f"bench.dlq.{run}",
        )
        started = time.perf_counter()
        report = publisher.publish_file(path, "gp_consultation", today=date(2030, 1, 1))
        linkwatch_seconds = time.perf_counter() - started
        publisher.close()
        assert report.published == n, f"only {report.published} of {n} published"

        messages = read_values(broker.bootstrap_servers, ours, 4)
        producer = make_producer(broker.bootstrap_servers)
        acked = [0]

        def on_delivery(err: object, _msg: object) -> None:
            if err is None:
                acked[0] += 1

        started = time.perf_counter()
        for key, value in messages:
            while True:
                try:
                    producer.produce(bare, key=key, value=value, on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        producer.flush(120)
        bare_seconds = time.perf_counter() - started
        assert acked[0] == n

        ours_rate, bare_rate = n / linkwatch_seconds, n / bare_seconds
        size = sum(len(v) for _, v in messages) / n
        print(f"records: {n:,} GP consultations, {size:.0f} bytes each on the wire")
        label = "linkwatch publish (validate, pseudonymise, encode, produce)"
        print(f"{label:<60} {ours_rate:>9,.0f} rec/s")
        print(f"{'bare confluent-kafka producer, same bytes':<60} {bare_rate:>9,.0f} rec/s")
        print(f"{'ratio linkwatch / bare':<60} {ours_rate / bare_rate:>9.3f}")
    finally:
        broker.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)
