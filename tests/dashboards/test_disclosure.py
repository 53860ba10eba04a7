"""Small-number suppression: nothing below the threshold is shown or recoverable from totals."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkwatch.dashboards.disclosure import (
    TOTAL,
    DisclosureError,
    Partition,
    Table2D,
    apply_disclosure,
    determined_entries,
    grid_lines,
    suppress_cells,
    threshold_from_env,
)

counts = st.integers(min_value=0, max_value=60) | st.integers(min_value=0, max_value=12)


def table_values(grid: list[list[int]]) -> dict[tuple[object, object], int]:
    values: dict[tuple[object, object], int] = {}
    for r, row in enumerate(grid):
        for c, v in enumerate(row):
            values[(r, c)] = v
        values[(r, TOTAL)] = sum(row)
    for c in range(len(grid[0])):
        values[(TOTAL, c)] = sum(row[c] for row in grid)
    values[(TOTAL, TOTAL)] = sum(map(sum, grid))
    return values


# Two-way tables have at least two rows and columns; a single row is a partition.
grids = st.integers(2, 5).flatmap(
    lambda cols: st.lists(st.lists(counts, min_size=cols, max_size=cols), min_size=2, max_size=6)
)


@settings(max_examples=300, deadline=None)
@given(grid=grids, threshold=st.integers(2, 15))
def test_two_way_table_never_reveals_a_small_cell(grid: list[list[int]], threshold: int) -> None:
    values = table_values(grid)
    rows, cols = range(len(grid)), range(len(grid[0]))
    lines = grid_lines(list(rows), list(cols), row_totals=True, col_totals=True)
    hidden = set(suppress_cells(values, lines, threshold))

    # Directly: every non-zero count below the threshold is hidden (margins included).
    for key, v in values.items():
        if 0 < v < threshold:
            assert key in hidden, f"{key}={v} shown with threshold {threshold}"
    # By subtraction: no hidden entry follows exactly from the shown ones and the totals.
    # (A hidden zero that can be worked out reveals nobody.)
    assert {k for k in determined_entries(lines, hidden) if values[k] > 0} == set()
    # No line with a shown total hides a single count or a sum below the threshold.
    for line in lines:
        inside = [k for k in (*line.members, line.total) if k in hidden]
        hidden_sum = sum(values[k] for k in inside)
        if hidden_sum and line.total not in hidden:
            assert len(inside) >= 2
            assert hidden_sum >= threshold
    # The grand total is hidden only when it is small itself.
    if (TOTAL, TOTAL) in hidden:
        assert 0 < values[(TOTAL, TOTAL)] < threshold


@settings(max_examples=200, deadline=None)
@given(
    cells=st.dictionaries(st.sampled_from("ABCDEFGH"), counts, min_size=1, max_size=8),
    threshold=st.integers(2, 15),
)
def test_partition_of_a_published_total_never_reveals_a_small_cell(
    cells: dict[str, int], threshold: int
) -> None:
    rows = [{"week": "2022-01-03", "region": k, "events": v} for k, v in cells.items()]
    out = apply_disclosure(
        ["week", "region", "events", "rate"],
        [dict(r, rate=1.5) for r in rows],
        counts=["events"],
        rates={"rate": ["events"]},
        secondary=Partition(by=("week",), category="region", count="events"),
        threshold=threshold,
    )
    shown = {r["region"]: r["events"] for r in out.rows if r["events"] is not None}
    hidden = {r["region"]: cells[r["region"]] for r in out.rows if r["events"] is None}
    assert all(not (0 < v < threshold) for v in shown.values())
    total = sum(cells.values())
    if hidden and total >= threshold:
        # total - shown is what a reader learns: it must cover at least two cells and
        # reach the threshold, so no single small cell can be read off.
        assert len(hidden) >= 2
        assert total - sum(shown.values()) >= threshold
    for r in out.rows:
        assert (r["rate"] is None) == (r["events"] is None)


def test_age_sex_table_hides_complements_and_their_rates() -> None:
    grid = {("0_14", "F"): 3, ("0_14", "M"): 40, ("15_24", "F"): 25, ("15_24", "M"): 30}
    grid |= {("25_44", "F"): 50, ("25_44", "M"): 9}
    rows = [{"a": a, "s": s, "events": v, "rate": v / 2} for (a, s), v in grid.items()]
    out = apply_disclosure(
        ["a", "s", "events", "rate"],
        rows,
        counts=["events"],
        rates={"rate": ["events"]},
        secondary=Table2D("a", "s", "events"),
    )
    shown = {(r["a"], r["s"]) for r in out.rows if r["events"] is not None}
    assert shown == {("15_24", "F"), ("15_24", "M")}
    reasons = {(h["row"], h["column"]): h["reason"] for h in out.hidden}
    assert reasons[(0, "events")] == "primary"
    assert reasons[(1, "events")] == "secondary"
    assert reasons[(1, "rate")] == "derived"


def test_zero_counts_are_shown() -> None:
    out = apply_disclosure(
        ["k", "events"],
        [{"k": "a", "events": 0}, {"k": "b", "events": 25}],
        counts=["events"],
        rates={},
        secondary=None,
    )
    assert [r["events"] for r in out.rows] == [0, 25]


def test_threshold_comes_from_the_environment_and_is_validated() -> None:
    assert threshold_from_env({}) == 10
    assert threshold_from_env({"LINKWATCH_SUPPRESSION_THRESHOLD": "5"}) == 5
    for bad in ("0", "-3", "ten"):
        with pytest.raises(DisclosureError, match="LINKWATCH_SUPPRESSION_THRESHOLD"):
            threshold_from_env({"LINKWATCH_SUPPRESSION_THRESHOLD": bad})


def test_single_line_with_one_small_cell_hides_the_smallest_other_cell() -> None:
    values = {("r", c): v for c, v in zip("abc", (4, 30, 12), strict=True)}
    values[("r", TOTAL)] = 46
    lines = grid_lines(["r"], list("abc"), row_totals=True, col_totals=False)
    hidden = suppress_cells(values, lines, 10)
    assert hidden == {("r", "a"): "primary", ("r", "c"): "secondary"}
    assert list(itertools.chain(hidden)) == [("r", "a"), ("r", "c")]
