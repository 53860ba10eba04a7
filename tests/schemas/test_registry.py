"""Shipped Avro schemas: loading, fingerprints, single-object and Confluent encodings, evolution."""

from __future__ import annotations

import struct
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastavro.schema import fingerprint as fastavro_fingerprint
from hypothesis import given, settings
from hypothesis import strategies as st

from linkwatch.schemas.registry import (
    DecodeError,
    EncodeError,
    SchemaError,
    SchemaRegistry,
    crc64_avro,
    parsing_canonical_form,
    schema_fingerprint,
)

REGISTRY = SchemaRegistry.shipped()
EVENT_SCHEMAS = ("gp_consultation", "ooh_contact", "hospital_episode")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def identity(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "national_id_token": "ab" * 32,
        "pseudonym_domain": "linkwatch.bsn",
        "pseudonym_version": "hmac-sha256/1",
        "given_name": None,
        "family_name": None,
        "given_name_bloom": b"\x01" * 128,
        "family_name_bloom": None,
        "date_of_birth_bloom": None,
        "bloom_encoding": "clk/q2-k20-l1024/1",
        "date_of_birth": date(1961, 5, 4),
        "birth_year": 1961,
        "sex": "FEMALE",
        "postcode": "9712CP",
        "house_number": "12A",
    }
    return base | overrides


def envelope(record_id: str = "r-1") -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        "event_time": datetime(2021, 3, 4, 18, 30, tzinfo=UTC),
        "provider_id": "GP0001",
        "source_record_id": record_id,
        "identity": identity(),
    }


SAMPLES: dict[str, dict[str, Any]] = {
    "gp_consultation": envelope()
    | {
        "episode_id": "EP1",
        "icpc_code": "R83.03",
        "episode_start_date": date(2021, 3, 1),
        "contact_date": date(2021, 3, 4),
        "contact_type": "TELEPHONE",
    },
    "ooh_contact": envelope()
    | {
        "contact_start_time": datetime(2021, 3, 4, 21, 5, tzinfo=UTC),
        "contact_type": "HOME_VISIT",
        "urgency": "U2",
        "entry_complaint": "Kortademigheid",
        "icpc_code": "R02",
        "referral": "EMERGENCY_DEPARTMENT",
    },
    "hospital_episode": envelope()
    | {
        "admission_date": date(2021, 3, 10),
        "discharge_date": None,
        "admission_type": "ACUTE",
        "care_type": "CLINICAL",
        "main_diagnosis": "U07.1",
        "secondary_diagnoses": ["J12.8", "I10"],
    },
    "area_ses": {
        "schema_version": 1,
        "pc4": "9712",
        "year": 2021,
        "households": 4100,
        "ses_woa_mean": -0.211,
        "ses_quintile": 4,
        "population": [{"age_band": "AGE_45_64", "sex": "FEMALE", "count": 812}],
    },
}


def test_crc64_avro_matches_the_avro_specification_test_vectors() -> None:
    # share/test/data/schema-tests.txt of the Avro project, as signed Java longs.
    assert _signed(crc64_avro(b'"int"')) == 8247732601305521295
    assert crc64_avro(b'"int"') == 0x7275D51A3F395C8F
    assert _signed(crc64_avro(b'"null"')) == 7195948357588979594
    record = '{"fields":[], "type":"record", "name":"foo"}'
    assert _signed(schema_fingerprint(record)) == -4824392279771201922


def test_logical_types_do_not_change_the_fingerprint() -> None:
    # The Parsing Canonical Form drops logicalType.
    assert schema_fingerprint({"type": "int", "logicalType": "date"}) == schema_fingerprint("int")


def test_every_schema_is_shipped_in_its_versions() -> None:
    assert REGISTRY.names() == [
        "alert",
        "area_ses",
        "gp_consultation",
        "hospital_episode",
        "ooh_contact",
    ]
    assert [sv.version for sv in REGISTRY.versions("gp_consultation")] == [1, 2]
    assert REGISTRY.latest("ooh_contact").version == 1


@pytest.mark.parametrize("name", ["area_ses", *EVENT_SCHEMAS])
def test_fingerprints_agree_with_fastavro(name: str) -> None:
    for sv in REGISTRY.versions(name):
        assert sv.canonical_form == parsing_canonical_form(sv.schema)
        assert sv.fingerprint_bytes.hex() == fastavro_fingerprint(sv.canonical_form, "CRC-64-AVRO")


def _fields(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, list):
        for item in node:
            found += _fields(item, path)
    elif isinstance(node, dict):
        for f in node.get("fields", []):
            found.append((f"{path}{f['name']}", f))
            found += _fields(f["type"], f"{path}{f['name']}.")
        for key in ("items", "type"):
            if isinstance(node.get(key), dict | list):
                found += _fields(node[key], path)
    return found


@pytest.mark.parametrize("name", ["area_ses", *EVENT_SCHEMAS])
def test_every_field_is_documented(name: str) -> None:
    for sv in REGISTRY.versions(name):
        undocumented = [p for p, f in _fields(sv.schema) if not f.get("doc", "").strip()]
        assert undocumented == [], f"{name} v{sv.version}"


@pytest.mark.parametrize("name", EVENT_SCHEMAS)
def test_event_schemas_share_the_identity_block_and_envelope(name: str) -> None:
    fields = dict(_fields(REGISTRY.latest(name).schema))
    for required in ("event_id", "event_time", "provider_id", "source_record_id", "schema_version"):
        assert required in fields
    assert fields["event_time"]["type"] == {"type": "long", "logicalType": "timestamp-millis"}
    for part in ("national_id_token", "pseudonym_domain", "pseudonym_version", "birth_year", "sex"):
        assert f"identity.{part}" in fields
    assert fields["identity.date_of_birth"]["type"][1]["logicalType"] == "date"


