"""Alembic migrations; `switchboard migrate` applies them (see timeline/migrate.py)."""
