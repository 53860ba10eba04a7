"""Thin, typed factories for confluent-kafka clients with linkwatch's defaults.

Every producer is idempotent with ``acks=all``: a provider's record is either
in the log once or reported as failed, never written twice by a retry.
librdkafka's own log lines go to Python logging (``linkwatch.kafka``) instead
of stderr, so a broker restart does not flood a progress bar.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

log = logging.getLogger("linkwatch.kafka")
# librdkafka reports transient trouble (a broker restarting) that its retries then mend;
# callers report what was finally delivered. Attach a handler to see these lines.
log.addHandler(logging.NullHandler())


class KafkaUnavailable(RuntimeError):
    """No broker answered at the configured bootstrap servers."""


def _base(bootstrap_servers: str, extra: dict[str, Any] | None) -> dict[str, Any]:
    config: dict[str, Any] = {"bootstrap.servers": bootstrap_servers, "logger": log}
    config.update(extra or {})
    return config


def make_producer(bootstrap_servers: str, **extra: Any) -> Producer:
    """An idempotent producer (``acks=all``) that batches for throughput.

    ``linger.ms`` 20 trades up to 20 ms of latency for far fewer requests;
    lz4 keeps Avro batches small on the wire and in the log.
    """
    config = _base(
        bootstrap_servers,
        {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "compression.type": "lz4",
            "delivery.timeout.ms": 300_000,
        },
    )
    config.update({k.replace("_", "."): v for k, v in extra.items()})
    return Producer(config)


def make_consumer(bootstrap_servers: str, group_id: str, **extra: Any) -> Consumer:
    """A consumer that commits only what the caller says it has processed."""
    config = _base(
        bootstrap_servers,
        {
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        },
    )
    config.update({k.replace("_", "."): v for k, v in extra.items()})
    return Consumer(config)


def partition_lag(consumer: Consumer, tp: TopicPartition, done: int | None = None) -> int:
    """Messages of an assigned partition after ``done`` (the offset after the last one
    processed); without it, after the consumer's position, or before its first fetch
    after the group's committed offset (the log's start when none)."""
    low, high = consumer.get_watermark_offsets(tp, timeout=2.0, cached=False)
    if done is None:
        (position,) = consumer.position([tp])
        done = position.offset
        if done < 0:
            (committed,) = consumer.committed([tp], timeout=5.0)
            done = committed.offset if committed.offset >= 0 else low
    return max(0, high - done)


def make_admin(bootstrap_servers: str) -> AdminClient:
    return AdminClient(_base(bootstrap_servers, None))


def require_broker(bootstrap_servers: str, timeout: float = 10.0) -> None:
    """Fail fast, with the fix, when no broker answers within ``timeout`` seconds."""
    admin = make_admin(bootstrap_servers)
    try:
        meta = admin.list_topics(timeout=timeout)
    except Exception as exc:
        raise KafkaUnavailable(
            f"no Kafka broker answered at {bootstrap_servers} within {timeout:.0f} s ({exc}) — "
            "start the local one with `linkwatch stack up`, or set KAFKA_BOOTSTRAP_SERVERS"
        ) from None
    if not meta.brokers:
        raise KafkaUnavailable(f"the Kafka cluster at {bootstrap_servers} reports no brokers")


def _reader(bootstrap_servers: str) -> Consumer:
    """A consumer for reading by assignment (no group membership, nothing committed)."""
    return Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": "linkwatch-topic-reader",
            "enable.auto.commit": False,
        }
    )


def _read_assigned(
    consumer: Consumer, topic: str, partition: int, first: int, last: int, timeout: float
) -> Iterator[tuple[int, bytes | None, bytes | None]]:
    """(offset, key, value) of ``topic[partition]`` from ``first`` to ``last``."""
    consumer.assign([TopicPartition(topic, partition, first)])
    position = first
    stalled_since = time.monotonic()
    while position <= last:
        # consume() waits until it has as many messages as asked or its timeout has
        # passed: never ask past the end, and wait briefly (compacted topics have gaps).
        batch = consumer.consume(min(5000, last + 1 - position), timeout=0.25)
        if not batch:
            if time.monotonic() - stalled_since > timeout:
                raise TimeoutError(f"reading {topic}[{partition}] stalled before offset {last}")
            continue
        stalled_since = time.monotonic()
        for msg in batch:
            if msg.error() is not None:
                continue
            offset = msg.offset() or 0
            if offset > last:
                break
            position = offset + 1
            yield offset, msg.key(), msg.value()
            if position > last:
                break


def read_topic(
    bootstrap_servers: str,
    topic: str,
    timeout: float = 30.0,
    start: Mapping[int, int] | None = None,
) -> Iterator[tuple[bytes | None, bytes | None]]:
    """Every message of ``topic`` up to its end when called, in partition order (no group).

    ``start`` gives the first offset to read per partition (default: the beginning).
    """
    consumer = _reader(bootstrap_servers)
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            return
        for partition in sorted(meta.partitions):
            tp = TopicPartition(topic, partition, OFFSET_BEGINNING)
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
            first = max(low, (start or {}).get(partition, low))
            if high > first:
                for _, key, value in _read_assigned(
                    consumer, topic, partition, first, high - 1, timeout
                ):
                    yield key, value
    finally:
        consumer.close()


def read_range(
    bootstrap_servers: str, topic: str, partition: int, first: int, last: int, timeout: float = 30.0
) -> Iterator[tuple[int, bytes | None, bytes | None]]:
    """(offset, key, value) of every message of ``topic[partition]`` from ``first`` to ``last``."""
    consumer = _reader(bootstrap_servers)
    try:
        yield from _read_assigned(consumer, topic, partition, first, last, timeout)
    finally:
        consumer.close()
