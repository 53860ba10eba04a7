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
-- Events that reached linked_events before freshness_mv existed (a model created by an
-- older linkwatch). Taking the maximum again changes nothing, so this runs every time.
INSERT INTO ${db}.freshness (latest_event_time, latest_ingested_at)
SELECT maxState(event_time), maxState(ingested_at)
FROM ${db}.linked_events
;
-- Long COVID case definition state, one row per person id as the linker wrote it (merges
-- are followed when the panel reads it): the first COVID-coded date (the index episode),
-- the first post-COVID date (2149-06-06 with has_covid / has_post = 0 when there is
-- none), the last symptom-cluster or post-COVID date, and the first, last and every
-- symptom-cluster date (the first and last decide most persons without the array).
-- Rows of one id from different insert blocks combine by min, max and array union, so
-- the state does not depend on the order or batching of events, and a replayed block
-- changes nothing. Partitioned by a hash of the id: all rows of one id share a
-- partition, and merges work on a quarter of the ids at a time.
CREATE TABLE IF NOT EXISTS ${db}.long_covid_persons
(
    person_id      String,
    covid_first    SimpleAggregateFunction(min, Date),
    has_covid      SimpleAggregateFunction(max, UInt8),
    post_first     SimpleAggregateFunction(min, Date),
    has_post       SimpleAggregateFunction(max, UInt8),
    last_date      SimpleAggregateFunction(max, Date),
    symptom_first  SimpleAggregateFunction(min, Date),
    symptom_last   SimpleAggregateFunction(max, Date),
    symptom_dates  SimpleAggregateFunction(groupArrayArray, Array(Date))
)
ENGINE = AggregatingMergeTree
PARTITION BY cityHash64(person_id) % 4
ORDER BY person_id
SETTINGS non_replicated_deduplication_window = 10000
;
-- Persons by the day they first met the case definition, each person id counted as a
-- person of its own (the panel corrects for merged ids when it reads). Kept by the views
-- below: for the ids in each inserted block, long_covid_delta_mv reads their state
-- before the block, adds the block, and emits the id's case onset before and after; the
-- onset count moves by -1 / +1 when it changed, then the block joins the state. Exact as
-- long as inserts into linked_events do not overlap and each holds one block (up to
-- max_insert_block_size rows; the sink's batches are far smaller): a view does not see
-- the parts an unfinished INSERT has written. A replayed block changes no onset.
CREATE TABLE IF NOT EXISTS ${db}.long_covid_onsets
(
    day      Date,
    persons  Int64
)
ENGINE = SummingMergeTree(persons)
ORDER BY day
;
CREATE TABLE IF NOT EXISTS ${db}.long_covid_delta
(
    person_id      String,
    covid_first    Date,
    has_covid      UInt8,
    post_first     Date,
    has_post       UInt8,
    last_date      Date,
    symptom_first  Date,
    symptom_last   Date,
    symptom_dates  Array(Date),
    had_onset      UInt8,
    onset_before   Date,
    has_onset      UInt8,
    onset_after    Date
)
ENGINE = Null
;
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.long_covid_delta_mv TO ${db}.long_covid_delta AS
SELECT
    person_id, covid_first, has_covid, post_first, has_post, last_date, symptom_first,
    symptom_last, symptom_dates,
    toUInt8(notEmpty(before)) AS had_onset,
    arrayMin(before) AS onset_before,
    toUInt8(notEmpty(after)) AS has_onset,
    arrayMin(after) AS onset_after
FROM
(
    -- Each id's case onset (as a person of its own) before and after the block.
    SELECT
        *,
        arrayConcat(
            if(was_has_post = 1, [was_post_first], CAST([], 'Array(Date)')),
            multiIf(
                was_has_covid = 0 OR was_covid_first = toDate(0)
                    OR was_symptom_first > was_covid_first + 364
                    OR was_symptom_last < was_covid_first + 28,
                CAST([], 'Array(Date)'),
                was_symptom_first >= was_covid_first + 28,
                [was_symptom_first],
                arrayFilter(
                    d -> d >= was_covid_first + 28 AND d <= was_covid_first + 364,
                    was_symptom_dates))) AS before,
        arrayConcat(
            if(now_has_post = 1, [now_post_first], CAST([], 'Array(Date)')),
            multiIf(
                now_has_covid = 0 OR now_covid_first = toDate(0)
                    OR now_symptom_first > now_covid_first + 364
                    OR now_symptom_last < now_covid_first + 28,
                CAST([], 'Array(Date)'),
                now_symptom_first >= now_covid_first + 28,
                [now_symptom_first],
                arrayFilter(
                    d -> d >= now_covid_first + 28 AND d <= now_covid_first + 364,
                    now_symptom_dates))) AS after
    FROM
    (
        SELECT
            b.person_id AS person_id, b.covid_first AS covid_first, b.has_covid AS has_covid,
            b.post_first AS post_first, b.has_post AS has_post, b.last_date AS last_date,
            b.symptom_first AS symptom_first, b.symptom_last AS symptom_last,
            b.symptom_dates AS symptom_dates,
            if(s.present = 1, s.covid_first, toDate(65535)) AS was_covid_first,
            s.has_covid AS was_has_covid,
            if(s.present = 1, s.post_first, toDate(65535)) AS was_post_first,
            s.has_post AS was_has_post,
            if(s.present = 1, s.symptom_first, toDate(65535)) AS was_symptom_first,
            s.symptom_last AS was_symptom_last,
            s.symptom_dates AS was_symptom_dates,
            least(was_covid_first, b.covid_first) AS now_covid_first,
            greatest(was_has_covid, b.has_covid) AS now_has_covid,
            least(was_post_first, b.post_first) AS now_post_first,
            greatest(was_has_post, b.has_post) AS now_has_post,
            least(was_symptom_first, b.symptom_first) AS now_symptom_first,
            greatest(was_symptom_last, b.symptom_last) AS now_symptom_last,
            arrayConcat(was_symptom_dates, b.symptom_dates) AS now_symptom_dates
        FROM
        (
            SELECT
                person_id,
                min(if(has(code_groups, 'covid'), event_date, toDate(65535))) AS covid_first,
                max(toUInt8(has(code_groups, 'covid'))) AS has_covid,
                min(if(has(code_groups, 'post_covid'), event_date, toDate(65535))) AS post_first,
                max(toUInt8(has(code_groups, 'post_covid'))) AS has_post,
                maxIf(event_date, hasAny(code_groups, ['long_covid_symptom', 'post_covid']))
                    AS last_date,
                min(if(has(code_groups, 'long_covid_symptom'), event_date, toDate(65535)))
                    AS symptom_first,
                maxIf(event_date, has(code_groups, 'long_covid_symptom')) AS symptom_last,
                groupUniqArrayIf(event_date, has(code_groups, 'long_covid_symptom')) AS symptom_dates
            FROM ${db}.linked_events
            WHERE hasAny(code_groups, ['covid', 'long_covid_symptom', 'post_covid'])
            GROUP BY person_id
        ) AS b
        LEFT JOIN
        (
            -- In a view, linked_events here is the inserted block: the state of its ids only.
            SELECT person_id, toUInt8(1) AS present, min(covid_first) AS covid_first,
                   max(has_covid) AS has_covid, min(post_first) AS post_first,
                   max(has_post) AS has_post, min(symptom_first) AS symptom_first,
                   max(symptom_last) AS symptom_last,
                   groupArrayArray(symptom_dates) AS symptom_dates
            FROM ${db}.long_covid_persons
            WHERE person_id IN (SELECT person_id FROM ${db}.linked_events)
            GROUP BY person_id
        ) AS s ON s.person_id = b.person_id
    )
)
SETTINGS join_use_nulls = 0
;
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.long_covid_persons_mv TO ${db}.long_covid_persons AS
SELECT person_id, covid_first, has_covid, post_first, has_post, last_date, symptom_first,
       symptom_last, symptom_dates
FROM ${db}.long_covid_delta
;
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.long_covid_onsets_mv TO ${db}.long_covid_onsets AS
SELECT change.1 AS day, change.2 AS persons
FROM ${db}.long_covid_delta
ARRAY JOIN
    arrayConcat(
        if(had_onset = 1, [(onset_before, toInt64(-1))], CAST([], 'Array(Tuple(Date, Int64))')),
        if(has_onset = 1, [(onset_after, toInt64(1))], CAST([], 'Array(Tuple(Date, Int64))')))
    AS change
WHERE had_onset != has_onset OR onset_before != onset_after
;
-- The same per person id and stratum of the symptom-cluster and post-COVID events, for
-- the Long COVID panel when a stratum or source filter is set (the filters apply to the
-- qualifying event; the index episode is taken from long_covid_persons).
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
SETTINGS non_replicated_deduplication_window = 10000
;
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.long_covid_strata_mv TO ${db}.long_covid_strata AS
SELECT
    person_id, source, region, age_band, sex, ses_quintile,
    min(if(has(code_groups, 'post_covid'), event_date, toDate(65535))) AS post_first,
    max(toUInt8(has(code_groups, 'post_covid'))) AS has_post,
    groupUniqArrayIf(event_date, has(code_groups, 'long_covid_symptom')) AS symptom_dates
FROM ${db}.linked_events
WHERE hasAny(code_groups, ['long_covid_symptom', 'post_covid'])
GROUP BY person_id, source, region, age_band, sex, ses_quintile
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
