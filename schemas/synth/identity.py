"""How each source records a person's identity, with realistic errors.

A person seen by a source has one registration there (the GP's patient record, the
hospital's patient number), sometimes two: within-source duplicates. Errors are made
once per registration and so repeat on every event of it: typing errors in names,
initials instead of given names, dropped diacritics, double surnames swapped or
reduced to the birth name, tussenvoegsel spelled differently, day and month of birth
swapped, a year of birth off by one, sex miscoded, a family member's BSN. Addresses are
taken at each event's date, so people who move change postcode, except at sources that
keep a stale address. Dutch GP extracts often carry the birth year only and rarely the
BSN; hospitals usually have the BSN (LBZ links mostly on BSN-based pseudonyms, a small
part on date of birth, sex and postcode).
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

import numpy as np

from linkwatch.schemas.synth.extracts import SourceEvents
from linkwatch.schemas.synth.names import TUSSENVOEGSELS
from linkwatch.schemas.synth.population import BoolArray, Population, StrArray, blank_where


@dataclass(frozen=True)
class IdentityQuality:
    """Per-source error rates (each a probability per registration unless noted)."""

    national_id: float
    wrong_national_id: float
    initials: float
    name_typo: float
    missing_given: float
    missing_family: float
    drop_diacritics: float
    double_surname_swapped: float
    double_surname_birth_name: float
    tussenvoegsel_variant: float
    dob_day_month_swap: float
    dob_year_off: float
    dob_missing: float
    sex_error: float
    stale_address: float
    postcode_typo: float  # per event
    postcode_missing: float  # per event
    house_number_missing: float  # per event
    duplicate: float  # share of persons with a second registration


QUALITY = {
    "gp_consultation": IdentityQuality(
        national_id=0.15, wrong_national_id=0.001, initials=0.10, name_typo=0.02,
        missing_given=0.02, missing_family=0.005, drop_diacritics=0.2,
        double_surname_swapped=0.2, double_surname_birth_name=0.3, tussenvoegsel_variant=0.05,
        dob_day_month_swap=0.01, dob_year_off=0.003, dob_missing=0.002, sex_error=0.002,
        stale_address=0.15, postcode_typo=0.005, postcode_missing=0.01,
        house_number_missing=0.03, duplicate=0.015,
    ),
    "ooh_contact": IdentityQuality(
        national_id=0.80, wrong_national_id=0.002, initials=0.05, name_typo=0.03,
        missing_given=0.01, missing_family=0.005, drop_diacritics=0.4,
        double_surname_swapped=0.2, double_surname_birth_name=0.3, tussenvoegsel_variant=0.08,
        dob_day_month_swap=0.01, dob_year_off=0.005, dob_missing=0.005, sex_error=0.003,
        stale_address=0.05, postcode_typo=0.01, postcode_missing=0.02,
        house_number_missing=0.05, duplicate=0.03,
    ),
    "hospital_episode": IdentityQuality(
        national_id=0.95, wrong_national_id=0.0005, initials=0.40, name_typo=0.015,
        missing_given=0.005, missing_family=0.001, drop_diacritics=0.3,
        double_surname_swapped=0.15, double_surname_birth_name=0.3, tussenvoegsel_variant=0.05,
        dob_day_month_swap=0.005, dob_year_off=0.002, dob_missing=0.001, sex_error=0.001,
        stale_address=0.05, postcode_typo=0.003, postcode_missing=0.005,
        house_number_missing=0.01, duplicate=0.01,
    ),
}  # fmt: skip
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def typo(rnd: random.Random, text: str) -> str:
    """One keyboard error: a letter substituted, dropped, doubled or two letters swapped."""
    if len(text) < 2:
        return text
    i = rnd.randrange(len(text))
    op = rnd.randrange(4)
    if op == 0:
        return text[:i] + rnd.choice(LETTERS) + text[i + 1 :]
    if op == 1:
        return text[:i] + text[i + 1 :]
    if op == 2:
        return text[:i] + text[i] + text[i:]
    j = min(i + 1, len(text) - 1)
    return (
        text[:i] + text[j] + text[i] + text[j + 1 :] if i != j else text[:-2] + text[-1] + text[-2]
    )


def strip_diacritics(text: str) -> str:
    """'Şahin' -> 'Sahin', 'Doğan' -> 'Dogan', dotless i -> i."""
    # NFKD does not decompose the Turkish dotless i, so it is mapped by hand.
    text = text.replace("\u0131", "i")
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def initials(rnd: random.Random, given: str) -> str:
    """Dutch-style initials of a given name, sometimes with a second initial: 'J.' or 'J.H.'."""
    extra = rnd.choice("ACEHJMPW") + "." if rnd.random() < 0.4 else ""
    return strip_diacritics(given[0]).upper() + "." + extra


def tussenvoegsel_variant(rnd: random.Random, family: str) -> str:
    """Other spellings of a name with tussenvoegsel: 'Berg van den', 'Van den Berg', 'v.d. Berg'."""
    for prefix in TUSSENVOEGSELS:
        if family.startswith(prefix + " "):
            rest = family[len(prefix) + 1 :]
            choice = rnd.randrange(3)
            if choice == 0:
                return f"{rest} {prefix}"
            if choice == 1:
                return prefix[0].upper() + prefix[1:] + " " + rest
            short = ".".join(w[0] for w in prefix.split()) + "."
            return f"{short} {rest}"
    return family


@dataclass
class Identities:
    """Identity columns for each event of one source, and the truth about them."""

    registration: StrArray
    national_id: StrArray
    given_name: StrArray
    family_name: StrArray
    date_of_birth: StrArray  # ISO date, or None
    birth_year: np.ndarray  # int or None (set when only the year is delivered)
    sex: StrArray
    postcode: StrArray
    house_number: StrArray
    duplicate: BoolArray
    errors: StrArray  # '+'-joined labels of the errors in this event's identity


def attach_identities(
    rng: np.random.Generator,
    pop: Population,
    events: SourceEvents,
    quality: IdentityQuality,
    prefix: str,
    birth_year_only: BoolArray | None = None,
) -> Identities:
    """Identity fields of every event, with the source's registration errors applied."""
    rnd = random.Random(int(rng.integers(0, 2**63)))
    n = len(events)
    second = rng.random(pop.size) < quality.duplicate
    reg = np.where(second[events.person] & (rng.random(n) < 0.5), 1, 0)
    keys, inverse = np.unique(events.person * 2 + reg, return_inverse=True)
    rp = keys // 2
    r = len(keys)
    errors = [[] for _ in range(r)]  # type: list[list[str]]
    for i in np.flatnonzero(keys % 2 == 1):
        errors[i].append("duplicate_registration")

    def mark(mask: BoolArray, label: str) -> None:
        for i in np.flatnonzero(mask):
            errors[i].append(label)

    nid = pop.national_id[rp].copy()
    nid[rng.random(r) >= quality.national_id] = ""
    wrong = (rng.random(r) < quality.wrong_national_id) & (nid != "")
    other = np.minimum(rp + 1, pop.size - 1)
    wrong &= (
        (pop.household[other] == pop.household[rp]) & (other != rp) & (pop.national_id[other] != "")
    )
    nid[wrong] = pop.national_id[other[wrong]]
    mark(wrong, "family_member_national_id")

    given = pop.given_name[rp].copy()
    family = pop.used_surname[rp].copy()
    double = pop.double_surname[rp]
    u = rng.random(r)
    swapped = double & (u < quality.double_surname_swapped)
    birth_only = (
        double & ~swapped & (u < quality.double_surname_swapped + quality.double_surname_birth_name)
    )
    for i in np.flatnonzero(swapped):
        first, _, rest = family[i].partition("-")
        family[i] = f"{rest}-{first}"
    family[birth_only] = pop.birth_surname[rp][birth_only]
    mark(swapped, "double_surname_swapped")
    mark(birth_only, "birth_surname_only")
    for mask_name, rate in (("tussenvoegsel_variant", quality.tussenvoegsel_variant),):
        mask = rng.random(r) < rate
        changed = np.zeros(r, dtype=bool)
        for i in np.flatnonzero(mask):
            new = tussenvoegsel_variant(rnd, family[i])
            changed[i] = new != family[i]
            family[i] = new
        mark(changed, mask_name)
    diacritics = rng.random(r) < quality.drop_diacritics
    for i in np.flatnonzero(diacritics):
        given[i], family[i] = strip_diacritics(given[i]), strip_diacritics(family[i])
    for arr, label in ((given, "given_name_typo"), (family, "family_name_typo")):
        mask = rng.random(r) < quality.name_typo
        for i in np.flatnonzero(mask):
            arr[i] = typo(rnd, arr[i])
        mark(mask, label)
    init = rng.random(r) < quality.initials
    for i in np.flatnonzero(init):
        given[i] = initials(rnd, given[i])
    mark(init, "initials_only")
    no_given = rng.random(r) < quality.missing_given
    no_family = rng.random(r) < quality.missing_family
    given[no_given] = None
    family[no_family] = None
    mark(no_given, "given_name_missing")
    mark(no_family, "family_name_missing")

    dob = pop.dob[rp].astype("datetime64[D]")
    year = dob.astype("datetime64[Y]").astype(int) + 1970
    month = dob.astype("datetime64[M]").astype(int) % 12 + 1
    day = (dob - dob.astype("datetime64[M]")).astype(int) + 1
    swap = (rng.random(r) < quality.dob_day_month_swap) & (day <= 12) & (day != month)
    month, day = np.where(swap, day, month), np.where(swap, month, day)
    off = rng.random(r) < quality.dob_year_off
    # Off by one year, but never into the period (a birth date after the event is
    # rejected by validation, not a linkage error).
    up = (rng.random(r) < 0.5) & (year + 1 < pop.start.year)
    year = year + np.where(off, np.where(up, 1, -1), 0)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    day = np.where((month == 2) & (day == 29) & ~leap, 28, day)
    mark(swap, "day_month_swapped")
    mark(off, "birth_year_off_by_one")
    dob_text = np.array(
        [
            f"{y:04d}-{m:02d}-{d:02d}"
            for y, m, d in zip(year.tolist(), month.tolist(), day.tolist(), strict=True)
        ],
        dtype=object,
    )
    no_dob = rng.random(r) < quality.dob_missing
    dob_text[no_dob] = None
    mark(no_dob, "date_of_birth_missing")

    sex = pop.sex[rp].copy()
    sex_err = rng.random(r) < quality.sex_error
    sex[sex_err] = np.where(
        rng.random(int(sex_err.sum())) < 0.5, "U", np.where(sex[sex_err] == "M", "F", "M")
    )
    mark(sex_err, "sex_miscoded")
    stale = rng.random(r) < quality.stale_address

    # Per event: the address on the event's date (or a stale one), with entry errors.
    person = events.person
    moved = events.day >= pop.move_day[person]
    use_new = moved & ~stale[inverse]
    postcode = np.where(use_new, pop.new_postcode[person], pop.postcode[person]).astype(object)
    house = np.where(use_new, pop.new_house_number[person], pop.house_number[person]).astype(object)
    ev_errors = np.array(["+".join(e) for e in errors], dtype=object)[inverse]
    stale_used = moved & stale[inverse]
    pc_typo = rng.random(n) < quality.postcode_typo
    for i in np.flatnonzero(pc_typo):
        pc = postcode[i]
        swapped_letters = pc[5] + pc[4]
        if pc[4] != pc[5] and swapped_letters not in ("SA", "SD", "SS"):
            postcode[i] = pc[:4] + swapped_letters
        else:  # a mistyped last digit instead
            postcode[i] = pc[:3] + str((int(pc[3]) + 1) % 10) + pc[4:]
    pc_missing = rng.random(n) < quality.postcode_missing
    postcode[pc_missing] = None
    hn_missing = rng.random(n) < quality.house_number_missing
    house[hn_missing] = None
    for mask, label in (
        (stale_used, "stale_address"),
        (pc_typo & ~pc_missing, "postcode_typo"),
        (pc_missing, "postcode_missing"),
        (hn_missing, "house_number_missing"),
    ):
        idx = np.flatnonzero(mask)
        ev_errors[idx] = [f"{e}+{label}" if e else label for e in ev_errors[idx]]

    dob_event = dob_text[inverse]
    birth_year = np.full(n, None, dtype=object)
    if birth_year_only is not None:
        years_only = birth_year_only & (dob_event != None)  # noqa: E711 (element-wise)
        birth_year[years_only] = [int(t[:4]) for t in dob_event[years_only]]
        dob_event = blank_where(years_only, dob_event)

    # Registration numbers are opaque: a random permutation, so they reveal no person.
    width = len(str(r))
    numbers = rng.permutation(r)
    registration = np.array([f"{prefix}{v:0{width}d}" for v in numbers.tolist()], dtype=object)[
        inverse
    ]
    return Identities(
        registration=registration,
        national_id=nid[inverse],
        given_name=given[inverse],
        family_name=family[inverse],
        date_of_birth=dob_event,
        birth_year=birth_year,
        sex=sex[inverse],
        postcode=postcode,
        house_number=house,
        duplicate=(keys % 2 == 1)[inverse],
        errors=ev_errors,
    )
