"""The sink: batched, idempotent inserts of linked events (and reference data) into ClickHouse.

A batch is split into blocks of one Kafka partition and one calendar month each
(``linked_events`` is partitioned by month, so every block lands in one part and
is atomic), sorted by event time within the block. Each block carries an
``insert_deduplication_token`` built from its topic, partition, month and the
exact offsets it holds, so re-sending the same block after a crash is dropped by
the table and by the views fed from it.

A replay after a crash does not always cut batches where the first run did, so
``stored_offsets`` tells which offsets of a partition are already in the
warehouse: the worker drops those rows from the first batches it processes
after taking a partition over.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from linkwatch.dashboards.model import DEFAULT_DATABASE, check_identifier
from linkwatch.streams.enrich import Area
from linkwatch.streams.warehouse import Warehouse

LINKED_EVENTS_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("source", pa.string()),
        ("provider_id", pa.string()),
        ("person_id", pa.string()),
        ("link_outcome", pa.string()),
        ("link_weight", pa.float32()),
        ("codes", pa.list_(pa.string())),
        ("code_groups", pa.list_(pa.string())),
        ("event_time", pa.timestamp("ms", tz="UTC")),
        ("age_band", pa.string()),
        ("sex", pa.string()),
        ("pc4", pa.string()),
        ("region", pa.string()),
        ("ses_quintile", pa.uint8()),
        ("kafka_topic", pa.string()),
        ("kafka_partition", pa.uint32()),
        ("kafka_offset", pa.uint64()),
    ]
)


# Tables whose rows carry a version: a replayed row replaces itself, so no token is needed.
_REPLACING = {
    "persons": pa.schema(
        [
            ("person_id", pa.string()),
            ("birth_year", pa.uint16()),
            ("sex", pa.string()),
            ("first_seen", pa.timestamp("ms", tz="UTC")),
            ("version", pa.uint64()),
        ]
    ),
    "person_merges": pa.schema(
        [
            ("person_id", pa.string()),
            ("canonical_person_id", pa.string()),
            ("merged_at", pa.timestamp("ms", tz="UTC")),
            ("version", pa.uint64()),
        ]
    ),
}


def block_token(topic: str, partition: int, month: str, offsets: Sequence[int]) -> str:
    """A deduplication token naming exactly the rows of one block."""
    digest = hashlib.blake2b(",".join(map(str, offsets)).encode(), digest_size=8).hexdigest()
    return f"{topic}/{partition}/{month}/{offsets[0]}-{offsets[-1]}/{len(offsets)}/{digest}"


class WarehouseSink:
    """Writes linked events and areas into the warehouse model in ``database``."""

    def __init__(self, warehouse: Warehouse, database: str = DEFAULT_DATABASE) -> None:
        self.warehouse = warehouse
        self.database = check_identifier(database, "database")

    def write_events(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert linked-event rows as deduplicated blocks; returns the rows sent."""
        blocks: dict[tuple[str, int, str], list[Mapping[str, Any]]] = defaultdict(list)
        for row in rows:
            when: dt.datetime = row["event_time"]
            blocks[
                (row["kafka_topic"], int(row["kafka_partition"]), when.strftime("%Y-%m"))
            ].append(row)
        sent = 0
        for (topic, partition, month), block in sorted(blocks.items()):
            block.sort(key=lambda r: (r["event_time"], r["kafka_offset"]))
            offsets = sorted(int(r["kafka_offset"]) for r in block)
            table = pa.Table.from_pylist([dict(r) for r in block], schema=LINKED_EVENTS_SCHEMA)
            sent += self.warehouse.insert(
                f"{self.database}.linked_events",
                table,
                dedup_token=block_token(topic, partition, month, offsets),
            )
        return sent

    def write_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert rows into a replacing table of the model (persons, person_merges)."""
        if table not in _REPLACING:
            raise ValueError(f"write_rows takes {', '.join(_REPLACING)}, not {table!r}")
        arrow = pa.Table.from_pylist([dict(r) for r in rows], schema=_REPLACING[table])
        return self.warehouse.insert(f"{self.database}.{table}", arrow)

    def stored_offsets(self, topic: str, partition: int, first: int, last: int) -> set[int]:
        """Offsets of ``topic``/``partition`` within [first, last] already in the warehouse."""
        result = self.warehouse.query(
            f"SELECT kafka_offset FROM {self.database}.linked_events "
            "WHERE kafka_topic = {t:String} AND kafka_partition = {p:UInt32} "
            "AND kafka_offset BETWEEN {lo:UInt64} AND {hi:UInt64}",
            {"t": topic, "p": partition, "lo": first, "hi": last},
        )
        return {int(o) for o in result.column("kafka_offset")}

    def write_areas(self, areas: Iterable[Area]) -> int:
        """Replace the areas (and their population cells) with these values."""
        area_cols: dict[str, list[Any]] = defaultdict(list)
        pop_cols: dict[str, list[Any]] = defaultdict(list)
        n = 0
        for area in areas:
            n += 1
            for name, value in (
                ("pc4", area.pc4),
                ("year", area.year),
                ("region", area.region),
                ("ses_quintile", area.ses_quintile),
                ("ses_woa_mean", area.ses_woa_mean),
                ("households", area.households),
            ):
                area_cols[name].append(value)
            for (band, sex), count in area.population.items():
                for name, value in (
                    ("pc4", area.pc4),
                    ("year", area.year),
                    ("age_band", band),
                    ("sex", sex),
                    ("population", count),
                ):
                    pop_cols[name].append(value)
        if n:
            self.warehouse.insert(
                f"{self.database}.areas",
                _typed(area_cols, {"year": pa.uint16(), "ses_quintile": pa.uint8()}),
            )
        if pop_cols:
            self.warehouse.insert(
                f"{self.database}.area_population",
                _typed(pop_cols, {"year": pa.uint16(), "population": pa.uint32()}),
            )
        return n


def _typed(columns: Mapping[str, list[Any]], types: Mapping[str, pa.DataType]) -> pa.Table:
    return pa.table(
        {name: pa.array(values, type=types.get(name)) for name, values in columns.items()}
    )
