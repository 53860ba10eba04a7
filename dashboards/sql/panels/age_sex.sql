-- Events and rate per 100,000 by age band and sex over the period.
SELECT
    c.age_band AS age_band,
    c.sex AS sex,
    c.events AS events,
    p.population AS population,
    round(c.events * 100000 / nullIf(p.population, 0), 2) AS rate_per_100k
FROM
(
    SELECT age_band, sex, sum(events) AS events
    FROM ${db}.weekly_counts
    WHERE code_group = {code_group:String}
      AND week BETWEEN toMonday({date_from:Date}) AND {date_to:Date}
      AND ${f_source} AND ${f_region} AND ${f_age_band} AND ${f_sex} AND ${f_ses_quintile}
    GROUP BY age_band, sex
) AS c
LEFT JOIN
(
    SELECT age_band, sex, sum(population) AS population
    FROM ${db}.population_strata
    WHERE ${f_region} AND ${f_ses_quintile}
    GROUP BY age_band, sex
) AS p ON p.age_band = c.age_band AND p.sex = c.sex
ORDER BY age_band, sex
