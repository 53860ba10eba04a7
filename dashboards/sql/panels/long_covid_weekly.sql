-- Persons meeting the Long COVID case definition, by the ISO week they first met it:
-- a symptom-cluster code 4 to 52 weeks after their index COVID episode (their first
-- COVID-coded event), or an explicit post-COVID code (U09.9, SNOMED 1119303003).
-- Persons are counted after merges, so one person linked late is counted once. The
-- strata and source filters apply to the qualifying event.
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
                LEFT JOIN (SELECT person_id, canonical_person_id FROM ${db}.person_merges FINAL) AS m
                    ON m.person_id = e.person_id
                WHERE hasAny(e.code_groups, ['long_covid_symptom', 'post_covid'])
            ) AS ev
            LEFT JOIN
            (
                SELECT if(m.canonical_person_id = '', e.person_id, m.canonical_person_id) AS person,
                       min(e.event_date) AS index_date
                FROM ${db}.linked_events AS e
                LEFT JOIN (SELECT person_id, canonical_person_id FROM ${db}.person_merges FINAL) AS m
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
SETTINGS join_use_nulls = 0
