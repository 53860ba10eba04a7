"""Standardisation of identity fields before blocking and comparison.

Every provider writes names, dates, postcodes and house numbers its own way. This module turns
one raw identity record into a :class:`StandardRecord` whose fields compare cleanly:

* names lose case, diacritics and punctuation; Dutch tussenvoegsels (``van``, ``de``,
  ``van der``, ``ter`` ...) are separated from the surname, double surnames
  (``Jansen-de Vries``) are split into parts, and initials (``J.P.``) are recognised;
* dates of birth are read from several formats, including a birth year on its own;
* sex is reduced to ``M``/``F`` (unknown is missing, not a third value);
* postcodes become ``1234AB`` with the 4-digit area (PC4) derived, house numbers are split into
  number and addition.

Values that cannot be read are reported as :class:`StandardisationIssue` with the record id and
field, and are treated as missing, so a bad field never becomes a disagreement.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Any, TypeVar, cast, overload

import numpy as np
import numpy.typing as npt

from linkwatch.linkage.bulk import collector_paused, number_distinct

#: Dutch (and a few neighbouring) surname prefixes. A prefix never decides a match on its
#: own: "van der Berg" and "Berg" are the same surname written two ways.
TUSSENVOEGSELS: frozenset[str] = frozenset(
    {
        "van", "de", "der", "den", "het", "t", "ter", "ten", "te", "in", "op", "uit", "aan",
        "bij", "onder", "over", "tot", "voor", "la", "le", "du", "d", "von", "zu", "vom", "zum",
        "del", "della", "di", "da", "dos", "das", "do", "el", "al", "l", "s",
    }
)  # fmt: skip

_PUNCT = re.compile(r"[^a-z0-9\- ]+")
_SPACES = re.compile(r"\s+")
_DASH = re.compile(r"\s*-\s*")
_PC4_FLOAT = re.compile(r"\d{4}\.0")
_POSTCODE_NOISE = re.compile(r"[\s.\-]+")
_POSTCODE_PC6 = re.compile(r"^([1-9][0-9]{3})([A-Z]{2})$")
_POSTCODE_PC4 = re.compile(r"^([0-9]{4})$")
_HOUSE_NUMBER = re.compile(r"^([0-9]{1,6})\s*[-/ ]?\s*([A-Z0-9]{0,6})$")
_DATE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"), "ymd"),
    (re.compile(r"^(\d{4})(\d{2})(\d{2})$"), "ymd"),
    (re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"), "ymd"),
    (re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$"), "dmy"),
    (re.compile(r"^(\d{4})$"), "y"),
)
_SEX_VALUES: dict[str, str | None] = {
    "m": "M", "male": "M", "man": "M", "1": "M", "mannelijk": "M", "h": "M", "homme": "M",
    "f": "F", "female": "F", "v": "F", "vrouw": "F", "2": "F", "vrouwelijk": "F", "femme": "F",
    "w": "F", "woman": "F",
    "u": None, "o": None, "x": None, "0": None, "9": None, "unknown": None, "onbekend": None,
}  # fmt: skip

#: Birth years outside this range are reported as malformed: they are typing errors.
MIN_BIRTH_YEAR = 1880
MAX_BIRTH_YEAR = 2035


@dataclass(frozen=True, slots=True)
class StandardisationIssue:
    """A value that could not be read; the field is treated as missing (or kept partially)."""

    record_id: str
    field: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"record {self.record_id}: field {self.field} = {self.value!r}: {self.reason}"


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One identity record as a provider sent it (empty string or None = missing)."""

    record_id: str
    source: str = ""
    national_id: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    date_of_birth: str | None = None
    sex: str | None = None
    postcode: str | None = None
    house_number: str | None = None
    city: str | None = None
    street: str | None = None


@dataclass(frozen=True, slots=True)
class StandardRecord:
    """An identity record with every field in its comparable form (None = missing)."""

    record_id: str
    source: str
    national_id: str | None = None
    given_name: str | None = None
    initials: str | None = None
    family_name: str | None = None
    family_parts: tuple[str, ...] = ()
    tussenvoegsel: str | None = None
    birth_year: int | None = None
    birth_month: int | None = None
    birth_day: int | None = None
    sex: str | None = None
    postcode: str | None = None
    pc4: str | None = None
    house_number: int | None = None
    house_addition: str | None = None
    city: str | None = None
    street: str | None = None
    issues: tuple[StandardisationIssue, ...] = field(default=(), compare=False)

    @property
    def has_linkable_content(self) -> bool:
        """True when the record carries a name or a date of birth or a national id.

        A record with none of these cannot be told apart from thousands of others; it
        becomes a person of its own rather than a guess.
        """
        return bool(
            self.national_id
            or self.family_name
            or self.given_name
            or (self.birth_year is not None and self.birth_month is not None)
        )


