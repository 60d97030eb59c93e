"""Delivery of queued outgoing webhooks: claim, sign, POST, record, retry.

Claiming. A worker selects due `queued` deliveries of active subscriptions (``FOR UPDATE
SKIP LOCKED`` on PostgreSQL, so workers never wait on each other; on SQLite the write
transaction already holds the database's one write lock) and claims each by pushing
`next_attempt_at` past the post's timeout, counting the attempt and drawing a fresh
`claim_id`, all committed before the request is made. An outcome is recorded only while
the row is still in that claim. A worker that dies mid-post leaves the claim to lapse,
and the delivery is posted again: delivery is at least once, and receivers dedupe on
`Switchboard-Delivery`. Deliveries of one subscription may arrive in any order.

Outcomes (`Outcome`). 2xx: delivered. 410 Gone: the receiver asks to be left alone, so
the subscription is deactivated and the delivery failed. An address refused by the SSRF
guard (webhook_address.py): failed. Anything else (another status, a redirect, which is
not followed, a timeout, a connection error): retried after a capped exponential delay
with jitter (30 s doubling to an hour), until the attempts or the retry period (24 h)
run out; then failed.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import random
import time
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import aiohttp
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.webhook_address import AddressRefused, PublicResolver, check_literal_host
from inbox.webhook_models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from inbox.webhook_signing import SIGNATURE_HEADER, signature_header
from timeline.clock import database_now
from timeline.crypto import SecretBox
from timeline.db import SessionFactory
from timeline.ids import new_id

logger = logging.getLogger(__name__)

EVENT_HEADER = "Switchboard-Event"
DELIVERY_HEADER = "Switchboard-Delivery"
USER_AGENT = "Switchboard-Webhooks/1"
# Enough of a receiver's answer to say what went wrong, never its whole body.
MAX_RESPONSE_BYTES = 4096
ERROR_LENGTH = 500  # webhook_deliveries.last_error
SNIPPET_LENGTH = 200
ERASED_ERROR = "not sent: the contact was erased"


class Outcome(enum.StrEnum):
    """What became of one POST."""

    DELIVERED = "delivered"  # 2xx
    RETRY = "retry"  # may pass: another status, a timeout, a connection error
    GONE = "gone"  # 410: the subscription is deactivated
    REFUSED = "refused"  # the address may not be called: failed without retrying


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of a POST, with what the log shows about it."""

    outcome: Outcome
    status_code: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Claimed:
    """One claimed delivery, with what its POST needs."""

    id: uuid.UUID
    claim_id: uuid.UUID
    subscription_id: uuid.UUID
    url: str
    kind: str
    body: bytes
    secrets: tuple[str, ...]
    attempts: int  # including this one
    retry_from: datetime


def encode_secret(box: SecretBox, secret: str) -> str:
    """A signing secret encrypted for storage."""
    return box.encrypt({"secret": secret})


def decode_secret(box: SecretBox, token: str) -> str:
    """A signing secret stored by `encode_secret`."""
    return str(box.decrypt(token)["secret"])


