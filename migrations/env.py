"""Alembic environment: the product's models, and the database URL from the one Settings object.

Run through ``python -m sora_temporal.schema`` (``make migrate``), which hands over an open
connection; plain ``alembic upgrade head`` from the repository root works too and reads
``DATABASE_URL`` (or the default catalogue) like the worker does. Our own tables are compared and
migrated: the catalogue's ``videos`` and the API's ``api_jobs`` (its model is registered on the same
metadata by :mod:`sora_temporal.schema`); any other table in the same database is left alone.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from sora_temporal.db import Base, make_engine
from sora_temporal.schema import include_object
from sora_temporal.settings import Settings

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        # SQLite alters tables by copying them; batch mode does that for future column changes.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_online() -> None:
    """Migrate over the connection we were given, or one to the configured database."""
    given: Any = config.attributes.get("connection")
    if isinstance(given, Connection):
        _configure(given)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


def run_offline() -> None:
    """Print the SQL (``alembic upgrade head --sql``) for the configured database's dialect."""
    url = config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url
    context.configure(
        url=url, target_metadata=target_metadata, include_object=include_object, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
