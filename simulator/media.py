"""Rendering and caching of the downloadable assets (MP4, WebP thumbnail, JPEG spritesheet).

Base renders are made once per size and duration; each job then gets its own MP4 by a cheap
remux that stamps the video id into the container metadata, so two jobs never share bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import re
import uuid
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageDraw

FPS = 24
#: Bump when the rendering changes so stale cached files in a reused data dir are not served.
RENDER_VERSION = 1
#: Upper bound for the decoded frames kept in memory while encoding one clip.
_LOOP_CACHE_BYTES = 160 * 1024 * 1024
_SPRITE_TILE_WIDTH = 160
_SPRITE_COLUMNS = 5
_SPRITE_TILES = 10
_PLAIN_ID = re.compile(r"^video_[0-9a-f]{1,64}$")


class Variant(StrEnum):
    """Downloadable asset kinds of ``/content?variant=``."""

    VIDEO = "video"
    THUMBNAIL = "thumbnail"
    SPRITESHEET = "spritesheet"

    @property
    def content_type(self) -> str:
        """MIME type the asset is served with."""
        return {"video": "video/mp4", "thumbnail": "image/webp", "spritesheet": "image/jpeg"}[self.value]


def draw_frame(width: int, height: int, phase: float) -> Image.Image:
    """One frame of the looping test pattern: a block sliding across, a disc bobbing, a progress bar.

    Args:
        width: Frame width.
        height: Frame height.
        phase: Position in the loop, 0 to 1.
    """
    phase %= 1.0
    image = Image.new("RGB", (width, height), (18, 24, 48))
    draw = ImageDraw.Draw(image)
    unit = max(2, min(width, height) // 6)
    x = int((width - unit) * phase)
    y = (height - unit) // 3
    draw.rectangle((x, y, x + unit - 1, y + unit - 1), fill=(240, 176, 40))
    bob = (math.sin(2 * math.pi * phase) + 1) / 2
    cx = width // 2
    cy = int(height * 0.55 + (height * 0.3 - unit) * bob)
    draw.ellipse((cx - unit // 2, cy, cx + unit // 2, cy + unit), fill=(60, 200, 220))
    bar = max(1, height // 80)
    draw.rectangle((0, height - bar, int(width * phase), height - 1), fill=(230, 230, 230))
    return image


def render_mp4(path: Path, width: int, height: int, seconds: int) -> None:
    """Encode an H.264 MP4 of exactly ``seconds`` at ``FPS``.

    Args:
        path: Destination file.
        width: Frame width.
        height: Frame height.
        seconds: Clip duration.
    """
    # 4:2:0 needs even sides; odd sizes (gateway dialect only) fall back to 4:4:4.
    pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    with (
        _atomic(path) as tmp,
        av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out,
    ):
        stream = out.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "tune": "zerolatency"})
        stream.width = width
        stream.height = height
        stream.pix_fmt = pix_fmt
        # The pattern loops, so one loop of frames is drawn and converted once and then reused.
        loop = _loop_length(width, height)
        cycle = [_to_frame(draw_frame(width, height, i / loop), pix_fmt) for i in range(loop)]
        for index in range(seconds * FPS):
            frame = cycle[index % loop]
            frame.pts = index
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _loop_length(width: int, height: int) -> int:
    """Frames per pattern loop: one second, shortened for huge sizes so the cache stays small."""
    frame_bytes = width * height * 3
    return max(4, min(FPS, _LOOP_CACHE_BYTES // frame_bytes))


def _to_frame(image: Image.Image, pix_fmt: str) -> Any:
    # PyAV leaves from_image unannotated; the frame is only handed back to PyAV.
    frame = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
    return frame.reformat(format=pix_fmt)


def stamp_mp4(source: Path, path: Path, video_id: str) -> None:
    """Copy an MP4 without re-encoding, tagging it with the job's id.

    Args:
        source: The base render.
        path: Destination file.
        video_id: Written into the ``comment`` and ``title`` metadata.
    """
    with (
        _atomic(path) as tmp,
        av.open(str(source)) as src,
        av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out,
    ):
        out.metadata["title"] = video_id
        out.metadata["comment"] = f"sora-simulator {video_id}"
        in_stream = src.streams.video[0]
        out_stream = out.add_stream_from_template(in_stream)
        for packet in src.demux(in_stream):
            # The demuxer ends with an empty flush packet that must not be muxed.
            if packet.dts is None:
                continue
            packet.stream = out_stream
            out.mux(packet)


def render_thumbnail(path: Path, width: int, height: int) -> None:
    """A WebP still at full size, like the service's thumbnail."""
    with _atomic(path) as tmp:
        draw_frame(width, height, 0.25).save(tmp, format="WEBP", quality=80, method=0)


