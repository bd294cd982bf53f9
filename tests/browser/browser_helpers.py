"""Small helpers shared by the Playwright tests."""

from __future__ import annotations

from playwright.sync_api import Page, expect

#: The app has finished its script run.
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
#: Generous: the machine running the tests may be busy.
TIMEOUT = 120_000


def wait_idle(page: Page, timeout: int = TIMEOUT) -> None:
    """Wait until the app is connected and its script run has finished."""
    page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']", state="attached",
                           timeout=timeout)
    page.wait_for_timeout(300)
    page.wait_for_selector(IDLE, state="attached", timeout=timeout)


def no_exception(page: Page) -> None:
    """No traceback anywhere on the page."""
    expect(page.get_by_test_id("stException")).to_have_count(0)


def screenshot(page: Page, path, max_height: int = 6000) -> None:
    """Whole-page screenshot: Streamlit scrolls inside its own container, so grow the viewport."""
    height = page.evaluate("() => document.querySelector('[data-testid=\\'stMain\\']')?.scrollHeight || 1000")
    page.set_viewport_size({"width": 1500, "height": min(max_height, max(1000, int(height)))})
    page.wait_for_timeout(1500)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1500, "height": 1000})
