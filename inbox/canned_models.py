"""Canned responses, mentions and agent notifications (issue 9)."""

from __future__ import annotations
