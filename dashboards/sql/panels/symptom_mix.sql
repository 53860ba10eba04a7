-- Events per Long COVID symptom cluster over the period.
SELECT replaceOne(code_group, 'symptom_', '') AS symptom_cluster, sum(events) AS events
FROM ${db}.weekly_counts
WHERE startsWith(code_group, 'symptom_')
  AND week BETWEEN toMonday({date_from:Date}) AND {date_to:Date}
  AND ${f_source} AND ${f_region} AND ${f_age_band} AND ${f_sex} AND ${f_ses_quintile}
GROUP BY symptom_cluster
ORDER BY events DESC, symptom_cluster
