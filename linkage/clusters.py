"""Incremental clustering: each new record joins a person, starts one, or merges two.

:class:`LinkageEngine` holds every identity it has seen (a :class:`RecordStore` of interned
codes), a :class:`BlockingIndex` and the person of each record (union-find over person
numbers). Adding a record:

1. finds candidate records through the blocking index;
2. scores each candidate pair with the Fellegi-Sunter model (with term-frequency adjustment);
3. links the record to every person with a candidate scoring at or above the link threshold.
   With one such person the record joins it; with none it starts a new person; with several,
   those persons are one person after all: they are merged into the oldest, and a
   :class:`MergeEvent` (old id → surviving id) tells downstream stores to follow. Pairs in the
   grey zone between review and link thresholds go to the review queue.

Because a link depends only on the pair of records (not on the clusters built so far), the
persons at the end are the connected components of the above-threshold pairs that blocking
reaches: the same whatever order the records arrive in.

Records with nothing to link on (no name, no date of birth, no national id) become persons of
their own and are counted.

Providers send the same identity with every event of a person, so most records repeat one
already seen, field for field. Such a record is compared with that first copy only, joins
its person when the pair's weight reaches the link threshold, and is stored without being
indexed again: any later record weighs the same against either copy, so the copy adds
nothing to find but candidates to score. This keeps the blocks, and the work per record, as
small as the number of distinct identities rather than of events.

:func:`link_batch` takes the same decisions for a whole batch at once: copies, candidates
(with the blocks' size cap as the index applies it) and pair weights are worked out with numpy
over the batch, and only the link decisions are taken record by record.
"""

from __future__ import annotations

import hashlib
import math
import random
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from linkwatch.linkage.batch import RecordBatch
from linkwatch.linkage.blocking import BlockingIndex, BlockingStats
from linkwatch.linkage.bulk import collector_paused
from linkwatch.linkage.comparisons import CompiledComparisons
from linkwatch.linkage.fellegi_sunter import FellegiSunterModel
from linkwatch.linkage.record_store import COLUMNS, EncodedRecord, RecordStore
from linkwatch.linkage.standardise import RawRecord, StandardRecord, standardise

# The source is stored but never compared: the same identity from two providers is one.
assert COLUMNS[0] == "source"
_FIRST_COMPARED = 1
_COMPARED = COLUMNS[_FIRST_COMPARED:]


@dataclass(frozen=True, slots=True)
class Repeat:
    """A record known to equal a stored row in every compared field (a provider sending
    an identity it sent before): it needs no standardising, only its id and source."""

    raw: RawRecord
    of_row: int


@dataclass(frozen=True, slots=True)
class MergeEvent:
    """Two persons turned out to be one: ``old_person`` is now ``surviving_person``."""

    old_person: str
    surviving_person: str
    record_id: str
    match_weight: float


@dataclass(frozen=True, slots=True)
class ReviewPair:
    """A grey-zone pair for clerical review."""

    record_id: str
    candidate_record_id: str
    match_weight: float
    match_probability: float


@dataclass(frozen=True, slots=True)
class LinkResult:
    """What happened to one added record."""

    record_id: str
    person_id: str
    status: str  # "linked", "new", "merged" or "unlinkable"
    match_weight: float | None
    candidates: int
    merges: tuple[MergeEvent, ...] = ()
    review: tuple[ReviewPair, ...] = ()


@dataclass(slots=True)
class EngineCounts:
    """Running counts of the engine's decisions."""

    records: int = 0
    linked: int = 0
    new_persons: int = 0
    merges: int = 0
    unlinkable: int = 0
    review_pairs: int = 0
    pairs_scored: int = 0
    #: Records identical to one indexed before, linked to it without being indexed again.
    duplicates: int = 0


def content_key(values: Sequence[int]) -> int:
    """A 64-bit digest of an encoded record's compared fields (all but the source)."""
    data = array("i", values[_FIRST_COMPARED:]).tobytes()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def person_label(number: int) -> str:
    """The external id of a person number."""
    return f"P{number:09d}"


