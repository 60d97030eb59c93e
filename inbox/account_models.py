"""Sessions, channel membership and teams (issue 9)."""

from __future__ import annotations
