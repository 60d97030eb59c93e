"""Conversation workflow records: participants, read state (issue 9)."""

from __future__ import annotations
