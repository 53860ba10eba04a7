"""``linkwatch worker``: the Faust application that runs the pipeline.

Faust runs the application: its web pages (/healthz, /readyz, /status, /metrics),
timers, the agent that keeps the area table current from the compacted reference
topic, and the lifecycle. The provider events themselves are taken by a plain
confluent-kafka consumer on the pipeline thread, in batches, and handed to
:class:`~linkwatch.streams.pipeline.Pipeline`: measured here, Faust's per-event
stream machinery alone costs more than linking, enriching and loading an event
(``bench/bench_pipeline.py`` prints both), so the hot path does not go through it.
Before the first batch the worker rebuilds its state: the area table, and the
linker from its last snapshot and the tail of its recovery log.

Delivery: in a batch, the linker-log entries are acknowledged by Kafka first, then
the rows go into the warehouse (idempotently), then the dead letters and outputs
are acknowledged (an idempotent producer), and only then are the batch's offsets
committed, synchronously. Whatever the warehouse holds, the log holds too, so a
restarted linker gives replayed events the persons the warehouse has. Any failure
ends the process at once (``os._exit``); the restarted worker replays the batch.
See docs/faust-behaviour.md.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, KafkaError, TopicPartition
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from linkwatch.dashboards.model import create_model
from linkwatch.linkage.fellegi_sunter import FellegiSunterModel
from linkwatch.schemas.registry import SchemaRegistry
from linkwatch.streams import topics
from linkwatch.streams.alerting import AlertingConfig, AlertingMetrics, AlertingStage
from linkwatch.streams.config import Settings
from linkwatch.streams.deadletter import DeadLetter
from linkwatch.streams.ingest import RawMessage
from linkwatch.streams.kafka_clients import (
    make_consumer,
    make_producer,
    partition_lag,
    read_range,
    read_topic,
)
from linkwatch.streams.lease import Lease
from linkwatch.streams.linker import StreamLinker, record_from_log
from linkwatch.streams.pipeline import BatchOutput, LoadJob, Pipeline
from linkwatch.streams.shared_sink import SharedLoader
from linkwatch.streams.sink import WarehouseSink
from linkwatch.streams.snapshots import read_snapshot, snapshot_path, write_snapshot
from linkwatch.streams.warehouse import Warehouse, open_warehouse

if TYPE_CHECKING:
    import faust

log = logging.getLogger("linkwatch.worker")
#: The consumer group of the provider loop (Faust's own group is the application id).
WORKER_GROUP = "linkwatch-pipeline"
T = TypeVar("T")
#: A message to produce: topic, key, value, headers, timestamp (ms; 0 for now).
Outgoing = tuple[str, bytes | None, bytes, Any, int]


class WorkerError(RuntimeError):
    """The worker cannot start; the message says why and what to do."""


@dataclass
class Metrics:
    """What the worker exposes on /metrics."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events = Counter(
            "linkwatch_events_total", "Provider events loaded, by source", ["source"], registry=r
        )
        self.dead = Counter(
            "linkwatch_dead_letters_total",
            "Messages dead-lettered, by reason",
            ["reason"],
            registry=r,
        )
        self.outcomes = Counter(
            "linkwatch_link_outcomes_total", "Link decisions, by outcome", ["outcome"], registry=r
        )
        self.merges = Counter(
            "linkwatch_person_merges_total", "Persons merged into others", registry=r
        )
        self.replayed = Counter(
            "linkwatch_replayed_events_total", "Events seen again after a restart", registry=r
        )
        self.batch_size = Histogram(
            "linkwatch_batch_events",
            "Messages per batch",
            buckets=(1, 10, 100, 250, 500, 1000, 2500, 5000, 10000),
            registry=r,
        )
        self.batch_seconds = Histogram(
            "linkwatch_batch_seconds", "Time to process and make a batch durable", registry=r
        )
        self.lag = Gauge(
            "linkwatch_consumer_lag",
            "Messages not yet processed, by topic and partition (the provider topics, and "
            "the linked partitions a worker loads when the load is shared)",
            ["topic", "partition"],
            registry=r,
        )
        self.latency = Histogram(
            "linkwatch_end_to_end_seconds",
            "Publish time to warehouse commit, per event",
            buckets=(0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 300),
            registry=r,
        )


