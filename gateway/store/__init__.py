"""The gateway's database: SQLAlchemy 2 models, engine set-up and repositories."""
