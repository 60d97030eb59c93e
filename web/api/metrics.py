"""Business hours, SLA policies and response-time metrics over the REST API (issue 9).

Admins write calendars and policies; admins and managers read them. Anyone who sees a
conversation (`visible_conversation`) reads its recorded metrics and its SLA status,
which is computed live from its messages, so it is current even before the worker has
recorded anything.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import business_hours
from inbox.metric_models import (
    BusinessHours,
    ChannelBusinessHours,
    ConversationMetric,
    SlaPolicy,
    TeamBusinessHours,
)
from inbox.models import Role
from inbox.response_metrics import load
from inbox.sla import clocks as sla_clocks
from inbox.sla import policy_for, target_status
from timeline.clock import database_now
from timeline.models import Channel, utcnow
from web import auth
from web.api import path_id
from web.api.conversations import visible_conversation
from web.api.metric_schemas import (
    BusinessHoursIn,
    BusinessHoursOut,
    BusinessHoursPatch,
    ConversationSla,
    MetricOut,
    SlaPolicyIn,
    SlaPolicyOut,
    SlaPolicyPatch,
    SlaTargetOut,
)
from web.api.schemas import Page
from web.errors import not_found, validation_failed
from web.keys import READ_SESSIONS_KEY, SESSIONS_KEY
from web.openapi import ApiRoutes, parse_body, respond

routes = ApiRoutes(tag="metrics")

_READERS = (Role.ADMIN, Role.MANAGER)
_TARGETS = ("first_response_seconds", "next_response_seconds", "resolution_seconds")


# --- business hours -------------------------------------------------------------------------------


def _checked_calendar(timezone: str, week: Any, holidays: Any) -> dict[str, Any]:
    """The calendar's stored parts, checked; 422 naming the part at fault."""
    try:
        business_hours.check_timezone(timezone)
        return {
            "timezone": timezone,
            "week": business_hours.check_week(week),
            "holidays": business_hours.check_holidays(holidays),
        }
    except business_hours.CalendarError as err:
        raise validation_failed({err.field: err.message}) from err


async def _assign(
    session: AsyncSession,
    calendar_id: uuid.UUID,
    channel_ids: Sequence[uuid.UUID] | None,
    team_ids: Sequence[uuid.UUID] | None,
) -> None:
    if channel_ids is not None:
        wanted = set(channel_ids)
        found = set(await session.scalars(select(Channel.id).where(Channel.id.in_(wanted))))
        if missing := wanted - found:
            raise validation_failed({"channel_ids": f"no such channel: {sorted(missing)[0]}"})
        await session.execute(
            delete(ChannelBusinessHours).where(
                (ChannelBusinessHours.business_hours_id == calendar_id)
                | ChannelBusinessHours.channel_id.in_(wanted)
            )
        )
        session.add_all(
            ChannelBusinessHours(channel_id=c, business_hours_id=calendar_id) for c in wanted
        )
    if team_ids is not None:
        teams = set(team_ids)
        await session.execute(
            delete(TeamBusinessHours).where(
                (TeamBusinessHours.business_hours_id == calendar_id)
                | TeamBusinessHours.team_id.in_(teams)
            )
        )
        session.add_all(TeamBusinessHours(team_id=t, business_hours_id=calendar_id) for t in teams)
    await session.flush()


async def _calendar_out(session: AsyncSession, row: BusinessHours) -> BusinessHoursOut:
    channels = await session.scalars(
        select(ChannelBusinessHours.channel_id)
        .where(ChannelBusinessHours.business_hours_id == row.id)
        .order_by(ChannelBusinessHours.channel_id)
    )
    teams = await session.scalars(
        select(TeamBusinessHours.team_id)
        .where(TeamBusinessHours.business_hours_id == row.id)
        .order_by(TeamBusinessHours.team_id)
    )
    return BusinessHoursOut.of(row, list(channels), list(teams))


async def _calendar(session: AsyncSession, request: web.Request) -> BusinessHours:
    row = await session.get(BusinessHours, path_id(request))
    if row is None:
        raise not_found("no such business hours")
    return row


