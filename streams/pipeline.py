"""One pass of the worker over a batch: ingest, link, enrich, load — and what to publish.

``Pipeline.process`` takes a batch of provider messages and returns everything the
worker must make durable before it commits the batch's offsets: the warehouse rows
(already inserted, idempotently), the dead letters, the linker's log entries, and
the linked / merge / review messages for downstream consumers. It is
``prepare`` (ingest, link, enrich: everything but the warehouse) followed by
``load``; the worker runs the two on different threads, so that one batch is
loaded while the next is linked. It holds the
process's state (the linker, the area table and who was merged into whom), which
``restore`` rebuilds from the linker's log after a restart.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from linkwatch.linkage.clusters import MergeEvent, ReviewPair
from linkwatch.schemas.registry import SchemaRegistry
from linkwatch.streams.deadletter import DeadLetter
from linkwatch.streams.enrich import AreaTable, LinkOutcome, linked_row
from linkwatch.streams.ingest import RawMessage, ingest_batch
from linkwatch.streams.linker import LinkDecision, StreamLinker
from linkwatch.streams.sink import WarehouseSink
from linkwatch.streams.warehouse import WarehouseUnavailable

log = logging.getLogger("linkwatch.worker")

Message = tuple[bytes, bytes]  # key, value


@dataclass
class BatchOutput:
    """What one batch produced."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    log_entries: list[tuple[bytes, bytes]] = field(default_factory=list)
    linked: list[Message] = field(default_factory=list)
    merges: list[Message] = field(default_factory=list)
    reviews: list[Message] = field(default_factory=list)
    replayed: int = 0
    #: The offsets the batch covers: topic -> partition -> [first, last].
    manifest: dict[str, dict[str, list[int]]] = field(default_factory=dict)


@dataclass
class LoadJob:
    """The warehouse rows of one prepared batch."""

    rows: list[dict[str, Any]]
    person_rows: list[dict[str, Any]]
    merge_rows: list[dict[str, Any]]
    exact_replay: bool = False


