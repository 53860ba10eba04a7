"""Comparisons defined as data: per field, an ordered list of levels from missing to far.

A comparison (say ``date_of_birth``) is a list of levels. Level 0 is always *missing* — one side
has no value, which is neither agreement nor disagreement and weighs nothing — and the last level
is always *else*. For a pair of records the first level whose condition holds is the pair's level
for that comparison. Every level is a plain mapping (``label``, ``kind``, its parameters, a
description), so a comparison table can be written in JSON, reviewed and versioned with the
model, and new tables need no new code: only the handful of level *kinds* below are code.

Level kinds (the condition a pair must meet):

=====================  ==========================================================================
``null``               one side has none of ``columns``
``exact``              ``column`` equal (and present)
``exact_all``          every one of ``columns`` equal and present
``jaro_winkler``       Jaro-Winkler similarity of ``column`` ≥ ``threshold``
``edit_distance``      Damerau-Levenshtein distance of ``column`` ≤ ``max_distance``
``initials``           one side has initials only, and the first initials agree
``parts_intersect``    the two surnames share a part (double surnames)
``date_swapped``       same year, day and month swapped
``date_one_off``       two of year, month, day equal
``year_only``          same birth year, and one side knows only the year
``else``               always
=====================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jellyfish
import numpy as np
import numpy.typing as npt

from linkwatch.linkage.record_store import COLUMNS, STRING_COLUMNS, RecordStore

PairCondition = Callable[[int, int], bool]


class ComparisonConfigError(ValueError):
    """A comparison table that cannot be used, with the comparison, level and problem named."""


@dataclass(frozen=True, slots=True)
class LevelSpec:
    """One level of a comparison: a condition on a pair and what it means in words."""

    label: str
    kind: str
    description: str
    params: Mapping[str, Any] = field(default_factory=dict)
    tf_column: str | None = None

    @property
    def is_null(self) -> bool:
        """True for the missing-value level (it carries no weight)."""
        return self.kind == "null"

    def as_dict(self) -> dict[str, Any]:
        """The level as a JSON-ready mapping."""
        out: dict[str, Any] = {
            "label": self.label,
            "kind": self.kind,
            "description": self.description,
        }
        if self.params:
            out["params"] = dict(self.params)
        if self.tf_column:
            out["tf_column"] = self.tf_column
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> LevelSpec:
        """Read a level from a mapping, naming ``where`` in any error."""
        missing = [key for key in ("label", "kind", "description") if key not in data]
        if missing:
            raise ComparisonConfigError(f"{where}: missing field(s) {', '.join(missing)}")
        return cls(
            label=str(data["label"]),
            kind=str(data["kind"]),
            description=str(data["description"]),
            params=dict(data.get("params", {})),
            tf_column=data.get("tf_column"),
        )


@dataclass(frozen=True, slots=True)
class ComparisonSpec:
    """A field's comparison: an ordered list of levels, missing first and else last."""

    name: str
    description: str
    levels: tuple[LevelSpec, ...]

    def __post_init__(self) -> None:
        validate_comparison(self)

    def as_dict(self) -> dict[str, Any]:
        """The comparison as a JSON-ready mapping."""
        return {
            "name": self.name,
            "description": self.description,
            "levels": [level.as_dict() for level in self.levels],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "comparison") -> ComparisonSpec:
        """Read a comparison from a mapping, naming ``where`` in any error."""
        for key in ("name", "description", "levels"):
            if key not in data:
                raise ComparisonConfigError(f"{where}: missing field {key!r}")
        name = str(data["name"])
        levels = tuple(
            LevelSpec.from_dict(level, f"{where} {name!r} level {i}")
            for i, level in enumerate(data["levels"])
        )
        return cls(name=name, description=str(data["description"]), levels=levels)


_KINDS_PARAMS: dict[str, tuple[str, ...]] = {
    "null": ("columns",),
    "exact": ("column",),
    "exact_all": ("columns",),
    "jaro_winkler": ("column", "threshold"),
    "edit_distance": ("column", "max_distance"),
    "initials": (),
    "parts_intersect": (),
    "date_swapped": (),
    "date_one_off": (),
    "year_only": (),
    "else": (),
}