class LinkageEngine:
    """The online linkage engine: add one record at a time, get its person."""

    def __init__(self, model: FellegiSunterModel, store: RecordStore | None = None) -> None:
        self.model = model
        self.store = store if store is not None else RecordStore()
        self.index = BlockingIndex(model.passes, model.block_cap)
        self.comparisons = CompiledComparisons(model.specs, self.store)
        self.counts = EngineCounts()
        # record row → person number at the time the record was added; person → parent person.
        self._record_person = array("i")
        self._parent = array("i")
        self._weights = model.level_weights()
        self._link_weight = model.link_weight
        self._review_weight = model.review_weight
        self._prior_weight = model.prior_weight
        # (comparison, level, column, u) of every level with term-frequency adjustment.
        self._tf: list[tuple[int, int, str, float]] = [
            (k, index, lvl.spec.tf_column, lvl.u)
            for k, comparison in enumerate(model.comparisons)
            for index, lvl in enumerate(comparison.levels)
            if lvl.spec.tf_column
        ]
        #: Candidate sets at least this large are scored with numpy rather than pair by pair.
        self.vector_threshold = 40
        #: Called with (row, candidate row, match weight) for every scored pair, when set.
        self.pair_sink: Callable[[int, int, float], None] | None = None
        #: Link a record identical to an indexed one to it alone, without indexing it again.
        self.collapse_duplicates = True
        # content_key of an indexed record's compared fields → the first such row.
        self._first_of: dict[int, int] = {}
        # Per first copy (by row): its pair weight with a copy before term frequencies,
        # and which term-frequency levels apply (a bit per entry of _tf); NaN: not yet known.
        self._copy_base = array("d")
        self._copy_tf = array("B")

    # --- state --------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything the engine has learnt from its records (picklable), for a snapshot."""
        return {
            "store": self.store,
            "index": self.index,
            "counts": self.counts,
            "record_person": self._record_person,
            "parent": self._parent,
            "first_of": self._first_of,
        }

    @classmethod
    def from_state(cls, model: FellegiSunterModel, state: dict[str, Any]) -> LinkageEngine:
        """An engine holding exactly what :meth:`state` saved, with ``model``."""
        engine = cls(model, store=state["store"])
        engine.index = state["index"]
        engine.counts = state["counts"]
        engine._record_person = state["record_person"]
        engine._parent = state["parent"]
        engine._first_of = state["first_of"]
        rows = len(engine.store)
        engine._copy_base = array("d", [math.nan]) * rows
        engine._copy_tf = array("B", [0]) * rows
        return engine

    # --- persons ------------------------------------------------------------------------

    def _find(self, person: int) -> int:
        parent = self._parent
        root = person
        while parent[root] != root:
            root = parent[root]
        while parent[person] != root:  # path compression
            parent[person], person = root, parent[person]
        return root

    def person_of_row(self, row: int) -> str:
        """The current person id of a stored record."""
        return person_label(self._find(self._record_person[row]))

    def first_person_of_row(self, row: int) -> str:
        """The person id a stored record was given when it was added (before later merges)."""
        return person_label(self._record_person[row])

    def person_ids(self) -> list[str]:
        """Current person id of every stored record, by row."""
        return [person_label(self._find(p)) for p in self._record_person]

    def _new_person(self) -> int:
        number = len(self._parent)
        self._parent.append(number)
        return number

    # --- scoring ------------------------------------------------------------------------

    def score(self, i: int, j: int) -> float:
        """Match weight of two stored records, with term-frequency adjustment."""
        levels = self.comparisons.levels(i, j)
        weight = self._prior_weight
        for w, index in zip(self._weights, levels, strict=True):
            weight += w[index]
        for k, level_index, column, u in self._tf:
            if levels[k] == level_index:
                weight += self._tf_adjustment(column, self.store.columns[column][i], u)
        return weight

    def _tf_adjustment(self, column: str, code: int, u: float) -> float:
        """Weight correction for agreeing on one value rather than on an average value.

        Agreeing on a value that a share f of records hold has u = f instead of the level's u.
        f is smoothed towards u with ``tf_smoothing`` pseudo-records, so that small counts
        (the first records of an online engine) change little.
        """
        store = self.store
        count = store.value_counts[column].get(code, 0)
        total = store.non_missing.get(column, 0)
        smoothing = self.model.tf_smoothing
        if total + smoothing <= 0:
            return 0.0
        frequency = (count + smoothing * u) / (total + smoothing)
        return math.log2(u / max(frequency, self.model.tf_minimum))

    def score_many(self, row: int, candidates: Sequence[int]) -> list[float]:
        """Match weights of one stored record against many (numpy, same result as :meth:`score`)."""
        import numpy as np

        right = np.asarray(candidates, dtype=np.int64)
        left = np.full(len(right), row, dtype=np.int64)
        matrix = self.comparisons.matrix_for(left, right)
        weights = np.full(len(right), self._prior_weight)
        for k, w in enumerate(self._weights):
            weights += np.asarray(w)[matrix[:, k]]
        for k, level_index, column, u in self._tf:
            hit = matrix[:, k] == level_index
            if hit.any():
                weights[hit] += self._tf_adjustment(column, self.store.columns[column][row], u)
        return [float(w) for w in weights]

    def explain(self, i: int, j: int) -> list[tuple[str, str, float]]:
        """Per comparison: (name, level label, weight) for a pair of stored records."""
        levels = self.comparisons.levels(i, j)
        return [
            (c.spec.name, c.levels[index].spec.label, c.levels[index].weight)
            for c, index in zip(self.model.comparisons, levels, strict=True)
        ]

    # --- adding -------------------------------------------------------------------------

    def add(self, record: StandardRecord, count_terms: bool = True) -> LinkResult:
        """Add one record; return its person and any merges and review pairs.

        ``count_terms=False`` leaves the term-frequency counts alone, for records already
        counted with :meth:`prime_term_frequencies`.
        """
        row, candidates = self._index_record(record, count_terms=count_terms)
        if candidates is None:
            return self._unlinkable(record.record_id)
        if len(candidates) >= self.vector_threshold:
            weights = self.score_many(row, candidates)
        else:
            weights = [self.score(row, candidate) for candidate in candidates]
        return self._decide(record.record_id, row, candidates, weights)

    def add_sequence(self, records: Sequence[StandardRecord | Repeat]) -> list[LinkResult]:
        """Add records in order: exactly the decisions :meth:`add` takes one by one, faster.

        Each record is indexed and its term-frequency adjustments are fixed as :meth:`add`
        would see them (the counts up to and including itself); then every candidate pair of
        the sequence is scored at once with numpy, in the same order of additions, so the
        weights are equal to the last bit; the link decisions are taken record by record.
        The result does not depend on how a stream is cut into sequences, which lets a
        restarted linker rebuild exactly the persons it had.
        """
        import numpy as np

        staged: list[tuple[int, list[int] | None]] = []
        adjust = np.zeros((len(records), len(self._tf)))
        for n, record in enumerate(records):
            row, candidates = self._index_record(record, count_terms=True)
            staged.append((row, candidates))
            if candidates:
                for t, (_, _, column, u) in enumerate(self._tf):
                    adjust[n, t] = self._tf_adjustment(column, self.store.columns[column][row], u)
        sizes = np.fromiter((len(c) if c else 0 for _, c in staged), np.int64, len(staged))
        owner = np.repeat(np.arange(len(staged), dtype=np.int64), sizes)
        left = np.repeat(np.fromiter((row for row, _ in staged), np.int64, len(staged)), sizes)
        right = np.fromiter(
            chain.from_iterable(c for _, c in staged if c), np.int64, int(sizes.sum())
        )
        weights: list[float] = []
        if len(left):
            matrix = self.comparisons.matrix_for(left, right)
            scored = np.full(len(left), self._prior_weight)
            for k, w in enumerate(self._weights):
                scored += np.asarray(w)[matrix[:, k]]
            for t, (k, level_index, _, _) in enumerate(self._tf):
                hits = np.flatnonzero(matrix[:, k] == level_index)
                scored[hits] += adjust[owner[hits], t]
            weights = scored.tolist()
        results: list[LinkResult] = []
        offset = 0
        record_ids = self.store.record_ids
        for row, candidates in staged:
            if candidates is None:
                results.append(self._unlinkable(record_ids[row]))
                continue
            chunk = weights[offset : offset + len(candidates)]
            offset += len(candidates)
            results.append(self._decide(record_ids[row], row, candidates, chunk))
        return results

    def _index_record(
        self,
        record: StandardRecord | Repeat,
        count_terms: bool,
        encoded: EncodedRecord | None = None,
    ) -> tuple[int, list[int] | None]:
        """Store a record and find its candidates (None when it has nothing to link on).

        A record identical to an indexed one whose pair weight reaches the link threshold
        has that record as its only candidate and is not indexed itself.
        """
        standard: StandardRecord | None
        if isinstance(record, Repeat):
            standard = None
            encoded = EncodedRecord(record.raw.record_id, self._copy_values(record))
            linkable = True
        else:
            standard = record
            encoded = encoded or self.store.encode(record)
            linkable = record.has_linkable_content
        row = self.store.append(encoded, count_terms=count_terms)
        self._copy_base.append(math.nan)
        self._copy_tf.append(0)
        self.counts.records += 1
        if not linkable:
            return row, None
        key = content_key(encoded.values) if self.collapse_duplicates else None
        if key is not None:
            first = self._first_of.get(key)
            if (
                first is not None
                and self._same_content(first, row)
                and self._copy_weight(row, first) >= self._link_weight
            ):
                self.counts.duplicates += 1
                self.counts.pairs_scored += 1
                return row, [first]
        if standard is None:
            assert isinstance(record, Repeat)
            standard = standardise(record.raw)
        keys = self.index.keys(standard)
        candidates = sorted(self.index.candidates(keys))
        self.index.add(keys, row)
        if key is not None:
            self._first_of.setdefault(key, row)
        self.counts.pairs_scored += len(candidates)
        return row, candidates

    def _copy_values(self, repeat: Repeat) -> tuple[int, ...]:
        """The encoded row of a repeat: its source, and the compared fields of its copy."""
        columns, row = self.store.columns, repeat.of_row
        source = self.store.vocabulary.code((repeat.raw.source or "").strip())
        return (source, *(columns[name][row] for name in _COMPARED))

    def _copy_weight(self, row: int, first: int) -> float:
        """:meth:`score` of a record and its first copy, to the bit, without comparing them.

        Equal fields compare to the same levels whatever the copy, so the first copy keeps
        the sum of its level weights and which term-frequency levels apply; only the
        term-frequency adjustments, which follow the counts, are worked out each time.
        """
        base = self._copy_base[first]
        if math.isnan(base):
            levels = self.comparisons.levels(row, first)
            base = self._prior_weight
            for w, index in zip(self._weights, levels, strict=True):
                base += w[index]
            mask = 0
            for t, (k, level_index, _, _) in enumerate(self._tf):
                if levels[k] == level_index:
                    mask |= 1 << t
            self._copy_base[first], self._copy_tf[first] = base, mask
        weight, mask = base, self._copy_tf[first]
        if mask:
            columns = self.store.columns
            for t, (_, _, column, u) in enumerate(self._tf):
                if mask >> t & 1:
                    weight += self._tf_adjustment(column, columns[column][row], u)
        return weight

    def _same_content(self, a: int, b: int) -> bool:
        columns = self.store.columns
        return all(columns[name][a] == columns[name][b] for name in _COMPARED)

    def _unlinkable(self, record_id: str) -> LinkResult:
        person = self._new_person()
        self._record_person.append(person)
        self.counts.unlinkable += 1
        self.counts.new_persons += 1
        return LinkResult(record_id, person_label(person), "unlinkable", None, 0)

    def _decide(
        self, record_id: str, row: int, candidates: Sequence[int], weights: Sequence[float]
    ) -> LinkResult:
        """Link, start a person or merge, from the scored candidates of a stored record."""
        if self.pair_sink is not None:
            for candidate, weight in zip(candidates, weights, strict=True):
                self.pair_sink(row, candidate, weight)
        best_by_root: dict[int, float] = {}
        grey: list[tuple[int, float]] = []
        best_weight: float | None = max(weights) if weights else None
        floor = min(self._review_weight, self._link_weight)
        for candidate, weight in zip(candidates, weights, strict=True):
            if weight < floor:  # most candidates: nothing to link nor review
                continue
            if weight >= self._link_weight:
                root = self._find(self._record_person[candidate])
                if weight > best_by_root.get(root, -math.inf):
                    best_by_root[root] = weight
            else:
                grey.append((candidate, weight))
        # A grey-zone pair with a record of a person linked anyway needs no review.
        review = tuple(
            ReviewPair(
                record_id, self.store.record_ids[candidate], weight, 1.0 / (1.0 + 2.0 ** (-weight))
            )
            for candidate, weight in grey
            if self._find(self._record_person[candidate]) not in best_by_root
        )
        self.counts.review_pairs += len(review)

        if not best_by_root:
            person = self._new_person()
            self._record_person.append(person)
            self.counts.new_persons += 1
            return LinkResult(
                record_id, person_label(person), "new", best_weight, len(candidates), (), review
            )

        surviving = min(best_by_root)  # the oldest person keeps its id
        merges: list[MergeEvent] = []
        for root in sorted(best_by_root):
            if root == surviving:
                continue
            self._parent[root] = surviving
            merges.append(
                MergeEvent(
                    person_label(root), person_label(surviving), record_id, best_by_root[root]
                )
            )
        self._record_person.append(surviving)
        self.counts.linked += 1
        self.counts.merges += len(merges)
        return LinkResult(
            record_id,
            person_label(surviving),
            "merged" if merges else "linked",
            best_weight,
            len(candidates),
            tuple(merges),
            review,
        )

    def add_batch(
        self,
        records: Sequence[StandardRecord],
        progress: Callable[[int], None] | None = None,
    ) -> list[LinkResult]:
        """Add records in the given order; the same decisions as :meth:`add` one by one.

        Term frequencies are counted over the whole batch first, so that the weight of a
        name agreement does not depend on where in the batch a record comes. The batch is
        indexed first (each record meets the candidates that :meth:`add` would give it: the
        records before it), all candidate pairs are then scored at once with numpy, and the
        link decisions are taken record by record in order.
        """
        import numpy as np

        encoded = [self.store.encode(record) for record in records]
        for values in encoded:
            self.store.count_terms(values.values)
        staged = [
            self._index_record(record, count_terms=False, encoded=codes)
            for record, codes in zip(records, encoded, strict=True)
        ]
        del encoded
        left = np.fromiter((row for row, cands in staged if cands for _ in cands), dtype=np.int64)
        right = np.fromiter((c for _, cands in staged if cands for c in cands), dtype=np.int64)
        weights = self._score_pairs(left, right)
        results: list[LinkResult] = []
        offset = 0
        for n, (record, (row, candidates)) in enumerate(zip(records, staged, strict=True), 1):
            if candidates is None:
                results.append(self._unlinkable(record.record_id))
            else:
                chunk = weights[offset : offset + len(candidates)]
                offset += len(candidates)
                results.append(self._decide(record.record_id, row, candidates, chunk))
            if progress is not None and n % 1000 == 0:
                progress(1000)
        if progress is not None:
            progress(len(records) % 1000)
        return results

    def prime_term_frequencies(self, records: Iterable[StandardRecord]) -> None:
        """Count the names of records that will be added, before they are."""
        for record in records:
            self.store.count_terms(self.store.encode(record).values)

    def _score_pairs(self, left: Any, right: Any) -> list[float]:
        """Match weights of many stored pairs (left[n], right[n]), with numpy."""
        out: list[float] = []
        step = 200_000
        for start in range(0, len(left), step):
            lo, hi = left[start : start + step], right[start : start + step]
            out.extend(self._weights_of_levels(lo, self.comparisons.matrix_for(lo, hi)).tolist())
        return out

    def _weights_of_levels(self, left: Any, matrix: Any) -> Any:
        """Match weights of stored pairs from their levels; the term-frequency adjustments
        follow the values of the ``left`` records (the records being added)."""
        import numpy as np

        weights = np.full(len(left), self._prior_weight)
        for k, w in enumerate(self._weights):
            weights += np.asarray(w)[matrix[:, k]]
        for k, level_index, column, u in self._tf:
            hits = np.flatnonzero(matrix[:, k] == level_index)
            if len(hits):
                column_values = np.frombuffer(self.store.columns[column], dtype=np.int32)
                values = column_values[left[hits]]
                del column_values  # release the buffer so the store can grow again
                # Each distinct value's adjustment is worked out once (values are codes, so
                # a table by code finds them without sorting).
                seen = np.zeros(int(values.max()) + 1, dtype=bool)
                seen[values] = True
                distinct = np.flatnonzero(seen)
                adjust = np.zeros(len(seen))
                adjust[distinct] = [self._tf_adjustment(column, v, u) for v in distinct.tolist()]
                weights[hits] += adjust[values]
        return weights

    def memory_bytes(self) -> int:
        """Bytes held by the engine's structures (store, vocabulary, index, persons, memo).

        Counted with ``sys.getsizeof`` over every container and its items, so it is what the
        engine itself holds, apart from the interpreter and allocator overheads.
        """
        import sys

        size = sys.getsizeof
        total = sum(size(col) for col in self.store.columns.values())
        total += size(self.store.record_ids) + sum(size(r) for r in self.store.record_ids)
        vocabulary = self.store.vocabulary
        total += size(vocabulary._codes) + size(vocabulary._strings)
        total += sum(size(s) for s in vocabulary._strings) + size(vocabulary._first_letters)
        for counts in self.store.value_counts.values():
            total += size(counts) + sum(size(k) + size(v) for k, v in counts.items())
        total += size(self._record_person) + size(self._parent)
        total += size(self._first_of) + sum(size(k) + size(v) for k, v in self._first_of.items())
        total += size(self._copy_base) + size(self._copy_tf)
        for blocks in self.index._blocks:
            total += size(blocks) + sum(size(k) + size(v) for k, v in blocks.items())
        return total


