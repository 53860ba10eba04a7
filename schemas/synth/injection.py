"""Emerging trends injected into the synthetic GP data, for testing outbreak detectors.

A signal is written as ``key=value`` pairs separated by commas::

    name=fatigue-north,region=9,codes=A04+P20,start=2022-03-07,increase=2.0,ramp=4,weeks=12

* ``region`` — a PC4 prefix ('9' for 9000-9999, '1012' for one area) or ``all``;
* ``codes`` — ICPC codes joined by ``+``;
* ``start`` — first day (ISO date) or ISO week (``2022-W10``, its Monday);
* ``increase`` — the relative increase at full strength (2.0 doubles the baseline);
* ``ramp`` — weeks over which the increase grows linearly from 1 to ``increase``;
* ``weeks`` — how long the signal lasts (default: to the end of the period).

Extra consultations are drawn for residents of the region at ``(increase - 1)`` times
the region's own daily baseline rate of those codes in the generated data, before
practice coding is applied, so coded counts rise by the same relative amount.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import numpy as np

from linkwatch.schemas.synth.extracts import SourceEvents
from linkwatch.schemas.synth.population import Population, from_days, to_days


class SignalSpecError(ValueError):
    """An --inject specification cannot be understood."""


@dataclass(frozen=True)
class Signal:
    """One injected trend."""

    name: str
    region: str
    codes: tuple[str, ...]
    start: date
    increase: float
    ramp_weeks: int = 4
    weeks: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["start"] = self.start.isoformat()
        out["codes"] = list(self.codes)
        return out


def _parse_start(text: str) -> date:
    try:
        if "W" in text.upper():
            year, week = text.upper().split("-W")
            return date.fromisocalendar(int(year), int(week), 1)
        return date.fromisoformat(text)
    except ValueError:
        raise SignalSpecError(
            f"start={text!r}: expected a date (2022-03-07) or ISO week (2022-W10)"
        ) from None


def parse_signal(spec: str, index: int = 1) -> Signal:
    """Parse one ``--inject`` specification; errors name the key and value."""
    fields: dict[str, str] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise SignalSpecError(f"{part!r} in --inject: expected key=value")
        fields[key.strip().lower()] = value.strip()
    unknown = set(fields) - {"name", "region", "codes", "start", "increase", "ramp", "weeks"}
    if unknown:
        raise SignalSpecError(f"unknown --inject key(s): {', '.join(sorted(unknown))}")
    for key in ("codes", "start", "increase"):
        if key not in fields:
            raise SignalSpecError(f"--inject {spec!r}: missing {key}=")
    region = fields.get("region", "all")
    if region != "all" and not (region.isdigit() and 1 <= len(region) <= 4):
        raise SignalSpecError(f"region={region!r}: expected a PC4 prefix such as 9 or 1012, or all")
    try:
        increase = float(fields["increase"])
        ramp = int(fields.get("ramp", "4"))
        weeks = int(fields["weeks"]) if "weeks" in fields else None
    except ValueError as exc:
        raise SignalSpecError(f"--inject {spec!r}: {exc}") from None
    if increase <= 1.0:
        raise SignalSpecError(f"increase={increase}: must be above 1 (2.0 doubles the baseline)")
    codes = tuple(c.strip().upper() for c in fields["codes"].split("+") if c.strip())
    if not codes:
        raise SignalSpecError("codes=: give at least one ICPC code, e.g. codes=R02+R05")
    return Signal(
        name=fields.get("name", f"signal-{index}"),
        region=region,
        codes=codes,
        start=_parse_start(fields["start"]),
        increase=increase,
        ramp_weeks=max(ramp, 0),
        weeks=weeks,
    )


def inject(
    rng: np.random.Generator, pop: Population, raw_gp: SourceEvents, signal: Signal
) -> tuple[SourceEvents, dict[str, Any]]:
    """Extra GP consultations for one signal, and its truth record."""
    start = to_days(signal.start)
    if not pop.start_day <= start <= pop.end_day:
        raise SignalSpecError(
            f"signal {signal.name}: start {signal.start} is outside the period "
            f"{pop.start} to {pop.end}"
        )
    end = pop.end_day if signal.weeks is None else min(pop.end_day, start + 7 * signal.weeks - 1)
    pc4 = pop.areas.pc4[pop.area].astype(str)
    residents = (
        np.flatnonzero(np.char.startswith(pc4, signal.region))
        if signal.region != "all"
        else np.arange(pop.size)
    )
    if len(residents) == 0:
        raise SignalSpecError(
            f"signal {signal.name}: no resident has a PC4 starting with {signal.region}"
        )
    in_region = np.isin(raw_gp.person, residents)
    has_code = np.isin(raw_gp.columns["icpc_code"], list(signal.codes))
    baseline = in_region & has_code & (raw_gp.kind == "background")
    days_in_period = pop.end_day - pop.start_day + 1
    per_day = baseline.sum() / days_in_period
    day = np.arange(start, end + 1)
    ramp_days = max(7 * signal.ramp_weeks, 1)
    strength = 1 + (signal.increase - 1) * np.minimum((day - start + 1) / ramp_days, 1.0)
    counts = rng.poisson((strength - 1) * per_day)
    days = np.repeat(day, counts)
    codes_seen = raw_gp.columns["icpc_code"][baseline]
    if len(codes_seen) == 0:
        codes_seen = np.array(signal.codes, dtype=object)
    code = codes_seen[rng.integers(0, len(codes_seen), len(days))]
    person = residents[rng.integers(0, len(residents), len(days))]
    events = SourceEvents(
        raw_gp.source,
        person.astype(np.int64),
        days.astype(np.int64),
        np.full(len(days), f"injected:{signal.name}", dtype=object),
        {"icpc_code": np.asarray(code, dtype=object)},
    )
    weekly: dict[str, int] = {}
    for d, c in zip(day.tolist(), counts.tolist(), strict=True):
        year, week, _ = from_days(d).isocalendar()
        key = f"{year}-W{week:02d}"
        weekly[key] = weekly.get(key, 0) + c
    truth = {
        **signal.as_dict(),
        "end": from_days(end).isoformat(),
        "residents": len(residents),
        "baseline_per_week": round(float(per_day * 7), 3),
        "injected_records": len(days),
        "injected_per_week": weekly,
    }
    return events, truth
