"""The ingest stage: every message becomes exactly one event or one dead letter with its reason."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkwatch.schemas.events import IdentityPolicy, to_event
from linkwatch.schemas.pseudonymise import PseudonymDomain
from linkwatch.schemas.registry import SchemaRegistry
from linkwatch.schemas.synth import SynthConfig, generate
from linkwatch.schemas.validation import validate_file
from linkwatch.streams.ingest import RawMessage, ingest_batch

REGISTRY = SchemaRegistry.shipped()
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
POLICY = IdentityPolicy(domain=PseudonymDomain("nl-ehr", "1", b"secret-0123456789abcdef"))
TOPICS = {
    "gp_consultation": "ehr.gp.v1",
    "ooh_contact": "ehr.ooh.v1",
    "hospital_episode": "ehr.hospital.v1",
}


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    data = generate(SynthConfig(persons=300, years=1, seed=2))
    root = tmp_path_factory.mktemp("ingest")
    out: dict[str, list[dict[str, Any]]] = {}
    for source, table in data.extracts.items():
        path = root / f"{source}.csv"
        pacsv.write_csv(table.slice(0, 200), path)
        rows = [r for r in validate_file(Path(path), source, today=NOW.date()) if r.ok]
        out[source] = [to_event(source, r.values or {}, POLICY) for r in rows]
    return out


def message(topic: str, value: bytes | None, offset: int = 0) -> RawMessage:
    return RawMessage(topic, 0, offset, b"key-1", value)


def now() -> dt.datetime:
    return NOW


def test_valid_events_of_every_source_are_ingested_with_their_codes(
    events: dict[str, list[dict[str, Any]]],
) -> None:
    for source, records in events.items():
        batch = [
            message(TOPICS[source], REGISTRY.encode(r, source), i) for i, r in enumerate(records)
        ]
        result = ingest_batch(batch, REGISTRY, now=now)
        assert result.dead_letters == []
        assert [e.event_id for e in result.events] == [r["event_id"] for r in records]
        assert [e.offset for e in result.events] == list(range(len(records)))
        for event, record in zip(result.events, records, strict=True):
            assert event.source == source
            assert event.identity == record["identity"]
            if source == "hospital_episode":
                expected = [record["main_diagnosis"], *(record["secondary_diagnoses"] or [])]
                assert [c for _, c in event.codes] == [c for c in expected if c]
            else:
                assert [c for _, c in event.codes] == (
                    [record["icpc_code"]] if record["icpc_code"] else []
                )


def test_unusable_messages_are_dead_lettered_with_reason_and_position(
    events: dict[str, list[dict[str, Any]]],
) -> None:
    good = events["gp_consultation"][0]
    encoded = REGISTRY.encode(good, "gp_consultation")
    future = {**good, "event_time": NOW + dt.timedelta(days=30)}
    bad_code = {**good, "icpc_code": "Q12"}
    born_later = {**good, "identity": {**good["identity"], "date_of_birth": dt.date(2029, 12, 1)}}
    area = {
        "schema_version": 1,
        "pc4": "1011",
        "year": 2021,
        "households": 1,
        "ses_woa_mean": 0.1,
        "ses_quintile": 2,
        "population": [],
    }
    cases = {
        "undecodable": os.urandom(64),
        "unknown_schema": b"\xc3\x01" + b"\x00" * 8 + encoded[10:],
        "wrong_schema": REGISTRY.encode(area, "area_ses"),
        "implausible_date": REGISTRY.encode(future, "gp_consultation"),
        "invalid_code": REGISTRY.encode(bad_code, "gp_consultation"),
        "empty_message": b"",
    }
    batch = [message("ehr.gp.v1", value, offset) for offset, value in enumerate(cases.values())]
    batch.append(message("ehr.gp.v1", encoded[:-7], 98))  # truncated Avro
    batch.append(message("ehr.gp.v1", REGISTRY.encode(born_later, "gp_consultation"), 99))
    result = ingest_batch(batch, REGISTRY, now=now)
    assert result.events == []
    codes = [d.reason_code for d in result.dead_letters]
    assert codes == [*cases, "undecodable", "implausible_date"]
    for letter, raw in zip(result.dead_letters, batch, strict=True):
        assert letter.stage == "ingest"
        assert letter.source_topic == "ehr.gp.v1"
        assert letter.source_offset == raw.offset
        assert letter.original == (raw.value or b"")
        assert letter.reason
    assert result.dead_letters[4].field == "icpc_code"
    assert result.dead_letters[4].value == "Q12"


def test_confluent_wire_format_is_accepted_with_its_schema_ids(
    events: dict[str, list[dict[str, Any]]],
) -> None:
    record = events["hospital_episode"][0]
    data = REGISTRY.encode_confluent(record, 17, "hospital_episode")
    ids = {17: REGISTRY.latest("hospital_episode")}
    ok = ingest_batch([message("ehr.hospital.v1", data)], REGISTRY, now=now, confluent_schemas=ids)
    assert [e.event_id for e in ok.events] == [record["event_id"]]
    unknown = ingest_batch([message("ehr.hospital.v1", data)], REGISTRY, now=now)
    assert [d.reason_code for d in unknown.dead_letters] == ["unknown_schema"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_any_bytes_give_exactly_one_outcome_per_message(values: list[bytes]) -> None:
    batch = [message("ehr.ooh.v1", v, i) for i, v in enumerate(values)]
    result = ingest_batch(batch, REGISTRY, now=now)
    assert len(result.events) + len(result.dead_letters) == len(values)
