-- Linkage quality over the period: link rate, review queue, merges and distinct persons
-- after merges. Read from the pre-aggregate by day and month. The persons are a
-- HyperLogLog count of the person ids (uniqCombined: exact up to a few thousand,
-- within about 1 % beyond), corrected exactly for the ids named in merges that have
-- events in the period: each comes out, and their surviving persons go back in once
-- (person_days_merged holds the event days of those ids only).
SELECT
    sumMerge(d.events) AS events,
    round(sumMerge(d.linked) / nullIf(sumMerge(d.events), 0), 4) AS link_rate,
    sumMerge(d.review) AS review_queue,
    (SELECT count() FROM ${db}.person_merges FINAL) AS merges,
    toUInt64(toInt64(uniqCombinedMerge(d.person_ids)) + any(c.correction)) AS persons,
    round(sumMerge(d.weight_sum) / sumMerge(d.events), 2) AS mean_link_weight
FROM ${db}.linkage_daily AS d
CROSS JOIN
(
    SELECT toInt64(uniqExact(grp)) - toInt64(count()) AS correction
    FROM
    (
        SELECT p.person_id AS id,
               any(if(m.canonical_person_id = '', p.person_id, m.canonical_person_id)) AS grp
        FROM ${db}.person_days_merged AS p
        LEFT JOIN (SELECT person_id, canonical_person_id FROM ${db}.person_merges FINAL) AS m
            ON m.person_id = p.person_id
        GROUP BY p.person_id
        HAVING arrayExists(x -> x BETWEEN {date_from:Date} AND {date_to:Date},
                           groupUniqArrayMerge(p.days))
    )
) AS c
-- The whole months inside the period, and the days of the period outside them.
WHERE if(d.whole_month = 1,
         d.day >= {date_from:Date} AND addMonths(d.day, 1) <= {date_to:Date} + 1,
         d.day BETWEEN {date_from:Date} AND {date_to:Date}
             AND NOT (toStartOfMonth(d.day) >= {date_from:Date}
                      AND addMonths(toStartOfMonth(d.day), 1) <= {date_to:Date} + 1))
SETTINGS join_use_nulls = 0
