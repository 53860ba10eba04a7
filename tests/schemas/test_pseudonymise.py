"""Keyed tokens in labelled pseudonym domains, and Bloom-filter encodings of identifiers."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkwatch.schemas.pseudonymise import (
    BloomEncoder,
    PseudonymDomain,
    SecretError,
    dice_coefficient,
    load_secret,
    normalise_national_id,
    normalise_text,
)

SECRET = b"a shared secret of the providers"
DOMAIN = PseudonymDomain("linkwatch.bsn", "hmac-sha256/2026-1", SECRET)
BLOOM = BloomEncoder(SECRET, version="2026-1")


def test_tokens_are_deterministic_hex_and_hide_the_value() -> None:
    token = DOMAIN.national_id_token("111222333")
    assert token == DOMAIN.national_id_token("111 222 333")
    assert token == PseudonymDomain("linkwatch.bsn", "hmac-sha256/2026-1", SECRET).token(
        "111222333"
    )
    assert len(token) == 64
    assert int(token, 16) >= 0
    assert "111222333" not in token


def test_tokens_differ_between_domains_versions_and_secrets() -> None:
    value = "111222333"
    tokens = {
        DOMAIN.token(value),
        PseudonymDomain("linkwatch.patient", "hmac-sha256/2026-1", SECRET).token(value),
        PseudonymDomain("linkwatch.bsn", "hmac-sha256/2026-2", SECRET).token(value),
        PseudonymDomain(
            "linkwatch.bsn", "hmac-sha256/2026-1", b"another secret of 32 bytes......"
        ).token(value),
    }
    assert len(tokens) == 4


def test_eight_digit_bsns_are_padded_before_hashing() -> None:
    assert normalise_national_id("11222333") == "011222333"
    assert DOMAIN.national_id_token("11222333") == DOMAIN.national_id_token("011222333")
    with pytest.raises(ValueError, match="characters other than digits"):
        normalise_national_id("12AB")


def test_secrets_come_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "secret"
    path.write_bytes(SECRET + b"\n")
    assert load_secret(path) == SECRET
    monkeypatch.setenv("LINKWATCH_PSEUDONYM_SECRET", SECRET.decode())
    assert load_secret() == SECRET
    monkeypatch.setenv("LINKWATCH_PSEUDONYM_SECRET", "short")
    with pytest.raises(SecretError, match="at least 16"):
        load_secret()
    monkeypatch.delenv("LINKWATCH_PSEUDONYM_SECRET")
    with pytest.raises(SecretError, match="LINKWATCH_PSEUDONYM_SECRET"):
        load_secret()
    with pytest.raises(SecretError, match="cannot read the secret file"):
        load_secret(tmp_path / "missing")


def test_weak_secrets_are_refused() -> None:
    with pytest.raises(SecretError):
        PseudonymDomain("linkwatch.bsn", "1", b"short")
    with pytest.raises(SecretError):
        BloomEncoder(b"short")


def test_bloom_filters_have_the_documented_shape() -> None:
    assert BLOOM.label == "clk/q2-k20-l1024/2026-1"
    assert BLOOM.qgrams("Jan") == ["_j", "ja", "an", "n_"]
    encoded = BLOOM.encode("Jan", "given_name")
    assert len(encoded) == 128
    ones = int.from_bytes(encoded, "big").bit_count()
    assert 20 <= ones <= 4 * 20  # at most k bits per bigram, collisions make fewer
    assert encoded == BloomEncoder(SECRET, version="2026-1").encode("jan", "given_name")


def test_bloom_filters_tolerate_typing_errors_but_tell_names_apart() -> None:
    def dice(a: str, b: str) -> float:
        return dice_coefficient(BLOOM.encode(a, "family_name"), BLOOM.encode(b, "family_name"))

    assert dice("van den Berg", "van den Berg") == 1.0
    assert dice("van den Berg", "Van den Berg") == 1.0  # normalised
    assert dice("Şahin", "Sahin") == 1.0
    assert dice("Y\u0131lmaz", "Yilmaz") == 1.0
    assert dice("Jansen", "Janssen") > 0.8
    assert dice("Jansen", "Dijkstra") < 0.3


def test_fields_and_secrets_give_independent_filters() -> None:
    same_value = dice_coefficient(
        BLOOM.encode("Jan", "given_name"), BLOOM.encode("Jan", "family_name")
    )
    other_secret = BloomEncoder(b"a different secret, 32 bytes ...", version="2026-1")
    other = dice_coefficient(
        BLOOM.encode("Jan", "given_name"), other_secret.encode("Jan", "given_name")
    )
    assert same_value < 0.5
    assert other < 0.5


def test_composite_clk_is_the_union_of_its_fields() -> None:
    fields = {"given_name": "Anna", "family_name": "de Vries", "date_of_birth": "1961-05-04"}
    clk = int.from_bytes(BLOOM.encode_record(fields), "big")
    union = 0
    for name, value in fields.items():
        union |= int.from_bytes(BLOOM.encode(value, name), "big")
    assert clk == union
    assert BLOOM.encode_record({"given_name": None, "family_name": ""}) == bytes(128)


def test_dice_refuses_filters_of_different_length() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        dice_coefficient(bytes(8), bytes(16))


def test_normalise_text() -> None:
    assert normalise_text("  Ö. de-Vries ") == "o de vries"
    assert normalise_text("'s-Gravenhage") == "s gravenhage"


filters = st.binary(min_size=16, max_size=16)


@settings(max_examples=200, deadline=None)
@given(filters, filters)
def test_dice_is_a_symmetric_similarity_in_the_unit_interval(a: bytes, b: bytes) -> None:
    d = dice_coefficient(a, b)
    assert 0.0 <= d <= 1.0
    assert d == dice_coefficient(b, a)
    if any(a):
        assert dice_coefficient(a, a) == 1.0


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=20))
def test_encoding_is_deterministic_for_any_text(value: str) -> None:
    assert BLOOM.encode(value, "given_name") == BLOOM.encode(value, "given_name")
    assert DOMAIN.token(value) == DOMAIN.token(value)
