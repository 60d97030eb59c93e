"""Alembic migrations; `switchboard migrate` applies them (see migrations/upgrade.py)."""
