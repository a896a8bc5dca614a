"""Alembic migrations of the gateway database (shipped inside the package)."""
