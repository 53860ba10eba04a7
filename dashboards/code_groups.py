"""Code groups: the named sets of clinical codes the dashboards count by.

Built from the versioned Long COVID code list shipped in ``linkwatch.schemas``
(``schemas/codes/long_covid_codelist.csv``), so the pipeline, the detectors and the
dashboards agree on what "COVID", "post-COVID" and each symptom cluster mean:

* ``covid`` — an index COVID episode: confirmed or suspected (ICPC R83, R83.03, R74;
  ICD-10 U07.1, U07.2);
* ``post_covid`` — explicit post-COVID codes: ICD-10 U09.9 and SNOMED CT 1119303003
  (Post-acute COVID-19);
* ``long_covid_symptom`` — any code of the Long COVID symptom clusters;
* ``symptom_<cluster>`` — one symptom cluster (fatigue, dyspnoea, cognitive ...).

The Long COVID case definition itself — an index COVID episode followed by
symptom-cluster codes 4 to 52 weeks later — depends on a person's history, so it is
not a code group of an event: the warehouse keeps each person's state (first COVID,
post-COVID and symptom dates) and the onsets it implies, and the ``long_covid_weekly``
panel reads those (see ``sql/schema.sql``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache, lru_cache

from linkwatch.schemas.codelists import CodeEntry, long_covid_codelist, normalise_icd10

CODE_LIST_VERSION = "long_covid_codelist.csv@schemas"
COVID_CONCEPTS = frozenset({"covid_confirmed", "covid_suspected"})
# SNOMED CT is not in the shipped list (it codes ICPC and ICD-10 only); the
# international concept for post-acute COVID-19, mapped to U09.9.
SNOMED_POST_COVID = CodeEntry(
    concept="post_covid",
    system="SNOMED",
    code="1119303003",
    label="Post-acute COVID-19 (disorder)",
    valid_from=date(2021, 1, 31),
    valid_to=None,
    note="SNOMED CT International January 2021 release",
)


@dataclass(frozen=True)
class GroupedCode:
    """One code in one code group, with its validity."""

    code_group: str
    entry: CodeEntry


def _cluster_name(note: str) -> str:
    # The note starts with the cluster ("fatigue; mapping unverified").
    cluster = note.split(";")[0]
    return "symptom_" + "_".join(cluster.lower().replace("-", " ").split())


@cache
def grouped_codes() -> tuple[GroupedCode, ...]:
    """Every (code group, code) pair linkwatch counts by."""
    rows: list[GroupedCode] = []
    for entry in (*long_covid_codelist(), SNOMED_POST_COVID):
        if entry.concept in COVID_CONCEPTS:
            rows.append(GroupedCode("covid", entry))
        elif entry.concept == "post_covid":
            rows.append(GroupedCode("post_covid", entry))
        elif entry.concept == "long_covid_symptom":
            rows.append(GroupedCode("long_covid_symptom", entry))
            if entry.note:
                rows.append(GroupedCode(_cluster_name(entry.note), entry))
    return tuple(rows)


def code_group_names() -> tuple[str, ...]:
    """Names of all code groups, plus ``all`` (every event), in a stable order."""
    names = sorted({g.code_group for g in grouped_codes()})
    return ("all", *names)


def symptom_clusters() -> tuple[str, ...]:
    """The ``symptom_*`` code groups (the symptom mix)."""
    return tuple(n for n in code_group_names() if n.startswith("symptom_"))


def _key(code: str) -> str:
    code = code.strip().upper()
    return normalise_icd10(code) if code[:1].isalpha() and "." not in code else code


def code_groups_of(codes: Iterable[str], on: date) -> list[str]:
    """The code groups of an event with ``codes`` on ``on`` (sorted, without duplicates).

    ICPC rubrics match their NHG subcodes too (``R83.03`` is in every group ``R83`` is);
    ICD-10 codes are compared with the dot after the third character.
    """
    groups = {g.code_group for g in _candidates(tuple(codes)) if g.entry.valid_on(on)}
    return sorted(groups)


@lru_cache(maxsize=65_536)
def _candidates(codes: tuple[str, ...]) -> tuple[GroupedCode, ...]:
    """Every grouped code list entry that codes match, whatever its validity."""
    wanted = {_key(c) for c in codes if c.strip()}
    wanted |= {c.split(".")[0] for c in wanted if "." in c}
    by_code = _groups_by_code()
    return tuple(g for code in sorted(wanted) for g in by_code.get(code, ()))


@cache
def _groups_by_code() -> dict[str, tuple[GroupedCode, ...]]:
    index: dict[str, list[GroupedCode]] = {}
    for g in grouped_codes():
        index.setdefault(g.entry.code, []).append(g)
    return {code: tuple(groups) for code, groups in index.items()}


def code_group_rows() -> dict[str, Sequence[object]]:
    """The ``code_groups`` table's rows, column by column."""
    rows = grouped_codes()
    return {
        "code_list_version": [CODE_LIST_VERSION] * len(rows),
        "code_group": [g.code_group for g in rows],
        "system": [g.entry.system for g in rows],
        "code": [g.entry.code for g in rows],
        "label": [g.entry.label for g in rows],
        "valid_from": [g.entry.valid_from for g in rows],
        "valid_to": [g.entry.valid_to for g in rows],
    }
