"""Panels as data: run a panel's SQL on the warehouse and apply disclosure control.

This is what the JSON API, the CSV export and the web dashboard call; nothing here
builds SQL from user text — filter values are validated by :class:`Filters` and passed
as query parameters.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

from linkwatch.dashboards.code_groups import code_group_names
from linkwatch.dashboards.disclosure import DEFAULT_THRESHOLD, Disclosed, apply_disclosure
from linkwatch.dashboards.model import DEFAULT_DATABASE, check_identifier
from linkwatch.dashboards.panels import PANELS, Filters, Panel, panel, panel_sql
from linkwatch.dashboards.regions import PROVINCES
from linkwatch.streams.warehouse import QueryResult, Warehouse, WarehouseError


class DashboardUnavailable(RuntimeError):
    """The warehouse cannot answer (missing model, engine down); the message says why."""


@dataclass(frozen=True)
class PanelResult:
    """A panel's disclosed rows with the filters that produced them."""

    panel: Panel
    filters: Filters
    data: Disclosed

    def as_json(self) -> dict[str, Any]:
        """The API's JSON body for this result."""
        return {
            "panel": self.panel.name,
            "title": self.panel.title,
            "filters": {k: _jsonable(v) for k, v in self.filters.params().items()},
            "threshold": self.data.threshold,
            "columns": self.data.columns,
            "rows": [{k: _jsonable(v) for k, v in r.items()} for r in self.data.rows],
            "hidden": self.data.hidden,
        }

    def as_csv(self) -> str:
        """The rows as CSV; hidden values read ``<threshold`` for counts, empty for the rest."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.data.columns)
        for i, row in enumerate(self.data.rows):
            cells = []
            for c in self.data.columns:
                if self.data.is_hidden(i, c):
                    small = c in self.panel.counts
                    cells.append(f"<{self.data.threshold}" if small else "suppressed")
                else:
                    cells.append(_csv_value(row.get(c)))
            writer.writerow(cells)
        return buffer.getvalue()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    v = _jsonable(value)
    return str(v)


class PanelService:
    """The dashboards' queries over one warehouse database."""

    def __init__(
        self,
        warehouse: Warehouse,
        database: str = DEFAULT_DATABASE,
        threshold: int = DEFAULT_THRESHOLD,
    ) -> None:
        self.warehouse = warehouse
        self.database = check_identifier(database, "database")
        self.threshold = threshold

    def _query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return self._result(sql, params).dicts()

    def _result(self, sql: str, params: dict[str, Any] | None = None) -> QueryResult:
        try:
            return self.warehouse.query(sql, params)
        except WarehouseError as exc:
            text = str(exc)
            if "UNKNOWN_TABLE" in text or "UNKNOWN_DATABASE" in text or "doesn't exist" in text:
                raise DashboardUnavailable(
                    f"the warehouse has no linkwatch model in database {self.database!r}; "
                    "start the pipeline worker (or run the model creation) first"
                ) from None
            first = text.splitlines()[0] if text else "no reason given"
            raise DashboardUnavailable(f"the warehouse did not answer: {first}") from None

    def default_period(self) -> tuple[dt.date, dt.date]:
        """The last 52 weeks that hold data (or up to this week when there is none)."""
        rows = self._query(f"SELECT max(week) AS last FROM {self.database}.weekly_counts")
        last = rows[0]["last"] if rows else None
        if not isinstance(last, dt.date) or last.year < 1971:
            today = dt.date.today()
            last = today - dt.timedelta(days=today.weekday())
        return last - dt.timedelta(weeks=51), last + dt.timedelta(days=6)

    def code_groups(self) -> tuple[str, ...]:
        """Code groups the filters accept: the shipped ones and those loaded in the table."""
        rows = self._query(f"SELECT DISTINCT code_group FROM {self.database}.code_groups")
        loaded = {str(r["code_group"]) for r in rows}
        return tuple(dict.fromkeys([*code_group_names(), *sorted(loaded)]))

    def regions(self) -> tuple[str, ...]:
        """Provinces, plus any other region the area table names."""
        rows = self._query(f"SELECT DISTINCT region FROM {self.database}.areas")
        extra = sorted({str(r["region"]) for r in rows} - set(PROVINCES) - {""})
        return (*PROVINCES, *extra)

    def filters(self, values: dict[str, str | None]) -> Filters:
        """Validated filters from query-string values (FilterError when unknown)."""
        return Filters.parse(
            values,
            default_period=self.default_period(),
            code_groups=self.code_groups(),
            regions=self.regions(),
        )

    def run(self, name: str, filters: Filters) -> PanelResult:
        """The panel's rows for ``filters`` with small numbers suppressed."""
        p = panel(name)
        if p.name == "ses_gap":
            return self._ses_gap(filters)
        result = self._result(panel_sql(p, self.database), filters.params())
        data = apply_disclosure(
            result.columns,
            result.dicts(),
            counts=p.counts,
            rates=p.rates,
            secondary=p.secondary,
            threshold=self.threshold,
        )
        return PanelResult(p, filters, data)

    def _ses_gap(self, filters: Filters) -> PanelResult:
        # Derived from the disclosed quintile table, so the ratio never reveals a count
        # the quintile panel hides (its secondary suppression included).
        by_quintile = self.run("ses_weekly", filters).data
        weeks: dict[Any, dict[int, dict[str, Any]]] = {}
        reasons = {
            id(by_quintile.rows[h["row"]]): h["reason"]
            for h in by_quintile.hidden
            if h["column"] == "events"
        }
        for row in by_quintile.rows:
            weeks.setdefault(row["week"], {})[int(row["ses_quintile"])] = row
        columns = ["week", "events_q1", "events_q5", "rate_ratio_q5_q1"]
        rows, hidden = [], []
        for i, week in enumerate(sorted(weeks)):
            q = weeks[week]
            q1, q5 = q.get(1, {}), q.get(5, {})
            r1, r5 = q1.get("rate_per_100k"), q5.get("rate_per_100k")
            ratio = round(r5 / r1, 3) if r1 and r5 is not None else None
            row = {
                "week": week,
                "events_q1": q1.get("events", 0) if q1 else 0,
                "events_q5": q5.get("events", 0) if q5 else 0,
                "rate_ratio_q5_q1": ratio,
            }
            for c, src in (("events_q1", q1), ("events_q5", q5)):
                if src and src.get("events") is None:
                    hidden.append({"row": i, "column": c, "reason": reasons[id(src)]})
            if (q1 and q1.get("events") is None) or (q5 and q5.get("events") is None):
                hidden.append({"row": i, "column": "rate_ratio_q5_q1", "reason": "derived"})
            rows.append(row)
        data = Disclosed(columns, rows, hidden, by_quintile.threshold)
        return PanelResult(panel("ses_gap"), filters, data)


def all_panels() -> tuple[Panel, ...]:
    """Every panel in dashboard order."""
    return PANELS
