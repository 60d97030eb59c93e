"""Size limits of a submission, and the body limit a form's definition implies."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.webform.definition import FieldType, FormDefinition


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds applied before and while a body is parsed (per-field lengths and per-file sizes
    come from the definition)."""

    max_body_bytes: int = 20 * 1024 * 1024  # hard ceiling, whatever the form
    text_body_bytes: int = 256 * 1024  # what the text fields of any form may take together
    max_parts: int = 200  # fields in the body, known or not, values of lists counted
    max_files: int = 10
    max_name_chars: int = 200  # a field name in the body (unknown names too)
    max_raw_value_bytes: int = 100_000  # one text value before cleaning (reports: "too long")
    max_part_header_bytes: int = 8 * 1024  # one multipart part's headers


DEFAULT_LIMITS = Limits()


def body_limit(definition: FormDefinition, limits: Limits = DEFAULT_LIMITS) -> int:
    """The largest body this form can need: the text allowance plus each file field's
    maximum (plus room for multipart headers), capped by `limits.max_body_bytes`. The
    endpoint answers 413 above it before reading further."""
    files = [f for f in definition.fields if f.type is FieldType.FILE]
    needed = limits.text_body_bytes + sum(f.file_limit + 1024 for f in files)
    return min(needed, limits.max_body_bytes)
