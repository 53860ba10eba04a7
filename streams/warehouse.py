"""One small adapter over ClickHouse, used by every part of linkwatch that stores or queries.

Two engines stand behind it:

* ``EmbeddedWarehouse`` — chDB, the ClickHouse engine in-process, persistent
  under a directory. Only one process may open a chDB directory, and one
  process can hold only one chDB directory at a time, so the process that
  writes the warehouse is the one that serves queries; a second process gets
  ``WarehouseBusy`` naming the holder instead of chDB's own ``BAD_ARGUMENTS``.
* ``ServerWarehouse`` — a ClickHouse server over the native protocol
  (clickhouse-driver), chosen by ``CLICKHOUSE_URL``. Calls that fail because
  the connection broke (a server restart) reconnect and retry until
  ``retry_timeout``.

SQL is written for current ClickHouse with ``{name:Type}`` parameters; for
servers too old to bind them (18.x) the adapter renders them as typed literals.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

log = logging.getLogger(__name__)

Params = Mapping[str, Any]
Columns = Mapping[str, Sequence[Any]]
T = TypeVar("T")


class WarehouseError(RuntimeError):
    """A statement failed; the message names the engine and the statement."""


class WarehouseUnavailable(WarehouseError):
    """The warehouse could not be reached; the same call may succeed later."""


class WarehouseBusy(WarehouseError):
    """The embedded warehouse is held by another process, or this one holds another directory."""


@dataclass(frozen=True)
class QueryResult:
    """Rows of a query, with column names and ClickHouse type names."""

    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [row[i] for row in self.rows]

    def scalar(self) -> Any:
        if not self.rows:
            raise WarehouseError("query returned no rows where one value was expected")
        return self.rows[0][0]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class Warehouse(ABC):
    """What linkwatch needs of ClickHouse: statements, queries and batched column inserts."""

    engine: str
    location: str

    @property
    def deduplicates(self) -> bool:
        """Whether inserts honour ``dedup_token`` (and views dedupe the blocks they get)."""
        return True

    @abstractmethod
    def command(self, sql: str, params: Params | None = None) -> None:
        """Run a statement that returns nothing (DDL, ``INSERT ... SELECT``, ``OPTIMIZE``)."""

    @abstractmethod
    def query(self, sql: str, params: Params | None = None) -> QueryResult:
        """Run a ``SELECT`` and return its rows."""

    @abstractmethod
    def insert(
        self,
        table: str,
        columns: Columns | pa.Table,
        *,
        dedup_token: str | None = None,
    ) -> int:
        """Insert one batch given column by column; return the number of rows sent.

        With ``dedup_token``, a repeated insert of the same batch (a replay after a
        crash) is dropped by the engine, provided the table keeps a deduplication
        window (``non_replicated_deduplication_window`` on plain MergeTree).
        """

    @abstractmethod
    def version(self) -> str:
        """The ClickHouse engine's version string."""

    @abstractmethod
    def close(self) -> None:
        """Release the engine (and, for chDB, the directory lock)."""

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------
# chDB
# ---------------------------------------------------------------------------

_embedded_lock = threading.Lock()
_embedded_open: dict[str, Any] = {}  # path -> {"session": Session, "users": int, "lockfile": fd}


