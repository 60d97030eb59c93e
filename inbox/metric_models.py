"""Response-time metrics, business hours and SLA policies (issue 9)."""

from __future__ import annotations
