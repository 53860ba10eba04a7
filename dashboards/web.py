"""``linkwatch serve``: the web dashboard and its JSON API over one warehouse.

:func:`create_app` takes an open :class:`Warehouse`, so the process that owns the
warehouse (with chDB, the only process that can open it: the pipeline worker in the
demo) serves the dashboard in-process. FastAPI describes the API at ``/openapi.json``
and ``/docs``.
"""

from __future__ import annotations

import logging
from functools import cache
from importlib import resources
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from linkwatch.dashboards.disclosure import DEFAULT_THRESHOLD
from linkwatch.dashboards.model import DEFAULT_DATABASE
from linkwatch.dashboards.panels import (
    AGE_BANDS,
    PANELS,
    SES_QUINTILES,
    SEXES,
    SOURCES,
    FilterError,
    UnknownPanel,
)
from linkwatch.dashboards.service import DashboardUnavailable, PanelService
from linkwatch.streams.warehouse import Warehouse

log = logging.getLogger(__name__)
REFRESH_SECONDS = 10
STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}

DateFrom = Annotated[str | None, Query(description="First day of the period, YYYY-MM-DD.")]
DateTo = Annotated[str | None, Query(description="Last day of the period, YYYY-MM-DD.")]
CodeGroup = Annotated[str | None, Query(description="Code group, e.g. all, covid, post_covid.")]
Region = Annotated[str | None, Query(description="Province; empty for all.")]
AgeBand = Annotated[str | None, Query(description=f"One of {', '.join(AGE_BANDS)}.")]
Sex = Annotated[str | None, Query(description=f"One of {', '.join(SEXES)}.")]
Quintile = Annotated[str | None, Query(description="SES quintile 1 (highest SES) to 5.")]
Source = Annotated[str | None, Query(description=f"One of {', '.join(SOURCES)}.")]


@cache
def plotly_js() -> str:
    """Plotly.js as bundled with the installed ``plotly`` package (no CDN needed)."""
    from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

    return str(get_plotlyjs())


def _static(name: str) -> str:
    return resources.files("linkwatch.dashboards").joinpath("static", name).read_text("utf-8")


def create_app(
    warehouse: Warehouse,
    database: str = DEFAULT_DATABASE,
    *,
    threshold: int = DEFAULT_THRESHOLD,
    refresh_seconds: int = REFRESH_SECONDS,
) -> FastAPI:
    """The dashboard application over ``database`` in ``warehouse``."""
    service = PanelService(warehouse, database, threshold)
    app = FastAPI(
        title="linkwatch dashboards",
        description=(
            "Near-real-time Long COVID and symptom-cluster surveillance on linked health "
            f"records. Counts below {threshold} and rates derived from them are suppressed."
        ),
        version="1",
    )

    @app.exception_handler(FilterError)
    async def bad_filter(_: Request, exc: FilterError) -> JSONResponse:
        status = 404 if isinstance(exc, UnknownPanel) else 400
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(DashboardUnavailable)
    async def unavailable(_: Request, exc: DashboardUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("dashboard request failed")
        return JSONResponse(
            {"detail": f"internal error ({type(exc).__name__}); see the server log"},
            status_code=500,
        )

    def run(name: str, request: Request) -> Any:
        filters = service.filters(dict(request.query_params))
        return service.run(name, filters)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        page = _static("index.html").replace("{{refresh_ms}}", str(refresh_seconds * 1000))
        return HTMLResponse(page.replace("{{threshold}}", str(threshold)))

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly() -> Response:
        return Response(
            plotly_js(),
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "max-age=86400"},
        )

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in STATIC:
            return PlainTextResponse("not found", status_code=404)
        return Response(_static(name), media_type=STATIC[name])

    @app.get("/healthz", summary="Liveness and warehouse reachability")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "engine": warehouse.engine, "database": database}

    @app.get("/api/panels", summary="Every panel with its chart type and columns")
    def list_panels() -> list[dict[str, Any]]:
        return [
            {
                "name": p.name,
                "title": p.title,
                "chart": p.chart,
                "description": p.description,
                "x": p.x,
                "y": p.y,
                "series": p.series,
                "counts": list(p.counts),
            }
            for p in PANELS
        ]

    @app.get("/api/filters", summary="The values every filter accepts and the default period")
    def filter_choices() -> dict[str, Any]:
        start, end = service.default_period()
        return {
            "code_group": list(service.code_groups()),
            "region": list(service.regions()),
            "age_band": list(AGE_BANDS),
            "sex": list(SEXES),
            "ses_quintile": [str(q) for q in SES_QUINTILES],
            "source": list(SOURCES),
            "default_period": {"date_from": start.isoformat(), "date_to": end.isoformat()},
            "threshold": threshold,
            "refresh_seconds": refresh_seconds,
        }

    @app.get("/api/panels/{name}", summary="A panel's rows, small numbers suppressed")
    def panel_json(
        name: str,
        request: Request,
        date_from: DateFrom = None,
        date_to: DateTo = None,
        code_group: CodeGroup = None,
        region: Region = None,
        age_band: AgeBand = None,
        sex: Sex = None,
        ses_quintile: Quintile = None,
        source: Source = None,
    ) -> dict[str, Any]:
        return dict(run(name, request).as_json())

    @app.get(
        "/api/panels/{name}/csv",
        summary="A panel's rows as CSV, small numbers suppressed",
        response_class=PlainTextResponse,
    )
    def panel_csv(
        name: str,
        request: Request,
        date_from: DateFrom = None,
        date_to: DateTo = None,
        code_group: CodeGroup = None,
        region: Region = None,
        age_band: AgeBand = None,
        sex: Sex = None,
        ses_quintile: Quintile = None,
        source: Source = None,
    ) -> Response:
        result = run(name, request)
        return Response(
            result.as_csv(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="linkwatch-{name}.csv"'},
        )

    return app
