"""The shared real-mail corpus (../shared/corpus/email) for the parser tests.

Tests read the fixtures in place. A missing corpus is a failure, never a skip: the
parametrized lists then hold one sentinel name whose test fails with the reason.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

CORPUS = (Path(__file__).parents[3] / ".." / "shared" / "corpus" / "email").resolve()
MISSING = "<corpus missing>"


@cache
def manifest() -> dict[str, dict[str, Any]]:
    """The manifest's records by file name; empty when the corpus is missing."""
    path = CORPUS / "manifest.json"
    if not path.is_file():
        return {}
    return {e["file"]: e for e in json.loads(path.read_text(encoding="utf-8"))["emails"]}


def names(kind: str | None = None) -> list[str]:
    """File names of one manifest kind ("rfc822", "body_only_not_rfc822"), or all."""
    found = sorted(n for n, e in manifest().items() if kind is None or e["kind"] == kind)
    return found or [MISSING]


def read(name: str) -> bytes:
    """The bytes of one fixture; fails the test when the corpus is missing."""
    assert name != MISSING, f"the email corpus is missing: expected it at {CORPUS}"
    return (CORPUS / name).read_bytes()


def expected(name: str) -> dict[str, Any]:
    """The manifest's `expected` block of one fixture."""
    assert name != MISSING, f"the email corpus is missing: expected it at {CORPUS}"
    result: dict[str, Any] = manifest()[name]["expected"]
    return result
