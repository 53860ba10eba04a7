-- How current the warehouse is: latest event and commit times, and the lag between them
-- (the maxima kept by freshness_mv as events arrive; the total from the parts' row counts).
SELECT
    (SELECT count() FROM ${db}.linked_events) AS events_total,
    maxMerge(latest_event_time) AS latest_event_time,
    maxMerge(latest_ingested_at) AS latest_ingested_at,
    dateDiff('second', latest_event_time, latest_ingested_at) AS lag_seconds,
    dateDiff('second', latest_ingested_at, now64(3)) AS seconds_since_last_commit
FROM ${db}.freshness
