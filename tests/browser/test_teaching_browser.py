"""The teaching parts in a real browser: a copied link restores the view in a fresh browser,
every lesson loads its state and passes when followed as written, the step-by-step view runs
through every step (default sound and an upload), and the linked views zoom and hover together.

Run: ``pytest tests/browser/test_teaching_browser.py`` (Debian Chromium at /usr/bin/chromium;
fixtures from ``tests/browser/conftest.py``).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402

from browser_helpers import TIMEOUT, no_exception, screenshot, wait_idle  # noqa: E402

from diffres.lessons import LESSONS, Facts  # noqa: E402
from test_app_teaching import _model_facts  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.usefixtures("runs_dir")]

TRAIN_TIMEOUT = 420_000


def nav(page: Page, title: str) -> None:
    """Go to a page through the navigation (same session, as a learner clicks)."""
    page.get_by_test_id("stTopNavLink").filter(has_text=re.compile(re.escape(title) + "$")).first.click()
    wait_idle(page)


def slider_text(page: Page, key: str) -> str:
    return page.locator(f".st-key-{key} input[type='range']").first.get_attribute("aria-valuetext") or ""


def set_slider(page: Page, key: str, text: str, limit: int = 400) -> None:
    """Move a slider or select slider with the keyboard until it shows ``text``."""
    thumb = page.locator(f".st-key-{key} input[type='range']").first
    thumb.focus()
    for _ in range(limit):
        now = thumb.get_attribute("aria-valuetext") or ""
        if now == text:
            break
        try:
            thumb.press("ArrowRight" if float(text) > float(now) else "ArrowLeft")
        except ValueError:  # labels that are not numbers: walk up from the start
            at_end = thumb.get_attribute("value") == thumb.get_attribute("max")
            thumb.press("Home" if at_end else "ArrowRight")
    assert thumb.get_attribute("aria-valuetext") == text, (key, text, thumb.get_attribute("aria-valuetext"))
    wait_idle(page)


def choose_answer(page: Page, answer: str) -> None:
    page.locator(".st-key-lesson_answer").get_by_text(answer, exact=True).click()
    wait_idle(page)


def click(page: Page, key: str) -> None:
    page.locator(f".st-key-{key} button").first.click()
    wait_idle(page)


# ------------------------------------------------------------------ shareable links


def test_link_restores_rate_hop_and_sound_in_a_fresh_browser(page: Page, app_url, browser, browser_context_args):
    page.goto(f"{app_url}/spectrogram_lab", timeout=TIMEOUT)
    wait_idle(page)
    set_slider(page, "lab_hop", "12")
    page.locator(".st-key-sound_example").click()
    page.get_by_role("option", name="Siren", exact=True).click()
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Now using: Siren", timeout=TIMEOUT)
    wait_idle(page)
    nav(page, "Adaptive resolution")
    start = float(slider_text(page, "adapt_rate"))
    set_slider(page, "adapt_rate", f"{start - 0.1:.2f}".rstrip("0").rstrip("."))
    wanted = slider_text(page, "adapt_rate")
    page.get_by_role("button", name="Copy link").click()
    link = page.get_by_test_id("stCode").filter(has_text="http").first.inner_text().strip()
    query = parse_qs(urlsplit(link).query)
    assert query["lab_hop"] == ["12"] and query["sound_example"] == ["example:siren"]
    assert urlsplit(link).path.endswith("/adaptive_resolution") and float(query["adapt_rate"][0]) == float(wanted)
    assert parse_qs(urlsplit(page.url).query)["lab_hop"] == ["12"]  # the address bar follows too

    fresh = browser.new_context(**browser_context_args)
    other = fresh.new_page()
    try:
        other.goto(link, timeout=TIMEOUT)
        wait_idle(other)
        no_exception(other)
        expect(other.get_by_test_id("stSidebar")).to_contain_text("Now using: Siren", timeout=TIMEOUT)
        assert slider_text(other, "adapt_rate") == wanted
        nav(other, "Spectrogram lab")
        assert slider_text(other, "lab_hop") == "12"
        other.reload()
        wait_idle(other)
        assert slider_text(other, "lab_hop") == "12"  # a reload keeps them too
        expect(other.get_by_test_id("stSidebar")).to_contain_text("Now using: Siren", timeout=TIMEOUT)
    finally:
        fresh.close()


def test_bad_link_parameters_are_ignored_with_a_notice(page: Page, app_url):
    page.goto(f"{app_url}/spectrogram_lab?lab_hop=abc&lab_win=30&zzz=1", timeout=TIMEOUT)
    wait_idle(page)
    no_exception(page)
    expect(page.get_by_test_id("stAlertContentWarning").filter(has_text="ignored").first).to_contain_text("lab_hop=abc")
    assert slider_text(page, "lab_win") == "30" and slider_text(page, "lab_hop") == "10"


# ------------------------------------------------------------------ lessons


def _follow(page: Page, item) -> None:
    """Do what the lesson's "How" says, through the widgets."""
    if item.key == "training":
        page.locator(".st-key-train_play button").first.click()
        expect(page.locator(".st-key-lesson_banner")).to_contain_text("Got it", timeout=TRAIN_TIMEOUT)
        return
    if item.key == "rate_accuracy":
        page.get_by_role("tab", name="Validation set").click()
        wait_idle(page)
        click(page, "inspect_sweep")
        page.locator(".st-key-inspect_rate .js-plotly-plot").wait_for(timeout=TIMEOUT)
        best = page.evaluate("""() => {
            const gd = document.querySelector('.st-key-inspect_rate .js-plotly-plot');
            const t = gd.data.find(d => (d.mode || '').startsWith('lines'));
            const x = Array.from(t.x), y = Array.from(t.y);
            let b = -1, by = -1;
            x.forEach((r, i) => { if (Math.abs(r * 10 - Math.round(r * 10)) < 1e-6 && y[i] > by) { by = y[i]; b = r; } });
            return b; }""")
        choose_answer(page, f"{best:g}")
        return
    measured = _model_facts(item) if item.models else {}
    for key, value in item.solve(Facts(dict(item.settings), item.sound, np.zeros(1), 16000, measured)).items():
        if key == "answer":
            choose_answer(page, value)
        else:
            set_slider(page, key, str(value))


