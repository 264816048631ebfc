"""Helpers of the page tests: the stack they share, the keys they use, what the browser complains about."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Page

from simulator.testing import RunningSimulator
from support import Deployment

# The api tests' helpers start the ``python -m api`` process; one way of doing it for both suites.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))
from api_support import ApiProcess, api_env, migrate

__all__ = ["ApiProcess", "api_env", "migrate"]

CHROMIUM = Path("/usr/bin/chromium")
TEMPORAL_UI_URL = "http://127.0.0.1:18233"
KEYS = tuple(f"sk-page-test-key-{n:02d}" for n in range(24))
DESKTOP = {"width": 1280, "height": 900}


@dataclass
class PageStack:
    """The running stack and a supply of API keys, each handed out once."""

    deployment: Deployment
    sim: RunningSimulator
    api: ApiProcess
    unused_keys: list[str] = field(default_factory=lambda: list(KEYS))

    @property
    def url(self) -> str:
        """The page's address."""
        return self.api.root_url + "/"

    def new_key(self) -> str:
        """A key no other test has used: its page starts empty."""
        return self.unused_keys.pop(0)


@dataclass
class Problems:
    """What the browser complained about: script errors and refused (CSP) loads."""

    messages: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.messages.append(f"page error: {error}"))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        # A fetch answered 4xx is logged as "Failed to load resource"; the tests provoke those.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.messages.append(f"console: {message.text}")


OpenPage = Callable[..., Page]
