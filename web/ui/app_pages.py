"""The app's main pages: the inbox and a conversation, both in the three-pane layout
(templates/app.html), and the views listed in its sidebar.

A view is a saved filter of the conversation list: its `query` is what the list sends
to GET /api/v1/conversations (the list's JavaScript reads it from the page). The views
come from the database, filtered by what the user may see.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.account_models import Team, TeamMember
from inbox.models import Role, User
from inbox.workflow_models import ConversationLabel
from timeline.models import Channel, Contact, Conversation, Identity
from web.auth import VISIBLE_CHANNELS_KEY
from web.keys import READ_SESSIONS_KEY, USER_KEY
from web.ui.render import render, translator_of
from web.ui.session import HOME, page

MAX_LABELS = 50  # the sidebar lists at most this many labels
DEFAULT_VIEW = "all"


@dataclass(frozen=True, slots=True)
class View:
    """One entry of the sidebar: `key` is its ?view= value."""

    key: str
    title: str
    icon: str
    group: str  # "inbox", "teams", "channels" or "labels"
    query: dict[str, str] = field(default_factory=dict)


async def sidebar_views(
    session: AsyncSession,
    user: User,
    visible: frozenset[uuid.UUID] | None,
    t: Callable[[str], str],
) -> list[View]:
    """Mine, Unassigned, All, then the user's teams, the channels they see and the labels
    in use on those channels."""
    views = [
        View("mine", t("Mine"), "user", "inbox", {"assignee": str(user.id)}),
        View("unassigned", t("Unassigned"), "inbox", "inbox", {"assignee": "none"}),
        View("all", t("All"), "layers", "inbox", {}),
    ]
    teams = select(Team).order_by(Team.name)
    if user.role not in (Role.ADMIN, Role.MANAGER):
        teams = teams.join(TeamMember, TeamMember.team_id == Team.id).where(
            TeamMember.user_id == user.id
        )
    for team in await session.scalars(teams):
        views.append(
            View(f"team:{team.id}", team.name, "users", "teams", {"team_id": str(team.id)})
        )
    channels = select(Channel).order_by(Channel.name, Channel.id)
    if visible is not None:
        channels = channels.where(Channel.id.in_(visible))
    for channel in await session.scalars(channels):
        views.append(
            View(
                f"channel:{channel.id}",
                channel.name,
                f"channel-{channel.kind}",
                "channels",
                {"channel_id": str(channel.id)},
            )
        )
    labels = select(ConversationLabel.label).distinct().order_by(ConversationLabel.label)
    if visible is not None:
        labels = labels.join(
            Conversation, Conversation.id == ConversationLabel.conversation_id
        ).where(Conversation.channel_id.in_(visible))
    for label in await session.scalars(labels.limit(MAX_LABELS)):
        views.append(View(f"label:{label}", label, "tag", "labels", {"label": label}))
    return views


@dataclass(frozen=True, slots=True)
class Heading:
    """What the conversation header shows before its script runs: the contact's name (or
    first identity) and the channel's name and kind."""

    contact: str | None
    channel: str | None
    channel_kind: str | None


async def conversation_heading(session: AsyncSession, conversation: Conversation) -> Heading:
    """The header's contact and channel of `conversation`."""
    contact = await session.get(Contact, conversation.contact_id)
    channel = await session.get(Channel, conversation.channel_id)
    shown = contact.name if contact is not None else None
    if not shown:
        shown = await session.scalar(
            select(Identity.value)
            .where(Identity.contact_id == conversation.contact_id)
            .order_by(Identity.created_at, Identity.id)
            .limit(1)
        )
    return Heading(
        contact=shown or None,
        channel=channel.name if channel is not None else None,
        channel_kind=channel.kind if channel is not None else None,
    )


async def _app_page(
    request: web.Request, *, pane: str, conversation: Conversation | None = None
) -> web.Response:
    user: User = request[USER_KEY]
    visible = request.get(VISIBLE_CHANNELS_KEY)
    heading = None
    async with request.app[READ_SESSIONS_KEY]() as session:
        views = await sidebar_views(session, user, visible, translator_of(request).gettext)
        if conversation is not None:
            heading = await conversation_heading(session, conversation)
    wanted = request.query.get("view", DEFAULT_VIEW)
    current = next((v for v in views if v.key == wanted), None) or next(
        v for v in views if v.key == DEFAULT_VIEW
    )
    return render(
        request,
        "inbox.html",
        {
            "views": views,
            "view": current,
            "pane": pane,
            "conversation": conversation,
            "heading": heading,
        },
    )


async def root(request: web.Request) -> web.StreamResponse:
    """GET /: the inbox (the inbox page asks for a session)."""
    raise web.HTTPFound(HOME)


@page
async def inbox(request: web.Request) -> web.StreamResponse:
    """GET /inbox?view=<key>: the conversation list of a view."""
    return await _app_page(request, pane="list")


@page
async def conversation(request: web.Request) -> web.StreamResponse:
    """GET /conversations/{id}: one conversation; one the user may not see is a 404."""
    try:
        conversation_id = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    visible = request.get(VISIBLE_CHANNELS_KEY)
    async with request.app[READ_SESSIONS_KEY]() as session:
        found = await session.get(Conversation, conversation_id)
    if found is None or (visible is not None and found.channel_id not in visible):
        raise web.HTTPNotFound()
    return await _app_page(request, pane="conversation", conversation=found)
