"""Bad input is refused before anything reaches the Videos API, with a message naming the problem.

Two layers: the starter command line refuses what it can check (exit code 2, message on stderr);
the workflow refuses everything in its submit activity (a ``failed`` row with ``invalid_request`` or
``invalid_reference_image``) without a single request to the simulator.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from devtools.devstack import ROOT, free_port
from fault_checks import LocalView, Verdict, no_open_workflows, results, verify
from simulator.testing import RunningSimulator
from sora_temporal.images import MAX_PIXELS
from sora_temporal.references import fit_local_file, hand_over
from sora_temporal.types import JobStatus, ReferenceImageInput, VideoRequest, VideoResult
from starter import EXIT_BAD_INPUT, StarterError, start_video
from support import Deployment

pytestmark = [pytest.mark.faults, pytest.mark.integration]

INVALID_REQUEST = "invalid_request"
INVALID_IMAGE = "invalid_reference_image"


@dataclass(frozen=True)
class Bad:
    """One bad input: the request fields, the expected code and a phrase the message must contain."""

    name: str
    fields: dict[str, Any]
    code: str
    says: str
    image: str | None = None  # a file made in ``images`` (or a URL) used as the reference image
    in_cli: bool = True
    workflow_says: str | None = None  # when the workflow words it differently (it never sees paths)


BAD = [
    Bad("empty prompt", {"prompt": ""}, INVALID_REQUEST, "prompt must not be empty"),
    Bad("whitespace prompt", {"prompt": " \t\n "}, INVALID_REQUEST, "prompt must not be empty"),
    Bad("prompt over the limit", {"prompt": "a" * 4001}, INVALID_REQUEST, "the limit is 4000"),
    Bad("unknown model", {"model": "sora-3"}, INVALID_REQUEST, "unknown Sora model 'sora-3'"),
    Bad("unsupported size", {"size": "640x480"}, INVALID_REQUEST, "size '640x480' is not supported"),
    Bad("malformed size", {"size": "huge"}, INVALID_REQUEST, "size must look like 1280x720"),
    Bad("unsupported seconds", {"seconds": 5}, INVALID_REQUEST, "seconds 5 is not supported"),
    Bad(
        "missing image",
        {},
        INVALID_IMAGE,
        "does not exist",
        image="missing.png",
        workflow_says="never opens a path named in a workflow input",
    ),
    Bad("not an image", {}, INVALID_IMAGE, "is not an image", image="notes.png"),
    Bad("corrupt image", {}, INVALID_IMAGE, "corrupt or truncated", image="corrupt.png"),
    Bad("decompression bomb", {}, INVALID_IMAGE, "decompression bomb", image="bomb.png"),
    Bad("unreachable URL", {}, INVALID_IMAGE, "unreachable", image="URL", in_cli=False),
]


def _encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


@pytest.fixture(scope="module")
def images(module_dir: Path) -> dict[str, str]:
    """Paths (or a URL) for every bad reference image."""
    folder = module_dir / "images"
    folder.mkdir()
    (folder / "notes.png").write_text("meeting notes, not a picture\n")
    noise = _encode(Image.effect_noise((400, 400), 50).convert("RGB"), "PNG")
    (folder / "corrupt.png").write_bytes(noise[: len(noise) // 2])
    side = int(MAX_PIXELS**0.5) + 100
    (folder / "bomb.png").write_bytes(_encode(Image.new("1", (side, side)), "PNG", optimize=True))
    paths = {bad.image: str(folder / bad.image) for bad in BAD if bad.image and bad.image != "URL"}
    paths["URL"] = f"http://127.0.0.1:{free_port()}/reference.png"  # nothing listens there
    return paths


def _request(bad: Bad, images: dict[str, str]) -> VideoRequest:
    fields: dict[str, Any] = {"prompt": f"a bad input: {bad.name}", **bad.fields}
    if bad.image:
        fields["reference_image"] = images[bad.image]
    return VideoRequest(poll_interval_seconds=1, **fields)


def _workflow_request(bad: Bad, images: dict[str, str]) -> VideoRequest:
    """What a caller that bypasses the starter sends: a file's bytes inline (a path is refused as such)."""
    request = _request(bad, images)
    path = Path(images[bad.image]) if bad.image and bad.image != "URL" else None
    if path is None or not path.is_file():
        return request
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return replace(request, reference_image=None, reference=ReferenceImageInput(jpeg_base64=data))