_BLANKS = frozenset({"nan", "none", "null"})


def _blank(value: str | None) -> bool:
    if value is None:
        return True
    text = value.strip()
    return not text or (len(text) <= 4 and text.lower() in _BLANKS)


@lru_cache(maxsize=20_000)
def fold_text(value: str) -> str:
    """Lower-case, strip diacritics and punctuation, collapse spaces ("Ém'ma Þór" → "emma thor")."""
    if value.isascii():  # nothing to fold but case
        text = value.lower()
        if text.replace(" ", "").isalnum():  # only letters, digits and spaces: no punctuation
            return " ".join(text.split())
    else:
        text = value.replace("ß", "ss").replace("Þ", "th").replace("þ", "th").replace("ø", "o")
        text = text.replace("Ø", "o").replace("æ", "ae").replace("Æ", "ae").replace("ĳ", "ij")
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    # An apostrophe joins ("d'Hondt" → "dhondt", "'t Hart" → "t hart" via the space rule).
    text = text.replace("'", "").replace("`", "").replace("\u00b4", "")
    text = _PUNCT.sub(" ", text.replace(".", " ").replace(",", " ").replace("_", " "))
    text = _DASH.sub("-", text).strip("- ")
    return _SPACES.sub(" ", text).strip()


@dataclass(frozen=True, slots=True)
class FamilyName:
    """A surname split into its parts, with its prefix (tussenvoegsel) kept apart."""

    name: str | None
    parts: tuple[str, ...]
    tussenvoegsel: str | None


@lru_cache(maxsize=20_000)
def standardise_family_name(value: str) -> FamilyName:
    """Split a surname into parts without their prefixes.

    "van der Berg" → name "berg", prefix "van der"; "Jansen-de Vries" → parts
    ("jansen", "vries"); "Vries, de" (register order) → "vries" with prefix "de".
    """
    text = fold_text(value)
    if not text:
        return FamilyName(None, (), None)
    if "-" not in text:
        if " " not in text:  # one word: the name itself, whatever it is
            return FamilyName(text, (text,), None)
        tokens = text.split(" ")
        last = tokens[-1]
        if last not in TUSSENVOEGSELS and all(token in TUSSENVOEGSELS for token in tokens[:-1]):
            # Prefixes before one word ("van der berg"), as the loop below reads them.
            return FamilyName(last, (last,), " ".join(tokens[:-1]))
    parts: list[str] = []
    prefixes: list[str] = []
    for chunk in text.split("-"):
        tokens = chunk.split()
        current: list[str] = []
        pending_prefix: list[str] = []
        for token in tokens:
            if token in TUSSENVOEGSELS:
                # A prefix after a surname word starts a new part ("jansen de vries").
                if current:
                    parts.append(" ".join(current))
                    current = []
                pending_prefix.append(token)
            else:
                if pending_prefix and not parts and not prefixes:
                    prefixes.append(" ".join(pending_prefix))
                pending_prefix = []
                current.append(token)
        if current:
            parts.append(" ".join(current))
        elif pending_prefix and not parts:
            # All tokens are prefixes ("Van" as a surname): keep the last as the name.
            parts.append(pending_prefix[-1])
            if len(pending_prefix) > 1:
                prefixes.append(" ".join(pending_prefix[:-1]))
        elif pending_prefix and not prefixes:
            # Register order "Vries, de": a trailing prefix belongs to the first surname.
            prefixes.append(" ".join(pending_prefix))
    parts = [p for p in parts if p]
    if not parts:
        return FamilyName(None, (), None)
    return FamilyName(" ".join(parts), tuple(parts), prefixes[0] if prefixes else None)


@dataclass(frozen=True, slots=True)
class GivenName:
    """A first given name (None when only initials were written) and all initials."""

    name: str | None
    initials: str | None


