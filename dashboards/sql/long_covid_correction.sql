-- The change in the Long COVID merge correction of some merge groups, for every filter
-- mask and stratum: what long_covid_onsets, which counts each person id as a person of
-- its own, must add so that the ids of a group count once, as one person.
--
-- A group is a surviving id with every id merged into it. Its correction is +1 on the
-- group's onset (the first qualifying date of any of its ids, with the first index
-- episode of all of them) and -1 on each id's own onset (what long_covid_onsets counts
-- for it). The rows returned are the new correction of the groups minus the one
-- long_covid_corrections holds for them, so inserting them there (and into
-- long_covid_onsets) brings both up to date; a group recomputed twice changes nothing.
--
-- Filled in by the model for each place it runs:
--   source         the table whose inserts it follows
--   membership     (person_id, canonical_person_id) of every merge, the latest of each id
--   groups         the surviving ids whose correction to recompute (a column `grp`)
--   extra_persons  rows (person_id, covid_first) to add to long_covid_persons, or nothing
--   extra_strata   rows to add to long_covid_strata, or nothing
-- The extra rows are the state an insert is writing: the state combines by min, max and
-- union, so it does not matter whether the state tables already hold them.
SELECT grp, mask, source, region, age_band, sex, ses_quintile, day, sum(persons) AS persons
FROM
    -- A materialized view runs on inserts into the first table it reads: this one.
    (SELECT count() AS inserted FROM ${source}) AS inserted
CROSS JOIN
(
    SELECT grp, mask, source, region, age_band, sex, ses_quintile, onset AS day,
           toInt64(sign) AS persons
    FROM
    (
        -- One onset per group (who = '') and per id of the group, mask and stratum.
        SELECT
            r.grp AS grp,
            mask,
            if(bitTest(mask, 0), r.source, '') AS source,
            if(bitTest(mask, 1), r.region, '') AS region,
            if(bitTest(mask, 2), r.age_band, '') AS age_band,
            if(bitTest(mask, 3), r.sex, '') AS sex,
            if(bitTest(mask, 4), r.ses_quintile, 0) AS ses_quintile,
            change.1 AS who,
            change.2 AS sign,
            min(change.3) AS onset
        FROM
        (
            SELECT
                s.id AS id, m.grp AS grp, s.source AS source, s.region AS region,
                s.age_band AS age_band, s.sex AS sex, s.ses_quintile AS ses_quintile,
                least(if(s.has_post = 1, s.post_first, toDate(65535)),
                      if(own.index_date > toDate(0),
                         arrayMin(arrayPushBack(
                             arrayFilter(d -> d >= own.index_date + 28 AND d <= own.index_date + 364,
                                         s.symptom_dates),
                             toDate(65535))),
                         toDate(65535))) AS q_own,
                least(if(s.has_post = 1, s.post_first, toDate(65535)),
                      if(gi.index_date > toDate(0),
                         arrayMin(arrayPushBack(
                             arrayFilter(d -> d >= gi.index_date + 28 AND d <= gi.index_date + 364,
                                         s.symptom_dates),
                             toDate(65535))),
                         toDate(65535))) AS q_group
            FROM
            (
                SELECT person_id AS id, toString(source) AS source, toString(region) AS region,
                       toString(age_band) AS age_band, toString(sex) AS sex, ses_quintile,
                       post_first, has_post, symptom_dates
                FROM ${db}.long_covid_strata
                WHERE person_id IN (SELECT id FROM (${members}))
                ${extra_strata}
            ) AS s
            INNER JOIN (${members}) AS m ON m.id = s.id
            LEFT JOIN
            (
                SELECT id, min(covid_first) AS index_date
                FROM
                (
                    SELECT person_id AS id, covid_first
                    FROM ${db}.long_covid_persons
                    WHERE has_covid = 1 AND person_id IN (SELECT id FROM (${members}))
                    ${extra_persons}
                )
                GROUP BY id
            ) AS own ON own.id = s.id
            LEFT JOIN
            (
                SELECT gm.grp AS grp, min(p.covid_first) AS index_date
                FROM
                (
                    SELECT person_id AS id, covid_first
                    FROM ${db}.long_covid_persons
                    WHERE has_covid = 1 AND person_id IN (SELECT id FROM (${members}))
                    ${extra_persons}
                ) AS p
                INNER JOIN (${members}) AS gm ON gm.id = p.id
                GROUP BY gm.grp
            ) AS gi ON gi.grp = m.grp
        ) AS r
        ARRAY JOIN range(32) AS mask
        ARRAY JOIN [(r.id, toInt8(-1), r.q_own), ('', toInt8(1), r.q_group)] AS change
        GROUP BY grp, mask, source, region, age_band, sex, ses_quintile, who, sign
    )
    WHERE onset != toDate(65535)
    UNION ALL
    -- The correction kept so far for these groups, taken back.
    SELECT grp, mask, source, region, age_band, sex, ses_quintile, day, -sum(persons) AS persons
    FROM ${db}.long_covid_corrections
    WHERE grp IN (SELECT grp FROM (${groups}))
    GROUP BY grp, mask, source, region, age_band, sex, ses_quintile, day
) AS c
GROUP BY grp, mask, source, region, age_band, sex, ses_quintile, day
HAVING persons != 0
SETTINGS join_use_nulls = 0