@dataclass(slots=True)
class BatchResult:
    """The persons of a batch of records, in input order, with the engine's counts."""

    record_ids: list[str]
    person_ids: list[str]
    merges: list[MergeEvent] = field(default_factory=list)
    review: list[ReviewPair] = field(default_factory=list)
    counts: EngineCounts = field(default_factory=EngineCounts)
    #: Every scored pair as (record id, candidate record id, match weight), when collected.
    pairs: list[tuple[str, str, float]] = field(default_factory=list)
    #: Blocks that outgrew the size cap, and lookups that met one.
    blocking: BlockingStats = field(default_factory=BlockingStats)


def link_batch(
    records: Sequence[StandardRecord],
    model: FellegiSunterModel,
    shuffle_seed: int | None = None,
    progress: Callable[[int], None] | None = None,
    collect_pairs: bool = False,
    batch: RecordBatch | None = None,
) -> BatchResult:
    """Link a batch (in order, or shuffled with a seed): the persons, merges and review pairs
    of :meth:`LinkageEngine.add_batch` on a new engine, worked out for the whole batch at once.

    ``batch`` (a :class:`RecordBatch` of these very records, say the one the model was
    trained with) lends its codes, blocking keys and known comparison levels.
    The result lists records in their input order, whatever order they were processed in.
    """
    with collector_paused():
        return _link_batch(records, model, shuffle_seed, progress, collect_pairs, batch)


