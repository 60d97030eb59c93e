"""The errors a form submission can be refused with, each carrying its HTTP answer."""

from __future__ import annotations


class SubmissionError(ValueError):
    """The request body cannot be a submission: the endpoint answers `status` with `code`.

    The one error type the body parser and the validator raise on bad input, whatever the
    bytes; anything else escaping them is a bug."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BodyTooLarge(SubmissionError):
    """Over the body, part or file-count limits (413)."""

    status = 413
    code = "too_large"


class UnsupportedContentType(SubmissionError):
    """Not urlencoded, multipart/form-data or JSON (415)."""

    status = 415
    code = "unsupported_media_type"


class MalformedBody(SubmissionError):
    """The body does not parse as its content type says (400)."""

    status = 400
    code = "malformed"


class InvalidSubmission(SubmissionError):
    """The body parsed, but fields failed validation (422 with per-field messages).

    `values` holds what the visitor typed (cleaned), so the hosted form can show it again."""

    status = 422
    code = "invalid"

    def __init__(
        self,
        fields: dict[str, str],
        values: dict[str, str] | None = None,
        message: str = "Some fields need attention.",
    ) -> None:
        super().__init__(message)
        self.fields = fields
        self.values = values or {}