def validate_comparison(spec: ComparisonSpec) -> None:
    """Check a comparison's shape: missing level first, else last, known kinds and columns."""
    where = f"comparison {spec.name!r}"
    if len(spec.levels) < 3:
        raise ComparisonConfigError(f"{where}: needs a missing level, at least one level and else")
    if spec.levels[0].kind != "null":
        raise ComparisonConfigError(
            f"{where}: level 0 must be of kind 'null', not {spec.levels[0].kind!r}"
        )
    if spec.levels[-1].kind != "else":
        raise ComparisonConfigError(f"{where}: the last level must be of kind 'else'")
    for i, lvl in enumerate(spec.levels):
        if lvl.kind not in _KINDS_PARAMS:
            known = ", ".join(sorted(_KINDS_PARAMS))
            raise ComparisonConfigError(
                f"{where} level {i} ({lvl.label!r}): unknown kind {lvl.kind!r}; known: {known}"
            )
        if lvl.kind in ("null", "else") and i not in (0, len(spec.levels) - 1):
            raise ComparisonConfigError(
                f"{where} level {i} ({lvl.label!r}): {lvl.kind!r} only at the ends"
            )
        for param in _KINDS_PARAMS[lvl.kind]:
            if param not in lvl.params:
                raise ComparisonConfigError(
                    f"{where} level {i} ({lvl.label!r}): missing parameter {param!r}"
                )
        named = (
            [lvl.params["column"]]
            if "column" in lvl.params
            else list(lvl.params.get("columns", []))
        )
        if lvl.tf_column:
            named.append(lvl.tf_column)
        for column in named:
            if column not in COLUMNS:
                raise ComparisonConfigError(
                    f"{where} level {i} ({lvl.label!r}): unknown column {column!r}"
                )


def level(
    label: str, kind: str, description: str, tf_column: str | None = None, **params: Any
) -> LevelSpec:
    """Shorthand for writing comparison tables."""
    return LevelSpec(
        label=label, kind=kind, description=description, params=params, tf_column=tf_column
    )


# The default comparison table for linkwatch's identity records. Thresholds follow common
# practice for names (Jaro-Winkler 0.92 / 0.80 as in Splink's name comparisons).
DEFAULT_COMPARISONS: tuple[ComparisonSpec, ...] = (
    ComparisonSpec(
        "national_id",
        "National id token (pseudonymised at the provider)",
        (
            level("missing", "null", "national id missing on either side", columns=["national_id"]),
            level("exact", "exact", "same national id token", column="national_id"),
            level("else", "else", "different national id"),
        ),
    ),
    ComparisonSpec(
        "given_name",
        "First given name, or initials",
        (
            level(
                "missing",
                "null",
                "no given name or initials on either side",
                columns=["given_name", "initials"],
            ),
            level(
                "exact",
                "exact",
                "same first given name",
                tf_column="given_name",
                column="given_name",
            ),
            level(
                "close", "jaro_winkler", "Jaro-Winkler ≥ 0.92", column="given_name", threshold=0.92
            ),
            level(
                "similar",
                "jaro_winkler",
                "Jaro-Winkler ≥ 0.80",
                column="given_name",
                threshold=0.80,
            ),
            level("initial", "initials", "only initials on one side, first initial agrees"),
            level("else", "else", "different given names"),
        ),
    ),
    ComparisonSpec(
        "family_name",
        "Surname without prefix (tussenvoegsel); double surnames as parts",
        (
            level("missing", "null", "no surname on either side", columns=["family_name"]),
            level("exact", "exact", "same surname", tf_column="family_name", column="family_name"),
            level(
                "close", "jaro_winkler", "Jaro-Winkler ≥ 0.92", column="family_name", threshold=0.92
            ),
            level("shared part", "parts_intersect", "double surname shares a part with the other"),
            level(
                "similar",
                "jaro_winkler",
                "Jaro-Winkler ≥ 0.80",
                column="family_name",
                threshold=0.80,
            ),
            level("else", "else", "different surnames"),
        ),
    ),
    ComparisonSpec(
        "date_of_birth",
        "Date of birth (or birth year only)",
        (
            level("missing", "null", "no birth date on either side", columns=["birth_year"]),
            level(
                "exact",
                "exact_all",
                "same full date of birth",
                columns=["birth_year", "birth_month", "birth_day"],
            ),
            level("day-month swapped", "date_swapped", "same year, day and month swapped"),
            level("one component off", "date_one_off", "two of year, month and day agree"),
            level("year only", "year_only", "same birth year, one side knows only the year"),
            level("else", "else", "different dates of birth"),
        ),
    ),
    ComparisonSpec(
        "sex",
        "Administrative sex",
        (
            level("missing", "null", "sex unknown on either side", columns=["sex"]),
            level("exact", "exact", "same sex", column="sex"),
            level("else", "else", "different sex"),
        ),
    ),
    ComparisonSpec(
        "address",
        "Postcode (PC6, PC4), house number and city",
        (
            level(
                "missing", "null", "no postcode nor city on either side", columns=["pc4", "city"]
            ),
            level(
                "PC6 + house number",
                "exact_all",
                "same 6-character postcode and house number",
                columns=["postcode", "house_number"],
            ),
            level("PC6", "exact", "same 6-character postcode", column="postcode"),
            level(
                "PC4 + house number",
                "exact_all",
                "same 4-digit postcode and house number",
                columns=["pc4", "house_number"],
            ),
            level("PC4", "exact", "same 4-digit postcode area", column="pc4"),
            # The city is a level of the address, not a comparison of its own: it mostly repeats
            # what the postcode says, and counting it twice would overstate agreement.
            level("city", "exact", "different or unknown postcodes, same city", column="city"),
            level("else", "else", "different postcode areas and cities"),
        ),
    ),
    ComparisonSpec(
        "street",
        "Street name (when the provider sends it)",
        (
            level("missing", "null", "no street on either side", columns=["street"]),
            level("exact", "exact", "same street", column="street"),
            level("close", "jaro_winkler", "Jaro-Winkler ≥ 0.90", column="street", threshold=0.90),
            level("else", "else", "different streets"),
        ),
    ),
)


