-- linkwatch warehouse model, current ClickHouse dialect. `${db}` is the database.
-- Statements are separated by lines holding only ';'. Every statement is idempotent.

CREATE TABLE IF NOT EXISTS ${db}.schema_version
(
    version     UInt32,
    description String,
    applied_at  DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree
ORDER BY version
;
-- One row per accepted event, written by the pipeline's sink in batches whose
-- insert_deduplication_token is built from topic, partition and offset range, so a
-- replayed batch is dropped here and in every view below.
CREATE TABLE IF NOT EXISTS ${db}.linked_events
(
    event_id        String,
    source          LowCardinality(String),   -- gp_consultation | ooh_contact | hospital_episode
    provider_id     LowCardinality(String),
    person_id       String,                   -- person id from the linker at insert time
    link_outcome    LowCardinality(String),   -- linked | new | review
    link_weight     Float32,
    codes           Array(String),            -- ICPC-1 (NHG) or ICD-10 codes of the event
    code_groups     Array(LowCardinality(String)),
    event_time      DateTime64(3, 'UTC'),
    event_date      Date DEFAULT toDate(event_time),
    iso_week        Date DEFAULT toMonday(event_date),   -- Monday of the ISO week
    age_band        LowCardinality(String),   -- 0_14 | 15_24 | 25_44 | 45_64 | 65_plus
    sex             LowCardinality(String),   -- MALE | FEMALE | UNKNOWN
    pc4             LowCardinality(String),
    region          LowCardinality(String),   -- province
    ses_quintile    UInt8,                    -- 1 highest SES .. 5 lowest; 0 unknown
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3),
    kafka_topic     LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset    UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(event_date)
ORDER BY (event_date, source, region, event_id)
SETTINGS non_replicated_deduplication_window = 10000
;
CREATE TABLE IF NOT EXISTS ${db}.persons
(
    person_id   String,
    birth_year  UInt16,
    sex         LowCardinality(String),
    first_seen  DateTime64(3, 'UTC'),
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY person_id
SETTINGS non_replicated_deduplication_window = 10000
;
-- When the linker merges two persons it writes one row per absorbed person id with
-- the surviving (canonical) id; a later merge of the survivor rewrites the rows of
-- everyone it had absorbed, so one lookup always reaches the final person.
CREATE TABLE IF NOT EXISTS ${db}.person_merges
(
    person_id            String,
    canonical_person_id  String,
    merged_at            DateTime64(3, 'UTC'),
    version              UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY person_id
SETTINGS non_replicated_deduplication_window = 10000
;
CREATE TABLE IF NOT EXISTS ${db}.areas
(
    pc4           String,
    year          UInt16,
    region        LowCardinality(String),
    ses_quintile  UInt8,
    ses_woa_mean  Nullable(Float64),
    households    Nullable(UInt32)
)
ENGINE = ReplacingMergeTree
ORDER BY (pc4, year)
;
CREATE TABLE IF NOT EXISTS ${db}.area_population
(
    pc4         String,
    year        UInt16,
    age_band    LowCardinality(String),
    sex         LowCardinality(String),
    population  UInt32
)
ENGINE = ReplacingMergeTree
ORDER BY (pc4, year, age_band, sex)
;
CREATE TABLE IF NOT EXISTS ${db}.code_groups
(
    code_list_version  String,
    code_group         LowCardinality(String),
    system             LowCardinality(String),
    code               String,
    label              String,
    valid_from         Nullable(Date),
    valid_to           Nullable(Date)
)
ENGINE = ReplacingMergeTree
ORDER BY (code_list_version, code_group, system, code)
;
CREATE TABLE IF NOT EXISTS ${db}.alerts
(
    alert_id      String,
    kind          LowCardinality(String),   -- epidemiological | data_quality
    state         LowCardinality(String),   -- open | closed
    method        LowCardinality(String),
    code_group    LowCardinality(String),
    region        LowCardinality(String),   -- '' = all
    age_band      LowCardinality(String),
    sex           LowCardinality(String),
    ses_quintile  UInt8,                    -- 0 = all
    first_week    Date,
    last_week     Date,
    observed      Float64,
    expected      Float64,
    upperbound    Float64,
    score         Float64,
    evidence      String,                   -- JSON: weeks, observed, expected, thresholds
    opened_at     DateTime64(3, 'UTC'),
    updated_at    DateTime64(3, 'UTC'),
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY alert_id
;
-- Detector output per stratum and week (the expected band on the dashboard).
-- '' / 0 in a stratum column means "all".
CREATE TABLE IF NOT EXISTS ${db}.detector_results
(
    method        LowCardinality(String),
    code_group    LowCardinality(String),
    region        LowCardinality(String),
    age_band      LowCardinality(String),
    sex           LowCardinality(String),
    ses_quintile  UInt8,
    week          Date,
    observed      Float64,
    expected      Float64,
    upperbound    Float64,
    alarm         UInt8,
    computed_at   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (method, code_group, region, age_band, sex, ses_quintile, week)
;
-- Pre-aggregates. Every event counts once in the group 'all' and once in each of its
-- code groups. Summing keys are the full stratum, so a sum over any subset of the key
-- equals the raw count (checked by the tests against the raw query).
CREATE TABLE IF NOT EXISTS ${db}.weekly_counts
(
    week          Date,
    code_group    LowCardinality(String),
    source        LowCardinality(String),
    region        LowCardinality(String),
    age_band      LowCardinality(String),
    sex           LowCardinality(String),
    ses_quintile  UInt8,
    events        UInt64
)
ENGINE = SummingMergeTree(events)
PARTITION BY toYear(week)
ORDER BY (code_group, week, source, region, age_band, sex, ses_quintile)
SETTINGS non_replicated_deduplication_window = 10000
;
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.weekly_counts_mv TO ${db}.weekly_counts AS
SELECT
    iso_week AS week,
    arrayJoin(arrayConcat(['all'], arrayDistinct(CAST(code_groups, 'Array(String)')))) AS code_group,
    source, region, age_band, sex, ses_quintile,
    count() AS events
FROM ${db}.linked_events
GROUP BY week, code_group, source, region, age_band, sex, ses_quintile
;
CREATE TABLE IF NOT EXISTS ${db}.daily_counts
(
    day           Date,
    code_group    LowCardinality(String),
    source        LowCardinality(String),
    region        LowCardinality(String),
    age_band      LowCardinality(String),
    sex           LowCardinality(String),
    ses_quintile  UInt8,
    events        UInt64
)
ENGINE = SummingMergeTree(events)
PARTITION BY toYYYYMM(day)
ORDER BY (code_group, day, source, region, age_band, sex, ses_quintile)
SETTINGS non_replicated_deduplication_window = 10000
;
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.daily_counts_mv TO ${db}.daily_counts AS
SELECT
    event_date AS day,
    arrayJoin(arrayConcat(['all'], arrayDistinct(CAST(code_groups, 'Array(String)')))) AS code_group,
    source, region, age_band, sex, ses_quintile,
    count() AS events
FROM ${db}.linked_events
GROUP BY day, code_group, source, region, age_band, sex, ses_quintile
;
-- The latest event time and commit time, for the freshness panel: one row of states per
-- inserted block, combined by max (so a replayed block changes nothing); the panel reads
-- them instead of scanning every event.
CREATE TABLE IF NOT EXISTS ${db}.freshness
(
    latest_event_time   AggregateFunction(max, DateTime64(3, 'UTC')),
    latest_ingested_at  AggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY tuple()
SETTINGS non_replicated_deduplication_window = 10000
;
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.freshness_mv TO ${db}.freshness AS
SELECT maxState(event_time) AS latest_event_time, maxState(ingested_at) AS latest_ingested_at
FROM ${db}.linked_events
;
-- Linkage quality per day and per calendar month, for the linkage-quality panel: events,
-- their link outcomes and weights, and a HyperLogLog state of the person ids
-- (uniqCombined, exact up to a few thousand ids). The panel merges the states of the
-- whole months in its period and of the days at its edges, and corrects them exactly for
-- the ids named in merges. `whole_month` = 1: the row holds the month starting on `day`.
CREATE TABLE IF NOT EXISTS ${db}.linkage_daily
(
    whole_month  UInt8,
    day          Date,
    events       AggregateFunction(sum, UInt64),
    linked       AggregateFunction(sum, UInt64),
    review       AggregateFunction(sum, UInt64),
    weight_sum   AggregateFunction(sum, Float64),
    person_ids   AggregateFunction(uniqCombined, String)
)
ENGINE = AggregatingMergeTree
ORDER BY (whole_month, day)
SETTINGS non_replicated_deduplication_window = 10000
;
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.linkage_daily_mv TO ${db}.linkage_daily AS
SELECT
    whole_month,
    if(whole_month = 1, toStartOfMonth(event_date), event_date) AS day,
    sumState(toUInt64(1)) AS events,
    sumState(toUInt64(link_outcome = 'linked')) AS linked,
    sumState(toUInt64(link_outcome = 'review')) AS review,
    sumState(toFloat64(link_weight)) AS weight_sum,
    uniqCombinedState(person_id) AS person_ids
FROM ${db}.linked_events
ARRAY JOIN [toUInt8(0), toUInt8(1)] AS whole_month
GROUP BY whole_month, day
;
-- The days on which each person id has events (as the linker wrote the id), and the same
-- for the ids named in merges only (copied when a merge names an id, added to by every
-- later block of such an id), so the linkage-quality panel finds which of them have
-- events in its period without reading every event or every id.
CREATE TABLE IF NOT EXISTS ${db}.person_days
(
    person_id  String,
    days       AggregateFunction(groupUniqArray, Date)
)
ENGINE = AggregatingMergeTree
PARTITION BY cityHash64(person_id) % 4
ORDER BY person_id
SETTINGS index_granularity = 256, non_replicated_deduplication_window = 10000
;
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.person_days_mv TO ${db}.person_days AS
SELECT person_id, groupUniqArrayState(event_date) AS days
FROM ${db}.linked_events
GROUP BY person_id
;
CREATE TABLE IF NOT EXISTS ${db}.person_days_merged
(
    person_id  String,
    days       AggregateFunction(groupUniqArray, Date)
)
ENGINE = AggregatingMergeTree
ORDER BY person_id
;
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.person_days_merged_mv TO ${db}.person_days_merged AS
SELECT person_id, groupUniqArrayState(event_date) AS days
FROM ${db}.linked_events
WHERE person_id IN (SELECT person_id FROM ${db}.person_merges)
   OR person_id IN (SELECT canonical_person_id FROM ${db}.person_merges)
GROUP BY person_id
;
-- When merges are inserted: the days of the ids they name (person_merges, everywhere in
-- this view, is the inserted block of merges).
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.person_days_merges_mv TO ${db}.person_days_merged AS
SELECT s.person_id AS person_id, s.days AS days
FROM (SELECT DISTINCT arrayJoin([person_id, canonical_person_id]) AS id
      FROM ${db}.person_merges) AS m
INNER JOIN
(
    SELECT person_id, groupUniqArrayMergeState(days) AS days
    FROM ${db}.person_days
    WHERE person_id IN (SELECT person_id FROM ${db}.person_merges)
       OR person_id IN (SELECT canonical_person_id FROM ${db}.person_merges)
    GROUP BY person_id
) AS s ON s.person_id = m.id
;
-- Long COVID. A person meets the case definition on their first qualifying date: an
-- explicit post-COVID code, or a symptom-cluster code 4 to 52 weeks after their index
-- episode (their first COVID-coded event). A stratum or source filter applies to the
-- qualifying event; the index episode comes from all of the person's events.
--
-- The index episode of each person id as the linker wrote it (merges are followed when
-- the panel reads it): rows of one id from different blocks combine by min, so the state
-- does not depend on the order or batching of events and a replayed block changes
-- nothing. Only ids with a COVID-coded event have a row.
CREATE TABLE IF NOT EXISTS ${db}.long_covid_persons
(
    person_id    String,
    covid_first  SimpleAggregateFunction(min, Date),
    has_covid    SimpleAggregateFunction(max, UInt8)
)
ENGINE = AggregatingMergeTree
PARTITION BY cityHash64(person_id) % 4
ORDER BY person_id
SETTINGS index_granularity = 256, non_replicated_deduplication_window = 10000
;
-- The symptom-cluster and post-COVID events of each person id and stratum: the first
-- post-COVID date (2149-06-06 with has_post = 0 when there is none) and every
-- symptom-cluster date.
CREATE TABLE IF NOT EXISTS ${db}.long_covid_strata
(
    person_id      String,
    source         LowCardinality(String),
    region         LowCardinality(String),
    age_band       LowCardinality(String),
    sex            LowCardinality(String),
    ses_quintile   UInt8,
    post_first     SimpleAggregateFunction(min, Date),
    has_post       SimpleAggregateFunction(max, UInt8),
    symptom_dates  SimpleAggregateFunction(groupArrayArray, Array(Date))
)
ENGINE = AggregatingMergeTree
ORDER BY (person_id, source, region, age_band, sex, ses_quintile)
SETTINGS index_granularity = 256, non_replicated_deduplication_window = 10000
;
-- Persons by the day they first met the case definition, for every combination of the
-- panel's filters, each person id counted as a person of its own (the panel corrects for
-- the ids named in merges when it reads). `mask` says which filters a row is for (1
-- source, 2 region, 4 age band, 8 sex, 16 SES quintile); the others hold '' and 0.
CREATE TABLE IF NOT EXISTS ${db}.long_covid_onsets
(
    mask          UInt8,
    source        LowCardinality(String),
    region        LowCardinality(String),
    age_band      LowCardinality(String),
    sex           LowCardinality(String),
    ses_quintile  UInt8,
    day           Date,
    persons       Int64
)
ENGINE = SummingMergeTree(persons)
ORDER BY (mask, source, region, age_band, sex, ses_quintile, day)
;
-- What one inserted block changes, one row per person id of the block, filter mask and
-- stratum: the onset before and after the block (2149-06-06 = none), the id's index
-- episode in the block (mask 0) and the block's events of a full stratum (mask 31,
-- in_block = 1). The views below write the state and the onset counts from it.
CREATE TABLE IF NOT EXISTS ${db}.long_covid_delta
(
    person_id              String,
    mask                   UInt8,
    source                 String,
    region                 String,
    age_band               String,
    sex                    String,
    ses_quintile           UInt8,
    covid_first            Date,
    has_covid              UInt8,
    in_block               UInt8,
    stratum_post_first     Date,
    stratum_has_post       UInt8,
    stratum_symptom_dates  Array(Date),
    onset_before           Date,
    onset_after            Date
)
ENGINE = Null
;
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.long_covid_persons_mv TO ${db}.long_covid_persons AS
SELECT person_id, covid_first, has_covid
FROM ${db}.long_covid_delta
WHERE mask = 0 AND has_covid = 1
;
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.long_covid_strata_mv TO ${db}.long_covid_strata AS
SELECT person_id, source, region, age_band, sex, ses_quintile,
       stratum_post_first AS post_first, stratum_has_post AS has_post,
       stratum_symptom_dates AS symptom_dates
FROM ${db}.long_covid_delta
WHERE mask = 31 AND in_block = 1
;
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.long_covid_onsets_mv TO ${db}.long_covid_onsets AS
SELECT mask, source, region, age_band, sex, ses_quintile, change.1 AS day, change.2 AS persons
FROM ${db}.long_covid_delta
ARRAY JOIN
    arrayConcat(
        if(onset_before != toDate(65535), [(onset_before, toInt64(-1))],
           CAST([], 'Array(Tuple(Date, Int64))')),
        if(onset_after != toDate(65535), [(onset_after, toInt64(1))],
           CAST([], 'Array(Tuple(Date, Int64))')))
    AS change
WHERE onset_before != onset_after
;
-- For the ids of each inserted block: their state before the block (read here, before
-- any view below writes the block into it), the block's events, and from both the onset
-- before and after the block for every filter mask and stratum. Exact as long as inserts
-- into linked_events do not overlap and each holds one block (up to
-- max_insert_block_size rows; the sink's batches are far smaller): a view does not see
-- the parts an unfinished INSERT has written. A replayed block changes no onset.
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.long_covid_delta_mv TO ${db}.long_covid_delta AS
SELECT
    person_id,
    mask,
    if(bitTest(mask, 0), r_source, '') AS source,
    if(bitTest(mask, 1), r_region, '') AS region,
    if(bitTest(mask, 2), r_age_band, '') AS age_band,
    if(bitTest(mask, 3), r_sex, '') AS sex,
    if(bitTest(mask, 4), r_ses_quintile, 0) AS ses_quintile,
    any(block_covid_first) AS covid_first,
    any(block_has_covid) AS has_covid,
    max(s_in_block) AS in_block,
    anyIf(s_post_first, mask = 31) AS stratum_post_first,
    anyIf(s_has_post, mask = 31) AS stratum_has_post,
    anyIf(s_symptom_dates, mask = 31) AS stratum_symptom_dates,
    min(qb) AS onset_before,
    min(qa) AS onset_after
FROM
(
    SELECT *, max(toUInt8(qb != qa)) OVER (PARTITION BY person_id) AS changed
    FROM
    (
        -- One row per id and stratum: its onset there before and after the block, and
        -- the block's events of the stratum.
        SELECT
            person_id, r_source, r_region, r_age_band, r_sex, r_ses_quintile,
            any(block_covid_first) AS block_covid_first,
            any(block_has_covid) AS block_has_covid,
            max(toUInt8(kind = 0)) AS s_in_block,
            minIf(r_post_first, kind = 0) AS s_post_first,
            maxIf(r_has_post, kind = 0) AS s_has_post,
            groupArrayArrayIf(r_symptom_dates, kind = 0) AS s_symptom_dates,
            min(q_before) AS qb,
            min(q_after) AS qa
        FROM
        (
            SELECT
                x.person_id AS person_id,
                x.kind AS kind,
                x.source AS r_source,
                x.region AS r_region,
                x.age_band AS r_age_band,
                x.sex AS r_sex,
                x.ses_quintile AS r_ses_quintile,
                x.post_first AS r_post_first,
                x.has_post AS r_has_post,
                x.symptom_dates AS r_symptom_dates,
                i.covid_first AS block_covid_first,
                i.has_covid AS block_has_covid,
                -- The row's qualifying date with the index episode before the block (rows of the
                -- state only) and after it (every row but the placeholder).
                if(x.kind = 1,
                   least(if(x.has_post = 1, x.post_first, toDate(65535)),
                         if(i.was_index > toDate(0),
                            arrayMin(arrayPushBack(
                                arrayFilter(d -> d >= i.was_index + 28 AND d <= i.was_index + 364,
                                            x.symptom_dates),
                                toDate(65535))),
                            toDate(65535))),
                   toDate(65535)) AS q_before,
                if(x.kind != 2,
                   least(if(x.has_post = 1, x.post_first, toDate(65535)),
                         if(i.now_index > toDate(0),
                            arrayMin(arrayPushBack(
                                arrayFilter(d -> d >= i.now_index + 28 AND d <= i.now_index + 364,
                                            x.symptom_dates),
                                toDate(65535))),
                            toDate(65535))),
                   toDate(65535)) AS q_after
            FROM
            (
                -- The block's symptom-cluster and post-COVID events per id and stratum ...
                SELECT person_id, toUInt8(0) AS kind, toString(source) AS source,
                       toString(region) AS region, toString(age_band) AS age_band,
                       toString(sex) AS sex, ses_quintile,
                       min(if(has(code_groups, 'post_covid'), event_date, toDate(65535))) AS post_first,
                       max(toUInt8(has(code_groups, 'post_covid'))) AS has_post,
                       groupUniqArrayIf(event_date, has(code_groups, 'long_covid_symptom'))
                           AS symptom_dates
                FROM ${db}.linked_events
                WHERE hasAny(code_groups, ['long_covid_symptom', 'post_covid'])
                GROUP BY person_id, source, region, age_band, sex, ses_quintile
                UNION ALL
                -- ... the state of the block's ids before the block (in a view, linked_events
                -- here is the inserted block) ...
                SELECT person_id, toUInt8(1) AS kind, toString(source) AS source,
                       toString(region) AS region, toString(age_band) AS age_band,
                       toString(sex) AS sex, ses_quintile, post_first, has_post, symptom_dates
                FROM ${db}.long_covid_strata
                WHERE person_id IN (
                    SELECT person_id FROM ${db}.linked_events
                    WHERE hasAny(code_groups, ['covid', 'long_covid_symptom', 'post_covid']))
                UNION ALL
                -- ... and one row per id, so an id whose block holds only its index episode
                -- still has its onsets recomputed and its index kept.
                SELECT person_id, toUInt8(2) AS kind, '' AS source, '' AS region, '' AS age_band,
                       '' AS sex, toUInt8(0) AS ses_quintile, toDate(65535) AS post_first,
                       toUInt8(0) AS has_post, CAST([], 'Array(Date)') AS symptom_dates
                FROM ${db}.linked_events
                WHERE hasAny(code_groups, ['covid', 'long_covid_symptom', 'post_covid'])
                GROUP BY person_id
            ) AS x
            INNER JOIN
            (
                -- Each id's index episode in the block, before it and after it (1970-01-01 =
                -- none, as in the case definition).
                SELECT
                    b.person_id AS person_id,
                    b.covid_first AS covid_first,
                    b.has_covid AS has_covid,
                    s.covid_first AS was_index,
                    if(b.has_covid = 1, b.covid_first, toDate(0)) AS block_index,
                    multiIf(was_index = toDate(0), block_index, block_index = toDate(0), was_index,
                            least(was_index, block_index)) AS now_index
                FROM
                (
                    SELECT person_id,
                           min(if(has(code_groups, 'covid'), event_date, toDate(65535))) AS covid_first,
                           max(toUInt8(has(code_groups, 'covid'))) AS has_covid
                    FROM ${db}.linked_events
                    WHERE hasAny(code_groups, ['covid', 'long_covid_symptom', 'post_covid'])
                    GROUP BY person_id
                ) AS b
                LEFT JOIN
                (
                    SELECT person_id, min(covid_first) AS covid_first
                    FROM ${db}.long_covid_persons
                    WHERE has_covid = 1 AND person_id IN (
                        SELECT person_id FROM ${db}.linked_events
                        WHERE hasAny(code_groups, ['covid', 'long_covid_symptom', 'post_covid']))
                    GROUP BY person_id
                ) AS s ON s.person_id = b.person_id
            ) AS i ON i.person_id = x.person_id
        )
        GROUP BY person_id, r_source, r_region, r_age_band, r_sex, r_ses_quintile
    )
)
-- Every filter mask for the ids whose onset moved somewhere; for the others only the
-- rows that carry the block's state (mask 0: the index episode, 31: the strata).
ARRAY JOIN if(changed = 1, range(32), [0, 31]) AS mask
GROUP BY person_id, mask, source, region, age_band, sex, ses_quintile
HAVING mask = 0 OR (mask = 31 AND in_block = 1) OR onset_before != onset_after
SETTINGS join_use_nulls = 0
;
-- The latest surviving id of every id named in a merge.
CREATE VIEW IF NOT EXISTS ${db}.person_merges_latest AS
SELECT person_id, canonical_person_id
FROM ${db}.person_merges FINAL
;
-- What long_covid_onsets adds for merges, per merge group (a surviving id and every id
-- merged into it), filter mask, stratum and day: +1 on the group's onset, -1 on each of
-- its ids' own onsets. Kept as merges and events arrive (the views below, from the
-- statement in long_covid_correction.sql), so the panel reads the onset counts alone.
CREATE TABLE IF NOT EXISTS ${db}.long_covid_corrections
(
    grp           String,
    mask          UInt8,
    source        LowCardinality(String),
    region        LowCardinality(String),
    age_band      LowCardinality(String),
    sex           LowCardinality(String),
    ses_quintile  UInt8,
    day           Date,
    persons       Int64
)
ENGINE = SummingMergeTree(persons)
ORDER BY (grp, mask, source, region, age_band, sex, ses_quintile, day)
;
-- Every change of a correction goes into the onset counts too.
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.long_covid_corrections_onsets_mv TO ${db}.long_covid_onsets AS
SELECT mask, source, region, age_band, sex, ses_quintile, day, persons
FROM ${db}.long_covid_corrections
;
-- When a block of events arrives: the groups of its ids that are named in merges.
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.long_covid_corrections_blocks_mv TO ${db}.long_covid_corrections AS
${correction_for_blocks}
;
-- When merges arrive: the groups they name, and the former groups of the ids they move
-- (person_merges, in this view, is the inserted block of merges).
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.long_covid_corrections_merges_mv TO ${db}.long_covid_corrections AS
${correction_for_merges}
;
-- Population denominators of the latest year per area, one row per stratum.
CREATE VIEW IF NOT EXISTS ${db}.population_strata AS
SELECT a.region AS region, a.ses_quintile AS ses_quintile, p.age_band AS age_band, p.sex AS sex,
       sum(p.population) AS population
FROM ${db}.area_population AS p FINAL
INNER JOIN
(
    SELECT pc4, argMax(region, year) AS region, argMax(ses_quintile, year) AS ses_quintile,
           max(year) AS latest_year
    FROM ${db}.areas FINAL
    GROUP BY pc4
) AS a ON p.pc4 = a.pc4 AND p.year = a.latest_year
GROUP BY region, ses_quintile, age_band, sex
;
INSERT INTO ${db}.schema_version (version, description)
SELECT 1, 'linked events, persons and merges, areas, code groups, alerts, weekly and daily counts'
WHERE (SELECT count() FROM ${db}.schema_version WHERE version = 1) = 0
;
INSERT INTO ${db}.schema_version (version, description)
SELECT 2, 'Long COVID onsets for every filter combination, linkage quality per day'
WHERE (SELECT count() FROM ${db}.schema_version WHERE version = 2) = 0
;
INSERT INTO ${db}.schema_version (version, description)
SELECT 3, 'Long COVID onsets corrected for merges as merges and events arrive'
WHERE (SELECT count() FROM ${db}.schema_version WHERE version = 3) = 0
