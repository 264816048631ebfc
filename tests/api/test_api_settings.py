"""API_KEYS or API_KEYS_FILE, read by the one Settings object; without a key the API does not start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import openai
import pytest
from api_support import ApiProcess, ApiStack

from api.auth import KeyRing, owner_of
from api.errors import ApiError
from devtools.devstack import ROOT
from sora_temporal.settings import Settings

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_keys_come_from_the_list_and_the_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# team keys\nsk-file-one\n\n  sk-file-two  \n")

    settings = Settings.from_env({"API_KEYS": "sk-a, sk-b,,", "API_KEYS_FILE": str(keys)})

    assert settings.api.keys == ("sk-a", "sk-b", "sk-file-one", "sk-file-two")
    assert "sk-a" not in repr(settings) and "sk-file-one" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [("API_POLL_INTERVAL_SECONDS", "0.1"), ("API_DEADLINE_SECONDS", "1e12"), ("API_DEADLINE_SECONDS", "nan")],
)
def test_timings_outside_the_workflows_bounds_are_configuration_errors(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env({"API_KEYS": "k", name: value})


def test_an_unreadable_keys_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="API_KEYS_FILE"):
        Settings.from_env({"API_KEYS_FILE": str(tmp_path / "missing")})


def test_a_key_owns_jobs_under_a_hash_never_the_key() -> None:
    ring = KeyRing(["sk-one", "sk-two"])

    owner = ring.owner("Bearer sk-two")

    assert owner == owner_of("sk-two") and "sk-two" not in owner and len(owner) == 64
    with pytest.raises(ApiError) as refused:
        ring.owner("Bearer sk-three")
    assert refused.value.status == 401


def test_the_api_refuses_to_start_without_keys() -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}

    done = subprocess.run(
        [sys.executable, "-m", "api", "--port", "0"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert "API_KEYS" in done.stderr


@pytest.mark.integration
def test_a_key_from_the_keys_file_is_accepted_by_the_process(api_stack: ApiStack, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("sk-only-in-the-file\n")
    env = {**api_stack.api.env, "API_KEYS": "", "API_KEYS_FILE": str(keys)}
    api = ApiProcess(env, tmp_path / "api.log").start()
    try:
        client = openai.OpenAI(base_url=api.base_url, api_key="sk-only-in-the-file")
        assert client.videos.list().object == "list"
    finally:
        api.stop()
