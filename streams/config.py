"""linkwatch's settings: defaults, an optional TOML file, then environment variables.

Every setting is declared once in ``FIELDS`` with its environment variable, its
parser and what it means; ``Settings.load`` validates all of them at start and
fails with the setting, the value and what was expected.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


class ConfigError(ValueError):
    """A setting has a value linkwatch cannot use."""


def _path(value: Any) -> Path:
    if not isinstance(value, str | Path) or not str(value):
        raise ValueError("a non-empty path")
    return Path(value).expanduser()


def _port(value: Any) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ValueError("a TCP port number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise ValueError("a TCP port number (1-65535)")
    return port


def _positive_seconds(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError("a number of seconds > 0") from None
    if seconds <= 0:
        raise ValueError("a number of seconds > 0")
    return seconds


def _kafka_version(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"\d+\.\d+\.\d+", value):
        raise ValueError("a Kafka release such as 4.4.0")
    major, minor = (int(p) for p in value.split(".")[:2])
    if (major, minor) < (3, 9):
        raise ValueError("Kafka 3.9.0 or newer (KRaft-only releases)")
    return value


def _heap(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"\d+[mMgG]", value):
        raise ValueError("a JVM heap size such as 512m or 1g")
    return value.lower()


def _bootstrap(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not all(
        re.fullmatch(r"[\w.\-\[\]:]+:\d+", part.strip()) for part in value.split(",")
    ):
        raise ValueError("host:port[,host:port...]")
    return value


def _clickhouse_url(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError("clickhouse://host:port/database")
    url = urlparse(value)
    if url.scheme not in ("clickhouse", "clickhouses") or not url.hostname:
        raise ValueError("clickhouse://host:port/database")
    return value


def _identifier(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", value):
        raise ValueError("a database name of letters, digits and underscores")
    return value


def _positive_int(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError("a whole number > 0") from None
    if number <= 0:
        raise ValueError("a whole number > 0")
    return number


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("true or false")


def _optional_path(value: Any) -> Path | None:
    return None if value in (None, "") else _path(value)


@dataclass(frozen=True)
class Field:
    name: str
    env: str
    parse: Callable[[Any], Any]
    default: Any
    doc: str


_HOME = Path.home()
FIELDS: tuple[Field, ...] = (
    Field(
        "data_dir",
        "LINKWATCH_DATA_DIR",
        _path,
        _HOME / ".local/share/linkwatch",
        "Kafka log directory, the embedded warehouse and the ClickHouse server's data",
    ),
    Field(
        "cache_dir",
        "LINKWATCH_CACHE_DIR",
        _path,
        _HOME / ".cache/linkwatch",
        "downloaded Kafka jars (shared by every stack on the machine)",
    ),
    Field(
        "state_dir",
        "LINKWATCH_STATE_DIR",
        _path,
        _HOME / ".local/state/linkwatch",
        "pid files, generated server configuration, server logs and the worker's state",
    ),
    Field(
        "warehouse_dir",
        "LINKWATCH_WAREHOUSE_DIR",
        _optional_path,
        None,
        "the embedded (chDB) warehouse; default <data_dir>/warehouse",
    ),
    Field(
        "kafka_bootstrap_servers",
        "KAFKA_BOOTSTRAP_SERVERS",
        _bootstrap,
        None,
        "an external Kafka cluster; unset means the local broker",
    ),
    Field(
        "kafka_version",
        "LINKWATCH_KAFKA_VERSION",
        _kafka_version,
        "4.4.0",
        "the Apache Kafka release the local broker runs",
    ),
    Field("kafka_port", "LINKWATCH_KAFKA_PORT", _port, 9092, "the local broker's client port"),
    Field(
        "kafka_controller_port",
        "LINKWATCH_KAFKA_CONTROLLER_PORT",
        _port,
        9093,
        "the local broker's KRaft controller port",
    ),
    Field("kafka_heap", "LINKWATCH_KAFKA_HEAP", _heap, "512m", "the local broker's JVM heap"),
    Field(
        "clickhouse_url",
        "CLICKHOUSE_URL",
        _clickhouse_url,
        None,
        "a ClickHouse server (native protocol); unset means the embedded chDB warehouse",
    ),
    Field(
        "clickhouse_tcp_port",
        "LINKWATCH_CLICKHOUSE_TCP_PORT",
        _port,
        19000,
        "native port of the local ClickHouse server (stack up --clickhouse-server)",
    ),
    Field(
        "clickhouse_http_port",
        "LINKWATCH_CLICKHOUSE_HTTP_PORT",
        _port,
        18123,
        "HTTP port of the local ClickHouse server",
    ),
    Field(
        "clickhouse_interserver_port",
        "LINKWATCH_CLICKHOUSE_INTERSERVER_PORT",
        _port,
        19009,
        "interserver port of the local ClickHouse server",
    ),
    Field(
        "start_timeout",
        "LINKWATCH_START_TIMEOUT",
        _positive_seconds,
        90.0,
        "seconds to wait for a local server to answer after it starts",
    ),
    Field(
        "database",
        "LINKWATCH_DATABASE",
        _identifier,
        "linkwatch",
        "the warehouse database that holds linkwatch's tables",
    ),
    Field(
        "linkage_model",
        "LINKWATCH_LINKAGE_MODEL",
        _optional_path,
        None,
        "the trained linkage model (JSON) the worker links with",
    ),
    Field(
        "worker_port",
        "LINKWATCH_WORKER_PORT",
        _port,
        6066,
        "the worker's HTTP port (/healthz, /readyz, /metrics, /status), on 127.0.0.1",
    ),
    Field(
        "batch_size",
        "LINKWATCH_BATCH_SIZE",
        _positive_int,
        5000,
        "events the worker takes per batch (at most; at low load, what batch_wait gathers)",
    ),
    Field(
        "batch_wait",
        "LINKWATCH_BATCH_WAIT",
        _positive_seconds,
        0.5,
        "seconds the worker waits to fill a batch (the latency it adds at low load)",
    ),
    Field(
        "snapshot_every",
        "LINKWATCH_SNAPSHOT_EVERY",
        _positive_int,
        100_000,
        "new identities between two snapshots of the linker (a restart replays at most these)",
    ),
    Field(
        "shared_sink",
        "LINKWATCH_SHARED_SINK",
        _flag,
        False,
        "every worker loads the warehouse from linkwatch.linked.v1, sharing its partitions "
        "(scale-out; needs CLICKHOUSE_URL)",
    ),
    Field(
        "alerting_interval",
        "LINKWATCH_ALERTING_INTERVAL",
        _positive_seconds,
        60.0,
        "seconds between two runs of the detectors over the warehouse in the worker",
    ),
)


@dataclass(frozen=True)
class Settings:
    """Validated settings; build them with ``Settings.load``."""

    data_dir: Path
    cache_dir: Path
    state_dir: Path
    warehouse_dir: Path | None
    kafka_bootstrap_servers: str | None
    kafka_version: str
    kafka_port: int
    kafka_controller_port: int
    kafka_heap: str
    clickhouse_url: str | None
    clickhouse_tcp_port: int
    clickhouse_http_port: int
    clickhouse_interserver_port: int
    start_timeout: float
    database: str
    linkage_model: Path | None
    worker_port: int
    batch_size: int
    batch_wait: float
    snapshot_every: int
    shared_sink: bool
    alerting_interval: float

    @classmethod
    def load(
        cls,
        config_file: Path | None = None,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Defaults, then ``config_file`` (TOML, or ``$LINKWATCH_CONFIG``), then the environment,
        then ``overrides``; every value validated."""
        env = os.environ if environ is None else environ
        if config_file is None and env.get("LINKWATCH_CONFIG"):
            config_file = Path(env["LINKWATCH_CONFIG"])
        from_file = _read_toml(config_file) if config_file else {}
        known = {f.name for f in FIELDS}
        for key in from_file:
            if key not in known:
                raise ConfigError(
                    f"{config_file}: unknown setting {key!r}; "
                    f"known settings: {', '.join(sorted(known))}"
                )
        for key in overrides:
            if key not in known:
                raise ConfigError(f"unknown setting {key!r}")
        values: dict[str, Any] = {}
        for f in FIELDS:
            if f.name in overrides and overrides[f.name] is not None:
                raw, source = overrides[f.name], f.name
            elif f.env in env:
                raw, source = env[f.env], f.env
            elif f.name in from_file:
                raw, source = from_file[f.name], f"{f.name} in {config_file}"
            else:
                values[f.name] = f.default
                continue
            try:
                values[f.name] = f.parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{source}={raw!r} is not valid: expected {exc}") from None
        settings = cls(**values)
        settings._check_ports()
        if settings.shared_sink and settings.clickhouse_url is None:
            raise ConfigError(
                "LINKWATCH_SHARED_SINK=true needs a ClickHouse server (CLICKHOUSE_URL): "
                "workers that share the loading share one warehouse, and the embedded one "
                "belongs to a single process"
            )
        return settings

    def _check_ports(self) -> None:
        ports = {
            "kafka_port": self.kafka_port,
            "kafka_controller_port": self.kafka_controller_port,
            "clickhouse_tcp_port": self.clickhouse_tcp_port,
            "clickhouse_http_port": self.clickhouse_http_port,
            "clickhouse_interserver_port": self.clickhouse_interserver_port,
            "worker_port": self.worker_port,
        }
        seen: dict[int, str] = {}
        for name, port in ports.items():
            if port in seen:
                raise ConfigError(
                    f"{name} and {seen[port]} are both {port}: each needs its own port"
                )
            seen[port] = name

    @property
    def embedded_warehouse_dir(self) -> Path:
        return self.warehouse_dir or self.data_dir / "warehouse"

    @property
    def local_kafka(self) -> bool:
        return self.kafka_bootstrap_servers is None

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap_servers or f"127.0.0.1:{self.kafka_port}"

    def describe(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None
    section = data.get("linkwatch", data)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [linkwatch] must be a table")
    return section
