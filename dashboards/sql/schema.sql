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
