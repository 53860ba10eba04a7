-- National (or filtered) weekly events and rate per 100,000, with the detectors' expected band
-- (NULL in weeks the detectors have not scored; `present` avoids join_use_nulls, which is slow).
SELECT
    c.week AS week,
    c.events AS events,
    p.population AS population,
    round(c.events * 100000 / nullIf(p.population, 0), 2) AS rate_per_100k,
    if(d.present = 1, round(d.expected * 100000 / nullIf(p.population, 0), 2), NULL)
        AS expected_per_100k,
    if(d.present = 1, round(d.upperbound * 100000 / nullIf(p.population, 0), 2), NULL)
        AS upperbound_per_100k,
    if(d.present = 1, d.alarm, NULL) AS alarm
FROM
(
    SELECT week, sum(events) AS events
    FROM ${db}.weekly_counts
    WHERE code_group = {code_group:String}
      AND week BETWEEN toMonday({date_from:Date}) AND {date_to:Date}
      AND ${f_source} AND ${f_region} AND ${f_age_band} AND ${f_sex} AND ${f_ses_quintile}
    GROUP BY week
) AS c
CROSS JOIN
(
    SELECT sum(population) AS population
    FROM ${db}.population_strata
    WHERE ${f_region} AND ${f_age_band} AND ${f_sex} AND ${f_ses_quintile}
) AS p
LEFT JOIN
(
    SELECT week,
           argMax(expected, (method = 'farrington-flexible', computed_at)) AS expected,
           argMax(upperbound, (method = 'farrington-flexible', computed_at)) AS upperbound,
           max(alarm) AS alarm,
           1 AS present
    FROM ${db}.detector_results FINAL
    WHERE code_group = {code_group:String}
      AND region = {region:String} AND age_band = {age_band:String} AND sex = {sex:String}
      AND ses_quintile = {ses_quintile:UInt8}
    GROUP BY week
) AS d ON d.week = c.week
ORDER BY week