@lru_cache(maxsize=20_000)
def standardise_given_name(value: str) -> GivenName:
    """Keep the first given name and the initials of all of them.

    "Jan-Pieter" → name "jan-pieter", initials "jp"; "J.P." → no name, initials "jp";
    "Jan P." → name "jan", initials "jp".
    """
    text = fold_text(value)
    if not text:
        return GivenName(None, None)
    tokens = text.replace("-", " - ").split()
    words: list[str] = []
    initials: list[str] = []
    joined = False
    for token in tokens:
        if token == "-":
            joined = True
            continue
        initials.append(token[0])
        if len(token) > 1:
            if joined and words:
                words[-1] = words[-1] + "-" + token
            else:
                words.append(token)
        joined = False
    # "JP" written without dots is two initials, not a name, when it has no vowel.
    if len(tokens) == 1 and len(text) <= 3 and not re.search(r"[aeiouy]", text):
        return GivenName(None, text)
    name = words[0] if words else None
    return GivenName(name, "".join(initials) or None)


@dataclass(frozen=True, slots=True)
class BirthDate:
    """Date-of-birth components; month and day are None for a birth year on its own."""

    year: int | None
    month: int | None
    day: int | None
    problem: str | None = None


_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@lru_cache(maxsize=65_536)
def standardise_date_of_birth(value: str) -> BirthDate:
    """Read a date of birth from ISO, compact, European or year-only forms.

    A value that parses into numbers but is not a calendar date (month 13, 31 February) keeps its
    components, because typing errors and day-month swaps are still evidence, and carries a
    ``problem`` so the caller can report it.
    """
    text = value.strip()
    if (
        len(text) == 10
        and text[4] == text[7] == "-"
        and text[:4].isdecimal()
        and text[5:7].isdecimal()
        and text[8:].isdecimal()
    ):  # the ISO form, which the first pattern reads, without the patterns
        return _birth_date(int(text[:4]), int(text[5:7]), int(text[8:]))
    if " " in text or "T" in text:
        text = text.replace("T", " ").split(" ")[0]
    for pattern, order in _DATE_PATTERNS:
        match = pattern.match(text)
        if not match:
            continue
        if order == "y":
            year = int(match.group(1))
            if not MIN_BIRTH_YEAR <= year <= MAX_BIRTH_YEAR:
                return BirthDate(
                    None, None, None, f"birth year outside {MIN_BIRTH_YEAR}-{MAX_BIRTH_YEAR}"
                )
            return BirthDate(year, None, None)
        a, b, c = (int(g) for g in match.groups())
        return _birth_date(a, b, c) if order == "ymd" else _birth_date(c, b, a)
    return BirthDate(None, None, None, "not a date (expected YYYY-MM-DD or YYYY)")


def _birth_date(year: int, month: int, day: int) -> BirthDate:
    """Check the components of a full date (see :func:`standardise_date_of_birth`)."""
    if not MIN_BIRTH_YEAR <= year <= MAX_BIRTH_YEAR:
        return BirthDate(None, None, None, f"birth year outside {MIN_BIRTH_YEAR}-{MAX_BIRTH_YEAR}")
    if not (1 <= month <= 12 and 1 <= day <= _DAYS_IN_MONTH[month - 1]) or (
        month == 2 and day == 29 and not _is_leap(year)
    ):
        if 1 <= month <= 31 and 1 <= day <= 31:
            return BirthDate(year, month, day, "not a calendar date")
        return BirthDate(year, None, None, "not a calendar date; only the year is kept")
    return BirthDate(year, month, day)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def standardise_sex(value: str) -> tuple[str | None, bool]:
    """Map a sex code to "M", "F" or None (unknown); the flag is False for an unreadable value."""
    key = value.strip().lower()
    if key in _SEX_VALUES:
        return _SEX_VALUES[key], True
    return None, False


