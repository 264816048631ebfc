"""The command line as a newcomer meets it: help, versions, refusals and the catalogue, from any directory.

Nothing here needs Temporal: what is checked happens before the starter connects (or instead of it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sora_temporal.db import VideoCatalog
from sora_temporal.types import JobStatus, SaveInput, StoredUrls, VideoRequest
from support import migrated_engine

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("generate", "status", "cancel", "list")


def starter(
    *args: str, cwd: Path, env: dict[str, str] | None = None, columns: int = 80
) -> subprocess.CompletedProcess[str]:
    """``python -m starter ...`` as a person runs it, from ``cwd``, in an 80-column terminal."""
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "SORA_DATA_DIR", "TEMPORAL_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "starter", *args],
        cwd=cwd,
        env={**base, "COLUMNS": str(columns), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory outside the checkout."""
    path = tmp_path / "somewhere-else"
    path.mkdir()
    return path


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_shows_flags_as_flags_and_no_raw_markup(command: str | None, elsewhere: Path) -> None:
    done = starter(*([command] if command else []), "--help", cwd=elsewhere)

    assert done.returncode == 0, done.stderr
    assert "<bool>" not in done.stdout and "``" not in done.stdout and ":class:" not in done.stdout
    assert "--json" in done.stdout or command is None
    assert all(len(line) <= 80 for line in done.stdout.splitlines())


def test_generate_help_lists_the_valid_sizes_and_seconds_and_the_wait_flag(elsewhere: Path) -> None:
    text = " ".join(starter("generate", "--help", cwd=elsewhere).stdout.split())

    for size in ("1280x720", "720x1280", "1792x1024", "1024x1792"):
        assert size in text
    assert "4, 8, 12" in text and "1 to 60" in text
    assert "--wait / --no-wait" in text


def test_version(elsewhere: Path) -> None:
    done = starter("--version", cwd=elsewhere)

    assert done.returncode == 0 and done.stdout.startswith("sora-temporal ")


@pytest.mark.parametrize(
    ("args", "choices"),
    [
        (["--size", "999x1"], "720x1280, 1280x720"),
        (["--size", "999x10"], "720x1280, 1280x720"),
        (["--size", "huge"], "720x1280, 1280x720"),
        (["--size", "1792x1024"], "720x1280, 1280x720"),
        (["--size", "999x1", "--model", "sora-2-pro"], "720x1280, 1280x720, 1024x1792, 1792x1024"),
        (["--seconds", "5"], "4, 8, 12"),
        (["--seconds", "0", "--model", "veo-3"], "1 to 60"),
        (["--size", "9x9", "--model", "veo-3"], "each side 16 to 4096"),
    ],
)
def test_a_bad_size_or_seconds_gets_one_message_listing_the_valid_choices(
    args: list[str], choices: str, elsewhere: Path
) -> None:
    # Temporal is never reached: the starter refuses first.
    done = starter(
        "generate", "a fox", *args, "--no-wait", cwd=elsewhere, env={"TEMPORAL_ADDRESS": "127.0.0.1:1"}
    )

    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: invalid ")
    assert choices in done.stderr


def test_list_outside_the_repo_without_a_catalogue_says_so_and_leaves_nothing_behind(
    elsewhere: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"

    done = starter("list", cwd=elsewhere, env={"SORA_DATA_DIR": str(state)})

    assert done.returncode == 4
    assert f"no catalogue at {state / 'sora.db'} yet" in done.stderr and "make up" in done.stderr
    assert "Traceback" not in done.stderr and "sqlalchemy" not in done.stderr.lower()
    assert list(elsewhere.iterdir()) == [] and not state.exists()


def test_list_reads_a_database_without_the_catalogue_and_says_what_to_run(
    elsewhere: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")

    done = starter("list", cwd=elsewhere, env={"DATABASE_URL": f"sqlite:///{empty}"})

    assert done.returncode == 4
    assert "has no catalogue yet; run `make migrate`" in done.stderr
    assert "no such table" not in done.stderr


def test_an_unreachable_database_is_one_clear_line(elsewhere: Path) -> None:
    done = starter(
        "list", cwd=elsewhere, env={"DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    )

    assert done.returncode == 4
    assert done.stderr.startswith(
        "error: cannot read the catalogue at postgresql+psycopg://nobody@127.0.0.1:1/none"
    )
    assert "sqlalche.me" not in done.stderr and "Traceback" not in done.stderr


def test_list_at_80_columns_shows_whole_ids_urls_and_the_prompt_from_any_directory(
    elsewhere: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    engine = migrated_engine(f"sqlite:///{state / 'sora.db'}")
    workflow_id = "a-rather-long-workflow-id-somebody-chose-0123456789"
    video_id = "video_" + "0123456789abcdef" * 3
    url = (state / "storage" / "videos" / workflow_id / f"{video_id}.mp4").as_uri()
    try:
        VideoCatalog(engine).save(
            SaveInput(
                workflow_id,
                JobStatus.COMPLETED,
                request=VideoRequest(prompt="a lighthouse in a storm, waves breaking over the rocks"),
                video_id=video_id,
                urls=StoredUrls(video_url=url, video_download_url=url),
                byte_size=1234,
                sha256="ab" * 32,
            )
        )
    finally:
        engine.dispose()

    text = starter("list", cwd=elsewhere, env={"SORA_DATA_DIR": str(state)})
    as_json = starter("list", "--json", cwd=elsewhere, env={"SORA_DATA_DIR": str(state)})

    assert text.returncode == 0, text.stderr
    assert workflow_id in text.stdout and url in text.stdout
    assert "1280x720" in text.stdout and "…" not in text.stdout
    assert "a lighthouse in a storm, waves breaking over the rocks" in text.stdout
    assert [row["blob_url"] for row in json.loads(as_json.stdout)] == [url]
