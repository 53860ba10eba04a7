"""From a validated extract row to the Avro event linkwatch publishes.

The identity columns a provider holds in clear text are pseudonymised here, before
anything leaves the provider: the national identifier becomes a keyed token in a
labelled pseudonym domain, names and date of birth may become Bloom-filter encodings,
and clear names, full dates of birth and PC6 postcodes are sent only when the provider's
agreement allows it (:class:`IdentityPolicy`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from linkwatch.schemas.pseudonymise import BloomEncoder, PseudonymDomain

# Event ids are UUID5 names in this namespace, so a re-delivered record keeps its id.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c1d0e-3c55-5a8e-9c1b-6c696e6b7761")
SOURCE_DATE_COLUMN = {
    "gp_consultation": "contact_date",
    "ooh_contact": "contact_start_time",
    "hospital_episode": "admission_date",
}
SOURCE_COLUMNS = {
    "gp_consultation": (
        "episode_id",
        "icpc_code",
        "episode_start_date",
        "contact_date",
        "contact_type",
    ),
    "ooh_contact": (
        "contact_start_time",
        "contact_type",
        "urgency",
        "entry_complaint",
        "icpc_code",
        "referral",
    ),
    "hospital_episode": (
        "admission_date",
        "discharge_date",
        "admission_type",
        "care_type",
        "main_diagnosis",
        "secondary_diagnoses",
    ),
}
ENUM_DEFAULTS = {"admission_type": "UNKNOWN", "care_type": "UNKNOWN", "referral": "NONE"}


@dataclass(frozen=True)
class IdentityPolicy:
    """What of a person's identity leaves the provider, and how it is encoded."""

    domain: PseudonymDomain | None = None
    bloom: BloomEncoder | None = None
    clear_names: bool = False
    full_date_of_birth: bool = True
    postcode_pc4_only: bool = False
    house_number: bool = True


def identity_block(values: Mapping[str, Any], policy: IdentityPolicy) -> dict[str, Any]:
    """The Avro ``Identity`` record for one validated row under ``policy``."""
    national_id = values.get("national_id")
    token = policy.domain.national_id_token(national_id) if policy.domain and national_id else None
    dob: date | None = values.get("date_of_birth")
    birth_year = values.get("birth_year") or (dob.year if dob else None)
    given, family = values.get("given_name"), values.get("family_name")
    bloom = policy.bloom
    dob_text = (
        dob.isoformat()
        if dob and policy.full_date_of_birth
        else (str(birth_year) if birth_year else None)
    )
    postcode = values.get("postcode")
    if postcode and policy.postcode_pc4_only:
        postcode = postcode[:4]
    return {
        "national_id_token": token,
        "pseudonym_domain": policy.domain.label if token and policy.domain else None,
        "pseudonym_version": policy.domain.version if token and policy.domain else None,
        "given_name": given if policy.clear_names else None,
        "family_name": family if policy.clear_names else None,
        "given_name_bloom": bloom.encode(given, "given_name") if bloom and given else None,
        "family_name_bloom": bloom.encode(family, "family_name") if bloom and family else None,
        "date_of_birth_bloom": bloom.encode(dob_text, "date_of_birth")
        if bloom and dob_text
        else None,
        "bloom_encoding": bloom.label if bloom and (given or family or dob_text) else None,
        "date_of_birth": dob if policy.full_date_of_birth else None,
        "birth_year": birth_year,
        "sex": values.get("sex") or "UNKNOWN",
        "postcode": postcode,
        "house_number": values.get("house_number") if policy.house_number else None,
    }


def event_time_of(source: str, values: Mapping[str, Any]) -> datetime:
    """The row's event_time, or its event date at midnight UTC when the extract has none."""
    given = values.get("event_time")
    if isinstance(given, datetime):
        return given
    when = values[SOURCE_DATE_COLUMN[source]]
    return when if isinstance(when, datetime) else datetime.combine(when, time(), tzinfo=UTC)


def to_event(
    source: str, values: Mapping[str, Any], policy: IdentityPolicy, schema_version: int = 1
) -> dict[str, Any]:
    """The Avro record (for ``schemas/avro/<source>.v<schema_version>.avsc``) of one valid row."""
    when = event_time_of(source, values)
    key = f"{source}|{values['provider_id']}|{values['source_record_id']}|{when.isoformat()}"
    record: dict[str, Any] = {
        "schema_version": schema_version,
        "event_id": str(uuid.uuid5(EVENT_ID_NAMESPACE, key)),
        "event_time": when,
        "provider_id": values["provider_id"],
        "source_record_id": values["source_record_id"],
        "identity": identity_block(values, policy),
    }
    for name in SOURCE_COLUMNS[source]:
        value = values.get(name)
        record[name] = ENUM_DEFAULTS.get(name) if value is None and name in ENUM_DEFAULTS else value
    return record
