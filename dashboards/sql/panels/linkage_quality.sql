-- Linkage quality over the period: link rate, review queue, merges and distinct persons
-- (after merges; uniq is exact up to 65,536 persons and within about 1 % beyond).
-- person_merges FINAL holds one row per id, so ANY finds the same row as ALL, faster.
SELECT
    count() AS events,
    round(countIf(e.link_outcome = 'linked') / nullIf(count(), 0), 4) AS link_rate,
    countIf(e.link_outcome = 'review') AS review_queue,
    (SELECT count() FROM ${db}.person_merges FINAL) AS merges,
    uniq(if(m.canonical_person_id = '', e.person_id, m.canonical_person_id)) AS persons,
    round(avg(e.link_weight), 2) AS mean_link_weight
FROM ${db}.linked_events AS e
ANY LEFT JOIN (SELECT person_id, canonical_person_id FROM ${db}.person_merges FINAL) AS m
    ON m.person_id = e.person_id
WHERE e.event_date BETWEEN {date_from:Date} AND {date_to:Date}
SETTINGS join_use_nulls = 0, join_algorithm = 'hash'
