"""The shared load: every worker loads the warehouse from ``linkwatch.linked.v1``.

With ``LINKWATCH_SHARED_SINK=true`` the loading stage scales with the partitions of the
linked topic. The active linker still ingests, links and enriches every provider event
and publishes each linked row (keyed by the person id it was linked to, stamped with
the provider's publish time); it writes persons and merges itself. Every worker, the
active one and the standbys alike, runs a :class:`SharedLoader` in the consumer group
``linkwatch-loader``: Kafka shares the linked partitions among them, and each loads
the rows of its partitions in batches, then commits their offsets.

Why this stays exact with several loaders:

* A provider event's rows always reach the same linked partition: a replayed event
  keeps the person id it was first linked to (merges travel as merges), so its key,
  and with it the partition, never changes. One loader at a time owns a partition, so
  the offset check of :class:`~linkwatch.streams.pipeline.EventLoader` (rows at or below
  the highest stored offset of their provider partition are looked up) sees every copy
  it could duplicate; a partition moved to another loader is read again from the
  warehouse (``on_assign``).
* All rows of one person id go through one loader at a time, so the Long COVID views,
  which read a person's state before each inserted block, never see two blocks of one
  person inserted at once.

The embedded warehouse belongs to one process, so sharing needs a ClickHouse server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, KafkaError, TopicPartition

from linkwatch.streams import topics
from linkwatch.streams.deadletter import DeadLetter, DeadLetterWriter
from linkwatch.streams.kafka_clients import make_consumer, make_producer, partition_lag
from linkwatch.streams.pipeline import EventLoader
from linkwatch.streams.sink import LINKED_EVENTS_SCHEMA, WarehouseSink
from linkwatch.streams.warehouse import Warehouse

if TYPE_CHECKING:
    from linkwatch.streams.worker import Metrics

log = logging.getLogger("linkwatch.worker")
#: The consumer group of the loaders of ``linkwatch.linked.v1``.
LOADER_GROUP = "linkwatch-loader"


def row_from_linked(value: bytes) -> dict[str, Any]:
    """The ``linked_events`` row of one ``linkwatch.linked.v1`` message (ValueError if it
    is not one)."""
    try:
        row = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a JSON document: {exc}") from None
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    missing = [name for name in LINKED_EVENTS_SCHEMA.names if name not in row]
    if missing:
        raise ValueError(f"missing fields: {', '.join(missing)}")
    try:
        row["event_time"] = dt.datetime.fromisoformat(row["event_time"])
    except (TypeError, ValueError):
        raise ValueError(f"event_time {row['event_time']!r} is not an ISO time") from None
    return row


@dataclass
class LinkedMessage:
    """What a loader needs of one message of the linked topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    published: float  # seconds since the epoch; 0 when unknown


