"""The official ``openai`` Node SDK, pointed at the ``api`` process, gets durable jobs.

The SDK is installed with npm into ``.cache/npm/`` (git-ignored) when it is missing: the test never
skips. ``openai`` 6.49.0 is pinned: the 7.x line needs Node 22 and these machines run Node 20.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from api_support import API_KEY_A, ApiStack, workflow_id_of
from PIL import Image

from devtools.devstack import ROOT

pytestmark = pytest.mark.integration

OPENAI_NODE_VERSION = "6.49.0"
CACHE = ROOT / ".cache" / "npm"
SCRIPT = Path(__file__).with_name("node_sdk_client.mjs")


def _node_sdk() -> Path:
    """The cache directory holding the pinned SDK, installed there first if needed.

    An exclusive lock on ``.cache/npm.lock`` makes this safe when several test runs (parallel
    workers, or another checkout's suite on the same tree) reach it at once: one installs, the
    others wait and then find it installed.
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE.parent / "npm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        installed = CACHE / "node_modules" / "openai" / "package.json"
        if not installed.exists() or json.loads(installed.read_text())["version"] != OPENAI_NODE_VERSION:
            npm = shutil.which("npm")
            assert npm is not None, "npm is required for the Node SDK test (Node.js 20 or later)"
            done = subprocess.run(
                [
                    npm,
                    "install",
                    "--prefix",
                    str(CACHE),
                    f"openai@{OPENAI_NODE_VERSION}",
                    "--no-audit",
                    "--no-fund",
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, f"npm install failed:\n{done.stdout}\n{done.stderr}"
        # ESM resolves 'openai' from the script's own directory upwards: run it from the cache.
        shutil.copyfile(SCRIPT, CACHE / SCRIPT.name)
    return CACHE


@pytest.mark.timeout(420)
def test_the_node_sdk_creates_polls_lists_downloads_and_deletes(api_stack: ApiStack, tmp_path: Path) -> None:
    cache = _node_sdk()
    node = shutil.which("node")
    assert node is not None, "node is required for the Node SDK test"
    reference = tmp_path / "reference.png"
    Image.new("RGB", (800, 600), (30, 160, 90)).save(reference, format="PNG")
    output = tmp_path / "video.mp4"
    prompt = "a node client's paper lantern"

    done = subprocess.run(
        [node, str(cache / SCRIPT.name)],
        env={
            "PATH": str(Path(node).parent),
            "API_BASE_URL": api_stack.api.base_url,
            "API_KEY": API_KEY_A,
            "REFERENCE_IMAGE": str(reference),
            "OUTPUT": str(output),
            "PROMPT": prompt,
        },
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    video_id = report["created"]["id"]
    assert report["created"]["status"] == "queued" and report["created"]["progress"] == 0
    assert report["seen"][-1] == "completed" and report["final"]["progress"] == 100
    assert report["final"]["url"].startswith(api_stack.api.base_url + f"/videos/{video_id}/content")
    assert report["retrieved"] == "completed"
    assert video_id in report["listed"]
    assert report["deleted"] == {"id": video_id, "object": "video.deleted", "deleted": True}
    assert report["missing"] == {"notFound": True, "status": 404}
    assert output.read_bytes()[4:8] == b"ftyp"
    (job,) = [j for j in api_stack.sim.jobs() if j["prompt"] == prompt]
    assert job["input_reference_size"] == [1280, 720]
    assert not _stored(api_stack, workflow_id_of(video_id)), "delete left stored files behind"


def _stored(stack: ApiStack, workflow_id: str) -> bool:
    return any(workflow_id in str(path) for path in stack.deployment.storage_files())
