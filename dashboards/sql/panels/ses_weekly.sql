-- Weekly events and rate per 100,000 by SES quintile (1 highest SES .. 5 lowest).
SELECT
    c.week AS week,
    c.ses_quintile AS ses_quintile,
    c.events AS events,
    p.population AS population,
    round(c.events * 100000 / nullIf(p.population, 0), 2) AS rate_per_100k
FROM
(
    SELECT week, ses_quintile, sum(events) AS events
    FROM ${db}.weekly_counts
    WHERE code_group = {code_group:String}
      AND week BETWEEN toMonday({date_from:Date}) AND {date_to:Date}
      AND ses_quintile > 0
      AND ${f_source} AND ${f_region} AND ${f_age_band} AND ${f_sex} AND ${f_ses_quintile}
    GROUP BY week, ses_quintile
) AS c
LEFT JOIN
(
    SELECT ses_quintile, sum(population) AS population
    FROM ${db}.population_strata
    WHERE ${f_region} AND ${f_age_band} AND ${f_sex}
    GROUP BY ses_quintile
) AS p ON p.ses_quintile = c.ses_quintile
ORDER BY week, ses_quintile
