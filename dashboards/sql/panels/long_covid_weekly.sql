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
        -- own (-1) and go back in once under their surviving id (+1).
        SELECT onset AS day, sign AS persons
        FROM
        (
            SELECT toInt64(-1) AS sign, min(q) AS onset
            FROM
            (
                SELECT r.person_id AS id,
                       least(if(r.has_post = 1, r.post_first, toDate(65535)),
                             if(ix.index_date > toDate(0),
                                arrayMin(arrayPushBack(
                                    arrayFilter(d -> d >= ix.index_date + 28
                                                     AND d <= ix.index_date + 364,
                                                r.symptom_dates),
                                    toDate(65535))),
                                toDate(65535))) AS q
                FROM
                (
                    SELECT person_id, post_first, has_post, symptom_dates
                    FROM ${db}.long_covid_strata_merged
                    WHERE ${f_source} AND ${f_region} AND ${f_age_band} AND ${f_sex}
                      AND ${f_ses_quintile}
                ) AS r
                LEFT JOIN
                (
                    SELECT person_id, min(covid_first) AS index_date
                    FROM ${db}.long_covid_persons_merged
                    WHERE has_covid = 1
                    GROUP BY person_id
                ) AS ix ON ix.person_id = r.person_id
            )
            GROUP BY id
            UNION ALL
            SELECT toInt64(1) AS sign, min(q) AS onset
            FROM
            (
                SELECT r.grp AS grp,
                       least(if(r.has_post = 1, r.post_first, toDate(65535)),
                             if(ix.index_date > toDate(0),
                                arrayMin(arrayPushBack(
                                    arrayFilter(d -> d >= ix.index_date + 28
                                                     AND d <= ix.index_date + 364,
                                                r.symptom_dates),
                                    toDate(65535))),
                                toDate(65535))) AS q
                FROM
                (
                    SELECT if(m.canonical_person_id = '', s.person_id, m.canonical_person_id)
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
                    -- A merged person's index episode is the first of all their ids'.
                    SELECT if(m.canonical_person_id = '', c.person_id, m.canonical_person_id)
                               AS grp,
                           min(c.covid_first) AS index_date
                    FROM ${db}.long_covid_persons_merged AS c
                    LEFT JOIN
                        (SELECT person_id, canonical_person_id FROM ${db}.person_merges FINAL)
                        AS m ON m.person_id = c.person_id
                    WHERE c.has_covid = 1

                    GROUP BY grp
                ) AS ix ON ix.grp = r.grp
            )
            GROUP BY grp
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
