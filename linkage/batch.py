"""A batch of records encoded once, for training a model on it and linking it.

Training and batch linking start from the same work: every record's codes in a
:class:`RecordStore`, every record's blocking keys per pass, and the comparison levels of the
pairs the blocks give. A :class:`RecordBatch` does each once, column by column with numpy,
and keeps it: :func:`~linkwatch.linkage.fellegi_sunter.train_model` and
:func:`~linkwatch.linkage.clusters.link_batch` take the batch and reuse what the other has
already worked out. Passing a batch changes no result, only the time it takes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from linkwatch.linkage.blocking import (
    DEFAULT_BLOCK_CAP,
    DEFAULT_PASSES,
    BlockingPass,
    BlockingStats,
    PassKeys,
    blocked_pairs_of_keys,
    indexed_candidate_codes,
    pass_keys,
)
from linkwatch.linkage.bulk import collector_paused
from linkwatch.linkage.comparisons import ComparisonSpec, CompiledComparisons
from linkwatch.linkage.record_store import RecordStore
from linkwatch.linkage.standardise import StandardRecord


class RecordBatch:
    """Standardised records with their codes, blocking keys and known comparison levels.

    The store holds the records in their order (row n is ``records[n]``) with their
    term-frequency counts, as training and :meth:`LinkageEngine.add_batch` count them.
    """

    def __init__(self, records: Sequence[StandardRecord]) -> None:
        self.records = records
        self.store = RecordStore()
        with collector_paused():
            self.store.extend(records)
        self._keys: dict[tuple[str, ...], PassKeys] = {}
        # Per comparison table: codes (i << 32 | j, i < j) of pairs whose levels are known,
        # sorted, and the levels in that order.
        self._levels: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.int8]]] = {}

    def __len__(self) -> int:
        return len(self.records)

    def holds(self, records: Sequence[StandardRecord]) -> bool:
        """True when ``records`` are this batch's records (the same sequence)."""
        return records is self.records

    def keys(self, passes: Sequence[BlockingPass]) -> list[PassKeys]:
        """The records' blocking keys in each pass (worked out once per pass)."""
        missing = [p for p in passes if p.parts not in self._keys]
        if missing:
            found = pass_keys(self.store, self.records, missing)
            for p, keys in zip(missing, found, strict=True):
                self._keys[p.parts] = keys
        return [self._keys[p.parts] for p in passes]

    def blocked_pairs(
        self, passes: Sequence[BlockingPass] = DEFAULT_PASSES, cap: int = DEFAULT_BLOCK_CAP
    ) -> tuple[dict[str, npt.NDArray[np.int64]], BlockingStats]:
        """:func:`~linkwatch.linkage.blocking.blocked_pairs` of the records."""
        return blocked_pairs_of_keys(self.keys(passes), passes, cap)

    def candidate_codes(
        self,
        indexed: npt.NDArray[np.bool_],
        passes: Sequence[BlockingPass] = DEFAULT_PASSES,
        cap: int = DEFAULT_BLOCK_CAP,
    ) -> tuple[npt.NDArray[np.int64], BlockingStats]:
        """The candidates a blocking index gives the ``indexed`` records added in order
        (see :func:`~linkwatch.linkage.blocking.indexed_candidate_codes`)."""
        return indexed_candidate_codes(self.keys(passes), indexed, passes, cap)

    def remember_levels(
        self,
        specs: Sequence[ComparisonSpec],
        pairs: npt.NDArray[np.int64],
        matrix: npt.NDArray[np.int8],
        ordered: bool = False,
    ) -> None:
        """Keep the comparison levels of distinct pairs (i < j) for later :meth:`levels`
        requests; ``ordered`` says the pairs are sorted already."""
        codes = pairs[:, 0] * (1 << 32) + pairs[:, 1]
        if ordered:
            self._levels[_table_key(specs)] = (codes, matrix)
            return
        order = np.argsort(codes, kind="stable")
        self._levels[_table_key(specs)] = (codes[order], matrix[order])

    def levels(
        self,
        compiled: CompiledComparisons,
        left: npt.NDArray[np.int64],
        right: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.int8]:
        """Comparison levels of the pairs (left[n], right[n]): the remembered ones looked up,
        the others computed (levels do not depend on which record of a pair is on the left)."""
        out = np.empty((len(left), len(compiled)), dtype=np.int8)
        known = self._levels.get(_table_key(compiled.specs))
        todo = np.arange(len(left))
        if known is not None and len(known[0]):
            codes, matrix = known
            wanted = np.minimum(left, right) * (1 << 32) + np.maximum(left, right)
            # Searching sorted needles walks the codes in order, which is far faster.
            order = np.argsort(wanted)
            at = np.empty(len(wanted), dtype=np.int64)
            at[order] = np.minimum(np.searchsorted(codes, wanted[order]), len(codes) - 1)
            del order
            found = codes[at] == wanted
            out[found] = matrix[at[found]]
            todo = np.flatnonzero(~found)
        step = 200_000
        for start in range(0, len(todo), step):
            chunk = todo[start : start + step]
            out[chunk] = compiled.matrix_for(left[chunk], right[chunk])
        return out


def _table_key(specs: Sequence[ComparisonSpec]) -> str:
    return json.dumps([spec.as_dict() for spec in specs], sort_keys=True, default=str)