@pytest.mark.parametrize("name", ["area_ses", *EVENT_SCHEMAS])
def test_single_object_round_trip(name: str) -> None:
    data = REGISTRY.encode(SAMPLES[name], name, 1)
    sv = REGISTRY.get(name, 1)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == sv.fingerprint.to_bytes(8, "little")
    writer, record = REGISTRY.decode(data, name, 1)
    assert writer is sv
    assert record == SAMPLES[name]


def test_confluent_wire_format_is_decoded_with_a_schema_id_mapping() -> None:
    sv = REGISTRY.get("ooh_contact")
    data = REGISTRY.encode_confluent(SAMPLES["ooh_contact"], 42, "ooh_contact")
    assert data[:5] == b"\x00" + struct.pack(">I", 42)
    writer, record = REGISTRY.decode_confluent(data, {42: sv})
    assert writer is sv
    assert record == SAMPLES["ooh_contact"]
    assert REGISTRY.decode_any(data, {42: sv})[1] == record
    assert REGISTRY.decode_any(REGISTRY.encode(record, "ooh_contact"))[1] == record
    with pytest.raises(DecodeError, match="unknown Confluent schema id 7"):
        REGISTRY.decode_confluent(b"\x00" + struct.pack(">I", 7) + data[5:], {42: sv})


def test_messages_that_are_not_ours_are_refused_with_a_reason() -> None:
    good = REGISTRY.encode(SAMPLES["gp_consultation"], "gp_consultation", 1)
    with pytest.raises(DecodeError, match="not Avro single-object encoding"):
        REGISTRY.decode(b"{json}")
    with pytest.raises(DecodeError, match="unknown writer schema fingerprint"):
        REGISTRY.decode(good[:2] + bytes(8) + good[10:])
    with pytest.raises(DecodeError, match="does not decode as gp_consultation v1"):
        REGISTRY.decode(good[:-20])
    with pytest.raises(DecodeError, match="not Confluent wire format"):
        REGISTRY.decode_confluent(good, {})


def test_a_record_that_does_not_fit_is_refused() -> None:
    bad = SAMPLES["ooh_contact"] | {"urgency": "U7"}
    with pytest.raises(EncodeError, match="ooh_contact v1"):
        REGISTRY.encode(bad, "ooh_contact")
    with pytest.raises(SchemaError, match="unknown schema 'lab_result'"):
        REGISTRY.get("lab_result")
    with pytest.raises(SchemaError, match="no version 9"):
        REGISTRY.get("gp_consultation", 9)


def test_v2_reader_reads_v1_data_with_defaults() -> None:
    v1_data = REGISTRY.encode(SAMPLES["gp_consultation"], "gp_consultation", 1)
    writer, record = REGISTRY.decode(v1_data, "gp_consultation", 2)
    assert writer.version == 1
    assert record["nhg_table_version"] is None
    assert record["contact_type"] == "TELEPHONE"
    assert record["icpc_code"] == "R83.03"


def test_v1_reader_reads_v2_data_dropping_new_fields_and_symbols() -> None:
    v2_record = SAMPLES["gp_consultation"] | {
        "schema_version": 2,
        "contact_type": "VIDEO",
        "nhg_table_version": "9",
    }
    data = REGISTRY.encode(v2_record, "gp_consultation", 2)
    writer, record = REGISTRY.decode(data, "gp_consultation", 1)
    assert writer.version == 2
    assert "nhg_table_version" not in record
    # A symbol the v1 reader does not know resolves to the enum's default.
    assert record["contact_type"] == "OTHER"
    assert record["episode_id"] == "EP1"


def test_registry_refuses_two_schemas_with_one_fingerprint() -> None:
    text = '{"type": "record", "name": "A", "fields": [], "doc": "x"}'
    with pytest.raises(SchemaError, match="same fingerprint"):
        SchemaRegistry.from_texts({"a.v1.avsc": text, "b.v1.avsc": text})
    with pytest.raises(SchemaError, match="expected a name like"):
        SchemaRegistry.from_texts({"A.avsc": text})


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@settings(max_examples=60, deadline=None)
@given(
    given_name=st.none() | names,
    family=st.none() | names,
    birth=st.none() | st.dates(date(1900, 1, 1), date(2024, 12, 31)),
    icpc=st.none() | st.from_regex(r"[A-Z][0-9]{2}(\.[0-9]{2})?", fullmatch=True),
    contact=st.dates(date(2000, 1, 1), date(2030, 1, 1)),
    version=st.sampled_from([1, 2]),
)
def test_any_gp_record_survives_a_round_trip_in_either_version(
    given_name: str | None,
    family: str | None,
    birth: date | None,
    icpc: str | None,
    contact: date,
    version: int,
) -> None:
    record = SAMPLES["gp_consultation"] | {
        "identity": identity(given_name=given_name, family_name=family, date_of_birth=birth),
        "icpc_code": icpc,
        "contact_date": contact,
    }
    if version == 2:
        record = record | {"schema_version": 2, "nhg_table_version": None}
    writer, decoded = REGISTRY.decode(REGISTRY.encode(record, "gp_consultation", version))
    assert writer.version == version
    assert decoded == record | ({"nhg_table_version": None} if version == 1 else {})
