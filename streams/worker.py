"""``linkwatch worker``: the Faust application that runs the pipeline.

One agent takes batches of provider events (``take_events``) and hands each batch
to :class:`~linkwatch.streams.pipeline.Pipeline`; a second keeps the area table
current from the compacted reference topic. Before the first batch the worker
rebuilds its state: the area table and the linker, each by reading its topic from
the beginning with a plain consumer, in a thread (decoding on the event loop would
starve the consumer's heartbeats).

Delivery: in a batch, the linker-log entries are acknowledged by Kafka first, then
the rows go into the warehouse (idempotently), then the dead letters and outputs
are acknowledged (an idempotent producer, flushed in the body); Faust commits the
batch's offsets only after the loop body has finished. Whatever the warehouse holds,
the log holds too, so a restarted linker gives replayed events the persons the
warehouse has. Any failure in the body ends the process at once
(``os._exit``), because a generator that raises would acknowledge the failed batch
(faust-streaming #315); the restarted worker replays it. See docs/faust-behaviour.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

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
from linkwatch.streams.config import Settings
from linkwatch.streams.deadletter import DeadLetter
from linkwatch.streams.ingest import RawMessage
from linkwatch.streams.kafka_clients import make_producer, read_topic
from linkwatch.streams.linker import StreamLinker, record_from_log
from linkwatch.streams.pipeline import BatchOutput, Pipeline
from linkwatch.streams.sink import WarehouseSink
from linkwatch.streams.snapshots import read_snapshot, snapshot_path, write_snapshot
from linkwatch.streams.warehouse import Warehouse, open_warehouse

if TYPE_CHECKING:
    import faust

log = logging.getLogger("linkwatch.worker")
T = TypeVar("T")


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
            buckets=(1, 10, 100, 250, 500, 1000, 2500, 5000),
            registry=r,
        )
        self.batch_seconds = Histogram(
            "linkwatch_batch_seconds", "Time to process and make a batch durable", registry=r
        )
        self.lag = Gauge(
            "linkwatch_consumer_lag",
            "Provider messages not yet processed, by topic and partition",
            ["topic", "partition"],
            registry=r,
        )
        self.latency = Histogram(
            "linkwatch_end_to_end_seconds",
            "Publish time to warehouse commit, per event",
            buckets=(0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 300),
            registry=r,
        )


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

    def _fresh_pipeline(self) -> Pipeline:
        return Pipeline(
            SchemaRegistry.shipped(),
            StreamLinker(self.model),
            WarehouseSink(self.warehouse, self.settings.database),
        )

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the pipeline thread."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def recover(self) -> None:
        """Area table and linker from their topics (blocking; run in a thread)."""
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

    def handle(self, messages: list[RawMessage], produced_at: list[float]) -> BatchOutput:
        started = time.monotonic()
        out = self.pipeline.process(messages, log_written=self._write_log)
        self._publish(out)
        done = time.time()
        m = self.metrics
        m.batch_size.observe(len(messages))
        m.batch_seconds.observe(time.monotonic() - started)
        for row in out.rows:
            m.events.labels(row["source"]).inc()
            m.outcomes.labels(row["link_outcome"]).inc()
        for letter in out.dead_letters:
            m.dead.labels(letter.reason_code).inc()
        m.merges.inc(len(out.merges))
        m.replayed.inc(out.replayed)
        for t in produced_at:
            if t > 0:
                m.latency.observe(max(0.0, done - t))
        self.processed += len(out.rows)
        self.dead_lettered += len(out.dead_letters)
        for message in messages:
            key = (message.topic, message.partition)
            self.positions[key] = max(self.positions.get(key, 0), message.offset + 1)
        if self.log_position - self.snapshot_position >= self.settings.snapshot_every:
            self.save_snapshot()
        return out

    def _write_log(self, out: BatchOutput) -> None:
        """The batch's linker-log entries, acknowledged by Kafka before the warehouse load."""
        self._send([(topics.LINKER_LOG.name, key, entry, None) for key, entry in out.log_entries])
        self.log_position += len(out.log_entries)

    def _publish(self, out: BatchOutput) -> None:
        """Send a batch's outputs and wait until Kafka has them all."""
        self._send(
            [(topics.DLQ.name, d.key, d.to_json(), d.headers()) for d in out.dead_letters]
            + [(topics.LINKED.name, k, v, None) for k, v in out.linked]
            + [(topics.MERGES.name, k, v, None) for k, v in out.merges]
            + [(topics.REVIEW.name, k, v, None) for k, v in out.reviews]
        )

    def _send(self, messages: list[tuple[str, bytes | None, bytes, Any]]) -> None:
        """Produce ``messages`` (topic, key, value, headers) and wait for every acknowledgement."""
        if not messages:
            return
        failures: list[str] = []

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                failures.append(str(err))

        def send(topic: str, key: bytes | None, value: bytes, headers: Any = None) -> None:
            while True:
                try:
                    self.producer.produce(
                        topic, key=key, value=value, headers=headers, on_delivery=on_delivery
                    )
                    return
                except BufferError:
                    self.producer.poll(0.05)

        for topic, key, value, headers in messages:
            send(topic, key, value, headers)
        remaining = self.producer.flush(120)
        if remaining or failures:
            raise WorkerError(
                f"{remaining} outputs unacknowledged, {len(failures)} failed: {failures[:3]}"
            )

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "warehouse": {
                "engine": self.warehouse.engine,
                "version": self.warehouse_version,
                "location": self.warehouse.location,
            },
            "ready": self.ready,
            "processed": self.processed,
            "dead_lettered": self.dead_lettered,
            "indexed_identities": len(self.pipeline.linker),
            "linker_log_position": self.log_position,
            "linker_snapshot_position": self.snapshot_position,
            "areas": len(self.pipeline.areas),
            "uptime_seconds": round(time.time() - self.started, 1),
        }