@routes.route(
    "GET", "/business-hours", summary="List business hours", response=Page[BusinessHoursOut]
)
async def list_business_hours(request: web.Request) -> web.Response:
    """Every calendar (there are few), by name."""
    auth.require_role(request, *_READERS)
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows = await session.scalars(select(BusinessHours).order_by(BusinessHours.name))
        items = [await _calendar_out(session, row) for row in rows.all()]
    return respond(request, Page[BusinessHoursOut](items=items, next_cursor=None))


@routes.route(
    "POST",
    "/business-hours",
    summary="Create business hours",
    status=201,
    body=BusinessHoursIn,
    response=BusinessHoursOut,
    errors=[403],
)
async def create_business_hours(request: web.Request) -> web.Response:
    """A new calendar, assigned to the listed channels and teams."""
    auth.require_role(request, Role.ADMIN)
    body = await parse_body(request, BusinessHoursIn)
    parts = _checked_calendar(body.timezone, body.week, body.holidays)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        now = utcnow()
        row = BusinessHours(name=body.name, created_at=now, updated_at=now, **parts)
        session.add(row)
        await session.flush()
        await _assign(session, row.id, body.channel_ids, body.team_ids)
        answer = await _calendar_out(session, row)
    return respond(request, answer)


@routes.route(
    "GET",
    "/business-hours/{id}",
    summary="Get business hours",
    response=BusinessHoursOut,
    errors=[403, 404],
)
async def get_business_hours(request: web.Request) -> web.Response:
    auth.require_role(request, *_READERS)
    async with request.app[READ_SESSIONS_KEY]() as session:
        answer = await _calendar_out(session, await _calendar(session, request))
    return respond(request, answer)


@routes.route(
    "PATCH",
    "/business-hours/{id}",
    summary="Change business hours or their assignments",
    body=BusinessHoursPatch,
    response=BusinessHoursOut,
    errors=[403, 404],
)
async def patch_business_hours(request: web.Request) -> web.Response:
    """Metrics already recorded keep the business time they were measured with."""
    auth.require_role(request, Role.ADMIN)
    body = await parse_body(request, BusinessHoursPatch)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        row = await _calendar(session, request)
        parts = _checked_calendar(
            body.timezone if body.timezone is not None else row.timezone,
            body.week if body.week is not None else row.week,
            body.holidays if body.holidays is not None else row.holidays,
        )
        for name, value in parts.items():
            setattr(row, name, value)
        if body.name is not None:
            row.name = body.name
        row.updated_at = utcnow()
        await _assign(session, row.id, body.channel_ids, body.team_ids)
        answer = await _calendar_out(session, row)
    return respond(request, answer)


@routes.route(
    "DELETE",
    "/business-hours/{id}",
    summary="Delete business hours",
    status=204,
    errors=[403, 404],
)
async def delete_business_hours(request: web.Request) -> web.Response:
    """Its channels and teams measure wall time from now on."""
    auth.require_role(request, Role.ADMIN)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        await session.delete(await _calendar(session, request))
    return respond(request)


# --- SLA policies ---------------------------------------------------------------------------------


def _check_targets(values: dict[str, Any]) -> None:
    if all(values.get(name) is None for name in _TARGETS):
        raise validation_failed(
            {"body": "set at least one of " + ", ".join(_TARGETS)}, "a policy needs a target"
        )


async def _policy(session: AsyncSession, request: web.Request) -> SlaPolicy:
    row = await session.get(SlaPolicy, path_id(request))
    if row is None:
        raise not_found("no such SLA policy")
    return row


def _as_json(name: str, value: Any) -> Any:
    if name in ("channel_ids", "team_ids"):
        return sorted({str(i) for i in value})
    if name == "priorities":
        return sorted(set(value))
    return value


@routes.route("GET", "/sla-policies", summary="List SLA policies", response=Page[SlaPolicyOut])
async def list_sla_policies(request: web.Request) -> web.Response:
    """Every policy, in the order they are tried."""
    auth.require_role(request, *_READERS)
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows = await session.scalars(
            select(SlaPolicy).order_by(SlaPolicy.position, SlaPolicy.created_at, SlaPolicy.id)
        )
        items = [SlaPolicyOut.of(row) for row in rows]
    return respond(request, Page[SlaPolicyOut](items=items, next_cursor=None))


