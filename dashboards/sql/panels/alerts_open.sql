-- Open alerts in the selected strata, newest first, with their evidence.
SELECT alert_id, kind, method, code_group, region, age_band, sex, ses_quintile,
       first_week, last_week, observed, expected, upperbound, score, evidence, opened_at, updated_at
FROM ${db}.alerts FINAL
WHERE state = 'open'
  AND ({code_group:String} = 'all' OR code_group = {code_group:String})
  AND (region = '' OR ${f_region}) AND (age_band = '' OR ${f_age_band})
  AND (sex = '' OR ${f_sex}) AND (ses_quintile = 0 OR ${f_ses_quintile})
ORDER BY updated_at DESC
LIMIT 100
