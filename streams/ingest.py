"""The ingest stage: provider messages in, decoded and checked events out, the rest dead-lettered.

A batch of raw Kafka messages becomes ``IngestedEvent``s (identity part and
clinical part of each event, with its source position) and ``DeadLetter``s —
one per message that cannot be used, with the reason, the source topic,
partition and offset, and the original bytes. A bad message never holds up its
neighbours.

Checks here are the ones a consumer cannot leave to the provider: the bytes are
one of linkwatch's schemas, the schema is the topic's, dates are plausible and
codes are valid on the day of the event. The publisher checks the same things,
but not every producer is the publisher.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from linkwatch.schemas.codelists import icd10_problem, icpc_problem
from linkwatch.schemas.registry import DecodeError, SchemaRegistry, SchemaVersion
from linkwatch.streams import topics
from linkwatch.streams.deadletter import DeadLetter

TOPIC_SOURCES = {
    topics.GP.name: "gp_consultation",
    topics.OOH.name: "ooh_contact",
    topics.HOSPITAL.name: "hospital_episode",
}
EARLIEST_EVENT = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)
FUTURE_TOLERANCE = dt.timedelta(days=1)


@dataclass(frozen=True)
class RawMessage:
    """One message as consumed, with where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class IngestedEvent:
    """A decoded, checked provider event, ready for linkage."""

    source: str
    topic: str
    partition: int
    offset: int
    schema_version: int
    event_id: str
    event_time: dt.datetime
    provider_id: str
    source_record_id: str
    identity: Mapping[str, Any]
    codes: tuple[tuple[str, str], ...]
    """(system, code) pairs: ("ICPC", "R83"), ("ICD10", "U09.9"); main diagnosis first."""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    """The source's own fields (contact type, urgency, admission dates, ...)."""


@dataclass
class IngestResult:
    events: list[IngestedEvent]
    dead_letters: list[DeadLetter]


class _Unusable(ValueError):
    def __init__(
        self, code: str, reason: str, field: str | None = None, value: str | None = None
    ) -> None:
        super().__init__(reason)
        self.code, self.reason, self.field, self.value = code, reason, field, value


def ingest_batch(
    messages: Sequence[RawMessage],
    registry: SchemaRegistry,
    *,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    confluent_schemas: Mapping[int, SchemaVersion] | None = None,
) -> IngestResult:
    """Decode and check a batch; every message ends as exactly one event or one dead letter."""
    result = IngestResult([], [])
    today = now()
    for message in messages:
        try:
            result.events.append(_ingest(message, registry, today, confluent_schemas))
        except _Unusable as exc:
            result.dead_letters.append(
                DeadLetter(
                    stage="ingest",
                    reason_code=exc.code,
                    reason=exc.reason,
                    original=message.value or b"",
                    key=message.key,
                    field=exc.field,
                    value=exc.value,
                    record_id=message.key.decode("utf-8", "replace") if message.key else None,
                    source_topic=message.topic,
                    source_partition=message.partition,
                    source_offset=message.offset,
                )
            )
    return result


def _ingest(
    message: RawMessage,
    registry: SchemaRegistry,
    now: dt.datetime,
    confluent_schemas: Mapping[int, SchemaVersion] | None,
) -> IngestedEvent:
    source = TOPIC_SOURCES.get(message.topic)
    if source is None:
        raise _Unusable("unknown_topic", f"linkwatch does not ingest topic {message.topic}")
    if not message.value:
        raise _Unusable("empty_message", "message has no value (a tombstone or an empty payload)")
    try:
        # Read with the writer's own (newest) schema: a record of another schema is then
        # named as such instead of failing schema resolution.
        writer, record = registry.decode_any(message.value, confluent_schemas)
    except DecodeError as exc:
        text = str(exc)
        unknown = ("unknown writer schema", "unknown Confluent schema id", "no schema-id mapping")
        code = "unknown_schema" if any(u in text for u in unknown) else "undecodable"
        raise _Unusable(code, text) from None
    except Exception as exc:  # fastavro raises assorted errors on truncated or foreign bytes
        raise _Unusable(
            "undecodable", f"not a valid {source} record: {type(exc).__name__}: {exc}"
        ) from None
    if writer.name != source:
        raise _Unusable(
            "wrong_schema",
            f"a {writer.name} record on {message.topic}, which carries {source} records",
        )
    return _event(source, writer, record, message, now)


def _event(
    source: str,
    writer: SchemaVersion,
    record: dict[str, Any],
    message: RawMessage,
    now: dt.datetime,
) -> IngestedEvent:
    when: dt.datetime = record["event_time"]
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    if when > now + FUTURE_TOLERANCE:
        raise _Unusable(
            "implausible_date",
            f"event_time {when.isoformat()} is in the future",
            "event_time",
            when.isoformat(),
        )
    if when < EARLIEST_EVENT:
        raise _Unusable(
            "implausible_date",
            f"event_time {when.isoformat()} is before {EARLIEST_EVENT.date()}",
            "event_time",
            when.isoformat(),
        )
    identity = record["identity"]
    dob: dt.date | None = identity.get("date_of_birth")
    if dob is not None and dob > when.date():
        raise _Unusable(
            "implausible_date",
            f"date of birth {dob} after the event {when.date()}",
            "date_of_birth",
            str(dob),
        )
    birth_year = identity.get("birth_year")
    if birth_year is not None and birth_year > when.year:
        raise _Unusable(
            "implausible_date",
            f"birth year {birth_year} after the event",
            "birth_year",
            str(birth_year),
        )
    codes = _codes(source, record, when.date())
    skip = {
        "schema_version",
        "event_id",
        "event_time",
        "provider_id",
        "source_record_id",
        "identity",
    }
    return IngestedEvent(
        source=source,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        schema_version=writer.version,
        event_id=record["event_id"],
        event_time=when,
        provider_id=record["provider_id"],
        source_record_id=record["source_record_id"],
        identity=identity,
        codes=codes,
        attributes={k: v for k, v in record.items() if k not in skip},
    )


def _codes(source: str, record: Mapping[str, Any], day: dt.date) -> tuple[tuple[str, str], ...]:
    codes: list[tuple[str, str]] = []
    if source in ("gp_consultation", "ooh_contact"):
        code = record.get("icpc_code")
        if code:
            problem = icpc_problem(code, day)
            if problem:
                raise _Unusable("invalid_code", f"icpc_code {code}: {problem}", "icpc_code", code)
            codes.append(("ICPC", code))
        return tuple(codes)
    for name, values in (
        ("main_diagnosis", [record.get("main_diagnosis")]),
        ("secondary_diagnoses", record.get("secondary_diagnoses") or []),
    ):
        for code in values:
            if not code:
                continue
            problem = icd10_problem(code, day)
            if problem:
                raise _Unusable("invalid_code", f"{name} {code}: {problem}", name, code)
            codes.append(("ICD10", code))
    return tuple(codes)
