"""Fault rules (runtime, via ``/_sim/faults``) and seeded random failures (CLI)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Route(StrEnum):
    """The API operations a fault rule can target."""

    CREATE = "create"
    RETRIEVE = "retrieve"
    LIST = "list"
    DELETE = "delete"
    CONTENT = "content"
    REMIX = "remix"
    #: Gateway download URLs (``/files/...``); ``content`` rules cover them too.
    FILES = "files"
    ANY = "any"


class FaultAction(StrEnum):
    """What a matching rule does to the request."""

    ERROR = "error"
    RATE_LIMIT = "rate_limit"
    RESET = "reset"
    SLOW = "slow"
    LOSE_RESPONSE = "lose_response"
    TRUNCATE = "truncate"


class LoseMode(StrEnum):
    """How a ``lose_response`` rule withholds the response."""

    ERROR = "error"
    RESET = "reset"


@dataclass
class FaultRule:
    """One rule; ``count`` None means it never runs out.

    Attributes:
        route: Operation it applies to.
        action: What it does.
        status: HTTP status for ``error`` and ``lose_response`` (mode error).
        count: Remaining uses, or None for unlimited.
        retry_after: Seconds advertised by ``rate_limit``.
        delay: Seconds ``slow`` waits before answering.
        after: For ``slow``: do the work first and hold the answer (a create makes its job, then
            waits; file content sends half its body, waits, then the rest), like a server that is
            slow to reply rather than slow to start.
        mode: How ``lose_response`` loses the response.
        match_prompt: Only requests whose prompt (sent, or of the addressed job) contains this.
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

    @classmethod
    def from_json(cls, data: object) -> FaultRule:
        """Parse a rule as posted to ``/_sim/faults``.

        Raises:
            ValueError: On a missing or invalid field.
        """
        if not isinstance(data, dict):
            raise ValueError("a fault rule must be a JSON object")
        unknown = set(data) - {
            "route",
            "action",
            "status",
            "count",
            "retry_after",
            "delay",
            "after",
            "mode",
            "match_prompt",
        }
        if unknown:
            raise ValueError(f"unknown fault rule fields: {sorted(unknown)}")
        if "route" not in data or "action" not in data:
            raise ValueError("'route' and 'action' are required")
        rule = cls(route=Route(data["route"]), action=FaultAction(data["action"]))
        if data.get("status") is not None:
            rule.status = _whole(data, "status", 400, 599)
        if data.get("count") is not None:
            rule.count = _whole(data, "count", 1, None)
        if data.get("retry_after") is not None:
            rule.retry_after = _number(data, "retry_after", 0, None)
        if data.get("delay") is not None:
            rule.delay = _number(data, "delay", 0, None)
        if data.get("after") is not None:
            if not isinstance(data["after"], bool):
                raise ValueError("'after' must be a boolean")
            rule.after = data["after"]
        if data.get("mode") is not None:
            rule.mode = LoseMode(data["mode"])
        if data.get("match_prompt") is not None:
            if not isinstance(data["match_prompt"], str):
                raise ValueError("'match_prompt' must be a string")
            rule.match_prompt = data["match_prompt"]
        return rule

    def to_json(self) -> dict[str, Any]:
        """The rule as JSON."""
        return {
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

    def matches(self, route: Route, prompt: str | None) -> bool:
        """Whether the rule applies to a request on ``route`` about ``prompt``."""
        route_ok = self.route in (Route.ANY, route) or (self.route is Route.CONTENT and route is Route.FILES)
        if not route_ok:
            return False
        return self.match_prompt is None or (prompt is not None and self.match_prompt in prompt)


def _number(data: dict[str, Any], name: str, low: float, high: float | None) -> float:
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"'{name}' must be a number")
    if value < low or (high is not None and value > high):
        raise ValueError(f"'{name}' out of range")
    return float(value)


def _whole(data: dict[str, Any], name: str, low: int, high: int | None) -> int:
    value = _number(data, name, low, high)
    if value != int(value):
        raise ValueError(f"'{name}' must be a whole number")
    return int(value)


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

    def take(self, route: Route, prompt: str | None) -> FaultRule | None:
        """Consume one use of the first matching rule, if any."""
        for index, rule in enumerate(self.rules):
            if rule.matches(route, prompt):
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        del self.rules[index]
                return rule
        return None

    def random_failure(self) -> bool:
        """Whether this request should fail at random (seeded)."""
        return self.fail_rate > 0 and self._random.random() < self.fail_rate