class EmbeddedWarehouse(Warehouse):
    """chDB in this process, persistent under ``path``."""

    engine = "chdb"

    def __init__(self, path: Path) -> None:
        self.path = Path(path).resolve()
        self.location = str(self.path)
        self._closed = False
        self._call_lock = threading.RLock()
        with _embedded_lock:
            entry = _embedded_open.get(self.location)
            if entry is None:
                if _embedded_open:
                    other = next(iter(_embedded_open))
                    raise WarehouseBusy(
                        f"this process already holds the embedded warehouse at {other}; chDB opens "
                        f"one directory per process, so {self.location} cannot be opened beside it"
                    )
                entry = self._open()
                _embedded_open[self.location] = entry
            entry["users"] += 1
            self._session = entry["session"]
            self._call_lock = entry["call_lock"]

    def _open(self) -> dict[str, Any]:
        from chdb import session as chdb_session

        self.path.mkdir(parents=True, exist_ok=True)
        lock_path = self.path / ".linkwatch.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise WarehouseBusy(
                f"the embedded warehouse at {self.location} is open in process {holder}; only the "
                "process that holds it can query it (use its API), or stop that process first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            sess = chdb_session.Session(self.location)  # type: ignore[no-untyped-call]
        except Exception as exc:
            os.close(fd)
            raise WarehouseError(f"chDB could not open {self.location}: {exc}") from exc
        return {"session": sess, "users": 0, "lockfile": fd, "call_lock": threading.RLock()}

    @staticmethod
    def holder(path: Path) -> int | None:
        """The pid that holds the warehouse at ``path`` open, or None when it is free."""
        lock_path = Path(path) / ".linkwatch.lock"
        if not lock_path.exists():
            return None
        fd = os.open(lock_path, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.pread(fd, 64, 0).decode(errors="replace").strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def _run(self, sql: str, fmt: str, params: Params | None) -> Any:
        if self._closed:
            raise WarehouseError(f"the embedded warehouse at {self.location} is closed")
        with self._call_lock:
            try:
                return self._session.query(sql, fmt, params=dict(params) if params else None)
            except Exception as exc:
                raise WarehouseError(
                    f"chDB at {self.location}: {exc}\n  in: {_abbrev(sql)}"
                ) from exc

    def command(self, sql: str, params: Params | None = None) -> None:
        self._run(sql, "CSV", params)

    def query(self, sql: str, params: Params | None = None) -> QueryResult:
        # Arrow keeps ClickHouse's types (UInt64, Date, DateTime) as Python values;
        # the header row of TSVWithNamesAndTypes would give us the type names, but
        # a second round trip per query is not worth it: derive them from Arrow.
        table = self._run(sql, "ArrowTable", params)
        if not isinstance(table, pa.Table):
            return QueryResult([], [], [])
        columns = table.column_names
        data = [table.column(i).to_pylist() for i in range(table.num_columns)]
        rows = list(zip(*data, strict=True)) if data else []
        return QueryResult(columns, [str(t) for t in table.schema.types], rows)

    def insert(
        self,
        table: str,
        columns: Columns | pa.Table,
        *,
        dedup_token: str | None = None,
    ) -> int:
        arrow = columns if isinstance(columns, pa.Table) else pa.table(dict(columns))
        if arrow.num_rows == 0:
            return 0
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, arrow.schema) as writer:
            writer.write_table(arrow)
        names = ", ".join(_quote_ident(c) for c in arrow.column_names)
        settings = (
            f" SETTINGS insert_deduplication_token = '{_escape(dedup_token)}'"
            if dedup_token
            else ""
        )
        sql = f"INSERT INTO {table} ({names}){settings}"
        if self._closed:
            raise WarehouseError(f"the embedded warehouse at {self.location} is closed")
        with self._call_lock:
            try:
                with self._session.send_insert(sql, "ArrowStream") as ins:
                    ins.append(sink.getvalue().to_pybytes())
                    ins.finish()
            except Exception as exc:
                raise WarehouseError(
                    f"chDB at {self.location}: inserting {arrow.num_rows} rows into {table}: {exc}"
                ) from exc
        return int(arrow.num_rows)

    def version(self) -> str:
        return str(self.query("SELECT version()").scalar())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with _embedded_lock:
            entry = _embedded_open.get(self.location)
            if entry is None:
                return
            entry["users"] -= 1
            if entry["users"] > 0:
                return
            del _embedded_open[self.location]
            with contextlib.suppress(Exception):
                entry["session"].close()
            os.close(entry["lockfile"])


# ---------------------------------------------------------------------------
# ClickHouse server
# ---------------------------------------------------------------------------

_PARAM = re.compile(r"\{(\w+):([^{}]+)\}")