@dataclass
class PreparedBatch:
    """A batch linked and made durable in Kafka, waiting for its warehouse load."""

    messages: list[RawMessage]
    produced_at: list[float]
    output: BatchOutput
    job: LoadJob
    started: float


class WorkerState:
    """The pipeline, its producer and what the worker has done, for the agents and the pages."""

    def __init__(self, settings: Settings, warehouse: Warehouse, model: FellegiSunterModel) -> None:
        self.settings = settings
        self.warehouse = warehouse
        self.model = model
        self.pipeline = self._fresh_pipeline()
        self.snapshot_file = snapshot_path(settings.state_dir)
        # Entries of the linker's log covered by the state, and by the last snapshot.
        self.log_position = 0
        self.snapshot_position = 0
        self.producer = make_producer(settings.bootstrap_servers)
        self.metrics = Metrics()
        self.ready = False
        # (topic, partition) -> the offset after the last message processed.
        self.positions: dict[tuple[str, int], int] = {}
        self.processed = 0
        self.dead_lettered = 0
        self.started = time.time()
        self.warehouse_version = warehouse.version()
        # One thread does all pipeline work, in order, off the event loop: the consumer
        # keeps fetching the next batch while this one is linked and loaded.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline")
        self.stopping = threading.Event()
        self.alerting = AlertingStage(
            warehouse,
            settings.database,
            self.producer,
            AlertingConfig(),
            metrics=AlertingMetrics(self.metrics.registry),
        )
        self.alerting_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alerting")
        # Loads a prepared batch into the warehouse while the pipeline thread links the next.
        self.loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loader")
        # Age of the oldest event of the last batch, and provider messages not yet processed.
        self.batch_lag_seconds = 0.0
        self.backlog: int | None = None  # None until first measured
        # Area records from the reference topic's agent, applied by the pipeline thread.
        self.pending_areas: queue.Queue[list[dict[str, Any]]] = queue.Queue()
        # With a shared load: the lease this worker waits for before it links, and its
        # share of the warehouse load (see shared_sink).
        self.lease: Lease | None = None
        self.shared: SharedLoader | None = None

    def _fresh_pipeline(self) -> Pipeline:
        pipeline = Pipeline(
            SchemaRegistry.shipped(),
            StreamLinker(self.model),
            WarehouseSink(self.warehouse, self.settings.database),
        )
        pipeline.load_events = not self.settings.shared_sink
        return pipeline

    def start_shared_load(self, lease: Lease) -> None:
        """Load this worker's share of ``linkwatch.linked.v1`` now; link once ``lease`` is held."""
        self.lease = lease
        self.shared = SharedLoader(
            self.settings.bootstrap_servers,
            open_warehouse(self.settings.clickhouse_url, self.settings.embedded_warehouse_dir),
            self.settings.database,
            self.metrics,
            batch_size=self.settings.batch_size,
            batch_wait=self.settings.batch_wait,
            on_failure=_stop_process,
        )
        self.shared.start()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the pipeline thread."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def recover(self) -> None:
        """Area table and linker from their topics (blocking; run in a thread).

        With a shared load, this first waits (as a standby) for the linker's lease.
        """
        if self.lease is not None and not self.lease.acquire():
            return  # stopped while standing by
        bootstrap = self.settings.bootstrap_servers
        registry = self.pipeline.registry
        areas = [registry.decode(v)[1] for _, v in read_topic(bootstrap, topics.AREA_SES.name) if v]
        self.pipeline.apply_areas(areas)
        started = time.monotonic()
        position = self._load_snapshot()
        from_snapshot = len(self.pipeline.linker)
        tail = [
            v for _, v in read_topic(bootstrap, topics.LINKER_LOG.name, start={0: position}) if v
        ]
        self.pipeline.restore(tail)
        self.log_position = position + len(tail)
        log.info(
            "recovered %d areas and %d linked identities (%d from a snapshot, %d replayed "
            "from the log) in %.1f s",
            len(areas),
            len(self.pipeline.linker),
            from_snapshot,
            len(tail),
            time.monotonic() - started,
        )
        if len(tail) >= self.settings.snapshot_every:
            self.save_snapshot()
        self.ready = True

    def _load_snapshot(self) -> int:
        """The linker from its snapshot when it matches the log; the log position it stands at."""
        snap = read_snapshot(self.snapshot_file)
        if snap is None:
            return 0
        try:
            position = self.pipeline.load_snapshot(snap)
            last = self.pipeline.linker.last_record_id
            if position > 0:
                entry = next(
                    read_topic(
                        self.settings.bootstrap_servers,
                        topics.LINKER_LOG.name,
                        start={0: position - 1},
                    ),
                    (None, None),
                )[1]
                if entry is None or record_from_log(entry).record_id != last:
                    raise ValueError(f"the log at {position - 1} is not its last identity {last}")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("linker snapshot not used (%s): replaying the whole log", exc)
            self.pipeline = self._fresh_pipeline()
            return 0
        return position

    def save_snapshot(self) -> None:
        """Snapshot the linker at the current log position (on the pipeline thread)."""
        started = time.monotonic()
        size = write_snapshot(self.snapshot_file, self.pipeline.snapshot(self.log_position))
        self.snapshot_position = self.log_position
        log.info(
            "linker snapshot at log position %d: %.0f MB in %.1f s",
            self.log_position,
            size / 1e6,
            time.monotonic() - started,
        )

    def handle(
        self, messages: list[RawMessage], produced_at: list[float], exact_replay: bool = False
    ) -> BatchOutput:
        """Prepare, make durable and load one batch (without committing its offsets)."""
        return self.complete(self.begin(messages, produced_at, exact_replay))

    def begin(
        self, messages: list[RawMessage], produced_at: list[float], exact_replay: bool = False
    ) -> PreparedBatch:
        """Ingest, link and enrich a batch, then send its log entries, manifest, dead letters
        and outputs and wait for Kafka to acknowledge them all (one flush): after that,
        the warehouse may be loaded (:meth:`complete`)."""
        started = time.monotonic()
        out, job = self.pipeline.prepare(messages, exact_replay=exact_replay)
        stamps = {
            (m.topic, m.partition, m.offset): round(t * 1000)
            for m, t in zip(messages, produced_at, strict=True)
            if t > 0
        }
        self._send(self._log_messages(out) + self._output_messages(out, stamps))
        self.log_position += len(out.log_entries)
        if self.log_position - self.snapshot_position >= self.settings.snapshot_every:
            self.save_snapshot()
        return PreparedBatch(messages, produced_at, out, job, started)

    def complete(self, batch: PreparedBatch) -> BatchOutput:
        """Load a prepared batch into the warehouse and count it (on the loading thread)."""
        self.pipeline.load(batch.job)
        out, messages, produced_at = batch.output, batch.messages, batch.produced_at
        done = time.time()
        m = self.metrics
        m.batch_size.observe(len(messages))
        m.batch_seconds.observe(time.monotonic() - batch.started)
        for (source, outcome), n in collections.Counter(
            (row["source"], row["link_outcome"]) for row in out.rows
        ).items():
            if self.shared is None:
                m.events.labels(source).inc(n)
            m.outcomes.labels(outcome).inc(n)
        for reason, n in collections.Counter(d.reason_code for d in out.dead_letters).items():
            m.dead.labels(reason).inc(n)
        m.merges.inc(len(out.merges))
        m.replayed.inc(out.replayed)
        if self.shared is None:  # else the loaders count what they load, when they load it
            for t in produced_at:
                if t > 0:
                    m.latency.observe(max(0.0, done - t))
        stamps = [t for t in produced_at if t > 0]
        self.batch_lag_seconds = max(0.0, done - min(stamps)) if stamps else 0.0
        self.processed += len(out.rows)
        self.dead_lettered += len(out.dead_letters)
        for key, end in batch_ends(messages).items():
            self.positions[key] = max(self.positions.get(key, 0), end)
        return out

    def consume(self, stopping: threading.Event) -> None:
        """The provider loop (on the pipeline thread) until ``stopping`` is set.

        A plain consumer in the worker's group takes up to ``batch_size`` messages (or
        what arrived within ``batch_wait``), the batch is made durable (linker log and
        outputs, then the warehouse) and only then are its offsets committed,
        synchronously. A batch is loaded into the warehouse on the loading thread while
        the next one is linked: at most one load is under way, and offsets are committed
        in batch order. After partitions are assigned, the pipeline looks again at what
        the warehouse holds.
        """
        consumer = make_consumer(
            self.settings.bootstrap_servers,
            WORKER_GROUP,
            session_timeout_ms=10_000,
            max_poll_interval_ms=600_000,
        )

        def assigned(_consumer: Any, partitions: list[TopicPartition]) -> None:
            self.pipeline.forget_partitions()
            log.info("provider partitions assigned: %d", len(partitions))

        self._replay_cut_batches(consumer)
        consumer.subscribe([t.name for t in topics.PROVIDER_TOPICS], on_assign=assigned)
        lag_measured = 0.0
        loading: tuple[Future[BatchOutput], list[RawMessage]] | None = None

        def finish_loading() -> None:
            nonlocal loading
            if loading is not None:
                future, loaded = loading
                loading = None
                future.result()  # the load's error, if any, stops the worker uncommitted
                consumer.commit(
                    offsets=[TopicPartition(t, p, o) for (t, p), o in batch_ends(loaded).items()],
                    asynchronous=False,
                )

        try:
            while not stopping.is_set():
                self._apply_pending_areas()
                batch = consumer.consume(self.settings.batch_size, timeout=self.settings.batch_wait)
                messages: list[RawMessage] = []
                produced: list[float] = []
                for msg in batch:
                    error = msg.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            log.warning("consumer: %s", error)
                        continue
                    messages.append(
                        RawMessage(
                            msg.topic() or "",
                            msg.partition() or 0,
                            msg.offset() or 0,
                            msg.key(),
                            msg.value(),
                        )
                    )
                    kind, stamp = msg.timestamp()
                    produced.append(stamp / 1000.0 if kind != TIMESTAMP_NOT_AVAILABLE else 0.0)
                prepared = self.begin(messages, produced) if messages else None
                finish_loading()
                if prepared is not None:
                    loading = (self.loader.submit(self.complete, prepared), messages)
                if time.monotonic() - lag_measured > 5.0:
                    self._measure_lag(consumer)
                    lag_measured = time.monotonic()
            finish_loading()
        finally:
            if loading is not None:
                loading[0].cancel()
                wait([loading[0]])
            consumer.close()

    def _replay_cut_batches(self, consumer: Any) -> None:
        """Form again, exactly, the batches a crash cut off between manifest and commit.

        Their rows go to the warehouse whole, with the tokens they had, so whatever part
        of them the warehouse (or one of its views) missed is written, and nothing twice.
        Without deduplication tokens (old servers) the usual offset check applies instead.
        """
        parts = [
            TopicPartition(t.name, p) for t in topics.PROVIDER_TOPICS for p in range(t.partitions)
        ]
        committed = {
            (tp.topic, tp.partition): max(tp.offset, 0)
            for tp in consumer.committed(parts, timeout=30)
        }
        bootstrap = self.settings.bootstrap_servers
        pending: list[dict[str, dict[str, list[int]]]] = []
        for _, value in read_topic(bootstrap, topics.SINK_BATCHES.name):
            ranges = json.loads(value or b"{}").get("ranges", {})
            if any(
                last >= committed.get((topic, int(partition)), 0)
                for topic, spans in ranges.items()
                for partition, (_, last) in spans.items()
            ):
                pending.append(ranges)
        exact = self.warehouse.deduplicates
        for ranges in pending:
            messages: list[RawMessage] = []
            for topic, spans in ranges.items():
                for partition, (first, last) in spans.items():
                    messages.extend(
                        RawMessage(topic, int(partition), offset, key, value)
                        for offset, key, value in read_range(
                            bootstrap, topic, int(partition), first, last
                        )
                    )
            log.info("forming again a batch cut off by a crash: %d messages", len(messages))
            self.handle(messages, [0.0] * len(messages), exact_replay=exact)
            ends = [
                TopicPartition(topic, int(partition), last + 1)
                for topic, spans in ranges.items()
                for partition, (_, last) in spans.items()
                if last + 1 > committed.get((topic, int(partition)), 0)
            ]
            if ends:
                consumer.commit(offsets=ends, asynchronous=False)
                for tp in ends:
                    committed[(tp.topic, tp.partition)] = tp.offset

    def _apply_pending_areas(self) -> None:
        while True:
            try:
                records = self.pending_areas.get_nowait()
            except queue.Empty:
                return
            try:
                self.pipeline.apply_areas(records)
            except Exception as exc:  # a bad area record must not stop the events
                log.error("area records not applied: %s", exc)

    def run_alerting(self) -> None:
        """One cycle of the detectors over the warehouse (on the alerting thread)."""
        backlog = self.backlog
        lag = self.batch_lag_seconds if backlog else 0.0
        # Not measured yet, or more than a couple of batches waiting: the weeks being filled
        # are not complete yet.
        catching_up = backlog is None or backlog > 2 * self.settings.batch_size
        report = self.alerting.run_once(lag_seconds=lag, catching_up=catching_up)
        if report.weeks_evaluated or report.opened or report.closed:
            log.info(
                "alerting: %d weeks, %d series in %.1f s; %d alerts opened, %d closed",
                len(report.weeks_evaluated),
                report.series_evaluated,
                report.seconds,
                len(report.opened),
                len(report.closed),
            )

    def _measure_lag(self, consumer: Any) -> None:
        """Consumer lag of every assigned provider partition, for /metrics."""
        assignment = consumer.assignment()
        backlog = 0
        for tp in assignment:
            # Nothing processed here yet: from where the consumer stands.
            lag = partition_lag(consumer, tp, self.positions.get((tp.topic, tp.partition)))
            self.metrics.lag.labels(tp.topic, str(tp.partition)).set(lag)
            backlog += lag
        # Before the group has assigned partitions, the backlog is not known yet.
        self.backlog = backlog if assignment else None

    @staticmethod
    def _log_messages(out: BatchOutput) -> list[Outgoing]:
        """The batch's linker-log entries and its manifest (durable before the load)."""
        manifest = json.dumps({"ranges": out.manifest}, separators=(",", ":")).encode()
        return [(topics.LINKER_LOG.name, key, entry, None, 0) for key, entry in out.log_entries] + [
            (topics.SINK_BATCHES.name, None, manifest, None, 0)
        ]

    @staticmethod
    def _output_messages(
        out: BatchOutput, stamps: dict[tuple[str, int, int], int] | None = None
    ) -> list[Outgoing]:
        """A batch's dead letters and its linked / merge / review messages.

        A linked message carries its event's publish time (``stamps``, ms), so a worker
        that loads it from the linked topic measures the whole way from the provider.
        """
        stamps = stamps or {}
        linked: list[Outgoing] = [
            (
                topics.LINKED.name,
                k,
                v,
                None,
                stamps.get((row["kafka_topic"], row["kafka_partition"], row["kafka_offset"]), 0),
            )
            for (k, v), row in zip(out.linked, out.rows, strict=True)
        ]
        return (
            [(topics.DLQ.name, d.key, d.to_json(), d.headers(), 0) for d in out.dead_letters]
            + linked
            + [(topics.MERGES.name, k, v, None, 0) for k, v in out.merges]
            + [(topics.REVIEW.name, k, v, None, 0) for k, v in out.reviews]
        )

    def _send(self, messages: list[Outgoing]) -> None:
        """Produce ``messages`` (topic, key, value, headers, timestamp in ms or 0 for now) and
        wait for every acknowledgement."""
        if not messages:
            return
        failures: list[str] = []

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                failures.append(str(err))

        def send(topic: str, key: bytes | None, value: bytes, headers: Any, stamp: int) -> None:
            while True:
                try:
                    self.producer.produce(
                        topic,
                        key=key,
                        value=value,
                        headers=headers,
                        timestamp=stamp,
                        on_delivery=on_delivery,
                    )
                    return
                except BufferError:
                    self.producer.poll(0.05)

        for topic, key, value, headers, stamp in messages:
            send(topic, key, value, headers, stamp)
        remaining = self.producer.flush(120)
        if remaining or failures:
            raise WorkerError(
                f"{remaining} outputs unacknowledged, {len(failures)} failed: {failures[:3]}"
            )

    def role(self) -> str:
        """active (linking), recovering (taking the linker up) or standby (waiting for it)."""
        if self.ready:
            return "active"
        if self.lease is not None and not self.lease.held.is_set():
            return "standby"
        return "recovering"

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "warehouse": {
                "engine": self.warehouse.engine,
                "version": self.warehouse_version,
                "location": self.warehouse.location,
            },
            "ready": self.ready,
            "role": self.role(),
            "processed": self.processed,
            "loaded": self.shared.loaded if self.shared else self.processed,
            "loading_partitions": self.shared.partitions if self.shared else None,
            "dead_lettered": self.dead_lettered,
            "indexed_identities": len(self.pipeline.linker),
            "linker_log_position": self.log_position,
            "linker_snapshot_position": self.snapshot_position,
            "areas": len(self.pipeline.areas),
            "uptime_seconds": round(time.time() - self.started, 1),
        }


