"""The catalogue's schema: Alembic revisions in ``migrations/``, applied with ``make migrate``.

    python -m sora_temporal.schema upgrade   # to the newest revision (adopts a pre-migration catalogue)
    python -m sora_temporal.schema check     # exit 0 when current; otherwise says what to run, exit 1
    python -m sora_temporal.schema current   # the database's revision and the newest one

The worker refuses to start on a database that is not at the newest revision, except the default
embedded SQLite file, which it upgrades itself. Readers (the command line) never create anything:
a missing catalogue is reported, not made.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

# Every table the revisions manage is on ``Base.metadata``: the catalogue's ``videos`` (sora_temporal.db),
# the API's ``api_jobs`` (also sora_temporal.db) and the budget ledger's (sora_temporal.budget), registered by importing their
# models here, so the checks below see them all whichever process runs them (worker, starter, api,
# `make migrate`).
import sora_temporal.budget  # noqa: F401  (the budget ledger's tables)
from sora_temporal.db import Base, VideoCatalog, make_engine
from sora_temporal.settings import CHECKOUT, Settings

MIGRATIONS = CHECKOUT / "migrations"
# The revision that describes the catalogue as ``create_all`` made it before migrations existed.
INITIAL_REVISION = "0001"
MIGRATE_HINT = "run `make migrate` (python -m sora_temporal.schema upgrade)"


class SchemaProblem(RuntimeError):
    """The database cannot be used as it is; the message says why and what to run."""


class CatalogueUnavailable(RuntimeError):
    """A reader found no usable catalogue; the message says where it looked and what to do."""


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic's filter: only our own tables (and their parts) are compared or migrated.

    Anything else in the same database (another application's tables) is left alone.
    """
    if type_ == "table":
        return name in Base.metadata.tables
    table = getattr(obj, "table", None)
    return table is None or table.name in Base.metadata.tables