class ServerWarehouse(Warehouse):
    """A ClickHouse server over the native protocol, reconnecting across restarts."""

    engine = "clickhouse-server"

    def __init__(
        self, url: str, *, retry_timeout: float = 60.0, connect_timeout: float = 5.0
    ) -> None:
        from clickhouse_driver import Client

        self.url = url
        self.location = _redact(url)
        self.retry_timeout = retry_timeout
        self._client = Client.from_url(url)
        self._client.connection.connect_timeout = connect_timeout
        self._lock = threading.RLock()
        self._server_version: tuple[int, ...] | None = None

    # Errors that mean "the connection broke", after which the same call may be retried.
    @staticmethod
    def _transient() -> tuple[type[BaseException], ...]:
        from clickhouse_driver import errors

        return (errors.NetworkError, errors.SocketTimeoutError, EOFError, ConnectionError, OSError)

    def _retrying(self, what: str, call: Callable[[], T], retry: bool = True) -> T:
        from clickhouse_driver import errors

        deadline = time.monotonic() + (self.retry_timeout if retry else 0.0)
        delay = 0.1
        attempt = 0
        with self._lock:
            while True:
                attempt += 1
                try:
                    return call()
                except self._transient() as exc:
                    self._client.disconnect()
                    if time.monotonic() >= deadline:
                        raise WarehouseUnavailable(
                            f"ClickHouse server {self.location} unreachable "
                            f"({attempt} attempts) while {what}: {exc}"
                        ) from exc
                    log.warning("ClickHouse server %s: %s; retrying %s", self.location, exc, what)
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
                except errors.Error as exc:
                    raise WarehouseError(
                        f"ClickHouse server {self.location} while {what}: {exc}"
                    ) from exc

    @property
    def deduplicates(self) -> bool:
        return self._version_tuple() >= (22, 2)

    def _version_tuple(self) -> tuple[int, ...]:
        if self._server_version is None:
            text = self.version()
            self._server_version = tuple(int(p) for p in re.findall(r"\d+", text)[:3])
        return self._server_version

    def render(self, sql: str, params: Params | None) -> str:
        """``{name:Type}`` placeholders as typed literals (servers before 22 cannot bind them)."""
        if not params:
            return sql

        def substitute(match: re.Match[str]) -> str:
            name, type_ = match.group(1), match.group(2).strip()
            if name not in params:
                raise WarehouseError(f"query parameter {name!r} has no value\n  in: {_abbrev(sql)}")
            value = params[name]
            if type_ == "Identifier":
                return _quote_ident(str(value))
            return f"CAST({_literal(value)} AS {type_})"

        return _PARAM.sub(substitute, sql)

    def command(self, sql: str, params: Params | None = None) -> None:
        rendered = self.render(sql, params)
        self._retrying(f"running {_abbrev(sql)}", lambda: self._client.execute(rendered))

    def query(self, sql: str, params: Params | None = None) -> QueryResult:
        rendered = self.render(sql, params)
        rows, meta = self._retrying(
            f"querying {_abbrev(sql)}",
            lambda: self._client.execute(rendered, with_column_types=True),
        )
        return QueryResult([m[0] for m in meta], [m[1] for m in meta], [tuple(r) for r in rows])

    def insert(
        self,
        table: str,
        columns: Columns | pa.Table,
        *,
        dedup_token: str | None = None,
    ) -> int:
        data = (
            columns.to_pydict()
            if isinstance(columns, pa.Table)
            else {k: list(v) for k, v in columns.items()}
        )
        if not data:
            return 0
        n = len(next(iter(data.values())))
        if n == 0:
            return 0
        names = ", ".join(_quote_ident(c) for c in data)
        settings: dict[str, Any] = {}
        # insert_deduplication_token exists from ClickHouse 22.2 on; older servers
        # reject unknown settings, so the token is only sent where it is understood.
        deduplicated = bool(dedup_token) and self._version_tuple() >= (22, 2)
        if deduplicated:
            settings["insert_deduplication_token"] = dedup_token
        # Rows always travel as the data argument: 18.x hangs on INSERT ... VALUES
        # with the values inline and no data.
        sql = f"INSERT INTO {table} ({names}) VALUES"
        payload = list(data.values())
        # A token-less insert whose connection broke may have landed: it is not repeated
        # here (WarehouseUnavailable), so the caller can look before sending it again.
        self._retrying(
            f"inserting {n} rows into {table}",
            lambda: self._client.execute(sql, payload, columnar=True, settings=settings),
            retry=deduplicated or not dedup_token,
        )
        return n

    def version(self) -> str:
        rows = self._retrying(
            "asking the version", lambda: self._client.execute("SELECT version()")
        )
        return str(rows[0][0])

    def close(self) -> None:
        self._client.disconnect()


def open_warehouse(
    clickhouse_url: str | None, embedded_dir: Path, *, retry_timeout: float = 60.0
) -> Warehouse:
    """The server at ``clickhouse_url`` if set, else the embedded warehouse in ``embedded_dir``."""
    if clickhouse_url:
        return ServerWarehouse(clickhouse_url, retry_timeout=retry_timeout)
    return EmbeddedWarehouse(embedded_dir)


@contextlib.contextmanager
def opened(clickhouse_url: str | None, embedded_dir: Path) -> Iterator[Warehouse]:
    wh = open_warehouse(clickhouse_url, embedded_dir)
    try:
        yield wh
    finally:
        wh.close()


# ---------------------------------------------------------------------------
# literals
# ---------------------------------------------------------------------------

_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def _escape(text: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in text)


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return f"'{value.strftime('%Y-%m-%d %H:%M:%S')}'"
    if isinstance(value, dt.date):
        return f"'{value.isoformat()}'"
    if isinstance(value, str):
        return f"'{_escape(value)}'"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    raise WarehouseError(f"cannot pass a {type(value).__name__} as a query parameter")


def _quote_ident(name: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?", name):
        return name
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _abbrev(sql: str, limit: int = 160) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)
