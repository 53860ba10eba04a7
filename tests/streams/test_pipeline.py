"""The worker's batch step over real synthetic events, the real linkage engine and real chDB."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

from linkwatch.dashboards.model import create_model
from linkwatch.linkage.fellegi_sunter import FellegiSunterModel, train_model
from linkwatch.linkage.identity_csv import read_identity_files
from linkwatch.linkage.standardise import standardise
from linkwatch.schemas.events import IdentityPolicy, to_event
from linkwatch.schemas.pseudonymise import PseudonymDomain
from linkwatch.schemas.registry import SchemaRegistry
from linkwatch.schemas.synth import SynthConfig, generate
from linkwatch.schemas.validation import validate_file
from linkwatch.streams.ingest import RawMessage
from linkwatch.streams.linker import StreamLinker
from linkwatch.streams.pipeline import Pipeline
from linkwatch.streams.sink import WarehouseSink
from linkwatch.streams.warehouse import EmbeddedWarehouse

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
TOPICS = {
    "gp_consultation": "ehr.gp.v1",
    "ooh_contact": "ehr.ooh.v1",
    "hospital_episode": "ehr.hospital.v1",
}
REGISTRY = SchemaRegistry.shipped()


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[list[RawMessage], FellegiSunterModel, list[dict[str, object]]]:
    data = generate(SynthConfig(persons=500, years=1, seed=9))
    root = tmp_path_factory.mktemp("pipeline")
    policy = IdentityPolicy(
        domain=PseudonymDomain("nl-ehr", "1", b"secret-0123456789abcdef"), clear_names=True
    )
    messages: list[RawMessage] = []
    for source, table in data.extracts.items():
        path = root / f"{source}.csv"
        pacsv.write_csv(table, path)
        for offset, result in enumerate(validate_file(Path(path), source, today=NOW.date())):
            assert result.ok, result.problems
            event = to_event(source, result.values or {}, policy)
            messages.append(
                RawMessage(
                    TOPICS[source],
                    offset % 2,
                    offset,
                    event["source_record_id"].encode(),
                    REGISTRY.encode(event, source),
                )
            )
    messages.sort(key=lambda m: (m.offset, m.topic))  # sources interleaved, as consumed
    identity_paths = []
    for source, table in data.identity_files.items():
        identity_paths.append(root / f"{source}.identity.csv")
        pacsv.write_csv(table, identity_paths[-1])
    model = train_model([standardise(r) for r in read_identity_files(identity_paths)])
    return messages, model, data.areas.to_pylist()


def test_every_event_lands_once_with_its_person_and_replays_change_nothing(
    embedded_warehouse: EmbeddedWarehouse,
    warehouse_db: str,
    world: tuple[list[RawMessage], FellegiSunterModel, list[dict[str, object]]],
) -> None:
    messages, model, areas = world
    bad = [RawMessage("ehr.gp.v1", 9, i, b"x", os.urandom(40)) for i in range(7)]
    create_model(embedded_warehouse, warehouse_db)
    pipeline = Pipeline(
        REGISTRY,
        StreamLinker(model),
        WarehouseSink(embedded_warehouse, warehouse_db),
        now=lambda: NOW,
    )
    pipeline.apply_areas({**a, "population": []} for a in areas)
    stream = messages[:400] + bad + messages[400:]
    outputs = [pipeline.process(stream[i : i + 300]) for i in range(0, len(stream), 300)]
    assert sum(len(o.dead_letters) for o in outputs) == len(bad)
    assert sum(len(o.rows) for o in outputs) == len(messages)
    assert sum(len(o.log_entries) for o in outputs) == len(messages)

    # A crash before the commit: the first batches arrive again, cut elsewhere.
    again = [pipeline.process(stream[i : i + 250]) for i in (0, 250, 500)]
    assert sum(o.replayed for o in again) == sum(len(o.rows) for o in again)
    assert all(o.log_entries == [] for o in again)

    db = warehouse_db
    count, distinct = embedded_warehouse.query(
        f"SELECT count(), uniqExact(event_id) FROM {db}.linked_events"
    ).rows[0]
    assert (count, distinct) == (len(messages), len(messages))
    weekly = embedded_warehouse.query(
        f"SELECT sum(events) FROM {db}.weekly_counts WHERE code_group = 'all'"
    ).scalar()
    assert weekly == len(messages)
    known_area = embedded_warehouse.query(
        f"SELECT countIf(ses_quintile > 0) FROM {db}.linked_events"
    ).scalar()
    assert known_area > 0.9 * len(messages)

    # Following the merges from the warehouse reaches the linker's current person of every event.
    canonical = (
        f"FROM {db}.linked_events AS e LEFT JOIN (SELECT person_id, "
        f"argMax(canonical_person_id, version) AS canonical FROM {db}.person_merges "
        "GROUP BY person_id) AS m ON m.person_id = e.person_id"
    )
    person = "if(m.canonical != '', m.canonical, e.person_id)"
    final = dict(embedded_warehouse.query(f"SELECT e.event_id, {person} {canonical}").rows)
    current = dict(zip(_event_ids(messages), pipeline.linker.engine.person_ids(), strict=True))
    assert final == current
    persons = embedded_warehouse.query(f"SELECT uniqExact({person}) {canonical}").scalar()
    assert persons == len(set(current.values()))
    assert persons < len(messages)

    # A restarted worker rebuilds the same linker from the log.
    log = [entry for o in outputs for _, entry in o.log_entries]
    restarted = Pipeline(
        REGISTRY, StreamLinker(model), WarehouseSink(embedded_warehouse, db), now=lambda: NOW
    )
    assert restarted.restore(log) == len(messages)
    assert restarted.linker.engine.person_ids() == pipeline.linker.engine.person_ids()


def _event_ids(messages: list[RawMessage]) -> list[str]:
    return [REGISTRY.decode(m.value or b"")[1]["event_id"] for m in messages]
