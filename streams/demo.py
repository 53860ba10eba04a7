"""``linkwatch demo``: the whole system on one machine, from nothing to a live dashboard.

Brings up the local stack, generates a synthetic population with an injected Long
COVID signal, trains the linkage model on it, publishes the three providers'
extracts and the area table, and runs the worker with the dashboard. Every step is
skipped when its result is already there, so running the demo again picks up where
it was (and never publishes the same extracts twice).

The demo's providers send names in clear (``clear_names``) so that linkage can use
them; national ids are pseudonymised as always.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from linkwatch.streams.config import Settings

# National, so that it exists whatever areas a small population happens to live in.
DEFAULT_SIGNAL = (
    "region=all,codes=A04+R02+P20,start=2022-W36,increase=2.5,ramp=4,weeks=16,name=fatigue-rise"
)
SOURCES = ("gp_consultation", "ooh_contact", "hospital_episode")

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoPlan:
    persons: int
    years: int = 3
    seed: int = 1
    signal: str = DEFAULT_SIGNAL


def demo_dir(settings: Settings) -> Path:
    return settings.data_dir / "demo"


def prepare(settings: Settings, plan: DemoPlan, say: Say) -> Settings:
    """Everything before the worker; returns the settings the worker runs with."""
    from linkwatch.streams.stack import Stack

    root = demo_dir(settings)
    say("starting the local stack (Kafka broker, embedded ClickHouse)")
    Stack(settings).up()
    data = root / f"population-{plan.persons}-{plan.years}y-seed{plan.seed}"
    if not (data / "manifest.json").exists():
        say(f"generating {plan.persons:,} synthetic persons over {plan.years} years")
        say(f"with an injected signal: {plan.signal}")
        from linkwatch.schemas.synth import SynthConfig, generate, parse_signal, write_outputs

        config = SynthConfig(
            persons=plan.persons,
            years=plan.years,
            seed=plan.seed,
            signals=(parse_signal(plan.signal),),
        )
        write_outputs(generate(config), data, formats=("csv",))
    model_path = data / "model.json"
    if not model_path.exists():
        say("training the linkage model on the providers' identities (unsupervised)")
        from linkwatch.linkage.fellegi_sunter import train_model
        from linkwatch.linkage.identity_csv import read_identity_files
        from linkwatch.linkage.standardise import standardise

        records = read_identity_files(sorted((data / "linkage").glob("*.identity.csv")))
        train_model([standardise(r) for r in records]).save(model_path)
    marker = data / "published.json"
    if not marker.exists():
        _publish(settings, root, data, marker, say)
    else:
        say(f"extracts already published ({json.loads(marker.read_text())})")
    return dataclasses.replace(settings, linkage_model=model_path)


def _publish(settings: Settings, root: Path, data: Path, marker: Path, say: Say) -> None:
    from linkwatch.schemas.events import IdentityPolicy
    from linkwatch.schemas.pseudonymise import PseudonymDomain, load_secret
    from linkwatch.streams.publish import ProviderPublisher, publish_areas
    from linkwatch.streams.topics import ensure_topics

    secret_file = root / "pseudonym.secret"
    if not os.environ.get("LINKWATCH_PSEUDONYM_SECRET") and not secret_file.exists():
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        secret_file.write_text(secrets.token_urlsafe(32))
        secret_file.chmod(0o600)
    secret = load_secret(None if os.environ.get("LINKWATCH_PSEUDONYM_SECRET") else secret_file)
    ensure_topics(settings.bootstrap_servers)
    say("publishing the area table")
    publish_areas(settings.bootstrap_servers, data / "areas.csv")
    policy = IdentityPolicy(domain=PseudonymDomain("nl-demo", "1", secret), clear_names=True)
    publisher = ProviderPublisher(settings.bootstrap_servers, policy)
    counts = {}
    try:
        for source in SOURCES:
            say(f"publishing {source} records")
            report = publisher.publish_file(data / f"{source}.csv", source, today=date.today())
            counts[source] = report.published
    finally:
        publisher.close()
    marker.write_text(json.dumps(counts))
    say(f"published {sum(counts.values()):,} events: {counts}")
