"""Topics and dead letters on the real broker."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaException

from linkwatch.streams.deadletter import DeadLetter, DeadLetterWriter, read_dead_letters
from linkwatch.streams.kafka_clients import KafkaUnavailable, make_producer, require_broker
from linkwatch.streams.topics import ALL_TOPICS, AREA_SES, DLQ, GP, describe_topics, ensure_topics


def test_topics_are_created_once_with_their_configuration(bootstrap_servers: str) -> None:
    first = ensure_topics(bootstrap_servers)
    assert set(first) <= {s.name for s in ALL_TOPICS}
    assert ensure_topics(bootstrap_servers) == []  # idempotent
    states = {
        s.name: s for s in describe_topics(bootstrap_servers, [GP.name, AREA_SES.name, DLQ.name])
    }
    assert states[GP.name].partitions == GP.partitions
    assert states[AREA_SES.name].config["cleanup.policy"] == "compact"
    assert states[DLQ.name].config["retention.ms"] == "-1"


def test_dead_letters_round_trip_through_kafka(bootstrap_servers: str) -> None:
    topic = f"test.dlq.{time.monotonic_ns()}"
    writer = DeadLetterWriter(make_producer(bootstrap_servers), topic)
    letters = [
        DeadLetter(
            stage="publish",
            reason_code="invalid_code",
            reason="icpc_code 'X99.9' is not an ICPC-1 code",
            original=b"gp-17,X99.9,...",
            field="icpc_code",
            value="X99.9",
            record_id="gp-17",
            source_file="extract.csv",
            record_number=17,
        ),
        DeadLetter(
            stage="ingest",
            reason_code="undecodable",
            reason="not Avro single-object encoding (marker missing)",
            original=bytes(range(256)),
            source_topic="ehr.gp.v1",
            source_partition=2,
            source_offset=40_001,
        ),
    ]
    for letter in letters:
        writer.send(letter)
    writer.flush()
    assert writer.counts == {"invalid_code": 1, "undecodable": 1}
    assert read_dead_letters(bootstrap_servers, topic) == letters


def test_an_unreachable_broker_fails_fast_with_the_fix() -> None:
    started = time.monotonic()
    with pytest.raises(KafkaUnavailable, match="linkwatch stack up"):
        require_broker("127.0.0.1:1", timeout=2)
    assert time.monotonic() - started < 30  # bounded, not hanging


def test_creating_topics_on_an_unreachable_broker_raises() -> None:
    with pytest.raises(KafkaException):
        ensure_topics("127.0.0.1:1", timeout=2)
