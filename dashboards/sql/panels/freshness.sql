-- How current the warehouse is: latest event and commit times, and the lag between them.
SELECT
    count() AS events_total,
    max(event_time) AS latest_event_time,
    max(ingested_at) AS latest_ingested_at,
    dateDiff('second', max(event_time), max(ingested_at)) AS lag_seconds,
    dateDiff('second', max(ingested_at), now64(3)) AS seconds_since_last_commit
FROM ${db}.linked_events
