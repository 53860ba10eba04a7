-- Persons meeting the Long COVID case definition, by the ISO week they first met it:
-- a symptom-cluster code 4 to 52 weeks after their index COVID episode (their first
-- COVID-coded event), or an explicit post-COVID code (U09.9, SNOMED 1119303003).
-- Persons are counted after merges, so one person linked late is counted once. The
-- strata and source filters apply to the qualifying event.
--
-- Read from what the warehouse keeps instead of the events: without a filter, the onset
-- counts (long_covid_onsets, each person id a person) corrected for the ids named in
-- person_merges from their state (long_covid_persons); with a filter, the per-stratum
-- state (long_covid_strata) and the index episodes of long_covid_persons.
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
        -- Without a stratum filter: the onset counts the warehouse keeps, each person id
        -- counted as a person of its own ...
        SELECT day, persons
        FROM ${db}.long_covid_onsets
        WHERE {source:String} = '' AND {region:String} = '' AND {age_band:String} = ''
          AND {sex:String} = '' AND {ses_quintile:UInt8} = 0
          AND day BETWEEN {date_from:Date} AND {date_to:Date}
        UNION ALL
        SELECT arrayMin(qualifying) AS day, sign AS persons
        FROM
        (
            SELECT
                sign,
                if(has_index = 1, first_covid, toDate(0)) AS index_date,
                index_date + 28 AS window_from,
                index_date + 364 AS window_to,
                -- The qualifying dates: the first post-COVID date and the symptom dates in
                -- the window; the first and last symptom dates settle most persons.
                arrayConcat(
                    if(has_post = 1, [first_post], CAST([], 'Array(Date)')),
                    multiIf(
                        index_date = toDate(0) OR symptoms_from > window_to
                            OR symptoms_to < window_from,
                        CAST([], 'Array(Date)'),
                        symptoms_from >= window_from,
                        [symptoms_from],
                        arrayFilter(d -> d >= window_from AND d <= window_to, symptoms)))
                    AS qualifying
            FROM
            (
                -- ... so the ids named in a merge, absorbed or surviving, come out ...
                SELECT toInt64(-1) AS sign, min(covid_first) AS first_covid,
                       max(has_covid) AS has_index, min(post_first) AS first_post,
                       max(has_post) AS has_post, min(symptom_first) AS symptoms_from,
                       max(symptom_last) AS symptoms_to, groupArrayArray(symptom_dates) AS symptoms
                FROM ${db}.long_covid_persons
                WHERE {source:String} = '' AND {region:String} = '' AND {age_band:String} = ''
                  AND {sex:String} = '' AND {ses_quintile:UInt8} = 0
                  AND (person_id IN (SELECT person_id FROM ${db}.person_merges)
                       OR person_id IN (SELECT canonical_person_id FROM ${db}.person_merges))
                GROUP BY person_id
                UNION ALL
                -- ... and go back in gathered under their surviving id. With a stratum
                -- filter, every person: the events of the stratum from long_covid_strata,
                -- the index episode from long_covid_persons.
                SELECT toInt64(1) AS sign, min(r.covid_first) AS first_covid,
                       max(r.has_covid) AS has_index, min(r.post_first) AS first_post,
                       max(r.has_post) AS has_post, min(r.symptom_first) AS symptoms_from,
                       max(r.symptom_last) AS symptoms_to,
                       groupArrayArray(r.symptom_dates) AS symptoms
                FROM
                (
                    SELECT person_id, toDate(covid_first) AS covid_first,
                           toUInt8(has_covid) AS has_covid, toDate(post_first) AS post_first,
                           toUInt8(has_post) AS has_post, toDate(symptom_first) AS symptom_first,
                           toDate(symptom_last) AS symptom_last,
                           CAST(symptom_dates, 'Array(Date)') AS symptom_dates
                    FROM ${db}.long_covid_persons
                    WHERE {source:String} = '' AND {region:String} = '' AND {age_band:String} = ''
                      AND {sex:String} = '' AND {ses_quintile:UInt8} = 0
                      AND (person_id IN (SELECT person_id FROM ${db}.person_merges)
                           OR person_id IN (SELECT canonical_person_id FROM ${db}.person_merges))
                    UNION ALL
                    SELECT person_id, toDate(covid_first) AS covid_first,
                           toUInt8(has_covid) AS has_covid, toDate(65535) AS post_first,
                           toUInt8(0) AS has_post, toDate(65535) AS symptom_first,
                           toDate(0) AS symptom_last, CAST([], 'Array(Date)') AS symptom_dates
                    FROM ${db}.long_covid_persons
                    WHERE NOT ({source:String} = '' AND {region:String} = ''
                               AND {age_band:String} = '' AND {sex:String} = ''
                               AND {ses_quintile:UInt8} = 0)
                      AND has_covid = 1
                      -- Only persons with an event of the stratum can qualify in it (and
                      -- the ids of a merge, whose events may be under another id).
                      AND (person_id IN (SELECT person_id FROM ${db}.long_covid_strata
                                         WHERE ${f_source} AND ${f_region} AND ${f_age_band}
                                           AND ${f_sex} AND ${f_ses_quintile})
                           OR person_id IN (SELECT person_id FROM ${db}.person_merges)
                           OR person_id IN (SELECT canonical_person_id FROM ${db}.person_merges))
                    UNION ALL
                    SELECT person_id, toDate(65535) AS covid_first, toUInt8(0) AS has_covid,
                           toDate(post_first) AS post_first, toUInt8(has_post) AS has_post,
                           if(empty(symptom_dates), toDate(65535), arrayMin(symptom_dates))
                               AS symptom_first,
                           arrayMax(symptom_dates) AS symptom_last,
                           CAST(symptom_dates, 'Array(Date)') AS symptom_dates
                    FROM ${db}.long_covid_strata
                    WHERE NOT ({source:String} = '' AND {region:String} = ''
                               AND {age_band:String} = '' AND {sex:String} = ''
                               AND {ses_quintile:UInt8} = 0)
                      AND ${f_source} AND ${f_region} AND ${f_age_band} AND ${f_sex}
                      AND ${f_ses_quintile}
                ) AS r
                LEFT JOIN
                    (SELECT person_id, canonical_person_id FROM ${db}.person_merges FINAL) AS m
                    ON m.person_id = r.person_id
                GROUP BY if(m.canonical_person_id = '', r.person_id, m.canonical_person_id)
            )
        )
        WHERE notEmpty(qualifying)
          AND arrayMin(qualifying) BETWEEN {date_from:Date} AND {date_to:Date}
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