@lru_cache(maxsize=20_000)
def standardise_postcode(value: str) -> tuple[str | None, str | None]:
    """Return (PC6, PC4): "1234 ab" → ("1234AB", "1234"); "1234" → (None, "1234").

    A value that fits neither form returns (None, None).
    """
    text = value.strip()
    compact = text[:4] + text[5:] if len(text) == 7 and text[4] == " " else text
    if (
        len(compact) == 6
        and compact.isascii()
        and compact[0] != "0"
        and compact[:4].isdigit()
        and compact[4:].isalpha()
    ):  # "1234AB" or "1234 ab", which the patterns below read, without them
        return compact[:4] + compact[4:].upper(), compact[:4]
    if _PC4_FLOAT.fullmatch(text):  # a postcode column read as floats
        text = text[:-2]
    text = _POSTCODE_NOISE.sub("", text).upper()
    match = _POSTCODE_PC6.match(text)
    if match:
        return match.group(0), match.group(1)
    match = _POSTCODE_PC4.match(text)
    if match:
        return None, match.group(1)
    return None, None


@lru_cache(maxsize=20_000)
def standardise_house_number(value: str) -> tuple[int | None, str | None]:
    """Split a house number and its addition: "12-a" → (12, "A"); "12 hs" → (12, "HS")."""
    text = value.strip().upper()
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    match = _HOUSE_NUMBER.match(text)
    if not match:
        return None, None
    number = int(match.group(1))
    addition = match.group(2) or None
    if number == 0:
        return None, None
    return number, addition


def clear_caches() -> None:
    """Forget the memoised field values (a benchmark measuring standardisation from cold)."""
    for function in (
        fold_text,
        standardise_family_name,
        standardise_given_name,
        standardise_date_of_birth,
        standardise_postcode,
        standardise_house_number,
    ):
        function.cache_clear()


# --- whole records ---------------------------------------------------------------------------
#
# Each reader turns one raw field value into its standard parts and the reason it could not be
# read (None when it could). A blank value is missing, which is no problem.

_NO_GIVEN = (None, None)
_NO_FAMILY = (None, (), None)
_NO_DATE = (None, None, None)
_NO_PAIR = (None, None)

FieldParts = tuple[Any, ...]


Reader = Callable[[str | None], tuple[FieldParts, str | None]]


def _field_readers(memoised: bool) -> tuple[tuple[str, Reader], ...]:
    """The readers of the fields that can carry an issue, in the order a record's issues
    list them: with the memoised field functions (one record at a time, where values repeat
    from call to call), or with the plain ones (a batch, which reads each value once)."""

    def plain(function: Callable[[str], _T]) -> Callable[[str], _T]:
        return function if memoised else function.__wrapped__  # type: ignore[attr-defined]

    given_name, family_name = plain(standardise_given_name), plain(standardise_family_name)
    date_of_birth, postcode = plain(standardise_date_of_birth), plain(standardise_postcode)
    house_number = plain(standardise_house_number)

    def read_given(value: str | None) -> tuple[FieldParts, str | None]:
        if _blank(value):
            return _NO_GIVEN, None
        given = given_name(str(value))
        if given.name is None and given.initials is None:
            return _NO_GIVEN, "no letters"
        return (given.name, given.initials), None

    def read_family(value: str | None) -> tuple[FieldParts, str | None]:
        if type(value) is str and value.isalpha() and value.isascii():
            # One plain word, the common case: the name itself (as the full reading gives).
            text = value.lower()
            if text not in _BLANKS:
                return (text, (text,), None), None
        if _blank(value):
            return _NO_FAMILY, None
        family = family_name(str(value))
        return (family.name, family.parts, family.tussenvoegsel), (
            "no letters" if family.name is None else None
        )

    def read_date(value: str | None) -> tuple[FieldParts, str | None]:
        if _blank(value):
            return _NO_DATE, None
        birth = date_of_birth(str(value))
        return (birth.year, birth.month, birth.day), birth.problem or None

    def read_sex(value: str | None) -> tuple[FieldParts, str | None]:
        if _blank(value):
            return (None,), None
        sex, readable = standardise_sex(str(value))
        return (sex,), None if readable else "expected M/F (or V, man, vrouw, 1, 2)"

    def read_postcode(value: str | None) -> tuple[FieldParts, str | None]:
        if _blank(value):
            return _NO_PAIR, None
        pc6, pc4 = postcode(str(value))
        return (pc6, pc4), "expected 1234AB or 1234" if pc4 is None else None

    def read_house_number(value: str | None) -> tuple[FieldParts, str | None]:
        if _blank(value):
            return _NO_PAIR, None
        number, addition = house_number(str(value))
        return (number, addition), (
            "expected a number with an addition" if number is None else None
        )

    return (
        ("given_name", read_given),
        ("family_name", read_family),
        ("date_of_birth", read_date),
        ("sex", read_sex),
        ("postcode", read_postcode),
        ("house_number", read_house_number),
    )