def body_of(payload: dict[str, object]) -> bytes:
    """The exact bytes posted (and signed) for a payload."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class WebhookSender:
    """Posts due deliveries (see the module docstring)."""

    def __init__(
        self,
        sessions: SessionFactory,
        box: SecretBox,
        *,
        allow_private: bool,
        concurrency: int = 8,
        timeout: float = 10.0,
        base_delay: timedelta = timedelta(seconds=30),
        max_delay: timedelta = timedelta(hours=1),
        retry_period: timedelta = timedelta(hours=24),
        max_attempts: int = 30,
        clock: Callable[[], datetime] | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if concurrency < 1 or max_attempts < 1 or timeout <= 0:
            raise ValueError("concurrency, max_attempts and timeout must be positive")
        self._sessions = sessions
        self._box = box
        self.allow_private = allow_private
        self.concurrency = concurrency
        self.timeout = timeout
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.retry_period = retry_period
        self.max_attempts = max_attempts
        # A claim outlasts the post's timeout and its recording, so it is never taken twice.
        self.lease = timedelta(seconds=max(60.0, timeout * 3))
        self._clock = clock  # None: the database's clock
        self._jitter = jitter
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the HTTP client (idempotent)."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            resolver = None if self.allow_private else PublicResolver()
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=resolver, limit=self.concurrency * 2),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                # Never through a proxy from the environment: the SSRF guard must see the
                # address the request goes to.
                trust_env=False,
            )
        return self._http

    async def _now(self, session: AsyncSession) -> datetime:
        return self._clock() if self._clock is not None else await database_now(session)

    def delay(self, attempts: int) -> timedelta:
        """How long after its `attempts`-th failure a delivery is tried again: doubling
        from `base_delay` up to `max_delay`, spread by ±25% so retries after an outage do
        not arrive at a receiver all at once."""
        factor = 1 << min(max(attempts - 1, 0), 30)
        capped = min(self.base_delay * factor, self.max_delay)
        return capped * (0.75 + 0.5 * self._jitter())

    async def run_once(self) -> int:
        """Claim a batch of due deliveries, post them concurrently and record each;
        returns how many were posted."""
        jobs = await self._claim()
        if jobs:
            await asyncio.gather(*(self.deliver(job) for job in jobs))
        return len(jobs)

    async def _claim(self) -> list[Claimed]:
        async with self._sessions() as session, session.begin():
            now = await self._now(session)
            rows = (
                await session.execute(
                    select(WebhookDelivery, WebhookSubscription)
                    .join(
                        WebhookSubscription,
                        WebhookSubscription.id == WebhookDelivery.subscription_id,
                    )
                    .where(
                        WebhookDelivery.status == DeliveryStatus.QUEUED.value,
                        WebhookDelivery.next_attempt_at <= now,
                        WebhookSubscription.active.is_(True),
                    )
                    .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                    .limit(self.concurrency)
                    .with_for_update(skip_locked=True, of=WebhookDelivery)
                )
            ).all()
            jobs = []
            for delivery, subscription in rows:
                delivery.attempts += 1
                delivery.next_attempt_at = now + self.lease
                delivery.claim_id = new_id()
                delivery.last_attempt_at = now
                jobs.append(
                    Claimed(
                        id=delivery.id,
                        claim_id=delivery.claim_id,
                        subscription_id=subscription.id,
                        url=subscription.url,
                        kind=delivery.event_kind,
                        body=body_of(delivery.payload),
                        secrets=self._secrets(subscription, now),
                        attempts=delivery.attempts,
                        retry_from=delivery.retry_from,
                    )
                )
        return jobs

    def _secrets(self, subscription: WebhookSubscription, now: datetime) -> tuple[str, ...]:
        current = decode_secret(self._box, subscription.secret_encrypted)
        expires = subscription.previous_secret_expires_at
        if subscription.previous_secret_encrypted is None or expires is None or expires <= now:
            return (current,)
        return (current, decode_secret(self._box, subscription.previous_secret_encrypted))

    async def deliver(self, job: Claimed) -> Result:
        """Post one claimed delivery and record the outcome; never raises for the
        receiver's faults (the one catch-all per delivery)."""
        try:
            result = await self._post(job)
        except Exception as err:
            logger.exception("webhook delivery %s failed unexpectedly", job.id)
            result = Result(Outcome.RETRY, None, _cut(f"internal error: {err!r}", ERROR_LENGTH))
        await self._record(job, result)
        return result

    async def _post(self, job: Claimed) -> Result:
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: job.kind,
            DELIVERY_HEADER: str(job.id),
            SIGNATURE_HEADER: signature_header(job.secrets, timestamp, job.body),
        }
        try:
            if not self.allow_private:
                check_literal_host(urlsplit(job.url).hostname or "")
            async with self._client().post(
                job.url, data=job.body, headers=headers, allow_redirects=False
            ) as response:
                snippet = await response.content.read(MAX_RESPONSE_BYTES)
                status = response.status
        except AddressRefused as err:
            return Result(Outcome.REFUSED, None, _cut(f"refused: {err}", ERROR_LENGTH))
        except aiohttp.ClientConnectorError as err:
            if isinstance(err.os_error, AddressRefused):
                return Result(Outcome.REFUSED, None, _cut(f"refused: {err.os_error}", ERROR_LENGTH))
            return Result(Outcome.RETRY, None, _cut(f"connection failed: {err}", ERROR_LENGTH))
        except TimeoutError:
            return Result(Outcome.RETRY, None, f"no answer within {self.timeout:g} s")
        except aiohttp.ClientError as err:
            return Result(Outcome.RETRY, None, _cut(f"request failed: {err!r}", ERROR_LENGTH))
        if 200 <= status < 300:
            return Result(Outcome.DELIVERED, status, None)
        text = _readable(snippet)
        if status == 410:
            return Result(Outcome.GONE, status, "410 Gone: the subscription was deactivated")
        if 300 <= status < 400:
            return Result(Outcome.RETRY, status, f"HTTP {status}: redirects are not followed")
        return Result(
            Outcome.RETRY, status, _cut(f"HTTP {status}: {text}".rstrip(": "), ERROR_LENGTH)
        )

    async def _record(self, job: Claimed, result: Result) -> None:
        async with self._sessions() as session, session.begin():
            now = await self._now(session)
            values: dict[str, object] = {
                "last_status_code": result.status_code,
                "last_error": result.error,
                "claim_id": None,
            }
            if result.outcome is Outcome.DELIVERED:
                values.update(status=DeliveryStatus.DELIVERED.value, delivered_at=now)
            elif result.outcome is Outcome.RETRY:
                delay = self.delay(job.attempts)
                if (
                    job.attempts >= self.max_attempts
                    or now + delay > job.retry_from + self.retry_period
                ):
                    values.update(
                        status=DeliveryStatus.FAILED.value,
                        last_error=_cut(
                            f"gave up after {job.attempts} attempt(s): {result.error}", ERROR_LENGTH
                        ),
                    )
                else:
                    values.update(next_attempt_at=now + delay)
            else:
                values.update(status=DeliveryStatus.FAILED.value)
            recorded = await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == job.id,
                    WebhookDelivery.claim_id == job.claim_id,
                    WebhookDelivery.status == DeliveryStatus.QUEUED.value,
                )
                .values(**values)
                .returning(WebhookDelivery.id)
            )
            if recorded.first() is None:
                return  # redelivered or re-claimed meanwhile: that claim records its own
            if result.outcome is Outcome.GONE:
                await session.execute(
                    update(WebhookSubscription)
                    .where(WebhookSubscription.id == job.subscription_id)
                    .values(
                        active=False,
                        inactive_reason=f"the receiver answered 410 Gone at {now.isoformat()}",
                        updated_at=now,
                    )
                )
        if result.outcome is not Outcome.DELIVERED:
            logger.info(
                "webhook delivery %s attempt %s: %s (%s)",
                job.id,
                job.attempts,
                result.outcome.value,
                result.error,
            )


