-- Weekly events by source (GP, out-of-hours, hospital).
SELECT week, source, sum(events) AS events
FROM ${db}.weekly_counts
WHERE code_group = {code_group:String}
  AND week BETWEEN toMonday({date_from:Date}) AND {date_to:Date}
  AND ${f_source} AND ${f_region} AND ${f_age_band} AND ${f_sex} AND ${f_ses_quintile}
GROUP BY week, source
ORDER BY week, source
