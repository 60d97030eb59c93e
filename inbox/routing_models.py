"""Routing records: routing rules, their firings, auto-assignment settings (issue 9)."""

from __future__ import annotations
