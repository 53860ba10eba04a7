"""Blocking: which pairs of records are worth comparing at all.

Comparing every record with every other is quadratic, so records are only compared when they
share a *blocking key* in at least one *pass*. A pass is data — a name and the key parts it
joins, e.g. ``{"name": "surname code + birth year", "parts": ["family_code", "birth_year"]}`` —
so passes can be configured and saved with a model. A record may yield several keys in one pass
(each part of a double surname gives its own code).

Blocks that grow beyond a size cap (a very common surname in one birth year, say) stop being
used for candidates: such a block says little, and the other passes still reach the true pairs.
Every capped block and every lookup that skipped one is counted.

:class:`BlockingIndex` is the incremental form used by the online engine (key → record rows);
:func:`blocked_pairs` produces the candidate pairs of a whole data set for training, and
:func:`pair_completeness` measures, on labelled data, the share of true pairs the passes reach.
A whole batch's keys are worked out column by column (:func:`pass_keys`), as integers that are
equal when the key strings are; :func:`indexed_candidate_codes` gives from them the candidates
the incremental index would give each record added in order.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import product
from typing import Any

import jellyfish
import numpy as np
import numpy.typing as npt

from linkwatch.linkage.record_store import RecordStore
from linkwatch.linkage.standardise import StandardisedBatch, StandardRecord

_soundex = lru_cache(maxsize=50_000)(jellyfish.soundex)


@lru_cache(maxsize=65_536)
def stable_key(key: str) -> int:
    """A 64-bit hash of a blocking key that is the same in every process.

    The index is saved in linker snapshots and read back by another process, so it cannot
    use Python's ``hash`` of a string, which changes from one interpreter to the next.
    """
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


class BlockingConfigError(ValueError):
    """A blocking pass that cannot be used, with the pass and part named."""


def _national_id(r: StandardRecord) -> list[str]:
    return [r.national_id] if r.national_id else []


def _date_of_birth(r: StandardRecord) -> list[str]:
    if r.birth_year is None or r.birth_month is None or r.birth_day is None:
        return []
    return [f"{r.birth_year}-{r.birth_month}-{r.birth_day}"]


def _birth_year(r: StandardRecord) -> list[str]:
    return [str(r.birth_year)] if r.birth_year is not None else []


def _postcode(r: StandardRecord) -> list[str]:
    return [r.postcode] if r.postcode else []


def _pc4(r: StandardRecord) -> list[str]:
    return [r.pc4] if r.pc4 else []


def _house_number(r: StandardRecord) -> list[str]:
    return [str(r.house_number)] if r.house_number is not None else []


def _family_code(r: StandardRecord) -> list[str]:
    parts = r.family_parts
    if len(parts) == 1:  # most surnames have one part
        return [_soundex(parts[0])] if parts[0] else []
    return sorted({_soundex(part) for part in parts if part})


def _family_name(r: StandardRecord) -> list[str]:
    return sorted(set(r.family_parts))


def _given_code(r: StandardRecord) -> list[str]:
    return [_soundex(r.given_name)] if r.given_name else []


def _given_initial(r: StandardRecord) -> list[str]:
    return [r.initials[0]] if r.initials else []


def _sex(r: StandardRecord) -> list[str]:
    return [r.sex] if r.sex else []


#: The key parts a pass can join, and the comparison each one constrains (a pass's pairs agree on
#: those fields by construction, so EM does not learn their m-probabilities from that pass).
KEY_PARTS: dict[str, tuple[Callable[[StandardRecord], list[str]], str]] = {
    "national_id": (_national_id, "national_id"),
    "date_of_birth": (_date_of_birth, "date_of_birth"),
    "birth_year": (_birth_year, "date_of_birth"),
    "postcode": (_postcode, "address"),
    "pc4": (_pc4, "address"),
    "house_number": (_house_number, "address"),
    "family_code": (_family_code, "family_name"),
    "family_name": (_family_name, "family_name"),
    "given_code": (_given_code, "given_name"),
    "given_initial": (_given_initial, "given_name"),
    "sex": (_sex, "sex"),
}


KeyFunction = Callable[[StandardRecord], list[str]]

#: The key function of each tuple of key parts in use.
_KEY_FUNCTIONS: dict[tuple[str, ...], KeyFunction] = {}


def _key_function(parts: tuple[str, ...]) -> KeyFunction:
    """A record's keys over ``parts``: every combination of the parts' values joined by "|"
    (none when a part has no value)."""
    functions = tuple(KEY_PARTS[part][0] for part in parts)
    if len(functions) == 1:
        return functions[0]
    if len(functions) == 2:
        first, second = functions

        def two_parts(record: StandardRecord) -> list[str]:
            a = first(record)
            if not a:
                return []
            b = second(record)
            if not b:
                return []
            if len(a) == 1 and len(b) == 1:
                return [a[0] + "|" + b[0]]
            return ["|".join(combo) for combo in product(a, b)]

        return two_parts

    def many_parts(record: StandardRecord) -> list[str]:
        values = [function(record) for function in functions]
        if any(not v for v in values):
            return []
        return ["|".join(combo) for combo in product(*values)]

    return many_parts


@dataclass(frozen=True, slots=True)
class BlockingPass:
    """One blocking pass: records sharing all of ``parts`` are candidates."""

    name: str
    parts: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.parts:
            raise BlockingConfigError(f"blocking pass {self.name!r}: no key parts")
        for part in self.parts:
            if part not in KEY_PARTS:
                known = ", ".join(sorted(KEY_PARTS))
                raise BlockingConfigError(
                    f"blocking pass {self.name!r}: unknown key part {part!r}; known: {known}"
                )

    def keys(self, record: StandardRecord) -> list[str]:
        """The record's keys in this pass (none when a part is missing)."""
        function = _KEY_FUNCTIONS.get(self.parts)
        if function is None:
            function = _KEY_FUNCTIONS[self.parts] = _key_function(self.parts)
        return function(record)

    @property
    def constrained_comparisons(self) -> frozenset[str]:
        """Names of the comparisons this pass's key fixes."""
        return frozenset(KEY_PARTS[part][1] for part in self.parts)

    def as_dict(self) -> dict[str, Any]:
        """The pass as a JSON-ready mapping."""
        return {"name": self.name, "parts": list(self.parts)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BlockingPass:
        """Read a pass from its JSON form."""
        if "name" not in data or "parts" not in data:
            raise BlockingConfigError(f"blocking pass {data!r}: needs 'name' and 'parts'")
        return cls(str(data["name"]), tuple(str(p) for p in data["parts"]))


DEFAULT_PASSES: tuple[BlockingPass, ...] = (
    BlockingPass("national id", ("national_id",)),
    BlockingPass("date of birth", ("date_of_birth",)),
    BlockingPass("PC4 + house number", ("pc4", "house_number")),
    BlockingPass("surname code + birth year", ("family_code", "birth_year")),
    BlockingPass("given-name code + surname code", ("given_code", "family_code")),
)

#: Default largest block used for candidates.
DEFAULT_BLOCK_CAP = 500


@dataclass(slots=True)
class BlockingStats:
    """What the blocking did: capped blocks and the lookups that met one."""

    capped_blocks: int = 0
    capped_lookups: int = 0
    per_pass_capped: dict[str, int] = field(default_factory=dict)


class BlockingIndex:
    """Incremental blocking index: per pass, key → rows, with a size cap per block.

    A block holds an ``int`` while it has one row (most blocks do, and an int is far smaller
    than a container) and an ``array('i')`` once it has more: arrays hold no Python objects,
    so the garbage collector never has to walk the index, which keeps pauses out of the
    online engine's latency. A block that reaches the cap is replaced by the marker ``-1``:
    it is no longer grown nor used.
    """

    def __init__(
        self, passes: Sequence[BlockingPass] = DEFAULT_PASSES, cap: int = DEFAULT_BLOCK_CAP
    ) -> None:
        if cap < 2:
            raise BlockingConfigError(f"block cap must be at least 2, got {cap}")
        self.passes = tuple(passes)
        self.cap = cap
        self._blocks: list[dict[int, int | array[int]]] = [{} for _ in self.passes]
        self.stats = BlockingStats(per_pass_capped={p.name: 0 for p in self.passes})

    def keys(self, record: StandardRecord) -> list[list[int]]:
        """Hashed keys of a record, one list per pass."""
        # Keys are stored as their hash: a collision only adds a candidate, which scoring rejects.
        return [[stable_key(key) for key in p.keys(record)] for p in self.passes]

    def candidates(self, keys: list[list[int]]) -> set[int]:
        """Rows sharing a key with the given keys in any pass (capped blocks skipped)."""
        found: set[int] = set()
        for blocks, pass_keys in zip(self._blocks, keys, strict=True):
            for key in pass_keys:
                rows = blocks.get(key)
                if rows is None:
                    continue
                if isinstance(rows, int):
                    if rows >= 0:
                        found.add(rows)
                    else:
                        self.stats.capped_lookups += 1
                else:
                    found.update(rows)
        return found

    def add(self, keys: list[list[int]], row: int) -> None:
        """Index a row under its keys."""
        for p, blocks, pass_keys in zip(self.passes, self._blocks, keys, strict=True):
            for key in pass_keys:
                rows = blocks.get(key)
                if rows is None:
                    blocks[key] = row
                elif isinstance(rows, int):
                    if rows >= 0:
                        blocks[key] = array("i", (rows, row))
                elif len(rows) + 1 >= self.cap:
                    blocks[key] = -1
                    self.stats.capped_blocks += 1
                    self.stats.per_pass_capped[p.name] += 1
                else:
                    rows.append(row)

    def block_count(self) -> int:
        """Number of blocks over all passes."""
        return sum(len(b) for b in self._blocks)


def blocked_pairs(
    records: Sequence[StandardRecord],
    passes: Sequence[BlockingPass] = DEFAULT_PASSES,
    cap: int = DEFAULT_BLOCK_CAP,
) -> tuple[dict[str, npt.NDArray[np.int64]], BlockingStats]:
    """Candidate pairs (i < j, row numbers into ``records``) per pass, and the capping counts.

    Blocks of ``cap`` records or more are left out whole. The pairs of each pass are sorted
    and distinct.
    """
    store = RecordStore()
    store.extend(records, count_terms=False)
    return blocked_pairs_of_keys(pass_keys(store, records, passes), passes, cap)


def _unique_pairs(pairs: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    if len(pairs) == 0:
        return pairs.reshape(0, 2)
    codes = np.sort(pairs[:, 0] * (1 << 32) + pairs[:, 1])
    # Distinct codes by sorting (np.unique hashes int64 values, which is far slower here).
    keep = np.ones(len(codes), dtype=bool)
    np.not_equal(codes[1:], codes[:-1], out=keep[1:])
    codes = codes[keep]
    return np.stack([codes >> 32, codes & ((1 << 32) - 1)], axis=1)


def union_of_pairs(per_pass: Mapping[str, npt.NDArray[np.int64]]) -> npt.NDArray[np.int64]:
    """All distinct pairs over the passes."""
    arrays = [a for a in per_pass.values() if len(a)]
    if not arrays:
        return np.empty((0, 2), dtype=np.int64)
    return _unique_pairs(np.concatenate(arrays))


@dataclass(frozen=True, slots=True)
class PairCompleteness:
    """Share of the true pairs that blocking reaches, overall and per pass."""

    true_pairs: int
    found: int
    per_pass: dict[str, float]
    candidate_pairs: int

    @property
    def completeness(self) -> float:
        """Found true pairs / all true pairs."""
        return self.found / self.true_pairs if self.true_pairs else 1.0


def true_pairs_of(
    records: Sequence[StandardRecord], person_of: Mapping[str, str]
) -> npt.NDArray[np.int64]:
    """Pairs of rows (i < j) whose records belong to the same person in ``person_of``."""
    groups: dict[str, list[int]] = {}
    for row, record in enumerate(records):
        person = person_of.get(record.record_id)
        if person is not None:
            groups.setdefault(person, []).append(row)
    chunks = []
    for rows in groups.values():
        if len(rows) > 1:
            arr = np.array(rows, dtype=np.int64)
            i, j = np.triu_indices(len(arr), k=1)
            chunks.append(np.stack([arr[i], arr[j]], axis=1))
    return _unique_pairs(np.concatenate(chunks)) if chunks else np.empty((0, 2), dtype=np.int64)


def pair_completeness(
    records: Sequence[StandardRecord],
    person_of: Mapping[str, str],
    passes: Sequence[BlockingPass] = DEFAULT_PASSES,
    cap: int = DEFAULT_BLOCK_CAP,
) -> PairCompleteness:
    """Measure on labelled data how many true pairs share a block in some pass."""
    truth = true_pairs_of(records, person_of)
    per_pass, _ = blocked_pairs(records, passes, cap)
    truth_codes = truth[:, 0] * (1 << 32) + truth[:, 1]

    def hits(pairs: npt.NDArray[np.int64]) -> int:
        codes = pairs[:, 0] * (1 << 32) + pairs[:, 1]
        return int(np.isin(truth_codes, codes).sum())

    union = union_of_pairs(per_pass)
    share = {name: (hits(p) / len(truth) if len(truth) else 1.0) for name, p in per_pass.items()}
    return PairCompleteness(len(truth), hits(union), share, len(union))


def passes_from_json(data: Iterable[Mapping[str, Any]]) -> tuple[BlockingPass, ...]:
    """Read blocking passes from their JSON form."""
    return tuple(BlockingPass.from_dict(item) for item in data)


# --- whole batches, column-wise -------------------------------------------------------------

Int64Array = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class PassKeys:
    """The blocking keys of a batch in one pass: record ``rows[n]`` has key ``keys[n]``.

    Rows are ascending; a row appears once per key it has in the pass (several for a double
    surname). Keys are integers that are equal exactly when the keys' strings are equal.
    """

    rows: Int64Array
    keys: Int64Array


class _PartValues:
    """Each key part's values over the rows of a record store, as (rows, value ids).

    A value id stands for the part's value string: equal ids, equal strings. Names are
    coded once per distinct string (their vocabulary code, or their soundex code).
    """

    def __init__(self, store: RecordStore, records: Sequence[StandardRecord], first_row: int):
        self.store = store
        self.records = records
        self.first_row = first_row
        self.size = len(records)
        self._found: dict[str, tuple[Int64Array, Int64Array]] = {}
        self._soundex_ids: dict[str, int] = {}
        self._extra_ids: dict[str, int] = {}
        # Records whose surname has more parts than the store keeps (two), by batch row.
        surnames = (
            records.column("family_parts")
            if isinstance(records, StandardisedBatch)
            else [record.family_parts for record in records]
        )
        self._more_parts = [
            (row, parts[2:]) for row, parts in enumerate(surnames) if len(parts) > 2
        ]

    def column(self, name: str) -> Int64Array:
        values = np.frombuffer(self.store.columns[name], dtype=np.int32)
        out = values[self.first_row : self.first_row + self.size].astype(np.int64)
        del values  # release the buffer so the store can grow again
        return out

    def get(self, part: str) -> tuple[Int64Array, Int64Array]:
        found = self._found.get(part)
        if found is None:
            found = self._found[part] = self._compute(part)
        return found

    def _present(self, values: Int64Array) -> tuple[Int64Array, Int64Array]:
        rows = np.flatnonzero(values)
        return rows.astype(np.int64), values[rows]

    def _soundex_of_codes(self, codes: Int64Array) -> Int64Array:
        """Soundex ids of vocabulary codes (each distinct string coded once)."""
        distinct, inverse = np.unique(codes, return_inverse=True)
        string, ids = self.store.vocabulary.string, self._soundex_ids
        coded = [ids.setdefault(_soundex(string(c)), len(ids)) for c in distinct.tolist()]
        return np.asarray(coded, dtype=np.int64)[inverse]

    def _text_id(self, text: str) -> int:
        """An id for a surname part the store does not keep (the third part on)."""
        code = self.store.vocabulary.lookup(text)
        if code >= 0:
            return code
        offset = len(self.store.vocabulary)
        return offset + self._extra_ids.setdefault(text, len(self._extra_ids))

    def _compute(self, part: str) -> tuple[Int64Array, Int64Array]:
        simple = {
            "national_id": "national_id",
            "birth_year": "birth_year",
            "postcode": "postcode",
            "pc4": "pc4",
            "house_number": "house_number",
            "sex": "sex",
        }
        if part in simple:
            return self._present(self.column(simple[part]))
        if part == "date_of_birth":
            year, month, day = (self.column(c) for c in ("birth_year", "birth_month", "birth_day"))
            whole = (year != 0) & (month != 0) & (day != 0)
            return self._present(np.where(whole, year * 10_000 + month * 100 + day, 0))
        if part == "given_initial":
            rows, codes = self._present(self.column("initials"))
            letters = self.store.vocabulary.first_letters(codes.astype(np.int32))
            return rows, letters.astype(np.int64)
        if part == "given_code":
            rows, codes = self._present(self.column("given_name"))
            return rows, self._soundex_of_codes(codes)
        if part in ("family_code", "family_name"):
            return self._family(part == "family_code")
        raise BlockingConfigError(f"unknown key part {part!r}")

    def _family(self, as_soundex: bool) -> tuple[Int64Array, Int64Array]:
        """Every distinct part (or part code) of each record's surname."""
        rows1, codes1 = self._present(self.column("family_part1"))
        rows2, codes2 = self._present(self.column("family_part2"))
        rows = np.concatenate([rows1, rows2])
        codes = np.concatenate([codes1, codes2])
        values = self._soundex_of_codes(codes) if as_soundex else codes
        if self._more_parts:
            more_rows = [row for row, parts in self._more_parts for part in parts if part]
            texts = [part for _, parts in self._more_parts for part in parts if part]
            if as_soundex:
                ids = self._soundex_ids
                more = [ids.setdefault(_soundex(text), len(ids)) for text in texts]
            else:
                more = [self._text_id(text) for text in texts]
            rows = np.concatenate([rows, np.asarray(more_rows, dtype=np.int64)])
            values = np.concatenate([values, np.asarray(more, dtype=np.int64)])
        # Sorted by row, each (row, value) once: a part repeated in a name is one key.
        order = np.lexsort((values, rows))
        rows, values = rows[order], values[order]
        keep = np.ones(len(rows), dtype=bool)
        keep[1:] = (rows[1:] != rows[:-1]) | (values[1:] != values[:-1])
        return rows[keep], values[keep]


def _combine(
    first: tuple[Int64Array, Int64Array], second: tuple[Int64Array, Int64Array], size: int
) -> tuple[Int64Array, Int64Array]:
    """Every combination, per row, of the values of two parts, as one id per combination."""
    rows_a, values_a = first
    rows_b, values_b = second
    counts_b = np.bincount(rows_b, minlength=size)
    starts_b = np.concatenate(([0], np.cumsum(counts_b)[:-1]))
    repeat = counts_b[rows_a]
    rows = np.repeat(rows_a, repeat)
    left = np.repeat(values_a, repeat)
    within = np.arange(len(rows), dtype=np.int64) - np.repeat(np.cumsum(repeat) - repeat, repeat)
    right = values_b[np.repeat(starts_b[rows_a], repeat) + within]
    if not len(rows):
        return rows, left
    span = int(right.max()) + 1
    if int(left.max()) >= (1 << 62) // span:
        left = np.unique(left, return_inverse=True)[1].astype(np.int64)
        right = np.unique(right, return_inverse=True)[1].astype(np.int64)
        span = int(right.max()) + 1
    return rows, left * span + right


def pass_keys(
    store: RecordStore,
    records: Sequence[StandardRecord],
    passes: Sequence[BlockingPass] = DEFAULT_PASSES,
    first_row: int = 0,
) -> list[PassKeys]:
    """The blocking keys of a batch of records, per pass, computed column by column.

    ``records`` are the store's rows from ``first_row`` on; the keys' rows count from there.
    Records share a key here exactly when :meth:`BlockingPass.keys` gives them a common key
    (a missing number, stored as 0, has no key).
    """
    values = _PartValues(store, records, first_row)
    out: list[PassKeys] = []
    for p in passes:
        combined = values.get(p.parts[0])
        for part in p.parts[1:]:
            combined = _combine(combined, values.get(part), len(records))
        out.append(PassKeys(*combined))
    return out


def _grouped(rows: Int64Array, keys: Int64Array) -> tuple[Int64Array, Int64Array, Int64Array]:
    """Rows sorted by key, then row; each entry's position in its block; the block sizes."""
    order = np.lexsort((rows, keys))
    rows, keys = rows[order], keys[order]
    if not len(rows):
        return rows, rows.copy(), rows.copy()
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    sizes = np.diff(np.concatenate((starts, [len(keys)])))
    position = np.arange(len(rows), dtype=np.int64) - np.repeat(starts, sizes)
    return rows, position, sizes


def _pairs_before(rows: Int64Array, position: Int64Array) -> tuple[Int64Array, Int64Array]:
    """Each entry with every entry before it in its block: (earlier rows, later rows)."""
    later = np.repeat(np.arange(len(rows), dtype=np.int64), position)
    within = np.arange(len(later), dtype=np.int64) - np.repeat(
        np.cumsum(position) - position, position
    )
    earlier = later - np.repeat(position, position) + within
    return rows[earlier], rows[later]


def _codes_unique(codes: Int64Array) -> Int64Array:
    codes = np.sort(codes)
    keep = np.ones(len(codes), dtype=bool)
    np.not_equal(codes[1:], codes[:-1], out=keep[1:])
    return codes[keep]


def blocked_pairs_of_keys(
    keys: Sequence[PassKeys], passes: Sequence[BlockingPass], cap: int = DEFAULT_BLOCK_CAP
) -> tuple[dict[str, Int64Array], BlockingStats]:
    """:func:`blocked_pairs` from a batch's pass keys: blocks of ``cap`` rows or more are left
    out whole."""
    stats = BlockingStats(per_pass_capped={p.name: 0 for p in passes})
    out: dict[str, Int64Array] = {}
    for p, found in zip(passes, keys, strict=True):
        rows, position, sizes = _grouped(found.rows, found.keys)
        capped = int((sizes >= cap).sum())
        stats.capped_blocks += capped
        stats.per_pass_capped[p.name] += capped
        usable = np.repeat(sizes < cap, sizes)
        earlier, later = _pairs_before(rows, np.where(usable, position, 0))
        codes = _codes_unique(earlier * (1 << 32) + later)
        out[p.name] = np.stack([codes >> 32, codes & ((1 << 32) - 1)], axis=1)
    return out, stats


def indexed_candidate_codes(
    keys: Sequence[PassKeys],
    indexed: npt.NDArray[np.bool_],
    passes: Sequence[BlockingPass],
    cap: int = DEFAULT_BLOCK_CAP,
) -> tuple[Int64Array, BlockingStats]:
    """The candidates :class:`BlockingIndex` gives the ``indexed`` rows added in row order.

    Each indexed row meets the indexed rows before it that share a block with it, unless
    the block had already reached the cap. Returns the pairs as codes
    ``later row << 32 | earlier row``, sorted and distinct (so each row's candidates come
    in ascending order), and the capping counts the index would have.
    """
    stats = BlockingStats(per_pass_capped={p.name: 0 for p in passes})
    # The index turns a block into its capped marker when the row at this position is added:
    # rows up to it meet the rows before them, later rows meet the marker.
    last = max(cap - 1, 2)
    chunks: list[Int64Array] = []
    for p, found in zip(passes, keys, strict=True):
        mask = indexed[found.rows]
        rows, position, sizes = _grouped(found.rows[mask], found.keys[mask])
        capped = int((sizes > last).sum())
        stats.capped_blocks += capped
        stats.per_pass_capped[p.name] += capped
        stats.capped_lookups += int(np.maximum(sizes - last - 1, 0).sum())
        earlier, later = _pairs_before(rows, np.minimum(position, last) * (position <= last))
        chunks.append(later * (1 << 32) + earlier)
    codes = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)
    return _codes_unique(codes), stats
