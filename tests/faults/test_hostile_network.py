"""Hostile answers from the network, each on its own workflow, all at once, through real workers.

The Videos API (the simulator's hostile rules and markers) answers with gzip bombs, oversize JSON,
ids that would address other resources, junk numbers, wrong media, and download links to the cloud
metadata address, to loopback or through redirect chains; reference-image URLs point at loopback.
The worker runs with production defaults for fetching (``ALLOW_PRIVATE_URLS`` off), so only the
API's own configured origin is trusted.

Every case is held to the fault matrix's promises (``fault_checks.verify``: a true terminal state,
the row agreeing, one job, exact storage, nothing partial), and additionally: it ends within the
bound stated in ``docs/guarantees.md`` ("Hostile input"), nothing is written outside the configured
directories, nothing connects to the internal addresses named, and the worker's peak memory stays
far below what the bombs expand to.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from fault_checks import LocalView, Verdict, leftovers, no_open_workflows, record_partials, results, verify
from simulator.testing import RunningSimulator
from sora_temporal.db import VideoCatalog
from sora_temporal.types import JobStatus, VideoRequest, VideoResult
from starter import start_video
from support import Deployment

pytestmark = [pytest.mark.faults, pytest.mark.integration]

COMPLETED, FAILED = JobStatus.COMPLETED, JobStatus.FAILED
METADATA = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
BOMB_BYTES = 512 * 1024 * 1024
DOWNLOAD_MAX_BYTES = 64 * 1024 * 1024
# Every case ends within this (the slowest are the ones that retry once after a refused answer).
BOUND_SECONDS = 120
# The worker idles near 150 MiB; one uncapped bomb alone would add 512 MiB.
PEAK_RSS_LIMIT_KIB = 400 * 1024


@dataclass(frozen=True)
class Case:
    name: str
    scene: str
    faults: tuple[dict[str, Any], ...] = ()
    status: JobStatus = COMPLETED
    error_code: str | None = None
    creates: int = 1
    absent: tuple[str, ...] = ()
    reference: str | None = None  # "canary": a URL of the loopback canary

    @property
    def tag(self) -> str:
        return f"<{self.name}>"

    @property
    def prompt(self) -> str:
        return f"{self.tag} {self.scene}"


def _rule(route: str, action: str, **params: Any) -> dict[str, Any]:
    return {"route": route, "action": action, **params}


CASES = [
    # Bodies bigger than they look: refused under the cap, asked again, the job completes.
    Case("status-gzip-bomb", "a kettle boils", (_rule("retrieve", "gzip_bomb", size=BOMB_BYTES, count=1),)),
    Case("status-oversize-json", "a long scroll unrolls", (_rule("retrieve", "oversize", count=1),)),
    # The create answer is refused, but the job exists: the retry adopts it (one job, not two).
    Case("create-gzip-bomb", "a balloon inflates", (_rule("create", "gzip_bomb", size=BOMB_BYTES, count=1),)),
    Case(
        "video-gzip-bomb",
        "a sandstorm",
        (_rule("content", "gzip_bomb", size=BOMB_BYTES, match_variant="video"),),
        FAILED,
        "download_too_large",
    ),
    # Ids that would address another resource or break a path, a row or a search attribute. Once
    # in a create answer: refused, and the job is found by its real id in the list and adopted.
    Case("create-id-once", "a smudged label", (_rule("create", "hostile_id", id_kind="dotdot", count=1),)),
    # A job whose id is hostile everywhere cannot be used at all: failed at once, never addressed.
    *[
        Case(
            f"job-id-{kind}",
            f"a name tag reads {kind} [sim:id={kind}]",
            status=FAILED,
            error_code="invalid_video_id",
        )
        for kind in ("dotdot", "long", "unicode")
    ],
    Case(
        "status-id-slash",
        "a signpost points two ways",
        (_rule("retrieve", "hostile_id", id_kind="slash"),),
        FAILED,
        "invalid_video_id",
    ),
    # Junk numbers: tolerated field by field.
    Case("junk-overflow", "an odometer rolls over [sim:junk=overflow]"),
    Case("junk-garbage", "a scrambled clock [sim:junk=garbage]"),
    # Download links to internal addresses: never fetched.
    Case(
        "link-to-metadata",
        "a key under a mat",
        (_rule("retrieve", "download_url", url=METADATA),),
        FAILED,
        "unsafe_url",
    ),
    Case(
        "link-redirects-to-metadata",
        "a detour sign",
        (_rule("retrieve", "download_url", url=METADATA, hops=2),),
        FAILED,
        "unsafe_url",
    ),
    Case(
        "link-to-loopback",
        "a door to the back office",
        (_rule("retrieve", "download_url", url="CANARY"),),
        FAILED,
        "unsafe_url",
    ),
    # Wrong media: the video must be right; a wrong picture next to it is dropped, never stored.
    Case(
        "video-is-html",
        "a login page",
        (_rule("content", "wrong_media", media="html", content_type="video/mp4", match_variant="video"),),
        FAILED,
        "not_mp4",
    ),
    Case(
        "thumbnail-is-png",
        "a postage stamp",
        (_rule("content", "wrong_media", media="png", content_type="image/webp", match_variant="thumbnail"),),
        absent=("thumbnail",),
    ),
    Case(
        "spritesheet-is-html",
        "a contact sheet",
        (_rule("content", "wrong_media", media="html", match_variant="spritesheet"),),
        absent=("spritesheet",),
    ),
    # A reference-image URL on loopback: refused before any request to the Videos API.
    Case(
        "reference-on-loopback",
        "a mirror",
        status=FAILED,
        error_code="invalid_reference_image",
        creates=0,
        reference="canary",
    ),
]


@dataclass
class Canary:
    """A loopback TCP server standing for an internal service: it only counts connections."""

    url: str = ""
    connections: int = 0


@dataclass
class HostileRun:
    handles: dict[str, WorkflowHandle[Any, VideoResult]]
    results: dict[str, VideoResult]
    verdicts: dict[str, Verdict]
    catalog: VideoCatalog
    sim: RunningSimulator
    leftovers: list[str]
    root: Path
    canary: Canary
    peak_rss_kib: int
    seconds: float = 0.0
    strays: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
async def canary() -> AsyncIterator[Canary]:
    found = Canary()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        found.connections += 1
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    found.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/internal/admin.jpg"
    try:
        yield found
    finally:
        server.close()
        await server.wait_closed()


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


@pytest.fixture(scope="module")
async def hostile(
    spawn: Callable[..., Deployment],
    module_dir: Path,
    module_sim: RunningSimulator,
    dev_env: WorkflowEnvironment,
    canary: Canary,
) -> HostileRun:
    sim = module_sim
    root = module_dir / "hostile"
    d = spawn(
        root,
        sim,
        SORA_TIMEOUT_SECONDS="15",
        ALLOW_PRIVATE_URLS="false",
        DOWNLOAD_MAX_BYTES=str(DOWNLOAD_MAX_BYTES),
    )
    worker = d.start_worker()
    catalog = d.catalog()
    for case in CASES:
        for rule in case.faults:
            rule = {**rule, "url": canary.url} if rule.get("url") == "CANARY" else rule
            sim.add_fault(match_prompt=case.tag, **rule)

    loop = asyncio.get_running_loop()
    started = loop.time()
    handles = {
        case.name: await start_video(
            dev_env.client,
            d.settings,
            VideoRequest(
                prompt=case.prompt,
                poll_interval_seconds=1.0,
                reference_image=canary.url if case.reference == "canary" else None,
            ),
            f"hostile-{case.name}-{uuid.uuid4().hex[:8]}",
        )
        for case in CASES
    }
    done = await results(handles, timeout=BOUND_SECONDS)
    seconds = loop.time() - started
    peak = _peak_rss_kib(worker.pid)

    storage = LocalView(Path(d.env["STORAGE_DIR"]))
    verdicts = {
        case.name: await verify(
            f"hostile answer: {case.name}",
            handles[case.name],
            done[case.name],
            prompt=case.prompt,
            status=case.status,
            error_code=case.error_code,
            creates=case.creates,
            absent=case.absent,
            sim=sim,
            catalog=catalog,
            storage=storage,
        )
        for case in CASES
    }
    await no_open_workflows(dev_env.client, d.settings.task_queue)
    left = record_partials(leftovers(Path(d.env["DOWNLOAD_DIR"]), storage, [h.id for h in handles.values()]))
    # Everything the worker wrote is under its configured directories (and its own log and database).
    allowed = (Path(d.env["STORAGE_DIR"]), Path(d.env["DOWNLOAD_DIR"]))
    strays = [
        str(p)
        for p in root.rglob("*")
        if p.is_file()
        and not any(p.is_relative_to(a) for a in allowed)
        and not p.name.startswith(("sora.db", "worker.log"))
    ]
    return HostileRun(handles, done, verdicts, catalog, sim, left, root, canary, peak, seconds, strays)


@pytest.mark.parametrize("name", [case.name for case in CASES])
def test_each_hostile_answer_ends_in_a_true_state_with_one_job_and_exact_storage(
    hostile: HostileRun, name: str
) -> None:
    assert hostile.verdicts[name].problems == []


def test_every_case_ended_within_the_stated_bound(hostile: HostileRun) -> None:
    # The gather above is bounded by BOUND_SECONDS; this records what it took.
    assert hostile.seconds < BOUND_SECONDS


def test_nothing_connected_to_the_internal_service(hostile: HostileRun) -> None:
    assert hostile.canary.connections == 0


def test_the_worker_never_held_a_bomb_in_memory(hostile: HostileRun) -> None:
    assert hostile.peak_rss_kib < PEAK_RSS_LIMIT_KIB, f"peak RSS {hostile.peak_rss_kib // 1024} MiB"


def test_nothing_is_written_outside_the_configured_directories(hostile: HostileRun) -> None:
    assert hostile.strays == []
    assert hostile.leftovers == []


def test_refused_links_name_the_refusal_without_their_query_strings(hostile: HostileRun) -> None:
    message = hostile.results["link-to-metadata"].error_message or ""

    assert "refused to fetch http://169.254.169.254/latest/meta-data/" in message


def test_a_wrong_thumbnail_is_recorded_absent(hostile: HostileRun) -> None:
    result = hostile.results["thumbnail-is-png"]

    assert result.urls.video_url is not None
    assert result.urls.thumbnail_url is None and result.urls.spritesheet_url is not None


def test_every_hostile_rule_was_played(hostile: HostileRun) -> None:
    unused = [rule for rule in hostile.sim.stats()["faults"] if rule.get("count") is not None]

    assert unused == []
