"""Notes about a contact, written by users: added, edited by their author (or an admin or
manager), deleted. Adding and deleting one is recorded on the contact's timeline; the
note's text stays in the note, so an edit or an erase has one place to change."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from inbox.models import ContactNote, Role, User
from timeline.ids import new_id
from timeline.models import TimelineEvent

MAX_NOTE_LENGTH = 20_000

NOTE_ADDED = "note.added"
NOTE_DELETED = "note.deleted"


class NoteError(ValueError):
    """A note text that cannot be kept; the message says why."""


def check_text(text: str) -> str:
    """The note's text without surrounding blank space; NoteError when empty or too long."""
    cleaned = text.strip()
    if not cleaned:
        raise NoteError("must not be blank")
    if len(cleaned) > MAX_NOTE_LENGTH:
        raise NoteError(f"at most {MAX_NOTE_LENGTH} characters")
    if "\x00" in cleaned:
        raise NoteError("must not contain NUL characters")
    return cleaned


def may_change(note: ContactNote, user: User) -> bool:
    """Whether `user` may edit or delete `note`: its author, an admin or a manager."""
    return note.author_id == user.id or user.role in (Role.ADMIN.value, Role.MANAGER.value)


def add_note(
    session: AsyncSession, contact_id: uuid.UUID, author: User, text: str, now: datetime
) -> ContactNote:
    """A new note and its "note.added" timeline event, added to the session."""
    note = ContactNote(
        id=new_id(),
        contact_id=contact_id,
        author_id=author.id,
        text=check_text(text),
        created_at=now,
        updated_at=now,
    )
    session.add(note)
    session.add(
        TimelineEvent(
            contact_id=contact_id,
            kind=NOTE_ADDED,
            data={"note_id": str(note.id), "by": str(author.id)},
            occurred_at=now,
        )
    )
    return note


def edit_note(note: ContactNote, text: str, now: datetime) -> bool:
    """Replace the note's text; False when it is the same text (nothing changes)."""
    cleaned = check_text(text)
    if cleaned == note.text:
        return False
    note.text = cleaned
    note.updated_at = now
    return True


async def delete_note(session: AsyncSession, note: ContactNote, by: User, now: datetime) -> None:
    """Delete the note, recording "note.deleted" on the contact's timeline."""
    session.add(
        TimelineEvent(
            contact_id=note.contact_id,
            kind=NOTE_DELETED,
            data={"note_id": str(note.id), "by": str(by.id)},
            occurred_at=now,
        )
    )
    await session.delete(note)
