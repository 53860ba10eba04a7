"""Each comparison level, the table's validation, and the numpy path agreeing with the loop."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkwatch.linkage.comparisons import (
    DEFAULT_COMPARISONS,
    ComparisonConfigError,
    ComparisonSpec,
    CompiledComparisons,
    comparisons_from_json,
    level,
)
from linkwatch.linkage.record_store import RecordStore
from linkwatch.linkage.standardise import RawRecord, standardise

BASE = RawRecord(
    record_id="a",
    source="gp",
    national_id="tok-123456",
    given_name="Johannes",
    family_name="van der Berg",
    date_of_birth="1950-04-12",
    sex="M",
    postcode="1234AB",
    house_number="12",
    city="Utrecht",
)


def level_label(comparison: str, left: RawRecord, right: RawRecord) -> str:
    """The label of the level a pair lands in, checked on both evaluation paths."""
    store = RecordStore()
    store.extend([standardise(left), standardise(replace(right, record_id="b"))])
    compiled = CompiledComparisons(DEFAULT_COMPARISONS, store)
    k = [spec.name for spec in DEFAULT_COMPARISONS].index(comparison)
    looped = compiled.level(k, 0, 1)
    vectorised = int(compiled.matrix_for(np.array([0]), np.array([1]))[0, k])
    assert looped == vectorised
    return DEFAULT_COMPARISONS[k].levels[looped].label


@pytest.mark.parametrize(
    ("comparison", "changes", "label"),
    [
        ("national_id", {"national_id": ""}, "missing"),
        ("national_id", {}, "exact"),
        ("national_id", {"national_id": "other-token"}, "else"),
        ("given_name", {"given_name": ""}, "missing"),
        ("given_name", {"given_name": "JOHANNES"}, "exact"),
        ("given_name", {"given_name": "Johanes"}, "close"),
        ("given_name", {"given_name": "Johnny"}, "similar"),
        ("given_name", {"given_name": "J."}, "initial"),
        ("given_name", {"given_name": "Pieter"}, "else"),
        ("family_name", {"family_name": ""}, "missing"),
        ("family_name", {"family_name": "Berg, van der"}, "exact"),
        ("family_name", {"family_name": "van der Bergh"}, "close"),
        ("family_name", {"family_name": "Jansen-van der Berg"}, "shared part"),
        ("family_name", {"family_name": "Bergsma"}, "similar"),
        ("family_name", {"family_name": "Dijkstra"}, "else"),
        ("date_of_birth", {"date_of_birth": ""}, "missing"),
        ("date_of_birth", {"date_of_birth": "12-04-1950"}, "exact"),
        ("date_of_birth", {"date_of_birth": "1950-12-04"}, "day-month swapped"),
        ("date_of_birth", {"date_of_birth": "1951-04-12"}, "one component off"),
        ("date_of_birth", {"date_of_birth": "1950"}, "year only"),
        ("date_of_birth", {"date_of_birth": "1962-08-30"}, "else"),
        ("sex", {"sex": ""}, "missing"),
        ("sex", {"sex": "man"}, "exact"),
        ("sex", {"sex": "V"}, "else"),
        ("address", {"postcode": "", "city": ""}, "missing"),
        ("address", {"postcode": "1234 ab"}, "PC6 + house number"),
        ("address", {"house_number": "14"}, "PC6"),
        ("address", {"postcode": "1234XY"}, "PC4 + house number"),
        ("address", {"postcode": "1234XY", "house_number": "3"}, "PC4"),
        ("address", {"postcode": "9999ZZ", "city": "UTRECHT"}, "city"),
        ("address", {"postcode": "", "city": "Utrecht"}, "city"),
        ("address", {"postcode": "9999ZZ", "city": "Zwolle"}, "else"),
    ],
)
def test_each_level(comparison: str, changes: dict[str, str], label: str) -> None:
    assert level_label(comparison, BASE, replace(BASE, **changes)) == label


def test_edit_distance_level_for_clear_identifiers() -> None:
    spec = ComparisonSpec(
        "clear_id",
        "a clear (not pseudonymised) identifier",
        (
            level("missing", "null", "missing", columns=["national_id"]),
            level("exact", "exact", "same", column="national_id"),
            level("one edit", "edit_distance", "one typo", column="national_id", max_distance=1),
            level("else", "else", "different"),
        ),
    )
    store = RecordStore()
    for i, value in enumerate(["1234567", "1234576", "1234567", "7654321"]):
        store.extend([standardise(RawRecord(record_id=str(i), national_id=value))])
    compiled = CompiledComparisons([spec], store)
    assert [compiled.level(0, 0, j) for j in (1, 2, 3)] == [2, 1, 3]
    vectorised = compiled.matrix_for(np.array([0, 0, 0]), np.array([1, 2, 3]))
    assert vectorised[:, 0].tolist() == [2, 1, 3]


def test_missing_on_either_side_is_the_missing_level_not_a_disagreement() -> None:
    blank = replace(
        BASE,
        national_id="",
        given_name="",
        family_name="",
        date_of_birth="",
        sex="",
        postcode="",
        city="",
    )
    for spec in DEFAULT_COMPARISONS:
        assert level_label(spec.name, BASE, blank) == "missing"
        assert level_label(spec.name, blank, BASE) == "missing"


def test_table_round_trips_through_json() -> None:
    data = [spec.as_dict() for spec in DEFAULT_COMPARISONS]
    assert comparisons_from_json(data) == DEFAULT_COMPARISONS


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        (
            (level("exact", "exact", "x", column="sex"), level("else", "else", "x")),
            "needs a missing level",
        ),
        (
            (
                level("exact", "exact", "x", column="sex"),
                level("x", "exact", "x", column="sex"),
                level("e", "else", "e"),
            ),
            "level 0 must be of kind 'null'",
        ),
        (
            (
                level("m", "null", "m", columns=["sex"]),
                level("x", "fuzzy", "x"),
                level("e", "else", "e"),
            ),
            "unknown kind 'fuzzy'",
        ),
        (
            (
                level("m", "null", "m", columns=["sex"]),
                level("x", "exact", "x", column="shoe"),
                level("e", "else", "e"),
            ),
            "unknown column 'shoe'",
        ),
        (
            (
                level("m", "null", "m", columns=["sex"]),
                level("x", "jaro_winkler", "x", column="city"),
                level("e", "else", "e"),
            ),
            "missing parameter 'threshold'",
        ),
    ],
)
def test_invalid_tables_are_refused_with_the_comparison_named(levels: tuple, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ComparisonConfigError, match=message) as caught:
        ComparisonSpec("broken", "a broken comparison", levels)
    assert "'broken'" in str(caught.value)


_names = st.sampled_from(
    ["Jan", "Jans", "J.", "Johan", "", "Pieter", "Piet", "de Vries", "Vries, de", "Jansen-de Vries"]
)
_dates = st.sampled_from(
    ["1950-04-12", "1950-12-04", "1951-04-12", "1950", "", "1950-04-13", "1960-01-01"]
)
_pcs = st.sampled_from(["1234AB", "1234 xy", "1234", "", "5678CD"])
_raw = st.builds(
    RawRecord,
    record_id=st.just("r"),
    national_id=st.sampled_from(["", "t1", "t2", "t12"]),
    given_name=_names,
    family_name=_names,
    date_of_birth=_dates,
    sex=st.sampled_from(["", "M", "F"]),
    postcode=_pcs,
    house_number=st.sampled_from(["", "1", "12a"]),
    city=st.sampled_from(["", "Utrecht", "Utrech", "Zwolle"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_raw, min_size=2, max_size=12))
def test_numpy_levels_equal_pairwise_levels(raws: list[RawRecord]) -> None:
    store = RecordStore()
    store.extend(standardise(replace(r, record_id=str(i))) for i, r in enumerate(raws))
    compiled = CompiledComparisons(DEFAULT_COMPARISONS, store)
    i, j = np.triu_indices(len(raws), k=1)
    matrix = compiled.matrix_for(i.astype(np.int64), j.astype(np.int64))
    looped = np.array([compiled.levels(a, b) for a, b in zip(i.tolist(), j.tolist(), strict=True)])
    assert (matrix == looped).all()
    # Levels do not depend on which record is left and which right.
    swapped = compiled.matrix_for(j.astype(np.int64), i.astype(np.int64))
    assert (swapped == matrix).all()


def test_bulk_numpy_levels_equal_pairwise_levels_on_a_generated_population() -> None:
    # Enough distinct name pairs for the bulk path, which skips Jaro-Winkler for pairs
    # whose similarity is bounded below every threshold: the levels must stay those of the loop.
    from linkwatch.linkage.dutch_identities import make_population

    raws, _ = make_population(400, seed=7)
    store = RecordStore()
    store.extend(standardise(r) for r in raws)
    compiled = CompiledComparisons(DEFAULT_COMPARISONS, store)
    rng = np.random.default_rng(3)
    i = rng.integers(0, len(store), 6000)
    j = rng.integers(0, len(store), 6000)
    matrix = compiled.matrix_for(i.astype(np.int64), j.astype(np.int64))
    pairwise = np.array([compiled.levels(int(a), int(b)) for a, b in zip(i, j, strict=True)])
    assert (matrix == pairwise).all()
    # Some pairs are close in name (levels between exact and else), so the bound was tested.
    given_name = [spec.name for spec in DEFAULT_COMPARISONS].index("given_name")
    assert ((matrix[:, given_name] == 2) | (matrix[:, given_name] == 3)).any()
