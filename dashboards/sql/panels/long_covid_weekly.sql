-- Persons meeting the Long COVID case definition, by the ISO week they first met it:
-- a symptom-cluster code 4 to 52 weeks after their index COVID episode (their first
-- COVID-coded event), or an explicit post-COVID code (U09.9, SNOMED 1119303003).
-- Persons are counted after merges, so one person linked late is counted once. The
-- strata and source filters apply to the qualifying event.
--
-- Read from what the warehouse keeps instead of the events: the onset counts of the
-- filters' combination (long_covid_onsets, each person id a person), corrected for the
-- ids named in person_merges from their state (long_covid_strata_merged,
-- long_covid_persons_merged, which hold those ids only).
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
        UNION ALL
        -- The ids named in a merge, absorbed or surviving, come out as persons of their
        -- own (-1, with their own index episode) and go back in once under their
        -- surviving id (+1, with the first index episode of all the ids merged into it).
        SELECT onset AS day, sign AS persons
        FROM
        (
            SELECT change.2 AS sign, min(change.3) AS onset
            FROM
            (
                SELECT r.id AS id, r.grp AS grp,
                       least(if(r.has_post = 1, r.post_first, toDate(65535)),
                             if(own.index_date > toDate(0),
                                arrayMin(arrayPushBack(
                                    arrayFilter(d -> d >= own.index_date + 28 AND d <= own.index_date + 364,
                                                r.symptom_dates),
                                    toDate(65535))),
                                toDate(65535))) AS q_own,
                       least(if(r.has_post = 1, r.post_first, toDate(65535)),
                             if(gi.index_date > toDate(0),
                                arrayMin(arrayPushBack(
                                    arrayFilter(d -> d >= gi.index_date + 28 AND d <= gi.index_date + 364,
                                                r.symptom_dates),
                                    toDate(65535))),
                                toDate(65535))) AS q_group
                FROM
                (
                    SELECT s.person_id AS id,
                           if(m.canonical_person_id = '', s.person_id, m.canonical_person_id)
                               AS grp,
                           s.post_first AS post_first, s.has_post AS has_post,
                           s.symptom_dates AS symptom_dates
                    FROM ${db}.long_covid_strata_merged AS s
                    LEFT JOIN
                        (SELECT person_id, canonical_person_id FROM ${db}.person_merges FINAL)
                        AS m ON m.person_id = s.person_id
                    WHERE ${f_source} AND ${f_region} AND ${f_age_band} AND ${f_sex}
                      AND ${f_ses_quintile}
                ) AS r
                LEFT JOIN
                (
                    SELECT person_id, min(covid_first) AS index_date
                    FROM ${db}.long_covid_persons_merged
                    WHERE has_covid = 1
                    GROUP BY person_id
                ) AS own ON own.person_id = r.id
                LEFT JOIN
                (
                    SELECT if(m.canonical_person_id = '', c.person_id, m.canonical_person_id)
                               AS grp,
                           min(c.covid_first) AS index_date
                    FROM ${db}.long_covid_persons_merged AS c
                    LEFT JOIN
                        (SELECT person_id, canonical_person_id FROM ${db}.person_merges FINAL)
                        AS m ON m.person_id = c.person_id
                    WHERE c.has_covid = 1
                    GROUP BY grp
                ) AS gi ON gi.grp = r.grp
            )
            ARRAY JOIN [(id, toInt64(-1), q_own), (grp, toInt64(1), q_group)] AS change
            GROUP BY change.1, change.2
        )
        WHERE onset != toDate(65535) AND onset BETWEEN {date_from:Date} AND {date_to:Date}
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
