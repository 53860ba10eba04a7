"""The synthetic population: areas, households, persons, COVID infections and post-COVID.

Every quantity is drawn with numpy from a seeded generator, so a seed gives the same
population on every machine. The calibration targets and where they come from (see the
project's domain notes):

* post-COVID in ``post_covid_rate`` of infections (default 10 %, within the published
  5.8 % Northern-NL GP EHR to 15 % Nivel narrow-definition range), more often in women
  (relative risk 1.7: female:male 1.5-1.9), peaking at ages 45-74 (prolonged PASC AOR
  45-59: 3.02, 60-74: 3.25, 75+: 2.44), with comorbidity relative risks (lung 1.95, CVD
  1.73, diabetes 1.82, kidney 1.98, mental illness 1.29) and a deprivation gradient
  Q5/Q1 = 1.4 (ONS CIS aOR 1.46, crude 11.4 % vs 8.2 %);
* SES quintiles are area-based cut-points of the areas' mean SES-WOA scores, as CBS
  defines its 20 % categories; here quintile 1 is the highest SES and 5 the lowest;
* COVID waves follow the Dutch epidemic's timing (spring 2020, autumn-winter 2020-21,
  Delta summer and autumn 2021, the large Omicron wave early 2022, BA.5 mid 2022), then
  yearly winter waves; each person has at most one infection in the period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

from linkwatch.schemas.synth import names

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
StrArray = npt.NDArray[np.object_]

EPOCH = date(1970, 1, 1)
AGE_BANDS = (0, 15, 25, 45, 65)  # CBS bands 0-14, 15-24, 25-44, 45-64, 65+
AGE_BAND_NAMES = ("0_14", "15_24", "25_44", "45_64", "65_plus")
COMORBIDITIES = ("lung", "cvd", "diabetes", "kidney", "mental")
# Relative risk of post-COVID per comorbidity (Northern-NL GP EHR study).
COMORBIDITY_RR = {"lung": 1.95, "cvd": 1.73, "diabetes": 1.82, "kidney": 1.98, "mental": 1.29}
# Prevalence at age 20 and at age 80 (logistic in age between them); rough Dutch orders of size.
COMORBIDITY_PREVALENCE = {
    "lung": (0.06, 0.18),
    "cvd": (0.01, 0.35),
    "diabetes": (0.01, 0.22),
    "kidney": (0.005, 0.15),
    "mental": (0.10, 0.08),
}
HOUSEHOLD_SIZES = (1, 2, 3, 4, 5)
HOUSEHOLD_SIZE_P = (0.38, 0.33, 0.12, 0.12, 0.05)
# COVID waves: (peak date, width in days (sd), expected infections per person).
WAVES = (
    (date(2020, 3, 28), 16, 0.04),
    (date(2020, 10, 25), 18, 0.06),
    (date(2020, 12, 28), 22, 0.07),
    (date(2021, 4, 15), 30, 0.06),
    (date(2021, 7, 15), 12, 0.04),
    (date(2021, 11, 25), 18, 0.08),
    (date(2022, 2, 5), 24, 0.30),
    (date(2022, 7, 5), 18, 0.10),
    (date(2022, 10, 15), 18, 0.05),
)
ENDEMIC_WINTER_WAVE = 0.08  # expected infections per person in each winter after 2022
POST_COVID_AGE_RR = ((0, 0.25), (18, 0.6), (30, 1.0), (45, 1.9), (60, 2.0), (75, 1.5))
POST_COVID_FEMALE_RR = 1.7
POST_COVID_QUINTILE_RR = (1.0, 1.1, 1.2, 1.3, 1.4)  # quintile 1 (highest SES) ... 5


def blank_where(mask: npt.ArrayLike, values: npt.ArrayLike) -> StrArray:
    """A copy of ``values`` as an object array with None where ``mask`` holds."""
    out = np.array(values, dtype=object, copy=True)
    out[np.asarray(mask, dtype=bool)] = None
    return out


def amsterdam_utc_offset_minutes(days: IntArray) -> IntArray:
    """Minutes Dutch local time is ahead of UTC on each day (60 in winter, 120 in summer)."""
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/Amsterdam")
    unique, inverse = np.unique(days, return_inverse=True)
    offsets = []
    for day in unique.tolist():
        delta = datetime.combine(from_days(day), time(12), tzinfo=zone).utcoffset()
        offsets.append(int(delta.total_seconds() // 60) if delta is not None else 0)
    return np.asarray(offsets, dtype=np.int64)[inverse]


def to_days(d: date) -> int:
    """Days since 1970-01-01, the integer form dates take inside the generator."""
    return (d - EPOCH).days


def from_days(days: int) -> date:
    """Inverse of :func:`to_days`."""
    return EPOCH + timedelta(days=int(days))


def weighted_choice(
    rng: np.random.Generator, table: tuple[tuple[str, float], ...], size: int
) -> StrArray:
    """Draw ``size`` labels from a (label, weight) table."""
    labels = np.array([t[0] for t in table], dtype=object)
    weights = np.array([t[1] for t in table], dtype=float)
    return labels[rng.choice(len(labels), size=size, p=weights / weights.sum())]


@dataclass
class Areas:
    """PC4 areas with their mean SES-WOA score and deprivation quintile."""

    pc4: IntArray
    ses_mean: FloatArray
    quintile: IntArray  # 1 = highest SES ... 5 = lowest SES
    weight: FloatArray  # share of households


def make_areas(rng: np.random.Generator, n_areas: int) -> Areas:
    """Draw PC4 codes, mean SES-WOA scores and area-based quintiles."""
    pc4 = np.sort(rng.choice(np.arange(1000, 10000), size=n_areas, replace=False)).astype(np.int64)
    ses = np.round(rng.normal(0.0, 0.3, n_areas), 3)
    cuts = np.quantile(ses, [0.2, 0.4, 0.6, 0.8])
    # Higher score = higher SES; quintile 1 is the highest fifth of areas.
    quintile = (5 - np.searchsorted(cuts, ses, side="right")).astype(np.int64)
    weight = rng.lognormal(0.0, 0.4, n_areas)
    return Areas(pc4, ses, quintile, weight / weight.sum())


@dataclass
class Population:
    """One row per person (arrays of equal length) and their households' addresses."""

    start: date
    end: date
    areas: Areas
    person_id: StrArray
    household: IntArray
    sex: StrArray  # 'M' or 'F'
    dob: IntArray  # days since epoch
    given_name: StrArray
    birth_surname: StrArray
    used_surname: StrArray
    double_surname: BoolArray
    national_id: StrArray  # '' when the person has no BSN
    area: IntArray  # index into areas (home at the start)
    postcode: StrArray
    house_number: StrArray
    move_day: IntArray  # day of moving house, or a day after the end when the person stays
    new_area: IntArray
    new_postcode: StrArray
    new_house_number: StrArray
    practice: IntArray
    comorbidity: dict[str, BoolArray]
    infection_day: IntArray  # -1 when not infected in the period
    post_covid: BoolArray
    post_covid_probability: FloatArray

    @property
    def size(self) -> int:
        """Number of persons."""
        return len(self.person_id)

    @property
    def start_day(self) -> int:
        """First day of the period (days since epoch)."""
        return to_days(self.start)

    @property
    def end_day(self) -> int:
        """Last day of the period (days since epoch)."""
        return to_days(self.end)

    def age_on(self, day: int | IntArray) -> IntArray:
        """Age in whole years on a day (approximate at birthdays: 365.25-day years)."""
        return ((np.asarray(day) - self.dob) / 365.25).astype(np.int64)

    @property
    def quintile(self) -> IntArray:
        """Deprivation quintile of each person's home area at the start."""
        return self.areas.quintile[self.area]


