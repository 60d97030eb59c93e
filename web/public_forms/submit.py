"""POST /forms/{key}: a visitor's submission, from the first byte to the answer.

In order: the form (404, or 503 while its channel is paused); the page it came from (a
foreign `Origin` is refused, cors.py); the per-address rate limit (429, counted before the
body is read, so a flood costs nothing more); the body, read no further than the form can
need (415, 413, 400); the honeypot (answered exactly like a success, nothing stored) and
the render token (too fast, too old, forged, another form's); the fields (422); then the
submission is stored (accept.py) and answered: JSON (200, the same for a new submission,
a double submit and a honeypot catch, so a bot cannot tell them apart), or for a browser's
plain form post the hosted form again with its messages, or a 303 to the thank-you page or
the form's redirect URL.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from aiohttp import web

from connectors.types import RawPayload
from connectors.webform.answers import error_answer, spam_answer, success_answer
from connectors.webform.attribution import attribution_for
from connectors.webform.body import ParsedBody, parse_body
from connectors.webform.definition import FormDefinition
from connectors.webform.errors import InvalidSubmission, SubmissionError
from connectors.webform.limits import body_limit
from connectors.webform.render import content_security_policy, new_nonce, render_form
from connectors.webform.spam import TokenCheck, Verdict, check_spam
from connectors.webform.submission import TOKEN_FIELD, validate
from timeline.db import is_unavailable
from web.keys import SETTINGS_KEY
from web.public_forms import clock, cors
from web.public_forms.accept import accept
from web.public_forms.keys import THROTTLE_KEY, TOKEN_SECRET_KEY
from web.public_forms.lookup import PublicForm
from web.public_forms.pages import action_path, find, new_token
from web.public_forms.responses import (
    error_body,
    html_page,
    json_answer,
    message_page,
    not_found,
    unavailable,
)
from web.public_forms.visitor import (
    check_media_type,
    client_ip,
    idempotency_key,
    read_body,
    request_info,
    wants_html,
)

logger = logging.getLogger(__name__)

FOREIGN_ORIGIN = "This form may not be sent from that site."
RATE_LIMITED = "Too many submissions from your address. Try again later."
STORE_FAILED = "The form could not be saved just now. Please send it again in a moment."
STORE_RETRY_SECONDS = "30"

_TITLES = {
    400: "The form could not be read",
    403: "Not allowed",
    413: "Too much data",
    415: "The form could not be read",
    429: "Too many submissions",
    503: "Please try again",
}


class _Answers:
    """Answers in the format the client wants, each with the request's CORS headers."""

    def __init__(self, request: web.Request, public: PublicForm) -> None:
        self.request = request
        self.public = public
        self.as_html = wants_html(request)
        self.cors = cors.cors_headers(public.definition, request.headers.get("Origin"))

    def error(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        """A refusal with no form to show again."""
        extra = {**self.cors, **(headers or {})}
        if self.as_html:
            return message_page(_TITLES.get(status, "Error"), message, status=status, headers=extra)
        return json_answer(status, error_body(code, message), extra)

    def form_again(
        self,
        status: int,
        body: Mapping[str, object],
        *,
        values: Mapping[str, str],
        errors: Mapping[str, str] | None = None,
        notice: str | None = None,
        token: str | None = None,
    ) -> web.Response:
        """A refusal the visitor can fix: JSON, or the hosted form again with messages."""
        if not self.as_html:
            return json_answer(status, body, self.cors)
        definition = self.public.definition
        nonce = new_nonce()
        page = render_form(
            definition,
            action_url=action_path(self.public.form.key),
            nonce=nonce,
            token=token or new_token(self.request, self.public.form.key),
            values=values,
            errors=errors,
            notice=notice,
        )
        csp = content_security_policy(definition, nonce)
        return html_page(page, csp=csp, status=status, headers=self.cors)

    def success(self) -> web.Response:
        """The answer to a stored submission, and to a honeypot catch."""
        definition = self.public.definition
        if not self.as_html:
            return json_answer(200, success_answer(definition), self.cors)
        target = definition.redirect_url or action_path(self.public.form.key) + "/thanks"
        headers = {"Location": target, "Cache-Control": "no-store", **self.cors}
        return web.Response(status=303, headers=headers)


def shown_values(definition: FormDefinition, body: ParsedBody) -> dict[str, str]:
    """What the visitor typed, cleaned, to fill a form shown again after a refusal."""
    try:
        submission = validate(definition, body)
    except InvalidSubmission as err:
        return dict(err.values)
    return {
        answer.field.name: answer.value
        if isinstance(answer.value, str)
        else ("on" if answer.value else "")
        for answer in submission.answers
    }


def _spam_windows(public: PublicForm) -> tuple[timedelta, timedelta]:
    config = public.config
    return (
        timedelta(seconds=config.min_seconds_to_submit),
        timedelta(hours=config.max_token_age_hours),
    )


async def submit(request: web.Request) -> web.StreamResponse:
    """POST /forms/{key} (see the module's docstring)."""
    public = await find(request)
    if public is None:
        return not_found(as_html=wants_html(request), headers={"Vary": "Origin"})
    answers = _Answers(request, public)
    if not public.available:
        return unavailable(as_html=answers.as_html, headers=answers.cors)
    settings = request.app[SETTINGS_KEY]
    definition = public.definition
    if cors.foreign_post(definition, request.headers.get("Origin"), settings.base_url):
        return answers.error(403, "forbidden_origin", FOREIGN_ORIGIN)
    hit = await request.app[THROTTLE_KEY].check(
        public.form.channel_id, public.config.submissions_per_hour_per_ip, client_ip(request)
    )
    if not hit.allowed:
        retry = {"Retry-After": str(max(1, round(hit.retry_after)))}
        return answers.error(429, "rate_limited", RATE_LIMITED, retry)
    content_type = request.headers.get("Content-Type", "")
    try:
        check_media_type(request)
        body = await read_body(request, body_limit(definition))
        parsed = parse_body(content_type, body)
    except SubmissionError as err:
        status, document = error_answer(err)
        return answers.error(status, document["error"]["code"], err.message)
    received_at = clock.now()
    min_age, max_age = _spam_windows(public)
    check = check_spam(
        definition,
        parsed,
        secret=request.app[TOKEN_SECRET_KEY],
        form_key=public.form.key,
        now=received_at,
        min_age=min_age,
        max_age=max_age,
    )
    if check.verdict is Verdict.HONEYPOT:
        logger.info("form %s: honeypot filled; answered as a success", public.form.id)
        return answers.success()
    if check.verdict is not Verdict.ACCEPTED:
        return _spam_refusal(answers, parsed, check)
    try:
        submission = validate(definition, parsed)
    except InvalidSubmission as err:
        status, document = error_answer(err)
        token = parsed.text(TOKEN_FIELD) if check.nonce else None
        return answers.form_again(
            status, document, values=err.values, errors=err.fields, token=token
        )
    attribution = attribution_for(
        public.form.key, request_info(request), submission, keep_ip=public.config.keeps_ip
    )
    try:
        await accept(
            request.app,
            public.form,
            definition,
            submission,
            attribution,
            RawPayload(content_type, body),
            received_at,
            fallback_id=idempotency_key(request),
            config=public.config,
        )
    except Exception as err:
        if not is_unavailable(err):
            raise
        logger.warning(
            "form %s: submission not stored, database unavailable: %r", public.form.id, err
        )
        return answers.error(503, "unavailable", STORE_FAILED, {"Retry-After": STORE_RETRY_SECONDS})
    return answers.success()


def _spam_refusal(answers: _Answers, parsed: ParsedBody, check: TokenCheck) -> web.Response:
    status, document = spam_answer(answers.public.definition, check.verdict)
    # Too fast: the same token works in a moment. Otherwise the page gets a fresh one.
    token = parsed.text(TOKEN_FIELD) if check.verdict is Verdict.TOO_FAST else None
    return answers.form_again(
        status,
        document,
        values=shown_values(answers.public.definition, parsed),
        notice=check.verdict.message,
        token=token,
    )