def _link_batch(
    records: Sequence[StandardRecord],
    model: FellegiSunterModel,
    shuffle_seed: int | None,
    progress: Callable[[int], None] | None,
    collect_pairs: bool,
    batch: RecordBatch | None,
) -> BatchResult:
    order = list(range(len(records)))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(order)
        batch = RecordBatch([records[i] for i in order])
    elif batch is None or not batch.holds(records):
        batch = RecordBatch(records)
    engine = LinkageEngine(model, store=batch.store)
    scored: list[tuple[int, int, float]] = []
    merges, review = _link_new_batch(engine, batch, progress, scored if collect_pairs else None)
    ids = engine.store.record_ids
    pairs = [(ids[row], ids[candidate], weight) for row, candidate, weight in scored]
    final = _person_ids(engine)
    if shuffle_seed is None:
        person_by_input, record_ids = final, list(ids)
    else:
        person_by_input = [""] * len(records)
        for row, i in enumerate(order):
            person_by_input[i] = final[row]
        record_ids = [r.record_id for r in records]
    return BatchResult(
        record_ids,
        person_by_input,
        merges,
        review,
        engine.counts,
        pairs,
        engine.index.stats,
    )


def _person_ids(engine: LinkageEngine) -> list[str]:
    """:meth:`LinkageEngine.person_ids`, with the persons' roots found for all rows at once."""
    import numpy as np

    parent = np.frombuffer(engine._parent, dtype=np.int32).copy()
    while True:
        up = parent[parent]
        if np.array_equal(up, parent):
            break
        parent = up
    roots = parent[np.frombuffer(engine._record_person, dtype=np.int32)]
    return list(map(_PERSON_LABEL.format, roots.tolist()))


