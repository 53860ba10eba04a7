"""The incremental engine: linking, new persons, merges, review, order independence."""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkwatch.linkage.batch import RecordBatch
from linkwatch.linkage.clusters import LinkageEngine, link_batch
from linkwatch.linkage.comparisons import DEFAULT_COMPARISONS
from linkwatch.linkage.dutch_identities import make_population, without_identifiers
from linkwatch.linkage.evaluation import evaluate_clusters
from linkwatch.linkage.fellegi_sunter import (
    ComparisonParameters,
    FellegiSunterModel,
    LevelParameters,
    TrainingOptions,
    train_model,
)
from linkwatch.linkage.record_store import RecordStore
from linkwatch.linkage.standardise import RawRecord, StandardRecord, standardise, standardise_many

# Hand-set weights per comparison: (weight of each level after "missing").
WEIGHTS = {
    "national_id": [15, -10],
    "given_name": [4, 3, 1, 1, -4],
    "family_name": [4, 3, 2, 1, -4],
    "date_of_birth": [10, 6, 4, 3, -8],
    "sex": [0.5, -6],
    "address": [10, 8, 6, 3, 1, -1],
    "street": [3, 2, -2],
}


def hand_model(
    prior_weight: float = -20.0, link: float = 0.5, review: float = 0.01, tf_smoothing: float = 1e15
) -> FellegiSunterModel:
    """A model with chosen level weights (m = u · 2^weight), for exact expectations.

    The huge default smoothing switches term-frequency adjustment off.
    """
    comparisons = []
    for spec in DEFAULT_COMPARISONS:
        u = 1e-3
        levels = [LevelParameters(spec.levels[0], 1.0, 1.0)]
        levels += [
            LevelParameters(lvl, u * 2.0**w, u)
            for lvl, w in zip(spec.levels[1:], WEIGHTS[spec.name], strict=True)
        ]
        comparisons.append(ComparisonParameters(spec, levels))
    prior = 1.0 / (1.0 + 2.0 ** (-prior_weight))
    return FellegiSunterModel(
        comparisons, prior, link_threshold=link, review_threshold=review, tf_smoothing=tf_smoothing
    )


def rec(record_id: str, **fields: str) -> StandardRecord:
    return standardise(RawRecord(record_id=record_id, source="gp", **fields))


def test_same_person_links_and_other_person_starts_a_new_one() -> None:
    engine = LinkageEngine(hand_model())
    first = engine.add(
        rec(
            "a",
            given_name="Jan",
            family_name="Bakker",
            date_of_birth="1970-05-06",
            postcode="1234AB",
            house_number="12",
        )
    )
    same = engine.add(
        rec(
            "b",
            given_name="Jan",
            family_name="Bakker",
            date_of_birth="1970-05-06",
            postcode="1234 ab",
            house_number="12",
        )
    )
    other = engine.add(
        rec(
            "c",
            given_name="Piet",
            family_name="Smit",
            date_of_birth="1970-05-06",
            postcode="9999ZZ",
            house_number="1",
        )
    )
    assert first.status == "new"
    assert same.status == "linked"
    assert same.person_id == first.person_id
    assert same.match_weight is not None
    assert same.match_weight >= 0
    assert other.status == "new"
    assert other.person_id != first.person_id
    assert engine.counts.new_persons == 2


def test_a_record_linking_two_persons_merges_them_into_the_oldest() -> None:
    engine = LinkageEngine(hand_model())
    a = engine.add(rec("a", national_id="t1", given_name="Jan", family_name="Bakker"))
    b = engine.add(
        rec(
            "b",
            given_name="Jan",
            family_name="Bakker",
            date_of_birth="1970-05-06",
            postcode="1234AB",
            house_number="12",
        )
    )
    assert a.person_id != b.person_id  # names alone are not enough
    c = engine.add(
        rec(
            "c",
            national_id="t1",
            given_name="Jan",
            family_name="Bakker",
            date_of_birth="1970-05-06",
            postcode="1234AB",
            house_number="12",
        )
    )
    assert c.status == "merged"
    assert [(m.old_person, m.surviving_person, m.record_id) for m in c.merges] == [
        (b.person_id, a.person_id, "c")
    ]
    assert c.person_id == a.person_id
    assert engine.person_ids() == [a.person_id] * 3
    assert engine.counts.merges == 1


