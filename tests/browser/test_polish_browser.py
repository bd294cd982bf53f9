"""What only a browser shows on the Train and Inspect pages (issue 9): the runs table fits its
width, and at an 820 px wide window no metric, button or widget label is cut short ("Input
fr...").  Screenshots: /tmp/diffres_browser/narrow_train.png and narrow_inspect.png.

Run: ``pytest tests/browser/test_polish_browser.py`` (Debian Chromium at /usr/bin/chromium).
"""

from __future__ import annotations

import pytest

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError  # noqa: E402

from browser_helpers import TIMEOUT, no_exception, wait_idle  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("runs_dir")]

NARROW = 820

#: Texts the page cut short: elements whose text overflows a box that hides the overflow
#: (Streamlit ends them with an ellipsis).
TRUNCATED_JS = """
() => {
  const main = document.querySelector("[data-testid='stMain']");
  const boxes = main.querySelectorAll(
    "[data-testid='stMetricLabel'], [data-testid='stMetricValue'], [data-testid='stWidgetLabel'], button, "
    + "[data-testid='stMarkdownContainer']");
  const out = [];
  for (const box of boxes) {
    for (const el of [box, ...box.querySelectorAll('*')]) {
      const style = getComputedStyle(el);
      const hides = ['hidden', 'clip'].includes(style.overflowX) || style.textOverflow === 'ellipsis';
      if (hides && el.offsetParent !== null && el.scrollWidth > el.clientWidth + 1 && el.innerText.trim()) {
        out.push(el.innerText.trim().slice(0, 40));
      }
    }
  }
  return [...new Set(out)];
}
"""


def shot(page: Page, path) -> None:
    """Whole page at the window's width (Streamlit scrolls inside its own container)."""
    width = page.viewport_size["width"]
    height = page.evaluate("() => document.querySelector('[data-testid=\\'stMain\\']')?.scrollHeight || 1000")
    page.set_viewport_size({"width": width, "height": min(7000, max(1000, int(height)))})
    page.wait_for_timeout(1500)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": width, "height": 1000})


def quick_run_with_steps(page: Page, app_url: str, steps: int) -> None:
    """Train page, 10 clips per class, ``steps`` clicks on Step (the metrics and table appear)."""
    page.goto(f"{app_url}/train", timeout=TIMEOUT)
    wait_idle(page)
    for attempt in range(3):  # a click while the page redraws may not open the list
        page.locator(".st-key-train_quick").click()
        try:
            page.get_by_role("option", name="10 (quick run)").click(timeout=10_000)
            break
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
            if attempt == 2:
                raise
    wait_idle(page)
    for _ in range(steps):
        page.locator(".st-key-train_step button").first.click()
        wait_idle(page)
    page.locator(".st-key-train_curves .main-svg").first.wait_for(timeout=TIMEOUT)
    no_exception(page)


def test_run_table_fits_its_width(page: Page, app_url):
    quick_run_with_steps(page, app_url, 1)
    page.get_by_role("heading", name="Runs in this session").scroll_into_view_if_needed()
    grid = page.locator("[data-testid='stDataFrame'] .dvn-scroller").first
    grid.wait_for(timeout=TIMEOUT)
    overflow = grid.evaluate("el => el.scrollWidth - el.clientWidth")
    assert overflow <= 1, f"the runs table is {overflow} px wider than its box"


def test_nothing_is_cut_short_in_a_narrow_window(page: Page, app_url, artifacts):
    page.set_viewport_size({"width": NARROW, "height": 1000})
    quick_run_with_steps(page, app_url, 2)
    expect(page.get_by_test_id("stMetricValue").first).to_be_visible()
    cut = page.evaluate(TRUNCATED_JS)
    shot(page, artifacts / "narrow_train.png")
    assert not cut, f"Train at {NARROW} px cuts short: {cut}"

    page.goto(f"{app_url}/inspect", timeout=TIMEOUT)
    wait_idle(page)
    no_exception(page)
    cut = []
    if page.get_by_role("heading", name="Model card").count():  # a shipped checkpoint is open
        page.locator(".st-key-inspect_clip_probe .main-svg").first.wait_for(timeout=TIMEOUT)
        cut = page.evaluate(TRUNCATED_JS)
    shot(page, artifacts / "narrow_inspect.png")
    assert not cut, f"Inspect at {NARROW} px cuts short: {cut}"