#: The format of :func:`person_label`.
_PERSON_LABEL = "P{:09d}"


def _link_new_batch(
    engine: LinkageEngine,
    batch: RecordBatch,
    progress: Callable[[int], None] | None,
    scored: list[tuple[int, int, float]] | None,
) -> tuple[list[MergeEvent], list[ReviewPair]]:
    """Take :meth:`LinkageEngine.add_batch`'s decisions for a whole batch at once.

    ``engine`` is new and holds the batch's records (rows in batch order, terms counted).
    Which record is a copy of an earlier one, each record's candidates (the earlier indexed
    records sharing an uncapped block) and every pair's weight are worked out with numpy
    over the batch, to the bit as the engine would; only the link decisions, which depend on
    the persons built so far, are taken record by record. The engine keeps its persons and
    counts, not a blocking index: it serves the batch's result, not further additions.
    """
    import numpy as np

    store, model = engine.store, engine.model

    def column(name: str) -> Any:
        values = np.frombuffer(store.columns[name], dtype=np.int32)
        out = values.copy()
        del values  # release the buffer so the store can grow again
        return out

    linkable = (
        (column("national_id") != 0)
        | (column("family_name") != 0)
        | (column("given_name") != 0)
        | ((column("birth_year") != 0) & (column("birth_month") != 0))
    )
    indexed = linkable.copy()
    copy_codes = np.empty(0, dtype=np.int64)
    if engine.collapse_duplicates and linkable.any():
        rows = np.flatnonzero(linkable)
        content = np.stack([column(name)[rows] for name in _COMPARED], axis=1)
        first = rows[_first_equal_rows(content)]
        copies = np.flatnonzero(first != rows)
        if len(copies):
            copy_rows, first_rows = rows[copies], first[copies]
            weights = _copy_weights(engine, copy_rows, first_rows)
            collapsed = weights >= engine._link_weight
            indexed[copy_rows[collapsed]] = False
            copy_codes = copy_rows[collapsed] * (1 << 32) + first_rows[collapsed]
    codes, engine.index.stats = batch.candidate_codes(indexed, model.passes, model.block_cap)
    codes = np.sort(np.concatenate([codes, copy_codes]))
    left, right = codes >> 32, codes & ((1 << 32) - 1)
    del codes
    engine.counts.duplicates += len(copy_codes)
    engine.counts.pairs_scored += len(left)
    weights = np.empty(len(left))
    step = 2_000_000
    for start in range(0, len(left), step):
        lo, hi = left[start : start + step], right[start : start + step]
        levels = batch.levels(engine.comparisons, lo, hi)
        weights[start : start + step] = engine._weights_of_levels(lo, levels)
    if scored is not None:
        scored.extend(zip(left.tolist(), right.tolist(), weights.tolist(), strict=True))
    floor = min(engine._review_weight, engine._link_weight)
    relevant = np.flatnonzero(weights >= floor)
    return _decide_in_order(
        engine,
        linkable,
        left[relevant].tolist(),
        right[relevant].tolist(),
        weights[relevant].tolist(),
        progress,
    )