def test_grey_zone_pairs_go_to_review() -> None:
    # Names and birth year agree, nothing else known: weight 4 + 4 + 3 - 20 = -9 → p ≈ 0.002.
    engine = LinkageEngine(hand_model(review=0.001))
    engine.add(rec("a", given_name="Jan", family_name="Bakker", date_of_birth="1970"))
    result = engine.add(
        rec("b", given_name="Jan", family_name="Bakker", date_of_birth="1970-05-06")
    )
    assert result.status == "new"
    assert len(result.review) == 1
    pair = result.review[0]
    assert (pair.record_id, pair.candidate_record_id) == ("b", "a")
    assert 0.001 <= pair.match_probability < 0.5


def test_records_without_anything_to_link_on_are_their_own_person_and_counted() -> None:
    engine = LinkageEngine(hand_model())
    raw = RawRecord(record_id="x", source="gp", sex="M", postcode="1234AB", house_number="1")
    first = engine.add(standardise(raw))
    second = engine.add(
        standardise(
            RawRecord(record_id="y", source="gp", sex="M", postcode="1234AB", house_number="1")
        )
    )
    assert first.status == second.status == "unlinkable"
    assert first.person_id != second.person_id
    assert engine.counts.unlinkable == 2


def test_term_frequency_makes_common_names_weigh_less() -> None:
    engine = LinkageEngine(hand_model(tf_smoothing=0.0))  # raw frequencies: an exact expectation
    for i in range(20):
        engine.add(
            rec(f"common{i}", given_name="Jan", family_name="de Jong", date_of_birth=f"{1930 + i}")
        )
    engine.add(rec("rare1", given_name="Jan", family_name="Zwanikken", date_of_birth="1990"))
    engine.add(rec("rare2", given_name="Jan", family_name="Zwanikken", date_of_birth="1991"))
    engine.add(rec("common-again", given_name="Jan", family_name="de Jong", date_of_birth="1991"))
    rows = {record_id: row for row, record_id in enumerate(engine.store.record_ids)}
    rare = engine.score(rows["rare1"], rows["rare2"])
    common = engine.score(rows["common0"], rows["common-again"])
    assert rare - common == pytest.approx(math.log2(21 / 2), abs=1e-6)


@pytest.fixture(scope="module")
def dutch() -> tuple[list[StandardRecord], dict[str, str], FellegiSunterModel]:
    raw, truth = make_population(1200, seed=5)
    raw.append(without_identifiers(raw[0]))
    records = [standardise(r) for r in raw]
    model = train_model(records, options=TrainingOptions(u_pairs=40_000))
    return records, truth, model


def test_batch_links_dutch_records_accurately(
    dutch: tuple[list[StandardRecord], dict[str, str], FellegiSunterModel],
) -> None:
    records, truth, model = dutch
    result = link_batch(records, model)
    predicted = dict(zip(result.record_ids, result.person_ids, strict=True))
    evaluation = evaluate_clusters(predicted, truth, {r.record_id: r.source for r in records})
    assert evaluation.all_pairs.f1 >= 0.98
    assert evaluation.cross_source.precision >= 0.99
    assert result.counts.unlinkable == 1
    assert result.record_ids == [r.record_id for r in records]


def _partition(person_ids: list[str]) -> set[frozenset[int]]:
    groups: dict[str, set[int]] = {}
    for row, person in enumerate(person_ids):
        groups.setdefault(person, set()).add(row)
    return {frozenset(g) for g in groups.values()}


@settings(max_examples=5, deadline=None)
@given(st.integers(0, 10_000))
def test_persons_do_not_depend_on_arrival_order(
    dutch: tuple[list[StandardRecord], dict[str, str], FellegiSunterModel], seed: int
) -> None:
    records, _, model = dutch
    in_order = link_batch(records, model)
    shuffled = link_batch(records, model, shuffle_seed=seed)
    assert _partition(shuffled.person_ids) == _partition(in_order.person_ids)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=2, max_size=40))
