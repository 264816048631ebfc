"""Custom search attributes, so jobs can be filtered in the Temporal Web UI's list.

They must be registered in the namespace before a workflow uses them: an unregistered one fails the
workflow task with ``BadSearchAttributes`` and the workflow stalls. The dev server that ``make up`` and
``make demo`` start registers them (``--search-attribute``); ``worker.py`` checks at start-up and says
how to create them; the starter sets them only when the namespace has them, and the workflow
publishes them only when the starter did.
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey

SORA_STATUS = SearchAttributeKey.for_keyword("SoraStatus")
SORA_VIDEO_ID = SearchAttributeKey.for_keyword("SoraVideoId")
SORA_PROGRESS = SearchAttributeKey.for_int("SoraProgress")
SORA_MODEL = SearchAttributeKey.for_keyword("SoraModel")

ALL: tuple[SearchAttributeKey[str] | SearchAttributeKey[int], ...] = (
    SORA_STATUS,
    SORA_VIDEO_ID,
    SORA_PROGRESS,
    SORA_MODEL,
)

_KINDS: dict[str, tuple[str, int]] = {
    SORA_STATUS.name: ("Keyword", IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD),
    SORA_VIDEO_ID.name: ("Keyword", IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD),
    SORA_PROGRESS.name: ("Int", IndexedValueType.INDEXED_VALUE_TYPE_INT),
    SORA_MODEL.name: ("Keyword", IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD),
}


def dev_server_flags() -> list[str]:
    """``--search-attribute`` flags for ``temporal server start-dev``."""
    return [arg for name, (kind, _) in _KINDS.items() for arg in ("--search-attribute", f"{name}={kind}")]


async def missing(client: Client) -> list[str]:
    """Names of our search attributes the namespace lacks (all of them if the server can't tell)."""
    try:
        response = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except Exception:  # e.g. the time-skipping test server, which has no operator service
        return list(_KINDS)
    return [name for name in _KINDS if name not in response.custom_attributes]


def how_to_create(names: Sequence[str], namespace: str) -> str:
    """A message naming the missing attributes and the commands that create them."""
    commands = "\n".join(
        f"  temporal operator search-attribute create --namespace {namespace} --name {name} --type {_KINDS[name][0]}"
        for name in names
    )
    return (
        "custom search attributes missing: "
        + ", ".join(names)
        + ". Workflows still run, but cannot be filtered by status in the Web UI. Create them with:\n"
        + commands
    )
