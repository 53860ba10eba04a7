"""The Avro schemas shipped with linkwatch: loading, fingerprints and the two wire formats.

Every topic schema lives in ``schemas/avro/<name>.v<version>.avsc``; the named types
they share (the identity block, the sex enum) live in ``schemas/avro/common.avsc`` and
are inlined at load time, so each loaded schema is self-contained and its Parsing
Canonical Form (Avro specification, "Parsing Canonical Form for Schemas") and
CRC-64-AVRO fingerprint are those any other Avro implementation computes.

Messages on linkwatch topics use Avro single-object encoding: the marker ``C3 01``, the
writer schema's 8-byte little-endian CRC-64-AVRO fingerprint, then the binary-encoded
record. A consumer looks the writer schema up by fingerprint among the shipped schemas
and resolves it against the reader version it asks for, so old and new producers can
share a topic. Consumers also accept the Confluent Schema Registry wire format (magic
byte ``00`` and a 4-byte big-endian schema id) given a mapping from ids to schemas.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import fastavro
from fastavro.schema import to_parsing_canonical_form

SINGLE_OBJECT_MARKER = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
COMMON_TYPES_FILE = "common.avsc"

# The Avro specification's CRC-64-AVRO: a Rabin fingerprint with this empty value,
# computed LSB-first over the UTF-8 bytes of the Parsing Canonical Form.
CRC64_AVRO_EMPTY = 0xC15D213AA4D7A795
_FILE_NAME = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.avsc$")


def _crc64_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (CRC64_AVRO_EMPTY & -(fp & 1))
        table.append(fp)
    return tuple(table)


_CRC64_TABLE = _crc64_table()


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO (Rabin) fingerprint of ``data`` as an unsigned 64-bit integer.

    This is the algorithm printed in the Avro specification ("Schema Fingerprints").
    Java's ``SchemaNormalization.parsingFingerprint64`` returns the same bits as a signed
    long: ``crc64_avro(b'"int"') == 0x7275D51A3F395C8F == 8247732601305521295``.
    """
    fp = CRC64_AVRO_EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _CRC64_TABLE[(fp ^ byte) & 0xFF]
    return fp


def parsing_canonical_form(schema: Any) -> str:
    """The Avro Parsing Canonical Form of a self-contained schema (JSON text or object)."""
    if isinstance(schema, str):
        with contextlib.suppress(json.JSONDecodeError):  # a bare name such as int
            schema = json.loads(schema)
    return str(to_parsing_canonical_form(schema))


def schema_fingerprint(schema: Any) -> int:
    """CRC-64-AVRO fingerprint of the Parsing Canonical Form of ``schema``."""
    return crc64_avro(parsing_canonical_form(schema).encode("utf-8"))


class SchemaError(ValueError):
    """A shipped or supplied schema cannot be found, loaded or parsed."""


class DecodeError(ValueError):
    """A message is not in a wire format linkwatch accepts, or does not match its schema."""


class EncodeError(ValueError):
    """A record does not fit the schema it is being encoded with."""


@dataclass(frozen=True)
class SchemaVersion:
    """One version of one shipped topic schema."""

    name: str
    version: int
    schema: dict[str, Any] = field(repr=False)
    parsed: Any = field(repr=False, compare=False)
    canonical_form: str = field(repr=False)
    fingerprint: int

    @property
    def fingerprint_bytes(self) -> bytes:
        """The fingerprint as it appears in single-object encoding (8 bytes, little-endian)."""
        return self.fingerprint.to_bytes(8, "little")

    @property
    def full_name(self) -> str:
        """The record's Avro full name, e.g. ``linkwatch.ehr.GpConsultation``."""
        return f"{self.schema.get('namespace', '')}.{self.schema['name']}".lstrip(".")


def _full_name(node: Mapping[str, Any], namespace: str) -> str:
    name = str(node["name"])
    if "." in name:
        return name
    ns = node.get("namespace", namespace)
    return f"{ns}.{name}" if ns else name


def _collect_named(node: Any, namespace: str, out: dict[str, dict[str, Any]]) -> None:
    if isinstance(node, list):
        for item in node:
            _collect_named(item, namespace, out)
    elif isinstance(node, dict):
        if node.get("type") in ("record", "enum", "fixed", "error") and "name" in node:
            full = _full_name(node, namespace)
            out[full] = node
            namespace = full.rpartition(".")[0]
        for key in ("fields", "items", "values"):
            if key in node:
                _collect_named(node[key], namespace, out)
        if isinstance(node.get("type"), dict | list):
            _collect_named(node["type"], namespace, out)


