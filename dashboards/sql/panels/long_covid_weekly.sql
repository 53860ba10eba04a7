-- Persons meeting the Long COVID case definition, by the ISO week they first met it:
-- a symptom-cluster code 4 to 52 weeks after their index COVID episode (their first
-- COVID-coded event), or an explicit post-COVID code (U09.9, SNOMED 1119303003).
-- Persons are counted after merges, so one person linked late is counted once. The
-- strata and source filters apply to the qualifying event.
--
-- Read from what the warehouse keeps instead of the events: the onset counts of the
-- filters' combination (long_covid_onsets), which hold the merge correction of every
-- merge group too (long_covid_corrections), kept as merges and events arrive.
SELECT
    q.week AS week,
    q.persons AS persons,
    p.population AS population,
    round(q.persons * 100000 / nullIf(p.population, 0), 2) AS rate_per_100k
FROM
(
    SELECT toMonday(day) AS week, sum(persons) AS persons
    FROM
    (
        SELECT day, persons
        FROM ${db}.long_covid_onsets
        WHERE mask = toUInt8(({source:String} != '') + 2 * ({region:String} != '')
                             + 4 * ({age_band:String} != '') + 8 * ({sex:String} != '')
                             + 16 * ({ses_quintile:UInt8} != 0))
          AND source = {source:String} AND region = {region:String}
          AND age_band = {age_band:String} AND sex = {sex:String}
          AND ses_quintile = {ses_quintile:UInt8}
          AND day BETWEEN {date_from:Date} AND {date_to:Date}
    )
    GROUP BY week
    HAVING persons != 0
) AS q
CROSS JOIN
(
    SELECT sum(population) AS population
    FROM ${db}.population_strata
    WHERE ${f_region} AND ${f_age_band} AND ${f_sex} AND ${f_ses_quintile}
) AS p
ORDER BY week
SETTINGS join_use_nulls = 0
