"""The reference note's application, unchanged but for its endpoint, gets its video from the API.

``seed_app_generate`` is the TypeScript fetch loop of ``shared/reference`` transcribed line by line to
Python (httpx, no SDK): one multipart POST, then a GET every 5 seconds for at most 60 attempts,
``statusData.url || statusData.video_url`` on completion, and a download of that URL with the key.
"""

from __future__ import annotations

import io
import time
from typing import Any

import httpx
import pytest
from api_support import API_KEY_A, ApiStack, workflow_id_of
from PIL import Image

pytestmark = pytest.mark.integration


def _reference_image() -> bytes:
    # The seed resizes its reference image to the requested size before sending it.
    out = io.BytesIO()
    Image.new("RGB", (1280, 720), (240, 200, 40)).save(out, format="JPEG")
    return out.getvalue()


def seed_app_generate(endpoint: str, api_key: str, prompt: str, image: bytes) -> dict[str, Any]:
    """The seed application's create-and-poll flow; returns what it saw and downloaded."""
    headers = {"Authorization": f"Bearer {api_key}"}
    sora_response = httpx.post(
        endpoint,
        headers=headers,
        data={"model": "sora-2", "prompt": prompt, "size": "1280x720"},
        files={"input_reference": ("reference.jpg", image, "image/jpeg")},
        timeout=60,
    )
    sora_data = sora_response.json()
    statuses = [sora_data["status"]]
    video_url = None
    if sora_data["status"] in ("queued", "processing"):
        video_id = sora_data["id"]
        max_attempts = 60
        attempts = 0
        while attempts < max_attempts:
            attempts += 1
            time.sleep(5)
            status_data = httpx.get(f"{endpoint}/{video_id}", headers=headers, timeout=60).json()
            statuses.append(status_data["status"])
            if status_data["status"] == "completed":
                video_url = status_data.get("url") or status_data.get("video_url")
                break
            if status_data["status"] == "failed" or status_data.get("error"):
                raise RuntimeError(f"Video generation failed: {status_data.get('error')}")
    if not video_url:
        raise RuntimeError("Video generation timed out after 5 minutes")
    video = httpx.get(video_url, headers=headers, timeout=60)
    return {"id": sora_data["id"], "statuses": statuses, "video_url": video_url, "video": video}


@pytest.mark.timeout(180)
def test_the_seed_apps_fetch_loop_sees_queued_then_completed_and_downloads_the_video(
    api_stack: ApiStack,
) -> None:
    endpoint = api_stack.api.base_url + "/videos"

    seen = seed_app_generate(endpoint, API_KEY_A, "a fetch loop's paper boat", _reference_image())

    assert seen["statuses"][0] == "queued" and seen["statuses"][-1] == "completed"
    assert seen["video"].status_code == 200
    assert seen["video"].headers["content-type"] == "video/mp4"
    assert seen["video"].content == api_stack.stored_bytes(workflow_id_of(seen["id"]))
