"""The JSON answers of POST /forms/{key}, in the one error shape of the API.

The embed script reads exactly these, so they live beside it rather than in web/:
success `{"ok": true, "message", "redirect_url"}`; refusal
`{"error": {"code", "message", "fields": {name: message}}}`.
"""

from __future__ import annotations

from typing import Any

from connectors.webform.definition import FormDefinition
from connectors.webform.errors import InvalidSubmission, SubmissionError
from connectors.webform.spam import Verdict

RATE_LIMITED = (
    429,
    {
        "error": {
            "code": "rate_limited",
            "message": "Too many submissions. Try again later.",
            "fields": {},
        }
    },
)

# Token refusals a person cannot fix by editing fields; the page (or the embed script,
# which fetches a fresh token) must be reloaded. Too fast and expired are 422: sending
# again, or after a reload, works.
_VERDICT_STATUS: dict[Verdict, int] = {
    Verdict.MISSING_TOKEN: 403,
    Verdict.BAD_TOKEN: 403,
    Verdict.WRONG_FORM: 403,
    Verdict.TOO_FAST: 422,
    Verdict.EXPIRED: 422,
}


def success_answer(definition: FormDefinition) -> dict[str, Any]:
    """What a successful post answers (and, so bots learn nothing, a honeypot catch)."""
    return {
        "ok": True,
        "message": definition.success_message,
        "redirect_url": definition.redirect_url,
    }


def error_answer(error: SubmissionError) -> tuple[int, dict[str, Any]]:
    """Status and body for a refused body: 400, 413, 415, or 422 with per-field messages."""
    fields = error.fields if isinstance(error, InvalidSubmission) else {}
    return error.status, {"error": {"code": error.code, "message": error.message, "fields": fields}}


def spam_answer(definition: FormDefinition, verdict: Verdict) -> tuple[int, dict[str, Any]]:
    """Status and body for a spam verdict other than ACCEPTED."""
    if verdict is Verdict.ACCEPTED:
        raise ValueError("an accepted submission is answered after it is stored")
    if verdict.silent:
        return 200, success_answer(definition)
    body = {"error": {"code": verdict.value, "message": verdict.message, "fields": {}}}
    return _VERDICT_STATUS[verdict], body