_T = TypeVar("_T")


def _read_national_id(value: str | None) -> str | None:
    return None if _blank(value) else "".join(str(value).split())


def _read_text(value: str | None) -> str | None:
    return None if _blank(value) else (fold_text(str(value)) or None)


def _read_source(value: str | None) -> str:
    return (value or "").strip()


#: The fields that can carry an issue, with their readers for one record and for a batch.
_CHECKED_FIELDS = _field_readers(memoised=True)
_BATCH_FIELDS = _field_readers(memoised=False)


def standardise(raw: RawRecord) -> StandardRecord:
    """Standardise every field of one raw record, collecting issues instead of raising."""
    issues: list[StandardisationIssue] = []
    parts: list[FieldParts] = []
    for name, read in _CHECKED_FIELDS:
        value = getattr(raw, name)
        found, reason = read(value)
        parts.append(found)
        if reason is not None:
            issues.append(StandardisationIssue(raw.record_id, name, str(value), reason))
    (given, initials), family, birth, (sex,), postcode, house = parts
    return StandardRecord(
        record_id=raw.record_id,
        source=_read_source(raw.source),
        national_id=_read_national_id(raw.national_id),
        given_name=given,
        initials=initials,
        family_name=family[0],
        family_parts=family[1],
        tussenvoegsel=family[2],
        birth_year=birth[0],
        birth_month=birth[1],
        birth_day=birth[2],
        sex=sex,
        postcode=postcode[0],
        pc4=postcode[1],
        house_number=house[0],
        house_addition=house[1],
        city=_read_text(raw.city),
        street=_read_text(raw.street),
        issues=tuple(issues),
    )


def _all_text(values: Iterable[object]) -> bool:
    """True when every value is a string or None."""
    return set(map(type, values)) <= _TEXT_TYPES


_TEXT_TYPES = frozenset({str, type(None)})


#: A column as its distinct values' results and, per row, the position of the row's value
#: among them (row n holds ``results[index[n]]``).
Factorised = tuple[list[Any], npt.NDArray[np.intp]]


def _distinct_index(
    values: list[str | None],
) -> tuple[list[str | None], npt.NDArray[np.intp]] | None:
    """The distinct values in their first order and each row's position among them; None
    unless every value is a string or None (other types can be equal and read differently:
    1 == 1.0 == True)."""
    distinct, number = number_distinct(values)
    if not _all_text(distinct):
        return None
    return cast("list[str | None]", list(distinct)), number


def _read_columns(
    values: list[str | None], read: Reader
) -> tuple[list[Sequence[Any]], list[Factorised | None], list[tuple[int, str]]]:
    """``read`` of every value, each distinct value read once: a column per part (with its
    factorised form, when the values are text), and the rows whose value could not be read,
    with the reason."""
    width = len(read(None)[0])
    if not values:
        return [()] * width, [None] * width, []
    found_index = _distinct_index(values)
    if found_index is None:
        read_all = [read(value) for value in values]
        found = [parts for parts, _ in read_all]
        problems = [(row, reason) for row, (_, reason) in enumerate(read_all) if reason]
        return list(zip(*found, strict=True)), [None] * width, problems
    keys, index = found_index
    read_all = list(map(read, keys))
    # A column is the distinct values' parts taken by the rows' index, without a lookup per
    # row.
    results = [list(column) for column in zip(*map(itemgetter(0), read_all), strict=True)]
    columns: list[Sequence[Any]] = [
        np.fromiter(column, dtype=object, count=len(keys))[index].tolist() for column in results
    ]
    reasons = list(map(itemgetter(1), read_all))
    unreadable = np.fromiter(map(bool, reasons), dtype=bool, count=len(keys))[index]
    rows = np.flatnonzero(unreadable).tolist()
    factorised: list[Factorised | None] = [(column, index) for column in results]
    return columns, factorised, [(row, reasons[index[row]]) for row in rows]


def _read_simple_column(
    values: list[str | None], read: Callable[[str | None], Any]
) -> tuple[list[Any], Factorised | None]:
    """``read`` of every value (one that raises no issue), each distinct value read once, and
    the column's factorised form (when the values are text)."""
    found_index = _distinct_index(values)
    if found_index is None:
        return [read(value) for value in values], None
    keys, index = found_index
    results = list(map(read, keys))
    column = np.fromiter(results, dtype=object, count=len(keys))[index].tolist()
    return column, (results, index)