def _stop_process(exc: BaseException) -> None:
    """A failed stage ends the worker, uncommitted, so that its batch is taken again."""
    log.error("stopping the worker: %s", exc)
    logging.shutdown()
    os._exit(1)


def batch_ends(messages: list[RawMessage]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the offset after the batch's last message there."""
    ends: dict[tuple[str, int], int] = {}
    for m in messages:
        key = (m.topic, m.partition)
        ends[key] = max(ends.get(key, 0), m.offset + 1)
    return ends


def require_model(settings: Settings) -> FellegiSunterModel:
    """The linkage model the worker runs with, or a WorkerError saying what to do."""
    if settings.linkage_model is None:
        raise WorkerError(
            "no linkage model: train one with `linkwatch linkage train` "
            "and set LINKWATCH_LINKAGE_MODEL"
        )
    try:
        model = FellegiSunterModel.load(settings.linkage_model)
    except (OSError, ValueError) as exc:
        raise WorkerError(
            f"cannot load the linkage model {settings.linkage_model}: {exc}"
        ) from None
    return model


def open_state(settings: Settings) -> WorkerState:
    """Everything the worker needs before Faust starts, each failure named."""
    model = require_model(settings)
    topics.ensure_topics(settings.bootstrap_servers)
    warehouse = open_warehouse(settings.clickhouse_url, settings.embedded_warehouse_dir)
    create_model(warehouse, settings.database)
    return WorkerState(settings, warehouse, model)


def faust_app(settings: Settings, app_id: str = "linkwatch-worker") -> faust.App:
    """A Faust application with the worker's settings (also used by the pipeline benchmark)."""
    import faust

    # Faust's own folder (its table state) goes with the worker's other state, not in the
    # folder the worker was started from; Faust creates only its last part.
    datadir = settings.state_dir / "worker" / "faust" / app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id,
        broker=f"kafka://{settings.bootstrap_servers}",
        store="memory://",
        datadir=str(datadir),
        key_serializer="raw",
        value_serializer="raw",
        processing_guarantee="at_least_once",
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        broker_request_timeout=30,
        producer_linger=0.05,
        producer_request_timeout=60,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        topic_disable_leader=True,
        autodiscover=False,
        web_port=settings.worker_port,
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        web_router_enabled=False,
        web_tables_enabled=False,
    )


