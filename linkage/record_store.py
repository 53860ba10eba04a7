"""A compact, column-wise store of standardised identity records.

The online engine keeps every identity it has seen in memory, so a record is stored as a row of
small integers: strings are interned once in a shared vocabulary and the row holds their codes
(``0`` means missing). Columns are ``array('i')``: four bytes a value, and an index returns a
plain ``int`` quickly, which is what the pair-by-pair comparison loop needs.
"""

from __future__ import annotations

from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from operator import attrgetter, itemgetter, not_
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from linkwatch.linkage.bulk import number_distinct
from linkwatch.linkage.standardise import StandardisedBatch, StandardRecord

#: Columns holding vocabulary codes (0 = missing).
STRING_COLUMNS: tuple[str, ...] = (
    "source",
    "national_id",
    "given_name",
    "initials",
    "family_name",
    "family_part1",
    "family_part2",
    "postcode",
    "pc4",
    "house_addition",
    "city",
    "street",
)
#: Columns holding small integers (0 = missing).
INT_COLUMNS: tuple[str, ...] = ("birth_year", "birth_month", "birth_day", "sex", "house_number")
COLUMNS: tuple[str, ...] = STRING_COLUMNS + INT_COLUMNS

SEX_CODES = {"M": 1, "F": 2}


class Vocabulary:
    """Interns strings to positive integer codes; code 0 stands for missing."""

    def __init__(self) -> None:
        # Keyed by str only; typed to accept None so that a lookup needs no test first.
        self._codes: dict[str | None, int] = {}
        self._strings: list[str] = [""]
        self._first_letters = array("i", [0])

    def code(self, value: str | None) -> int:
        """The code of a string, adding it when new (None and "" are 0)."""
        if not value:
            return 0
        found = self._codes.get(value)
        if found is None:
            found = len(self._strings)
            self._codes[value] = found
            self._strings.append(value)
            self._first_letters.append(ord(value[0]))
        return found

    def add_many(self, values: Iterable[str]) -> None:
        """Intern new, non-empty strings, in order (each must not be known yet)."""
        new = list(values)
        first = len(self._strings)
        self._codes.update(zip(new, range(first, first + len(new)), strict=True))
        self._strings.extend(new)
        self._first_letters.frombytes(
            np.fromiter(map(ord, map(itemgetter(0), new)), np.int32, len(new)).tobytes()
        )

    def first_letters(self, codes: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
        """The first character (as a code point) of the strings with these codes (0: missing)."""
        letters = np.frombuffer(self._first_letters, dtype=np.int32)
        return letters[codes]

    def lookup(self, value: str) -> int:
        """The code of a known string, or -1 when it was never seen (without adding it)."""
        return self._codes.get(value, -1)

    def string(self, code: int) -> str:
        """The string behind a code."""
        return self._strings[code]

    def strings(self) -> Sequence[str]:
        """Every string by its code (read only: the vocabulary's own list, not a copy)."""
        return self._strings

    def __len__(self) -> int:
        return len(self._strings)


@dataclass(frozen=True, slots=True)
class EncodedRecord:
    """One record's codes, in :data:`COLUMNS` order (used before it is appended to a store)."""

    record_id: str
    values: tuple[int, ...]


class RecordStore:
    """Column-wise storage of encoded records, addressed by a dense row number."""

    def __init__(self) -> None:
        self.vocabulary = Vocabulary()
        self.columns: dict[str, array[int]] = {name: array("i") for name in COLUMNS}
        self.record_ids: list[str] = []
        # Value counts per column for term-frequency adjustment (code → count).
        self.value_counts: dict[str, dict[int, int]] = {
            "given_name": {},
            "family_name": {},
            "city": {},
            "street": {},
        }
        self.non_missing: dict[str, int] = dict.fromkeys(self.value_counts, 0)
        self._column_list = [self.columns[name] for name in COLUMNS]
        self._counted = [
            (name, _COLUMN_INDEX[name], counts) for name, counts in self.value_counts.items()
        ]

    def __getstate__(self) -> dict[str, object]:
        # The shortcuts to the columns and counts are rebuilt on loading, not saved twice.
        state = dict(self.__dict__)
        del state["_column_list"], state["_counted"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._column_list = [self.columns[name] for name in COLUMNS]
        self._counted = [
            (name, _COLUMN_INDEX[name], counts) for name, counts in self.value_counts.items()
        ]

    def __len__(self) -> int:
        return len(self.record_ids)

    def encode(self, record: StandardRecord) -> EncodedRecord:
        """Turn a standardised record into its row of codes (interning new strings)."""
        vocabulary = self.vocabulary
        # Known strings are found in the vocabulary's dict directly (codes are never 0), new
        # strings are added with `code`, and None and "" are 0.
        known, code = vocabulary._codes.get, vocabulary.code
        parts = record.family_parts
        texts = (
            record.source,
            record.national_id,
            record.given_name,
            record.initials,
            record.family_name,
            parts[0] if parts else None,
            parts[1] if len(parts) > 1 else None,
            record.postcode,
            record.pc4,
            record.house_addition,
            record.city,
            record.street,
        )
        values = (
            *[known(text) or (code(text) if text else 0) for text in texts],
            record.birth_year or 0,
            record.birth_month or 0,
            record.birth_day or 0,
            SEX_CODES.get(record.sex or "", 0),
            record.house_number or 0,
        )
        return EncodedRecord(record.record_id, values)

    def append(self, encoded: EncodedRecord, count_terms: bool = True) -> int:
        """Append an encoded record and return its row number."""
        values = encoded.values
        if len(values) != len(self._column_list):
            raise ValueError(f"expected {len(self._column_list)} values, got {len(values)}")
        # One append per column, looped in C (this runs for every record of a batch).
        deque(map(array.append, self._column_list, values), maxlen=0)
        self.record_ids.append(encoded.record_id)
        if count_terms:
            self.count_terms(encoded.values)
        return len(self.record_ids) - 1

    def count_terms(self, values: tuple[int, ...]) -> None:
        """Add one record's values to the term-frequency counts."""
        non_missing = self.non_missing
        for name, position, counts in self._counted:
            value = values[position]
            if value:
                counts[value] = counts.get(value, 0) + 1
                non_missing[name] += 1

    def extend(self, records: Iterable[StandardRecord], count_terms: bool = True) -> None:
        """Append many records: the same rows, codes and counts as appending them one by one.

        The work is done column by column: strings are interned in the order one-by-one
        encoding would meet them (record by record, column by column), so that every code is
        the one :meth:`encode` would give.
        """
        if not isinstance(records, StandardisedBatch):
            records = list(records)
        if not records:
            return
        columns = _field_columns(records)
        factorised = _factorised_texts(records)
        if factorised is None:
            self._extend_texts(columns)
        else:
            self._extend_factorised(*factorised)
        sex_code = SEX_CODES.get
        numbers = {
            "birth_year": columns("birth_year"),
            "birth_month": columns("birth_month"),
            "birth_day": columns("birth_day"),
            "sex": [sex_code(sex or "", 0) for sex in columns("sex")],
            "house_number": columns("house_number"),
        }
        for name in INT_COLUMNS:
            numbers_or_0 = [number or 0 for number in numbers[name]]
            self.columns[name].frombytes(np.array(numbers_or_0, dtype=np.int32).tobytes())
        self.record_ids.extend(columns("record_id"))
        if count_terms:
            self.count_column_terms(len(self.record_ids) - len(records))

    def _extend_texts(self, columns: Callable[[str], Sequence[Any]]) -> None:
        """Append the string columns, interning new strings in the order one-by-one encoding
        meets them (record by record, column by column)."""
        texts = _string_columns(columns)
        vocabulary = self.vocabulary
        known = vocabulary._codes
        met = dict.fromkeys(chain.from_iterable(zip(*texts, strict=True)))
        met.pop(None, None)
        met.pop("", None)
        vocabulary.add_many((text for text in met if text not in known) if known else met)
        del met
        codes: dict[str | None, int] = dict(known)
        codes[None] = codes[""] = 0
        find = codes.__getitem__
        for name, values in zip(STRING_COLUMNS, texts, strict=True):
            self.columns[name].frombytes(
                np.fromiter(map(find, values), np.int32, len(values)).tobytes()
            )

    def _extend_factorised(
        self, results: Sequence[Sequence[str | None]], indices: Sequence[npt.NDArray[np.intp]]
    ) -> None:
        """Append the string columns given as their distinct values and each row's position
        among them: what :meth:`_extend_texts` does, with a lookup per distinct value rather
        than per row.

        A string's first meeting in one-by-one encoding is its first row in any column, and
        in the earliest column of that row: new strings are interned in that order.
        """
        width = len(STRING_COLUMNS)
        rows = len(indices[0])
        firsts: list[npt.NDArray[np.int64]] = []
        for k, index in enumerate(indices):
            # The first row of each distinct value: of the rows holding it, the last written
            # when the rows are written from last to first.
            first_row = np.empty(len(results[k]), dtype=np.int64)
            first_row[index[::-1]] = np.arange(rows - 1, -1, -1, dtype=np.int64)
            firsts.append(first_row * width + k)
        order = np.argsort(np.concatenate(firsts), kind="stable")
        del firsts
        strings = list(chain.from_iterable(results))
        met = list(map(strings.__getitem__, order.tolist()))
        del strings
        # Every string as it is met, numbered by its first meeting.
        first, number = number_distinct(met)
        del met
        distinct = cast("list[str | None]", list(first))
        del first
        # Each distinct string's code: the known one, 0 for None and "", or a new one.
        vocabulary = self.vocabulary
        known = vocabulary._codes
        codes = np.fromiter(map(known.get, distinct, repeat(-1)), np.int64, len(distinct))
        blank = np.fromiter(map(not_, distinct), np.bool_, len(distinct))  # None and ""
        codes[blank] = 0
        new = np.flatnonzero(codes < 0)
        start = len(vocabulary)
        vocabulary.add_many(cast("list[str]", list(map(distinct.__getitem__, new.tolist()))))
        codes[new] = np.arange(start, start + len(new))
        # Back to each column's distinct values, then to its rows.
        value_codes = np.empty(len(number), dtype=np.int32)
        value_codes[order] = codes[number]
        offset = 0
        for name, values, index in zip(STRING_COLUMNS, results, indices, strict=True):
            column_codes = value_codes[offset : offset + len(values)]
            offset += len(values)
            self.columns[name].frombytes(column_codes[index].tobytes())

    def count_column_terms(self, first_row: int = 0) -> None:
        """Add the values of rows ``first_row`` onwards to the term-frequency counts.

        The counts come out as :meth:`count_terms` record by record would leave them, new
        values in the order they first appear.
        """
        for name, counts in self.value_counts.items():
            column = self.columns[name]
            found = Counter(column[first_row:] if first_row else column)
            missing = found.pop(0, 0)
            for value, times in found.items():
                counts[value] = counts.get(value, 0) + times
            self.non_missing[name] += len(column) - first_row - missing

    def term_frequency(self, column: str, code: int) -> float:
        """Share of non-missing values of ``column`` equal to ``code`` (0.0 when unknown)."""
        total = self.non_missing.get(column, 0)
        if not total:
            return 0.0
        return self.value_counts[column].get(code, 0) / total

    def string(self, column: str, row: int) -> str:
        """The string value of a string column at a row ("" when missing)."""
        return self.vocabulary.string(self.columns[column][row])

    def nbytes(self) -> int:
        """Bytes held by the column arrays (not the vocabulary or record ids)."""
        return sum(col.itemsize * len(col) for col in self.columns.values())


#: The field of :class:`StandardRecord` each string column is read from.
_STRING_FIELDS = (
    "source",
    "national_id",
    "given_name",
    "initials",
    "family_name",
    "family_parts",
    "family_parts",
    "postcode",
    "pc4",
    "house_addition",
    "city",
    "street",
)


def _string_columns(field: Callable[[str], Sequence[Any]]) -> list[Sequence[str | None]]:
    """The string columns, in :data:`STRING_COLUMNS` order, from the values of their
    fields (``field`` gives the values of one field); the first two surname parts are
    columns of their own."""
    columns = []
    for name, field_name in zip(STRING_COLUMNS, _STRING_FIELDS, strict=True):
        values = field(field_name)
        if name == "family_part1":
            values = [p[0] if p else None for p in values]
        elif name == "family_part2":
            values = [p[1] if len(p) > 1 else None for p in values]
        columns.append(values)
    return columns


def _factorised_texts(
    records: Sequence[StandardRecord],
) -> tuple[list[Sequence[str | None]], list[npt.NDArray[np.intp]]] | None:
    """The string columns (in :data:`STRING_COLUMNS` order) of a batch that kept its fields
    factorised: each column's distinct values and each row's position among them."""
    if not isinstance(records, StandardisedBatch):
        return None
    found = {name: records.factorised(name) for name in set(_STRING_FIELDS)}
    kept = {name: value for name, value in found.items() if value is not None}
    if len(kept) != len(found):
        return None
    results = _string_columns(lambda name: kept[name][0])
    return results, [kept[name][1] for name in _STRING_FIELDS]


_COLUMN_INDEX = {name: i for i, name in enumerate(COLUMNS)}


def _field_columns(records: Sequence[StandardRecord]) -> Callable[[str], Sequence[Any]]:
    """Reads one field of every record: a column of a :class:`StandardisedBatch` as it is,
    the attribute of each record otherwise."""
    if isinstance(records, StandardisedBatch):
        return records.column
    return lambda name: list(map(attrgetter(name), records))


def column_index(name: str) -> int:
    """Position of a column in an encoded row."""
    return _COLUMN_INDEX[name]
