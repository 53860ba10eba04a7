"""Small synthetic Dutch identity records with realistic corruption, for tests and benchmarks.

Persons get Dutch names (surname prefixes, double surnames after marriage), a date of birth, sex,
a 6-character postcode with house number, and a national-id token. Each person appears in some of
three sources — GP, out-of-hours GP (OOH) and hospital — and every copy is corrupted the way
real extracts are: typing errors in names, initials instead of a given name, the prefix written
in register order ("Vries, de"), double surname or not, day and month swapped, a digit wrong in
the date, birth year only (as GP extracts often give), a move to another address, postcode
formatting, and missing fields (the national id most often).

This is not the population generator of ``linkwatch synth``; it is a compact, seeded stand-in
that the linkage tests and benchmarks can run without it.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, replace

from linkwatch.linkage.standardise import RawRecord

GIVEN_MALE = (
    "Jan", "Pieter", "Kees", "Henk", "Willem", "Johannes", "Hendrik", "Cornelis", "Gerrit", "Dirk",
    "Daan", "Sem", "Lucas", "Bram", "Thijs", "Ruben", "Jeroen", "Mark", "Bas", "Sander", "Niels",
    "Joost", "Martijn", "Erik", "Frank", "Marco", "Rob", "Ahmed", "Mohamed", "Youssef", "Mehmet",
    "Stijn", "Teun", "Jesse", "Milan", "Finn", "Levi", "Noah", "Luuk", "Jasper", "Wouter", "Arie",
)  # fmt: skip
GIVEN_FEMALE = (
    "Maria", "Anna", "Johanna", "Cornelia", "Elisabeth", "Wilhelmina", "Grietje", "Neeltje", "Emma",
    "Julia", "Sophie", "Tess", "Sanne", "Lisa", "Anouk", "Femke", "Iris", "Marloes", "Esther",
    "Ingrid", "Petra", "Monique", "Fatima", "Aïcha", "Zeynep", "Noor", "Lotte", "Eva", "Fleur",
    "Saskia", "Ilse", "Mirjam", "Hanneke", "Marieke", "Renée", "Chloé", "Anaïs", "Yara", "Lieke",
)  # fmt: skip
SURNAMES = (
    "de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser",
    "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks",
    "van Leeuwen", "Dekker", "Brouwer", "de Wit", "Dijkstra", "Smits", "de Graaf", "van der Meer",
    "van der Linden", "Kok", "Jacobs", "de Haan", "Vermeulen", "van den Heuvel", "van der Veen",
    "van den Broek", "de Bruijn", "de Bruin", "van der Heijden", "Schouten", "van Beek", "Willems",
    "van Vliet", "van de Ven", "Hoekstra", "Maas", "Verhoeven", "Koster", "van Dam", "van der Wal",
    "Prins", "Blom", "Huisman", "Peeters", "de Lange", "Kuipers", "van Wijk", "Postma", "Kuiper",
    "Veenstra", "Kramer", "van den Brink", "Scholten", "van Wijngaarden", "Yılmaz"  # noqa: RUF001 - a Turkish surname, dotless i intended
   , "El Idrissi",
    "ter Horst", "ten Cate", "in 't Veld", "van 't Hof", "Çelik", "Öztürk", "Dubois",
)  # fmt: skip
_SYLLABLES_A = (
    "ver",
    "hoog",
    "kl",
    "st",
    "br",
    "w",
    "gr",
    "sch",
    "h",
    "d",
    "m",
    "v",
    "r",
    "b",
    "l",
)
_SYLLABLES_B = ("ee", "aa", "oo", "ui", "ij", "ei", "ou", "e", "a", "o", "i")
_SYLLABLES_C = (
    "ven",
    "man",
    "stra",
    "ma",
    "ink",
    "ing",
    "kamp",
    "veld",
    "berg",
    "dijk",
    "hof",
    "sma",
    "ers",
    "ens",
)
CITIES = (
    ("Amsterdam", 1011, 1109),
    ("Rotterdam", 3011, 3089),
    ("Den Haag", 2491, 2599),
    ("Utrecht", 3511, 3585),
    ("Eindhoven", 5611, 5658),
    ("Groningen", 9711, 9747),
    ("Tilburg", 5011, 5049),
    ("Almere", 1311, 1338),
    ("Breda", 4811, 4839),
    ("Nijmegen", 6511, 6546),
    ("Apeldoorn", 7311, 7339),
    ("Haarlem", 2011, 2037),
    ("Arnhem", 6811, 6846),
    ("Enschede", 7511, 7548),
    ("Zwolle", 8011, 8043),
    ("Leeuwarden", 8911, 8941),
    ("Maastricht", 6211, 6229),
    ("Delft", 2611, 2629),
    ("'s-Hertogenbosch", 5211, 5236),
    ("Súdwest-Fryslân", 8601, 8629),
)
_LETTERS = "ABCDEFGHJKLMNPRTVWXZ"
SOURCES = ("gp", "ooh", "hospital")


@dataclass(frozen=True, slots=True)
class Person:
    """The true identity behind the records."""

    person_id: str
    given: str
    prefix: str
    surname: str
    partner_surname: str | None
    birth_year: int
    birth_month: int
    birth_day: int
    sex: str
    postcode: str
    house_number: int
    house_addition: str
    city: str
    national_id: str


def _surname(rng: random.Random) -> str:
    # About one person in eight carries one of the common surnames, with a steep frequency
    # curve among them ("de Jong" is the most common); the rest carry rarer, composed names.
    if rng.random() < 0.12:
        return rng.choices(SURNAMES, weights=_SURNAME_WEIGHTS)[0]
    prefix = rng.choice(("", "", "", "", "van ", "de ", "van der ", "ter "))
    middle = rng.choice(_SYLLABLES_A) + rng.choice(_SYLLABLES_B) if rng.random() < 0.7 else ""
    name = rng.choice(_SYLLABLES_A) + rng.choice(_SYLLABLES_B) + middle + rng.choice(_SYLLABLES_C)
    return prefix + name.capitalize()


_SURNAME_WEIGHTS = [1.0 / (rank + 1) for rank in range(len(SURNAMES))]


def make_person(rng: random.Random, number: int, secret: bytes = b"linkwatch-test") -> Person:
    """One random Dutch person."""
    sex = rng.choice("MF")
    given = rng.choice(GIVEN_MALE if sex == "M" else GIVEN_FEMALE)
    full = _surname(rng)
    words = full.split(" ")
    prefix = " ".join(w for w in words[:-1])
    surname = words[-1]
    partner = _surname(rng) if sex == "F" and rng.random() < 0.25 else None
    city, low, high = rng.choice(CITIES)
    pc4 = rng.randint(low, high)
    postcode = f"{pc4}{rng.choice(_LETTERS)}{rng.choice(_LETTERS)}"
    year = rng.randint(1925, 2023)
    month = rng.randint(1, 12)
    day = rng.randint(1, 28)
    token = hashlib.blake2b(f"{number}".encode(), key=secret, digest_size=10).hexdigest()
    addition = rng.choice(("", "", "", "", "", "", "A", "B", "hs", "2"))
    return Person(
        f"person-{number}", given, prefix, surname, partner, year, month, day, sex, postcode,
        rng.randint(1, 250), addition, city, token,
    )  # fmt: skip


def _typo(rng: random.Random, text: str) -> str:
    if len(text) < 3:
        return text
    i = rng.randrange(1, len(text) - 1)
    action = rng.random()
    if action < 0.35:
        return text[:i] + text[i + 1 :]  # deletion
    if action < 0.7:
        return text[:i] + rng.choice("aeiounrst") + text[i + 1 :]  # substitution
    if action < 0.85:
        return text[:i] + text[i] + text[i:]  # doubled letter
    return text[: i - 1] + text[i] + text[i - 1] + text[i + 1 :]  # transposition


def make_record(rng: random.Random, person: Person, source: str, serial: int) -> RawRecord:
    """One corrupted copy of a person as a source would send it."""
    given = person.given
    roll = rng.random()
    if roll < 0.06:
        given = _typo(rng, given)
    elif roll < 0.12 and source == "hospital":
        given = given[0] + "."
    elif roll < 0.14:
        given = given.upper()

    family = person.surname
    if rng.random() < 0.05:
        family = _typo(rng, family)
    if person.prefix:
        family = (
            f"{family}, {person.prefix}" if rng.random() < 0.15 else f"{person.prefix} {family}"
        )
    if person.partner_surname and rng.random() < 0.5:
        family = f"{person.partner_surname}-{family}" if rng.random() < 0.5 else family
        if rng.random() < 0.3:
            family = person.partner_surname

    year, month, day = person.birth_year, person.birth_month, person.birth_day
    roll = rng.random()
    if roll < 0.01 and day <= 12:
        month, day = day, month
    elif roll < 0.03:
        day = min(28, max(1, day + rng.choice((-1, 1, 10))))
    elif roll < 0.04:
        year += rng.choice((-1, 1))
    date = f"{year:04d}-{month:02d}-{day:02d}"
    if source == "gp" and rng.random() < 0.1:
        date = f"{year:04d}"
    elif rng.random() < 0.01:
        date = ""
    elif rng.random() < 0.05:
        date = f"{day:02d}-{month:02d}-{year:04d}"

    postcode, house, city = person.postcode, person.house_number, person.city
    if rng.random() < 0.06:  # moved
        city, low, high = rng.choice(CITIES)
        postcode = f"{rng.randint(low, high)}{rng.choice(_LETTERS)}{rng.choice(_LETTERS)}"
        house = rng.randint(1, 250)
    house_text = f"{house}{person.house_addition}" if rng.random() < 0.7 else str(house)
    if rng.random() < 0.3:
        postcode = f"{postcode[:4]} {postcode[4:].lower()}"
    if rng.random() < 0.02:
        postcode = ""

    sex = person.sex if rng.random() > 0.02 else ""
    if sex and source == "gp":
        sex = {"M": "M", "F": "V"}[sex]
    has_id = {"gp": 0.6, "ooh": 0.4, "hospital": 0.8}[source]
    national_id = person.national_id if rng.random() < has_id else ""
    return RawRecord(
        record_id=f"{source}-{serial:08d}",
        source=source,
        national_id=national_id,
        given_name=given,
        family_name=family,
        date_of_birth=date,
        sex=sex,
        postcode=postcode,
        house_number=house_text,
        city=city,
    )


def make_population(
    persons: int,
    seed: int = 0,
    presence: tuple[float, float, float] = (0.9, 0.3, 0.4),
    first_person: int = 0,
) -> tuple[list[RawRecord], dict[str, str]]:
    """Records of ``persons`` people over GP, OOH and hospital, and each record's true person.

    ``presence`` is the chance that a person appears in each source (GP, OOH, hospital).
    ``first_person`` numbers the people (and their record ids) from there, so that a large
    population can be generated in parts with distinct people and ids.
    """
    rng = random.Random(seed)
    records: list[RawRecord] = []
    truth: dict[str, str] = {}
    serial = first_person * 3
    for number in range(first_person, first_person + persons):
        person = make_person(rng, number)
        for source, chance in zip(SOURCES, presence, strict=True):
            if rng.random() < chance:
                record = make_record(rng, person, source, serial)
                serial += 1
                records.append(record)
                truth[record.record_id] = person.person_id
    return records, truth


def without_identifiers(record: RawRecord) -> RawRecord:
    """A copy with nothing to link on (no names, no date, no national id)."""
    return replace(record, national_id="", given_name="", family_name="", date_of_birth="")