def alembic_config() -> Config:
    """An Alembic configuration for ``migrations/`` (no ini file needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - migrations/ always has revisions
        raise SchemaProblem(f"no revisions in {MIGRATIONS}")
    return head


def describe_url(database_url: str) -> str:
    """The URL without its password, or a SQLite file's path."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    return url.render_as_string(hide_password=True)


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands.

    Attributes:
        current: The revision recorded in the database; ``None`` when it has none.
        head: The newest revision this code knows.
        tables: Our tables (``videos``, ``api_jobs``, the budget ledger's) the database has.
    """

    current: str | None
    head: str
    tables: frozenset[str]

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def read_state(engine: Engine) -> SchemaState:
    """The database's revision and catalogue tables."""
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        tables = frozenset(inspect(connection).get_table_names()) & frozenset(Base.metadata.tables)
    return SchemaState(current=current, head=head_revision(), tables=tables)


def upgrade(engine: Engine, revision: str = "head") -> SchemaState:
    """Bring the database to ``revision``.

    A catalogue created without migrations (by ``create_all``: tables, no revision) is adopted: it
    is stamped with the newest revision when it already matches the models exactly, else with the
    initial revision (the schema ``create_all`` made before migrations existed) and upgraded.
    """
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        current = MigrationContext.configure(connection).get_current_revision()
        if current is None and "videos" in inspect(connection).get_table_names():
            command.stamp(config, "head" if not differences(connection) else INITIAL_REVISION)
        command.upgrade(config, revision)
    return read_state(engine)


def differences(connection: Connection) -> list[Any]:
    """How our tables in the database differ from the models, ``api_jobs`` included (empty: they match)."""
    context = MigrationContext.configure(
        connection, opts={"include_object": include_object, "compare_type": True}
    )
    return list(compare_metadata(context, Base.metadata))


def ensure_current(engine: Engine, *, auto_upgrade: bool) -> SchemaState:
    """Check (or, with ``auto_upgrade``, bring) the database at the newest revision.

    Raises:
        SchemaProblem: The database is not at the newest revision (and may not be upgraded here),
            or is at a revision this code does not know.
    """
    where = describe_url(engine.url.render_as_string(hide_password=False))
    state = read_state(engine)
    if state.up_to_date:
        return state
    known = {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if state.current is not None and state.current not in known:
        raise SchemaProblem(
            f"the catalogue at {where} is at revision {state.current}, which this code does not know "
            f"(its newest is {state.head}); run the newer code, or a worker that matches the database"
        )
    if auto_upgrade:
        try:
            return upgrade(engine)
        except SQLAlchemyError:
            # Another process on the same file may have upgraded it at the same moment.
            time.sleep(0.5)
            state = read_state(engine)
            if state.up_to_date:
                return state
            raise
    if state.current is None and not state.tables:
        raise SchemaProblem(f"the catalogue at {where} has no tables yet; {MIGRATE_HINT}")
    if state.current is None:
        raise SchemaProblem(
            f"the catalogue at {where} predates schema migrations; {MIGRATE_HINT} (it adopts the tables)"
        )
    raise SchemaProblem(
        f"the catalogue at {where} is at revision {state.current}, this code needs {state.head}; {MIGRATE_HINT}"
    )


@contextmanager
def catalogue_for_reading(database_url: str) -> Iterator[VideoCatalog]:
    """The catalogue, for readers: nothing is created when it is missing.

    Raises:
        CatalogueUnavailable: There is no catalogue there (yet), or the database cannot be reached.
    """
    where = describe_url(database_url)
    url = make_url(database_url)
    is_file = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if is_file and not Path(url.database or "").is_file():
        raise CatalogueUnavailable(
            f"no catalogue at {where} yet; start the stack with `make up` (it makes one), or {MIGRATE_HINT}"
        )
    engine = make_engine(database_url)
    try:
        try:
            state = read_state(engine)
        except SQLAlchemyError as err:
            raise CatalogueUnavailable(f"cannot read the catalogue at {where}: {_reason(err)}") from err
        if "videos" not in state.tables:
            raise CatalogueUnavailable(f"the database at {where} has no catalogue yet; {MIGRATE_HINT}")
        yield VideoCatalog(engine)
    finally:
        engine.dispose()


def _reason(err: SQLAlchemyError) -> str:
    """The driver's own words, first line only (not SQLAlchemy's statement dump and help link)."""
    original = getattr(err, "orig", None) or err
    return str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sora_temporal.schema upgrade|check|current`` on ``DATABASE_URL`` (or the default)."""
    parser = argparse.ArgumentParser(
        prog="python -m sora_temporal.schema", description="The catalogue's schema migrations."
    )
    parser.add_argument("command", choices=["upgrade", "check", "current"])
    parser.add_argument("--database-url", help="default: DATABASE_URL, or the embedded SQLite catalogue")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ValueError as err:
        print(f"bad configuration: {err}", file=sys.stderr)
        return 2
    database_url = args.database_url or settings.database_url
    where = describe_url(database_url)
    engine = make_engine(database_url)
    try:
        if args.command == "upgrade":
            before = read_state(engine)
            after = upgrade(engine)
            if before.current == after.current:
                print(f"{where}: already at revision {after.current} (the newest)")
            else:
                print(f"{where}: upgraded from {before.current or 'nothing'} to revision {after.current}")
            return 0
        state = read_state(engine)
        if args.command == "current":
            print(f"{where}: revision {state.current or 'none'} (newest: {state.head})")
            return 0
        ensure_current(engine, auto_upgrade=False)
        print(f"{where}: at revision {state.current} (the newest)")
        return 0
    except SchemaProblem as err:
        print(str(err), file=sys.stderr)
        return 1
    except SQLAlchemyError as err:
        print(f"cannot reach the catalogue at {where}: {_reason(err)}", file=sys.stderr)
        return 4
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