def _postcodes(rng: np.random.Generator, pc4: IntArray) -> StrArray:
    letters = np.array(list(names.POSTCODE_LETTERS), dtype=object)
    first = letters[rng.integers(0, len(letters), len(pc4))]
    second = letters[rng.integers(0, len(letters), len(pc4))]
    pair = first + second
    # SA, SD and SS are never issued; move them to another valid pair.
    pair[np.isin(pair, ["SA", "SD", "SS"])] = "SB"
    return np.asarray(pc4.astype(str).astype(object) + pair, dtype=object)


def _house_numbers(rng: np.random.Generator, n: int) -> StrArray:
    numbers = rng.geometric(1 / 40, n).clip(1, 999).astype(str).astype(object)
    additions = np.array(names.HOUSE_NUMBER_ADDITIONS, dtype=object)
    has_addition = rng.random(n) < 0.08
    numbers[has_addition] = (
        numbers[has_addition] + additions[rng.integers(0, len(additions), has_addition.sum())]
    )
    return numbers


def make_bsns(rng: np.random.Generator, n: int) -> StrArray:
    """``n`` distinct nine-digit numbers that pass the BSN eleven-test."""
    weights = np.array([9, 8, 7, 6, 5, 4, 3, 2])
    found: set[int] = set()
    out: list[int] = []
    while len(out) < n:
        need = int((n - len(out)) * 1.25) + 16
        prefix = rng.integers(10_000_000, 99_999_999, need)
        digits = (prefix[:, None] // 10 ** np.arange(7, -1, -1)) % 10
        check = (digits @ weights) % 11
        ok = check < 10
        for value in (prefix[ok] * 10 + check[ok]).tolist():
            if value not in found:
                found.add(value)
                out.append(value)
                if len(out) == n:
                    break
    return np.array([f"{v:09d}" for v in out], dtype=object)


def _logistic_prevalence(age: IntArray, young: float, old: float) -> FloatArray:
    frac = 1 / (1 + np.exp(-(age - 55) / 10))
    return young + (old - young) * frac


def wave_intensity(start: date, end: date) -> FloatArray:
    """Expected infections per person on each day of the period."""
    days = np.arange(to_days(start), to_days(end) + 1)
    intensity = np.zeros(len(days))
    waves = list(WAVES)
    for year in range(2023, end.year + 1):
        waves.append((date(year - 1, 12, 20), 25, ENDEMIC_WINTER_WAVE))
        waves.append((date(year, 7, 15), 20, ENDEMIC_WINTER_WAVE / 2))
    for peak, width, total in waves:
        density = np.exp(-0.5 * ((days - to_days(peak)) / width) ** 2)
        intensity += total * density / (width * np.sqrt(2 * np.pi))
    return np.asarray(intensity, dtype=np.float64)


def make_population(
    seeds: list[np.random.SeedSequence],
    persons: int,
    start: date,
    end: date,
    post_covid_rate: float,
) -> Population:
    """Draw the whole population (deterministic for given seeds)."""
    rng = np.random.default_rng(seeds[0])
    areas = make_areas(rng, max(10, persons // 1500))

    # Households: sizes, area, address.
    sizes = rng.choice(HOUSEHOLD_SIZES, size=persons, p=HOUSEHOLD_SIZE_P)
    n_households = int(np.searchsorted(np.cumsum(sizes), persons)) + 1
    sizes = sizes[:n_households]
    sizes[-1] -= int(sizes.sum() - persons)
    household = np.repeat(np.arange(n_households), sizes)
    member = np.arange(persons) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    hh_area = rng.choice(len(areas.pc4), size=n_households, p=areas.weight)
    hh_postcode = _postcodes(rng, areas.pc4[hh_area])
    hh_house_number = _house_numbers(rng, n_households)

    # Ages: singles and couples span all adult ages; larger households are families
    # with a head of 25-60 and children born when the head was 20-40.
    start_day = to_days(start)
    head_age = np.select(
        [sizes == 1, sizes == 2],
        [rng.triangular(18, 40, 100, n_households), rng.triangular(20, 68, 98, n_households)],
        rng.triangular(25, 40, 60, n_households),
    )
    ha = head_age[household]
    partner_age = ha + rng.normal(0, 3, persons)
    child_age = ha - rng.uniform(20, 40, persons)
    age = np.where(member == 0, ha, np.where(member == 1, partner_age, child_age))
    age = np.clip(age, 0, 104)
    dob = (start_day - age * 365.25).astype(np.int64) - rng.integers(0, 365, persons)
    head_sex = np.where(rng.random(n_households) < 0.5, "M", "F").astype(object)
    hs = head_sex[household]
    partner_sex = np.where(rng.random(persons) < 0.93, np.where(hs == "M", "F", "M"), hs)
    sex = np.where(
        member == 0,
        hs,
        np.where(member == 1, partner_sex, np.where(rng.random(persons) < 0.5, "M", "F")),
    ).astype(object)

    # Names: the household's surname for the head and children, a partner's own name,
    # and for some women the double surname "partner's name-own name".
    hh_surname = weighted_choice(rng, names.FAMILY_NAMES, n_households)
    own = weighted_choice(rng, names.FAMILY_NAMES, persons)
    birth_surname = np.where(member == 1, own, hh_surname[household]).astype(object)
    head_surname = hh_surname[household]
    double = (
        (member == 1) & (sex == "F") & (rng.random(persons) < 0.3) & (birth_surname != head_surname)
    )
    used_surname = birth_surname.copy()
    used_surname[double] = head_surname[double] + "-" + birth_surname[double]
    given = np.empty(persons, dtype=object)
    male = sex == "M"
    given[male] = weighted_choice(rng, names.MALE_GIVEN_NAMES, int(male.sum()))
    given[~male] = weighted_choice(rng, names.FEMALE_GIVEN_NAMES, int((~male).sum()))

    # National identifier: about 1 % are not registered and have none.
    bsn = make_bsns(rng, persons)
    bsn[rng.random(persons) < 0.01] = ""

    # Moves: 8 % move once during the period, 60 % of them within their area.
    end_day = to_days(end)
    moves = rng.random(persons) < 0.08
    move_day = np.where(moves, rng.integers(start_day, end_day + 1, persons), end_day + 1)
    area = hh_area[household]
    new_area = np.where(
        rng.random(persons) < 0.6, area, rng.choice(len(areas.pc4), size=persons, p=areas.weight)
    )
    new_postcode = _postcodes(rng, areas.pc4[new_area])
    new_house_number = _house_numbers(rng, persons)

    # GP practices cover contiguous runs of areas (about 3,000 listed patients each).
    n_practices = max(3, persons // 3000)
    practice_of_area = (np.arange(len(areas.pc4)) * n_practices) // len(areas.pc4)
    practice = practice_of_area[area]

    comorbidity = {}
    age_now = np.asarray(age, dtype=np.int64)
    for name in COMORBIDITIES:
        young, old = COMORBIDITY_PREVALENCE[name]
        comorbidity[name] = rng.random(persons) < _logistic_prevalence(age_now, young, old)

    # Infections, then post-COVID among the infected.
    rng_inf = np.random.default_rng(seeds[1])
    intensity = wave_intensity(start, end)
    p_infected = 1 - np.exp(-intensity.sum())
    infected = rng_inf.random(persons) < p_infected
    days = rng_inf.choice(len(intensity), size=persons, p=intensity / intensity.sum()) + start_day
    infection_day = np.where(infected, days, -1)

    quintile = areas.quintile[area]
    age_at_infection = ((infection_day - dob) / 365.25).astype(np.int64)
    rr = np.ones(persons)
    for lower, value in POST_COVID_AGE_RR:
        rr = np.where(age_at_infection >= lower, value, rr)
    rr *= np.where(sex == "F", POST_COVID_FEMALE_RR, 1.0)
    comorbid_rr = np.ones(persons)
    for name, value in COMORBIDITY_RR.items():
        comorbid_rr *= np.where(comorbidity[name], value, 1.0)
    rr *= np.minimum(comorbid_rr, 3.0)
    rr *= np.asarray(POST_COVID_QUINTILE_RR)[quintile - 1]
    mean_rr = rr[infected].mean() if infected.any() else 1.0
    probability = np.where(infected, np.minimum(post_covid_rate * rr / mean_rr, 0.9), 0.0)
    post_covid = rng_inf.random(persons) < probability

    width = len(str(persons))
    person_id = np.array([f"P{i:0{width}d}" for i in range(persons)], dtype=object)
    return Population(
        start=start,
        end=end,
        areas=areas,
        person_id=person_id,
        household=household,
        sex=sex,
        dob=dob,
        given_name=given,
        birth_surname=birth_surname,
        used_surname=used_surname,
        double_surname=double,
        national_id=bsn,
        area=area,
        postcode=hh_postcode[household],
        house_number=hh_house_number[household],
        move_day=move_day,
        new_area=new_area,
        new_postcode=new_postcode,
        new_house_number=new_house_number,
        practice=practice,
        comorbidity=comorbidity,
        infection_day=infection_day,
        post_covid=post_covid,
        post_covid_probability=probability,
    )
