"""What the contact pages' scripts need besides the contacts themselves: what this user
may do, the lifecycle stages, the users (owners), the channels they see, the channel
kinds a contact can be reached on, and the custom attribute definitions. Read once per
page, handed over as JSON (<script type="application/json" id="contacts-data">)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.registry import REGISTRY
from connectors.types import ChannelKind
from inbox import attributes
from inbox.lifecycle import Stage
from inbox.models import Role, User
from timeline.models import Channel
from web.auth import VISIBLE_CHANNELS_KEY
from web.ui.admin.shell import current_user

_STAFF = (Role.ADMIN, Role.MANAGER)


def abilities(role: str) -> dict[str, bool]:
    """Which actions the screens offer; the API refuses the others anyway."""
    return {
        "save_segments": role in _STAFF,  # and rename and delete them
        # Anyone's notes (inbox/notes.py may_change); their own notes everyone may change.
        "change_notes": role in _STAFF,
        "export": role in _STAFF,  # bulk CSV and one contact's personal data
        "erase": role == Role.ADMIN,
    }


async def page_data(session: AsyncSession, request: web.Request) -> dict[str, Any]:
    """The JSON of the contacts pages (see the module docstring)."""
    user = current_user(request)
    users = await session.scalars(select(User).order_by(User.name, User.email))
    channels = select(Channel).order_by(Channel.name, Channel.id)
    if (visible := request.get(VISIBLE_CHANNELS_KEY)) is not None:
        channels = channels.where(Channel.id.in_(visible))
    definitions = await attributes.definitions(session)
    return {
        "can": abilities(user.role),
        "user_id": str(user.id),
        "stages": [stage.value for stage in Stage],
        "users": [
            {"id": str(row.id), "name": row.name or row.email, "active": row.is_active}
            for row in users
        ],
        "channels": [
            {"id": str(row.id), "name": row.name, "kind": row.kind}
            for row in await session.scalars(channels)
        ],
        # Web forms cannot be written back to: no one is "reachable" on one.
        "reachable_kinds": [
            kind.value for kind in ChannelKind if REGISTRY[kind].recipient_kind is not None
        ],
        "attributes": [
            {"key": row.key, "label": row.label, "type": row.type, "options": row.options or []}
            for row in definitions
        ],
    }


def labels(t: Callable[[str], str]) -> dict[str, dict[str, str]]:
    """The translated names the templates show for stages, channel kinds and the
    comparisons of an attribute condition (inbox/segments.py OPS_BY_TYPE)."""
    return {
        "stages": {
            Stage.NEW: t("New"),
            Stage.LEAD: t("Lead"),
            Stage.QUALIFIED: t("Qualified"),
            Stage.CUSTOMER: t("Customer"),
            Stage.LOST: t("Lost"),
        },
        "kinds": {
            ChannelKind.EMAIL: t("Email"),
            ChannelKind.SMS: t("SMS"),
            ChannelKind.TELEGRAM: t("Telegram"),
            ChannelKind.WEBFORM: t("Web form"),
        },
        "ops": {
            "eq": t("is"),
            "neq": t("is not"),
            "contains": t("contains"),
            "in": t("is one of"),
            "gt": t("is more than"),
            "gte": t("is at least"),
            "lt": t("is less than"),
            "lte": t("is at most"),
            "before": t("is before"),
            "after": t("is after"),
            "on": t("is on"),
            "is": t("is"),
            "is_set": t("is set"),
            "is_not_set": t("is not set"),
        },
    }
