"""``linkwatch synth``: a seeded synthetic population and its provider extracts, with truth.

:func:`generate` draws everything in memory (deterministic for a seed: every step has
its own child seed, so adding a signal does not change the population or the other
sources) and :func:`write_outputs` writes the files:

``<out>/areas.{csv,parquet}``
    the area table (PC4, year, households, mean SES-WOA score, quintile, population by
    age band and sex), one row per area and year;
``<out>/<source>.{csv,parquet}``
    provider extracts of ``gp_consultation``, ``ooh_contact`` and ``hospital_episode``
    in the layouts of :mod:`linkwatch.schemas.validation`, identifiers in clear text as
    the provider holds them (pseudonymisation happens when publishing);
``<out>/linkage/<source>.identity.csv`` and ``<out>/linkage/<source>.truth.csv``
    the identity of every record in the linkage CLI's input format
    (``record_id,source,national_id,given_name,family_name,date_of_birth,sex,postcode,
    house_number,city``; empty = missing; date of birth ``YYYY-MM-DD`` or ``YYYY``) and
    the true ``record_id,person_id``;
``<out>/truth/``
    ``persons`` (everything about each synthetic person), ``records`` (record ->
    person, registration, kind of event, identity errors, injected signal) and
    ``signals.json``; ``manifest.json`` records the configuration and counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from linkwatch.schemas.synth.extracts import (
    Practices,
    SourceEvents,
    concat_events,
    finish_gp,
    hospital_events,
    ooh_events,
    raw_gp_events,
)
from linkwatch.schemas.synth.identity import QUALITY, Identities, attach_identities
from linkwatch.schemas.synth.injection import Signal, SignalSpecError, inject
from linkwatch.schemas.synth.population import (
    AGE_BAND_NAMES,
    AGE_BANDS,
    COMORBIDITIES,
    Population,
    amsterdam_utc_offset_minutes,
    blank_where,
    make_population,
    to_days,
)
from linkwatch.schemas.validation import LAYOUTS

SOURCES = ("gp_consultation", "ooh_contact", "hospital_episode")
RECORD_PREFIX = {"gp_consultation": "gp", "ooh_contact": "ooh", "hospital_episode": "hosp"}
REGISTRATION_PREFIX = {"gp_consultation": "PAT", "ooh_contact": "HAPPAT", "hospital_episode": "ZNR"}
IDENTITY_FILE_COLUMNS = (
    "record_id", "source", "national_id", "given_name", "family_name",
    "date_of_birth", "sex", "postcode", "house_number", "city",
)  # fmt: skip
# Municipality by the first two digits of the postcode (approximate, for the city field).
CITY_BY_PC2 = {
    10: "Amsterdam", 11: "Amsterdam", 12: "Hilversum", 13: "Almere", 15: "Zaandam",
    16: "Hoorn", 18: "Alkmaar", 20: "Haarlem", 23: "Leiden", 24: "Alphen aan den Rijn",
    25: "Den Haag", 26: "Delft", 27: "Zoetermeer", 28: "Gouda", 30: "Rotterdam",
    31: "Schiedam", 33: "Dordrecht", 35: "Utrecht", 37: "Zeist", 38: "Amersfoort",
    42: "Gorinchem", 44: "Goes", 46: "Bergen op Zoom", 47: "Roosendaal", 48: "Breda",
    50: "Tilburg", 52: "'s-Hertogenbosch", 56: "Eindhoven", 57: "Helmond", 59: "Venlo",
    61: "Sittard", 62: "Maastricht", 64: "Heerlen", 65: "Nijmegen", 67: "Ede", 68: "Arnhem",
    70: "Doetinchem", 72: "Zutphen", 73: "Apeldoorn", 74: "Deventer", 75: "Enschede",
    76: "Almelo", 78: "Emmen", 79: "Hoogeveen", 80: "Zwolle", 82: "Lelystad",
    84: "Heerenveen", 86: "Sneek", 89: "Leeuwarden", 92: "Drachten", 94: "Assen",
    97: "Groningen", 99: "Delfzijl",
}  # fmt: skip
CITY_VARIANTS = {"Den Haag": "'s-Gravenhage", "'s-Hertogenbosch": "Den Bosch"}

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SynthConfig:
    """What to generate."""

    persons: int = 10_000
    years: int = 3
    start: date = date(2020, 1, 1)
    seed: int = 1
    post_covid_rate: float = 0.10
    signals: tuple[Signal, ...] = ()

    def __post_init__(self) -> None:
        if self.persons < 100:
            raise ValueError(f"persons={self.persons}: generate at least 100 persons")
        if not 1 <= self.years <= 20:
            raise ValueError(f"years={self.years}: expected 1 to 20")
        if not 0 < self.post_covid_rate < 0.5:
            raise ValueError(f"post_covid_rate={self.post_covid_rate}: expected between 0 and 0.5")
        for signal in self.signals:
            if not self.start <= signal.start <= self.end:
                raise SignalSpecError(
                    f"signal {signal.name}: start {signal.start} is outside the period "
                    f"{self.start} to {self.end}"
                )

    @property
    def end(self) -> date:
        """Last day of the period."""
        day = 28 if (self.start.month, self.start.day) == (2, 29) else self.start.day
        return date(self.start.year + self.years, self.start.month, day) - timedelta(days=1)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "persons": self.persons,
            "years": self.years,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "seed": self.seed,
            "post_covid_rate": self.post_covid_rate,
            "signals": [s.as_dict() for s in self.signals],
        }


@dataclass
class SynthData:
    """Everything generated, as Arrow tables."""

    config: SynthConfig
    population: Population
    extracts: dict[str, pa.Table]
    identity_files: dict[str, pa.Table]
    areas: pa.Table
    persons: pa.Table
    records: pa.Table
    signals: list[dict[str, Any]] = field(default_factory=list)


STEPS = 9


def generate(config: SynthConfig, progress: Progress | None = None) -> SynthData:
    """Draw the population and its extracts (deterministic for ``config``)."""
    report = progress or (lambda step, done, total: None)
    seeds = np.random.SeedSequence(config.seed).spawn(12)
    report("population", 0, STEPS)
    pop = make_population(
        seeds[:2], config.persons, config.start, config.end, config.post_covid_rate
    )
    practices = Practices.draw(np.random.default_rng(seeds[2]), int(pop.practice.max()) + 1)

    report("GP consultations", 1, STEPS)
    rng_gp = np.random.default_rng(seeds[3])
    raw = raw_gp_events(rng_gp, pop, practices)
    signals = []
    parts = [raw]
    signal_seeds = seeds[10].spawn(len(config.signals))
    for signal, seed in zip(config.signals, signal_seeds, strict=True):
        extra, truth = inject(np.random.default_rng(seed), pop, raw, signal)
        parts.append(extra)
        signals.append(truth)
    gp = finish_gp(rng_gp, pop, practices, concat_events(parts))

    report("out-of-hours contacts", 2, STEPS)
    ooh = ooh_events(np.random.default_rng(seeds[4]), pop)
    report("hospital episodes", 3, STEPS)
    hospital = hospital_events(np.random.default_rng(seeds[5]), pop)

    extracts: dict[str, pa.Table] = {}
    identity_files: dict[str, pa.Table] = {}
    records: list[pa.Table] = []
    for k, events in enumerate((gp, ooh, hospital)):
        source = events.source
        report(f"identities: {source}", 4 + k, STEPS)
        order = np.lexsort((events.person, events.day))
        events = _take(events, order)
        rng = np.random.default_rng(seeds[6 + k])
        years_only = None
        if source == "gp_consultation":
            years_only = practices.birth_year_only[events.columns["practice"]]
        ident = attach_identities(
            rng, pop, events, QUALITY[source], REGISTRATION_PREFIX[source], years_only
        )
        record_id = record_ids(RECORD_PREFIX[source], len(events))
        extracts[source] = _extract_table(rng, pop, events, ident, record_id)
        identity_files[source] = _identity_table(rng, source, ident, record_id)
        records.append(_records_table(source, pop, events, ident, record_id))

    report("areas and truth", 7, STEPS)
    data = SynthData(
        config=config,
        population=pop,
        extracts=extracts,
        identity_files=identity_files,
        areas=area_table(pop),
        persons=persons_table(pop),
        records=pa.concat_tables(records),
        signals=signals,
    )
    report("generated", 8, STEPS)
    return data


def _take(events: SourceEvents, order: np.ndarray) -> SourceEvents:
    return SourceEvents(
        events.source,
        events.person[order],
        events.day[order],
        events.kind[order],
        {k: v[order] for k, v in events.columns.items()},
    )


def _dates(days: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    """Arrow dates from days since 1970 (negative days are real dates before 1970)."""
    days = np.asarray(days, dtype=np.int64)
    return pa.array(days.astype(np.int32), mask=missing, type=pa.int32()).cast(pa.date32())


def _strings(values: np.ndarray | pa.Array) -> pa.Array:
    if isinstance(values, pa.Array):
        return values
    return pa.array(np.asarray(values, dtype=object), type=pa.string(), from_pandas=True)


def record_ids(prefix: str, n: int) -> pa.Array:
    """'<prefix>-00000001' ... built in Arrow (a Python loop costs seconds at a million rows)."""
    import pyarrow.compute as pc

    numbers = pc.utf8_lpad(pa.array(np.arange(1, n + 1)).cast(pa.string()), width=8, padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), numbers, "-")


def _timestamps(minutes: np.ndarray) -> pa.Array:
    ms = np.asarray(minutes, dtype=np.int64) * 60_000
    return pa.array(ms, type=pa.int64()).cast(pa.timestamp("ms", tz="UTC"))


def _provider_ids(pop: Population, events: SourceEvents) -> np.ndarray:
    region = (pop.areas.pc4[pop.area[events.person]] // 1000).astype(str).astype(object)
    if events.source == "gp_consultation":
        practice_ids = np.array(
            [f"GP{p:04d}" for p in range(int(pop.practice.max()) + 1)], dtype=object
        )
        return np.asarray(practice_ids[events.columns["practice"]], dtype=object)
    if events.source == "ooh_contact":
        return "HAP" + region
    return np.asarray("ZH" + region + (events.person % 2 + 1).astype(str).astype(object))


def _extract_table(
    rng: np.random.Generator,
    pop: Population,
    events: SourceEvents,
    ident: Identities,
    record_id: pa.Array,
) -> pa.Table:
    source = events.source
    n = len(events)
    c = events.columns
    if source == "ooh_contact":
        event_minute = c["contact_minute"] + rng.integers(5, 180, n)
    elif source == "hospital_episode":
        recorded = np.where(c["discharge_day"] >= 0, c["discharge_day"], events.day)
        event_minute = (recorded + rng.integers(1, 31, n)) * 1440 + 12 * 60
    else:
        local = rng.integers(8 * 60, 17 * 60, n)  # office hours, Dutch local time
        event_minute = events.day * 1440 + local - amsterdam_utc_offset_minutes(events.day)
    columns: dict[str, pa.Array] = {
        "source_record_id": _strings(record_id),
        "provider_id": _strings(_provider_ids(pop, events)),
        "event_time": _timestamps(event_minute),
        "national_id": _strings(blank_where(ident.national_id == "", ident.national_id)),
        "given_name": _strings(ident.given_name),
        "family_name": _strings(ident.family_name),
        "date_of_birth": _strings(ident.date_of_birth),
        "birth_year": pa.array(ident.birth_year.tolist(), type=pa.int32()),
        "sex": _strings(ident.sex),
        "postcode": _strings(ident.postcode),
        "house_number": _strings(ident.house_number),
    }
    if source == "gp_consultation":
        columns |= {
            "episode_id": _strings(c["episode_id"]),
            "icpc_code": _strings(c["icpc_code"]),
            "episode_start_date": _dates(c["episode_start_date"]),
            "contact_date": _dates(events.day),
            "contact_type": _strings(c["contact_type"]),
        }
    elif source == "ooh_contact":
        columns |= {
            "contact_start_time": _timestamps(c["contact_minute"]),
            "contact_type": _strings(c["contact_type"]),
            "urgency": _strings(c["urgency"]),
            "entry_complaint": _strings(c["entry_complaint"]),
            "icpc_code": _strings(c["icpc_code"]),
            "referral": _strings(c["referral"]),
        }
    else:
        columns |= {
            "admission_date": _dates(events.day),
            "discharge_date": _dates(c["discharge_day"], c["discharge_day"] < 0),
            "admission_type": _strings(c["admission_type"]),
            "care_type": _strings(c["care_type"]),
            "main_diagnosis": _strings(c["main_diagnosis"]),
            "secondary_diagnoses": _strings(c["secondary_diagnoses"]),
        }
    assert tuple(columns) == LAYOUTS[source].names, "extract columns follow the layout"
    return pa.table(columns)


def _city(rng: np.random.Generator, postcode: np.ndarray) -> np.ndarray:
    known = np.array(sorted(CITY_BY_PC2))
    out = np.full(len(postcode), None, dtype=object)
    has = np.array([p is not None for p in postcode.tolist()], dtype=bool)
    pc2 = np.array([int(p[:2]) if p is not None else 0 for p in postcode.tolist()])
    idx = np.clip(np.searchsorted(known, pc2, side="right") - 1, 0, len(known) - 1)
    names = np.array([CITY_BY_PC2[k] for k in known.tolist()], dtype=object)[idx]
    variant = rng.random(len(postcode)) < 0.3
    for i in np.flatnonzero(variant):
        names[i] = CITY_VARIANTS.get(names[i], names[i])
    upper = rng.random(len(postcode)) < 0.1
    names[upper] = [s.upper() for s in names[upper]]
    out[has] = names[has]
    return out


def _identity_table(
    rng: np.random.Generator, source: str, ident: Identities, record_id: pa.Array
) -> pa.Table:
    dob = np.where(
        ident.date_of_birth == None,  # noqa: E711 (element-wise)
        np.array(
            [None if y is None else f"{y:04d}" for y in ident.birth_year.tolist()], dtype=object
        ),
        ident.date_of_birth,
    )
    sex = blank_where(~np.isin(ident.sex, ["M", "F"]), ident.sex)
    return pa.table(
        {
            "record_id": _strings(record_id),
            "source": _strings(np.full(len(record_id), source, dtype=object)),
            "national_id": _strings(blank_where(ident.national_id == "", ident.national_id)),
            "given_name": _strings(ident.given_name),
            "family_name": _strings(ident.family_name),
            "date_of_birth": _strings(dob),
            "sex": _strings(sex),
            "postcode": _strings(ident.postcode),
            "house_number": _strings(ident.house_number),
            "city": _strings(_city(rng, ident.postcode)),
        }
    )


def _records_table(
    source: str, pop: Population, events: SourceEvents, ident: Identities, record_id: pa.Array
) -> pa.Table:
    kind = events.kind
    signal = np.full(len(kind), "", dtype=object)
    for value in set(kind.tolist()):
        if value.startswith("injected:"):
            signal[kind == value] = value.removeprefix("injected:")
    return pa.table(
        {
            "record_id": _strings(record_id),
            "source": _strings(np.full(len(record_id), source, dtype=object)),
            "person_id": _strings(pop.person_id[events.person]),
            "registration": _strings(ident.registration),
            "duplicate_registration": pa.array(ident.duplicate.tolist(), type=pa.bool_()),
            "kind": _strings(np.where(signal != "", "injected", kind).astype(object)),
            "signal": _strings(blank_where(signal == "", signal)),
            "identity_errors": _strings(blank_where(ident.errors == "", ident.errors)),
        }
    )


def area_table(pop: Population) -> pa.Table:
    """One row per area and year: households, SES-WOA, quintile, population by age band and sex."""
    areas = pop.areas
    n_areas = len(areas.pc4)
    households = np.zeros(n_areas, dtype=np.int64)
    first_member = np.r_[True, pop.household[1:] != pop.household[:-1]]
    np.add.at(households, pop.area[first_member], 1)
    rows: dict[str, list[Any]] = {
        "pc4": [],
        "year": [],
        "households": [],
        "ses_woa_mean": [],
        "ses_quintile": [],
    }
    bands = {f"population_{s}_{b}": [] for s in ("male", "female") for b in AGE_BAND_NAMES}  # type: dict[str, list[Any]]
    for year in range(pop.start.year, pop.end.year + 1):
        age = pop.age_on(to_days(date(year, 1, 1)))
        band = np.searchsorted(np.asarray(AGE_BANDS), age, side="right") - 1
        alive = age >= 0
        counts = np.zeros((n_areas, 2, len(AGE_BANDS)), dtype=np.int64)
        np.add.at(counts, (pop.area[alive], (pop.sex[alive] == "F").astype(int), band[alive]), 1)
        rows["pc4"].extend(areas.pc4.astype(str).tolist())
        rows["year"].extend([year] * n_areas)
        rows["households"].extend(households.tolist())
        rows["ses_woa_mean"].extend(areas.ses_mean.tolist())
        rows["ses_quintile"].extend(areas.quintile.tolist())
        for s_index, s in enumerate(("male", "female")):
            for b_index, b in enumerate(AGE_BAND_NAMES):
                bands[f"population_{s}_{b}"].extend(counts[:, s_index, b_index].tolist())
    return pa.table({**rows, **bands})


def persons_table(pop: Population) -> pa.Table:
    """The truth about every synthetic person."""
    columns: dict[str, Any] = {
        "person_id": _strings(pop.person_id),
        "household": pa.array(pop.household),
        "sex": _strings(pop.sex),
        "date_of_birth": _dates(pop.dob),
        "national_id": _strings(blank_where(pop.national_id == "", pop.national_id)),
        "given_name": _strings(pop.given_name),
        "family_name": _strings(pop.used_surname),
        "birth_surname": _strings(pop.birth_surname),
        "pc4": _strings(pop.areas.pc4[pop.area].astype(str).astype(object)),
        "ses_quintile": pa.array(pop.quintile),
        "postcode": _strings(pop.postcode),
        "house_number": _strings(pop.house_number),
        "move_date": _dates(pop.move_day, pop.move_day > pop.end_day),
        "new_postcode": _strings(blank_where(pop.move_day > pop.end_day, pop.new_postcode)),
        "practice": pa.array(pop.practice),
    }
    for name in COMORBIDITIES:
        columns[f"comorbidity_{name}"] = pa.array(pop.comorbidity[name])
    columns["infection_date"] = _dates(pop.infection_day, pop.infection_day < 0)
    columns["post_covid"] = pa.array(pop.post_covid)
    columns["post_covid_probability"] = pa.array(np.round(pop.post_covid_probability, 5))
    return pa.table(columns)


def write_outputs(
    data: SynthData,
    out: Path,
    formats: tuple[str, ...] = ("csv", "parquet"),
    progress: Progress | None = None,
) -> list[Path]:
    """Write every file of :func:`generate`'s result under ``out``; returns the paths written."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    report = progress or (lambda step, done, total: None)
    (out / "linkage").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    options = pacsv.WriteOptions(quoting_style="needed")
    written: list[Path] = []

    def write(table: pa.Table, stem: Path, kinds: tuple[str, ...]) -> None:
        for kind in kinds:
            path = stem.parent / f"{stem.name}.{kind}"
            if kind == "csv":
                pacsv.write_csv(table, path, options)
            else:
                pq.write_table(table, path)
            written.append(path)

    jobs: list[tuple[str, pa.Table, Path, tuple[str, ...]]] = [
        ("areas", data.areas, out / "areas", formats)
    ]
    for source in SOURCES:
        jobs.append((source, data.extracts[source], out / source, formats))
        jobs.append(
            (
                f"{source} identities",
                data.identity_files[source],
                out / "linkage" / f"{source}.identity",
                ("csv",),
            )
        )
        truth = data.records.filter(pa.compute.equal(data.records["source"], source)).select(
            ["record_id", "person_id"]
        )
        jobs.append((f"{source} truth", truth, out / "linkage" / f"{source}.truth", ("csv",)))
    jobs.append(("persons", data.persons, out / "truth" / "persons", formats))
    jobs.append(("records", data.records, out / "truth" / "records", formats))
    for i, (label, table, stem, kinds) in enumerate(jobs):
        report(f"writing {label}", i, len(jobs) + 1)
        write(table, stem, kinds)
    signals_path = out / "truth" / "signals.json"
    signals_path.write_text(json.dumps(data.signals, indent=2) + "\n", encoding="utf-8")
    manifest = {
        "config": data.config.as_dict(),
        "counts": {
            "persons": data.population.size,
            "infected": int((data.population.infection_day >= 0).sum()),
            "post_covid": int(data.population.post_covid.sum()),
            "areas": len(data.population.areas.pc4),
            **{source: data.extracts[source].num_rows for source in SOURCES},
        },
        "files": sorted(str(p.relative_to(out)) for p in [*written, signals_path]),
    }
    manifest_path = out / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    report("written", len(jobs) + 1, len(jobs) + 1)
    return [*written, signals_path, manifest_path]