#: Multiplying by this adds the eight bytes of a 64-bit word into its top byte.
_BYTE_SUM = np.uint64(0x0101010101010101)


class _SimilarityCache:
    """Memoised string similarities by pair of vocabulary codes (names repeat a lot)."""

    def __init__(self, store: RecordStore, limit: int = 500_000) -> None:
        self.store = store
        self._jw: dict[int, float] = {}
        self._dl: dict[int, int] = {}
        self._limit = limit
        # Per vocabulary code, what bounds its Jaro-Winkler similarity with another string:
        # length (0: not worked out yet, -1: not plain ASCII, so always compared in full),
        # letter counts in 32 buckets and the first four characters.
        self._length = np.zeros(0, dtype=np.int16)
        self._counts = np.zeros((0, 32), dtype=np.uint8)
        self._prefix = np.zeros((0, 4), dtype=np.uint8)

    def _features(self, codes: npt.NDArray[np.int64]) -> None:
        """Work out the bounding features of the strings behind ``codes`` (once per code)."""
        size = len(self.store.vocabulary)
        if len(self._length) < size:
            grow = max(size, 2 * len(self._length)) - len(self._length)
            self._length = np.concatenate([self._length, np.zeros(grow, dtype=np.int16)])
            self._counts = np.concatenate([self._counts, np.zeros((grow, 32), dtype=np.uint8)])
            self._prefix = np.concatenate([self._prefix, np.zeros((grow, 4), dtype=np.uint8)])
        todo = codes[self._length[codes] == 0]
        if not len(todo):
            return
        todo = np.sort(todo)
        todo = todo[np.concatenate(([True], todo[1:] != todo[:-1]))]
        string = self.store.vocabulary.string
        texts = [string(code) for code in todo.tolist()]
        plain = np.array([t.isascii() and 0 < len(t) < 256 for t in texts], dtype=bool)
        self._length[todo[~plain]] = -1
        todo = todo[plain]
        data = [t.encode() for t, ok in zip(texts, plain.tolist(), strict=True) if ok]
        if not data:
            return
        lengths = np.fromiter((len(d) for d in data), np.int64, len(data))
        buffer = np.frombuffer(b"".join(data), dtype=np.uint8)
        owner = np.repeat(np.arange(len(data), dtype=np.int64), lengths)
        flat = owner * 32 + (buffer & 31)
        counts = np.bincount(flat, minlength=len(data) * 32).reshape(len(data), 32)
        self._counts[todo] = counts.astype(np.uint8)
        self._length[todo] = lengths.astype(np.int16)
        starts = np.cumsum(lengths) - lengths
        prefix = np.zeros((len(data), 4), dtype=np.uint8)
        for position in range(4):
            has = lengths > position
            prefix[has, position] = buffer[starts[has] + position]
        self._prefix[todo] = prefix

    def below_jaro_winkler(
        self, left: npt.NDArray[np.int64], right: npt.NDArray[np.int64], floor: float
    ) -> npt.NDArray[np.bool_]:
        """Pairs of codes whose Jaro-Winkler similarity is surely below ``floor``.

        Jaro is at most (c/|a| + c/|b| + 1) / 3 with c the characters the two strings could
        have in common (the sum over letters of the smaller count), and Winkler's bonus adds
        at most a tenth of the remainder per agreeing leading character (up to four). Pairs
        whose bound is below ``floor`` cannot reach any threshold from ``floor`` up.
        """
        self._features(np.concatenate([left, right]))
        la = self._length[left].astype(np.float64)
        lb = self._length[right].astype(np.float64)
        out = np.zeros(len(left), dtype=bool)
        step = 100_000
        for start in range(0, len(left), step):
            a, b = left[start : start + step], right[start : start + step]
            # The 32 counts of a string are four 64-bit words of 8 byte-sized counts; no sum
            # of counts exceeds the string's length (< 256), so the words add without carries
            # and the bytes of their sum add up with one multiplication.
            words = np.minimum(self._counts[a], self._counts[b]).view(np.uint64)
            lanes = words[:, 0] + words[:, 1] + words[:, 2] + words[:, 3]
            common = ((lanes * _BYTE_SUM) >> np.uint64(56)).astype(np.int64)
            pa, pb = self._prefix[a], self._prefix[b]
            same = (pa == pb) & (pa != 0)
            agree = same[:, 0].copy()
            prefix = agree.astype(np.int64)
            for position in (1, 2, 3):
                agree &= same[:, position]
                prefix += agree
            x, y = la[start : start + step], lb[start : start + step]
            plain = (x > 0) & (y > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                jaro = np.where(common > 0, (common / x + common / y + 1.0) / 3.0, 0.0)
            jaro = np.minimum(jaro, 1.0)
            bound = jaro + 0.1 * prefix * (1.0 - jaro)
            out[start : start + step] = plain & (bound < floor - 1e-9)
        return out

    def jaro_winkler(self, a: int, b: int) -> float:
        key = (a << 32) | b if a < b else (b << 32) | a
        found = self._jw.get(key)
        if found is None:
            if len(self._jw) > self._limit:
                self._jw.clear()
            vocab = self.store.vocabulary
            found = jellyfish.jaro_winkler_similarity(vocab.string(a), vocab.string(b))
            self._jw[key] = found
        return found

    def edit_distance(self, a: int, b: int) -> int:
        key = (a << 32) | b if a < b else (b << 32) | a
        found = self._dl.get(key)
        if found is None:
            if len(self._dl) > self._limit:
                self._dl.clear()
            vocab = self.store.vocabulary
            found = jellyfish.damerau_levenshtein_distance(vocab.string(a), vocab.string(b))
            self._dl[key] = found
        return found


def _condition(lvl: LevelSpec, store: RecordStore, cache: _SimilarityCache) -> PairCondition:
    """Build the pair condition of one level over the store's columns."""
    cols = store.columns
    p = lvl.params
    kind = lvl.kind
    if kind == "null":
        arrays = [cols[c] for c in p["columns"]]
        if len(arrays) == 1:
            (x,) = arrays
            return lambda i, j: not x[i] or not x[j]
        return lambda i, j: not any(a[i] for a in arrays) or not any(a[j] for a in arrays)
    if kind == "exact":
        x = cols[p["column"]]
        return lambda i, j: x[i] == x[j] != 0
    if kind == "exact_all":
        arrays = [cols[c] for c in p["columns"]]
        return lambda i, j: all(a[i] == a[j] != 0 for a in arrays)
    if kind == "jaro_winkler":
        x = cols[p["column"]]
        threshold = float(p["threshold"])
        if p["column"] not in STRING_COLUMNS:
            raise ComparisonConfigError(f"level {lvl.label!r}: jaro_winkler needs a text column")
        jw = cache.jaro_winkler
        return lambda i, j: bool(x[i] and x[j]) and jw(x[i], x[j]) >= threshold
    if kind == "edit_distance":
        x = cols[p["column"]]
        max_distance = int(p["max_distance"])
        dl = cache.edit_distance
        return lambda i, j: bool(x[i] and x[j]) and dl(x[i], x[j]) <= max_distance
    if kind == "initials":
        given, initials = cols["given_name"], cols["initials"]
        vocab = store.vocabulary

        def initials_agree(i: int, j: int) -> bool:
            if given[i] and given[j]:
                return False
            a, b = initials[i], initials[j]
            return bool(a and b) and vocab.string(a)[0] == vocab.string(b)[0]

        return initials_agree
    if kind == "parts_intersect":
        p1, p2 = cols["family_part1"], cols["family_part2"]

        def parts_intersect(i: int, j: int) -> bool:
            a = {p1[i], p2[i]} - {0}
            return bool(a) and (p1[j] in a or p2[j] in a)

        return parts_intersect
    if kind in ("date_swapped", "date_one_off", "year_only"):
        y, m, d = cols["birth_year"], cols["birth_month"], cols["birth_day"]
        if kind == "date_swapped":
            return lambda i, j: (
                y[i] == y[j] and m[i] != d[i] and m[i] == d[j] != 0 and d[i] == m[j] != 0
            )
        if kind == "date_one_off":

            def one_off(i: int, j: int) -> bool:
                if not (m[i] and m[j] and d[i] and d[j]):
                    return False
                return (y[i] == y[j]) + (m[i] == m[j]) + (d[i] == d[j]) == 2

            return one_off
        return lambda i, j: y[i] == y[j] != 0 and (not m[i] or not m[j])
    if kind == "else":
        return lambda i, j: True
    raise ComparisonConfigError(f"level {lvl.label!r}: unknown kind {kind!r}")


class _ColumnViews:
    """Values of the store's columns on the left and right rows of many pairs."""

    def __init__(
        self,
        store: RecordStore,
        left: npt.NDArray[np.int64],
        right: npt.NDArray[np.int64],
        cache: _SimilarityCache,
    ) -> None:
        self.store = store
        self.left = left
        self.right = right
        self.cache = cache
        self._memo: dict[str, tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]] = {}
        self._similar: dict[
            tuple[str, str], tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]
        ] = {}
        #: Per text column, the lowest Jaro-Winkler threshold any level uses on it.
        self.jaro_winkler_floor: Mapping[str, float] = {}

    def similarity(
        self, column: str, measure: str, todo: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.float64]:
        """The similarity ``measure`` of the column's values where ``todo``.

        Later levels of a comparison (a lower threshold of the same measure) ask for a subset
        of the pairs an earlier level asked for: they get the values already worked out.
        """
        known = self._similar.get((column, measure))
        if known is not None and not (todo & ~known[0]).any():
            return known[1]
        a, b = self.pair(column)
        floor = self.jaro_winkler_floor.get(column) if measure == "jaro_winkler" else None
        values = _similarity_vector(a, b, todo, self.cache, measure, floor)
        self._similar[(column, measure)] = (todo.copy(), values)
        return values

    def pair(self, column: str) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
        found = self._memo.get(column)
        if found is None:
            # The view is dropped at once (indexing copies): a live view would pin the
            # array('i') buffer and stop the store from growing.
            values = np.frombuffer(self.store.columns[column], dtype=np.int32)
            found = (values[self.left], values[self.right])
            del values
            self._memo[column] = found
        return found

    def first_letters(self, column: str) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
        a, b = self.pair(column)
        return self.store.vocabulary.first_letters(a), self.store.vocabulary.first_letters(b)


