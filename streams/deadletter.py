"""Dead letters: every record linkwatch could not use, with why, where it came from, and its bytes.

A dead letter is a small JSON document (readable with any Kafka tool, whatever
the original bytes were) keyed like the original record, with the reason code
also in a header so consumers can filter without parsing.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections import Counter
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from typing import Any

from confluent_kafka import Producer

from linkwatch.streams.topics import DLQ

FORMAT = "linkwatch.dlq/1"


@dataclass(frozen=True)
class DeadLetter:
    """One unusable record.

    ``stage`` is where it was refused (``publish``, ``ingest``, ``link``, ``sink``);
    ``reason_code`` a stable machine-readable word (``invalid_code``,
    ``undecodable``, ...); ``reason`` the sentence a person reads.
    """

    stage: str
    reason_code: str
    reason: str
    original: bytes
    field: str | None = None
    value: str | None = None
    record_id: str | None = None
    provider: str | None = None
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    source_file: str | None = None
    record_number: int | None = None
    key: bytes | None = None
    # ``field`` above is an attribute here, so the dataclasses helper goes by another name.
    detected_at: str = dataclass_field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    )

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {"format": FORMAT, **asdict(self)}
        doc["original"] = base64.b64encode(self.original).decode()
        doc["key"] = base64.b64encode(self.key).decode() if self.key is not None else None
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> DeadLetter:
        doc = json.loads(data)
        if doc.pop("format", None) != FORMAT:
            raise ValueError(f"not a {FORMAT} dead letter")
        doc["original"] = base64.b64decode(doc["original"])
        doc["key"] = base64.b64decode(doc["key"]) if doc.get("key") is not None else None
        return cls(**doc)

    def headers(self) -> list[tuple[str, str | bytes | None]]:
        return [
            ("linkwatch-reason", self.reason_code.encode()),
            ("linkwatch-stage", self.stage.encode()),
        ]


class DeadLetterWriter:
    """Sends dead letters to the dead-letter topic and counts them by reason."""

    def __init__(self, producer: Producer, topic: str = DLQ.name) -> None:
        self.producer = producer
        self.topic = topic
        self.counts: Counter[str] = Counter()
        self.failures: list[str] = []

    def send(self, letter: DeadLetter) -> None:
        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                self.failures.append(f"{letter.record_id or letter.record_number}: {err}")

        self.producer.produce(
            self.topic,
            key=letter.key or (letter.record_id.encode() if letter.record_id else None),
            value=letter.to_json(),
            headers=letter.headers(),
            on_delivery=on_delivery,
        )
        self.counts[letter.reason_code] += 1
        self.producer.poll(0)

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until every dead letter is acknowledged; raise if any could not be written."""
        remaining = self.producer.flush(timeout)
        if remaining or self.failures:
            raise RuntimeError(
                f"{remaining} dead letters still unacknowledged and {len(self.failures)} failed "
                f"on {self.topic}: {self.failures[:3]}"
            )


def read_dead_letters(
    bootstrap_servers: str, topic: str = DLQ.name, timeout: float = 10.0
) -> list[DeadLetter]:
    """Every dead letter on ``topic``, oldest first (reads without joining a consumer group)."""
    from linkwatch.streams.kafka_clients import read_topic

    return [DeadLetter.from_json(v) for _, v in read_topic(bootstrap_servers, topic, timeout) if v]


def problem_letter(problem: Any, source_file: str, stage: str = "publish") -> DeadLetter:
    """The dead letter of a validation problem that concerns a file, not one record."""
    return DeadLetter(
        stage=stage,
        reason_code=problem.category,
        reason=problem.reason,
        original=b"",
        field=problem.field or None,
        value=problem.value or None,
        source_file=source_file,
        record_number=problem.record_number,
    )
