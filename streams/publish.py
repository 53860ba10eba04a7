"""Publishing provider extracts to Kafka: validate, pseudonymise, encode, produce; account for all.

The Python API behind ``linkwatch publish``. Every record of an extract ends in
exactly one of three places, and the report says how many went where:

* published — validated, pseudonymised (``linkwatch.schemas.events``), Avro
  single-object encoded and acknowledged by the broker (idempotent producer,
  ``acks=all``, keyed by the provider's record id);
* rejected — written to the rejects file (one line per problem) and to the
  dead-letter topic (one dead letter per record, with the original bytes);
* failed — accepted but not acknowledged by the broker before the delivery
  timeout (only when the broker stays away longer than that).

A broker that goes away mid-run is waited for: librdkafka retries, and the
idempotent producer keeps retries from duplicating records.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from confluent_kafka import KafkaError, Message

from linkwatch.schemas.events import IdentityPolicy, to_event
from linkwatch.schemas.registry import SchemaRegistry
from linkwatch.schemas.validation import (
    ColumnMapping,
    Problem,
    RowResult,
    validate_file,
)
from linkwatch.streams import topics
from linkwatch.streams.deadletter import DeadLetter, DeadLetterWriter, problem_letter
from linkwatch.streams.kafka_clients import make_producer, require_broker

SOURCE_TOPICS = {
    "gp_consultation": topics.GP.name,
    "ooh_contact": topics.OOH.name,
    "hospital_episode": topics.HOSPITAL.name,
}
REJECT_COLUMNS = (
    "source",
    "input",
    "record_number",
    "source_record_id",
    "field",
    "value",
    "category",
    "reason",
)

Progress = Callable[[int], None]


@dataclass
class PublishReport:
    """What happened to every record of one input."""

    source: str
    input: str
    topic: str
    read: int = 0
    published: int = 0
    rejected: int = 0
    failed: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    file_problems: list[Problem] = field(default_factory=list)
    delivery_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        """True when every record read is accounted for."""
        return self.read == self.published + self.rejected + self.failed

    @property
    def clean(self) -> bool:
        """Nothing rejected, nothing failed, no file-level problem."""
        return not (self.rejected or self.failed or self.file_problems)


class RejectsFile:
    """The rejects CSV: one line per problem, across all inputs of a run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Open for the whole run (several inputs); close() ends it.
        self._fh: TextIO = open(  # noqa: SIM115
            path, "w", newline="", encoding="utf-8", errors="backslashreplace"
        )
        self._writer = csv.writer(self._fh)
        self._writer.writerow(REJECT_COLUMNS)
        self.lines = 0

    def write(self, source: str, input_name: str, record_id: str | None, problem: Problem) -> None:
        self._writer.writerow(
            (
                source,
                input_name,
                problem.record_number,
                record_id or "",
                problem.field,
                problem.value,
                problem.category,
                problem.reason,
            )
        )
        self.lines += 1

    def close(self) -> None:
        self._fh.close()


