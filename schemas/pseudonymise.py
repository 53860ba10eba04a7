"""Pseudonymisation at the provider: keyed tokens and Bloom-filter encodings of identifiers.

Two mechanisms, both keyed with a secret the provider shares with the other providers
of a linkage project (never with linkwatch's operators):

* **Tokens** for exact identifiers (the national identifier, BSN): HMAC-SHA256 of the
  normalised value under a key derived from the secret and a *pseudonym domain* — a
  label and a version, after the labelled pseudonyms of the Dutch public
  pseudonymisation method (NEN 7524). Tokens from different domains or versions never
  compare equal, so a key can be rotated by issuing a new version.
* **Bloom-filter encodings** (Schnell, Bachteler & Reiher 2009, BMC Med Inform Decis
  Mak 9:41) for names and dates of birth, which tolerate typing errors: the normalised
  value is split into q-grams (bigrams by default, padded with ``_`` at both ends so
  first and last letters count), each q-gram sets ``k`` bits of an ``length``-bit filter
  chosen by double hashing ``(h1 + i*h2) mod length`` with two HMAC-SHA256 functions
  keyed per field. Defaults ``q=2, k=20, length=1024`` follow R ``PPRL::CreateCLK``
  (k = 20, 1000 bits) rounded up to whole bytes. Two encodings are compared with the
  Sørensen-Dice coefficient. Encoding one field alone is open to frequency attacks
  (clkhash documentation): the composite CLK of several fields is the safer choice.
"""

from __future__ import annotations

import hmac
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

SECRET_ENV = "LINKWATCH_PSEUDONYM_SECRET"
MIN_SECRET_BYTES = 16
_NON_ALNUM = re.compile(r"[^a-z0-9 ]+")
_SPACES = re.compile(r"\s+")


class SecretError(ValueError):
    """The pseudonymisation secret is missing or too weak."""


def load_secret(path: Path | None = None, env_var: str = SECRET_ENV) -> bytes:
    """The shared secret, read from a file or else from an environment variable.

    Secrets never come from the command line (they would show in the process list and
    the shell history). A trailing newline in the file is ignored.
    """
    if path is not None:
        try:
            secret = path.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise SecretError(f"cannot read the secret file {path}: {exc.strerror}") from None
        origin = f"secret file {path}"
    else:
        value = os.environ.get(env_var)
        if value is None:
            raise SecretError(f"no secret: set ${env_var} or pass a secret file")
        secret, origin = value.encode("utf-8"), f"${env_var}"
    if len(secret) < MIN_SECRET_BYTES:
        raise SecretError(
            f"{origin} holds {len(secret)} bytes; a secret needs at least {MIN_SECRET_BYTES}"
        )
    return secret


@lru_cache(maxsize=1024)
def _derive(secret: bytes, *labels: str) -> bytes:
    return hmac.digest(secret, "\x1f".join(("linkwatch", *labels)).encode(), "sha256")


def normalise_national_id(value: str) -> str:
    """BSN without spaces, dots or dashes, left-padded to nine digits (eight-digit BSNs exist)."""
    digits = re.sub(r"[\s.\-]", "", value)
    if not digits.isdigit():
        raise ValueError(f"national id {value!r} contains characters other than digits")
    return digits.zfill(9)


def normalise_text(value: str) -> str:
    """Lower case, accents removed, punctuation dropped, spaces collapsed.

    'Ö. de-Vries' becomes 'o de vries'.
    """
    # NFKD leaves the Turkish dotless i alone; map it so 'Y\u0131lmaz' equals 'Yilmaz'.
    decomposed = unicodedata.normalize("NFKD", value.replace("\u0131", "i"))
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return _SPACES.sub(" ", _NON_ALNUM.sub(" ", ascii_only)).strip()


@dataclass(frozen=True)
class PseudonymDomain:
    """A labelled, versioned pseudonym domain: tokens are comparable only within one."""

    label: str
    version: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not self.label or not self.version:
            raise ValueError("a pseudonym domain needs a label and a version")
        if len(self.secret) < MIN_SECRET_BYTES:
            raise SecretError(f"pseudonym secret needs at least {MIN_SECRET_BYTES} bytes")

    @property
    def _key(self) -> bytes:
        return _derive(self.secret, "pseudonym", self.label, self.version)

    def token(self, value: str) -> str:
        """HMAC-SHA256 token (64 lower-case hex characters) of an already normalised value."""
        return hmac.digest(self._key, value.encode("utf-8"), "sha256").hex()

    def national_id_token(self, national_id: str) -> str:
        """Token of a national identifier after :func:`normalise_national_id`."""
        return self.token(normalise_national_id(national_id))


