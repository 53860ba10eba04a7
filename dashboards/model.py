"""The warehouse model: create or migrate linkwatch's tables and views on a ``Warehouse``.

The DDL lives in ``sql/schema.sql`` (current ClickHouse dialect, every statement
``IF NOT EXISTS``), so ``create_model`` can run at every start. ``cluster_ddl`` turns
the same statements into the production variant for a ClickHouse cluster.

Replays: the sink inserts each batch with an ``insert_deduplication_token``; the event
table and the pre-aggregate tables keep a deduplication window, and ClickHouse
(``deduplicate_blocks_in_dependent_materialized_views``, on by default since 24.x)
drops the replayed block in the views too, so aggregates are never inflated.

Upgrades: a view whose table is new (a model created by an older linkwatch) is filled
from the events already there (a view on merges, over all merges), the Long COVID state
of schema version 1, which kept onsets without filters, is replaced and rebuilt, and the
copies of version 2 for merged ids, which the Long COVID panel corrected from at every
query, are dropped: version 3 keeps the correction itself (``long_covid_corrections``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from string import Template

from linkwatch.dashboards.code_groups import CODE_LIST_VERSION, code_group_rows
from linkwatch.streams.warehouse import Warehouse

SCHEMA_VERSION = 3
DEFAULT_DATABASE = "linkwatch"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_STATEMENT_SPLIT = re.compile(r"^\s*;\s*$", re.MULTILINE)
_VIEW = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS \S+\s+TO (\S+) AS\n(.*)\Z", re.DOTALL)
#: Objects of schema version 1 whose shape changed in version 2, views first.
_LONG_COVID_V1 = (
    "long_covid_delta_mv", "long_covid_persons_mv", "long_covid_onsets_mv",
    "long_covid_strata_mv", "long_covid_delta", "long_covid_onsets", "long_covid_persons",
    "long_covid_strata",
)  # fmt: skip
#: Objects of schema version 2 that version 3 no longer keeps, views first: copies of
#: the Long COVID state for merged ids, read by the panel at every query.
_MERGED_COPIES_V2 = (
    "long_covid_persons_merges_mv", "long_covid_strata_merges_mv",
    "long_covid_persons_merged_mv", "long_covid_strata_merged_mv",
    "long_covid_persons_merged", "long_covid_strata_merged",
)  # fmt: skip
#: Chunks (by person id) in which a new view is filled from the events already stored.
BACKFILL_CHUNKS = 8
log = logging.getLogger(__name__)


class ModelError(ValueError):
    """The model cannot be created as asked (a bad database or cluster name)."""


def check_identifier(name: str, what: str) -> str:
    """``name`` if it is a plain ClickHouse identifier, else ModelError naming ``what``."""
    if not _IDENT.fullmatch(name):
        raise ModelError(
            f"{what} {name!r}: expected letters, digits and _ (not starting with a digit)"
        )
    return name


def schema_statements(database: str = DEFAULT_DATABASE) -> list[str]:
    """The model's DDL statements for ``database``, in the order they must run."""
    check_identifier(database, "database")
    sql = resources.files("linkwatch.dashboards").joinpath("sql")
    text = sql.joinpath("schema.sql").read_text("utf-8")
    correction = Template(sql.joinpath("long_covid_correction.sql").read_text("utf-8"))
    rendered = Template(text).substitute(
        db=database,
        correction_for_blocks=_correction(correction, database, _FOR_BLOCKS),
        correction_for_merges=_correction(correction, database, _FOR_MERGES),
    )
    statements = []
    for chunk in _STATEMENT_SPLIT.split(rendered):
        body = "\n".join(
            line for line in chunk.splitlines() if not line.lstrip().startswith("--")
        ).strip()
        if body:
            statements.append(body)
    return statements