def create_app(state: WorkerState) -> Any:
    """The Faust application around ``state``."""
    settings = state.settings
    # Faust's group only takes the area topic. With a shared load every worker runs the
    # application and each needs every area record, so each has a group of its own.
    app_id = "linkwatch-worker"
    if settings.shared_sink:
        app_id = f"linkwatch-worker-{socket.gethostname()}-{settings.worker_port}"
    app = faust_app(settings, app_id)
    areas = app.topic(topics.AREA_SES.name, key_serializer="raw", value_serializer="raw")
    recovering: dict[str, asyncio.Future[None] | None] = {"future": None}

    async def ensure_ready() -> None:
        if state.ready:
            return
        future = recovering["future"]
        if future is None:
            future = asyncio.ensure_future(state.run(state.recover))
            recovering["future"] = future
        await future

    @app.task  # type: ignore[untyped-decorator]
    async def recover_on_start() -> None:
        # Become ready without waiting for the first event; agents await the same recovery.
        try:
            await ensure_ready()
        except BaseException:
            log.exception("recovery failed; stopping")
            logging.shutdown()
            os._exit(1)

    @app.task  # type: ignore[untyped-decorator]
    async def run_pipeline() -> None:
        # The provider loop runs on the pipeline thread: consume a batch, make it durable,
        # commit its offsets. Any failure ends the process, so the batch is replayed.
        future = None
        try:
            await ensure_ready()
            if not state.ready:  # stopped while standing by
                return
            future = asyncio.get_running_loop().run_in_executor(
                state.executor, state.consume, state.stopping
            )
            await asyncio.shield(future)
        except asyncio.CancelledError:  # the worker is stopping: finish the batch in hand
            state.stopping.set()
            if future is not None:
                await future
            raise
        except BaseException:
            log.exception("the pipeline failed; stopping so that its batch is replayed")
            logging.shutdown()
            os._exit(1)

    @app.agent(areas, concurrency=1)
    async def load_areas(stream: Any) -> None:
        async for events in stream.take_events(500, within=1.0):
            try:
                await ensure_ready()
                records = [
                    state.pipeline.registry.decode(e.message.value)[1]
                    for e in events
                    if e.message.value
                ]
                state.pending_areas.put(records)
            except Exception as exc:  # a bad area record must not stop the events
                log.error("area records not applied: %s", exc)
                state.producer.produce(
                    topics.DLQ.name,
                    value=DeadLetter(
                        "ingest",
                        "bad_area_record",
                        str(exc),
                        b"",
                        source_topic=topics.AREA_SES.name,
                    ).to_json(),
                )

    progress = {"seen": 0, "at": time.monotonic()}

    @app.timer(10.0)  # type: ignore[untyped-decorator]
    async def report_progress() -> None:
        # A progress line while a backlog drains; quiet once the worker is idle.
        now = time.monotonic()
        done = state.shared.loaded if state.shared else state.processed
        if done != progress["seen"]:
            rate = (done - progress["seen"]) / max(now - progress["at"], 1e-9)
            log.info(
                "loaded %d events (%.0f/s), %d dead-lettered, %d identities indexed%s",
                done,
                rate,
                state.dead_lettered,
                len(state.pipeline.linker),
                "" if state.ready else " (standby)",
            )
        progress["seen"], progress["at"] = done, now

    alerting_busy = asyncio.Lock()

    @app.timer(settings.alerting_interval)  # type: ignore[untyped-decorator]
    async def run_alerting() -> None:
        # Detectors over the warehouse's weekly counts; a slow cycle is not overlapped.
        if not state.ready or alerting_busy.locked():
            return
        async with alerting_busy:
            try:
                await asyncio.get_running_loop().run_in_executor(
                    state.alerting_executor, state.run_alerting
                )
            except Exception:
                log.exception("alerting cycle failed; the next one tries again")

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"ok": True})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        return web.json({"ready": state.ready}, status=200 if state.ready else 503)

    @app.page("/status")
    async def status(web: Any, request: Any) -> Any:
        return web.json(state.status())

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type; Prometheus reads text as UTF-8 anyway.
        content_type = CONTENT_TYPE_LATEST.split("; charset")[0]
        return web.bytes(generate_latest(state.metrics.registry), content_type=content_type)

    return app