async def redeliver(session: AsyncSession, delivery_id: uuid.UUID, now: datetime) -> bool:
    """Queue a delivery again now, with fresh attempts and retry period, under the same
    delivery id (receivers that processed it already drop it by that id). False when
    it does not exist."""
    result = await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(
            status=DeliveryStatus.QUEUED.value,
            attempts=0,
            next_attempt_at=now,
            retry_from=now,
            claim_id=None,
            delivered_at=None,
        )
        .returning(WebhookDelivery.id)
    )
    return result.first() is not None


async def scrub_contact_deliveries(session: AsyncSession, contact_ids: Sequence[uuid.UUID]) -> int:
    """Empty the payloads (and receivers' error texts, which may quote them) of the
    contacts' deliveries, in the caller's transaction (personal data erasure). Queued ones
    are failed: an erased person's data must not be posted afterwards. Returns how many
    rows changed."""
    if not contact_ids:
        return 0
    ids = list(contact_ids)
    result = await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.contact_id.in_(ids))
        .values(payload={}, last_error=None, claim_id=None)
        .returning(WebhookDelivery.id)
    )
    changed = len(result.all())
    await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.contact_id.in_(ids),
            WebhookDelivery.status == DeliveryStatus.QUEUED.value,
        )
        .values(status=DeliveryStatus.FAILED.value, last_error=ERASED_ERROR)
    )
    return changed


def _readable(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    cleaned = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in text)
    return _cut(" ".join(cleaned.split()), SNIPPET_LENGTH)


def _cut(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