def decode_linked(
    messages: list[LinkedMessage],
) -> tuple[list[dict[str, Any]], list[float], list[DeadLetter]]:
    """Rows (with their publish times) of the messages that are linked rows, and a dead
    letter naming the message and the problem for each one that is not."""
    rows: list[dict[str, Any]] = []
    stamps: list[float] = []
    letters: list[DeadLetter] = []

    def refuse(m: LinkedMessage, problem: str) -> None:
        letters.append(
            DeadLetter(
                "load",
                "bad_linked_row",
                f"linkwatch.linked.v1 partition {m.partition} offset {m.offset}: {problem}",
                m.value or b"",
                key=m.key,
                source_topic=topics.LINKED.name,
                source_partition=m.partition,
                source_offset=m.offset,
            )
        )

    kept: list[LinkedMessage] = []
    for m in messages:
        if m.value is None:
            continue
        try:
            rows.append(row_from_linked(m.value))
        except ValueError as exc:
            refuse(m, str(exc))
            continue
        kept.append(m)
        stamps.append(m.published)
    try:  # the types the warehouse takes: row by row only when the batch has a bad one
        pa.Table.from_pylist(rows, schema=LINKED_EVENTS_SCHEMA)
    except (ValueError, TypeError, pa.ArrowInvalid, pa.ArrowTypeError):
        good: list[int] = []
        for i, (m, row) in enumerate(zip(kept, rows, strict=True)):
            try:
                pa.Table.from_pylist([row], schema=LINKED_EVENTS_SCHEMA)
                good.append(i)
            except (ValueError, TypeError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                refuse(m, f"a field has the wrong type: {exc}")
        rows, stamps = [rows[i] for i in good], [stamps[i] for i in good]
    return rows, stamps, letters


class SharedLoader:
    """One worker's share of the warehouse load, on a thread of its own."""

    def __init__(
        self,
        bootstrap_servers: str,
        warehouse: Warehouse,
        database: str,
        metrics: Metrics,
        *,
        batch_size: int,
        batch_wait: float,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.dead_letters = DeadLetterWriter(make_producer(bootstrap_servers))
        self.warehouse = warehouse
        self.loader = EventLoader(WarehouseSink(warehouse, database))
        self.metrics = metrics
        self.batch_size = batch_size
        self.batch_wait = batch_wait
        self.loaded = 0
        self.partitions: list[int] = []
        self.failed: BaseException | None = None
        self.on_failure = on_failure
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shared-loader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Finish the batch in hand, leave the group and close the warehouse connection."""
        self.stopping.set()
        self._thread.join(timeout)
        self.warehouse.close()

    def _run(self) -> None:
        try:
            self.run(self.stopping)
        except BaseException as exc:  # the worker stops when its loader fails (see worker)
            self.failed = exc
            log.exception("the shared loader failed")
            if self.on_failure is not None:
                self.on_failure(exc)

    def run(self, stopping: threading.Event) -> None:
        """Consume, load, commit until ``stopping`` is set (a batch is finished first)."""
        consumer = make_consumer(
            self.bootstrap_servers,
            LOADER_GROUP,
            session_timeout_ms=10_000,
            max_poll_interval_ms=900_000,
        )

        def assigned(_consumer: Any, parts: list[TopicPartition]) -> None:
            self.loader.forget_partitions()
            self.partitions = sorted(tp.partition for tp in parts)
            log.info("linked partitions to load: %s", self.partitions)

        def revoked(_consumer: Any, parts: list[TopicPartition]) -> None:
            self.partitions = []
            for tp in parts:  # another worker reports these now
                with contextlib.suppress(KeyError):
                    self.metrics.lag.remove(tp.topic, str(tp.partition))

        consumer.subscribe([topics.LINKED.name], on_assign=assigned, on_revoke=revoked)
        lag_measured = 0.0
        try:
            while not stopping.is_set():
                if time.monotonic() - lag_measured > 5.0:
                    self._measure_lag(consumer)
                    lag_measured = time.monotonic()
                batch = consumer.consume(self.batch_size, timeout=self.batch_wait)
                messages: list[LinkedMessage] = []
                ends: dict[int, int] = {}
                for msg in batch:
                    error = msg.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            log.warning("loader consumer: %s", error)
                        continue
                    partition, offset = msg.partition() or 0, msg.offset() or 0
                    ends[partition] = max(ends.get(partition, 0), offset + 1)
                    kind, stamp = msg.timestamp()
                    published = stamp / 1000.0 if kind != TIMESTAMP_NOT_AVAILABLE else 0.0
                    messages.append(
                        LinkedMessage(partition, offset, msg.key(), msg.value(), published)
                    )
                if not ends:
                    continue
                started = time.monotonic()
                rows, stamps, letters = decode_linked(messages)
                if letters:
                    for letter in letters:
                        log.error("not loaded: %s", letter.reason)
                        self.dead_letters.send(letter)
                        self.metrics.dead.labels(letter.reason_code).inc()
                    self.dead_letters.flush()
                written = self.loader.load(rows)
                done = time.time()
                consumer.commit(
                    offsets=[TopicPartition(topics.LINKED.name, p, o) for p, o in ends.items()],
                    asynchronous=False,
                )
                self._count(rows, stamps, written, started, done)
        finally:
            consumer.close()

    def _measure_lag(self, consumer: Any) -> None:
        """Messages of this loader's linked partitions not loaded yet, for /metrics."""
        for tp in consumer.assignment():
            self.metrics.lag.labels(tp.topic, str(tp.partition)).set(partition_lag(consumer, tp))

    def _count(
        self,
        rows: list[dict[str, Any]],
        stamps: list[float],
        written: int,
        started: float,
        done: float,
    ) -> None:
        m = self.metrics
        m.batch_size.observe(len(rows))
        m.batch_seconds.observe(time.monotonic() - started)
        sources: dict[str, int] = {}
        for row in rows:
            sources[row["source"]] = sources.get(row["source"], 0) + 1
        for source, n in sources.items():
            m.events.labels(source).inc(n)
        for t in stamps:
            if t > 0:
                m.latency.observe(max(0.0, done - t))
        self.loaded += written
