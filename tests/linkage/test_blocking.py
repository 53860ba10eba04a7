"""Blocking passes, the incremental index with its size cap, and pair completeness."""

from __future__ import annotations

import numpy as np
import pytest

from linkwatch.linkage.batch import RecordBatch
from linkwatch.linkage.blocking import (
    DEFAULT_PASSES,
    BlockingConfigError,
    BlockingIndex,
    BlockingPass,
    blocked_pairs,
    pair_completeness,
    passes_from_json,
)
from linkwatch.linkage.dutch_identities import make_population
from linkwatch.linkage.standardise import RawRecord, StandardRecord, standardise


def rec(record_id: str, **fields: str) -> StandardRecord:
    return standardise(RawRecord(record_id=record_id, **fields))


def test_pass_keys_join_parts_and_split_double_surnames() -> None:
    record = rec("r", family_name="Jansen-de Vries", date_of_birth="1980-01-02")
    surname_year = BlockingPass("s", ("family_code", "birth_year"))
    assert surname_year.keys(record) == ["J525|1980", "V620|1980"]
    assert BlockingPass("d", ("date_of_birth",)).keys(record) == ["1980-1-2"]
    assert BlockingPass("p", ("pc4", "house_number")).keys(record) == []  # a part is missing


def test_unknown_key_part_is_refused() -> None:
    with pytest.raises(BlockingConfigError, match="unknown key part 'shoe_size'"):
        BlockingPass("bad", ("shoe_size",))
    assert passes_from_json([p.as_dict() for p in DEFAULT_PASSES]) == DEFAULT_PASSES


def test_index_finds_records_sharing_a_key_in_any_pass() -> None:
    index = BlockingIndex()
    records = [
        rec("a", national_id="t1", family_name="Bakker", date_of_birth="1970-05-06"),
        rec("b", national_id="t2", family_name="Smit", date_of_birth="1970-05-06"),
        rec("c", national_id="t1", family_name="Visser", date_of_birth="1999-01-01"),
        rec("d", national_id="t9", family_name="Mulder", date_of_birth="1960-01-01"),
    ]
    for row, record in enumerate(records):
        index.add(index.keys(record), row)
    probe = rec("e", national_id="t1", family_name="Bakker", date_of_birth="1970-05-06")
    assert index.candidates(index.keys(probe)) == {0, 1, 2}


def test_oversized_blocks_stop_being_used_and_are_counted() -> None:
    index = BlockingIndex(
        (BlockingPass("year", ("birth_year",)), BlockingPass("id", ("national_id",))), cap=3
    )
    for row in range(5):
        record = rec(str(row), date_of_birth="1970", national_id=f"t{row}")
        index.add(index.keys(record), row)
    assert index.stats.capped_blocks == 1
    assert index.stats.per_pass_capped == {"year": 1, "id": 0}
    probe = rec("p", date_of_birth="1970", national_id="t4")
    assert index.candidates(index.keys(probe)) == {4}  # the capped year block gives nothing
    assert index.stats.capped_lookups == 1


def test_blocked_pairs_skip_capped_blocks_and_count_them() -> None:
    records = [rec(str(i), date_of_birth="1970-01-01") for i in range(6)]
    pairs, stats = blocked_pairs(records, (BlockingPass("dob", ("date_of_birth",)),), cap=4)
    assert len(pairs["dob"]) == 0
    assert stats.capped_blocks == 1
    pairs, stats = blocked_pairs(records, (BlockingPass("dob", ("date_of_birth",)),), cap=10)
    assert len(pairs["dob"]) == 15
    assert stats.capped_blocks == 0


def test_pair_completeness_on_labelled_dutch_records() -> None:
    raw, truth = make_population(1500, seed=3)
    records = [standardise(r) for r in raw]
    result = pair_completeness(records, truth)
    assert result.true_pairs > 500
    assert result.completeness >= 0.99
    # Every pass alone misses true pairs that the union of passes reaches.
    assert all(share < result.completeness for share in result.per_pass.values())


def _blocked_pairs_by_strings(
    records: list[StandardRecord], passes: tuple[BlockingPass, ...], cap: int
) -> dict[str, set[tuple[int, int]]]:
    """The pairs the passes' key strings give, written plainly."""
    out: dict[str, set[tuple[int, int]]] = {}
    for p in passes:
        blocks: dict[str, list[int]] = {}
        for row, record in enumerate(records):
            for key in p.keys(record):
                blocks.setdefault(key, []).append(row)
        out[p.name] = {
            (a, b)
            for rows in blocks.values()
            if len(rows) < cap
            for a in rows
            for b in rows
            if a < b
        }
    return out


def test_column_wise_keys_pair_the_records_their_key_strings_pair() -> None:
    raw, _ = make_population(400, seed=11)
    records = [standardise(r) for r in raw]
    records += [
        rec("m1", family_name="Jansen-de Vries-Bakker", given_name="Jan", date_of_birth="1980"),
        rec("m2", family_name="Bakker", given_name="Jan", date_of_birth="1980-01-02"),
        rec("m3", family_name="Vries-Bakker-Jansen", given_name="Johan", date_of_birth="1980"),
        rec("m4", family_name="Smit-Bakker-Smid", given_name="J.", date_of_birth="1980"),
    ]
    passes = (
        *DEFAULT_PASSES,
        BlockingPass("surname", ("family_name",)),
        BlockingPass("initial + sex + year", ("given_initial", "sex", "birth_year")),
        BlockingPass("postcode", ("postcode",)),
    )
    for cap in (3, 500):
        expected = _blocked_pairs_by_strings(records, passes, cap)
        found, _ = blocked_pairs(records, passes, cap)
        assert {name: {(int(a), int(b)) for a, b in pairs} for name, pairs in found.items()} == (
            expected
        )
        assert all(len(pairs) == len(expected[name]) for name, pairs in found.items())


def test_column_wise_candidates_are_those_of_the_index() -> None:
    raw, _ = make_population(600, seed=12)
    records = [standardise(r) for r in raw]
    indexed = np.array([n % 7 != 3 for n in range(len(records))])
    for cap in (2, 3, 4, 500):
        index = BlockingIndex(DEFAULT_PASSES, cap)
        expected: list[int] = []
        for row, record in enumerate(records):
            if indexed[row]:
                keys = index.keys(record)
                expected += [row << 32 | other for other in sorted(index.candidates(keys))]
                index.add(keys, row)
        codes, stats = RecordBatch(records).candidate_codes(indexed, DEFAULT_PASSES, cap)
        assert codes.tolist() == expected
        assert stats == index.stats
