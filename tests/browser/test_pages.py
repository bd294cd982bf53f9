"""End-to-end checks in a real browser: every page renders, uploads work, sliders redraw.

Run: ``pytest tests/browser`` (needs Debian Chromium at /usr/bin/chromium; never
``playwright install``).  Screenshots of each page go to /tmp/diffres_browser.
"""

from __future__ import annotations

import pytest

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402

from browser_helpers import TIMEOUT, no_exception, screenshot, wait_idle  # noqa: E402

# A deep link first: on a fresh server Streamlit's legacy pages/ mode would run the page without app.py.
PAGES = {
    "adaptive_resolution": "adaptive_resolution",
    "home": "",
    "lessons": "lessons",
    "spectrogram_lab": "spectrogram_lab",
    "window_tradeoff": "window_tradeoff",
    "diffres_steps": "diffres_steps",
    "train": "train",
    "inspect": "inspect",
}
SIGNATURE_JS = """
(key) => {
    const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
    if (!gd || !gd.data) return '';
    const part = (a) => {
        if (!a) return '-';
        if (a.bdata) return `${a.dtype}:${a.shape || ''}:${a.bdata.length}:${a.bdata.slice(-24)}`;  // plotly typed array
        let s = 0;
        for (let i = 0; i < a.length; i++) { const v = Number(a[i]); if (isFinite(v)) s += v; }
        return `${a.length}:${s.toFixed(4)}`;
    };
    return gd.data.map(t => `${t.type}|${part(t.x)}|${part(t.y)}`).join(';');
}
"""


def open_page(page: Page, url: str, path: str) -> None:
    page.goto(f"{url}/{path}", timeout=TIMEOUT)
    wait_idle(page)


def chart_signature(page: Page, key: str) -> str:
    """A string that changes when the chart's data changes (plotly's ``gd.data`` of the chart with ``key``)."""
    return page.evaluate(SIGNATURE_JS, key)


def wait_chart_changed(page: Page, key: str, before: str) -> None:
    page.wait_for_function(f"([key, before]) => ({SIGNATURE_JS.strip()})(key) !== before", arg=[key, before],
                           timeout=TIMEOUT)


def move_slider_until_redrawn(page: Page, slider_key: str, chart_key: str, presses: int = 1) -> str:
    """Press ArrowRight on the slider ``slider_key`` and wait until the chart ``chart_key`` has
    new data and the app is idle; returns the chart's signature from before."""
    before = chart_signature(page, chart_key)
    assert before
    thumb = page.locator(f".st-key-{slider_key} input[type='range']")
    thumb.focus()
    for _ in range(presses):
        thumb.press("ArrowRight")
    wait_chart_changed(page, chart_key, before)
    wait_idle(page)
    return before


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_default_example(page: Page, app_url, artifacts, name):
    from urllib.parse import urlsplit

    # Nothing is fetched from another host (the machine may be offline); plotly.js comes from
    # the app's server. One exception, Streamlit's: on a browser session's first page it shows
    # the page's Material icon as the tab icon (fetched from Google's font server) until the
    # app's own page_icon, a local file, arrives.
    favicon_probe = "https://fonts.gstatic.com/s/i/short-term/release/materialsymbolsrounded/"
    outside = []
    page.on("request", lambda r: urlsplit(r.url).hostname not in (None, "127.0.0.1", "localhost")
            and not r.url.startswith(("data:", "blob:", favicon_probe)) and outside.append(r.url))
    open_page(page, app_url, PAGES[name])
    no_exception(page)
    expect(page.get_by_text("Now using:")).to_be_visible()  # the shared sidebar from app.py is there
    expect(page.get_by_test_id("stTopNavLink")).to_have_count(len(PAGES))
    if name in ("home", "spectrogram_lab", "adaptive_resolution", "window_tradeoff", "diffres_steps"):
        page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=TIMEOUT)
    screenshot(page, artifacts / f"page_{name}.png")
    assert not outside, outside


def test_upload_then_adaptive_slider_redraws(page: Page, app_url, artifacts, fixture_wav):
    open_page(page, app_url, "adaptive_resolution")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(fixture_wav))
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Now using: bursts.wav", timeout=TIMEOUT)
    wait_idle(page)
    no_exception(page)
    page.locator(".st-key-adapt_main .js-plotly-plot").wait_for(timeout=TIMEOUT)
    before = move_slider_until_redrawn(page, "adapt_rate", "adapt_main", presses=2)
    no_exception(page)
    assert chart_signature(page, "adapt_main") != before
    screenshot(page, artifacts / "adaptive_after_upload.png")


def test_a_changed_chart_is_redrawn_in_place_once(page: Page, app_url):
    """ui/view.py's charts: a new figure under the same key is drawn into the same plot element,
    once (Streamlit's own plotly element replaced the element and drew it twice); a chart whose
    figure did not change is not drawn at all.  On a rate change: the merged rows, the
    classifier's view and the fixed front-ends change, the input rows do not."""
    open_page(page, app_url, "adaptive_resolution")
    page.locator(".st-key-adapt_compare .js-plotly-plot .main-svg").first.wait_for(timeout=TIMEOUT)
    page.evaluate("""() => { window.__draws = {}; for (const gd of document.querySelectorAll('.js-plotly-plot')) {
        const key = Array.from(gd.closest('[class*="st-key-"]').classList).find(c => c.startsWith('st-key-')).slice(7);
        gd.__probe = key; window.__draws[key] = 0; gd.on('plotly_afterplot', () => { window.__draws[key] += 1; }); } }""")
    move_slider_until_redrawn(page, "adapt_rate", "adapt_main")
    page.wait_for_timeout(500)
    same = page.evaluate("() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => gd.__probe || 'replaced')")
    assert same == ["adapt_input", "adapt_main", "adapt_compact", "adapt_compare"]
    assert page.evaluate("() => window.__draws") == {"adapt_input": 0, "adapt_main": 1, "adapt_compact": 1,
                                                     "adapt_compare": 1}
    no_exception(page)