_MEMBERS = """
    SELECT person_id AS id, canonical_person_id AS grp FROM (${membership})
    WHERE canonical_person_id IN (SELECT grp FROM (${groups}))
    UNION ALL
    SELECT grp AS id, grp FROM (${groups})
"""
_BLOCK_IDS = "SELECT person_id FROM ${db}.long_covid_delta WHERE mask = 0"
#: Where the correction runs after a block of events (a view on long_covid_delta, the
#: block's state): the groups of the block's ids, the block's state added.
_FOR_BLOCKS = {
    "source": "${db}.long_covid_delta",
    "membership": "SELECT person_id, canonical_person_id FROM ${db}.person_merges_latest",
    "groups": f"""
        SELECT DISTINCT canonical_person_id AS grp FROM ${{db}}.person_merges_latest
        WHERE person_id IN ({_BLOCK_IDS}) OR canonical_person_id IN ({_BLOCK_IDS})
    """,
    "extra_persons": """UNION ALL
        SELECT person_id AS id, covid_first FROM ${db}.long_covid_delta
        WHERE mask = 0 AND has_covid = 1""",
    "extra_strata": """UNION ALL
        SELECT person_id AS id, source, region, age_band, sex, ses_quintile,
               stratum_post_first AS post_first, stratum_has_post AS has_post,
               stratum_symptom_dates AS symptom_dates
        FROM ${db}.long_covid_delta
        WHERE mask = 31 AND in_block = 1""",
}
#: After a block of merges (a view on person_merges, the block): the groups the merges
#: name and the ids they move, with the block's rows over the merges stored before.
_FOR_MERGES = {
    "source": "${db}.person_merges",
    "membership": """
        SELECT person_id, argMax(canonical_person_id, version) AS canonical_person_id
        FROM ${db}.person_merges GROUP BY person_id
        UNION ALL
        SELECT person_id, canonical_person_id FROM ${db}.person_merges_latest
        WHERE person_id NOT IN (SELECT person_id FROM ${db}.person_merges)
    """,
    "groups": """
        SELECT DISTINCT arrayJoin([person_id, canonical_person_id]) AS grp
        FROM ${db}.person_merges
    """,
    "extra_persons": "",
    "extra_strata": "",
}


def _correction(template: Template, database: str, place: dict[str, str]) -> str:
    """The Long COVID merge correction statement for one place it runs."""
    members = Template(Template(_MEMBERS).safe_substitute(place)).substitute(db=database)
    parts = {k: Template(v).substitute(db=database) for k, v in place.items()}
    return template.substitute(db=database, members=members, **parts).strip()


#: The oldest server the model is written for; older ones get :func:`legacy_statements`.
CURRENT_DIALECT = (20, 1)
_LEGACY_ONLY_NEWER = ("SimpleAggregateFunction",)
#: Objects those servers cannot keep: the copies for merged ids need joins they lack.
_LEGACY_LEFT_OUT = ("person_days_merged",)
_OBJECT_NAME = re.compile(r"CREATE (?:TABLE|MATERIALIZED VIEW|VIEW) IF NOT EXISTS (\S+)")


def legacy_statements(statements: list[str]) -> tuple[list[str], list[str]]:
    """The model for ClickHouse servers older than 20.1 (Debian's 18.16): (statements, skipped).

    Types those servers lack become their older equivalents (``DateTime64(3, 'UTC')`` →
    ``DateTime('UTC')``, ``LowCardinality(T)`` → ``T``), settings they do not know are
    dropped, and objects that need newer features (the Long COVID pre-aggregates and the
    copies of merged ids' days), with everything built on them, are left out and named.
    """
    kept: list[str] = []
    skipped: list[str] = []
    for statement in statements:
        name_match = _OBJECT_NAME.search(statement)
        name = name_match.group(1) if name_match else ""
        if (
            any(token in statement for token in _LEGACY_ONLY_NEWER)
            or any(re.search(rf"\b{re.escape(s)}\b", statement) for s in skipped)
            or any(re.search(rf"\.{name}\b", statement) for name in _LEGACY_LEFT_OUT)
        ):
            if name:
                skipped.append(name)
            continue
        text = re.sub(r"DateTime64\(3,\s*'UTC'\)", "DateTime('UTC')", statement)
        text = re.sub(r"LowCardinality\((\w+)\)", r"\1", text)
        text = text.replace("now64(3)", "now()")
        text = re.sub(r",\s*non_replicated_deduplication_window = \d+", "", text)
        text = re.sub(r"\n\s*SETTINGS non_replicated_deduplication_window = \d+", "", text)
        kept.append(text)
    return kept, skipped


def create_model(warehouse: Warehouse, database: str = DEFAULT_DATABASE) -> int:
    """Create (or bring up to date) the model in ``database``; return the schema version.

    Idempotent: running it on an existing model changes nothing. The code-group table
    is reloaded from the shipped code list when its version is not there yet.
    """
    check_identifier(database, "database")
    warehouse.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    statements = schema_statements(database)
    if _server_version(warehouse) < CURRENT_DIALECT:
        statements, _ = legacy_statements(statements)
    existing = _drop_long_covid_v1(warehouse, database, _tables(warehouse, database))
    for name in _MERGED_COPIES_V2:
        if name in existing:
            warehouse.command(f"DROP TABLE IF EXISTS {database}.{name}")
    for statement in statements:
        warehouse.command(statement)
    for statement in statements:
        view = _VIEW.match(statement)
        if view and view[1].split(".", 1)[1] not in existing:
            _backfill(warehouse, database, view[1], view[2])
    loaded = warehouse.query(
        f"SELECT count() FROM {database}.code_groups WHERE code_list_version = {{v:String}}",
        {"v": CODE_LIST_VERSION},
    ).scalar()
    if int(loaded) == 0:
        warehouse.insert(f"{database}.code_groups", code_group_rows())
    return int(warehouse.query(f"SELECT max(version) FROM {database}.schema_version").scalar())


