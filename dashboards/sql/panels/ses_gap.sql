-- The socio-economic gap: weekly rate in quintile 5 (lowest SES) over quintile 1 (highest).
SELECT
    c.week AS week,
    c.events_q1 AS events_q1,
    c.events_q5 AS events_q5,
    round((c.events_q5 / nullIf(p.population_q5, 0)) / nullIf(c.events_q1 / nullIf(p.population_q1, 0), 0), 3)
        AS rate_ratio_q5_q1
FROM
(
    SELECT week, sumIf(events, ses_quintile = 1) AS events_q1, sumIf(events, ses_quintile = 5) AS events_q5
    FROM ${db}.weekly_counts
    WHERE code_group = {code_group:String}
      AND week BETWEEN toMonday({date_from:Date}) AND {date_to:Date}
      AND ${f_source} AND ${f_region} AND ${f_age_band} AND ${f_sex}
    GROUP BY week
) AS c
CROSS JOIN
(
    SELECT sumIf(population, ses_quintile = 1) AS population_q1,
           sumIf(population, ses_quintile = 5) AS population_q5
    FROM ${db}.population_strata
    WHERE ${f_region} AND ${f_age_band} AND ${f_sex}
) AS p
ORDER BY week