def _similarity_vector(
    a: npt.NDArray[np.int32],
    b: npt.NDArray[np.int32],
    todo: npt.NDArray[np.bool_],
    cache: _SimilarityCache,
    measure: str,
    floor: float | None = None,
) -> npt.NDArray[np.float64]:
    """The similarity ``measure`` of a and b where ``todo``, once per distinct pair of codes.

    Small requests (an online add) go through the memo; bulk requests (training) are computed
    directly, because their pairs rarely repeat and memoising them would only cost memory.
    With a ``floor`` (Jaro-Winkler only), bulk pairs that surely stay below it are given 0.0
    without being compared: they fail every threshold from ``floor`` up all the same.
    """
    out = np.zeros(len(a), dtype=np.float64)
    if not todo.any():
        return out
    lo = np.minimum(a[todo], b[todo]).astype(np.int64)
    hi = np.maximum(a[todo], b[todo]).astype(np.int64)
    keys, inverse = np.unique((lo << 32) | hi, return_inverse=True)
    left_codes, right_codes = keys >> 32, keys & 0xFFFFFFFF
    found = np.zeros(len(keys), dtype=np.float64)
    bulk = len(keys) > _BULK_SIMILARITY
    if bulk and floor is not None and measure == "jaro_winkler":
        compare = np.flatnonzero(~cache.below_jaro_winkler(left_codes, right_codes, floor))
        left = left_codes[compare].tolist()
        right = right_codes[compare].tolist()
    else:
        compare = np.arange(len(keys))
        left = left_codes.tolist()
        right = right_codes.tolist()
    if not bulk:
        memo = cache.jaro_winkler if measure == "jaro_winkler" else cache.edit_distance
        values = [memo(x, y) for x, y in zip(left, right, strict=True)]
    else:
        string = cache.store.vocabulary.strings().__getitem__
        function = (
            jellyfish.jaro_winkler_similarity
            if measure == "jaro_winkler"
            else jellyfish.damerau_levenshtein_distance
        )
        values = list(map(function, map(string, left), map(string, right)))
    found[compare] = np.asarray(values, dtype=np.float64)
    out[todo] = found[inverse]
    return out


