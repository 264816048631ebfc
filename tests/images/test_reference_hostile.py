"""Reference images from hostile sources: internal addresses, redirects, bombs, too many pixels.

URLs come from the simulator's reference-image host (``/_files``, ``/_redirect``) over loopback, so
the fetches that should succeed allow private networks (as ``ALLOW_PRIVATE_URLS`` does) and the
refusals use the default policy unless the refusal must come from a later hop.
"""

from __future__ import annotations

import ast
import asyncio
import io
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

import sora_temporal.images as images
from simulator.testing import RunningSimulator, start_simulator
from sora_temporal.errors import ReferenceImageError
from sora_temporal.images import MAX_CONCURRENT_DECODES, MAX_PIXELS, fetch_reference, fit_reference
from sora_temporal.netguard import UrlPolicy

LOCAL = UrlPolicy(allow_private=True)
METADATA = "http://169.254.169.254/latest/meta-data/"
LIMIT = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def files() -> Iterator[RunningSimulator]:
    with start_simulator(time_scale=0.01) as running:
        yield running


def _served(sim: RunningSimulator) -> int:
    count: int = sim.stats()["file_host"]["files"]
    return count


# --- where a reference URL may point --------------------------------------------------------------


async def test_a_loopback_url_is_refused_without_a_request(files: RunningSimulator) -> None:
    before = _served(files)

    with pytest.raises(ReferenceImageError, match="refused to fetch"):
        await fetch_reference(files.file_url("sample.jpg"), max_bytes=LIMIT, timeout=5)

    assert _served(files) == before


async def test_a_loopback_url_is_fetched_when_private_networks_are_allowed(files: RunningSimulator) -> None:
    data = await fetch_reference(files.file_url("sample.jpg"), max_bytes=LIMIT, timeout=5, policy=LOCAL)

    assert data[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize("hops", [1, 3])
async def test_a_redirect_to_the_metadata_address_is_refused_on_the_hop_that_names_it(
    files: RunningSimulator, hops: int
) -> None:
    with pytest.raises(ReferenceImageError, match=r"169\.254\.169\.254.*link-local"):
        await fetch_reference(
            files.redirect_url(METADATA, hops=hops), max_bytes=LIMIT, timeout=5, policy=LOCAL
        )


async def test_at_most_three_redirects_are_followed(files: RunningSimulator) -> None:
    target = files.file_url("sample.png")

    fetched = await fetch_reference(
        files.redirect_url(target, hops=3), max_bytes=LIMIT, timeout=5, policy=LOCAL
    )
    with pytest.raises(ReferenceImageError, match="more than 3 redirects"):
        await fetch_reference(files.redirect_url(target, hops=4), max_bytes=LIMIT, timeout=5, policy=LOCAL)

    assert fetched[:4] == b"\x89PNG"


async def test_credentials_in_a_reference_url_never_reach_the_message(files: RunningSimulator) -> None:
    url = files.file_url("missing.jpg").replace("http://", "http://user:hunter2@") + "?token=s3cret"

    with pytest.raises(ReferenceImageError) as caught:
        await fetch_reference(url, max_bytes=LIMIT, timeout=5, policy=LOCAL)

    assert "404" in str(caught.value)
    assert "hunter2" not in str(caught.value) and "s3cret" not in str(caught.value)


# --- bodies bigger than they look -------------------------------------------------------------------


async def test_a_gzip_bomb_is_refused_while_it_decodes(files: RunningSimulator) -> None:
    url = files.file_url("sample.jpg", bomb=512 * 1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(ReferenceImageError, match="larger than the limit of 1048576 bytes"):
            await fetch_reference(url, max_bytes=1024 * 1024, timeout=20, policy=LOCAL)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 32 * 1024 * 1024


# --- Pillow: a lower pixel limit, checked before decoding; bounded concurrent decodes ------------


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("1", (width, height)).save(out, format="PNG", optimize=True)
    return out.getvalue()


def test_the_default_pixel_limit_is_forty_million() -> None:
    assert MAX_PIXELS == 40_000_000


def test_an_image_over_the_pixel_limit_is_refused_before_it_is_decoded() -> None:
    # 42 M pixels: under Pillow's own 89 M warning, over ours. Its PNG is a few kilobytes.
    bomb = _png(7000, 6000)

    with pytest.raises(ReferenceImageError, match="too many pixels"):
        fit_reference(bomb, 1280, 720)


def test_the_pixel_limit_is_a_setting() -> None:
    with pytest.raises(ReferenceImageError, match=r"limit 5000\)"):
        fit_reference(_png(100, 100), 1280, 720, max_pixels=5000)

    assert fit_reference(_png(100, 100), 1280, 720, max_pixels=10_000).data[:3] == b"\xff\xd8\xff"


def test_no_process_wide_warning_state_is_touched() -> None:
    # warnings.catch_warnings swaps the process's filters: another thread's warnings change meanwhile.
    source = Path(images.__file__).read_text()
    calls = {
        f"{node.func.value.id}.{node.func.attr}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
    }

    assert not {"warnings.catch_warnings", "warnings.simplefilter", "warnings.filterwarnings"} & calls
    # Nor Pillow's process-wide limit: the module's own limit is compared before decoding.
    assigned = {
        target.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Attribute)
    }
    assert "MAX_IMAGE_PIXELS" not in assigned


async def test_decodes_beyond_the_concurrency_limit_wait_for_a_free_slot() -> None:
    data = _png(640, 360)
    for _ in range(MAX_CONCURRENT_DECODES):
        images.DECODE_SLOTS.acquire()
    done = threading.Event()
    try:
        fitting = asyncio.create_task(asyncio.to_thread(lambda: (fit_reference(data, 1280, 720), done.set())))
        # Every slot is taken: whatever the machine's speed, the decode cannot have finished.
        await asyncio.sleep(0.3)
        assert not done.is_set()
    finally:
        for _ in range(MAX_CONCURRENT_DECODES):
            images.DECODE_SLOTS.release()
    await asyncio.wait_for(fitting, timeout=60)

    assert done.is_set()