class Pipeline:
    """The worker's state and its batch step."""

    def __init__(
        self,
        registry: SchemaRegistry,
        linker: StreamLinker,
        sink: WarehouseSink,
        *,
        areas: AreaTable | None = None,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.registry = registry
        self.linker = linker
        self.sink = sink
        self.areas = areas or AreaTable()
        self.now = now
        # surviving person -> every person merged into it, so a later merge of the
        # survivor can point all of them at the new survivor.
        self._absorbed: dict[str, set[str]] = {}
        self.events = EventLoader(sink)
        #: False when other processes load the events (from ``linkwatch.linked.v1``): this
        #: one then writes only persons and merges.
        self.load_events = True

    def restore(self, log: Iterable[bytes]) -> int:
        """Rebuild the linker (and the merge map) from the linker's log.

        The merges the log implies are written to the warehouse again, in their final
        form: a crash can come after the log has a batch and before its merges were
        stored.
        """
        decisions = self.linker.restore(log)
        for decision in decisions:
            self._follow(decision.merges, version=0)
        rows = [
            {
                "person_id": person,
                "canonical_person_id": survivor,
                "merged_at": self.now(),
                "version": len(self.linker),
            }
            for survivor, absorbed in sorted(self._absorbed.items())
            for person in sorted(absorbed)
        ]
        if rows:
            self.sink.write_rows("person_merges", rows)
        return len(decisions)

    def snapshot(self, log_position: int) -> dict[str, Any]:
        """The linking state after the first ``log_position`` entries of the linker's log."""
        return {
            "linker": self.linker.snapshot(),
            "absorbed": self._absorbed,
            "log_position": log_position,
        }

    def load_snapshot(self, snap: dict[str, Any]) -> int:
        """Take the state of :meth:`snapshot`; returns the log position it stands at."""
        linker = StreamLinker.from_snapshot(self.linker.engine.model, snap["linker"])
        self.linker, self._absorbed = linker, snap["absorbed"]
        return int(snap["log_position"])

    def apply_areas(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Take area records (from the compacted reference topic) into the table and warehouse."""
        areas = [self.areas.update(r) for r in records]
        return self.sink.write_areas(areas)

    def process(self, messages: Sequence[RawMessage], *, exact_replay: bool = False) -> BatchOutput:
        """Ingest, link, enrich and load one batch (:meth:`prepare`, then :meth:`load`).

        ``exact_replay``: ``messages`` are exactly a batch of a manifest. Its rows are sent
        again whole, with the same deduplication token: the warehouse drops what it has
        and writes what a crash left out, in the event table and in every view fed by it.
        """
        out, job = self.prepare(messages, exact_replay=exact_replay)
        self.load(job)
        return out

    def prepare(
        self, messages: Sequence[RawMessage], *, exact_replay: bool = False
    ) -> tuple[BatchOutput, LoadJob]:
        """Ingest, link and enrich one batch: its outputs and the rows :meth:`load` writes.

        A worker makes the batch's linker-log entries and manifest (the offsets it covers)
        durable before it loads the rows: whatever the warehouse holds, the log holds too,
        so a restarted linker gives replayed events the persons the warehouse has, and a
        batch cut off by a crash can be formed again exactly.
        """
        out = BatchOutput()
        ingested = ingest_batch(messages, self.registry, now=self.now)
        out.dead_letters = ingested.dead_letters
        decisions, entries = self.linker.link(ingested.events)
        out.log_entries = [
            (e.event_id.encode(), entry)
            for e, entry in _paired(ingested.events, decisions, entries)
        ]
        out.manifest = _manifest(messages)
        merge_rows: list[dict[str, Any]] = []
        person_rows: list[dict[str, Any]] = []
        for event, decision in zip(ingested.events, decisions, strict=True):
            out.replayed += decision.replayed
            row = linked_row(
                event,
                LinkOutcome(decision.person_id, decision.outcome, decision.weight),
                self.areas,
            )
            out.rows.append(row)
            out.linked.append((row["person_id"].encode(), _json(row)))  # a person's events together
            if decision.outcome in ("new", "review"):  # replacing rows: a replay rewrites them
                person_rows.append(_person(row, event.identity, len(self.linker)))
            for merge in decision.merges:
                out.merges.append(
                    (merge.old_person.encode(), _json(_merge_doc(merge, event.event_time)))
                )
            merge_rows.extend(
                self._follow(decision.merges, version=len(self.linker), when=event.event_time)
            )
            for pair in decision.review:
                out.reviews.append((pair.record_id.encode(), _json(_review_doc(pair))))
        return out, LoadJob(out.rows, person_rows, merge_rows, exact_replay)

    def load(self, job: LoadJob) -> None:
        """Write a prepared batch's rows (idempotently; see :class:`EventLoader`)."""
        self.events.load(
            job.rows if self.load_events else [],
            job.person_rows,
            job.merge_rows,
            exact_replay=job.exact_replay,
        )

    def forget_partitions(self) -> None:
        """Look again at what the warehouse holds (after partitions were reassigned)."""
        self.events.forget_partitions()

    def _follow(
        self, merges: Sequence[MergeEvent], *, version: int, when: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        rows = []
        for merge in merges:
            moved = self._absorbed.pop(merge.old_person, set()) | {merge.old_person}
            self._absorbed.setdefault(merge.surviving_person, set()).update(moved)
            for person in sorted(moved):
                rows.append(
                    {
                        "person_id": person,
                        "canonical_person_id": merge.surviving_person,
                        "merged_at": when or dt.datetime.now(dt.UTC),
                        "version": version,
                    }
                )
        return rows


class EventLoader:
    """Linked-event rows into the warehouse, each provider (topic, partition, offset) once.

    Used by the pipeline, and by every worker that loads ``linkwatch.linked.v1`` when the
    loading is shared. Correct as long as one process at a time writes the rows of any
    given provider event (the pipeline holds all partitions; shared loaders get each
    event from one partition of the linked topic, always the same one).
    """

    def __init__(self, sink: WarehouseSink) -> None:
        self.sink = sink
        # (topic, partition) -> highest offset the warehouse held when first met here.
        self._stored_high: dict[tuple[str, int], int] = {}
        self._stored_lock = threading.Lock()
        #: Rows not inserted because the warehouse already held them (replays).
        self.skipped_stored = 0
        #: Seconds a batch waits for an unreachable warehouse before the error goes up.
        self.outage_limit = 600.0
        self.sleep: Callable[[float], None] = time.sleep

    def load(
        self,
        rows: list[dict[str, Any]],
        person_rows: Sequence[dict[str, Any]] = (),
        merge_rows: Sequence[dict[str, Any]] = (),
        exact_replay: bool = False,
    ) -> int:
        """Write a batch's rows; while the warehouse is unreachable, wait and try again.

        Each attempt looks again at what the warehouse holds, so an insert that landed
        although its acknowledgement was lost is not repeated. After ``outage_limit``
        seconds the error goes up (and the worker stops, to be restarted). Returns the
        event rows written.
        """
        delay, waited = 1.0, 0.0
        while True:
            try:
                fresh = self._not_yet_stored(rows)
                self.sink.write_events(rows if exact_replay else fresh)
                if person_rows:
                    self.sink.write_rows("persons", person_rows)
                if merge_rows:
                    self.sink.write_rows("person_merges", merge_rows)
                return len(rows if exact_replay else fresh)
            except WarehouseUnavailable as exc:
                if waited >= self.outage_limit:
                    raise
                log.warning(
                    "warehouse unavailable (%s); trying the batch again in %.0f s", exc, delay
                )
                self.sleep(delay)
                waited += delay
                delay = min(delay * 2, 15.0)
                self.forget_partitions()

    def forget_partitions(self) -> None:
        """Look again at what the warehouse holds (after partitions were reassigned)."""
        with self._stored_lock:
            self._stored_high.clear()

    def _not_yet_stored(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows minus those the warehouse already holds (and minus repeats within ``rows``).

        A partition's offsets up to the highest one stored (as read when this process
        first met the partition, then raised by every batch it stores) may be in the
        warehouse already: a crash after the insert and before the commit, replayed and
        cut differently. Those are looked up, and only those; offsets beyond are new.
        """
        with self._stored_lock:
            return self._filter_stored(_first_of_each(rows))

    def _filter_stored(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        suspects: dict[tuple[str, int], list[int]] = {}
        highest: dict[tuple[str, int], int] = {}
        for r in rows:
            key = (r["kafka_topic"], r["kafka_partition"])
            high = self._stored_high.get(key)
            if high is None:
                high = self._stored_high[key] = self.sink.max_stored_offset(*key)
            if r["kafka_offset"] <= high:
                suspects.setdefault(key, []).append(r["kafka_offset"])
            highest[key] = max(highest.get(key, -1), r["kafka_offset"])
        for key, offset in highest.items():  # what this batch stores counts from now on
            self._stored_high[key] = max(self._stored_high[key], offset)
        if not suspects:
            return rows
        stored: set[tuple[str, int, int]] = set()
        for (topic, partition), offsets in suspects.items():
            found = self.sink.stored_offsets(topic, partition, min(offsets), max(offsets))
            stored |= {(topic, partition, o) for o in found}
        self.skipped_stored += len(stored)
        return [
            r
            for r in rows
            if (r["kafka_topic"], r["kafka_partition"], r["kafka_offset"]) not in stored
        ]


def _first_of_each(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` without a second row of the same provider event (a replay within a batch)."""
    seen: set[tuple[str, int, int]] = set()
    out = []
    for r in rows:
        key = (r["kafka_topic"], r["kafka_partition"], r["kafka_offset"])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out if len(out) < len(rows) else rows


def _manifest(messages: Sequence[RawMessage]) -> dict[str, dict[str, list[int]]]:
    ranges: dict[str, dict[str, list[int]]] = {}
    for m in messages:
        span = ranges.setdefault(m.topic, {}).setdefault(str(m.partition), [m.offset, m.offset])
        span[0], span[1] = min(span[0], m.offset), max(span[1], m.offset)
    return ranges


def _paired(
    events: Sequence[Any], decisions: Sequence[LinkDecision], entries: Sequence[bytes]
) -> list[tuple[Any, bytes]]:
    """Log entries belong to the events that were newly indexed, in order."""
    fresh = [e for e, d in zip(events, decisions, strict=True) if not d.replayed]
    return list(zip(fresh, entries, strict=True))


def _person(row: Mapping[str, Any], identity: Mapping[str, Any], version: int) -> dict[str, Any]:
    dob = identity.get("date_of_birth")
    birth_year = identity.get("birth_year") or (dob.year if dob else 0)
    return {
        "person_id": row["person_id"],
        "birth_year": int(birth_year or 0),
        "sex": row["sex"],
        "first_seen": row["event_time"],
        "version": version,
    }


def _merge_doc(merge: MergeEvent, when: dt.datetime) -> dict[str, Any]:
    return {
        "old_person_id": merge.old_person,
        "surviving_person_id": merge.surviving_person,
        "record_id": merge.record_id,
        "match_weight": merge.match_weight,
        "event_time": when,
    }


def _review_doc(pair: ReviewPair) -> dict[str, Any]:
    return {
        "record_id": pair.record_id,
        "candidate_record_id": pair.candidate_record_id,
        "match_weight": pair.match_weight,
        "match_probability": pair.match_probability,
    }


def _json(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, default=_default, separators=(",", ":"), ensure_ascii=False).encode()


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