def _inline(
    node: Any, library: Mapping[str, dict[str, Any]], defined: set[str], namespace: str
) -> Any:
    """Replace the first reference to each shared named type by its definition."""
    if isinstance(node, str):
        full = node if "." in node else (f"{namespace}.{node}" if namespace else node)
        if full in library and full not in defined:
            return _inline(copy.deepcopy(library[full]), library, defined, namespace)
        return node
    if isinstance(node, list):
        return [_inline(item, library, defined, namespace) for item in node]
    if isinstance(node, dict):
        out = dict(node)
        if node.get("type") in ("record", "enum", "fixed", "error") and "name" in node:
            full = _full_name(node, namespace)
            defined.add(full)
            namespace = full.rpartition(".")[0]
            # Keep the full name so the definition is position-independent.
            out["name"] = full
            out.pop("namespace", None)
        if "fields" in node:
            out["fields"] = [
                {**f, "type": _inline(f["type"], library, defined, namespace)}
                for f in node["fields"]
            ]
        for key in ("items", "values"):
            if key in node:
                out[key] = _inline(node[key], library, defined, namespace)
        if isinstance(node.get("type"), dict | list) and "fields" not in node:
            out["type"] = _inline(node["type"], library, defined, namespace)
        return out
    return node


def _build(
    name: str, version: int, raw: dict[str, Any], library: Mapping[str, Any]
) -> SchemaVersion:
    expanded = _inline(raw, library, set(), "")
    try:
        parsed = fastavro.parse_schema(expanded)
    except Exception as exc:  # fastavro raises several exception types for bad schemas
        raise SchemaError(f"schema {name} v{version} does not parse: {exc}") from exc
    canonical = parsing_canonical_form(expanded)
    return SchemaVersion(
        name=name,
        version=version,
        schema=expanded,
        parsed=parsed,
        canonical_form=canonical,
        fingerprint=crc64_avro(canonical.encode("utf-8")),
    )


class SchemaRegistry:
    """The set of topic schemas a producer or consumer knows, indexed by name and fingerprint."""

    def __init__(self, versions: Iterable[SchemaVersion]) -> None:
        self._by_name: dict[str, dict[int, SchemaVersion]] = {}
        self._by_fingerprint: dict[int, SchemaVersion] = {}
        for sv in versions:
            self._by_name.setdefault(sv.name, {})[sv.version] = sv
            other = self._by_fingerprint.get(sv.fingerprint)
            if other is not None:
                raise SchemaError(
                    f"schemas {other.name} v{other.version} and {sv.name} v{sv.version} "
                    "have the same fingerprint"
                )
            self._by_fingerprint[sv.fingerprint] = sv

    @classmethod
    def from_texts(cls, files: Mapping[str, str]) -> SchemaRegistry:
        """Build a registry from ``{file name: JSON text}`` laid out like ``schemas/avro``."""
        library: dict[str, dict[str, Any]] = {}
        if COMMON_TYPES_FILE in files:
            _collect_named(_loads(COMMON_TYPES_FILE, files[COMMON_TYPES_FILE]), "", library)
        versions = []
        for file_name, text in sorted(files.items()):
            if file_name == COMMON_TYPES_FILE:
                continue
            match = _FILE_NAME.match(file_name)
            if match is None:
                raise SchemaError(
                    f"schema file {file_name!r}: expected a name like gp_consultation.v1.avsc"
                )
            raw = _loads(file_name, text)
            versions.append(_build(match["name"], int(match["version"]), raw, library))
        return cls(versions)

    @classmethod
    def shipped(cls) -> SchemaRegistry:
        """The schemas shipped in ``linkwatch.schemas`` (``avro/*.avsc``)."""
        return _shipped()

    # -- lookup ---------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Names of all schemas, e.g. ``['area_ses', 'gp_consultation', ...]``."""
        return sorted(self._by_name)

    def versions(self, name: str) -> list[SchemaVersion]:
        """All versions of one schema, oldest first."""
        return [self._by_name_or_raise(name)[v] for v in sorted(self._by_name_or_raise(name))]

    def latest(self, name: str) -> SchemaVersion:
        """The newest version of a schema."""
        return self.versions(name)[-1]

    def get(self, name: str, version: int | None = None) -> SchemaVersion:
        """One version of a schema; the newest when ``version`` is None."""
        if version is None:
            return self.latest(name)
        try:
            return self._by_name_or_raise(name)[version]
        except KeyError:
            known = ", ".join(f"v{v}" for v in sorted(self._by_name_or_raise(name)))
            raise SchemaError(f"schema {name} has no version {version} (known: {known})") from None

    def by_fingerprint(self, fingerprint: int) -> SchemaVersion:
        """The shipped schema with this CRC-64-AVRO fingerprint."""
        try:
            return self._by_fingerprint[fingerprint]
        except KeyError:
            raise DecodeError(
                f"unknown writer schema fingerprint {fingerprint:016x}: "
                "not one of the schemas shipped with this linkwatch"
            ) from None

    def _by_name_or_raise(self, name: str) -> dict[int, SchemaVersion]:
        try:
            return self._by_name[name]
        except KeyError:
            raise SchemaError(
                f"unknown schema {name!r} (known: {', '.join(self.names())})"
            ) from None

    # -- single-object encoding -------------------------------------------------------------
    def encode(self, record: Mapping[str, Any], name: str, version: int | None = None) -> bytes:
        """Encode ``record`` in Avro single-object encoding with one shipped schema."""
        sv = self.get(name, version)
        return SINGLE_OBJECT_MARKER + sv.fingerprint_bytes + encode_body(record, sv)

    def decode(
        self, data: bytes, reader: str | SchemaVersion | None = None, version: int | None = None
    ) -> tuple[SchemaVersion, dict[str, Any]]:
        """Decode a single-object-encoded message.

        The writer schema is found by fingerprint; the record is resolved against
        ``reader`` (a schema name, optionally with ``version``; the newest version of the
        writer's schema when omitted). Returns the writer schema and the record.
        """
        if len(data) < 10 or data[:2] != SINGLE_OBJECT_MARKER:
            raise DecodeError(
                f"not Avro single-object encoding: starts with {data[:2].hex() or 'nothing'}, "
                f"expected {SINGLE_OBJECT_MARKER.hex()} and an 8-byte fingerprint"
            )
        writer = self.by_fingerprint(int.from_bytes(data[2:10], "little"))
        return writer, decode_body(data[10:], writer, self._reader(writer, reader, version))

    # -- Confluent Schema Registry wire format ----------------------------------------------
    def encode_confluent(
        self, record: Mapping[str, Any], schema_id: int, name: str, version: int | None = None
    ) -> bytes:
        """Encode in the Confluent wire format (magic 0, 4-byte big-endian schema id, body)."""
        sv = self.get(name, version)
        return CONFLUENT_MAGIC + struct.pack(">I", schema_id) + encode_body(record, sv)

    def decode_confluent(
        self,
        data: bytes,
        writer_for_id: Mapping[int, SchemaVersion] | Callable[[int], SchemaVersion],
        reader: str | SchemaVersion | None = None,
        version: int | None = None,
    ) -> tuple[SchemaVersion, dict[str, Any]]:
        """Decode a message in the Confluent wire format; ``writer_for_id`` maps registry ids."""
        if len(data) < 5 or data[:1] != CONFLUENT_MAGIC:
            raise DecodeError(
                f"not Confluent wire format: starts with {data[:1].hex() or 'nothing'}, "
                "expected magic byte 00 and a 4-byte schema id"
            )
        (schema_id,) = struct.unpack(">I", data[1:5])
        try:
            writer = (
                writer_for_id(schema_id) if callable(writer_for_id) else writer_for_id[schema_id]
            )
        except (KeyError, LookupError):
            raise DecodeError(f"unknown Confluent schema id {schema_id}") from None
        return writer, decode_body(data[5:], writer, self._reader(writer, reader, version))

    def decode_any(
        self,
        data: bytes,
        writer_for_id: Mapping[int, SchemaVersion] | Callable[[int], SchemaVersion] | None = None,
        reader: str | SchemaVersion | None = None,
        version: int | None = None,
    ) -> tuple[SchemaVersion, dict[str, Any]]:
        """Decode either wire format, told apart by the first byte."""
        if data[:1] == CONFLUENT_MAGIC:
            if writer_for_id is None:
                raise DecodeError("Confluent wire-format message but no schema-id mapping given")
            return self.decode_confluent(data, writer_for_id, reader, version)
        return self.decode(data, reader, version)

    def _reader(
        self, writer: SchemaVersion, reader: str | SchemaVersion | None, version: int | None
    ) -> SchemaVersion:
        if isinstance(reader, SchemaVersion):
            return reader
        return self.get(reader or writer.name, version)


