"""Throughput of the provider-side record path: validate, pseudonymise, encode, decode.

Measures, on synthetic GP consultations, records per second of each step and the ratio of
linkwatch's single-object encoding and decoding to bare fastavro on the same records (the
baseline, measured in the same run). Never fails on time.

Usage: python bench/bench_schemas.py [records]   (default 20000)
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import fastavro

from linkwatch.schemas.events import IdentityPolicy, to_event
from linkwatch.schemas.pseudonymise import BloomEncoder, PseudonymDomain
from linkwatch.schemas.registry import SchemaRegistry
from linkwatch.schemas.synth import SynthConfig, generate
from linkwatch.schemas.validation import LAYOUTS, validate_row


def rate(label: str, n: int, work: Callable[[], Any]) -> float:
    """Run ``work`` once and print records per second."""
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    per_second = n / seconds if seconds > 0 else float("inf")
    print(f"{label:<44} {per_second:>12,.0f} records/s  ({seconds:.2f} s)")
    return per_second


def main(records: int) -> None:
    persons = max(200, records // 7)  # about 7 GP consultations per person in 2 years
    data = generate(SynthConfig(persons=persons, years=2, seed=1))
    rows = data.extracts["gp_consultation"].slice(0, records).to_pylist()
    n = len(rows)
    print(f"{n:,} synthetic GP consultations (figures from a shared machine: compare ratios)")
    layout = LAYOUTS["gp_consultation"]
    today = date(2026, 1, 1)
    text_rows = [{k: "" if v is None else str(v) for k, v in r.items()} for r in rows]
    validated: list[dict[str, Any]] = []

    def validate() -> None:
        for i, row in enumerate(text_rows, start=1):
            result = validate_row(layout, row, i, today)
            if result.values is not None:
                validated.append(result.values)

    rate("validate (CSV text -> typed values)", n, validate)
    secret = b"benchmark secret, 32 bytes long."
    token_only = IdentityPolicy(domain=PseudonymDomain("linkwatch.bsn", "1", secret))
    with_bloom = IdentityPolicy(domain=token_only.domain, bloom=BloomEncoder(secret))
    events: list[dict[str, Any]] = []
    rate(
        "pseudonymise: HMAC token",
        n,
        lambda: events.extend(to_event("gp_consultation", v, token_only) for v in validated),
    )
    rate(
        "pseudonymise: HMAC token + 3 Bloom filters",
        n,
        lambda: [to_event("gp_consultation", v, with_bloom) for v in validated],
    )

    registry = SchemaRegistry.shipped()
    sv = registry.get("gp_consultation", 1)
    bare: list[bytes] = []

    def bare_encode() -> None:
        for event in events:
            buffer = io.BytesIO()
            fastavro.schemaless_writer(buffer, sv.parsed, event)
            bare.append(buffer.getvalue())

    base_enc = rate("baseline: bare fastavro encode", n, bare_encode)
    messages: list[bytes] = []
    ours_enc = rate(
        "single-object encode (registry)",
        n,
        lambda: messages.extend(registry.encode(e, "gp_consultation", 1) for e in events),
    )
    base_dec = rate(
        "baseline: bare fastavro decode",
        n,
        lambda: [fastavro.schemaless_reader(io.BytesIO(b), sv.parsed, None) for b in bare],
    )
    ours_dec = rate(
        "single-object decode (registry, same version)",
        n,
        lambda: [registry.decode(m, "gp_consultation", 1) for m in messages],
    )
    evolved = rate(
        "single-object decode resolved to v2 reader",
        n,
        lambda: [registry.decode(m, "gp_consultation", 2) for m in messages],
    )
    print(f"encode ratio registry/bare: {ours_enc / base_enc:.2f}")
    print(
        f"decode ratio registry/bare: {ours_dec / base_dec:.2f} (v1->v2: {evolved / base_dec:.2f})"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
