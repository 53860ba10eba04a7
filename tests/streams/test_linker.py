"""The stream linker: the offline engine's decisions, recoverable exactly from its log."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import pickle
import random
import subprocess
import sys
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

from linkwatch.linkage.clusters import LinkageEngine
from linkwatch.linkage.fellegi_sunter import FellegiSunterModel, train_model
from linkwatch.linkage.identity_csv import read_identity_files
from linkwatch.linkage.standardise import RawRecord, standardise
from linkwatch.schemas.synth import SynthConfig, generate
from linkwatch.streams.ingest import IngestedEvent
from linkwatch.streams.linker import StreamLinker, identity_record
from linkwatch.streams.snapshots import read_snapshot, write_snapshot

SEX = {"M": "MALE", "F": "FEMALE"}
SOURCES = ("gp_consultation", "ooh_contact", "hospital_episode")


@pytest.fixture(scope="module")
def identities(tmp_path_factory: pytest.TempPathFactory) -> list[RawRecord]:
    data = generate(SynthConfig(persons=600, years=1, seed=4))
    root = tmp_path_factory.mktemp("linker")
    paths = []
    for source, table in data.identity_files.items():
        path = root / f"{source}.csv"
        pacsv.write_csv(table, path)
        paths.append(path)
    return read_identity_files(paths)


@pytest.fixture(scope="module")
def model(identities: list[RawRecord]) -> FellegiSunterModel:
    return train_model([standardise(r) for r in identities])


def as_event(raw: RawRecord, offset: int) -> IngestedEvent:
    dob: dt.date | None = None
    birth_year = None
    if raw.date_of_birth and len(raw.date_of_birth) == 10:
        dob = dt.date.fromisoformat(raw.date_of_birth)
        birth_year = dob.year
    elif raw.date_of_birth:
        birth_year = int(raw.date_of_birth)
    return IngestedEvent(
        source=raw.source,
        topic="ehr.gp.v1",
        partition=0,
        offset=offset,
        schema_version=1,
        event_id=raw.record_id,
        event_time=dt.datetime(2021, 1, 1, tzinfo=dt.UTC),
        provider_id="P",
        source_record_id=raw.record_id,
        identity={
            "national_id_token": raw.national_id,
            "given_name": raw.given_name,
            "family_name": raw.family_name,
            "date_of_birth": dob,
            "birth_year": birth_year,
            "sex": SEX.get(raw.sex or "", "UNKNOWN"),
            "postcode": raw.postcode,
            "house_number": raw.house_number,
        },
        codes=(),
    )


def test_stream_decisions_equal_the_offline_engine(
    identities: list[RawRecord], model: FellegiSunterModel
) -> None:
    events = [as_event(r, i) for i, r in enumerate(identities)]
    linker = StreamLinker(model)
    decisions = []
    for start in range(0, len(events), 250):  # batches of any size give the same answer
        batch, _ = linker.link(events[start : start + 250])
        decisions.extend(batch)
    offline = LinkageEngine(model)
    for event in events:
        offline.add(standardise(identity_record(event)))
    assert [d.person_id for d in decisions] == [r.person_id for r in _replay_results(model, events)]
    assert linker.engine.person_ids() == offline.person_ids()
    assert {d.outcome for d in decisions} <= {"linked", "new", "review"}
    assert any(d.outcome == "linked" for d in decisions)


def test_identities_sent_again_are_decided_as_the_first_time(
    identities: list[RawRecord], model: FellegiSunterModel
) -> None:
    # Providers send a person's identity with every event: repeats skip standardising.
    rng = random.Random(6)
    raws = []
    for n in range(3000):
        raw = rng.choice(identities[:400])
        if n % 7 == 0:  # blank fields sent as "" rather than left out: the same identity
            raw = dataclasses.replace(raw, city="", street=None)
        raws.append(dataclasses.replace(raw, record_id=f"e{n}", source=rng.choice(SOURCES)))
    events = [as_event(r, i) for i, r in enumerate(raws)]
    linker = StreamLinker(model)
    decisions = []
    for start in range(0, len(events), 500):
        decisions.extend(linker.link(events[start : start + 500])[0])
    engine = LinkageEngine(model)
    expected = engine.add_sequence([standardise(identity_record(e)) for e in events])
    assert [(d.person_id, d.weight) for d in decisions] == [
        (r.person_id, pytest.approx(r.match_weight or 0.0, rel=1e-6)) for r in expected
    ]
    assert linker.engine.person_ids() == engine.person_ids()
    assert linker.engine.counts == engine.counts
    assert linker.engine.counts.duplicates > 2000
    assert 0 < linker.memory_bytes() < 1024 * len(events)


def _replay_results(model: FellegiSunterModel, events: list[IngestedEvent]) -> list[object]:
    engine = LinkageEngine(model)
    return [engine.add(standardise(identity_record(e))) for e in events]


def test_restoring_from_the_log_gives_the_same_state(
    identities: list[RawRecord], model: FellegiSunterModel
) -> None:
    events = [as_event(r, i) for i, r in enumerate(identities)]
    first = StreamLinker(model)
    _, log = first.link(events)
    assert len(log) == len(events)
    second = StreamLinker(model)
    assert len(second.restore(log)) == len(events)
    assert second.engine.person_ids() == first.engine.person_ids()
    # After the restart, new events are decided exactly as without it.
    more = [as_event(r, i) for i, r in enumerate(identities[:50])]
    fresh = [dataclasses.replace(r, record_id=f"again-{r.record_id}") for r in identities[:50]]
    again = [as_event(r, i) for i, r in enumerate(fresh)]
    a, _ = first.link(again)
    b, _ = second.link(again)
    assert [d.person_id for d in a] == [d.person_id for d in b]
    # Events already indexed are not indexed twice and keep their person.
    replayed, entries = second.link(more)
    assert entries == []
    assert all(d.replayed for d in replayed)
    assert len(second) == len(events) + len(again)


def test_a_replayed_event_keeps_the_person_it_was_first_given(
    identities: list[RawRecord], model: FellegiSunterModel
) -> None:
    # Downstream rows of a replay (and the linked partition they go to) equal the first
    # ones; merges since then reach the warehouse as merges.
    # A person seen first with a token and names only, then with names and an address
    # only (not enough to link the two), then in full: the third record merges them.
    x = next(r for r in identities if r.national_id and r.postcode and r.date_of_birth)
    token_only = dataclasses.replace(
        x, record_id="x-token", date_of_birth=None, postcode=None, house_number=None
    )
    address_only = dataclasses.replace(x, record_id="x-address", national_id=None)
    full = dataclasses.replace(x, record_id="x-full")
    records = [token_only, address_only, *identities[:300], full, *identities[300:600]]
    events = [as_event(r, i) for i, r in enumerate(records)]
    linker = StreamLinker(model)
    first, _ = linker.link(events)
    assert linker.engine.counts.merges > 0, "the data must hold merges for this test"
    again, _ = linker.link(events)
    assert [d.person_id for d in again] == [d.person_id for d in first]
    assert [(d.outcome, d.weight) for d in again] == [
        (d.outcome, pytest.approx(d.weight, rel=1e-6)) for d in first
    ]
    current = linker.engine.person_ids()
    assert sum(a != b for a, b in zip(current, (d.person_id for d in first), strict=True)) > 0


def test_a_snapshot_gives_the_same_linker_and_refuses_another_model(
    identities: list[RawRecord], model: FellegiSunterModel, tmp_path: Path
) -> None:
    events = [as_event(r, i) for i, r in enumerate(identities)]
    first = StreamLinker(model)
    first_decisions, _ = first.link(events[:300])
    path = tmp_path / "linker.snapshot"
    write_snapshot(path, first.snapshot())
    snap = read_snapshot(path)
    assert snap is not None
    second = StreamLinker.from_snapshot(model, snap)
    assert second.engine.person_ids() == first.engine.person_ids()
    assert second.engine.counts == first.engine.counts
    a, log_a = first.link(events[300:])
    b, log_b = second.link(events[300:])
    assert a == b  # persons, outcomes, weights, merges, reviews
    assert log_a == log_b
    replayed, _ = second.link(events[:5])
    assert [d.replayed for d in replayed] == [True] * 5
    assert [(d.outcome, d.weight) for d in replayed] == [
        (d.outcome, pytest.approx(d.weight, rel=1e-6)) for d in first_decisions[:5]
    ]
    other = dataclasses.replace(model, link_threshold=0.9)
    with pytest.raises(ValueError, match="another linkage model"):
        StreamLinker.from_snapshot(other, snap)
    path.write_bytes(b"not a snapshot")
    assert read_snapshot(path) is None


RESUME = """
import pickle, sys
from linkwatch.linkage.fellegi_sunter import FellegiSunterModel
from linkwatch.streams.linker import StreamLinker
from linkwatch.streams.snapshots import read_snapshot
from pathlib import Path
model = FellegiSunterModel.load(Path(sys.argv[1]))
linker = StreamLinker.from_snapshot(model, read_snapshot(Path(sys.argv[2])))
events = pickle.loads(open(sys.argv[3], "rb").read())
decisions, _ = linker.link(events)
open(sys.argv[4], "wb").write(pickle.dumps(decisions))
"""


def test_a_snapshot_read_by_another_process_decides_the_same(
    identities: list[RawRecord], model: FellegiSunterModel, tmp_path: Path
) -> None:
    # A restarted worker is a new interpreter, whose string hashes differ from the old one's:
    # nothing in a snapshot may depend on them.
    events = [as_event(r, i) for i, r in enumerate(identities)]
    first = StreamLinker(model)
    first.link(events[:300])
    write_snapshot(tmp_path / "linker.snapshot", first.snapshot())
    rest = events[300:] + [
        dataclasses.replace(e, event_id=f"again-{e.event_id}", offset=e.offset + 10_000)
        for e in events[:300]
    ]
    expected, _ = first.link(rest)
    model.save(tmp_path / "model.json")
    (tmp_path / "events.pickle").write_bytes(pickle.dumps(rest))
    for seed in ("1", "2"):
        subprocess.run(
            [sys.executable, "-c", RESUME]
            + [str(tmp_path / n) for n in ("model.json", "linker.snapshot", "events.pickle")]
            + [str(tmp_path / f"decisions-{seed}.pickle")],
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
            timeout=120,
        )
        resumed = pickle.loads((tmp_path / f"decisions-{seed}.pickle").read_bytes())
        assert resumed == expected
    # The repeated identities found their first copies through the restored index.
    assert sum(d.outcome == "linked" for d in expected[-300:]) >= 250


def test_order_changes_almost_nothing(
    identities: list[RawRecord], model: FellegiSunterModel
) -> None:
    from linkwatch.linkage.evaluation import evaluate_clusters

    events = [as_event(r, i) for i, r in enumerate(identities)]
    shuffled = events[:]
    random.Random(3).shuffle(shuffled)
    a = StreamLinker(model)
    b = StreamLinker(model)
    a.link(events)
    b.link(shuffled)
    person_a = {e.event_id: p for e, p in zip(events, a.engine.person_ids(), strict=True)}
    person_b = {e.event_id: p for e, p in zip(shuffled, b.engine.person_ids(), strict=True)}
    agreement = evaluate_clusters(person_b, person_a).all_pairs
    assert agreement.f1 >= 0.998
