"""Every Kafka topic linkwatch reads or writes, with its partitions and configuration.

Partition counts are sized for a small deployment (the stages that scale with
partitions can use up to four workers); the reference and recovery topics have
one partition because their order matters more than their parallelism.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

# confluent-kafka re-exports these without listing them in __all__.
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # type: ignore[attr-defined]

from linkwatch.streams.kafka_clients import make_admin

KEEP_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    purpose: str
    config: dict[str, str] = field(default_factory=dict)


GP = TopicSpec("ehr.gp.v1", 4, "GP consultations published by practices", KEEP_FOREVER)
OOH = TopicSpec("ehr.ooh.v1", 4, "GP out-of-hours contacts", KEEP_FOREVER)
HOSPITAL = TopicSpec("ehr.hospital.v1", 4, "hospital episodes", KEEP_FOREVER)
AREA_SES = TopicSpec(
    "ref.area-ses.v1",
    1,
    "area socio-economic status and population, latest per area (compacted)",
    {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1", "segment.ms": "3600000"},
)
LINKER_LOG = TopicSpec(
    "linkwatch.linker-log.v1",
    1,
    "every identity the linker indexed, in order: replayed to rebuild its state",
    KEEP_FOREVER,
)
LINKED = TopicSpec(
    "linkwatch.linked.v1",
    4,
    "events with person id, SES and age band, keyed by the person id they were linked to",
    KEEP_FOREVER,
)
MERGES = TopicSpec("linkwatch.merges.v1", 1, "person merges (old id -> surviving id)", KEEP_FOREVER)
REVIEW = TopicSpec("linkwatch.review.v1", 1, "grey-zone pairs for clerical review", KEEP_FOREVER)
DLQ = TopicSpec(
    "linkwatch.dlq.v1",
    1,
    "records that could not be used, with the reason and the original bytes",
    KEEP_FOREVER,
)
ALERTS = TopicSpec(
    "linkwatch.alerts.v1", 1, "surveillance alerts with their evidence", KEEP_FOREVER
)

SINK_BATCHES = TopicSpec(
    "linkwatch.sink-batches.v1",
    1,
    "the offsets of every batch before it is loaded, to form one cut off by a crash again",
    {"retention.ms": str(7 * 24 * 3600 * 1000)},
)
WORKER_LEASE = TopicSpec(
    "linkwatch.worker-lease.v1",
    1,
    "no messages: the worker assigned its one partition is the active linker",
    {"retention.ms": "3600000"},
)

PROVIDER_TOPICS = (GP, OOH, HOSPITAL)
ALL_TOPICS = (
    GP,
    OOH,
    HOSPITAL,
    AREA_SES,
    LINKER_LOG,
    LINKED,
    MERGES,
    REVIEW,
    DLQ,
    ALERTS,
    SINK_BATCHES,
    WORKER_LEASE,
)


@dataclass(frozen=True)
class TopicState:
    name: str
    partitions: int
    messages: int
    config: dict[str, str]


def ensure_topics(
    bootstrap_servers: str, specs: tuple[TopicSpec, ...] = ALL_TOPICS, timeout: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    Existing topics are left as they are (their partition count is not changed:
    that would move keys between partitions).
    """
    admin = make_admin(bootstrap_servers)
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [s for s in specs if s.name not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(s.name, s.partitions, 1, config=dict(s.config)) for s in missing],
        operation_timeout=timeout,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":  # created meanwhile by another worker
                raise
    _wait_for_leaders(admin, [s.name for s in missing], timeout)
    return sorted(created)


def _wait_for_leaders(admin: AdminClient, names: list[str], timeout: float) -> None:
    # A new topic answers metadata before its partitions have leaders; clients that
    # use it at once get NOT_LEADER_FOR_PARTITION.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=timeout).topics
        if all(
            name in topics
            and topics[name].partitions
            and all(p.leader >= 0 for p in topics[name].partitions.values())
            for name in names
        ):
            return
        time.sleep(0.1)
    raise TimeoutError(f"topics {names} have no partition leaders after {timeout:.0f} s")


def describe_topics(
    bootstrap_servers: str, names: list[str], timeout: float = 30.0
) -> list[TopicState]:
    """Partitions, message counts (sum of high watermarks minus low) and non-default configs."""

    admin = make_admin(bootstrap_servers)
    meta = admin.list_topics(timeout=timeout)
    present = [n for n in names if n in meta.topics]
    configs = admin.describe_configs(
        [ConfigResource(ConfigResource.Type.TOPIC, n) for n in present]
    )
    non_default: dict[str, dict[str, str]] = {}
    for resource, future in configs.items():
        entries = future.result(timeout=timeout)
        non_default[resource.name] = {
            k: str(v.value) for k, v in entries.items() if not v.is_default and v.value is not None
        }
    consumer = Consumer(
        {"bootstrap.servers": bootstrap_servers, "group.id": "linkwatch-topics-describe"}
    )
    states = []
    try:
        for name in present:
            parts = meta.topics[name].partitions
            messages = 0
            for p in parts:
                low, high = _watermarks(consumer, TopicPartition(name, p), timeout)
                messages += high - low
            states.append(TopicState(name, len(parts), messages, non_default.get(name, {})))
    finally:
        consumer.close()
    return states


def _watermarks(consumer: Consumer, tp: TopicPartition, timeout: float) -> tuple[int, int]:
    """A partition's watermarks, asking again while a new leader settles in."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
            return int(low), int(high)
        except KafkaException as exc:
            retriable = exc.args[0].code() in (
                KafkaError.NOT_LEADER_FOR_PARTITION,
                KafkaError.LEADER_NOT_AVAILABLE,
            )
            if not retriable or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