def test_copies_share_a_person_and_merges_name_known_persons(rows: list[int]) -> None:
    raw, _ = make_population(20, seed=9)
    # A mild prior, so that an exact copy of even a sparse record scores above the threshold.
    engine = LinkageEngine(hand_model(prior_weight=-10.0))
    seen_persons: set[str] = set()
    for n, row in enumerate(rows):
        result = engine.add(standardise(replace(raw[row % len(raw)], record_id=str(n))))
        for merge in result.merges:
            assert merge.old_person in seen_persons
            assert merge.surviving_person in seen_persons
            assert merge.old_person != merge.surviving_person
        seen_persons.add(result.person_id)
    persons_of_copies: dict[int, set[str]] = {}
    for n, row in enumerate(rows):
        persons_of_copies.setdefault(row % len(raw), set()).add(engine.person_of_row(n))
    assert all(len(persons) == 1 for persons in persons_of_copies.values())


def test_batch_takes_the_same_decisions_as_adding_one_by_one(
    dutch: tuple[list[StandardRecord], dict[str, str], FellegiSunterModel],
) -> None:
    records, _, model = dutch
    batch = LinkageEngine(model)
    batch_results = batch.add_batch(records)
    online = LinkageEngine(model)
    online.prime_term_frequencies(records)
    online.vector_threshold = 4  # exercise both scoring paths
    online_results = [online.add(record, count_terms=False) for record in records]
    assert [r.person_id for r in online_results] == [r.person_id for r in batch_results]
    assert [r.merges for r in online_results] == [r.merges for r in batch_results]
    assert [len(r.review) for r in online_results] == [len(r.review) for r in batch_results]
    for a, b in zip(online_results, batch_results, strict=True):
        assert (a.match_weight is None) == (b.match_weight is None)
        if a.match_weight is not None and b.match_weight is not None:
            assert a.match_weight == pytest.approx(b.match_weight)


@pytest.mark.parametrize("cut", [1, 7, 250, 5000])
def test_sequences_take_exactly_the_decisions_of_adding_one_by_one(
    dutch: tuple[list[StandardRecord], dict[str, str], FellegiSunterModel], cut: int
) -> None:
    records, _, model = dutch
    online = LinkageEngine(model)
    online.vector_threshold = 4  # exercise both scoring paths
    one_by_one = [online.add(record) for record in records]
    sequenced = LinkageEngine(model)
    results = []
    for start in range(0, len(records), cut):
        results.extend(sequenced.add_sequence(records[start : start + cut]))
    assert results == one_by_one  # persons, outcomes, weights to the bit, merges, reviews
    assert sequenced.person_ids() == online.person_ids()
    assert sequenced.counts == online.counts


def test_repeated_identities_link_to_their_first_copy_with_the_same_persons(
    dutch: tuple[list[StandardRecord], dict[str, str], FellegiSunterModel],
) -> None:
    # A stream repeats each identity with every event of a person, in any order.
    records, truth, model = dutch
    rng = random.Random(8)
    stream: list[StandardRecord] = []
    stream_truth: dict[str, str] = {}
    for record in records:
        for copy in range(rng.randint(1, 6)):
            record_id = f"{record.record_id}/{copy}"
            stream.append(replace(record, record_id=record_id))
            stream_truth[record_id] = truth.get(record.record_id, record.record_id)
    rng.shuffle(stream)
    collapsed = LinkageEngine(model)
    full = LinkageEngine(model)
    full.collapse_duplicates = False
    collapsed_results = collapsed.add_sequence(stream)
    full_results = full.add_sequence(stream)
    ids = [r.record_id for r in stream]
    by_collapsed = dict(zip(ids, collapsed.person_ids(), strict=True))
    by_full = dict(zip(ids, full.person_ids(), strict=True))
    # The same pairwise decisions (>= 99.5 % of linked pairs either way), as accurate.
    agreement = evaluate_clusters(by_collapsed, by_full)
    assert agreement.all_pairs.precision >= 0.995
    assert agreement.all_pairs.recall >= 0.995
    f1_collapsed = evaluate_clusters(by_collapsed, stream_truth).all_pairs.f1
    f1_full = evaluate_clusters(by_full, stream_truth).all_pairs.f1
    assert f1_collapsed >= f1_full - 0.002
    assert f1_collapsed >= 0.98
    # Every repeat after the first was linked to it alone, with a full-agreement weight.
    first_seen: set[tuple[object, ...]] = set()
    repeats = 0
    for record, result in zip(stream, collapsed_results, strict=True):
        content = dataclasses.astuple(replace(record, record_id="", source=""))
        if content in first_seen and record.has_linkable_content:
            repeats += 1
            assert result.candidates == 1
            assert result.status == "linked"
            assert result.match_weight is not None
            assert result.match_weight >= model.link_weight
        first_seen.add(content)
    assert collapsed.counts.duplicates == repeats > len(records)
    assert collapsed.counts.pairs_scored * 3 < full.counts.pairs_scored
    assert len(full_results) == len(collapsed_results) == len(stream)


