"""Security: secrets stay in the worker, reference URLs are bounded, storage paths stay in their prefix.

The secrets are a fresh API key (the simulator accepts only it), the Blob emulator's token and a
webhook signing secret (the simulator signs every job's event with it, the ``api`` process verifies
them and wakes the workflows). They are searched for, verbatim, everywhere a workflow leaves a trace: inputs, results, history, memo,
search attributes, the worker's and the webhook receiver's logs (at DEBUG, as one JSON object per line: ``LOG_FORMAT=json``, whose
messages and tracebacks are the text format's), the database (rows and the raw SQLite files), and the
Temporal server's own SQLite file.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from api_process import ApiProcess
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from webhook_support import new_secret, receiver_env

from devtools.devstack import DevServer, free_port
from fault_checks import (
    BlobView,
    LocalView,
    Verdict,
    leftovers,
    no_open_workflows,
    record_partials,
    results,
    runs_of,
    verify,
)
from simulator.blob.testing import RunningBlobEmulator, start_blob_emulator
from simulator.testing import RunningSimulator, start_simulator
from sora_temporal.settings import WebhookSettings
from sora_temporal.storage.base import object_pathname
from sora_temporal.types import JobStatus, VideoRequest, VideoResult
from starter import start_video
from support import Deployment

pytestmark = [pytest.mark.faults, pytest.mark.integration]

IMAGE_LIMIT_BYTES = 100_000
IMAGE_TIME_LIMIT_SECONDS = 1.5


# --- a reference-image server that misbehaves -----------------------------------------------------


async def _big_declared(request: web.Request) -> web.Response:
    return web.Response(body=b"\0" * (IMAGE_LIMIT_BYTES * 3), content_type="image/png")


async def _big_undeclared(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "image/png"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(IMAGE_LIMIT_BYTES * 3 // 65536 + 1):
        await response.write(b"\0" * 65536)
    return response


async def _never_answers(request: web.Request) -> web.Response:
    await asyncio.sleep(30)  # bounded, so the server can always shut down
    return web.Response(status=504)


async def _drips(request: web.Request) -> web.StreamResponse:
    """Answers at once, then a byte every half second: no single read ever times out."""
    response = web.StreamResponse(headers={"Content-Type": "image/png"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(60):
        await response.write(b"\x89")
        await asyncio.sleep(0.5)
    return response


@pytest.fixture(scope="module")
async def image_server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/big-declared.png", _big_declared)
    app.router.add_get("/big-undeclared.png", _big_undeclared)
    app.router.add_get("/never.png", _never_answers)
    app.router.add_get("/drips.png", _drips)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


# --- the deployment that holds the secrets --------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    prompt: str
    status: JobStatus
    error_code: str | None = None
    image: str | None = None
    creates: int = 1


@pytest.fixture(scope="module")
def secret_sim() -> Iterator[RunningSimulator]:
    with start_simulator(time_scale=0.01, api_key=f"sk-proj-secret-{uuid.uuid4().hex}") as running:
        yield running


@pytest.fixture(scope="module")
def blob(module_dir: Path) -> Iterator[RunningBlobEmulator]:
    with start_blob_emulator(module_dir / "blob") as running:
        yield running


@pytest.fixture(scope="module")
def own_server(module_dir: Path) -> Iterator[DevServer]:
    server = DevServer("127.0.0.1", free_port(), ui_port=None, db_file=module_dir / "temporal.db").start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class SecretRun:
    client: Client
    deployment: Deployment
    handles: dict[str, WorkflowHandle[Any, VideoResult]]
    results: dict[str, VideoResult]
    verdicts: dict[str, Verdict]
    secrets: dict[str, str]
    leftovers: list[str]


@pytest.fixture(scope="module")
async def secret_run(
    request: pytest.FixtureRequest,
    spawn: Callable[..., Deployment],
    module_dir: Path,
    secret_sim: RunningSimulator,
    blob: RunningBlobEmulator,
    own_server: DevServer,
    image_server: str,
) -> SecretRun:
    sim = secret_sim
    webhook_secret = new_secret()
    d = spawn(
        module_dir / "secrets",
        sim,
        OPENAI_WEBHOOK_SECRET=webhook_secret,
        TEMPORAL_ADDRESS=own_server.address,
        STORAGE_BACKEND="vercel",
        LOG_LEVEL="DEBUG",
        LOG_FORMAT="json",
        REFERENCE_IMAGE_MAX_BYTES=str(IMAGE_LIMIT_BYTES),
        REFERENCE_IMAGE_TIMEOUT_SECONDS=str(IMAGE_TIME_LIMIT_SECONDS),
        **blob.env(),
    )
    d.start_worker()
    receiver = ApiProcess(receiver_env(d.env, webhook_secret), module_dir / "api.log").start()
    request.addfinalizer(receiver.stop)
    sim.configure_webhooks(url=receiver.webhook_url, secret=webhook_secret)
    # As the starter does with OPENAI_WEBHOOK_SECRET set: the jobs wait for their events.
    settings = replace(d.settings, webhooks=WebhookSettings(secret=webhook_secret, fallback_poll_seconds=10))
    client = await Client.connect(own_server.address)
    scenarios = [
        Scenario("stored", "secrets: a quiet harbour", JobStatus.COMPLETED),
        Scenario("stored too", "secrets: a busy harbour", JobStatus.COMPLETED),
        Scenario(
            "sora failed",
            "secrets: forbidden [sim:fail:moderation_blocked]",
            JobStatus.FAILED,
            "moderation_blocked",
        ),
        Scenario("create rate limited", "secrets: a queue of boats", JobStatus.COMPLETED),
        Scenario("content expired", "secrets: gone [sim:expire]", JobStatus.FAILED, "content_expired"),
        *[
            Scenario(
                f"image {name}",
                f"secrets: image {name}",
                JobStatus.FAILED,
                "invalid_reference_image",
                path,
                0,
            )
            for name, path in [
                ("too big, declared", "/big-declared.png"),
                ("too big, undeclared", "/big-undeclared.png"),
                ("never answers", "/never.png"),
                ("drips", "/drips.png"),
            ]
        ],
    ]
    sim.add_fault("create", "rate_limit", retry_after=0.5, count=1, match_prompt="a queue of boats")
    # The first upload call (whichever workflow's) meets a 503, so a retried failure is logged too.
    blob.fail_next(503, count=1, retry_after=0.5)
    handles = {
        s.name: await start_video(
            client,
            settings,
            VideoRequest(
                prompt=s.prompt,
                poll_interval_seconds=1,
                reference_image=image_server + s.image if s.image else None,
            ),
            f"secrets-{uuid.uuid4().hex[:8]}",
        )
        for s in scenarios
    }
    done = await results(handles, timeout=90)
    verdicts = {
        s.name: await verify(
            f"security: {s.name}",
            handles[s.name],
            done[s.name],
            prompt=s.prompt,
            status=s.status,
            error_code=s.error_code,
            sim=sim,
            catalog=d.catalog(),
            storage=BlobView(blob),
            creates=s.creates,
        )
        for s in scenarios
    }
    await no_open_workflows(client, d.settings.task_queue)
    store_id, _, rest = blob.token.removeprefix("vercel_blob_rw_").partition("_")
    secrets = {
        "API key": sim.api_key,
        "blob token": blob.token,
        "blob token secret": rest,
        "webhook secret": webhook_secret,
        "webhook key": webhook_secret.removeprefix("whsec_"),
    }
    assert store_id and rest
    left = record_partials(
        leftovers(Path(d.env["DOWNLOAD_DIR"]), BlobView(blob), [h.id for h in handles.values()])
    )
    return SecretRun(client, d, handles, done, verdicts, secrets, left)


def _assert_secret_free(where: str, text: str | bytes, secrets: dict[str, str]) -> None:
    for name, secret in secrets.items():
        needle: str | bytes = secret.encode() if isinstance(text, bytes) else secret
        assert needle not in text, f"the {name} appears in {where}"  # type: ignore[operator]


def test_every_scenario_ended_where_it_should(secret_run: SecretRun) -> None:
    assert {name: v.problems for name, v in secret_run.verdicts.items() if v.problems} == {}
    assert secret_run.leftovers == []


async def test_secrets_are_absent_from_inputs_results_history_memo_and_search_attributes(
    secret_run: SecretRun,
) -> None:
    for name, handle in secret_run.handles.items():
        history = await handle.fetch_history()
        described = await handle.describe()
        _assert_secret_free(f"the history of {name}", history.to_json(), secret_run.secrets)
        _assert_secret_free(f"the description of {name}", str(described.raw_description), secret_run.secrets)
        _assert_secret_free(
            f"the memo of {name}", json.dumps(await described.memo(), default=str), secret_run.secrets
        )
        attributes = {pair.key.name: pair.value for pair in described.typed_search_attributes}
        _assert_secret_free(
            f"the search attributes of {name}", json.dumps(attributes, default=str), secret_run.secrets
        )
        _assert_secret_free(
            f"the result of {name}",
            json.dumps(asdict(secret_run.results[name]), default=str),
            secret_run.secrets,
        )


def test_secrets_are_absent_from_the_worker_log(secret_run: SecretRun) -> None:
    log = (secret_run.deployment.tmp_path / "worker.log").read_text()

    assert "DEBUG" in log and "secrets-" in log  # the log is really there, and verbose
    _assert_secret_free("the worker log", log, secret_run.secrets)


def test_secrets_are_absent_from_the_webhook_receivers_log(secret_run: SecretRun, module_dir: Path) -> None:
    log = (module_dir / "api.log").read_text()

    assert "signalled" in log  # events really arrived, were verified and woke their workflows
    _assert_secret_free("the webhook receiver's log", log, secret_run.secrets)


def test_the_json_log_is_one_object_per_line_with_workflow_and_video_ids(secret_run: SecretRun) -> None:
    lines = (secret_run.deployment.tmp_path / "worker.log").read_text().splitlines()

    entries = [json.loads(line) for line in lines if line.strip()]

    assert entries and all(isinstance(entry, dict) for entry in entries)
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    workflow_ids = {entry["workflow_id"] for entry in entries if "workflow_id" in entry}
    assert workflow_ids & {handle.id for handle in secret_run.handles.values()}
    results = {result.video_id for result in secret_run.results.values() if result.video_id}
    assert {entry["video_id"] for entry in entries if "video_id" in entry} & results
    for entry in entries:
        _assert_secret_free("a JSON log entry", json.dumps(entry), secret_run.secrets)


def test_secrets_are_absent_from_the_database(secret_run: SecretRun) -> None:
    rows = [row.as_dict() for row in secret_run.deployment.catalog().recent(100)]
    assert len(rows) == len(secret_run.handles)
    _assert_secret_free("the videos rows", json.dumps(rows, default=str), secret_run.secrets)
    for path in secret_run.deployment.tmp_path.glob("sora.db*"):
        _assert_secret_free(path.name, path.read_bytes(), secret_run.secrets)


def test_secrets_are_absent_from_the_temporal_servers_own_database(
    secret_run: SecretRun, module_dir: Path
) -> None:
    files = list(module_dir.glob("temporal.db*"))
    assert files

    for path in files:
        _assert_secret_free(path.name, path.read_bytes(), secret_run.secrets)


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("image too big, declared", f"the limit is {IMAGE_LIMIT_BYTES}"),
        ("image too big, undeclared", f"larger than the limit of {IMAGE_LIMIT_BYTES} bytes"),
        ("image never answers", f"within {IMAGE_TIME_LIMIT_SECONDS:g} s"),
        ("image drips", f"within {IMAGE_TIME_LIMIT_SECONDS:g} s"),
    ],
)
async def test_a_reference_image_url_is_held_to_its_size_and_time_limits(
    secret_run: SecretRun, name: str, says: str
) -> None:
    result = secret_run.results[name]
    (submit,) = await runs_of(secret_run.handles[name], "submit_video")

    assert result.error_code == "invalid_reference_image"
    assert says in (result.error_message or "")
    assert submit.attempt == 1  # refused for good, not retried
    assert submit.started_at is not None and result.status is JobStatus.FAILED


# --- storage paths ------------------------------------------------------------------------------


def _awkward_ids() -> list[str]:
    """Ids within the workflow id rule that a plain sanitiser would map to one folder.

    Ids that could climb out (``..``, slashes, backslashes) are refused by the rule itself, before
    anything runs (``tests/faults/test_hostile_inputs.py``).
    """
    tag = uuid.uuid4().hex[:6]
    return [f"a:b-{tag}", f"a@b-{tag}", f"a-b-{tag}", f"A-b-{tag}", f"a..b-{tag}", f"a.b.-{tag}"]


BOOKKEEPING = {"sora.db", "sora.db-wal", "sora.db-shm", "worker.log"}


async def test_workflow_ids_that_sanitise_alike_are_stored_apart_inside_the_videos_prefix(
    deploy: Callable[..., Deployment],
    sqlite_url: str,
    dev_env: WorkflowEnvironment,
    sim: RunningSimulator,
    tmp_path: Path,
) -> None:
    # Storage and downloads sit deep inside a "jail", so anything that got out would still land
    # somewhere this test looks.
    jail = tmp_path / "jail" / "one" / "two"
    storage_root, downloads = jail / "storage", jail / "downloads"
    d = deploy(sqlite_url, STORAGE_DIR=str(storage_root), DOWNLOAD_DIR=str(downloads))
    d.start_worker()
    handles = {
        wid: await start_video(
            dev_env.client,
            d.settings,
            VideoRequest(prompt=f"a hostile id {n}", poll_interval_seconds=1),
            wid,
        )
        for n, wid in enumerate(_awkward_ids())
    }
    done = await results(handles, timeout=60)

    for n, (wid, handle) in enumerate(handles.items()):
        verdict = await verify(
            f"hostile id {wid!r}",
            handle,
            done[wid],
            prompt=f"a hostile id {n}",
            status=JobStatus.COMPLETED,
            sim=sim,
            catalog=d.catalog(),
            storage=LocalView(storage_root),
        )
        assert verdict.problems == [], wid
        video_id = done[wid].video_id
        assert video_id is not None
        expected = storage_root / object_pathname("videos", wid, video_id, "mp4")
        assert done[wid].urls.video_url == expected.as_uri(), wid
    folders = {pathname.split("/")[1] for pathname in LocalView(storage_root).objects()}
    assert len(folders) == len(handles)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert [
        p for p in files if not p.is_relative_to(storage_root / "videos") and p.name not in BOOKKEEPING
    ] == []
    assert {p.parent for p in files if p.name in BOOKKEEPING} == {tmp_path}
    for pathname in LocalView(storage_root).objects():
        first, middle, _name = pathname.split("/")
        assert first == "videos" and middle not in ("", ".", ".."), pathname
