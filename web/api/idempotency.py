"""`Idempotency-Key`: a retried API request answers its first result instead of acting twice.

A client that may retry (a timeout, a dropped connection) sends a key of its choosing.
Keys belong to the authenticated user. The first request with a key stores its answer
in `idempotency_keys` in the same transaction as what it created, so the primary key
(user, key) settles concurrent retries: exactly one creates anything, and the others
answer its stored result (on PostgreSQL a second insert waits for the first transaction
to end; on SQLite writers take turns). Within `WINDOW`, the same key with the same
request (method, path and body) answers the stored status and body again, marked
`Idempotent-Replayed: true`; the same key with another request is 409. After `WINDOW`
the key may be used again, and expired rows are deleted by later keyed requests.

Only a success is stored: a refused request created nothing, so its retry is checked
afresh.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web
from pydantic import BaseModel
from sqlalchemy import delete, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.models import IdempotencyKey
from web.errors import ApiError, validation_failed
from web.openapi import Header

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
WINDOW = timedelta(hours=24)
# Expired rows deleted per keyed request: bounded, so no request pays for a backlog.
CLEANUP_BATCH = 100

_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII: no spaces, no control characters

HEADER_DOC = Header(
    HEADER,
    description=(
        "A key of your choosing (1-255 visible ASCII characters, e.g. a UUID) that makes a "
        "retry safe: for 24 hours the same key and the same body answer the first result "
        "again, with `Idempotent-Replayed: true`, and nothing more is sent; the same key "
        "with another body is 409. Keys are per user."
    ),
    schema={"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
)


@dataclass(frozen=True, slots=True)
class Claim:
    """One request's use of a key: whose key, which key, and what request it came with."""

    user_id: uuid.UUID
    key: str
    fingerprint: str


class KeyTaken(Exception):
    """Another request holds this key (it committed first); answer its result instead."""

    def __init__(self, claim: Claim) -> None:
        super().__init__(claim.key)
        self.claim = claim


def claim_of(request: web.Request, user_id: uuid.UUID, body: BaseModel) -> Claim | None:
    """The request's claim on its `Idempotency-Key`; None without the header; 422 if malformed."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        raise validation_failed(
            {HEADER: "must be 1 to 255 visible ASCII characters (no spaces)"},
            message=f"invalid {HEADER} header",
        )
    return Claim(user_id, key, fingerprint(request.method, request.path, body))


def fingerprint(method: str, path: str, body: BaseModel) -> str:
    """sha256 of the method, path and canonical JSON of the validated body.

    The validated body includes defaults, so `{"text": "hi"}` and
    `{"text": "hi", "private": false}` are the same request.
    """
    canonical = json.dumps(
        body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


async def earlier_answer(session: AsyncSession, claim: Claim, now: datetime) -> web.Response | None:
    """The stored answer to replay for this claim; None when the key is unused or expired.

    Raises 409 when the key was used with another request.
    """
    row = await session.get(IdempotencyKey, (claim.user_id, claim.key))
    if row is None or row.created_at <= now - WINDOW:
        return None
    if row.fingerprint != claim.fingerprint:
        raise ApiError(
            409,
            "idempotency_key_reused",
            f"this {HEADER} was already used with another request; use a new key for a new request",
            {HEADER: "already used with a different method, path or body"},
        )
    response = web.json_response(row.response, status=row.status)
    response.headers[REPLAYED] = "true"
    return response


async def winner_answer(session: AsyncSession, claim: Claim, now: datetime) -> web.Response:
    """After `KeyTaken`: the answer of the request that took the key first (or 409)."""
    answer = await earlier_answer(session, claim, now)
    if answer is None:
        # Its row is gone again already (expired and cleaned up in between): rare enough
        # that the client's next retry, not a loop here, settles it.
        raise ApiError(
            409,
            "idempotency_key_in_use",
            f"another request with this {HEADER} was being handled; retry this one",
            {HEADER: "in use by a concurrent request"},
        )
    return answer


async def take(session: AsyncSession, claim: Claim, now: datetime) -> IdempotencyKey:
    """Take the key inside the caller's transaction; raises KeyTaken when another has it.

    Replaces this key's expired row, and deletes a batch of other expired rows.
    """
    expired = IdempotencyKey.created_at <= now - WINDOW
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == claim.user_id, IdempotencyKey.key == claim.key, expired
        )
    )
    # SKIP LOCKED (PostgreSQL; SQLite has one writer anyway): rows another transaction is
    # deleting are left to it, so this never waits and never deadlocks with it.
    batch = (
        select(IdempotencyKey.user_id, IdempotencyKey.key)
        .where(expired)
        .limit(CLEANUP_BATCH)
        .with_for_update(skip_locked=True)
    )
    await session.execute(
        delete(IdempotencyKey)
        .where(tuple_(IdempotencyKey.user_id, IdempotencyKey.key).in_(batch))
        .execution_options(synchronize_session=False)
    )
    row = IdempotencyKey(
        user_id=claim.user_id,
        key=claim.key,
        fingerprint=claim.fingerprint,
        status=0,  # set by `record` before the commit
        response={},
        created_at=now,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as err:
        raise KeyTaken(claim) from err
    return row


def record(row: IdempotencyKey, status: int, body: BaseModel, message_id: uuid.UUID) -> None:
    """Store the answer on the taken key (written by the caller's commit)."""
    row.status = status
    row.response = body.model_dump(mode="json")
    row.message_id = message_id
