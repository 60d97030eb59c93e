"""Routing rules and auto-assignment settings over the REST API (issue 9).

Admins write; admins and managers read; agents get 403 (the role is checked before
anything is looked up, so an agent learns nothing of what exists). Rules, policies and
capacities that name a channel, team or user check that it exists (422 naming the field);
one deleted later leaves the rule readable, with the gap listed in its `problems`.
Changes to policies and capacities publish `routing.settings_changed`, which wakes the
worker's routing loop (web/routing_loop.py) so freed capacity is used at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.account_models import Team
from inbox.assignment import capacities, open_load, pool_query
from inbox.models import Role, User
from inbox.presence import online_agents
from inbox.routing_models import AgentCapacity, AssignmentPolicy, AssignmentTurn, RoutingRule
from inbox.routing_rules import RuleBody, references
from timeline.events import Event
from timeline.models import Channel, utcnow
from web import auth
from web.api import path_id, publish
from web.api.routing_schemas import (
    AssignmentPolicyIn,
    AssignmentPolicyOut,
    AssignmentPolicyPatch,
    CapacityIn,
    CapacityOut,
    PoolAgentOut,
    RoutingRuleIn,
    RoutingRuleOut,
    RoutingRulePatch,
)
from web.api.schemas import Page
from web.errors import ApiError, not_found, validation_failed
from web.keys import READ_SESSIONS_KEY, SESSIONS_KEY
from web.openapi import ApiRoutes, parse_body, respond

routes = ApiRoutes("routing")

_READERS = (Role.ADMIN, Role.MANAGER)
SETTINGS_CHANGED = "routing.settings_changed"  # bus only: wakes the routing loop
_MODELS: dict[str, type[Channel] | type[Team] | type[User]] = {
    "channels": Channel,
    "teams": Team,
    "users": User,
}
_WORDS = {"channels": "channel", "teams": "team", "users": "user"}


# --- routing rules -----------------------------------------------------------------------------


async def _missing(session: AsyncSession, body: RuleBody, *, active_users: bool) -> dict[str, str]:
    """Field path -> what it names that does not exist (or, for users, is inactive)."""
    problems: dict[str, str] = {}
    for kind, paths in references(body).items():
        wanted = set().union(*paths.values()) if paths else set()
        if not wanted:
            continue
        model = _MODELS[kind]
        statement = select(model.id).where(model.id.in_(wanted))
        if kind == "users" and active_users:
            statement = statement.where(User.is_active.is_(True))
        found = set(await session.scalars(statement))
        for path, ids in paths.items():
            if gone := sorted(ids - found, key=str):
                problems[path] = f"no such {_WORDS[kind]}: {gone[0]}"
    return problems


async def _rule_out(session: AsyncSession, row: RoutingRule) -> RoutingRuleOut:
    body = RuleBody.model_validate({"conditions": row.conditions, "actions": row.actions})
    missing = await _missing(session, body, active_users=False)
    return RoutingRuleOut.of(row, [f"{path}: {why}" for path, why in missing.items()])


async def _rule(session: AsyncSession, request: web.Request) -> RoutingRule:
    row = await session.get(RoutingRule, path_id(request))
    if row is None:
        raise not_found("no such routing rule")
    return row


async def _place(session: AsyncSession, rule: RoutingRule, position: int | None) -> None:
    """Put the rule at `position` (None: last) and number every rule 0, 1, 2… The rows
    are locked, so two reorders at once take turns instead of interleaving."""
    rows = list(
        await session.scalars(
            select(RoutingRule)
            .order_by(RoutingRule.position, RoutingRule.created_at, RoutingRule.id)
            .with_for_update()
        )
    )
    others = [row for row in rows if row.id != rule.id]
    at = len(others) if position is None else min(position, len(others))
    others.insert(at, rule)
    for index, row in enumerate(others):
        row.position = index


def _body(conditions: object, actions: object) -> RuleBody:
    return RuleBody.model_validate({"conditions": conditions, "actions": actions})


@routes.route("GET", "/routing-rules", summary="List routing rules", response=Page[RoutingRuleOut])
async def list_routing_rules(request: web.Request) -> web.Response:
    """Every rule, in the order they run (there are few: one page)."""
    auth.require_role(request, *_READERS)
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows = await session.scalars(
            select(RoutingRule).order_by(
                RoutingRule.position, RoutingRule.created_at, RoutingRule.id
            )
        )
        items = [await _rule_out(session, row) for row in rows.all()]
    return respond(request, Page[RoutingRuleOut](items=items, next_cursor=None))


@routes.route(
    "POST",
    "/routing-rules",
    summary="Create a routing rule",
    status=201,
    body=RoutingRuleIn,
    response=RoutingRuleOut,
    errors=[403],
)
async def create_routing_rule(request: web.Request) -> web.Response:
    """A new rule, at `position` (the rules from there on move down) or last."""
    user = auth.require_role(request, Role.ADMIN)
    body = await parse_body(request, RoutingRuleIn)
    rule_body = RuleBody(conditions=body.conditions, actions=body.actions)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        if missing := await _missing(session, rule_body, active_users=True):
            raise validation_failed(missing)
        now = utcnow()
        dumped = rule_body.model_dump(mode="json")
        row = RoutingRule(
            name=body.name,
            enabled=body.enabled,
            stop_processing=body.stop_processing,
            conditions=dumped["conditions"],
            actions=dumped["actions"],
            created_by=user.id,
            created_at=now,
            updated_at=now,
            position=0,
        )
        session.add(row)
        await session.flush()
        await _place(session, row, body.position)
        answer = await _rule_out(session, row)
    return respond(request, answer)


@routes.route(
    "GET",
    "/routing-rules/{id}",
    summary="Get a routing rule",
    response=RoutingRuleOut,
    errors=[403, 404],
)
async def get_routing_rule(request: web.Request) -> web.Response:
    auth.require_role(request, *_READERS)
    async with request.app[READ_SESSIONS_KEY]() as session:
        answer = await _rule_out(session, await _rule(session, request))
    return respond(request, answer)


@routes.route(
    "PATCH",
    "/routing-rules/{id}",
    summary="Change or move a routing rule",
    body=RoutingRulePatch,
    response=RoutingRuleOut,
    errors=[403, 404],
)
async def patch_routing_rule(request: web.Request) -> web.Response:
    """Change what is given; `position` moves the rule (0: first)."""
    auth.require_role(request, Role.ADMIN)
    body = await parse_body(request, RoutingRulePatch)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        row = await _rule(session, request)
        if body.conditions is not None or body.actions is not None:
            current = _body(row.conditions, row.actions)
            rule_body = RuleBody(
                conditions=body.conditions if body.conditions is not None else current.conditions,
                actions=body.actions if body.actions is not None else current.actions,
            )
            if missing := await _missing(session, rule_body, active_users=True):
                raise validation_failed(missing)
            dumped = rule_body.model_dump(mode="json")
            row.conditions, row.actions = dumped["conditions"], dumped["actions"]
        if body.name is not None:
            row.name = body.name.strip()
        if body.enabled is not None:
            row.enabled = body.enabled
        if body.stop_processing is not None:
            row.stop_processing = body.stop_processing
        if body.position is not None:
            await _place(session, row, body.position)
        row.updated_at = utcnow()
        await session.flush()
        answer = await _rule_out(session, row)
    return respond(request, answer)


@routes.route(
    "DELETE",
    "/routing-rules/{id}",
    summary="Delete a routing rule",
    status=204,
    errors=[403, 404],
)
async def delete_routing_rule(request: web.Request) -> web.Response:
    """Its past firings stay recorded, with the rule's name as it was."""
    auth.require_role(request, Role.ADMIN)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        await session.delete(await _rule(session, request))
    return respond(request)


