"""The link stage: one active linker holding the linkage index in memory.

``StreamLinker`` feeds events' identities, in arrival order, to
the incremental engine of :mod:`linkwatch.linkage`, so its decisions are those of
``linkwatch link`` over the same records in the same order (a batch goes to the engine
as one sequence, which decides exactly as one record at a time would). Every identity it
indexes is also returned as a log entry; the worker writes those to the linker's
recovery topic, and ``restore`` replays them in order to rebuild exactly the same
state after a restart (the engine is deterministic for a given order).

An event whose id is already indexed (a replay after a crash, before its offsets
were committed) is not indexed again: it gets its record's current person.
"""

from __future__ import annotations

import hashlib
import json
import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from linkwatch.linkage.clusters import LinkageEngine, MergeEvent, Repeat, ReviewPair
from linkwatch.linkage.fellegi_sunter import FellegiSunterModel
from linkwatch.linkage.standardise import RawRecord, StandardRecord, standardise
from linkwatch.streams.ingest import IngestedEvent

LOG_FORMAT = 1
SNAPSHOT_FORMAT = 2
OUTCOMES = ("linked", "new", "review")
_SEX = {"MALE": "M", "FEMALE": "F"}


@dataclass(frozen=True)
class LinkDecision:
    """The person of one event, and what the linker did to find it."""

    event_id: str
    person_id: str
    outcome: str  # linked | new | review (the warehouse's vocabulary)
    weight: float
    merges: tuple[MergeEvent, ...] = ()
    review: tuple[ReviewPair, ...] = ()
    replayed: bool = False


def identity_record(event: IngestedEvent) -> RawRecord:
    """The linkage engine's view of an event's identity block.

    The national id is the provider's pseudonym token (equal tokens mean equal ids
    within one pseudonym domain); names are used where the provider sent them.
    """
    identity = event.identity
    dob = identity.get("date_of_birth")
    birth = (
        dob.isoformat()
        if dob is not None
        else (str(identity["birth_year"]) if identity.get("birth_year") else None)
    )
    return RawRecord(
        record_id=event.event_id,
        source=event.source,
        national_id=identity.get("national_id_token"),
        given_name=identity.get("given_name"),
        family_name=identity.get("family_name"),
        date_of_birth=birth,
        sex=_SEX.get(identity.get("sex") or ""),
        postcode=identity.get("postcode"),
        house_number=identity.get("house_number"),
    )


_LOG_FIELDS = tuple(f.name for f in fields(RawRecord))
_IDENTITY_FIELDS = tuple(n for n in _LOG_FIELDS if n not in ("record_id", "source"))


def identity_digest(raw: RawRecord) -> int:
    """A 128-bit digest of what a provider sent about a person (not the record id or source)."""
    text = "\x1f".join(
        "" if (v := getattr(raw, name)) is None else str(v) for name in _IDENTITY_FIELDS
    )
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=16).digest(), "little")


