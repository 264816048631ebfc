"""Fault rules (runtime, via ``/_sim/faults``) and seeded random failures (CLI).

A rule targets one route (or ``any`` API route), optionally only requests about a job whose prompt
contains ``match_prompt`` and, for content downloads, only one ``match_variant``. The first
matching rule wins and uses up one of its ``count`` uses. Actions fall in three groups:

* transport faults: ``error``, ``rate_limit``, ``reset``, ``slow``, ``lose_response``, ``truncate``;
* hostile answers (issue 9): ``gzip_bomb``, ``oversize``, ``hostile_id``, ``junk_fields``,
  ``omit_fields``, ``wrong_media``, ``download_url`` (and ``error`` with poisoned fields);
* webhook delivery faults, on route ``webhook`` only: ``delay``, ``duplicate``, ``drop``,
  ``bad_signature``, ``expired``, ``early``.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from simulator import hostile


class Route(StrEnum):
    """What a fault rule can target."""

    CREATE = "create"
    RETRIEVE = "retrieve"
    LIST = "list"
    DELETE = "delete"
    CONTENT = "content"
    REMIX = "remix"
    #: Gateway download URLs (``/files/...``); ``content`` rules cover them too.
    FILES = "files"
    #: The reference-image host (``/_files/...``); not covered by ``any``.
    REFERENCE = "reference"
    #: Outbound webhook events; only webhook actions apply, and ``any`` never matches them.
    WEBHOOK = "webhook"
    ANY = "any"


#: Routes of the Videos API itself (request counters in ``/_sim/stats`` are kept for these).
API_ROUTES = (
    Route.CREATE,
    Route.RETRIEVE,
    Route.LIST,
    Route.DELETE,
    Route.CONTENT,
    Route.REMIX,
    Route.FILES,
)


class FaultAction(StrEnum):
    """What a matching rule does."""

    ERROR = "error"
    RATE_LIMIT = "rate_limit"
    RESET = "reset"
    SLOW = "slow"
    LOSE_RESPONSE = "lose_response"
    TRUNCATE = "truncate"
    # Hostile answers.
    GZIP_BOMB = "gzip_bomb"
    OVERSIZE = "oversize"
    HOSTILE_ID = "hostile_id"
    JUNK_FIELDS = "junk_fields"
    OMIT_FIELDS = "omit_fields"
    WRONG_MEDIA = "wrong_media"
    DOWNLOAD_URL = "download_url"
    # Webhook delivery.
    DELAY = "delay"
    DUPLICATE = "duplicate"
    DROP = "drop"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    EARLY = "early"


WEBHOOK_ACTIONS = frozenset(
    {
        FaultAction.DELAY,
        FaultAction.DUPLICATE,
        FaultAction.DROP,
        FaultAction.BAD_SIGNATURE,
        FaultAction.EXPIRED,
        FaultAction.EARLY,
    }
)


class LoseMode(StrEnum):
    """How a ``lose_response`` rule withholds the response."""

    ERROR = "error"
    RESET = "reset"


@dataclass(frozen=True)
class Target:
    """What a request (or webhook event) is about, for rule matching.

    Attributes:
        route: The route.
        prompt: The prompt sent, or of the addressed job.
        variant: The content variant asked for (content and gateway file downloads).
        status: The addressed job's status (canonical name) when known.
    """

    route: Route
    prompt: str | None = None
    variant: str | None = None
    status: str | None = None


@dataclass
class FaultRule:
    """One rule; ``count`` None means it never runs out.

    Attributes:
        route: What it applies to.
        action: What it does.
        status: HTTP status for ``error`` and ``lose_response`` (mode error).
        count: Remaining uses, or None for unlimited.
        retry_after: Seconds advertised by ``rate_limit``.
        delay: Seconds ``slow`` waits before answering; seconds ``delay`` holds a webhook event.
        after: For ``slow``: do the work first and hold the answer (a create makes its job, then
            waits; file content sends half its body, waits, then the rest), like a server that is
            slow to reply rather than slow to start.
        mode: How ``lose_response`` loses the response.
        match_prompt: Only requests whose prompt (sent, or of the addressed job) contains this.
        match_variant: Only content downloads of this variant (``video``, ``thumbnail``,
            ``spritesheet``); gateway file URLs are ``video``.
        size: ``gzip_bomb``: decoded bytes (default 512 MiB); ``oversize``: padding bytes (default
            2 MiB).
        id_kind: ``hostile_id``: one of ``hostile.ID_KINDS`` or ``raw:<id>``.
        junk: ``junk_fields``: ``overflow`` or ``garbage``.
        fields: ``omit_fields``: the fields to leave out (default prompt, model, size, seconds,
            created_at).
        url: ``download_url``: where the completed video's download URL points.
        hops: ``download_url``: redirect hops through this simulator's ``/_redirect`` before ``url``.
        media: ``wrong_media``: ``html``, ``png``, ``jpeg`` or ``webp`` bytes instead of the real ones.
        content_type: ``wrong_media``: the ``Content-Type`` sent (default: the true type of ``media``).
        error_code: ``error``: the envelope's ``code``.
        error_message: ``error``: the envelope's ``message``.
        error_kind: ``error``: ``long`` (200-char code, 100 KB message) or ``nul`` (NUL characters).
        times: ``duplicate``: how many times the event is delivered.
        spacing: ``duplicate``: seconds between the copies (0 = all at once).
        lead: ``early``: seconds by which the event precedes the status saying the job has ended.
    """

    route: Route
    action: FaultAction
    status: int = 500
    count: int | None = None
    retry_after: float = 1.0
    delay: float = 1.0
    after: bool = False
    mode: LoseMode = LoseMode.ERROR
    match_prompt: str | None = None
    match_variant: str | None = None
    size: int | None = None
    id_kind: str | None = None
    junk: str = "overflow"
    fields: tuple[str, ...] = hostile.DEFAULT_OMITTED
    url: str | None = None
    hops: int = 0
    media: str = "html"
    content_type: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    error_kind: str | None = None
    times: int = 2
    spacing: float = 0.0
    lead: float = 1.0

    @classmethod
    def from_json(cls, data: object) -> FaultRule:
        """Parse a rule as posted to ``/_sim/faults``.

        Raises:
            ValueError: On a missing or invalid field, or an action the route cannot take.
        """
        if not isinstance(data, dict):
            raise ValueError("a fault rule must be a JSON object")
        unknown = set(data) - set(_PARSERS) - {"route", "action"}
        if unknown:
            raise ValueError(f"unknown fault rule fields: {sorted(unknown)}")
        if "route" not in data or "action" not in data:
            raise ValueError("'route' and 'action' are required")
        rule = cls(route=Route(data["route"]), action=FaultAction(data["action"]))
        if (rule.route is Route.WEBHOOK) != (rule.action in WEBHOOK_ACTIONS):
            raise ValueError(
                f"action {rule.action.value!r} does not apply to route {rule.route.value!r}: webhook "
                f"actions ({', '.join(sorted(WEBHOOK_ACTIONS))}) go with route 'webhook' and only there"
            )
        for name, parse in _PARSERS.items():
            if data.get(name) is not None:
                setattr(rule, name, parse(data, name))
        if rule.action is FaultAction.HOSTILE_ID and rule.id_kind is None:
            raise ValueError("'hostile_id' needs 'id_kind'")
        if rule.action is FaultAction.DOWNLOAD_URL and rule.url is None:
            raise ValueError("'download_url' needs 'url'")
        if rule.action is FaultAction.OVERSIZE and (rule.size or 0) > hostile.MAX_OVERSIZE_BYTES:
            raise ValueError("'size' out of range")
        return rule

    def to_json(self) -> dict[str, Any]:
        """The rule as JSON: the basic fields always, the others when they differ from their default."""
        shown: dict[str, Any] = {
            "route": self.route.value,
            "action": self.action.value,
            "status": self.status,
            "count": self.count,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "after": self.after,
            "mode": self.mode.value,
            "match_prompt": self.match_prompt,
        }
        for spec in dataclasses.fields(self):
            if spec.name in shown:
                continue
            value = getattr(self, spec.name)
            if value != spec.default:
                shown[spec.name] = list(value) if isinstance(value, tuple) else value
        return shown

    def matches(self, target: Target) -> bool:
        """Whether the rule applies to ``target``."""
        route = target.route
        if self.route is Route.ANY:
            route_ok = route not in (Route.WEBHOOK, Route.REFERENCE)
        else:
            route_ok = self.route is route or (self.route is Route.CONTENT and route is Route.FILES)
        if not route_ok:
            return False
        if self.match_prompt is not None and (
            target.prompt is None or self.match_prompt not in target.prompt
        ):
            return False
        if self.match_variant is not None and target.variant != self.match_variant:
            return False
        # A download URL only belongs on a finished video: a poll of a running job does not use it up.
        return not (
            self.action is FaultAction.DOWNLOAD_URL
            and target.status is not None
            and target.status != "completed"
        )


def _number(data: dict[str, Any], name: str, low: float, high: float | None) -> float:
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"'{name}' must be a number")
    if value != value or value < low or (high is not None and value > high):
        raise ValueError(f"'{name}' out of range")
    return float(value)


def _whole(data: dict[str, Any], name: str, low: int, high: int | None) -> int:
    value = _number(data, name, low, high)
    if value != int(value):
        raise ValueError(f"'{name}' must be a whole number")
    return int(value)


def _string(data: dict[str, Any], name: str) -> str:
    value = data[name]
    if not isinstance(value, str):
        raise ValueError(f"'{name}' must be a string")
    return value


def _choice(choices: tuple[str, ...]) -> Callable[[dict[str, Any], str], str]:
    def parse(data: dict[str, Any], name: str) -> str:
        value = _string(data, name)
        if value not in choices:
            raise ValueError(f"'{name}' must be one of {', '.join(choices)}")
        return value

    return parse


def _boolean(data: dict[str, Any], name: str) -> bool:
    value = data[name]
    if not isinstance(value, bool):
        raise ValueError(f"'{name}' must be a boolean")
    return value


def _id_kind(data: dict[str, Any], name: str) -> str:
    value = _string(data, name)
    hostile.check_id_kind(value)
    return value


def _fields(data: dict[str, Any], name: str) -> tuple[str, ...]:
    value = data[name]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"'{name}' must be a list of field names")
    bad = sorted(set(value) - set(hostile.OMITTABLE))
    if bad:
        raise ValueError(f"'{name}' may only name {', '.join(hostile.OMITTABLE)}; not {bad}")
    return tuple(value)


def _url(data: dict[str, Any], name: str) -> str:
    value = _string(data, name)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"'{name}' must be an absolute http(s) URL")
    return value


def _content_type(data: dict[str, Any], name: str) -> str:
    value = _string(data, name)
    if not value or any(ch in value for ch in "\r\n"):
        raise ValueError(f"'{name}' must be a non-empty header value")
    return value


_PARSERS: dict[str, Callable[[dict[str, Any], str], Any]] = {
    "status": lambda data, name: _whole(data, name, 400, 599),
    "count": lambda data, name: _whole(data, name, 1, None),
    "retry_after": lambda data, name: _number(data, name, 0, None),
    "delay": lambda data, name: _number(data, name, 0, None),
    "after": _boolean,
    "mode": lambda data, name: LoseMode(data[name]),
    "match_prompt": _string,
    "match_variant": _choice(("video", "thumbnail", "spritesheet")),
    "size": lambda data, name: _whole(data, name, 1, hostile.MAX_BOMB_BYTES),
    "id_kind": _id_kind,
    "junk": _choice(hostile.JUNK_KINDS),
    "fields": _fields,
    "url": _url,
    "hops": lambda data, name: _whole(data, name, 0, 20),
    "media": _choice(hostile.MEDIA_KINDS),
    "content_type": _content_type,
    "error_code": _string,
    "error_message": _string,
    "error_kind": _choice(hostile.ERROR_KINDS),
    "times": lambda data, name: _whole(data, name, 1, 20),
    "spacing": lambda data, name: _number(data, name, 0, None),
    "lead": lambda data, name: _number(data, name, 0, None),
}


@dataclass
class FaultBook:
    """The ordered rule list plus the seeded random-failure source."""

    fail_rate: float = 0.0
    seed: int = 0
    rules: list[FaultRule] = field(default_factory=list)
    _random: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def add(self, rule: FaultRule) -> None:
        """Append a rule (earlier rules take precedence)."""
        self.rules.append(rule)

    def clear(self) -> None:
        """Drop every rule."""
        self.rules.clear()

    def reset(self) -> None:
        """Drop every rule and restart the random sequence."""
        self.clear()
        self._random = random.Random(self.seed)

    def peek(self, target: Target) -> FaultRule | None:
        """The first rule matching ``target``, without using it up."""
        return next((rule for rule in self.rules if rule.matches(target)), None)

    def take(self, target: Target) -> FaultRule | None:
        """Consume one use of the first rule matching ``target``, if any."""
        for index, rule in enumerate(self.rules):
            if rule.matches(target):
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        del self.rules[index]
                return rule
        return None

    def random_failure(self) -> bool:
        """Whether this request should fail at random (seeded)."""
        return self.fail_rate > 0 and self._random.random() < self.fail_rate