def encode_body(record: Mapping[str, Any], sv: SchemaVersion) -> bytes:
    """Avro binary encoding of ``record`` (no header) with schema ``sv``."""
    buf = io.BytesIO()
    try:
        fastavro.schemaless_writer(buf, sv.parsed, record)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise EncodeError(f"record does not fit {sv.name} v{sv.version}: {exc}") from exc
    return buf.getvalue()


def decode_body(body: bytes, writer: SchemaVersion, reader: SchemaVersion) -> dict[str, Any]:
    """Decode an Avro binary body written with ``writer``, resolved to ``reader``."""
    try:
        record = fastavro.schemaless_reader(
            io.BytesIO(body),
            writer.parsed,
            reader.parsed if reader is not writer else None,
        )
    except Exception as exc:  # fastavro raises EOFError, SchemaResolutionError, ValueError ...
        raise DecodeError(
            f"body does not decode as {writer.name} v{writer.version}"
            f" read as {reader.name} v{reader.version}: {exc}"
        ) from exc
    if not isinstance(record, dict):
        raise DecodeError(f"{writer.name} v{writer.version} decoded to a non-record value")
    return record


def _loads(file_name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"schema file {file_name}: invalid JSON: {exc}") from exc


@cache
def _shipped() -> SchemaRegistry:
    folder = resources.files("linkwatch.schemas").joinpath("avro")
    files = {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".avsc")
    }
    if not files:
        raise SchemaError("no .avsc files found in linkwatch.schemas/avro (package data missing)")
    return SchemaRegistry.from_texts(files)
