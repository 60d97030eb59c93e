"""Pre-aggregated report figures (issue 9)."""

from __future__ import annotations