def _first_equal_rows(content: Any) -> Any:
    """For each row of a matrix, the first row equal to it.

    Rows are grouped by a 64-bit digest of their values (sorted stably, so each group starts
    with its first row); every group is checked to hold equal rows only, and the rare
    collision falls back to comparing the rows themselves.
    """
    import numpy as np

    size = len(content)
    digest = np.zeros(size, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(content.shape[1]):
            digest = digest * np.uint64(0x100000001B3) + content[:, k].astype(np.uint64)
            digest ^= digest >> np.uint64(29)
    order = np.argsort(digest, kind="stable")
    digest, ordered = digest[order], content[order]
    same_digest = digest[1:] == digest[:-1]
    if not (ordered[1:][same_digest] == ordered[:-1][same_digest]).all():
        _, first_at, group = np.unique(content, axis=0, return_index=True, return_inverse=True)
        return first_at[group.ravel()]
    starts = np.flatnonzero(np.concatenate(([True], ~same_digest)))
    first = np.empty(size, dtype=np.int64)
    first[order] = np.repeat(order[starts], np.diff(np.append(starts, size)))
    return first


def _copy_weights(engine: LinkageEngine, rows: Any, firsts: Any) -> Any:
    """:meth:`LinkageEngine._copy_weight` of each record and its first copy, to the bit.

    The level weights of a group of copies are those of its first pair (the engine works
    them out for the first copy that meets the first record and keeps them).
    """
    import numpy as np

    _, at = np.unique(firsts, return_index=True)
    levels = engine.comparisons.matrix_for(rows[at], firsts[at])
    base = np.full(len(at), engine._prior_weight)
    for k, w in enumerate(engine._weights):
        base += np.asarray(w)[levels[:, k]]
    group = np.searchsorted(firsts[at], firsts)
    weights = base[group]
    for k, level_index, column, u in engine._tf:
        hit = (levels[:, k] == level_index)[group]
        if hit.any():
            values = np.frombuffer(engine.store.columns[column], dtype=np.int32)[rows[hit]]
            unique, inverse = np.unique(values, return_inverse=True)
            adjust = [engine._tf_adjustment(column, int(v), u) for v in unique]
            weights[hit] += np.asarray(adjust)[inverse]
    return weights


def _decide_in_order(
    engine: LinkageEngine,
    linkable: Any,
    rows: list[int],
    candidates: list[int],
    weights: list[float],
    progress: Callable[[int], None] | None,
) -> tuple[list[MergeEvent], list[ReviewPair]]:
    """:meth:`LinkageEngine._decide` for every record in order, from the scored pairs that
    reach the review or link weight (``rows[n]`` with ``candidates[n]``, rows ascending).

    A record without such a pair starts a person, whatever came before: only the records
    with one are decided one by one. Persons are numbered in the order records start them,
    so a record that starts a person has the number of records before it that did.
    """
    import numpy as np

    size = len(linkable)
    counts = engine.counts
    decided = np.zeros(size, dtype=bool)
    decided[rows] = True
    # Records before each record that start a person without a decision.
    undecided_before = (np.cumsum(~decided) - ~decided).tolist()
    # A person per record at most: the numbers in use are those below the persons started.
    parent = array("i", range(size))
    engine._parent = parent
    find = engine._find
    started: list[int] = []  # decided records that started a person, ascending
    person_of: dict[int, int] = {}  # person of each decided record

    def person_of_record(row: int) -> int:
        found = person_of.get(row)
        if found is None:
            return int(undecided_before[row]) + bisect_left(started, row)
        return found

    record_ids = engine.store.record_ids
    link_weight = engine._link_weight
    merges: list[MergeEvent] = []
    review: list[ReviewPair] = []
    pointer, end = 0, len(rows)
    while pointer < end:
        row = rows[pointer]
        best_by_root: dict[int, float] = {}
        grey: list[tuple[int, float]] = []
        while pointer < end and rows[pointer] == row:
            candidate, weight = candidates[pointer], weights[pointer]
            pointer += 1
            if weight >= link_weight:
                root = find(person_of_record(candidate))
                if weight > best_by_root.get(root, -math.inf):
                    best_by_root[root] = weight
            else:
                grey.append((candidate, weight))
        record_id = record_ids[row]
        for candidate, weight in grey:
            if find(person_of_record(candidate)) not in best_by_root:
                review.append(
                    ReviewPair(
                        record_id, record_ids[candidate], weight, 1.0 / (1.0 + 2.0 ** (-weight))
                    )
                )
                counts.review_pairs += 1
        if not best_by_root:
            person_of[row] = int(undecided_before[row]) + len(started)
            started.append(row)
            continue
        surviving = min(best_by_root)
        for root in sorted(best_by_root):
            if root == surviving:
                continue
            parent[root] = surviving
            merges.append(
                MergeEvent(
                    person_label(root), person_label(surviving), record_id, best_by_root[root]
                )
            )
            counts.merges += 1
        person_of[row] = surviving
        counts.linked += 1
    record_person = np.asarray(undecided_before, dtype=np.int64) + np.searchsorted(
        np.asarray(started, dtype=np.int64), np.arange(size)
    )
    if person_of:
        record_person[list(person_of)] = list(person_of.values())
    persons = size - counts.linked
    del parent[persons:]
    engine._record_person = array("i", record_person.astype(np.int32).tobytes())
    counts.records += size
    counts.new_persons += persons
    counts.unlinkable += int(size - np.count_nonzero(linkable))
    if progress is not None:
        for _ in range(size // 1000):
            progress(1000)
        progress(size % 1000)
    return merges, review
