"""The link stage: one active linker holding the linkage index in memory.

``StreamLinker`` feeds events' identities, one at a time and in arrival order, to
the incremental engine of :mod:`linkwatch.linkage`, so its decisions are those of
``linkwatch link`` over the same records in the same order. Every identity it
indexes is also returned as a log entry; the worker writes those to the linker's
recovery topic, and ``restore`` replays them in order to rebuild exactly the same
state after a restart (the engine is deterministic for a given order).

An event whose id is already indexed (a replay after a crash, before its offsets
were committed) is not indexed again: it gets its record's current person.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from linkwatch.linkage.clusters import LinkageEngine, MergeEvent, ReviewPair
from linkwatch.linkage.fellegi_sunter import FellegiSunterModel
from linkwatch.linkage.standardise import RawRecord, standardise
from linkwatch.streams.ingest import IngestedEvent

LOG_FORMAT = 1
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


def log_entry(raw: RawRecord) -> bytes:
    """One line of the linker's recovery log (compact JSON, no empty fields)."""
    fields = {k: v for k, v in asdict(raw).items() if v not in (None, "")}
    return json.dumps(
        {"v": LOG_FORMAT, **fields}, separators=(",", ":"), ensure_ascii=False
    ).encode()


def record_from_log(data: bytes) -> RawRecord:
    doc = json.loads(data)
    if doc.pop("v", None) != LOG_FORMAT:
        raise ValueError(f"linker log entry of another format: {data[:80]!r}")
    return RawRecord(**doc)


class StreamLinker:
    """Links events one by one; remembers which events it has indexed."""

    def __init__(self, model: FellegiSunterModel) -> None:
        self.engine = LinkageEngine(model)
        self._row_of: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._row_of)

    def link(self, events: Sequence[IngestedEvent]) -> tuple[list[LinkDecision], list[bytes]]:
        """Decisions for ``events`` in order, and log entries for the identities newly indexed."""
        decisions: list[LinkDecision] = []
        entries: list[bytes] = []
        for event in events:
            row = self._row_of.get(event.event_id)
            if row is not None:
                person = self.engine.person_of_row(row)
                decisions.append(LinkDecision(event.event_id, person, "linked", 0.0, replayed=True))
                continue
            raw = identity_record(event)
            decisions.append(self._add(raw))
            entries.append(log_entry(raw))
        return decisions, entries

    def restore(self, entries: Iterable[bytes]) -> list[LinkDecision]:
        """Rebuild the index from the recovery log, in its order; returns the decisions taken
        again (their merges rebuild what downstream state needs)."""
        decisions = []
        for data in entries:
            raw = record_from_log(data)
            if raw.record_id not in self._row_of:
                decisions.append(self._add(raw))
        return decisions

    def _add(self, raw: RawRecord) -> LinkDecision:
        self._row_of[raw.record_id] = len(self._row_of)
        result = self.engine.add(standardise(raw))
        outcome = "new" if result.status in ("new", "unlinkable") else "linked"
        if outcome == "new" and result.review:
            outcome = "review"
        return LinkDecision(
            raw.record_id,
            result.person_id,
            outcome,
            float(result.match_weight or 0.0),
            merges=result.merges,
            review=result.review,
        )