def _tables(warehouse: Warehouse, database: str) -> set[str]:
    return set(
        warehouse.query(
            "SELECT name FROM system.tables WHERE database = {db:String}", {"db": database}
        ).column("name")
    )


def _drop_long_covid_v1(warehouse: Warehouse, database: str, existing: set[str]) -> set[str]:
    """Drop the Long COVID objects of schema version 1 if they are there; the tables left."""
    if "long_covid_onsets" not in existing:
        return existing
    columns = warehouse.query(
        "SELECT name FROM system.columns WHERE database = {db:String} "
        "AND table = 'long_covid_onsets'",
        {"db": database},
    ).column("name")
    if "mask" in columns:
        return existing
    log.info("replacing the Long COVID state of schema version 1 in %s", database)
    for name in _LONG_COVID_V1:
        warehouse.command(f"DROP TABLE IF EXISTS {database}.{name}")
    return existing - set(_LONG_COVID_V1)


def _backfill(warehouse: Warehouse, database: str, target: str, select: str) -> None:
    """Fill a view's new table ``target`` from the events stored before the view existed.

    Runs the view's own query over the stored events, in chunks of person ids, so each
    chunk holds every event of its ids (the Long COVID state needs them together).
    Views fed by another view's table are filled through that view.
    """
    events = f"{database}.linked_events"
    if not re.search(rf"\b{events}\b", select):
        if re.search(rf"\b{database}\.person_merges\b(?!_)", select):
            # A view on merges (a copy for the ids they name, the Long COVID correction
            # of their groups): over all merges at once.
            warehouse.command(f"INSERT INTO {target} {select}")
        return
    stored = int(warehouse.query(f"SELECT count() FROM {events}").scalar())
    if stored == 0:
        return
    log.info("filling %s from %d stored events", target, stored)
    for chunk in range(BACKFILL_CHUNKS):
        part = f"(SELECT * FROM {events} WHERE cityHash64(person_id) % {BACKFILL_CHUNKS} = {chunk})"
        warehouse.command(f"INSERT INTO {target} " + re.sub(rf"\b{events}\b", part, select))
        log.info("filling %s: %d of %d parts done", target, chunk + 1, BACKFILL_CHUNKS)


# ---------------------------------------------------------------------------
# cluster variant
# ---------------------------------------------------------------------------

_CREATE = re.compile(
    r"^CREATE (?P<kind>TABLE|MATERIALIZED VIEW|VIEW) IF NOT EXISTS (?P<db>\w+)\.(?P<name>\w+)"
)
_ENGINE = re.compile(r"ENGINE = (?P<engine>\w*MergeTree)(?:\((?P<args>[^)]*)\))?")


# Replacing tables are sharded by their key, so every version of a row meets the others
# on one shard and FINAL sees them all.
_SHARDING = {
    "persons": "cityHash64(person_id)",
    "person_merges": "cityHash64(person_id)",
    "areas": "cityHash64(pc4)",
    "area_population": "cityHash64(pc4)",
    "alerts": "cityHash64(alert_id)",
    "code_groups": "cityHash64(code_group, code)",
    "long_covid_persons": "cityHash64(person_id)",
    "long_covid_strata": "cityHash64(person_id)",
    "person_days": "cityHash64(person_id)",
    "person_days_merged": "cityHash64(person_id)",
    "long_covid_corrections": "cityHash64(grp)",
}
# Tables that only pass blocks from one view to the next (ENGINE = Null): local only.
_PASS_THROUGH = ("long_covid_delta",)


@dataclass(frozen=True)
class ClusterDDL:
    """The cluster variant of the model: statements to run once, on any node."""

    cluster: str
    database: str
    statements: list[str]

    def script(self) -> str:
        """All statements as one SQL script."""
        return ";\n\n".join(self.statements) + ";\n"


