"""The lead pipeline board (a column per lifecycle stage) and the queue of merge
suggestions.

Both pages are frames the browser fills from the API (static/js/admin/pipeline.js over
GET /pipeline and PATCH /contacts/{id}; static/js/admin/merge.js over
GET /merge-suggestions): the API decides what each user sees and may do. The pages
render what needs no data: the columns, the filters, the translated labels of cards
(an HTML <template>), and the dialogs.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import func, select

from inbox.lifecycle import Stage
from inbox.models import Role, User
from web.api.pipeline_schemas import BoardFilters
from web.keys import READ_SESSIONS_KEY
from web.ui.admin.shell import admin_page, current_user, render_admin
from web.ui.render import translator_of

# The English names of the stages, translated in the templates (conversation.po holds
# them: the contact panel shows them too).
STAGE_TITLES: dict[Stage, str] = {
    Stage.NEW: "New",
    Stage.LEAD: "Lead",
    Stage.QUALIFIED: "Qualified",
    Stage.CUSTOMER: "Customer",
    Stage.LOST: "Lost",
}


def add_routes(router: web.UrlDispatcher) -> None:
    """Registers the section's pages."""
    router.add_get("/pipeline", pipeline_page)
    router.add_get("/contacts/merge-suggestions", merge_page)


def board_filters(request: web.Request) -> BoardFilters:
    """The board's filters from the address; a value the API would refuse is dropped, so a
    stale or edited link still opens the whole board."""
    wanted = {key: request.query[key] for key in ("owner_id", "tag") if request.query.get(key)}
    try:
        return BoardFilters.model_validate(wanted)
    except ValidationError:
        return BoardFilters()


@admin_page("pipeline")
async def pipeline_page(request: web.Request) -> web.StreamResponse:
    """The board: columns in the pipeline's order, filled by the page's script."""
    filters = board_filters(request)
    async with request.app[READ_SESSIONS_KEY]() as session:
        owners = (
            await session.execute(
                select(User.id, User.name, User.email)
                .where(User.is_active.is_(True))
                .order_by(func.lower(func.coalesce(User.name, User.email)), User.id)
            )
        ).all()
    query: dict[str, Any] = filters.model_dump(mode="json", exclude_none=True)
    return render_admin(
        request,
        "admin/pipeline/board.html",
        "pipeline",
        {
            "stages": [(stage.value, STAGE_TITLES[stage]) for stage in Stage],
            "owners": [(str(row.id), row.name or row.email) for row in owners],
            "filters": query,
            "me": str(current_user(request).id),
        },
    )


@admin_page("merge")
async def merge_page(request: web.Request) -> web.StreamResponse:
    """The queue of open merge suggestions, oldest first."""
    # The API refuses others anyway; the page does not offer what would be refused.
    may_decide = current_user(request).role in (Role.ADMIN, Role.MANAGER)
    gettext = translator_of(request).gettext
    titles = {stage.value: gettext(title) for stage, title in STAGE_TITLES.items()}
    return render_admin(
        request,
        "admin/pipeline/merge.html",
        "merge",
        {"may_decide": may_decide, "stage_titles": titles},
    )