def test_every_lesson_loads_its_state_and_passes_when_followed(page: Page, app_url, artifacts):
    page.goto(f"{app_url}/lessons", timeout=TIMEOUT)
    wait_idle(page)
    for n, item in enumerate(LESSONS, start=1):
        if n > 1:
            nav(page, "Lessons")
        click(page, f"lesson_start_{item.key}")
        banner = page.locator(".st-key-lesson_banner")
        expect(banner).to_contain_text(f"Lesson {n} of {len(LESSONS)}", timeout=TIMEOUT)
        expect(banner).to_contain_text("Not yet")
        no_exception(page)
        _follow(page, item)
        expect(banner).to_contain_text("Got it", timeout=TIMEOUT)
        no_exception(page)
        screenshot(page, artifacts / f"lesson_{n}_{item.key}.png")
    nav(page, "Lessons")
    expect(page.get_by_test_id("stProgress")).to_contain_text(f"{len(LESSONS)} of {len(LESSONS)} done")


# ------------------------------------------------------------------ how DiffRes computes


def _run_through(page: Page) -> None:
    for step in range(2, 8):
        click(page, "steps_next")
        assert slider_text(page, "steps_step").startswith(f"{step}.")
        no_exception(page)
    expect(page.locator(".st-key-steps_next button").first).to_be_disabled()


def test_step_view_runs_through_every_step_on_the_default_sound_and_an_upload(page: Page, app_url, fixture_wav,
                                                                              artifacts):
    page.goto(f"{app_url}/diffres_steps", timeout=TIMEOUT)
    wait_idle(page)
    page.locator(".st-key-steps_chart .main-svg").first.wait_for(timeout=TIMEOUT)
    _run_through(page)
    screenshot(page, artifacts / "steps_default.png")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(fixture_wav))
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Now using: bursts.wav", timeout=TIMEOUT)
    wait_idle(page)
    click(page, "steps_play")  # the animated play-through, from step 1
    page.wait_for_function("() => (document.querySelector(\".st-key-steps_step input[type='range']\")"
                           "?.getAttribute('aria-valuetext') || '').startsWith('7.')", timeout=TIMEOUT)
    wait_idle(page)
    no_exception(page)
    expect(page.locator(".st-key-steps_play button").first).to_contain_text("Play through", timeout=TIMEOUT)
    for step in range(6, 0, -1):  # and back, one step at a time
        click(page, "steps_back")
        assert slider_text(page, "steps_step").startswith(f"{step}.")
        no_exception(page)
    screenshot(page, artifacts / "steps_upload.png")


# ------------------------------------------------------------------ linked views

_RANGE = "(key) => { const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`); return gd._fullLayout.xaxis.range; }"
_SHAPES = ("(key) => { const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);"
           " return (gd.layout.shapes || []).map(s => s.name || ''); }")


def test_linked_views_zoom_and_hover_together(page: Page, app_url):
    page.goto(f"{app_url}/adaptive_resolution", timeout=TIMEOUT)
    wait_idle(page)
    for key in ("adapt_main", "adapt_compare", "adapt_compact"):
        page.locator(f".st-key-{key} .main-svg").first.wait_for(timeout=TIMEOUT)
    page.wait_for_function("() => !!window.__diffresLinks", timeout=TIMEOUT)
    page.wait_for_timeout(800)  # the script binds new charts every 0.5 s
    before = page.evaluate(_RANGE, "adapt_compare")
    drag = page.locator(".st-key-adapt_main .nsewdrag").first  # the top row's drag area
    drag.scroll_into_view_if_needed()  # below the input chart: off the first screen
    box = drag.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=8)
    page.mouse.up()
    page.wait_for_function(f"() => ({_RANGE})('adapt_compare')[0] > {before[0] + 1e-6}", timeout=TIMEOUT)
    main, compare = page.evaluate(_RANGE, "adapt_main"), page.evaluate(_RANGE, "adapt_compare")
    assert main == pytest.approx(compare, abs=1e-6) and main[1] - main[0] < before[1] - before[0]
    # hovering a time figure draws the crosshair in the others; hovering the classifier's columns shades their time
    page.locator(".st-key-adapt_main .nsewdrag").nth(1).scroll_into_view_if_needed()
    spec = page.locator(".st-key-adapt_main .nsewdrag").nth(1).bounding_box()
    page.mouse.move(spec["x"] + spec["width"] * 0.5, spec["y"] + spec["height"] * 0.5)
    page.wait_for_function(f"() => ({_SHAPES})('adapt_compare').includes('diffres-crosshair')", timeout=TIMEOUT)
    page.locator(".st-key-adapt_compact .nsewdrag").first.scroll_into_view_if_needed()
    compact = page.locator(".st-key-adapt_compact .nsewdrag").first.bounding_box()
    page.mouse.move(compact["x"] + compact["width"] * 0.4, compact["y"] + compact["height"] * 0.5)
    page.wait_for_function(f"() => ({_SHAPES})('adapt_main').includes('diffres-span')", timeout=TIMEOUT)
    no_exception(page)