def open_state(settings: Settings) -> WorkerState:
    """Everything the worker needs before Faust starts, each failure named."""
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
    topics.ensure_topics(settings.bootstrap_servers)
    warehouse = open_warehouse(settings.clickhouse_url, settings.embedded_warehouse_dir)
    create_model(warehouse, settings.database)
    return WorkerState(settings, warehouse, model)


def faust_app(settings: Settings, app_id: str = "linkwatch-worker") -> faust.App:
    """A Faust application with the worker's settings (also used by the pipeline benchmark)."""
    import faust

    return faust.App(
        app_id,
        broker=f"kafka://{settings.bootstrap_servers}",
        store="memory://",
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
    app = faust_app(settings)
    provider_names = [t.name for t in topics.PROVIDER_TOPICS]
    provider = app.topic(*provider_names, key_serializer="raw", value_serializer="raw")
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

    @app.agent(provider, concurrency=1)
    async def link_events(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_wait):
            try:
                await ensure_ready()
                messages = [
                    RawMessage(
                        e.message.topic,
                        e.message.partition,
                        e.message.offset,
                        e.message.key,
                        e.message.value,
                    )
                    for e in events
                ]
                produced = [float(e.message.timestamp or 0.0) for e in events]
                await state.run(state.handle, messages, produced)
            except BaseException:
                # Leaving the loop would acknowledge this batch: end the process so it is replayed.
                log.exception(
                    "batch of %d events failed; stopping so that it is replayed", len(events)
                )
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
                await state.run(state.pipeline.apply_areas, records)
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

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def look_again(sender: Any, *args: Any, **kwargs: Any) -> None:
        # Partitions that were elsewhere may have been loaded there meanwhile.
        await state.run(state.pipeline.forget_partitions)

    progress = {"seen": 0, "at": time.monotonic()}

    @app.timer(10.0)  # type: ignore[untyped-decorator]
    async def report_progress() -> None:
        # A progress line while a backlog drains; quiet once the worker is idle.
        now, done = time.monotonic(), state.processed
        if done != progress["seen"]:
            rate = (done - progress["seen"]) / max(now - progress["at"], 1e-9)
            log.info(
                "loaded %d events (%.0f/s), %d dead-lettered, %d identities indexed",
                done,
                rate,
                state.dead_lettered,
                len(state.pipeline.linker),
            )
        progress["seen"], progress["at"] = done, now

    @app.timer(5.0)  # type: ignore[untyped-decorator]
    async def measure_lag() -> None:
        consumer = app.consumer
        for tp in consumer.assignment():
            if tp.topic not in provider_names:
                continue
            high = consumer.highwater(tp)
            done = state.positions.get((tp.topic, tp.partition))
            if done is None:
                position = await consumer.position(tp)
                done = position if position is not None else 0
            state.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, high - done))

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

    state = open_state(settings)
    if dashboard_port:
        serve_dashboard(state, dashboard_port)
    app = create_app(state)
    worker = faust.Worker(app, override_logging=False, redirect_stdouts=False, quiet=True)
    try:
        worker.execute_from_commandline()
    finally:
        state.producer.flush(30)
        state.warehouse.close()