@routes.route(
    "POST",
    "/sla-policies",
    summary="Create an SLA policy",
    status=201,
    body=SlaPolicyIn,
    response=SlaPolicyOut,
    errors=[403],
)
async def create_sla_policy(request: web.Request) -> web.Response:
    auth.require_role(request, Role.ADMIN)
    body = await parse_body(request, SlaPolicyIn)
    values = {name: _as_json(name, value) for name, value in body.model_dump().items()}
    _check_targets(values)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        now = utcnow()
        row = SlaPolicy(created_at=now, updated_at=now, **values)
        session.add(row)
        await session.flush()
        answer = SlaPolicyOut.of(row)
    return respond(request, answer)


@routes.route(
    "GET",
    "/sla-policies/{id}",
    summary="Get an SLA policy",
    response=SlaPolicyOut,
    errors=[403, 404],
)
async def get_sla_policy(request: web.Request) -> web.Response:
    auth.require_role(request, *_READERS)
    async with request.app[READ_SESSIONS_KEY]() as session:
        answer = SlaPolicyOut.of(await _policy(session, request))
    return respond(request, answer)


@routes.route(
    "PATCH",
    "/sla-policies/{id}",
    summary="Change an SLA policy",
    body=SlaPolicyPatch,
    response=SlaPolicyOut,
    errors=[403, 404],
)
async def patch_sla_policy(request: web.Request) -> web.Response:
    """Live conversations are timed by the changed policy from their next activity on."""
    auth.require_role(request, Role.ADMIN)
    body = await parse_body(request, SlaPolicyPatch)
    sent = body.model_dump(include=body.model_fields_set)
    nullable = set(_TARGETS)
    if refused := [n for n, v in sent.items() if v is None and n not in nullable]:
        raise validation_failed({name: "must not be null" for name in refused})
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        row = await _policy(session, request)
        for name, value in sent.items():
            setattr(row, name, _as_json(name, value))
        _check_targets({name: getattr(row, name) for name in _TARGETS})
        row.updated_at = utcnow()
        await session.flush()
        answer = SlaPolicyOut.of(row)
    return respond(request, answer)


@routes.route(
    "DELETE", "/sla-policies/{id}", summary="Delete an SLA policy", status=204, errors=[403, 404]
)
async def delete_sla_policy(request: web.Request) -> web.Response:
    """Its running clocks go with it; breaches already recorded stay in the timeline."""
    auth.require_role(request, Role.ADMIN)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        await session.delete(await _policy(session, request))
    return respond(request)


# --- a conversation's metrics and SLA -------------------------------------------------------------


@routes.route(
    "GET",
    "/conversations/{id}/sla",
    summary="How the conversation's SLA targets stand",
    response=ConversationSla,
    errors=[404],
)
async def conversation_sla(request: web.Request) -> web.Response:
    """The targets of the current cycle under the policy that applies now."""
    async with request.app[READ_SESSIONS_KEY]() as session:
        conversation = await visible_conversation(session, request, path_id(request))
        now = await database_now(session)
        loaded = await load(session, conversation)
        policy = await policy_for(session, conversation)
        items = (
            []
            if policy is None
            else [
                SlaTargetOut.of(target_status(clock, loaded.calendar, now), policy.id)
                for clock in sla_clocks(loaded.derivation, policy, loaded.calendar)
            ]
        )
    return respond(request, ConversationSla(items))


@routes.route(
    "GET",
    "/conversations/{id}/metrics",
    summary="The conversation's recorded response times",
    response=Page[MetricOut],
    errors=[404],
)
async def conversation_metrics(request: web.Request) -> web.Response:
    """Every recorded span, oldest first (a conversation has few)."""
    async with request.app[READ_SESSIONS_KEY]() as session:
        conversation = await visible_conversation(session, request, path_id(request))
        rows = await session.scalars(
            select(ConversationMetric)
            .where(ConversationMetric.conversation_id == conversation.id)
            .order_by(ConversationMetric.ended_at, ConversationMetric.kind)
        )
        items = [MetricOut.of(row) for row in rows]
    return respond(request, Page[MetricOut](items=items, next_cursor=None))
