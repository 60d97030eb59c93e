"""Outgoing webhook subscriptions and their delivery log (issue 9)."""

from __future__ import annotations
