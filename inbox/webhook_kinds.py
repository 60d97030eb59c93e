"""The timeline event kinds an outgoing webhook can subscribe to: the one list.

Each is the `kind` of a `timeline_events` row (written in the transaction of the change
it records); webhooks are fed from that table, never from the bus. A subscription names
some of these, or "*" for every kind, including kinds added later. A new kind of
timeline event is added here to become subscribable by name.
"""

from __future__ import annotations

ALL = "*"

# kind -> what it records (shown in the API documentation).
EVENT_KINDS: dict[str, str] = {
    "message.received": "a customer's message arrived",
    "message.sent": "an agent's reply was queued for its channel",
    "message.edited": "the customer edited a message (Telegram)",
    "note.added": "a private note was added",
    "note.deleted": "a private note was deleted",
    "reply.channel_switched": "a reply went out on another channel than the conversation's",
    "attachment.fetched": "a file that failed to download was fetched later",
    "attachment.failed": "a file could not be fetched and will not be tried again",
    "conversation.opened": "a new conversation started",
    "conversation.reopened": "a customer message reopened a conversation",
    "conversation.status_changed": "a conversation's status changed",
    "conversation.assigned": "a conversation was assigned to an agent (or unassigned)",
    "conversation.team_changed": "a conversation was given to another team",
    "conversation.priority_changed": "a conversation's priority changed",
    "conversation.labels_changed": "labels were added to or removed from a conversation",
    "conversation.participant_added": "a user started following a conversation",
    "conversation.participant_removed": "a user stopped following a conversation",
    "contact.created": "a new contact was created",
    "contact.updated": "a contact's details were changed",
    "contact.stage_changed": "a contact moved to another lifecycle stage",
    "contact.owner_changed": "a contact got another owner",
    "contact.tags_changed": "a contact's tags were changed",
    "contact.attributes_changed": "a contact's custom attributes were changed",
    "contact.attributed": "where a contact came from was recorded",
    "contact.merged": "two contacts were merged",
    "contact.merge_suggested": "two contacts look like one person",
    "contact.merge_dismissed": "a merge suggestion was dismissed",
    "contact.erased": "a contact's personal data was erased",
    "form.submitted": "a web form was submitted",
    "task.due": "a follow-up task became due",
    "sla.breached": "a conversation breached an SLA target",
    "routing.rule_fired": "a routing rule acted on a customer's message",
    "routing.escalated": "a routing rule escalated a conversation to another team",
}


def wants(event_types: list[str], kind: str) -> bool:
    """Whether a subscription to `event_types` receives an event of `kind`."""
    return ALL in event_types or kind in event_types