def log_entry(raw: RawRecord) -> bytes:
    """One line of the linker's recovery log (compact JSON, no empty fields)."""
    doc: dict[str, object] = {"v": LOG_FORMAT}
    for name in _LOG_FIELDS:
        value = getattr(raw, name)
        if value is not None and value != "":
            doc[name] = value
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def model_digest(model: FellegiSunterModel) -> str:
    """A short fingerprint of a linkage model's content."""
    text = json.dumps(model.to_json(), sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def record_from_log(data: bytes) -> RawRecord:
    doc = json.loads(data)
    if doc.pop("v", None) != LOG_FORMAT:
        raise ValueError(f"linker log entry of another format: {data[:80]!r}")
    return RawRecord(**doc)


class StreamLinker:
    """Links events in arrival order; remembers which events it has indexed."""

    #: Identities replayed per engine sequence while restoring.
    restore_chunk = 20_000

    def __init__(self, model: FellegiSunterModel) -> None:
        self.engine = LinkageEngine(model)
        self._row_of: dict[str, int] = {}
        # Per indexed identity: the outcome and weight it was linked with, for replays.
        self._outcome = array("b")
        self._weight = array("f")
        # identity_digest of a linkable identity → a row holding it, so that an identity
        # sent again is neither standardised nor encoded again (see Repeat).
        self._row_of_identity: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._row_of)

    @property
    def last_record_id(self) -> str | None:
        ids = self.engine.store.record_ids
        return ids[-1] if ids else None

    def memory_bytes(self) -> int:
        """Bytes held by the linker: the engine's structures and the linker's own maps."""
        size = sys.getsizeof
        total = self.engine.memory_bytes() + size(self._outcome) + size(self._weight)
        for mapping in (self._row_of, self._row_of_identity):
            total += size(mapping) + sum(size(k) + size(v) for k, v in mapping.items())
        return total

    def snapshot(self) -> dict[str, Any]:
        """The linker's whole state (picklable), tagged with the model it was built with."""
        return {
            "format": SNAPSHOT_FORMAT,
            "model": model_digest(self.engine.model),
            "identities": len(self),
            "last_record_id": self.last_record_id,
            "engine": self.engine.state(),
            "outcome": self._outcome,
            "weight": self._weight,
        }

    @classmethod
    def from_snapshot(cls, model: FellegiSunterModel, snap: dict[str, Any]) -> StreamLinker:
        """A linker from :meth:`snapshot`; refuses one of another format or model."""
        if snap.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"linker snapshot of format {snap.get('format')!r}")
        if snap.get("model") != model_digest(model):
            raise ValueError("linker snapshot built with another linkage model")
        linker = cls(model)
        linker.engine = LinkageEngine.from_state(model, snap["engine"])
        linker._row_of = {rid: row for row, rid in enumerate(linker.engine.store.record_ids)}
        linker._outcome, linker._weight = snap["outcome"], snap["weight"]
        if not len(linker._row_of) == len(linker._outcome) == snap["identities"]:
            raise ValueError("linker snapshot is inconsistent")
        return linker

    def link(self, events: Sequence[IngestedEvent]) -> tuple[list[LinkDecision], list[bytes]]:
        """Decisions for ``events`` in order, and log entries for the identities newly indexed.

        The new identities of a batch go to the engine as one sequence, which decides
        exactly as adding them one by one would.
        """
        fresh: list[RawRecord] = []
        slots: list[int | None] = []  # per event: index into fresh, or None if already indexed
        for event in events:
            if event.event_id in self._row_of:
                slots.append(None)
                continue
            self._row_of[event.event_id] = len(self._row_of)
            slots.append(len(fresh))
            fresh.append(identity_record(event))
        taken = self._add(fresh)
        decisions = [
            taken[slot] if slot is not None else self._replayed(event.event_id)
            for event, slot in zip(events, slots, strict=True)
        ]
        return decisions, [log_entry(raw) for raw in fresh]

    def restore(self, entries: Iterable[bytes]) -> list[LinkDecision]:
        """Rebuild the index from the recovery log, in its order; returns the decisions taken
        again (their merges rebuild what downstream state needs)."""
        decisions: list[LinkDecision] = []
        pending: list[RawRecord] = []
        for data in entries:
            raw = record_from_log(data)
            if raw.record_id in self._row_of:
                continue
            self._row_of[raw.record_id] = len(self._row_of)
            pending.append(raw)
            if len(pending) >= self.restore_chunk:
                decisions.extend(self._add(pending))
                pending = []
        decisions.extend(self._add(pending))
        return decisions

    def _replayed(self, event_id: str) -> LinkDecision:
        """An event indexed before, decided as it was then: the person, outcome and weight it
        was linked with. Merges since then are events of their own, so a replayed event's
        row (and the partition of ``linkwatch.linked.v1`` it goes to) is the first one's."""
        row = self._row_of[event_id]
        return LinkDecision(
            event_id,
            self.engine.first_person_of_row(row),
            OUTCOMES[self._outcome[row]],
            float(self._weight[row]),
            replayed=True,
        )

    def _add(self, raws: Sequence[RawRecord]) -> list[LinkDecision]:
        if not raws:
            return []
        records: list[StandardRecord | Repeat] = []
        known = self._row_of_identity
        row = len(self.engine.store)
        for raw in raws:
            digest = identity_digest(raw)
            copy = known.get(digest)
            if copy is not None:
                records.append(Repeat(raw, copy))
            else:
                standard = standardise(raw)
                if standard.has_linkable_content:
                    known[digest] = row
                records.append(standard)
            row += 1
        results = self.engine.add_sequence(records)
        decisions = []
        for raw, result in zip(raws, results, strict=True):
            outcome = "new" if result.status in ("new", "unlinkable") else "linked"
            if outcome == "new" and result.review:
                outcome = "review"
            self._outcome.append(OUTCOMES.index(outcome))
            self._weight.append(float(result.match_weight or 0.0))
            decisions.append(
                LinkDecision(
                    raw.record_id,
                    result.person_id,
                    outcome,
                    float(result.match_weight or 0.0),
                    merges=result.merges,
                    review=result.review,
                )
            )
        return decisions
