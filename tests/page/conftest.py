"""Fixtures of the page tests: one real stack per module, and Debian's Chromium driven by Playwright.

The stack is the ``api`` tests' (dev server, simulator, a worker process, the ``python -m api``
process); each test takes API keys of its own, so what one test creates never shows on another's page.
The browser is the system's ``/usr/bin/chromium`` (Playwright's own browser download is not reachable
here); without it the tests fail, they never skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from page_support import (
    CHROMIUM,
    DESKTOP,
    KEYS,
    TEMPORAL_UI_URL,
    ApiProcess,
    OpenPage,
    PageStack,
    Problems,
    api_env,
    migrate,
)
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from temporalio.testing import WorkflowEnvironment

from simulator.testing import start_simulator
from support import Deployment


@pytest.fixture(scope="module")
def page_stack(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageStack]:
    """Simulator (a 4 s clip takes about half a second), a worker and the ``api`` process, on SQLite."""
    root = tmp_path_factory.mktemp("page")
    target = dev_env.client.service_client.config.target_host
    database_url = f"sqlite:///{root / 'sora.db'}"
    migrate(database_url)
    with start_simulator(time_scale=0.01) as sim:
        deployment = Deployment.configure(target, sim, root, database_url)
        deployment.start_worker()
        env = api_env(deployment, API_KEYS=",".join(KEYS), TEMPORAL_UI_URL=TEMPORAL_UI_URL)
        api = ApiProcess(env, root / "api.log")
        try:
            api.start()
            yield PageStack(deployment, sim, api)
        finally:
            api.stop()
            deployment.stop_workers()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless Chromium from Debian's package (``.ci/run`` installs it)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"the page tests need Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does it)",
            pytrace=False,
        )
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def open_page(browser: Browser, page_stack: PageStack) -> Iterator[OpenPage]:
    """Open the page in a fresh browser context (its own sessionStorage), optionally entering a key.

    Fails the test afterwards if the page threw an error or the browser refused anything (CSP).
    """
    contexts = []
    problems = Problems()

    def open_(key: str | None = None, *, viewport: dict[str, int] | None = None) -> Page:
        context = browser.new_context(viewport=viewport or DESKTOP)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        problems.watch(page)
        page.goto(page_stack.url)
        if key is not None:
            page.get_by_label("API key", exact=True).fill(key)
            page.get_by_role("button", name="Show my videos").click()
            page.locator("#app").wait_for(state="visible")
        return page

    yield open_
    for context in contexts:
        context.close()
    assert problems.messages == [], problems.messages
