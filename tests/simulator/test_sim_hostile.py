"""Hostile answers: each rule and marker sends exactly the malformed or dangerous bytes it names."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from simulator.testing import RunningSimulator, path_segment

MIB = 1024 * 1024
METADATA_URL = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


def auth(sim: RunningSimulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.api_key}"}


def create(http: httpx.Client, sim: RunningSimulator, prompt: str) -> httpx.Response:
    response = http.post(f"{sim.base_url}/videos", data={"prompt": prompt}, headers=auth(sim))
    assert response.status_code == 200, response.text
    return response


def video_url(sim: RunningSimulator, video_id: str, suffix: str = "") -> str:
    return f"{sim.base_url}/videos/{path_segment(video_id)}{suffix}"


def completed(http: httpx.Client, sim: RunningSimulator, prompt: str = "finished [sim:never]") -> str:
    video_id: str = create(http, sim, prompt).json()["id"]
    sim.force_job(video_id, status="completed")
    return video_id


def raw_get(http: httpx.Client, url: str, headers: dict[str, str]) -> tuple[httpx.Headers, bytes]:
    """The body exactly as sent, without any content decoding."""
    with http.stream("GET", url, headers=headers) as response:
        return response.headers, b"".join(response.iter_raw())


def decode_bomb(raw: bytes) -> tuple[int, bytes]:
    """Undo ``gzip, gzip`` in bounded memory: the decoded length and its last 64 KB."""
    outer = zlib.decompressobj(wbits=31)
    inner = outer.decompress(raw, 64 * MIB)
    assert outer.eof, "the outer layer should be small"
    decoder = zlib.decompressobj(wbits=31)
    total, tail, pending = 0, b"", inner
    while not decoder.eof:
        chunk = decoder.decompress(pending, 8 * MIB)
        pending = decoder.unconsumed_tail
        total += len(chunk)
        tail = (tail + chunk[-64 * 1024 :])[-64 * 1024 :]
        if not chunk and not pending:
            break
    return total, tail


# ----- gzip bombs -------------------------------------------------------------------------------


def test_a_status_bomb_is_about_a_kilobyte_that_decodes_to_hundreds_of_mib_of_valid_json(
    http: httpx.Client, api_sim: RunningSimulator
) -> None:
    video_id = create(http, api_sim, "bombed status").json()["id"]
    api_sim.add_fault("retrieve", "gzip_bomb", count=1)

    headers, raw = raw_get(http, video_url(api_sim, video_id), auth(api_sim))
    decoded, tail = decode_bomb(raw)

    assert headers["content-encoding"] == "gzip, gzip"
    assert headers["content-type"].startswith("application/json")
    assert int(headers["content-length"]) == len(raw) < 4096
    assert decoded >= 512 * MIB
    assert json.loads(tail)["id"] == video_id


def test_a_list_bomb_decodes_to_the_requested_size_plus_the_page(
    http: httpx.Client, api_sim: RunningSimulator
) -> None:
    create(http, api_sim, "listed")
    api_sim.add_fault("list", "gzip_bomb", size=8 * MIB, count=1)

    headers, raw = raw_get(http, f"{api_sim.base_url}/videos", auth(api_sim))
    decoded, tail = decode_bomb(raw)
    page = json.loads(tail)

    assert headers["content-encoding"] == "gzip, gzip"
    assert decoded == 8 * MIB + len(tail.strip())
    assert page["object"] == "list" and len(page["data"]) == 1


def test_a_content_bomb_keeps_the_media_type(http: httpx.Client, api_sim: RunningSimulator) -> None:
    video_id = completed(http, api_sim)
    api_sim.add_fault("content", "gzip_bomb", size=4 * MIB, count=1)

    headers, raw = raw_get(http, video_url(api_sim, video_id, "/content"), auth(api_sim))

    assert headers["content-type"] == "video/mp4"
    assert headers["content-encoding"] == "gzip, gzip"
    assert decode_bomb(raw)[0] == 4 * MIB


def test_a_gateway_download_url_can_be_bombed(http: httpx.Client, gw_sim: RunningSimulator) -> None:
    video_id = completed(http, gw_sim)
    url = http.get(video_url(gw_sim, video_id), headers=auth(gw_sim)).json()["url"]
    gw_sim.add_fault("files", "gzip_bomb", size=2 * MIB, count=1)

    headers, raw = raw_get(http, url, {})

    assert headers["content-encoding"] == "gzip, gzip"
    assert decode_bomb(raw)[0] == 2 * MIB


# ----- oversize bodies --------------------------------------------------------------------------


def test_oversize_pads_a_json_body_past_one_mib_and_keeps_it_valid(
    http: httpx.Client, api_sim: RunningSimulator
) -> None:
    video_id = create(http, api_sim, "padded").json()["id"]
    api_sim.add_fault("retrieve", "oversize", count=1)

    response = http.get(video_url(api_sim, video_id), headers=auth(api_sim))

    assert len(response.content) > 2 * MIB
    assert response.json()["id"] == video_id


def test_oversize_takes_a_size(http: httpx.Client, api_sim: RunningSimulator) -> None:
    api_sim.add_fault("list", "oversize", size=MIB + 1, count=1)

    response = http.get(f"{api_sim.base_url}/videos", headers=auth(api_sim))

    assert MIB < len(response.content) < MIB + 4096
    assert response.json()["object"] == "list"


# ----- hostile ids ------------------------------------------------------------------------------

ID_CHECKS = {
    "dot": lambda value: value == ".",
    "dotdot": lambda value: value == "..",
    "long": lambda value: len(value) == 2048,
    "slash": lambda value: "/" in value and ".." in value,
    "query": lambda value: "?" in value,
    "space": lambda value: " " in value,
    "unicode": lambda value: not value.isascii(),
}


@pytest.mark.parametrize("kind", sorted(ID_CHECKS))
def test_an_id_marker_gives_the_job_a_hostile_id_in_create_and_list(
    http: httpx.Client, api_sim: RunningSimulator, kind: str
) -> None:
    created = create(http, api_sim, f"hostile [sim:id={kind}]").json()["id"]

    listed = [
        entry["id"] for entry in http.get(f"{api_sim.base_url}/videos", headers=auth(api_sim)).json()["data"]
    ]

    assert ID_CHECKS[kind](created)
    assert listed == [created]


@pytest.mark.parametrize("kind", sorted(ID_CHECKS))
def test_a_hostile_id_can_be_retrieved_when_escaped_as_one_path_segment(
    http: httpx.Client, api_sim: RunningSimulator, kind: str
) -> None:
    created = create(http, api_sim, f"escaped [sim:id={kind}]").json()["id"]

    response = http.get(video_url(api_sim, created), headers=auth(api_sim))

    assert response.status_code == 200
    assert response.json()["id"] == created


def test_a_raw_id_marker_sets_the_id_verbatim(http: httpx.Client, api_sim: RunningSimulator) -> None:
    ids = [create(http, api_sim, f"collide [sim:id=raw:video_abc{sep}def]").json()["id"] for sep in "/? "]

    assert ids == ["video_abc/def", "video_abc?def", "video_abc def"]


def test_a_hostile_id_rule_rewrites_the_create_answer_only(
    http: httpx.Client, api_sim: RunningSimulator
) -> None:
    api_sim.add_fault("create", "hostile_id", id_kind="dotdot", count=1)

    answered = create(http, api_sim, "lied about").json()["id"]

    assert answered == ".."
    assert api_sim.jobs()[0]["id"].startswith("video_")


def test_a_hostile_id_rule_on_list_rewrites_every_entry_and_the_cursors(
    http: httpx.Client, api_sim: RunningSimulator
) -> None:
    for n in range(2):
        create(http, api_sim, f"entry {n}")
    api_sim.add_fault("list", "hostile_id", id_kind="long", count=1)

    page = http.get(f"{api_sim.base_url}/videos", headers=auth(api_sim)).json()

    assert [len(entry["id"]) for entry in page["data"]] == [2048, 2048]
    assert (page["first_id"], page["last_id"]) == (page["data"][0]["id"], page["data"][1]["id"])


def test_an_unknown_id_kind_is_refused(http: httpx.Client, api_sim: RunningSimulator) -> None:
    response = http.post(
        f"{api_sim.root_url}/_sim/faults", json={"route": "create", "action": "hostile_id", "id_kind": "evil"}
    )

    assert response.status_code == 400


# ----- junk numbers and missing fields ----------------------------------------------------------


def test_a_junk_marker_overflows_numbers_in_status_and_list_but_not_in_create(
    http: httpx.Client, api_sim: RunningSimulator
) -> None:
    created = create(http, api_sim, "junk numbers [sim:junk]")
    video_id = created.json()["id"]
    create(http, api_sim, "clean neighbour")

    status_text = http.get(video_url(api_sim, video_id), headers=auth(api_sim)).text
    page = json.loads(http.get(f"{api_sim.base_url}/videos", headers=auth(api_sim)).text)

    assert isinstance(created.json()["created_at"], int)
    assert '"progress": 1e999' in status_text
    assert '"created_at": "1e999"' in status_text
    by_id = {entry["id"]: entry for entry in page["data"]}
    assert by_id[video_id]["created_at"] == "1e999"
    assert by_id[video_id]["progress"] == float("inf")  # what Python makes of the token
    [neighbour] = [entry for entry in page["data"] if entry["id"] != video_id]
    assert isinstance(neighbour["created_at"], int) and isinstance(neighbour["progress"], int)


def test_a_garbage_junk_rule_puts_non_numbers_where_numbers_belong(
    http: httpx.Client, api_sim: RunningSimulator
) -> None:
    video_id = create(http, api_sim, "garbage").json()["id"]
    api_sim.add_fault("retrieve", "junk_fields", junk="garbage", count=1)

    video = http.get(video_url(api_sim, video_id), headers=auth(api_sim)).json()

    assert (video["created_at"], video["progress"], video["seconds"]) == ("yesterday", "half", "four")
    assert video["completed_at"] == [] and video["expires_at"] == {"when": "later"}


def test_an_omit_marker_leaves_fields_out_of_list_entries_only(
    http: httpx.Client, api_sim: RunningSimulator
) -> None:
    video_id = create(http, api_sim, "thin entry [sim:omit]").json()["id"]

    [entry] = http.get(f"{api_sim.base_url}/videos", headers=auth(api_sim)).json()["data"]
    status = http.get(video_url(api_sim, video_id), headers=auth(api_sim)).json()

    assert not {"prompt", "model", "size", "seconds", "created_at"} & set(entry)
    assert (entry["id"], entry["status"]) == (video_id, status["status"])
    assert {"prompt", "model", "size", "seconds", "created_at"} <= set(status)


def test_an_omit_marker_can_name_the_fields(http: httpx.Client, api_sim: RunningSimulator) -> None:
    create(http, api_sim, "no prompt [sim:omit=prompt,created_at]")

    [entry] = http.get(f"{api_sim.base_url}/videos", headers=auth(api_sim)).json()["data"]

    assert "prompt" not in entry and "created_at" not in entry
    assert "model" in entry


def test_an_omit_fields_rule_applies_to_a_status_answer(
    http: httpx.Client, api_sim: RunningSimulator
) -> None:
    video_id = create(http, api_sim, "thin status").json()["id"]
    api_sim.add_fault("retrieve", "omit_fields", fields=["prompt", "progress"], count=1)

    video = http.get(video_url(api_sim, video_id), headers=auth(api_sim)).json()

    assert "prompt" not in video and "progress" not in video
    assert video["id"] == video_id


# ----- poisoned error fields --------------------------------------------------------------------


def test_an_error_marker_long_fails_the_job_with_an_oversized_code_and_message(
    http: httpx.Client, api_sim: RunningSimulator
) -> None:
    video_id = create(http, api_sim, "long error [sim:error=long] [sim:duration=10]").json()["id"]
    api_sim.force_job(video_id, status="failed")

    error = http.get(video_url(api_sim, video_id), headers=auth(api_sim)).json()["error"]

    assert len(error["code"]) > 128
    assert len(error["message"]) >= 100 * 1024


def test_an_error_marker_nul_puts_nul_characters_in_code_and_message(
    http: httpx.Client, api_sim: RunningSimulator
) -> None:
    video_id = create(http, api_sim, "nul error [sim:error=nul] [sim:duration=10]").json()["id"]
    api_sim.force_job(video_id, status="failed")

    video = http.get(video_url(api_sim, video_id), headers=auth(api_sim)).json()

    assert video["status"] == "failed"
    assert "\x00" in video["error"]["code"] and "\x00" in video["error"]["message"]


@pytest.mark.parametrize(("kind", "status"), [("nul", 500), ("long", 400)])
def test_an_error_rule_can_poison_the_envelope(
    http: httpx.Client, api_sim: RunningSimulator, kind: str, status: int
) -> None:
    api_sim.add_fault("list", "error", status=status, error_kind=kind, count=1)

    response = http.get(f"{api_sim.base_url}/videos", headers=auth(api_sim))
    error = response.json()["error"]

    assert response.status_code == status
    if kind == "nul":
        assert "\x00" in error["code"] and "\x00" in error["message"]
    else:
        assert len(error["code"]) > 128 and len(error["message"]) >= 100 * 1024


def test_an_error_rule_can_set_code_and_message(http: httpx.Client, api_sim: RunningSimulator) -> None:
    api_sim.add_fault("create", "error", status=502, error_code="x" * 300, error_message="a\x00b", count=1)

    response = http.post(f"{api_sim.base_url}/videos", data={"prompt": "p"}, headers=auth(api_sim))

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "x" * 300
    assert response.json()["error"]["message"] == "a\x00b"


# ----- wrong media ------------------------------------------------------------------------------


def test_wrong_media_serves_the_video_as_an_html_page(http: httpx.Client, api_sim: RunningSimulator) -> None:
    video_id = completed(http, api_sim)
    api_sim.add_fault("content", "wrong_media", count=1)

    response = http.get(video_url(api_sim, video_id, "/content"), headers=auth(api_sim))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.content.lower().startswith(b"<!doctype html")


def test_wrong_media_can_target_the_thumbnail_with_png_bytes_labelled_webp(
    http: httpx.Client, api_sim: RunningSimulator
) -> None:
    video_id = completed(http, api_sim)
    api_sim.add_fault(
        "content", "wrong_media", match_variant="thumbnail", media="png", content_type="image/webp"
    )
    content = video_url(api_sim, video_id, "/content")

    video = http.get(content, headers=auth(api_sim))
    thumbnail = http.get(content, params={"variant": "thumbnail"}, headers=auth(api_sim))

    assert video.content[4:8] == b"ftyp"
    assert thumbnail.headers["content-type"] == "image/webp"
    assert thumbnail.content.startswith(b"\x89PNG")


def test_wrong_media_can_serve_a_spritesheet_that_is_not_jpeg(
    http: httpx.Client, api_sim: RunningSimulator
) -> None:
    video_id = completed(http, api_sim)
    api_sim.add_fault(
        "content", "wrong_media", match_variant="spritesheet", media="webp", content_type="image/jpeg"
    )

    sheet = http.get(
        video_url(api_sim, video_id, "/content"), params={"variant": "spritesheet"}, headers=auth(api_sim)
    )

    assert sheet.headers["content-type"] == "image/jpeg"
    assert sheet.content[:4] == b"RIFF" and sheet.content[8:12] == b"WEBP"


# ----- download URLs ----------------------------------------------------------------------------


def test_download_url_points_a_completed_gateway_video_at_a_chosen_host(
    http: httpx.Client, gw_sim: RunningSimulator
) -> None:
    video_id = create(http, gw_sim, "elsewhere [sim:never]").json()["id"]
    gw_sim.add_fault("retrieve", "download_url", url="http://127.0.0.1:9/steal", count=1)

    running = http.get(video_url(gw_sim, video_id), headers=auth(gw_sim)).json()
    gw_sim.force_job(video_id, status="completed")
    done = http.get(video_url(gw_sim, video_id), headers=auth(gw_sim)).json()

    assert "url" not in running  # a running job's poll does not use the rule up
    assert done["url"] == done["video_url"] == done["outputs"]["video_url"] == "http://127.0.0.1:9/steal"


def test_download_url_with_hops_is_a_redirect_chain_through_the_simulator(
    http: httpx.Client, gw_sim: RunningSimulator
) -> None:
    video_id = completed(http, gw_sim)
    gw_sim.add_fault("retrieve", "download_url", url=METADATA_URL, hops=2, count=1)

    url = http.get(video_url(gw_sim, video_id), headers=auth(gw_sim)).json()["url"]
    first = http.get(url, follow_redirects=False)
    second = http.get(first.headers["location"], follow_redirects=False)

    assert url.startswith(gw_sim.root_url + "/_redirect?")
    assert first.status_code == second.status_code == 302
    assert urlsplit(first.headers["location"]).netloc == urlsplit(gw_sim.root_url).netloc
    assert parse_qs(urlsplit(first.headers["location"]).query)["hops"] == ["1"]
    # The chain ends at the target; nothing here ever connects to it.
    assert second.headers["location"] == METADATA_URL
    assert gw_sim.stats()["file_host"]["redirects"] == 2


def test_download_url_also_works_in_the_openai_dialect(http: httpx.Client, api_sim: RunningSimulator) -> None:
    video_id = completed(http, api_sim)
    api_sim.add_fault("retrieve", "download_url", url="http://127.0.0.1:1/x", match_prompt="finished")

    video: dict[str, Any] = http.get(video_url(api_sim, video_id), headers=auth(api_sim)).json()

    assert video["url"] == "http://127.0.0.1:1/x"


def test_download_url_needs_an_absolute_http_url(http: httpx.Client, api_sim: RunningSimulator) -> None:
    for url in (None, "file:///etc/passwd", "/relative"):
        body = {"route": "retrieve", "action": "download_url", "url": url}
        assert http.post(f"{api_sim.root_url}/_sim/faults", json=body).status_code == 400


def test_requests_no_route_answers_are_counted_with_their_raw_path(
    http: httpx.Client, api_sim: RunningSimulator
) -> None:
    video_id = create(http, api_sim, "dots [sim:id=dotdot]").json()["id"]

    # A naive client pastes the id into the path; the dot segment eats "videos/".
    response = http.get(f"{api_sim.base_url}/videos/{video_id}/content", headers=auth(api_sim))

    assert response.status_code == 404
    assert api_sim.stats()["unrouted"] == {"count": 1, "recent": ["GET /v1/content"]}


@pytest.mark.parametrize("kind", sorted(ID_CHECKS))
def test_a_gateway_download_url_of_a_hostile_id_is_well_formed_and_works(
    http: httpx.Client, gw_sim: RunningSimulator, kind: str
) -> None:
    video_id = completed(http, gw_sim, f"[sim:id={kind}] [sim:never]")

    url = http.get(video_url(gw_sim, video_id), headers=auth(gw_sim)).json()["url"]
    response = http.get(url)

    assert urlsplit(url).path.startswith("/files/") and urlsplit(url).path.count("/") == 2
    assert response.status_code == 200
    assert response.content[4:8] == b"ftyp"
