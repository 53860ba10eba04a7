"""The panels that read pre-aggregates, defined over the raw rows instead.

Each query here is what its panel means, written plainly over ``linked_events`` and
``person_merges`` (every event joined to its merges): slow, and the reference that the
panel's faster SQL must equal. The tests compare the two on crafted data and the panel
benchmark on its large warehouse. ``${db}`` and ``${f_*}`` as in the panels' SQL; the
Long COVID and linkage-quality queries take the panels' parameters.
"""

from __future__ import annotations

from string import Template

from linkwatch.dashboards.model import DEFAULT_DATABASE, check_identifier
from linkwatch.dashboards.panels import FILTER_SQL

# The Long COVID case definition: a person's first qualifying event (an explicit
# post-COVID code, or a symptom-cluster code 4 to 52 weeks after their first COVID-coded
# event), persons counted after merges, the filters applying to the qualifying event.
_LONG_COVID = """
SELECT
    q.week AS week,
    q.persons AS persons,
    p.population AS population,
    round(q.persons * 100000 / nullIf(p.population, 0), 2) AS rate_per_100k
FROM
(
    SELECT toMonday(first_date) AS week, count() AS persons
    FROM
    (
        SELECT x.person AS person, min(x.event_date) AS first_date
        FROM
        (
            SELECT ev.person AS person, ev.event_date AS event_date,
                   ev.code_groups AS code_groups, ix.index_date AS index_date
            FROM
            (
                SELECT if(m.canonical_person_id = '', e.person_id, m.canonical_person_id) AS person,
                       e.event_date AS event_date, e.code_groups AS code_groups,
                       e.source AS source, e.region AS region, e.age_band AS age_band,
                       e.sex AS sex, e.ses_quintile AS ses_quintile
                FROM ${db}.linked_events AS e
                LEFT JOIN
                    (SELECT person_id, canonical_person_id FROM ${db}.person_merges FINAL) AS m
                    ON m.person_id = e.person_id
                WHERE hasAny(e.code_groups, ['long_covid_symptom', 'post_covid'])
            ) AS ev
            LEFT JOIN
            (
                SELECT if(m.canonical_person_id = '', e.person_id, m.canonical_person_id) AS person,
                       min(e.event_date) AS index_date
                FROM ${db}.linked_events AS e
                LEFT JOIN
                    (SELECT person_id, canonical_person_id FROM ${db}.person_merges FINAL) AS m
                    ON m.person_id = e.person_id
                WHERE has(e.code_groups, 'covid')
                GROUP BY person
            ) AS ix ON ix.person = ev.person
            WHERE ${f_source} AND ${f_region} AND ${f_age_band} AND ${f_sex} AND ${f_ses_quintile}
        ) AS x
        WHERE has(x.code_groups, 'post_covid')
           OR (has(x.code_groups, 'long_covid_symptom') AND x.index_date > toDate(0)
               AND x.event_date BETWEEN x.index_date + 28 AND x.index_date + 364)
        GROUP BY person
    ) AS first_met
    WHERE first_date BETWEEN {date_from:Date} AND {date_to:Date}
    GROUP BY week
) AS q
CROSS JOIN
(
    SELECT sum(population) AS population
    FROM ${db}.population_strata
    WHERE ${f_region} AND ${f_age_band} AND ${f_sex} AND ${f_ses_quintile}
) AS p
ORDER BY week
SETTINGS join_use_nulls = 0"""
# The freshness panel's first four columns (seconds since the last commit moves with the
# clock and is left out).
_FRESHNESS = """
SELECT count() AS events_total, max(event_time) AS latest_event_time,
       max(ingested_at) AS latest_ingested_at,
       dateDiff('second', max(event_time), max(ingested_at)) AS lag_seconds
FROM ${db}.linked_events"""
_LINKAGE_QUALITY = """
SELECT
    count() AS events,
    round(countIf(e.link_outcome = 'linked') / nullIf(count(), 0), 4) AS link_rate,
    countIf(e.link_outcome = 'review') AS review_queue,
    (SELECT count() FROM ${db}.person_merges FINAL) AS merges,
    uniqExact(if(m.canonical_person_id = '', e.person_id, m.canonical_person_id)) AS persons,
    round(avg(e.link_weight), 2) AS mean_link_weight
FROM ${db}.linked_events AS e
LEFT JOIN (SELECT person_id, canonical_person_id FROM ${db}.person_merges FINAL) AS m
    ON m.person_id = e.person_id
WHERE e.event_date BETWEEN {date_from:Date} AND {date_to:Date}
SETTINGS join_use_nulls = 0"""

RAW_PANELS = {
    "long_covid_weekly": _LONG_COVID,
    "freshness": _FRESHNESS,
    "linkage_quality": _LINKAGE_QUALITY,
}


def raw_sql(name: str, database: str = DEFAULT_DATABASE) -> str:
    """The raw-row definition of panel ``name`` for ``database`` (KeyError if it has none)."""
    check_identifier(database, "database")
    return Template(RAW_PANELS[name]).substitute(db=database, **FILTER_SQL)
