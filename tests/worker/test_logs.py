"""``LOG_FORMAT=json``: one JSON object per line, with the job's ids where they are known."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Iterator

import pytest
from temporalio import activity
from temporalio.testing import ActivityEnvironment

from sora_temporal.logs import JobContext, JsonFormatter, video_context

log = logging.getLogger("sora_temporal.test_logs")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(JobContext())
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        log.removeHandler(handler)


def _entries(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_a_record_made_in_an_activity_carries_its_workflow_and_video_ids(captured: io.StringIO) -> None:
    @activity.defn(name="check_video_status")
    async def check() -> None:
        with video_context("video_abc"):
            log.info("checked %s", "video_abc")
        log.info("after")

    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id="wf-logs", workflow_run_id="run-1", attempt=2)

    await env.run(check)

    first, second = _entries(captured)
    assert first["message"] == "checked video_abc" and first["level"] == "INFO"
    assert (first["workflow_id"], first["run_id"], first["attempt"]) == ("wf-logs", "run-1", 2)
    assert first["video_id"] == "video_abc"
    assert second["workflow_id"] == "wf-logs" and "video_id" not in second


def test_outside_an_activity_only_what_is_known_is_written(captured: io.StringIO) -> None:
    log.warning("starting", extra={"video_id": "video_xyz"})

    (entry,) = _entries(captured)

    assert entry["video_id"] == "video_xyz"
    assert "workflow_id" not in entry and {"time", "level", "logger", "message"} <= entry.keys()


def test_extras_other_than_the_job_fields_are_never_written(captured: io.StringIO) -> None:
    log.error("refused", extra={"api_key": "sk-proj-never-logged", "authorization": "Bearer x"})

    text = captured.getvalue()

    assert "sk-proj-never-logged" not in text and "Bearer" not in text


def test_an_exception_stays_inside_its_one_line(captured: io.StringIO) -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        log.exception("failed")

    lines = captured.getvalue().splitlines()

    assert len(lines) == 1
    assert "ValueError: bad" in json.loads(lines[0])["exception"]
