"""Which conversation an inbound message belongs to: a pure decision, no database.

The channel kind's grouping (`connectors.base.Grouping`, declared in the registry)
decides. Email threads by its headers: a message joins the conversation holding a
Message-ID it cites (ours included), on the same channel and with the same contact only;
one that cites nothing known joins the open conversation of its thread's root, or starts
one; a subject match alone never merges. Chat kinds keep one open conversation per
contact and channel. Web form submissions always start a new conversation.

A resolved conversation is reopened by a new message within the reopen window; after
it, the thread starts again in a new conversation. Pending and snoozed conversations are
joined (the inbound message wakes them when it is stored). `Router` routes a batch in
order, so a later message sees the conversation an earlier one opened or reopened;
timeline/ingest_batch.py carries its decisions out in set-based SQL and settles races
with other transactions by the open-thread unique index.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from connectors.base import Grouping
from timeline.models import ConversationStatus

CHAT_THREAD = ""  # the thread key of a chat kind's one conversation per contact
_RESOLVED = ConversationStatus.RESOLVED.value


@dataclass(slots=True)
class Candidate:
    """What routing knows of one existing conversation."""

    id: uuid.UUID
    channel_id: uuid.UUID
    contact_id: uuid.UUID
    status: str
    thread_key: str | None
    resolved_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Arrival:
    """The routing facts of one inbound message."""

    channel_id: uuid.UUID
    contact_id: uuid.UUID
    grouping: Grouping
    # Cited Message-IDs, most relevant first (In-Reply-To, then References newest first).
    references: tuple[str, ...] = ()
    message_id: str | None = None  # its own Message-ID


@dataclass(frozen=True, slots=True)
class Route:
    """An existing conversation, or a new one (`conversation_id` None) with its thread key."""

    conversation_id: uuid.UUID | None
    thread_key: str | None = None


def route(
    arrival: Arrival,
    candidates: Iterable[Candidate],
    cited: Callable[[str], Candidate | None],
    cutoff: datetime,
) -> Route:
    """The conversation for `arrival`.

    `candidates` are the conversations of the message's contact on its channel that are
    open, pending, snoozed or resolved since `cutoff`; `cited(message_id)` is the
    conversation holding that Message-ID on the channel (any status, any contact).
    """
    if arrival.grouping is Grouping.MESSAGE:
        return Route(None)
    mine = [
        c
        for c in candidates
        if c.channel_id == arrival.channel_id and c.contact_id == arrival.contact_id
    ]
    if arrival.grouping is Grouping.CONTACT:
        return _thread(mine, CHAT_THREAD, cutoff)
    key: str | None = arrival.references[-1] if arrival.references else arrival.message_id
    for ref in arrival.references:
        hit = cited(ref)
        # Never attach a message to another person's thread, whatever it cites.
        if hit is None or hit.contact_id != arrival.contact_id:
            continue
        if hit.channel_id != arrival.channel_id:
            continue
        if hit.status != _RESOLVED:
            return Route(hit.id)
        if _reopenable(hit, cutoff):
            # Someone may have started the thread again meanwhile: join that one.
            twin = _open(mine, hit.thread_key) if hit.thread_key is not None else None
            return Route(twin.id if twin is not None else hit.id)
        # Its conversation is closed for good: the thread starts again.
        key = hit.thread_key if hit.thread_key is not None else key
        break
    if key is None:
        return Route(None)  # no Message-ID at all: nothing could ever thread with it
    return _thread(mine, key, cutoff)


def _thread(mine: list[Candidate], key: str, cutoff: datetime) -> Route:
    """The open conversation of thread `key`, else its reopenable one, else a new one."""
    found = _open(mine, key)
    if found is not None:
        return Route(found.id)
    resolved = [c for c in mine if c.thread_key == key and _reopenable(c, cutoff)]
    if resolved:
        latest = max(resolved, key=lambda c: (c.resolved_at, str(c.id)))
        return Route(latest.id)
    return Route(None, key)


def _open(mine: list[Candidate], key: str | None) -> Candidate | None:
    for candidate in mine:
        if candidate.thread_key == key and candidate.status != _RESOLVED:
            return candidate
    return None


def _reopenable(candidate: Candidate, cutoff: datetime) -> bool:
    return (
        candidate.status == _RESOLVED
        and candidate.resolved_at is not None
        and candidate.resolved_at >= cutoff
    )


class Router:
    """Routes a batch in order, so each message sees what the earlier ones decided."""

    def __init__(
        self,
        candidates: Iterable[Candidate],
        cited: dict[tuple[uuid.UUID, str], uuid.UUID],
        cutoff: datetime,
        new_id: Callable[[], uuid.UUID],
    ) -> None:
        self._by_id = {c.id: c for c in candidates}
        self._by_pair: dict[tuple[uuid.UUID, uuid.UUID], list[Candidate]] = {}
        for candidate in self._by_id.values():
            self._pair(candidate).append(candidate)
        self._cited = dict(cited)
        self._cutoff = cutoff
        self._new_id = new_id
        self.opened: dict[uuid.UUID, Candidate] = {}  # conversations this batch opens

    def add(self, candidate: Candidate) -> None:
        """Make a conversation known (one only cited so far, or read late)."""
        if candidate.id not in self._by_id:
            self._by_id[candidate.id] = candidate
            self._pair(candidate).append(candidate)

    def route(self, arrival: Arrival) -> Candidate:
        """The conversation of `arrival`; a new one is created and remembered."""
        channel = arrival.channel_id

        def cited(message_id: str) -> Candidate | None:
            conversation = self._cited.get((channel, message_id))
            return None if conversation is None else self._by_id.get(conversation)

        decision = route(
            arrival,
            self._by_pair.get((channel, arrival.contact_id), ()),
            cited,
            self._cutoff,
        )
        if decision.conversation_id is None:
            chosen = Candidate(
                self._new_id(),
                channel,
                arrival.contact_id,
                ConversationStatus.OPEN.value,
                decision.thread_key,
            )
            self.opened[chosen.id] = chosen
            self.add(chosen)
        else:
            chosen = self._by_id[decision.conversation_id]
            # The message wakes it: the next message of the batch finds it open.
            chosen.status = ConversationStatus.OPEN.value
            chosen.resolved_at = None
        if arrival.message_id is not None:
            self._cited[(channel, arrival.message_id)] = chosen.id
        return chosen

    def _pair(self, candidate: Candidate) -> list[Candidate]:
        return self._by_pair.setdefault((candidate.channel_id, candidate.contact_id), [])