_FIELD_NAMES = tuple(f.name for f in fields(StandardRecord))


class StandardisedBatch(Sequence[StandardRecord]):
    """The standardised records of a batch, held field by field.

    What :func:`standardise_many` returns. It is a sequence of :class:`StandardRecord` (a
    record is built when it is asked for); the batch functions (:class:`RecordStore`,
    training, :func:`~linkwatch.linkage.clusters.link_batch`) read its columns instead, which
    spares building a record object per record.
    """

    def __init__(
        self,
        columns: Mapping[str, Sequence[Any]],
        factorised: Mapping[str, Factorised] | None = None,
    ) -> None:
        if set(columns) != set(_FIELD_NAMES):
            raise ValueError(f"expected the columns {', '.join(_FIELD_NAMES)}")
        self._columns = {name: columns[name] for name in _FIELD_NAMES}
        self._size = len(columns["record_id"])
        if any(len(column) != self._size for column in self._columns.values()):
            raise ValueError("every column needs one value per record")
        self._factorised = dict(factorised or {})
        if any(len(index) != self._size for _, index in self._factorised.values()):
            raise ValueError("every factorised column needs one position per record")

    def column(self, name: str) -> Sequence[Any]:
        """The values of one field of :class:`StandardRecord`, record by record."""
        return self._columns[name]

    def factorised(self, name: str) -> Factorised | None:
        """One field as its distinct values and each record's position among them (the
        values can repeat: two raw values may read the same), when the batch kept it."""
        return self._factorised.get(name)

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, index: int) -> StandardRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[StandardRecord]: ...

    def __getitem__(self, index: int | slice) -> StandardRecord | list[StandardRecord]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._size))]
        if index < 0:
            index += self._size
        if not 0 <= index < self._size:
            raise IndexError("record index out of range")
        return StandardRecord(*(column[index] for column in self._columns.values()))

    def __iter__(self) -> Iterator[StandardRecord]:
        return map(StandardRecord, *self._columns.values())


def standardise_many(raws: Sequence[RawRecord]) -> StandardisedBatch:
    """Standardise many records: the records :func:`standardise` gives one by one.

    The work is done field by field, and each distinct value of a field is read once: names,
    dates and postcodes repeat a lot in a batch. The result holds the records field by field.
    """
    with collector_paused():
        return _standardise_many(raws)


def _standardise_many(raws: Sequence[RawRecord]) -> StandardisedBatch:
    record_ids = [raw.record_id for raw in raws]
    issues: dict[int, list[StandardisationIssue]] = {}
    columns: list[Sequence[Any]] = []
    factorised: list[Factorised | None] = []
    for name, read in _BATCH_FIELDS:
        values: list[str | None] = list(map(attrgetter(name), raws))
        found, found_factorised, problems = _read_columns(values, read)
        columns += found
        factorised += found_factorised
        for row, reason in problems:
            issue = StandardisationIssue(record_ids[row], name, str(values[row]), reason)
            issues.setdefault(row, []).append(issue)
    record_issues: list[tuple[StandardisationIssue, ...]] = [()] * len(raws)
    for row, found_issues in issues.items():
        record_issues[row] = tuple(found_issues)
    checked = (
        "given_name",
        "initials",
        "family_name",
        "family_parts",
        "tussenvoegsel",
        "birth_year",
        "birth_month",
        "birth_day",
        "sex",
        "postcode",
        "pc4",
        "house_number",
        "house_addition",
    )
    simple = {
        name: _read_simple_column(list(map(attrgetter(name), raws)), read)
        for name, read in (
            ("source", _read_source),
            ("national_id", _read_national_id),
            ("city", _read_text),
            ("street", _read_text),
        )
    }
    kept = {
        name: found
        for name, found in chain(
            zip(checked, factorised, strict=True),
            ((name, found) for name, (_, found) in simple.items()),
        )
        if found is not None
    }
    return StandardisedBatch(
        {
            "record_id": record_ids,
            **{name: column for name, (column, _) in simple.items()},
            **dict(zip(checked, columns, strict=True)),
            "issues": record_issues,
        },
        kept,
    )
