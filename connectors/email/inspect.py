"""`switchboard inspect email FILE...`: what the parser makes of raw RFC 822 files, as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from connectors.email.parse import Address, ParsedEmail, parse_email


def _address(address: Address) -> dict[str, object]:
    return {"address": address.address, "name": address.name}


def inspect_json(parsed: ParsedEmail) -> dict[str, object]:
    """The JSON object DESIGN.md documents for one parsed email."""
    return {
        "from": _address(parsed.from_) if parsed.from_ is not None else None,
        "to": [_address(a) for a in parsed.to],
        "cc": [_address(a) for a in parsed.cc],
        "subject": parsed.subject,
        "message_id": parsed.message_id,
        "in_reply_to": parsed.in_reply_to,
        "references": list(parsed.references),
        "sent_at": parsed.sent_at.isoformat() if parsed.sent_at is not None else None,
        "text": parsed.text,
        "reply_text": parsed.reply_text,
        "html": parsed.html,
        "attachments": [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": len(a.data),
                "inline": a.inline,
            }
            for a in parsed.attachments
        ],
        "auto_submitted": parsed.auto_submitted,
        "error": parsed.error,
    }


def inspect_files(paths: Sequence[Path], out: TextIO) -> int:
    """Write one JSON object per file to `out` (one per line), each with its "file".

    A file that cannot be read gives {"file", "error"} only. Returns 0: bad input is
    reported in the output, never as a failure of the command.
    """
    for path in paths:
        try:
            raw = Path(path).read_bytes()
        except OSError as err:
            record: dict[str, object] = {
                "file": str(path),
                "error": f"cannot read the file: {err.strerror or err}",
            }
        else:
            record = {"file": str(path), **inspect_json(parse_email(raw))}
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return 0