# --- assignment policies -----------------------------------------------------------------------


async def _policy(session: AsyncSession, request: web.Request) -> AssignmentPolicy:
    row = await session.get(AssignmentPolicy, path_id(request))
    if row is None:
        raise not_found("no such assignment policy")
    return row


@routes.route(
    "GET",
    "/assignment-policies",
    summary="List assignment policies",
    response=Page[AssignmentPolicyOut],
)
async def list_assignment_policies(request: web.Request) -> web.Response:
    auth.require_role(request, *_READERS)
    async with request.app[READ_SESSIONS_KEY]() as session:
        rows = await session.scalars(
            select(AssignmentPolicy).order_by(AssignmentPolicy.created_at, AssignmentPolicy.id)
        )
        items = [AssignmentPolicyOut.of(row) for row in rows]
    return respond(request, Page[AssignmentPolicyOut](items=items, next_cursor=None))


@routes.route(
    "POST",
    "/assignment-policies",
    summary="Create an assignment policy for a channel or a team",
    status=201,
    body=AssignmentPolicyIn,
    response=AssignmentPolicyOut,
    errors=[403, 409],
)
async def create_assignment_policy(request: web.Request) -> web.Response:
    """409 when the channel or team has a policy already (one each)."""
    auth.require_role(request, Role.ADMIN)
    body = await parse_body(request, AssignmentPolicyIn)
    try:
        async with request.app[SESSIONS_KEY]() as session, session.begin():
            if body.channel_id is not None and await session.get(Channel, body.channel_id) is None:
                raise validation_failed({"channel_id": "no such channel"})
            if body.team_id is not None and await session.get(Team, body.team_id) is None:
                raise validation_failed({"team_id": "no such team"})
            now = utcnow()
            row = AssignmentPolicy(
                channel_id=body.channel_id,
                team_id=body.team_id,
                enabled=body.enabled,
                default_capacity=body.default_capacity,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            await session.flush()
            answer = AssignmentPolicyOut.of(row)
    except IntegrityError as err:
        raise ApiError(409, "conflict", "that channel or team has a policy already") from err
    await publish(request, Event(SETTINGS_CHANGED, {"policy_id": str(answer.id)}))
    return respond(request, answer)


@routes.route(
    "GET",
    "/assignment-policies/{id}",
    summary="Get an assignment policy",
    response=AssignmentPolicyOut,
    errors=[403, 404],
)
async def get_assignment_policy(request: web.Request) -> web.Response:
    auth.require_role(request, *_READERS)
    async with request.app[READ_SESSIONS_KEY]() as session:
        answer = AssignmentPolicyOut.of(await _policy(session, request))
    return respond(request, answer)


@routes.route(
    "PATCH",
    "/assignment-policies/{id}",
    summary="Enable, disable or change an assignment policy",
    body=AssignmentPolicyPatch,
    response=AssignmentPolicyOut,
    errors=[403, 404],
)
async def patch_assignment_policy(request: web.Request) -> web.Response:
    auth.require_role(request, Role.ADMIN)
    body = await parse_body(request, AssignmentPolicyPatch)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        row = await _policy(session, request)
        if body.enabled is not None:
            row.enabled = body.enabled
        if "default_capacity" in body.model_fields_set:
            row.default_capacity = body.default_capacity
        row.updated_at = utcnow()
        await session.flush()
        answer = AssignmentPolicyOut.of(row)
    await publish(request, Event(SETTINGS_CHANGED, {"policy_id": str(answer.id)}))
    return respond(request, answer)


@routes.route(
    "DELETE",
    "/assignment-policies/{id}",
    summary="Delete an assignment policy",
    status=204,
    errors=[403, 404],
)
async def delete_assignment_policy(request: web.Request) -> web.Response:
    """Conversations already assigned keep their assignee."""
    auth.require_role(request, Role.ADMIN)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        await session.delete(await _policy(session, request))
    return respond(request)


@routes.route(
    "GET",
    "/assignment-policies/{id}/agents",
    summary="The agents of a policy's pool, as auto-assignment sees them now",
    response=Page[PoolAgentOut],
    errors=[403, 404],
)
async def list_pool_agents(request: web.Request) -> web.Response:
    """Who may be assigned: presence, open conversations, capacity, last turn."""
    auth.require_role(request, *_READERS)
    async with request.app[READ_SESSIONS_KEY]() as session:
        policy = await _policy(session, request)
        users = list(
            await session.scalars(
                select(User).where(User.id.in_(pool_query(policy))).order_by(User.email)
            )
        )
        ids = [user.id for user in users]
        online = await online_agents(session, ids) if ids else set()
        loads = await open_load(session, ids)
        limits = await capacities(session, ids, policy.default_capacity)
        turns = await _turns(session, policy.id, ids)
    items = [
        PoolAgentOut(
            user_id=user.id,
            name=user.name,
            online=user.id in online,
            open_conversations=loads[user.id],
            capacity=limits[user.id],
            last_assigned_at=turns.get(user.id),
        )
        for user in users
    ]
    return respond(request, Page[PoolAgentOut](items=items, next_cursor=None))


async def _turns(
    session: AsyncSession, policy_id: uuid.UUID, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, datetime]:
    if not ids:
        return {}
    rows = await session.execute(
        select(AssignmentTurn.user_id, AssignmentTurn.last_assigned_at).where(
            AssignmentTurn.policy_id == policy_id, AssignmentTurn.user_id.in_(list(ids))
        )
    )
    return {user_id: at for user_id, at in rows}


# --- agent capacity ----------------------------------------------------------------------------


async def _capacity_out(session: AsyncSession, user_id: uuid.UUID) -> CapacityOut:
    if await session.get(User, user_id) is None:
        raise not_found("no such user")
    own = await session.get(AgentCapacity, user_id, populate_existing=True)
    load = (await open_load(session, [user_id]))[user_id]
    return CapacityOut(
        user_id=user_id,
        own=own is not None,
        max_open=own.max_open if own is not None else None,
        open_conversations=load,
    )


@routes.route(
    "GET",
    "/agents/{user_id}/capacity",
    summary="An agent's capacity",
    response=CapacityOut,
    errors=[403, 404],
)
async def get_capacity(request: web.Request) -> web.Response:
    """`own` false: the default of each assignment policy applies."""
    auth.require_role(request, *_READERS)
    async with request.app[READ_SESSIONS_KEY]() as session:
        answer = await _capacity_out(session, path_id(request, "user_id"))
    return respond(request, answer)


@routes.route(
    "PUT",
    "/agents/{user_id}/capacity",
    summary="Set an agent's own capacity",
    body=CapacityIn,
    response=CapacityOut,
    errors=[403, 404],
)
async def put_capacity(request: web.Request) -> web.Response:
    """The agent's limit of open conversations under every policy (null: unlimited)."""
    auth.require_role(request, Role.ADMIN)
    user_id = path_id(request, "user_id")
    body = await parse_body(request, CapacityIn)
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        if await session.get(User, user_id) is None:
            raise not_found("no such user")
        row = await session.get(AgentCapacity, user_id)
        if row is None:
            session.add(AgentCapacity(user_id=user_id, max_open=body.max_open, updated_at=utcnow()))
        else:
            row.max_open = body.max_open
            row.updated_at = utcnow()
        await session.flush()
        answer = await _capacity_out(session, user_id)
    await publish(request, Event(SETTINGS_CHANGED, {"user_id": str(user_id)}))
    return respond(request, answer)


@routes.route(
    "DELETE",
    "/agents/{user_id}/capacity",
    summary="Remove an agent's own capacity (policy defaults apply)",
    response=CapacityOut,
    errors=[403, 404],
)
async def delete_capacity(request: web.Request) -> web.Response:
    auth.require_role(request, Role.ADMIN)
    user_id = path_id(request, "user_id")
    async with request.app[SESSIONS_KEY]() as session, session.begin():
        row = await session.get(AgentCapacity, user_id)
        if row is not None:
            await session.delete(row)
            await session.flush()
        answer = await _capacity_out(session, user_id)
    await publish(request, Event(SETTINGS_CHANGED, {"user_id": str(user_id)}))
    return respond(request, answer)