def render_spritesheet(path: Path, width: int, height: int, seconds: int) -> None:
    """A JPEG grid of small frames sampled evenly across the clip."""
    tile_w = min(width, _SPRITE_TILE_WIDTH)
    tile_h = max(1, round(height * tile_w / width))
    rows = math.ceil(_SPRITE_TILES / _SPRITE_COLUMNS)
    sheet = Image.new("RGB", (tile_w * _SPRITE_COLUMNS, tile_h * rows), (0, 0, 0))
    for index in range(_SPRITE_TILES):
        tile = draw_frame(tile_w, tile_h, seconds * index / _SPRITE_TILES)
        sheet.paste(tile, ((index % _SPRITE_COLUMNS) * tile_w, (index // _SPRITE_COLUMNS) * tile_h))
    with _atomic(path) as tmp:
        sheet.save(tmp, format="JPEG", quality=85)


class _atomic:
    """Write to a temporary sibling, then rename into place, so readers never see half a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self.tmp

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def safe_name(video_id: str) -> str:
    """A file-name-safe stand-in for a video id: plain ids as they are, hostile ones hashed."""
    if _PLAIN_ID.match(video_id):
        return video_id
    return "hostile-" + hashlib.sha256(video_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class MediaLibrary:
    """Renders assets lazily on first request and caches them under a data directory.

    Args:
        root: Data directory; ``renders/`` holds shared base renders, ``jobs/`` per-job files.
    """

    def __init__(self, root: Path) -> None:
        self.renders = root / "renders"
        self.jobs = root / "jobs"
        self._locks: dict[str, asyncio.Lock] = {}
        # Rendering is CPU-bound; one at a time keeps a small machine responsive.
        self._cpu = asyncio.Semaphore(1)

    async def asset(self, variant: Variant, video_id: str, width: int, height: int, seconds: int) -> Path:
        """The file for one job's asset, rendering it if needed.

        Args:
            variant: Which asset.
            video_id: The job (only the MP4 is personalised).
            width: Video width.
            height: Video height.
            seconds: Clip duration.
        """
        key = f"{width}x{height}-{seconds}s-v{RENDER_VERSION}"
        if variant is Variant.THUMBNAIL:
            path = self.renders / f"thumb-{key}.webp"
            return await self._ensure(path, lambda: render_thumbnail(path, width, height))
        if variant is Variant.SPRITESHEET:
            path = self.renders / f"sprites-{key}.jpg"
            return await self._ensure(path, lambda: render_spritesheet(path, width, height, seconds))
        base = self.renders / f"base-{key}.mp4"
        await self._ensure(base, lambda: render_mp4(base, width, height, seconds))
        own = self.jobs / f"{safe_name(video_id)}.mp4"
        return await self._ensure(own, lambda: stamp_mp4(base, own, safe_name(video_id)))

    def discard(self, video_id: str) -> None:
        """Remove a deleted job's own file."""
        (self.jobs / f"{safe_name(video_id)}.mp4").unlink(missing_ok=True)

    async def _ensure(self, path: Path, make: Callable[[], None]) -> Path:
        if path.exists():
            return path
        lock = self._locks.setdefault(str(path), asyncio.Lock())
        async with lock:
            if not path.exists():
                async with self._cpu:
                    await asyncio.to_thread(make)
        return path
