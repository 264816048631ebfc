"""Schema migrations: every database reaches the newest revision, and the models never drift from it.

The models are the catalogue's (``videos``, sora_temporal/db.py) and the API's (``api_jobs``,
api/store.py): one metadata, one set of revisions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text

from api.store import ApiJob, JobStore, NewJob
from sora_temporal import schema
from sora_temporal.db import Base, VideoCatalog, make_engine
from sora_temporal.types import JobStatus, SaveInput, VideoRequest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = make_engine(database_url)
    try:
        yield made
    finally:
        made.dispose()


def _drop_version_table(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))


def test_an_empty_database_is_upgraded_to_the_newest_revision(engine: Engine) -> None:
    state = schema.upgrade(engine)

    assert state.up_to_date and state.current == schema.head_revision()
    assert state.tables == {"videos", "api_jobs", "budget_reservations", "budget_days"}


def test_the_models_and_the_migrations_do_not_drift(engine: Engine) -> None:
    schema.upgrade(engine)

    with engine.connect() as connection:
        assert schema.differences(connection) == []
    assert {"videos", "api_jobs"} <= set(Base.metadata.tables)


def test_the_drift_check_covers_the_apis_table(engine: Engine) -> None:
    schema.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_api_jobs_owner_seq"))

    with engine.connect() as connection:
        found = schema.differences(connection)

    assert [(d[0], d[1].name) for d in found] == [("add_index", "ix_api_jobs_owner_seq")]


def test_an_api_jobs_table_the_api_made_before_migrations_is_kept_with_its_rows(engine: Engine) -> None:
    schema.upgrade(engine, "0002")
    ApiJob.metadata.create_all(engine, tables=[ApiJob.__table__])  # as the API did on its first start
    made = JobStore(engine).create(
        NewJob("video_old", "o" * 64, None, "f" * 64, "kept", "sora-2", "1280x720", 4, False)
    )

    state = schema.upgrade(engine)

    assert state.up_to_date
    with engine.connect() as connection:
        assert schema.differences(connection) == []
    found = JobStore(engine).get("o" * 64, "video_old")
    assert found is not None and found.job.workflow_id == made.job.workflow_id


def test_a_migrated_catalogue_stores_and_reads_rows(engine: Engine) -> None:
    schema.upgrade(engine)
    catalog = VideoCatalog(engine)

    catalog.save(SaveInput("wf-1", JobStatus.SUBMITTING, request=VideoRequest(prompt="a fox")))

    row = catalog.get("wf-1")
    assert row is not None and row.prompt == "a fox"


def test_a_catalogue_made_before_migrations_is_adopted_and_keeps_its_rows(engine: Engine) -> None:
    schema.upgrade(engine, "0001")
    _drop_version_table(engine)  # as `create_all` left it: the first schema, no revision
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO videos (workflow_id, prompt, model, size, seconds, has_reference_image, status, "
                "progress, remote_may_be_running, created_at, updated_at) VALUES ('old-1', 'kept', 'sora-2', "
                "'1280x720', 4, false, 'completed', 100, false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )

    state = schema.upgrade(engine)

    assert state.up_to_date
    with engine.connect() as connection:
        assert schema.differences(connection) == []
    row = VideoCatalog(engine).get("old-1")
    assert row is not None and row.prompt == "kept"


def test_every_revision_downgrades_and_upgrades_again(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        schema.upgrade(engine)
        config = schema.alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        assert not {"videos", "api_jobs"} & set(inspect(engine).get_table_names())

        assert schema.upgrade(engine).up_to_date
    finally:
        engine.dispose()


def test_video_ids_shared_by_two_rows_stop_the_unique_index_with_the_rows_named(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        schema.upgrade(engine, "0001")
        with engine.begin() as connection:
            for workflow_id in ("wf-a", "wf-b"):
                connection.execute(
                    text(
                        "INSERT INTO videos (workflow_id, video_id, prompt, model, size, seconds, "
                        "has_reference_image, status, progress, remote_may_be_running, created_at, updated_at) "
                        f"VALUES ('{workflow_id}', 'video_shared', 'p', 'sora-2', '1280x720', 4, 0, 'queued', 0, 0, "
                        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    )
                )

        with pytest.raises(RuntimeError, match=r"video_shared \(2 rows\).*set video_id to NULL"):
            schema.upgrade(engine)
    finally:
        engine.dispose()


def test_an_out_of_date_database_is_refused_with_what_to_run(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with pytest.raises(schema.SchemaProblem, match=r"has no tables yet; run `make migrate`"):
            schema.ensure_current(engine, auto_upgrade=False)
        schema.upgrade(engine, "0001")
        with pytest.raises(schema.SchemaProblem, match=r"at revision 0001, this code needs .*make migrate"):
            schema.ensure_current(engine, auto_upgrade=False)
    finally:
        engine.dispose()


def test_a_database_newer_than_the_code_is_refused(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        schema.upgrade(engine)
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))

        with pytest.raises(schema.SchemaProblem, match="9999, which this code does not know"):
            schema.ensure_current(engine, auto_upgrade=True)
    finally:
        engine.dispose()


def test_make_migrate_upgrades_the_configured_database_and_check_then_passes(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'catalogue.db'}"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sora_temporal.schema", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    before = run("check")
    upgraded = run("upgrade")
    again = run("upgrade")
    after = run("check")

    assert before.returncode == 1 and "make migrate" in before.stderr
    assert upgraded.returncode == 0 and f"to revision {schema.head_revision()}" in upgraded.stdout
    assert again.returncode == 0 and "already at revision" in again.stdout
    assert after.returncode == 0, after.stderr
    assert (
        "migrate: $(STAMP)\n\t$(BIN)/python -m sora_temporal.schema upgrade"
        in (ROOT / "Makefile").read_text()
    )
