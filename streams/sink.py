"""The sink: batched, idempotent inserts of linked events (and reference data) into ClickHouse.

A batch goes in as one insert, sorted by event time, carrying an
``insert_deduplication_token`` built from the exact (topic, partition, offset) set
it holds, so re-sending the same batch (a retried insert, a replay cut the same
way) is dropped by the table and by the views fed from it.

A replay after a crash does not always cut batches where the first run did, so
``max_stored_offset`` and ``stored_offsets`` tell which offsets of a partition are
already in the warehouse: the pipeline drops those rows whenever it meets offsets
at or below what a partition already holds.
"""

from __future__ import annotations

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


def batch_token(keys: Sequence[tuple[str, int, int]]) -> str:
    """A deduplication token naming exactly the rows of one batch (topic, partition, offset)."""
    ordered = sorted(keys)
    digest = hashlib.blake2b(
        ";".join(f"{t}/{p}/{o}" for t, p, o in ordered).encode(), digest_size=12
    ).hexdigest()
    return f"batch/{len(ordered)}/{digest}"


class WarehouseSink:
    """Writes linked events and areas into the warehouse model in ``database``."""

    def __init__(self, warehouse: Warehouse, database: str = DEFAULT_DATABASE) -> None:
        self.warehouse = warehouse
        self.database = check_identifier(database, "database")

    def write_events(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert linked-event rows as one deduplicated block; returns the rows sent."""
        if not rows:
            return 0
        ordered = sorted(
            rows,
            key=lambda r: (
                r["event_time"],
                r["kafka_topic"],
                r["kafka_partition"],
                r["kafka_offset"],
            ),
        )
        table = pa.Table.from_pylist(ordered, schema=LINKED_EVENTS_SCHEMA)
        token = batch_token(
            [(r["kafka_topic"], int(r["kafka_partition"]), int(r["kafka_offset"])) for r in rows]
        )
        return self.warehouse.insert(f"{self.database}.linked_events", table, dedup_token=token)

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

    def max_stored_offset(self, topic: str, partition: int) -> int:
        """The highest offset of ``topic``/``partition`` in the warehouse (-1 if none)."""
        result = self.warehouse.query(
            f"SELECT count() AS n, max(kafka_offset) AS high FROM {self.database}.linked_events "
            "WHERE kafka_topic = {t:String} AND kafka_partition = {p:UInt32}",
            {"t": topic, "p": partition},
        )
        count, high = result.rows[0]
        return int(high) if int(count) else -1

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