class ProviderPublisher:
    """Publishes validated, pseudonymised provider records; one instance per run."""

    def __init__(
        self,
        bootstrap_servers: str,
        policy: IdentityPolicy,
        *,
        registry: SchemaRegistry | None = None,
        rejects: RejectsFile | None = None,
        dead_letters: bool = True,
        broker_timeout: float = 10.0,
        delivery_timeout_s: float = 300.0,
        topic_for: dict[str, str] | None = None,
        dead_letter_topic: str = topics.DLQ.name,
    ) -> None:
        require_broker(bootstrap_servers, broker_timeout)
        self.topic_for = {**SOURCE_TOPICS, **(topic_for or {})}
        # Create the topics with their intended partitions before the first record:
        # a broker that auto-creates topics would otherwise give them its default.
        specs = {s.name: s for s in topics.ALL_TOPICS}
        wanted = [
            topics.TopicSpec(
                name,
                specs[SOURCE_TOPICS[src]].partitions,
                "provider events",
                specs[SOURCE_TOPICS[src]].config,
            )
            for src, name in self.topic_for.items()
        ]
        wanted.append(
            topics.TopicSpec(
                dead_letter_topic, topics.DLQ.partitions, "dead letters", topics.DLQ.config
            )
        )
        topics.ensure_topics(bootstrap_servers, tuple(wanted))
        self.policy = policy
        self.registry = registry or SchemaRegistry.shipped()
        self.rejects = rejects
        self.producer = make_producer(
            bootstrap_servers, **{"delivery.timeout.ms": int(delivery_timeout_s * 1000)}
        )
        self.dead_letters = (
            DeadLetterWriter(self.producer, dead_letter_topic) if dead_letters else None
        )

    def publish_file(
        self,
        path: Path,
        source: str,
        *,
        fmt: str | None = None,
        encoding: str = "utf-8",
        mapping: ColumnMapping | None = None,
        today: date | None = None,
        input_name: str | None = None,
        on_progress: Progress | None = None,
    ) -> PublishReport:
        """Publish one extract; returns once every record is acknowledged or accounted failed."""
        if source not in SOURCE_TOPICS:
            raise ValueError(
                f"unknown source {source!r}: expected one of {', '.join(SOURCE_TOPICS)}"
            )
        name = input_name or str(path)
        report = PublishReport(source, name, self.topic_for[source])
        started = time.monotonic()
        schema = self.registry.latest(source)
        for result in validate_file(
            path, source, fmt=fmt, encoding=encoding, today=today, mapping=mapping
        ):
            if result.record_number == 0:
                report.file_problems.extend(result.problems)
                for problem in result.problems:
                    report.rejected_by_reason[problem.category] += 1
                    self._reject_file(report, problem)
                continue
            report.read += 1
            if result.ok:
                self._produce(report, result, schema.version)
            else:
                self._reject_record(report, result)
            if on_progress is not None:
                on_progress(1)
        self._settle(report)
        report.seconds = time.monotonic() - started
        return report

    # -- internals ------------------------------------------------------------
    def _produce(self, report: PublishReport, result: RowResult, version: int) -> None:
        assert result.values is not None
        event = to_event(report.source, result.values, self.policy, schema_version=version)
        value = self.registry.encode(event, report.source, version)
        key = str(result.values["source_record_id"]).encode()

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                report.published += 1
            else:
                report.failed += 1
                report.delivery_errors.append(f"record {result.record_number}: {err.str()}")

        while True:
            try:
                self.producer.produce(
                    report.topic,
                    key=key,
                    value=value,
                    headers=[("linkwatch-source", report.source.encode())],
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                # The local queue is full (the broker is slow or away): wait for room.
                self.producer.poll(0.1)
        self.producer.poll(0)

    def _reject_record(self, report: PublishReport, result: RowResult) -> None:
        report.rejected += 1
        record_id = _text(result.raw.get("source_record_id"))
        first = result.problems[0]
        report.rejected_by_reason[first.category] += 1
        for problem in result.problems:
            if self.rejects is not None:
                self.rejects.write(report.source, report.input, record_id, problem)
        if self.dead_letters is not None:
            self.dead_letters.send(
                DeadLetter(
                    stage="publish",
                    reason_code=first.category,
                    reason="; ".join(f"{p.field or '-'}: {p.reason}" for p in result.problems),
                    original=_original_bytes(result.raw),
                    field=first.field or None,
                    value=first.value or None,
                    record_id=record_id,
                    provider=_text(result.raw.get("provider_id")),
                    source_file=report.input,
                    record_number=result.record_number,
                    source_topic=None,
                )
            )

    def _reject_file(self, report: PublishReport, problem: Problem) -> None:
        """A problem with the input as a whole (empty, another source's layout)."""
        if self.rejects is not None:
            self.rejects.write(report.source, report.input, None, problem)
        if self.dead_letters is not None:
            self.dead_letters.send(problem_letter(problem, report.input))

    def _settle(self, report: PublishReport) -> None:
        """Wait until every record of this input is acknowledged or has failed."""
        while report.published + report.failed < report.read - report.rejected:
            self.producer.poll(0.2)
        if self.dead_letters is not None:
            self.dead_letters.flush()

    def close(self) -> None:
        self.producer.flush(30)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _original_bytes(raw: dict[str, Any]) -> bytes:
    """The record as the provider sent it, as near as the reader keeps it.

    CSV cells come back as one CSV line in the file's own bytes (undecodable bytes
    were kept as surrogate escapes); Parquet and JSON records as JSON.
    """
    cells = {k: v for k, v in raw.items() if not k.startswith("__")}
    if all(v is None or isinstance(v, str) for v in cells.values()):
        buffer = io.StringIO()
        csv.writer(buffer).writerow(["" if v is None else v for v in cells.values()])
        return buffer.getvalue().rstrip("\r\n").encode("utf-8", "surrogateescape")
    return json.dumps(cells, default=str, ensure_ascii=True).encode()


def iter_inputs(paths: list[Path], stdin: Callable[[], bytes]) -> Iterator[tuple[Path, str]]:
    """(path to read, name to report) per input; ``-`` spools standard input to a temporary file."""
    import tempfile

    for path in paths:
        if str(path) == "-":
            spool = Path(tempfile.mkstemp(prefix="linkwatch-stdin-", suffix=".csv")[1])
            spool.write_bytes(stdin())
            yield spool, "<stdin>"
            spool.unlink(missing_ok=True)
        else:
            yield path, str(path)


@dataclass
class AreaReport:
    """What happened to every row of an area table."""

    input: str
    topic: str
    published: int = 0
    rejected: list[Problem] = field(default_factory=list)


def publish_areas(
    bootstrap_servers: str,
    path: Path,
    *,
    mapping: ColumnMapping | None = None,
    fmt: str | None = None,
    topic: str = topics.AREA_SES.name,
    dead_letter_topic: str = topics.DLQ.name,
) -> AreaReport:
    """Publish the area SES table to its compacted topic, keyed ``pc4/year``.

    Republishing the same table is harmless: compaction keeps the latest value per key.
    """
    from linkwatch.schemas.areas import area_key, read_areas

    require_broker(bootstrap_servers)
    topics.ensure_topics(
        bootstrap_servers,
        (
            topics.TopicSpec(topic, topics.AREA_SES.partitions, "areas", topics.AREA_SES.config),
            topics.TopicSpec(
                dead_letter_topic, topics.DLQ.partitions, "dead letters", topics.DLQ.config
            ),
        ),
    )
    records, problems = read_areas(path, fmt=fmt, mapping=mapping)
    registry = SchemaRegistry.shipped()
    producer = make_producer(bootstrap_servers)
    report = AreaReport(str(path), topic, rejected=problems)
    failures: list[str] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            report.published += 1
        else:
            failures.append(err.str())

    for record in records:
        producer.produce(
            topic,
            key=area_key(record),
            value=registry.encode(record, "area_ses"),
            on_delivery=on_delivery,
        )
        producer.poll(0)
    dead_letters = DeadLetterWriter(producer, dead_letter_topic)
    for problem in problems:
        dead_letters.send(problem_letter(problem, str(path)))
    producer.flush(120)
    dead_letters.flush()
    if failures:
        raise RuntimeError(f"{len(failures)} area records not delivered to {topic}: {failures[0]}")
    return report