#: Above this many distinct pairs a similarity request is computed without the memo.
_BULK_SIMILARITY = 2_000


def _as_bool(values: Any) -> npt.NDArray[np.bool_]:
    return np.asarray(values, dtype=np.bool_)


def _vector_condition(
    lvl: LevelSpec, v: _ColumnViews, undecided: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """The condition of one level over many pairs (the numpy twin of :func:`_condition`)."""
    p = lvl.params
    kind = lvl.kind
    if kind == "null":
        left_any = np.zeros(len(v.left), dtype=bool)
        right_any = np.zeros(len(v.left), dtype=bool)
        for column in p["columns"]:
            a, b = v.pair(column)
            left_any |= a != 0
            right_any |= b != 0
        return ~left_any | ~right_any
    if kind == "exact":
        a, b = v.pair(p["column"])
        return _as_bool((a == b) & (a != 0))
    if kind == "exact_all":
        result = np.ones(len(v.left), dtype=bool)
        for column in p["columns"]:
            a, b = v.pair(column)
            result &= (a == b) & (a != 0)
        return result
    if kind in ("jaro_winkler", "edit_distance"):
        a, b = v.pair(p["column"])
        todo = undecided & (a != 0) & (b != 0)
        if kind == "jaro_winkler":
            sim = v.similarity(p["column"], kind, todo)
            return _as_bool(todo & (sim >= float(p["threshold"])))
        dist = v.similarity(p["column"], kind, todo)
        return _as_bool(todo & (dist <= int(p["max_distance"])))
    if kind == "initials":
        ga, gb = v.pair("given_name")
        ia, ib = v.pair("initials")
        fa, fb = v.first_letters("initials")
        return _as_bool(~((ga != 0) & (gb != 0)) & (ia != 0) & (ib != 0) & (fa == fb))
    if kind == "parts_intersect":
        a1, b1 = v.pair("family_part1")
        a2, b2 = v.pair("family_part2")
        left_any = (a1 != 0) | (a2 != 0)
        shared = ((b1 != 0) & ((b1 == a1) | (b1 == a2))) | ((b2 != 0) & ((b2 == a1) | (b2 == a2)))
        return _as_bool(left_any & shared)
    if kind in ("date_swapped", "date_one_off", "year_only"):
        ya, yb = v.pair("birth_year")
        ma, mb = v.pair("birth_month")
        da, db = v.pair("birth_day")
        if kind == "date_swapped":
            return _as_bool(
                (ya == yb) & (ma != da) & (ma == db) & (ma != 0) & (da == mb) & (da != 0)
            )
        if kind == "date_one_off":
            present = (ma != 0) & (mb != 0) & (da != 0) & (db != 0)
            agree = (ya == yb).astype(np.int8) + (ma == mb) + (da == db)
            return _as_bool(present & (agree == 2))
        return _as_bool((ya == yb) & (ya != 0) & ((ma == 0) | (mb == 0)))
    if kind == "else":
        return np.ones(len(v.left), dtype=bool)
    raise ComparisonConfigError(f"level {lvl.label!r}: unknown kind {kind!r}")


class CompiledComparisons:
    """A comparison table bound to a record store: computes a pair's level per comparison."""

    def __init__(self, specs: Sequence[ComparisonSpec], store: RecordStore) -> None:
        self.specs = tuple(specs)
        self.store = store
        cache = _SimilarityCache(store)
        self._cache = cache
        self._conditions: list[tuple[PairCondition, ...]] = [
            tuple(_condition(lvl, store, cache) for lvl in spec.levels[:-1]) for spec in self.specs
        ]
        self._else_levels = [len(spec.levels) - 1 for spec in self.specs]
        self._jaro_winkler_floor: dict[str, float] = {}
        for spec in self.specs:
            for lvl in spec.levels:
                if lvl.kind == "jaro_winkler":
                    column, threshold = str(lvl.params["column"]), float(lvl.params["threshold"])
                    floor = self._jaro_winkler_floor.get(column, threshold)
                    self._jaro_winkler_floor[column] = min(floor, threshold)

    def __len__(self) -> int:
        return len(self.specs)

    def level(self, k: int, i: int, j: int) -> int:
        """Level index of comparison ``k`` for the pair of rows (i, j)."""
        for index, condition in enumerate(self._conditions[k]):
            if condition(i, j):
                return index
        return self._else_levels[k]

    def levels(self, i: int, j: int) -> list[int]:
        """Level index of every comparison for the pair of rows (i, j)."""
        out: list[int] = []
        for conditions, else_level in zip(self._conditions, self._else_levels, strict=True):
            found = else_level
            for index, condition in enumerate(conditions):
                if condition(i, j):
                    found = index
                    break
            out.append(found)
        return out

    def comparison_matrix(
        self, pairs: npt.NDArray[np.int64], progress: Callable[[int], None] | None = None
    ) -> npt.NDArray[np.int8]:
        """Level indices for many pairs: an (n_pairs x n_comparisons) int8 matrix.

        Computed column-wise with numpy, in chunks; gives the same levels as :meth:`levels`.
        """
        out = np.zeros((len(pairs), len(self.specs)), dtype=np.int8)
        step = 200_000
        for start in range(0, len(pairs), step):
            chunk = pairs[start : start + step]
            out[start : start + len(chunk)] = self.matrix_for(chunk[:, 0], chunk[:, 1])
            if progress is not None:
                progress(len(chunk))
        return out

    def matrix_for(
        self, left: npt.NDArray[np.int64], right: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int8]:
        """Level indices for the pairs (left[n], right[n]), computed column-wise."""
        views = _ColumnViews(self.store, left, right, self._cache)
        views.jaro_winkler_floor = self._jaro_winkler_floor
        out = np.empty((len(left), len(self.specs)), dtype=np.int8)
        for k, spec in enumerate(self.specs):
            levels = np.full(len(left), len(spec.levels) - 1, dtype=np.int8)
            undecided = np.ones(len(left), dtype=bool)
            for index, lvl in enumerate(spec.levels[:-1]):
                if not undecided.any():
                    break
                hit = _vector_condition(lvl, views, undecided) & undecided
                levels[hit] = index
                undecided &= ~hit
            out[:, k] = levels
        return out


def comparisons_from_json(data: Sequence[Mapping[str, Any]]) -> tuple[ComparisonSpec, ...]:
    """Read a comparison table from its JSON form."""
    return tuple(ComparisonSpec.from_dict(item, f"comparison {i}") for i, item in enumerate(data))