def cluster_ddl(
    cluster: str,
    database: str = DEFAULT_DATABASE,
    *,
    zookeeper_path: str = "/clickhouse/tables/{shard}/{database}/{table}",
    sharding_key: str = "cityHash64(event_id)",
) -> ClusterDDL:
    """The model for a ClickHouse cluster: Replicated engines, ``ON CLUSTER``, Distributed tables.

    Every MergeTree table ``T`` becomes a ``Replicated*MergeTree`` local table ``T_local``
    on each shard, created ``ON CLUSTER``, and ``T`` becomes a ``Distributed`` table over
    the local ones: writers and the dashboards keep using ``T``. Linked events are
    sharded by ``sharding_key``; tables whose rows are replaced by newer versions
    (persons, merges, areas, alerts) by their key, so FINAL finds every version of a
    row on one shard; the pre-aggregates by ``rand()``. Materialized views are attached
    to the local event table on each shard, so every shard aggregates its own events
    and the Distributed count tables sum the shards. The Long COVID per-person state and
    onset counts are kept per shard from the shard's own events, so they equal the case
    definition only when each person's events share a shard: use
    ``sharding_key="cityHash64(person_id)"`` for them. The merge correction of a group is
    computed on the shard that receives the merge row or the event block, from that
    shard's state: ids of the group whose events live on another shard are missed there.
    Replicated tables deduplicate inserted blocks by default, which keeps a replayed batch
    from counting twice.
    ``{shard}`` and ``{replica}`` are the macros each server defines in its configuration.
    """
    check_identifier(cluster, "cluster")
    check_identifier(database, "database")
    local_tables: set[str] = set()
    for statement in schema_statements(database):
        match = _CREATE.match(statement)
        if match and match["kind"] == "TABLE":
            local_tables.add(match["name"])

    def localise(sql: str) -> str:
        for name in sorted(local_tables, key=len, reverse=True):
            sql = re.sub(rf"\b{database}\.{name}\b(?!_)", f"{database}.{name}_local", sql)
        return sql

    out = [f"CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster}"]
    for statement in schema_statements(database):
        match = _CREATE.match(statement)
        if match is None:
            continue  # data statements (the schema version row) run through the Distributed table
        kind, name = match["kind"], match["name"]
        header = f"CREATE {kind} IF NOT EXISTS {database}.{name}"
        if kind == "TABLE":
            path = zookeeper_path.replace("{database}", database).replace("{table}", name)

            def replicate(m: re.Match[str], path: str = path) -> str:
                args = [f"'{path}'", "'{replica}'"]
                if m["args"]:
                    args.append(m["args"])
                return f"ENGINE = Replicated{m['engine']}({', '.join(args)})"

            body = statement[len(header) :]
            body = re.sub(r",\s*non_replicated_deduplication_window = \d+", "", body)
            body = re.sub(r"\s*SETTINGS non_replicated_deduplication_window = \d+", "", body)
            local = f"CREATE TABLE IF NOT EXISTS {database}.{name}_local ON CLUSTER {cluster}"
            out.append(local + _ENGINE.sub(replicate, body, count=1))
            if name in _PASS_THROUGH:
                continue
            key = sharding_key if name == "linked_events" else _SHARDING.get(name, "rand()")
            out.append(
                f"CREATE TABLE IF NOT EXISTS {database}.{name} ON CLUSTER {cluster} "
                f"AS {database}.{name}_local "
                f"ENGINE = Distributed({cluster}, {database}, {name}_local, {key})"
            )
        elif kind == "MATERIALIZED VIEW":
            body = localise(statement[len(header) :])
            out.append(
                f"CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{name} "
                f"ON CLUSTER {cluster}{body}"
            )
        else:
            # Plain views read the Distributed tables, so they see every shard.
            body = statement[len(header) :]
            out.append(f"CREATE VIEW IF NOT EXISTS {database}.{name} ON CLUSTER {cluster}{body}")
    return ClusterDDL(cluster, database, out)


def main(argv: list[str] | None = None) -> int:
    """Print the model's DDL: ``python -m linkwatch.dashboards.model [--cluster NAME]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m linkwatch.dashboards.model",
        description="Print linkwatch's warehouse DDL, for one server or for a cluster.",
        epilog="Example: python -m linkwatch.dashboards.model --cluster prod > linkwatch.sql",
    )
    parser.add_argument("--cluster", help="cluster name from the servers' remote_servers")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    args = parser.parse_args(argv)
    try:
        if args.cluster:
            print(cluster_ddl(args.cluster, args.database).script(), end="")
        else:
            print(";\n\n".join(schema_statements(args.database)) + ";")
    except ModelError as exc:
        parser.exit(1, f"error: {exc}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def _server_version(warehouse: Warehouse) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", warehouse.version())[:2])