def serve_dashboard(state: WorkerState, port: int) -> None:
    """The dashboard and its API from this process, which owns the warehouse (a thread)."""
    import threading

    import uvicorn

    from linkwatch.dashboards.web import create_app as create_dashboard

    dashboard = create_dashboard(state.warehouse, state.settings.database)
    server = uvicorn.Server(
        uvicorn.Config(dashboard, host="127.0.0.1", port=port, log_level="warning")
    )
    # Off the main thread uvicorn leaves signals alone: Faust's worker owns them, and the
    # dashboard thread ends with the process.
    threading.Thread(target=server.run, name="dashboard", daemon=True).start()
    log.info("dashboard on http://127.0.0.1:%d/", port)


def run(settings: Settings, dashboard_port: int | None = None) -> None:
    """Start the worker and block until it is stopped (SIGTERM / Ctrl-C)."""
    import faust

    require_model(settings)
    topics.ensure_topics(settings.bootstrap_servers)
    lease = Lease(settings.bootstrap_servers)
    if settings.shared_sink:
        # Loads its share at once; the linker's lease is awaited by the recovery.
        state = open_state(settings)
        state.start_shared_load(lease)
    else:
        lease.acquire()
        state = open_state(settings)
    if dashboard_port:
        serve_dashboard(state, dashboard_port)
    app = create_app(state)
    worker = faust.Worker(app, override_logging=False, redirect_stdouts=False, quiet=True)
    try:
        worker.execute_from_commandline()
    finally:
        if state.shared is not None:
            state.shared.stop()
        state.producer.flush(30)
        state.warehouse.close()
        lease.release()
