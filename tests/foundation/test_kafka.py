"""The local Kafka broker is real Kafka: idempotent production survives a SIGKILL of the broker."""

from __future__ import annotations

import logging
import uuid
from collections import Counter

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from linkwatch.deploy.kafka import KafkaBroker

quiet = logging.getLogger("tests.kafka.client")
quiet.addHandler(logging.NullHandler())
quiet.propagate = False


def _create_topic(bootstrap: str, partitions: int) -> str:
    topic = f"test.{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=30)
    return topic


def _consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 60) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "logger": quiet,
        }
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    idle = 0.0
    try:
        while idle < timeout_s and len(values) < expected:
            batch = consumer.consume(num_messages=1000, timeout=1.0)
            if not batch:
                idle += 1.0
                continue
            for msg in batch:
                err = msg.error()
                if err is not None:
                    assert err.code() == KafkaError._PARTITION_EOF, err
                    continue
                value = msg.value()
                assert value is not None
                values.append(value)
        # Nothing beyond the expected records: read on until the log ends.
        values.extend(
            m.value() for m in consumer.consume(num_messages=1000, timeout=2.0) if not m.error()
        )
    finally:
        consumer.close()
    return values


def _high_watermarks(bootstrap: str, topic: str, partitions: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "wm", "logger": quiet})
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        )
    finally:
        consumer.close()


def test_produce_and_consume_round_trip(bootstrap_servers: str) -> None:
    topic = _create_topic(bootstrap_servers, 2)
    producer = Producer(
        {"bootstrap.servers": bootstrap_servers, "enable.idempotence": True, "logger": quiet}
    )
    for i in range(100):
        producer.produce(topic, key=str(i % 7).encode(), value=f"event-{i}".encode())
    assert producer.flush(30) == 0
    values = _consume_all(bootstrap_servers, topic, 100)
    assert sorted(values) == sorted(f"event-{i}".encode() for i in range(100))


def test_idempotent_producer_loses_and_duplicates_nothing_across_a_broker_sigkill(
    fresh_kafka_broker: KafkaBroker,
) -> None:
    broker = fresh_kafka_broker
    bootstrap = broker.bootstrap_servers
    partitions = 3
    topic = _create_topic(bootstrap, partitions)
    delivered: list[bytes] = []
    failures: list[str] = []

    def on_delivery(err: KafkaError | None, msg: object) -> None:
        if err is not None:
            failures.append(str(err))
        else:
            delivered.append(msg.value())  # type: ignore[attr-defined]

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "delivery.timeout.ms": 180_000,
            "logger": quiet,
        }
    )
    n = 10_000
    for i in range(n // 2):
        producer.produce(
            topic, key=str(i).encode(), value=f"{i:05d}".encode(), on_delivery=on_delivery
        )
        producer.poll(0)
    assert producer.flush(30) == 0
    # The second half is queued and partly in flight when the broker dies.
    for i in range(n // 2, n):
        producer.produce(
            topic, key=str(i).encode(), value=f"{i:05d}".encode(), on_delivery=on_delivery
        )
    producer.poll(0)
    broker.kill()
    assert not broker.running()
    broker.start()  # same log directory and ports; waits until metadata answers
    assert producer.flush(150) == 0, "producer could not deliver after the broker restarted"

    assert failures == []
    assert len(delivered) == n
    assert _high_watermarks(bootstrap, topic, partitions) == n
    consumed = _consume_all(bootstrap, topic, n)
    counts = Counter(consumed)
    assert len(consumed) == n
    assert set(counts) == {f"{i:05d}".encode() for i in range(n)}
    assert max(counts.values()) == 1