@dataclass(frozen=True)
class BloomEncoder:
    """Bloom-filter (CLK) encoder for identifying fields under a shared secret."""

    secret: bytes = field(repr=False)
    version: str = "1"
    q: int = 2
    k: int = 20
    length: int = 1024

    def __post_init__(self) -> None:
        if self.length % 8 or self.length <= 0:
            raise ValueError(f"Bloom filter length {self.length} is not a positive multiple of 8")
        if self.q < 1 or self.k < 1:
            raise ValueError("q and k must be at least 1")
        if len(self.secret) < MIN_SECRET_BYTES:
            raise SecretError(f"Bloom-filter secret needs at least {MIN_SECRET_BYTES} bytes")
        # q-grams repeat across names, so their bit positions are computed once per field.
        object.__setattr__(self, "_positions", {})

    @property
    def label(self) -> str:
        """Parameters and secret version, as carried in the ``bloom_encoding`` field."""
        return f"clk/q{self.q}-k{self.k}-l{self.length}/{self.version}"

    def qgrams(self, value: str) -> list[str]:
        """Padded q-grams of the normalised value: 'Jan' -> ['_j', 'ja', 'an', 'n_'] for q=2."""
        text = normalise_text(value)
        if not text:
            return []
        padded = "_" * (self.q - 1) + text + "_" * (self.q - 1)
        return [padded[i : i + self.q] for i in range(len(padded) - self.q + 1)]

    def bit_positions(self, value: str, field_name: str) -> set[int]:
        """The filter bits ``value`` sets when encoded as ``field_name``."""
        cache: dict[tuple[str, str], tuple[int, ...]] = self._positions  # type: ignore[attr-defined]
        bits: set[int] = set()
        for gram in self.qgrams(value):
            positions = cache.get((field_name, gram))
            if positions is None:
                positions = self._gram_positions(gram, field_name)
                if len(cache) < 1_000_000:
                    cache[field_name, gram] = positions
            bits.update(positions)
        return bits

    def _gram_positions(self, gram: str, field_name: str) -> tuple[int, ...]:
        key1 = _derive(self.secret, "bloom", self.version, field_name, "1")
        key2 = _derive(self.secret, "bloom", self.version, field_name, "2")
        g = gram.encode("utf-8")
        h1 = int.from_bytes(hmac.digest(key1, g, "sha256")[:8], "big")
        h2 = int.from_bytes(hmac.digest(key2, g, "sha256")[:8], "big")
        return tuple((h1 + i * h2) % self.length for i in range(self.k))

    def encode(self, value: str, field_name: str) -> bytes:
        """Field-level Bloom filter of one value (``length / 8`` bytes, bit 0 = MSB of byte 0)."""
        return self._to_bytes(self.bit_positions(value, field_name))

    def encode_record(self, fields: Mapping[str, str | None]) -> bytes:
        """Composite CLK: the union of the field-level filters of every non-empty field."""
        bits: set[int] = set()
        for name, value in fields.items():
            if value:
                bits |= self.bit_positions(value, name)
        return self._to_bytes(bits)

    def _to_bytes(self, bits: set[int]) -> bytes:
        filter_bits = np.zeros(self.length, dtype=np.uint8)
        filter_bits[list(bits)] = 1
        return bytes(np.packbits(filter_bits).tobytes())  # bit 0 = MSB of byte 0


def dice_coefficient(a: bytes, b: bytes) -> float:
    """Sørensen-Dice similarity 2|A∩B| / (|A|+|B|) of two Bloom filters of equal length."""
    if len(a) != len(b):
        raise ValueError(f"Bloom filters differ in length: {len(a)} and {len(b)} bytes")
    ones_a = int.from_bytes(a, "big").bit_count()
    ones_b = int.from_bytes(b, "big").bit_count()
    if ones_a + ones_b == 0:
        return 0.0
    both = (int.from_bytes(a, "big") & int.from_bytes(b, "big")).bit_count()
    return 2.0 * both / (ones_a + ones_b)