def test_charts_follow_their_container_width(page: Page, app_url):
    """Collapsing the sidebar widens the main column; the plot follows it (no window resize)."""
    open_page(page, app_url, "spectrogram_lab")
    gd = page.locator(".st-key-lab_chart .js-plotly-plot")
    gd.locator(".main-svg").first.wait_for(timeout=TIMEOUT)
    width = "() => document.querySelector('.st-key-lab_chart .js-plotly-plot')._fullLayout.width"
    narrow = page.evaluate(width)
    page.get_by_test_id("stSidebar").hover()
    page.get_by_test_id("stSidebarCollapseButton").locator("button").click()
    page.wait_for_function(f"() => ({width})() > {narrow + 100}", timeout=TIMEOUT)
    page.set_viewport_size({"width": 900, "height": 1000})
    page.wait_for_function(f"() => ({width})() < 900", timeout=TIMEOUT)
    no_exception(page)


def test_upload_on_lab_and_hop_slider_redraws(page: Page, app_url, fixture_wav):
    open_page(page, app_url, "spectrogram_lab")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(fixture_wav))
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Now using: bursts.wav", timeout=TIMEOUT)
    wait_idle(page)
    page.locator(".st-key-lab_chart .js-plotly-plot").wait_for(timeout=TIMEOUT)
    move_slider_until_redrawn(page, "lab_hop", "lab_chart")
    no_exception(page)


def test_corrupt_upload_shows_error(page: Page, app_url, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage that is not audio")
    open_page(page, app_url, "spectrogram_lab")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(bad))
    expect(page.get_by_test_id("stAlertContentError").first).to_be_visible(timeout=TIMEOUT)
    wait_idle(page)
    no_exception(page)


def test_an_upload_over_the_limit_gets_a_readable_message_not_a_413(page: Page, app_url, tmp_path):
    """One limit (server.maxUploadSize): the widget refuses a larger file in the browser with
    its own message; the server never answers it with a bare "AxiosError 413"."""
    import re

    big = tmp_path / "big.wav"
    with big.open("wb") as f:
        f.truncate(51 * 1024 * 1024)  # over the 50 MB of .streamlit/config.toml
    open_page(page, app_url, "spectrogram_lab")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(big))
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar).to_contain_text(re.compile(r"File must be 50(\.0)? ?MB or smaller"), timeout=TIMEOUT)
    wait_idle(page)
    assert "413" not in sidebar.inner_text() and "AxiosError" not in page.content()
    no_exception(page)


def test_microphone_recording_becomes_the_sound(page: Page, app_url):
    """Chromium's fake capture device plays the fixture WAV into st.audio_input (16 kHz mono)."""
    open_page(page, app_url, "spectrogram_lab")
    mic = page.get_by_test_id("stAudioInput")
    mic.get_by_role("button", name="Record", exact=True).click()
    page.wait_for_timeout(1500)
    mic.get_by_role("button", name="Stop recording", exact=True).click()
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Now using: Microphone recording", timeout=TIMEOUT)
    wait_idle(page)
    no_exception(page)
    page.locator(".st-key-lab_chart .js-plotly-plot").wait_for(timeout=TIMEOUT)


@pytest.mark.parametrize("label, suffix, magic", [("PNG figure", ".png", b"\x89PNG"),
                                                   ("Importance (CSV)", "_importance.csv", b"frame,start_s"),
                                                   ("Bin edges (CSV)", "_bin_edges.csv", b"output_frame,"),
                                                   ("Merged spectrogram (NPZ)", ".npz", b"PK")])
def test_adaptive_downloads(page: Page, app_url, label, suffix, magic):
    """Download buttons build their files on click (deferred); check each arrives and is what it says."""
    open_page(page, app_url, "adaptive_resolution")
    button = page.get_by_role("button", name=label)
    with page.expect_download(timeout=TIMEOUT) as info:
        button.click()
    download = info.value
    assert download.suggested_filename.endswith(suffix)
    data = open(download.path(), "rb").read()
    assert data.startswith(magic) and len(data) > 100
    no_exception(page)


_CUT = """() => [...document.querySelectorAll("[data-testid='stMetricValue'] > div, [data-testid='stMetricDelta'] > div, "
    + "[data-testid='stMetricLabel'] p, [data-testid='stDownloadButton'] button p")]
    .filter(el => el.offsetParent !== null && el.scrollWidth > el.clientWidth + 1).map(el => el.textContent)"""


@pytest.mark.parametrize("width", [1500, 820])
@pytest.mark.parametrize("name", ["home", "spectrogram_lab", "adaptive_resolution", "window_tradeoff"])
def test_metric_values_are_not_cut_off(page: Page, app_url, artifacts, name, width):
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(f"{app_url}/{'' if name == 'home' else name}", timeout=TIMEOUT)
    wait_idle(page)
    page.locator("[data-testid='stMetricValue']").first.wait_for(timeout=TIMEOUT)
    cut = page.evaluate(_CUT)
    if cut:
        page.screenshot(path=str(artifacts / f"cut_{name}_{width}.png"))
    assert not cut, f"metric values cut off at {width} px on {name}: {cut}"


def test_a_bad_upload_is_said_once(page: Page, app_url, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"this is not audio at all")
    page.goto(f"{app_url}/spectrogram_lab", timeout=TIMEOUT)
    wait_idle(page)
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(bad))
    expect(page.get_by_text("Could not use 'broken.wav'")).to_have_count(1, timeout=TIMEOUT)
    no_exception(page)
