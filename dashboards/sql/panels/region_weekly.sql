-- Weekly events and rate per 100,000 by province.
SELECT
    c.week AS week,
    c.region AS region,
    c.events AS events,
    p.population AS population,
    round(c.events * 100000 / nullIf(p.population, 0), 2) AS rate_per_100k
FROM
(
    SELECT week, region, sum(events) AS events
    FROM ${db}.weekly_counts
    WHERE code_group = {code_group:String}
      AND week BETWEEN toMonday({date_from:Date}) AND {date_to:Date}
      AND ${f_source} AND ${f_region} AND ${f_age_band} AND ${f_sex} AND ${f_ses_quintile}
    GROUP BY week, region
) AS c
LEFT JOIN
(
    SELECT region, sum(population) AS population
    FROM ${db}.population_strata
    WHERE ${f_age_band} AND ${f_sex} AND ${f_ses_quintile}
    GROUP BY region
) AS p ON p.region = c.region
ORDER BY week, region
