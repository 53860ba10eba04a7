"""Publishing provider extracts to the real broker: everything accounted for, nothing lost."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from linkwatch.deploy.kafka import KafkaBroker
from linkwatch.schemas.events import IdentityPolicy
from linkwatch.schemas.pseudonymise import PseudonymDomain
from linkwatch.schemas.registry import SchemaRegistry
from linkwatch.schemas.synth import SynthConfig, generate
from linkwatch.schemas.validation import ColumnMapping
from linkwatch.streams.deadletter import read_dead_letters
from linkwatch.streams.kafka_clients import KafkaUnavailable
from linkwatch.streams.publish import SOURCE_TOPICS, ProviderPublisher, RejectsFile

SECRET = b"test-secret-0123456789"
TODAY = __import__("datetime").date(2030, 1, 1)
POLICY = IdentityPolicy(domain=PseudonymDomain("nl-ehr", "1", SECRET))


@pytest.fixture(scope="module")
def extracts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    data = generate(SynthConfig(persons=400, years=1, seed=11))
    root = tmp_path_factory.mktemp("extracts")
    paths = {}
    for source, table in data.extracts.items():
        paths[source] = root / f"{source}.csv"
        pacsv.write_csv(table, paths[source])
    return paths


def unique_topics() -> tuple[dict[str, str], str]:
    run = uuid.uuid4().hex[:8]
    return {s: f"test.{s}.{run}" for s in SOURCE_TOPICS}, f"test.dlq.{run}"


def read_topic(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes]]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "read-back", "enable.auto.commit": False}
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
        consumer.assign(parts)
        out: list[tuple[bytes | None, bytes]] = []
        while len(out) < sum(ends.values()):
            for msg in consumer.consume(1000, timeout=5):
                if msg.error() is None:
                    out.append((msg.key(), msg.value()))  # type: ignore[arg-type]
        return out
    finally:
        consumer.close()


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_all_three_sources_are_published_and_read_back_exactly(
    bootstrap_servers: str, extracts: dict[str, Path], tmp_path: Path
) -> None:
    topic_for, dlq = unique_topics()
    rejects = RejectsFile(tmp_path / "rejects.csv")
    publisher = ProviderPublisher(
        bootstrap_servers, POLICY, rejects=rejects, topic_for=topic_for, dead_letter_topic=dlq
    )
    registry = SchemaRegistry.shipped()
    for source, path in extracts.items():
        report = publisher.publish_file(path, source, today=TODAY)
        expected = len(csv_rows(path))
        assert report.read == expected
        assert report.complete
        assert report.clean, report.rejected_by_reason
        messages = read_topic(bootstrap_servers, topic_for[source])
        assert len(messages) == expected
        decoded = [registry.decode(value)[1] for _, value in messages]
        ids = {row["source_record_id"] for row in csv_rows(path)}
        assert {d["source_record_id"] for d in decoded} == ids
        assert {k.decode() for k, _ in messages if k is not None} == ids
        assert len({d["event_id"] for d in decoded}) == expected
        # Pseudonymised at source: no clear names, tokens instead of national ids.
        assert all(d["identity"]["given_name"] is None for d in decoded)
        national = [
            d["identity"]["national_id_token"]
            for d in decoded
            if d["identity"]["national_id_token"]
        ]
        assert all(len(t) == 64 for t in national)
    publisher.close()
    rejects.close()
    assert rejects.lines == 0


def _break(rows: list[dict[str, str]]) -> dict[int, tuple[str, str]]:
    """Break some rows on purpose; returns record number -> (field, expected category)."""
    broken = {
        3: ("icpc_code", "Q12", "invalid_code"),  # Q is no ICPC-1 chapter
        7: ("contact_date", "2021-02-30", "invalid_date"),
        11: ("postcode", "12345", "invalid_postcode"),
        13: ("episode_start_date", "", "missing_field"),
        17: ("contact_type", "CARRIER_PIGEON", "unknown_value"),
        19: ("contact_date", "1850-01-01", "implausible_date"),
    }
    for number, (column, value, _) in broken.items():
        rows[number - 1][column] = value
    return {n: (c, cat) for n, (c, _, cat) in broken.items()}


def test_broken_rows_go_to_the_rejects_file_and_the_dead_letter_topic(
    bootstrap_servers: str, extracts: dict[str, Path], tmp_path: Path
) -> None:
    rows = csv_rows(extracts["gp_consultation"])[:60]
    broken = _break(rows)
    path = tmp_path / "gp_broken.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    # A latin-1 byte in record 23's family name, in an otherwise UTF-8 file.
    data = path.read_bytes().splitlines(keepends=True)
    header = data[0].decode().rstrip("\r\n").split(",")
    cells = data[23].decode().rstrip("\r\n").split(",")
    cells[header.index("family_name")] = "M\xfcller"
    data[23] = ",".join(cells).encode("latin-1") + b"\r\n"
    path.write_bytes(b"".join(data))
    broken[23] = ("family_name", "bad_encoding")

    topic_for, dlq = unique_topics()
    rejects = RejectsFile(tmp_path / "rejects.csv")
    publisher = ProviderPublisher(
        bootstrap_servers, POLICY, rejects=rejects, topic_for=topic_for, dead_letter_topic=dlq
    )
    report = publisher.publish_file(path, "gp_consultation", today=TODAY)
    publisher.close()
    rejects.close()

    assert report.read == 60
    assert report.rejected == len(broken)
    assert report.published == 60 - len(broken)
    assert report.complete
    assert report.rejected_by_reason == Counter(cat for _, cat in broken.values())
    problems: dict[int, list[dict[str, str]]] = {}
    for line in csv_rows(tmp_path / "rejects.csv"):
        problems.setdefault(int(line["record_number"]), []).append(line)
    assert set(problems) == set(broken)
    for number, (column, category) in broken.items():
        # A record may have follow-on problems (a date of 1850 is also before the birth date).
        assert (column, category) in {(p["field"], p["category"]) for p in problems[number]}
        assert {p["source_record_id"] for p in problems[number]} == {
            rows[number - 1]["source_record_id"]
        }
    letters = read_dead_letters(bootstrap_servers, dlq)
    assert sorted(d.record_number for d in letters) == sorted(broken)  # type: ignore[type-var]
    latin = next(d for d in letters if d.record_number == 23)
    assert b"M\xfcller" in latin.original  # the provider's own bytes
    assert all(d.stage == "publish" and d.source_file == str(path) for d in letters)
    published = read_topic(bootstrap_servers, topic_for["gp_consultation"])
    assert len(published) == 60 - len(broken)


def test_a_file_of_another_sources_layout_is_refused_as_a_whole(
    bootstrap_servers: str, extracts: dict[str, Path], tmp_path: Path
) -> None:
    topic_for, dlq = unique_topics()
    publisher = ProviderPublisher(
        bootstrap_servers, POLICY, topic_for=topic_for, dead_letter_topic=dlq
    )
    report = publisher.publish_file(extracts["hospital_episode"], "gp_consultation", today=TODAY)
    publisher.close()
    assert report.read == 0
    assert [p.category for p in report.file_problems] == ["wrong_layout"]
    assert "hospital_episode layout" in report.file_problems[0].reason
    assert [d.reason_code for d in read_dead_letters(bootstrap_servers, dlq)] == ["wrong_layout"]


def test_a_column_mapping_renames_columns_and_fills_constants(
    bootstrap_servers: str, extracts: dict[str, Path], tmp_path: Path
) -> None:
    rows = csv_rows(extracts["ooh_contact"])[:25]
    renamed = [
        {
            ("patient_bsn" if k == "national_id" else k): v
            for k, v in r.items()
            if k != "provider_id"
        }
        for r in rows
    ]
    path = tmp_path / "ooh_own_layout.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(renamed[0]))
        writer.writeheader()
        writer.writerows(renamed)
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(
        '[columns]\npatient_bsn = "national_id"\n[constants]\nprovider_id = "HAP-0042"\n'
    )
    topic_for, dlq = unique_topics()
    publisher = ProviderPublisher(
        bootstrap_servers, POLICY, topic_for=topic_for, dead_letter_topic=dlq
    )
    report = publisher.publish_file(
        path, "ooh_contact", today=TODAY, mapping=ColumnMapping.load(mapping_file)
    )
    publisher.close()
    assert report.clean
    assert report.published == 25
    decoded = [
        SchemaRegistry.shipped().decode(v)[1]
        for _, v in read_topic(bootstrap_servers, topic_for["ooh_contact"])
    ]
    assert {d["provider_id"] for d in decoded} == {"HAP-0042"}
    with_bsn = sum(1 for r in rows if r["national_id"])
    assert sum(1 for d in decoded if d["identity"]["national_id_token"]) == with_bsn


def test_an_unreachable_broker_fails_fast() -> None:
    with pytest.raises(KafkaUnavailable, match=r"127\.0\.0\.1:1 "):
        ProviderPublisher("127.0.0.1:1", POLICY, broker_timeout=2)


def test_the_cli_exits_non_zero_on_rejects_unless_allowed(
    stack_settings: Any, kafka_broker: KafkaBroker, extracts: dict[str, Path], tmp_path: Path
) -> None:
    rows = csv_rows(extracts["gp_consultation"])[:10]
    rows[4]["icpc_code"] = "ZZZ"
    path = tmp_path / "gp.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "LINKWATCH_PSEUDONYM_SECRET": SECRET.decode(),
    }
    cmd = [
        str(Path(sys.executable).parent / "linkwatch"),
        "publish",
        "--source",
        "gp_consultation",
        str(path),
        "--rejects",
        str(tmp_path / "rej.csv"),
        "--today",
        "2030-01-01",
    ]
    strict = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert strict.returncode == 1, strict.stderr
    assert "invalid_code 1" in strict.stdout
    allowed = subprocess.run(
        [*cmd, "--allow-rejects"], env=env, capture_output=True, text=True, timeout=120
    )
    assert allowed.returncode == 0, allowed.stderr
    no_secret = {k: v for k, v in env.items() if k != "LINKWATCH_PSEUDONYM_SECRET"}
    refused = subprocess.run(cmd, env=no_secret, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1
    assert "LINKWATCH_PSEUDONYM_SECRET" in refused.stderr


def test_a_broker_that_dies_mid_run_loses_and_duplicates_nothing(
    fresh_kafka_broker: KafkaBroker, extracts: dict[str, Path]
) -> None:
    broker = fresh_kafka_broker
    topic_for, dlq = unique_topics()
    publisher = ProviderPublisher(
        broker.bootstrap_servers, POLICY, topic_for=topic_for, dead_letter_topic=dlq
    )
    path = extracts["gp_consultation"]
    expected = len(csv_rows(path))
    seen = [0]
    killed = threading.Event()

    def progress(n: int) -> None:
        seen[0] += n
        if seen[0] == expected // 3 and not killed.is_set():
            killed.set()
            broker.kill()
            threading.Thread(target=broker.start, daemon=True).start()

    report = publisher.publish_file(path, "gp_consultation", today=TODAY, on_progress=progress)
    publisher.close()
    assert killed.is_set()
    assert report.published == expected
    assert report.failed == 0
    assert report.complete
    messages = read_topic(broker.bootstrap_servers, topic_for["gp_consultation"])
    ids = Counter(SchemaRegistry.shipped().decode(v)[1]["source_record_id"] for _, v in messages)
    assert len(ids) == expected
    assert max(ids.values()) == 1


def test_areas_go_to_the_compacted_topic_keyed_by_area_and_year(
    bootstrap_servers: str, tmp_path: Path
) -> None:
    from linkwatch.streams.publish import publish_areas

    data = generate(SynthConfig(persons=300, years=1, seed=5))
    path = tmp_path / "areas.csv"
    pacsv.write_csv(data.areas, path)
    topic = f"test.areas.{uuid.uuid4().hex[:8]}"
    _, dlq = unique_topics()
    report = publish_areas(bootstrap_servers, path, topic=topic, dead_letter_topic=dlq)
    assert report.rejected == []
    assert report.published == data.areas.num_rows
    messages = read_topic(bootstrap_servers, topic)
    registry = SchemaRegistry.shipped()
    keys = {k.decode() for k, _ in messages if k is not None}
    assert keys == {f"{r['pc4']}/{r['year']}" for r in data.areas.to_pylist()}
    assert all(registry.decode(v)[0].name == "area_ses" for _, v in messages)
