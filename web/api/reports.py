"""Reports: volumes, response times and SLA attainment over a date range (issue 9).

Admins and managers only. The figures and where each comes from: inbox/reports.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from aiohttp import web

from inbox.models import Role
from inbox.report_csv import chunks, summary_rows, volume_rows
from inbox.report_period import Period, PeriodError, period
from inbox.reports import GroupingUnavailable, Scope, Summary, Volume, summary, volume
from web import auth
from web.api.report_schemas import SummaryOut, SummaryQuery, VolumeOut, VolumeQuery
from web.errors import validation_failed
from web.keys import READ_SESSIONS_KEY
from web.openapi import ApiRoutes, parse_query, respond

logger = logging.getLogger(__name__)

routes = ApiRoutes(tag="reports")

_READERS = (Role.ADMIN, Role.MANAGER)


def _period(query: VolumeQuery) -> Period:
    try:
        return period(query.from_, query.to, query.timezone)
    except PeriodError as err:
        raise validation_failed({err.field: err.message}, "invalid report period") from err


def _scope(request: web.Request, query: VolumeQuery) -> Scope:
    return Scope(
        channel_id=query.channel_id,
        team_id=query.team_id,
        visible=auth.visible_channel_ids(request),
    )


async def _summary(request: web.Request) -> Summary:
    auth.require_role(request, *_READERS)
    query = parse_query(request, SummaryQuery)
    span = _period(query)
    try:
        sessions = request.app[READ_SESSIONS_KEY]
        async with sessions() as session:
            return await summary(
                session, span, query.group_by, _scope(request, query), sessions=sessions
            )
    except GroupingUnavailable as err:
        raise validation_failed({"group_by": str(err)}) from err


async def _volume(request: web.Request) -> Volume:
    auth.require_role(request, *_READERS)
    query = parse_query(request, VolumeQuery)
    span = _period(query)
    async with request.app[READ_SESSIONS_KEY]() as session:
        return await volume(session, span, _scope(request, query))


@routes.route(
    "GET",
    "/reports/summary",
    summary="Conversations, messages, response times and SLA attainment, grouped",
    query=SummaryQuery,
    response=SummaryOut,
    errors=[403],
)
async def report_summary(request: web.Request) -> web.Response:
    """The summary report of a period (admins and managers)."""
    return respond(request, SummaryOut.of(await _summary(request)))


@routes.route(
    "GET",
    "/reports/summary/export.csv",
    summary="The summary report as CSV",
    produces="text/csv",
    query=SummaryQuery,
    errors=[403],
)
async def export_report_summary(request: web.Request) -> web.StreamResponse:
    """Streams `text/csv` (UTF-8 with BOM): one row per group, then the totals."""
    report = await _summary(request)
    name = f"summary-{report.period.first}-{report.period.last}.csv"
    return await _stream(request, chunks(summary_rows(report)), name)


@routes.route(
    "GET",
    "/reports/volume",
    summary="Customer messages per local weekday and hour",
    query=VolumeQuery,
    response=VolumeOut,
    errors=[403],
)
async def report_volume(request: web.Request) -> web.Response:
    """The hour-of-week volume of a period (admins and managers)."""
    return respond(request, VolumeOut.of(await _volume(request)))


@routes.route(
    "GET",
    "/reports/volume/export.csv",
    summary="The hour-of-week volume as CSV",
    produces="text/csv",
    query=VolumeQuery,
    errors=[403],
)
async def export_report_volume(request: web.Request) -> web.StreamResponse:
    """Streams `text/csv` (UTF-8 with BOM): one row per weekday, a column per hour."""
    report = await _volume(request)
    name = f"volume-{report.period.first}-{report.period.last}.csv"
    return await _stream(request, chunks(volume_rows(report)), name)


async def _stream(
    request: web.Request, parts: Iterable[bytes], file_name: str
) -> web.StreamResponse:
    # The report is computed before the answer starts (errors are proper answers); only
    # writing it out is streamed.
    response = web.StreamResponse(headers=_download_headers(file_name))
    response.content_type = "text/csv"
    response.charset = "utf-8"
    await response.prepare(request)
    for part in parts:
        await response.write(part)
    await response.write_eof()
    return response


def _download_headers(file_name: str) -> Mapping[str, str]:
    return {
        "Content-Disposition": f'attachment; filename="{file_name}"',
        # Names of agents and customers' labels: no shared cache keeps a copy.
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