@pytest.mark.parametrize("cap", [3, 40, 500])
def test_link_batch_takes_exactly_the_decisions_of_adding_one_by_one(
    dutch: tuple[list[StandardRecord], dict[str, str], FellegiSunterModel], cap: int
) -> None:
    # Copies of records (some exact, some from another source) exercise the collapse of
    # repeated identities; a small block cap exercises capped blocks.
    records, _, trained = dutch
    model = replace(trained, block_cap=cap)
    rng = random.Random(cap)
    stream = list(records)
    for n, record in enumerate(rng.sample(records, 300)):
        source = record.source if n % 2 else "hospital"
        stream.insert(rng.randrange(len(stream)), replace(record, record_id=f"c{n}", source=source))
    online = LinkageEngine(model)
    online.prime_term_frequencies(stream)
    online.vector_threshold = 4  # exercise both scoring paths
    online_pairs: list[tuple[str, str, float]] = []
    ids = online.store.record_ids
    online.pair_sink = lambda row, other, weight: online_pairs.append(
        (ids[row], ids[other], weight)
    )
    results = [online.add(record, count_terms=False) for record in stream]
    batch = link_batch(stream, model, collect_pairs=True)
    assert batch.person_ids == online.person_ids()
    assert batch.merges == [m for r in results for m in r.merges]
    assert batch.review == [p for r in results for p in r.review]
    assert batch.pairs == online_pairs  # the same candidates, in order, weights to the bit
    assert batch.counts == online.counts
    assert batch.blocking == online.index.stats
    assert online.counts.duplicates > 0
    assert (online.index.stats.capped_blocks > 0) == (cap == 3)


def test_link_batch_reuses_the_training_batch_with_the_same_result(
    dutch: tuple[list[StandardRecord], dict[str, str], FellegiSunterModel],
) -> None:
    records, _, _ = dutch
    options = TrainingOptions(u_pairs=40_000)
    batch = RecordBatch(records)
    model = train_model(records, options=options, batch=batch)
    assert model.to_json() == train_model(records, options=options).to_json()
    shared = link_batch(records, model, collect_pairs=True, batch=batch)
    alone = link_batch(records, model, collect_pairs=True)
    assert shared == alone


def test_a_batch_standardised_field_by_field_links_as_its_records() -> None:
    raw, _ = make_population(500, seed=6)
    many = standardise_many(raw)
    records = [standardise(r) for r in raw]
    options = TrainingOptions(u_pairs=20_000)
    batch = RecordBatch(many)
    model = train_model(many, options=options, batch=batch)
    assert model.to_json() == train_model(records, options=options).to_json()
    alone = RecordBatch(records)
    assert batch.store.columns == alone.store.columns
    assert batch.store.vocabulary._strings == alone.store.vocabulary._strings
    assert batch.store.value_counts == alone.store.value_counts
    assert link_batch(many, model, batch=batch) == link_batch(records, model)


def test_a_batch_standardised_field_by_field_extends_a_filled_store_as_one_by_one() -> None:
    raw, _ = make_population(400, seed=8)
    raw.append(RawRecord("odd", "gp", given_name="Émma", family_name="Jansen-de Vries"))
    earlier = [standardise(r) for r in raw[:150]]
    later = standardise_many(raw[150:])
    assert later.factorised("family_parts") is not None
    store = RecordStore()
    store.extend(earlier)
    store.extend(later)
    one_by_one = RecordStore()
    for record in earlier + list(later):
        one_by_one.append(one_by_one.encode(record))
    assert store.columns == one_by_one.columns
    assert store.vocabulary.strings() == one_by_one.vocabulary.strings()
    assert store.value_counts == one_by_one.value_counts
    assert store.non_missing == one_by_one.non_missing
