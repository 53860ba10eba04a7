"""Validated extract rows become Avro events, pseudonymised at source and decodable."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from linkwatch.schemas.events import IdentityPolicy, to_event
from linkwatch.schemas.pseudonymise import BloomEncoder, PseudonymDomain
from linkwatch.schemas.registry import SchemaRegistry
from linkwatch.schemas.synth import SynthConfig, generate, write_outputs
from linkwatch.schemas.validation import validate_file

SECRET = b"a shared secret of the providers"
POLICY = IdentityPolicy(
    domain=PseudonymDomain("linkwatch.bsn", "hmac-sha256/1", SECRET),
    bloom=BloomEncoder(SECRET),
)
REGISTRY = SchemaRegistry.shipped()


@pytest.fixture(scope="module")
def extracts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("extracts")
    write_outputs(generate(SynthConfig(persons=400, years=1, seed=3)), out, ("csv",))
    return out


@pytest.mark.parametrize("source", ["gp_consultation", "ooh_contact", "hospital_episode"])
def test_synthetic_rows_become_events_that_round_trip(extracts: Path, source: str) -> None:
    count = 0
    for result in validate_file(extracts / f"{source}.csv", source, today=date(2026, 1, 1)):
        assert result.ok
        assert result.values is not None
        event = to_event(source, result.values, POLICY)
        _writer, decoded = REGISTRY.decode(REGISTRY.encode(event, source, 1), source, 1)
        assert decoded == event
        identity = decoded["identity"]
        # Nothing identifying leaves in clear text under the default policy.
        assert identity["given_name"] is None
        assert identity["family_name"] is None
        if result.values["national_id"]:
            assert identity["national_id_token"] == POLICY.domain.national_id_token(  # type: ignore[union-attr]
                result.values["national_id"]
            )
            assert identity["pseudonym_domain"] == "linkwatch.bsn"
        else:
            assert identity["national_id_token"] is None
            assert identity["pseudonym_domain"] is None
        count += 1
    assert count > 0


def test_event_ids_are_stable_for_a_redelivered_record(extracts: Path) -> None:
    first = next(iter(validate_file(extracts / "ooh_contact.csv", "ooh_contact")))
    assert first.values is not None
    assert (
        to_event("ooh_contact", first.values, POLICY)["event_id"]
        == to_event("ooh_contact", first.values, IdentityPolicy())["event_id"]
    )


def test_policy_can_reduce_postcode_and_date_of_birth() -> None:
    values = {
        "source_record_id": "r1",
        "provider_id": "GP1",
        "national_id": None,
        "given_name": "Anna",
        "family_name": "de Vries",
        "date_of_birth": date(1961, 5, 4),
        "birth_year": None,
        "sex": "FEMALE",
        "postcode": "9712CP",
        "house_number": "12",
        "episode_id": "E1",
        "icpc_code": "A04",
        "episode_start_date": date(2021, 3, 1),
        "contact_date": date(2021, 3, 4),
        "contact_type": "CONSULTATION",
    }
    policy = IdentityPolicy(
        full_date_of_birth=False, postcode_pc4_only=True, house_number=False, clear_names=True
    )
    identity = to_event("gp_consultation", values, policy)["identity"]
    assert identity["date_of_birth"] is None
    assert identity["birth_year"] == 1961
    assert identity["postcode"] == "9712"
    assert identity["house_number"] is None
    assert identity["family_name"] == "de Vries"
    assert identity["given_name_bloom"] is None
