"""Provider events for the synthetic population: GP consultations, OOH contacts, admissions.

Each source's events are drawn as numpy columns: a background rate for everyone (by age
and sex, with winter seasonality for respiratory codes), COVID index contacts around
infections, symptom consultations 4-52 weeks after infection for people with post-COVID,
and OOH and hospital use with U07.1 / U07.2 / U09.9. Practices differ in how often they
code a contact at all and in whether they use the NHG COVID subcode.

Rates are round numbers chosen to resemble published Dutch figures where there are
some: background tiredness consultations 92 per 1,000 patients a year; post-COVID
patients consult for on average 4.6 distinct symptoms (Nivel narrow definition); about
0.25 out-of-hours contacts per resident a year (4.3 M contacts, 17.4 M residents) with
telephone ~42 %, consultation at the post ~49 %, visits the rest; about 0.1 hospital
admissions per resident a year.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from linkwatch.schemas.synth.population import (
    BoolArray,
    FloatArray,
    IntArray,
    Population,
    StrArray,
    amsterdam_utc_offset_minutes,
    blank_where,
    to_days,
)

# (ICPC code, contacts per person-year at multiplier 1, winter-seasonal)
GP_BACKGROUND: tuple[tuple[str, float, bool], ...] = (
    ("A04", 0.092, False), ("R05", 0.12, True), ("R02", 0.04, True), ("P20", 0.015, False),
    ("K04", 0.02, False), ("N16", 0.004, False), ("A11", 0.02, False), ("K01", 0.01, False),
    ("L04", 0.01, False), ("P06", 0.04, False), ("N01", 0.05, False), ("L18", 0.03, False),
    ("N17", 0.03, False), ("P01", 0.04, False), ("P03", 0.03, False), ("P74", 0.015, False),
    ("P76", 0.02, False), ("A28", 0.005, False), ("R04", 0.01, True), ("R98", 0.005, False),
    ("R74", 0.22, True), ("R78", 0.05, True), ("R80", 0.015, True), ("R81", 0.01, True),
    ("A77", 0.01, True), ("A03", 0.03, True), ("L03", 0.12, False), ("S88", 0.05, False),
    ("H81", 0.06, False), ("U71", 0.08, False), ("D73", 0.05, False), ("K86", 0.08, False),
    ("A97", 0.20, False), ("L15", 0.06, False), ("L92", 0.06, False), ("S03", 0.03, False),
    ("D01", 0.06, False), ("S18", 0.05, False), ("H01", 0.04, True), ("F70", 0.03, False),
    ("R75", 0.04, True), ("R96", 0.01, True), ("W11", 0.03, False), ("X14", 0.02, False),
    ("L17", 0.02, False), ("S74", 0.03, False), ("D12", 0.02, False), ("K85", 0.04, False),
)  # fmt: skip
GP_CHRONIC_CODES = {
    "lung": ("R95", "R96"),
    "cvd": ("K77", "K75", "K76", "K90", "K86"),
    "diabetes": ("T90.02", "T90"),
    "kidney": ("U99.01", "U99"),
    "mental": ("P76", "P74", "P03"),
}
CHRONIC_CONTACTS_PER_YEAR = 2.0
# Post-COVID symptom codes by exploratory subtype (fatigue/cognitive, cardiorespiratory, mixed).
POST_COVID_SUBTYPES: tuple[tuple[tuple[str, float], ...], ...] = (
    (("A04", 5), ("P20", 3), ("P06", 2), ("N01", 2), ("L18", 2), ("P01", 1), ("P03", 1),
     ("A28", 1), ("N17", 1)),
    (("R02", 5), ("K04", 3), ("A11", 2), ("R05", 3), ("K01", 1), ("L04", 1), ("R04", 1),
     ("R98", 1), ("A04", 2)),
    (("A04", 3), ("R02", 2), ("N16", 2), ("P20", 2), ("K04", 1), ("R05", 1), ("N01", 1),
     ("L18", 1), ("P01", 1)),
)  # fmt: skip
POST_COVID_EXTRA_SYMPTOMS = 3.6  # 1 + Poisson(3.6): mean 4.6 consulted symptoms
GP_CONTACT_TYPES = (
    ("CONSULTATION", 0.62),
    ("TELEPHONE", 0.30),
    ("HOME_VISIT", 0.03),
    ("E_CONSULTATION", 0.05),
)
NHG_COVID_SUBCODE_FROM = date(2021, 4, 1)
SUSPECTED_ERA_END = date(2020, 6, 1)  # before broad testing, GPs coded suspected COVID

# Out-of-hours: (NTS-style entry complaint, ICPC code, weight). Complaint names are
# illustrative Dutch labels, not the official NTS list.
OOH_COMPLAINTS: tuple[tuple[str, str, float], ...] = (
    ("Koorts", "A03", 10), ("Hoesten", "R05", 6), ("Kortademigheid", "R02", 6),
    ("Buikpijn", "D01", 9), ("Wond", "S18", 8), ("Pijn op de borst", "A11", 5),
    ("Hoofdpijn", "N01", 4), ("Huidklachten", "S88", 5), ("Plasproblemen", "U71", 6),
    ("Duizeligheid", "N17", 3), ("Rugpijn", "L03", 4), ("Oorpijn", "H01", 4),
    ("Keelpijn", "R74", 6), ("Braken", "D10", 4), ("Hartkloppingen", "K04", 2),
    ("Angst of paniek", "P01", 2), ("Verward gedrag", "P71", 1),
    ("Letsel van arm of been", "L76", 4),
)  # fmt: skip
OOH_POST_COVID = (
    ("Kortademigheid", "R02", 4),
    ("Hartkloppingen", "K04", 3),
    ("Pijn op de borst", "A11", 3),
    ("Duizeligheid", "N17", 1),
    ("Angst of paniek", "P01", 1),
)
OOH_TYPES = (("TELEPHONE", 0.42), ("CONSULTATION", 0.49), ("HOME_VISIT", 0.09))
# Urgency by contact type: telephone mostly U5, consultations mostly U3, visits U2/U3.
OOH_URGENCY = {
    "TELEPHONE": (0.0, 0.0, 0.05, 0.15, 0.25, 0.55),
    "CONSULTATION": (0.0, 0.0, 0.15, 0.55, 0.25, 0.05),
    "HOME_VISIT": (0.005, 0.095, 0.45, 0.40, 0.05, 0.0),
}
# Hour-of-day weights: weekday out-of-hours (17:00-08:00, peak 18-20h) and weekends (peak 10-12h).
WEEKDAY_HOURS = np.array(
    [2, 1.5, 1, 1, 1, 1, 1.5, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 12, 12, 9, 7, 5, 3], dtype=float
)
WEEKEND_HOURS = np.array(
    [2, 1.5, 1, 1, 1, 1, 1.5, 3, 6, 9, 10, 10, 8, 7, 7, 6, 6, 7, 8, 8, 6, 5, 4, 3], dtype=float
)

# Hospital: (ICD-10 main diagnosis, weight, typical care type)
HOSPITAL_MAIN: tuple[tuple[str, float, str], ...] = (
    ("I20.9", 4, "CLINICAL"), ("I21.9", 3, "CLINICAL"), ("I48.9", 4, "CLINICAL"),
    ("I50.9", 4, "CLINICAL"), ("I63.9", 3, "CLINICAL"), ("J18.9", 5, "CLINICAL"),
    ("J44.1", 3, "CLINICAL"), ("K35.8", 2, "CLINICAL"), ("K80.2", 3, "DAY_ADMISSION"),
    ("K40.9", 3, "DAY_ADMISSION"), ("N39.0", 3, "CLINICAL"), ("S72.0", 2, "CLINICAL"),
    ("S52.5", 2, "DAY_ADMISSION"), ("M17.1", 3, "CLINICAL"), ("M16.1", 2, "CLINICAL"),
    ("C18.9", 2, "CLINICAL"), ("C34.9", 2, "CLINICAL"), ("C50.9", 2, "DAY_ADMISSION"),
    ("O80", 4, "CLINICAL"), ("Z51.1", 6, "DAY_ADMISSION"), ("H25.9", 6, "DAY_ADMISSION"),
    ("R07.4", 3, "LONG_OBSERVATION"), ("R10.4", 3, "LONG_OBSERVATION"), ("G45.9", 1, "CLINICAL"),
)  # fmt: skip
HOSPITAL_SECONDARY = ("I10", "E11.9", "J44.9", "N18.9", "F32.9", "E78.0", "I48.9", "E66.9")
POST_COVID_HOSPITAL_MAIN = ("R06.0", "R53", "I26.9", "R07.4", "R00.2")
CODING_LAG_DAYS = 60


@dataclass
class SourceEvents:
    """Events of one source before identities are attached (equal-length columns)."""

    source: str
    person: IntArray
    day: IntArray
    kind: StrArray  # background, covid, post_covid or injected:<name>
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.person)


def concat_events(parts: list[SourceEvents]) -> SourceEvents:
    """One SourceEvents of several with the same columns."""
    names = parts[0].columns.keys()
    return SourceEvents(
        parts[0].source,
        np.concatenate([p.person for p in parts]),
        np.concatenate([p.day for p in parts]),
        np.concatenate([p.kind for p in parts]),
        {n: np.concatenate([p.columns[n] for p in parts]) for n in names},
    )


def _choice(rng: np.random.Generator, table: tuple[tuple[str, float], ...], n: int) -> StrArray:
    labels = np.array([t[0] for t in table], dtype=object)
    w = np.array([t[1] for t in table], dtype=float)
    return labels[rng.choice(len(labels), n, p=w / w.sum())]


def _seasonal_days(rng: np.random.Generator, pop: Population, n: int) -> IntArray:
    """Days in the period with winter peaks (rate ∝ 1 + 0.6 cos(2π(day of year - 15)/365))."""
    days = np.arange(pop.start_day, pop.end_day + 1)
    doy = (days - pop.start_day + (pop.start - date(pop.start.year, 1, 1)).days) % 365
    w = 1 + 0.6 * np.cos(2 * np.pi * (doy - 15) / 365.25)
    return np.asarray(rng.choice(days, n, p=w / w.sum()), dtype=np.int64)


def _age_multiplier(age: IntArray, table: tuple[tuple[int, float], ...]) -> FloatArray:
    out = np.ones(len(age))
    for lower, value in table:
        out = np.where(age >= lower, value, out)
    return out


def _in_period(pop: Population, person: IntArray, day: IntArray) -> BoolArray:
    return (day >= pop.start_day) & (day <= pop.end_day) & (day >= pop.dob[person])


@dataclass(frozen=True)
class Practices:
    """Per-practice behaviour: how often contacts are coded, and vendor habits."""

    coding_propensity: FloatArray
    uses_covid_subcode: BoolArray
    birth_year_only: BoolArray

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int) -> Practices:
        """Draw practice habits; coding propensity ~ Beta(9, 2), mean 0.82.

        Nivel keeps practices that code at least 70 % of encounters for research.
        """
        return cls(
            coding_propensity=rng.beta(9, 2, n),
            uses_covid_subcode=rng.random(n) < 0.35,
            birth_year_only=rng.random(n) < 0.4,
        )


def raw_gp_events(rng: np.random.Generator, pop: Population, practices: Practices) -> SourceEvents:
    """GP consultations before coding: background, chronic disease, COVID index, post-COVID.

    Pass the result (with any injected signal added) through :func:`finish_gp`.
    """
    years = (pop.end_day - pop.start_day + 1) / 365.25
    mid_age = pop.age_on((pop.start_day + pop.end_day) // 2)
    multiplier = _age_multiplier(
        mid_age, ((0, 1.3), (5, 0.6), (18, 0.8), (45, 1.1), (65, 1.5), (75, 2.0))
    )
    multiplier *= np.where(pop.sex == "F", 1.25, 1.0)
    codes = np.array([c for c, _, _ in GP_BACKGROUND], dtype=object)
    rates = np.array([r for _, r, _ in GP_BACKGROUND])
    seasonal = np.array([s for _, _, s in GP_BACKGROUND])
    counts = rng.poisson(rates.sum() * multiplier * years)
    person = np.repeat(np.arange(pop.size), counts)
    which = rng.choice(len(codes), len(person), p=rates / rates.sum())
    day = np.where(
        seasonal[which],
        _seasonal_days(rng, pop, len(person)),
        rng.integers(pop.start_day, pop.end_day + 1, len(person)),
    )
    parts = [_gp_part(person, day, codes[which], "background")]

    for name, chronic_codes in GP_CHRONIC_CODES.items():
        has = np.flatnonzero(pop.comorbidity[name])
        n = rng.poisson(CHRONIC_CONTACTS_PER_YEAR * years, len(has))
        p = np.repeat(has, n)
        code = np.array(chronic_codes, dtype=object)[rng.integers(0, len(chronic_codes), len(p))]
        parts.append(
            _gp_part(p, rng.integers(pop.start_day, pop.end_day + 1, len(p)), code, "background")
        )

    # COVID index contacts: GP consulted for a minority of infections, fewer with Omicron.
    infected = np.flatnonzero(pop.infection_day >= 0)
    inf_day = pop.infection_day[infected]
    p_gp = np.where(inf_day < to_days(date(2022, 1, 1)), 0.22, 0.07)
    p_gp = p_gp * np.where(pop.age_on(pop.infection_day)[infected] >= 60, 1.5, 1.0)
    p_gp = p_gp * np.where(pop.post_covid[infected], 2.0, 1.0)
    index = infected[rng.random(len(infected)) < np.minimum(p_gp, 0.9)]
    day0 = pop.infection_day[index] + rng.integers(0, 8, len(index))
    suspected_era = day0 < to_days(SUSPECTED_ERA_END)
    suspected = rng.random(len(index)) < np.where(suspected_era, 0.7, 0.2)
    code = np.where(suspected, "R74", "R83").astype(object)
    subcode = (
        (code == "R83")
        & practices.uses_covid_subcode[pop.practice[index]]
        & (day0 >= to_days(NHG_COVID_SUBCODE_FROM))
    )
    code[subcode] = "R83.03"
    follow = rng.random(len(index)) < 0.3
    parts.append(_gp_part(index, day0, code, "covid"))
    parts.append(
        _gp_part(
            index[follow], day0[follow] + rng.integers(7, 22, follow.sum()), code[follow], "covid"
        )
    )

    # Post-COVID: 1 + Poisson(3.6) symptom consultations 4-52 weeks after infection.
    pc = np.flatnonzero(pop.post_covid)
    n = 1 + rng.poisson(POST_COVID_EXTRA_SYMPTOMS, len(pc))
    p = np.repeat(pc, n)
    subtype = rng.integers(0, len(POST_COVID_SUBTYPES), len(pc))
    sub = np.repeat(subtype, n)
    code = np.empty(len(p), dtype=object)
    for s, table in enumerate(POST_COVID_SUBTYPES):
        mask = sub == s
        code[mask] = _choice(rng, table, int(mask.sum()))
    offset = 28 + np.minimum(rng.exponential(70, len(p)), 336).astype(np.int64)
    parts.append(_gp_part(p, pop.infection_day[p] + offset, code, "post_covid"))

    return concat_events(parts)


def _gp_part(person: IntArray, day: IntArray, code: StrArray, kind: str) -> SourceEvents:
    return SourceEvents(
        "gp_consultation",
        np.asarray(person, dtype=np.int64),
        np.asarray(day, dtype=np.int64),
        np.full(len(person), kind, dtype=object),
        {"icpc_code": np.asarray(code, dtype=object)},
    )


def finish_gp(
    rng: np.random.Generator, pop: Population, practices: Practices, events: SourceEvents
) -> SourceEvents:
    """Drop events outside the period, apply practice coding, derive episodes and contact types."""
    keep = _in_period(pop, events.person, events.day)
    ev = SourceEvents(
        events.source,
        events.person[keep],
        events.day[keep],
        events.kind[keep],
        {k: v[keep] for k, v in events.columns.items()},
    )
    n = len(ev)
    practice = pop.practice[ev.person]
    code = ev.columns["icpc_code"]
    chronic = np.isin(code, [c for codes in GP_CHRONIC_CODES.values() for c in codes])
    coded = rng.random(n) < np.minimum(
        practices.coding_propensity[practice] + np.where(chronic, 0.1, 0.0), 1.0
    )
    code = blank_where(~coded, code)
    # Episodes: contacts of one person with one code form one episode of care; chronic
    # episodes started before the period. Uncoded contacts are episodes of their own.
    known, code_index = np.unique(np.where(coded, code, "").astype(str), return_inverse=True)
    key = np.where(coded, ev.person * (len(known) + 1) + code_index, -1 - np.arange(n))
    episodes, inverse = np.unique(key, return_inverse=True)
    first_day = np.full(len(episodes), np.iinfo(np.int64).max)
    np.minimum.at(first_day, inverse, ev.day)
    start = first_day[inverse]
    chronic_start = start - rng.integers(0, 3650, len(episodes))[inverse]
    start = np.where(chronic, np.maximum(chronic_start, pop.dob[ev.person]), start)
    contact_type = _choice(rng, GP_CONTACT_TYPES, n)
    contact_type[(ev.kind == "covid") & (rng.random(n) < 0.5)] = "TELEPHONE"
    ev.columns = {
        "icpc_code": code,
        "episode_id": np.char.add("EP", inverse.astype(str)).astype(object),
        "episode_start_date": start,
        "contact_type": contact_type,
        "practice": practice,
    }
    return ev


def ooh_events(rng: np.random.Generator, pop: Population) -> SourceEvents:
    """Out-of-hours contacts: background, around COVID infections, and post-COVID."""
    years = (pop.end_day - pop.start_day + 1) / 365.25
    age = pop.age_on((pop.start_day + pop.end_day) // 2)
    mult = _age_multiplier(age, ((0, 3.0), (5, 0.7), (18, 0.8), (65, 1.3), (80, 2.5)))
    counts = rng.poisson(0.25 * mult * years)
    person = np.repeat(np.arange(pop.size), counts)
    day = rng.integers(pop.start_day, pop.end_day + 1, len(person))
    table = tuple((f"{c}|{i}", w) for c, i, w in OOH_COMPLAINTS)
    parts = [(person, day, _choice(rng, table, len(person)), "background")]

    infected = np.flatnonzero(pop.infection_day >= 0)
    p = np.where(pop.age_on(pop.infection_day)[infected] >= 65, 0.08, 0.04)
    covid = infected[rng.random(len(infected)) < p]
    cday = pop.infection_day[covid] + rng.integers(0, 11, len(covid))
    ccode = np.where(cday < to_days(SUSPECTED_ERA_END), "R74", "R83")
    complaint = _choice(rng, (("Kortademigheid", 3), ("Koorts", 2), ("Hoesten", 2)), len(covid))
    parts.append((covid, cday, (complaint + "|" + ccode).astype(object), "covid"))

    pc = np.flatnonzero(pop.post_covid)
    n = rng.poisson(0.4, len(pc))
    pp = np.repeat(pc, n)
    pday = pop.infection_day[pp] + 28 + rng.integers(0, 337, len(pp))
    ptable = tuple((f"{c}|{i}", w) for c, i, w in OOH_POST_COVID)
    parts.append((pp, pday, _choice(rng, ptable, len(pp)), "post_covid"))

    person = np.concatenate([p_[0] for p_ in parts]).astype(np.int64)
    day = np.concatenate([p_[1] for p_ in parts]).astype(np.int64)
    pair = np.concatenate([p_[2] for p_ in parts])
    kind = np.concatenate([np.full(len(p_[0]), p_[3], dtype=object) for p_ in parts])
    keep = _in_period(pop, person, day)
    person, day, pair, kind = person[keep], day[keep], pair[keep], kind[keep]
    n_events = len(person)
    split = np.array([s.split("|") for s in pair], dtype=object).reshape(n_events, 2)
    contact_type = _choice(rng, OOH_TYPES, n_events)
    urgency = np.empty(n_events, dtype=object)
    for kind_name, probs in OOH_URGENCY.items():
        mask = contact_type == kind_name
        urgency[mask] = np.array(["U0", "U1", "U2", "U3", "U4", "U5"], dtype=object)[
            rng.choice(6, int(mask.sum()), p=np.asarray(probs) / sum(probs))
        ]
    urgency[rng.random(n_events) < 0.01] = None  # a few contacts are never triaged
    referral = np.full(n_events, "NONE", dtype=object)
    r = rng.random(n_events)
    urgent = np.isin(urgency, ["U0", "U1", "U2"])
    referral[(r < 0.15)] = "OWN_GP"
    referral[urgent & (r < 0.35)] = "EMERGENCY_DEPARTMENT"
    referral[np.isin(urgency, ["U0", "U1"]) & (r < 0.5)] = "AMBULANCE"
    referral[~urgent & (r > 0.95)] = "MEDICAL_SPECIALIST"
    weekend = ((day + 3) % 7) >= 5  # 1970-01-01 was a Thursday
    hours_w = rng.choice(24, n_events, p=WEEKDAY_HOURS / WEEKDAY_HOURS.sum())
    hours_e = rng.choice(24, n_events, p=WEEKEND_HOURS / WEEKEND_HOURS.sum())
    local_minute = np.where(weekend, hours_e, hours_w) * 60 + rng.integers(0, 60, n_events)
    # Hours are drawn in Dutch local time; the schema stores UTC.
    minute = local_minute - amsterdam_utc_offset_minutes(day)
    icpc = split[:, 1].copy()
    icpc[rng.random(n_events) < 0.08] = None  # some contacts leave no diagnosis code
    return SourceEvents(
        "ooh_contact",
        person,
        day,
        kind,
        {
            "contact_minute": day * 1440 + minute,
            "contact_type": contact_type,
            "urgency": urgency,
            "entry_complaint": split[:, 0].copy(),
            "icpc_code": icpc,
            "referral": referral,
        },
    )


def hospital_events(rng: np.random.Generator, pop: Population) -> SourceEvents:
    """Hospital admissions: background, COVID (U07.1/U07.2, incidental), post-COVID (U09.9)."""
    years = (pop.end_day - pop.start_day + 1) / 365.25
    age = pop.age_on((pop.start_day + pop.end_day) // 2)
    mult = _age_multiplier(age, ((0, 0.4), (18, 0.6), (45, 1.0), (65, 2.2), (75, 3.5)))
    counts = rng.poisson(0.08 * mult * years)
    person = np.repeat(np.arange(pop.size), counts)
    day = rng.integers(pop.start_day, pop.end_day + 1, len(person))
    labels = np.arange(len(HOSPITAL_MAIN))
    w = np.array([t[1] for t in HOSPITAL_MAIN], dtype=float)
    which = rng.choice(labels, len(person), p=w / w.sum())
    main = np.array([t[0] for t in HOSPITAL_MAIN], dtype=object)[which]
    care = np.array([t[2] for t in HOSPITAL_MAIN], dtype=object)[which]
    # Births only for women of child-bearing age; others get pneumonia instead.
    bad_birth = (main == "O80") & (
        (pop.sex[person] != "F") | (age[person] < 18) | (age[person] > 45)
    )
    main[bad_birth] = "J18.9"
    kinds = [np.full(len(person), "background", dtype=object)]
    persons, days, mains, cares = [person], [day], [main], [care]

    infected = np.flatnonzero(pop.infection_day >= 0)
    inf_age = pop.age_on(pop.infection_day)[infected]
    p = _age_multiplier(inf_age, ((0, 0.002), (45, 0.01), (65, 0.03), (75, 0.06)))
    p = p * np.where(pop.infection_day[infected] >= to_days(date(2022, 1, 1)), 0.3, 1.0)
    comorbid = np.zeros(pop.size, dtype=bool)
    for flags in pop.comorbidity.values():
        comorbid |= flags
    p = p * np.where(comorbid[infected], 1.5, 1.0)
    admitted = infected[rng.random(len(infected)) < p]
    persons.append(admitted)
    days.append(pop.infection_day[admitted] + rng.integers(3, 11, len(admitted)))
    mains.append(np.where(rng.random(len(admitted)) < 0.9, "U07.1", "U07.2").astype(object))
    cares.append(np.full(len(admitted), "CLINICAL", dtype=object))
    kinds.append(np.full(len(admitted), "covid", dtype=object))

    pc = np.flatnonzero(pop.post_covid)
    pc = pc[rng.random(len(pc)) < 0.03]
    persons.append(pc)
    days.append(pop.infection_day[pc] + 28 + rng.integers(0, 337, len(pc)))
    mains.append(
        np.array(POST_COVID_HOSPITAL_MAIN, dtype=object)[
            rng.integers(0, len(POST_COVID_HOSPITAL_MAIN), len(pc))
        ]
    )
    cares.append(np.full(len(pc), "CLINICAL", dtype=object))
    kinds.append(np.full(len(pc), "post_covid", dtype=object))

    person = np.concatenate(persons).astype(np.int64)
    day = np.concatenate(days).astype(np.int64)
    main = np.concatenate(mains)
    care = np.concatenate(cares)
    kind = np.concatenate(kinds)
    keep = _in_period(pop, person, day)
    person, day, main, care, kind = person[keep], day[keep], main[keep], care[keep], kind[keep]
    n = len(person)

    stay = np.where(care == "CLINICAL", 1 + rng.geometric(1 / 5, n), 0)
    stay = np.where(kind == "covid", 2 + rng.geometric(1 / 8, n), stay)
    discharge = day + stay
    admission_type = np.where(
        (kind != "background")
        | np.isin(main, ["I21.9", "I63.9", "J18.9", "S72.0", "K35.8", "N39.0"]),
        "ACUTE",
        np.where(rng.random(n) < 0.8, "ELECTIVE", "ACUTE"),
    ).astype(object)
    secondary = []
    u091_from = to_days(date(2020, 9, 1))
    n_sec = rng.poisson(0.8, n)
    sec_codes = np.array(HOSPITAL_SECONDARY, dtype=object)
    inf = pop.infection_day[person]
    incidental = (
        (kind == "background")
        & (inf >= 0)
        & (day >= inf)
        & (day <= inf + 14)
        & (rng.random(n) < 0.7)
    )
    post_code = (kind == "post_covid") & (day >= u091_from) & (rng.random(n) < 0.5)
    viral_pneumonia = (kind == "covid") & (rng.random(n) < 0.6)
    picks = rng.integers(0, len(sec_codes), (n, 3))
    for i in range(n):
        codes = list(dict.fromkeys(sec_codes[picks[i, : min(n_sec[i], 3)]]))
        if viral_pneumonia[i]:
            codes.insert(0, "J12.8")
        if incidental[i]:
            codes.append("U07.1")
        if post_code[i]:
            codes.insert(0, "U09.9")
        codes = [c for c in codes if c != main[i]]
        secondary.append(";".join(codes))
    secondary_arr = np.array(secondary, dtype=object)
    # Coding lag: recent admissions are often not yet coded.
    uncoded = (discharge > pop.end_day - CODING_LAG_DAYS) & (rng.random(n) < 0.4)
    main = blank_where(uncoded, main)
    secondary_arr[uncoded] = ""
    discharge_col = np.where(discharge > pop.end_day, -1, discharge)
    return SourceEvents(
        "hospital_episode",
        person,
        day,
        kind,
        {
            "discharge_day": discharge_col,
            "admission_type": admission_type,
            "care_type": care,
            "main_diagnosis": main,
            "secondary_diagnoses": secondary_arr,
        },
    )
