"""Small helpers shared by the Playwright tests."""

from __future__ import annotations

from playwright.sync_api import Page


def screenshot(page: Page, path, max_height: int = 6000) -> None:
    """Whole-page screenshot: Streamlit scrolls inside its own container, so grow the viewport."""
    height = page.evaluate("() => document.querySelector('[data-testid=\\'stMain\\']')?.scrollHeight || 1000")
    page.set_viewport_size({"width": 1500, "height": min(max_height, max(1000, int(height)))})
    page.wait_for_timeout(1500)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1500, "height": 1000})
