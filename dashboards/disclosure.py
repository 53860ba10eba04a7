"""Small-number suppression for every count the dashboards publish.

Rules (after the Washington State DOH guidelines quoted in the project's domain notes):

* **primary** — a non-zero count below the threshold (default 10) is not shown;
* **derived** — a rate or ratio computed from a suppressed count is not shown either;
* **secondary** — where the cells of a panel add up to totals that are published (a
  week's national count, the margins of an age band x sex table), more cells are hidden
  until no hidden cell can be recovered by subtracting the shown cells from a total:
  every line (row or column with its total) that hides anything hides at least two
  entries, and when its total is shown, the hidden entries together reach the threshold,
  so neither one cell nor a small sum can be read off. A final check solves the
  published equations and hides more until no hidden entry is determined by them.

Zero counts are shown: a zero discloses nobody. Suppression works on one panel's table
and the totals it adds up to; it does not guard against differencing two filtered views
of the same data (for example all sexes against one sex), which public outputs must
avoid by offering coarse strata only.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

DEFAULT_THRESHOLD = 10
THRESHOLD_ENV = "LINKWATCH_SUPPRESSION_THRESHOLD"
TOTAL = "__total__"
Reason = Literal["primary", "secondary", "derived"]
Key = tuple[Hashable, Hashable]


class DisclosureError(ValueError):
    """A suppression setting linkwatch cannot use."""


def threshold_from_env(environ: Mapping[str, str] | None = None) -> int:
    """The suppression threshold from ``LINKWATCH_SUPPRESSION_THRESHOLD`` (default 10)."""
    env = os.environ if environ is None else environ
    raw = env.get(THRESHOLD_ENV, "").strip()
    if not raw:
        return DEFAULT_THRESHOLD
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise DisclosureError(
            f"{THRESHOLD_ENV}={raw!r}: expected a whole number of at least 1 (default 10)"
        )
    return value


@dataclass(frozen=True)
class Partition:
    """Rows whose ``category`` cells, within each group of ``by`` columns, add up to a
    total published elsewhere (e.g. provinces adding up to the week's national count)."""

    by: tuple[str, ...]
    category: str
    count: str


@dataclass(frozen=True)
class Table2D:
    """A two-way table of ``count`` by ``rows`` x ``cols`` with its row, column and grand
    totals published."""

    rows: str
    cols: str
    count: str


@dataclass(frozen=True)
class Line:
    """Entries that add up to ``total`` (itself an entry)."""

    members: tuple[Key, ...]
    total: Key


def grid_lines(
    rows: Sequence[Hashable], cols: Sequence[Hashable], *, row_totals: bool, col_totals: bool
) -> list[Line]:
    """The additive lines of a rows x cols table whose chosen margins are published.

    Entries are ``(row, col)`` keys; margins use :data:`TOTAL` in place of the row or
    column (``(r, TOTAL)`` is row r's total, ``(TOTAL, TOTAL)`` the grand total). With a
    single row or column the other margins are the cells themselves: describe such a
    table as one line instead.
    """
    lines: list[Line] = []
    if row_totals:
        lines += [Line(tuple((r, c) for c in cols), (r, TOTAL)) for r in rows]
    if col_totals:
        lines += [Line(tuple((r, c) for r in rows), (TOTAL, c)) for c in cols]
    if row_totals and col_totals:
        lines.append(Line(tuple((r, TOTAL) for r in rows), (TOTAL, TOTAL)))
        lines.append(Line(tuple((TOTAL, c) for c in cols), (TOTAL, TOTAL)))
    return lines


def determined_entries(lines: Iterable[Line], hidden: set[Key]) -> set[Key]:
    """Hidden entries whose value follows exactly from the published ones and the lines.

    Each line is the equation ``sum(members) - total = 0``; published entries move to the
    right-hand side. A hidden entry is determined when its unit vector lies in the row
    space of the equations over the hidden entries.
    """
    unknowns = sorted(hidden, key=repr)
    if not unknowns:
        return set()
    index = {k: i for i, k in enumerate(unknowns)}
    rows = []
    for line in lines:
        coeffs = np.zeros(len(unknowns))
        for k in line.members:
            if k in index:
                coeffs[index[k]] += 1.0
        if line.total in index:
            coeffs[index[line.total]] -= 1.0
        if coeffs.any():
            rows.append(coeffs)
    if not rows:
        return set()
    matrix = np.array(rows)
    rank = np.linalg.matrix_rank(matrix)
    found = set()
    for k, i in index.items():
        unit = np.zeros(len(unknowns))
        unit[i] = 1.0
        if np.linalg.matrix_rank(np.vstack([matrix, unit])) == rank:
            found.add(k)
    return found


def suppress_cells(
    values: Mapping[Key, int], lines: Sequence[Line], threshold: int = DEFAULT_THRESHOLD
) -> dict[Key, Reason]:
    """Which entries to hide, and why, in a table of counts with published totals.

    ``values`` holds every entry named by ``lines`` (cells and totals); entries missing
    from it count as zero. A line's total is never chosen to protect its own members
    (other views show it); a row or column total is hidden only when it is small, or to
    protect another small total through the grand total.
    """
    if threshold < 1:
        raise DisclosureError(f"suppression threshold {threshold}: expected at least 1")

    def value(k: Key) -> int:
        return int(values.get(k, 0))

    hidden: dict[Key, Reason] = {k: "primary" for k, v in values.items() if 0 < v < threshold}

    def complement(line: Line) -> Key | None:
        # The line's own total is never the complement (other views publish it); the
        # member with the fewest events is, a zero cell only when nothing else is left.
        # Members are totals only in the lines of margins adding up to the grand total.
        shown = [k for k in line.members if k not in hidden]
        if not shown:
            return None
        return min(shown, key=lambda k: (value(k) == 0, value(k), repr(k)))

    while True:
        changed = False
        for line in lines:
            entries = [*line.members, line.total]
            inside = [k for k in entries if k in hidden]
            if not inside:
                continue
            total_hidden = line.total in hidden
            enough = len(inside) >= 2 and (
                total_hidden or sum(value(k) for k in inside) >= threshold
            )
            if enough:
                continue
            extra = complement(line)
            if extra is not None:
                hidden[extra] = "secondary"
                changed = True
        if changed:
            continue
        # The line rules leave rare patterns an equation solver could still undo.
        determined = determined_entries(lines, set(hidden))
        if not determined:
            return hidden
        target = min(determined, key=repr)
        for line in lines:
            if target in (*line.members, line.total):
                extra = complement(line)
                if extra is not None:
                    hidden[extra] = "secondary"
                    changed = True
                    break
        if not changed:
            return hidden  # everything in reach is hidden already


@dataclass
class Disclosed:
    """A panel's rows after suppression; hidden values are None and listed in ``hidden``."""

    columns: list[str]
    rows: list[dict[str, Any]]
    hidden: list[dict[str, Any]] = field(default_factory=list)
    threshold: int = DEFAULT_THRESHOLD

    def is_hidden(self, row: int, column: str) -> bool:
        """Whether the value in ``row`` (index) and ``column`` is suppressed."""
        return any(h["row"] == row and h["column"] == column for h in self.hidden)


def apply_disclosure(
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    counts: Sequence[str],
    rates: Mapping[str, Sequence[str]],
    secondary: Partition | Table2D | None,
    threshold: int = DEFAULT_THRESHOLD,
) -> Disclosed:
    """Suppress small counts, the rates derived from them, and what totals would reveal."""
    if threshold < 1:
        raise DisclosureError(f"suppression threshold {threshold}: expected at least 1")
    out = [dict(r) for r in rows]
    reasons: dict[tuple[int, str], Reason] = {}
    for i, row in enumerate(out):
        for c in counts:
            v = row.get(c)
            if v is not None and 0 < int(v) < threshold:
                reasons[(i, c)] = "primary"
    if secondary is not None:
        for (i, c), reason in _secondary(out, secondary, threshold).items():
            reasons.setdefault((i, c), reason)
    for i, _row in enumerate(out):
        for rate, sources in rates.items():
            if any((i, s) in reasons for s in sources):
                reasons.setdefault((i, rate), "derived")
    hidden = []
    for (i, c), reason in sorted(reasons.items()):
        out[i][c] = None
        hidden.append({"row": i, "column": c, "reason": reason})
    return Disclosed(list(columns), out, hidden, threshold)


def _secondary(
    rows: Sequence[Mapping[str, Any]], spec: Partition | Table2D, threshold: int
) -> dict[tuple[int, str], Reason]:
    """Row-level reasons for the cells ``suppress_cells`` hides in the panel's table(s)."""
    found: dict[tuple[int, str], Reason] = {}
    if isinstance(spec, Partition):
        groups: dict[tuple[Any, ...], dict[Hashable, int]] = {}
        positions: dict[tuple[tuple[Any, ...], Hashable], int] = {}
        for i, row in enumerate(rows):
            g = tuple(row[b] for b in spec.by)
            cat = row[spec.category]
            groups.setdefault(g, {})[cat] = int(row[spec.count] or 0)
            positions[(g, cat)] = i
        for g, cells in groups.items():
            values: dict[Key, int] = {("row", cat): v for cat, v in cells.items()}
            values[("row", TOTAL)] = sum(cells.values())
            cats = sorted(cells, key=repr)
            lines = grid_lines(["row"], cats, row_totals=True, col_totals=False)
            for (_, cat), reason in suppress_cells(values, lines, threshold).items():
                if cat != TOTAL:
                    found[(positions[(g, cat)], spec.count)] = reason
        return found
    cells2: dict[Key, int] = {}
    where: dict[Key, int] = {}
    for i, row in enumerate(rows):
        key = (row[spec.rows], row[spec.cols])
        cells2[key] = int(row[spec.count] or 0)
        where[key] = i
    row_keys = sorted({k[0] for k in cells2}, key=repr)
    col_keys = sorted({k[1] for k in cells2}, key=repr)
    values2 = dict(cells2)
    for r in row_keys:
        values2[(r, TOTAL)] = sum(cells2.get((r, c), 0) for c in col_keys)
    for c in col_keys:
        values2[(TOTAL, c)] = sum(cells2.get((r, c), 0) for r in row_keys)
    values2[(TOTAL, TOTAL)] = sum(cells2.values())
    if len(row_keys) == 1 or len(col_keys) == 1:
        # A table of one row (or column) is one line: its other margins are its cells.
        lines2 = [Line(tuple(cells2), (TOTAL, TOTAL))]
    else:
        lines2 = grid_lines(row_keys, col_keys, row_totals=True, col_totals=True)
    for key, reason in suppress_cells(values2, lines2, threshold).items():
        if key in where:
            found[(where[key], spec.count)] = reason
    return found