# --- the starter command line -------------------------------------------------------------------


@dataclass(frozen=True)
class CliOutcome:
    code: int
    stderr: str


@pytest.fixture(scope="module")
async def cli_outcomes(images: dict[str, str]) -> dict[str, CliOutcome]:
    """Every bad input given to ``starter.py generate`` (all at once); Temporal is unreachable on purpose.

    Anything the starter failed to refuse would try to connect and exit 4, not 2.
    """
    env = {**os.environ, "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}

    async def run(bad: Bad) -> CliOutcome:
        request = _request(bad, images)
        args = [
            sys.executable,
            str(ROOT / "starter.py"),
            "generate",
            request.prompt,
            "--model",
            request.model,
            "--size",
            request.size,
            "--seconds",
            str(request.seconds),
            "--no-wait",
        ]
        if request.reference_image:
            args += ["--image", request.reference_image]
        process = await asyncio.create_subprocess_exec(
            *args, env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        async with asyncio.timeout(60):
            _, stderr = await process.communicate()
        assert process.returncode is not None
        return CliOutcome(process.returncode, stderr.decode())

    checked = [bad for bad in BAD if bad.in_cli]
    outcomes = await asyncio.gather(*(run(bad) for bad in checked))
    return {bad.name: outcome for bad, outcome in zip(checked, outcomes, strict=True)}


@pytest.mark.parametrize("bad", [b for b in BAD if b.in_cli], ids=lambda b: b.name)
def test_the_starter_refuses_bad_input_with_exit_code_2_and_says_why(
    cli_outcomes: dict[str, CliOutcome], bad: Bad
) -> None:
    outcome = cli_outcomes[bad.name]

    assert outcome.code == EXIT_BAD_INPUT, outcome.stderr
    assert bad.says in outcome.stderr


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://images.example/reference.jpg", "only https URLs are fetched"),
        ("https://127.0.0.1:8443/reference.jpg", "loopback"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
    ],
    ids=["plain http", "loopback", "metadata address"],
)
async def test_the_starter_refuses_an_image_url_the_worker_would_refuse_with_exit_code_2(
    url: str, says: str
) -> None:
    env = {**os.environ, "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    env.pop("ALLOW_PRIVATE_URLS", None)
    args = [
        sys.executable,
        str(ROOT / "starter.py"),
        "generate",
        "a refused URL",
        "--image",
        url,
        "--no-wait",
    ]
    process = await asyncio.create_subprocess_exec(
        *args, env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        _, stderr = await process.communicate()

    assert process.returncode == EXIT_BAD_INPUT, stderr.decode()
    assert says in stderr.decode()


# --- the workflow ---------------------------------------------------------------------------------


@dataclass
class Refusals:
    handles: dict[str, WorkflowHandle[Any, VideoResult]]
    results: dict[str, VideoResult]
    verdicts: dict[str, Verdict]
    requests: dict[str, int]


@pytest.fixture(scope="module")
async def refusals(
    spawn: Callable[..., Deployment],
    module_dir: Path,
    module_sim: RunningSimulator,
    dev_env: WorkflowEnvironment,
    images: dict[str, str],
) -> Refusals:
    """Every bad input started as a workflow directly (no starter checks), all at once."""
    d = spawn(module_dir / "refusals", module_sim, REFERENCE_IMAGE_TIMEOUT_SECONDS="2")
    d.start_worker()
    handles = {
        bad.name: await start_video(
            dev_env.client, d.settings, _workflow_request(bad, images), f"bad-{uuid.uuid4()}"
        )
        for bad in BAD
    }
    done = await results(handles, timeout=60)
    requests = dict(module_sim.stats()["requests"])
    verdicts = {
        bad.name: await verify(
            f"bad input: {bad.name}",
            handles[bad.name],
            done[bad.name],
            prompt=_request(bad, images).prompt,
            status=JobStatus.FAILED,
            error_code=bad.code,
            sim=module_sim,
            catalog=d.catalog(),
            storage=LocalView(Path(d.env["STORAGE_DIR"])),
            creates=0,
        )
        for bad in BAD
    }
    await no_open_workflows(dev_env.client, d.settings.task_queue)
    return Refusals(handles, done, verdicts, requests)


@pytest.mark.parametrize("bad", BAD, ids=lambda b: b.name)
def test_the_workflow_refuses_bad_input_with_a_failed_row_that_says_why(refusals: Refusals, bad: Bad) -> None:
    result = refusals.results[bad.name]

    assert refusals.verdicts[bad.name].problems == []
    assert (bad.workflow_says or bad.says) in (result.error_message or "")
    assert result.remote_may_be_running is False


def test_no_request_of_any_kind_reached_the_videos_api(refusals: Refusals) -> None:
    assert refusals.requests == dict.fromkeys(refusals.requests, 0)


async def test_a_workflow_id_that_exists_is_refused_clearly_and_pays_nothing_twice(
    deployment: Deployment, dev_env: WorkflowEnvironment, sim: RunningSimulator
) -> None:
    workflow_id = f"twice-{uuid.uuid4()}"
    request = VideoRequest(prompt="started twice: a kettle boils", poll_interval_seconds=1)
    first = await start_video(dev_env.client, deployment.settings, request, workflow_id)
    await first.result()

    with pytest.raises(StarterError) as refused:
        await start_video(dev_env.client, deployment.settings, request, workflow_id)

    assert refused.value.code == EXIT_BAD_INPUT
    assert f"a workflow with id {workflow_id!r} already exists" in str(refused.value)
    assert sim.creates("started twice: a kettle boils") == 1


# --- awkward but valid images -------------------------------------------------------------------


def _awkward_images(folder: Path) -> dict[str, Path]:
    """EXIF-rotated, alpha, palette, CMYK and 16-bit images, none of them the requested size."""
    folder.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    made = {
        "exif-rotated.jpg": _encode(Image.new("RGB", (400, 200), (200, 40, 40)), "JPEG", exif=exif),
        "alpha.png": _encode(Image.new("RGBA", (300, 500), (10, 200, 30, 90)), "PNG"),
        "palette.png": _encode(Image.new("RGB", (333, 222), (0, 90, 200)).convert("P"), "PNG"),
        "cmyk.jpg": _encode(Image.new("CMYK", (640, 360), (0, 120, 200, 10)), "JPEG"),
        "sixteen-bit.png": _encode(Image.new("I;16", (500, 900), 40000), "PNG"),
    }
    paths = {}
    for name, data in made.items():
        (folder / name).write_bytes(data)
        paths[name] = folder / name
    return paths


async def test_awkward_images_are_converted_and_reach_sora_at_exactly_the_requested_size(
    deployment: Deployment, dev_env: WorkflowEnvironment, sim: RunningSimulator, tmp_path: Path
) -> None:
    images = _awkward_images(tmp_path / "awkward")
    handles = {
        name: await start_video(
            dev_env.client,
            deployment.settings,
            VideoRequest(
                prompt=f"an awkward image: {name}",
                size="720x1280",
                # Handed over as the starter does: read and fitted here, the bytes in the input.
                reference=await hand_over(
                    fit_local_file(str(path), "720x1280", max_bytes=10_000_000), storage=None
                ),
                poll_interval_seconds=1,
            ),
            f"awkward-{uuid.uuid4()}",
        )
        for name, path in images.items()
    }
    done = await results(handles, timeout=60)

    for name, result in done.items():
        assert result.status is JobStatus.COMPLETED, (name, result.error_message)
    jobs = {job["prompt"].removeprefix("an awkward image: "): job for job in sim.jobs()}
    assert set(jobs) == set(images)
    for name, job in jobs.items():
        assert job["has_input_reference"] is True, name
        assert job["input_reference_size"] == [720, 1280], name
