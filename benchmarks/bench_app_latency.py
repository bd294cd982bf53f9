"""How fast the app answers, in Debian Chromium: controls, page loads and the Train page.

Every figure is the time from the action (a key press on a slider, a click, a navigation) to
the page finished: the app's script state back at ``notRunning`` after a run that started
after the action, and every chart drawn, with neither a further run nor a change inside a
plotly chart for 250 ms (MutationObservers on the script state and on the charts record each
change in the page's own clock).  Streamlit reports ``notRunning`` before plotly.js has drawn
the last chart, so the rows marked "(script only)" give the earlier time too.  Medians of
``--repeats`` tries.

Measures (a 10 s clip, the alarm clock looped, uploaded in the sidebar):
- the reduction-rate slider on Adaptive resolution at a 10 ms and a 1 ms hop (and at 10 ms
  with the fixed front-ends' comparison closed; it is open at first);
- the hop slider in the Spectrogram lab;
- every page's warm load (a fresh page load once the server has computed it once; ``--repeats``
  loads of each page, round-robin; "slowest" is the page with the highest median);
- the Train page: Play to the first point of the curves, and the Pause / Play clicks while
  the run trains;
- with ``--sessions 4``: the same in one session while two other sessions train and a third
  browses, and the ratio to the single-session figures measured first in the same run.

Targets (issue 9): rate slider <= 0.40 s at 10 ms and <= 1.0 s at 1 ms, lab hop <= 0.40 s,
warm loads <= 2.5 s, a click while training <= 0.3 s, first curve point <= 5 s; with four
sessions, within 2x.

With ``--chart-ab``: the 10 ms rate slider with the app's charts (drawn in place, one draw per
change) against ``st.plotly_chart`` (remounted and drawn twice per change), on two servers in
alternating blocks.

Run: ``python benchmarks/bench_app_latency.py [--repeats 5] [--sessions 4] [--chart-ab] [--json]``
(``--browser`` is accepted for the old invocation; the browser is the only mode).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

CLIP_SECONDS = 10.0
PAGES = ["", "spectrogram_lab", "adaptive_resolution", "diffres_steps", "window_tradeoff", "lessons", "train", "inspect"]
TARGETS = {
    "adaptive rate, 10 ms hop": 0.40,
    "adaptive rate, 1 ms hop": 1.0,
    "lab hop": 0.40,
    "warm page load (slowest)": 2.5,
    "train: Pause click while training": 0.3,
    "train: Play to first curve point": 5.0,
}
TIMEOUT = 180_000

# installed in every page before the app's own scripts (a page load's first run is recorded too)
_OBSERVE = """window.__st = [];
new MutationObserver((changes) => { for (const m of changes) { if (m.target.dataset && m.target.dataset.testid === 'stApp')
  window.__st.push([performance.now(), m.target.getAttribute('data-test-script-state')]); } })
  .observe(document, {attributes: true, subtree: true, attributeFilter: ['data-test-script-state']});
window.__draw = [];
new MutationObserver((changes) => { for (const m of changes) { const el = m.target.nodeType === 1 ? m.target
  : m.target.parentElement; if (el && el.closest && el.closest('.js-plotly-plot')) { window.__draw.push(performance.now());
  break; } } }).observe(document, {attributes: true, childList: true, subtree: true, characterData: true});"""
# [last state change, last chart change] after t0, once the app is idle and both have been quiet for `quiet` ms
_FINISHED = """([t0, quiet]) => { const app = document.querySelector("[data-testid='stApp']");
  if (app.getAttribute('data-test-script-state') === 'running') return false;
  const after = window.__st.filter(e => e[0] >= t0); if (!after.length) return false;
  const last = after[after.length - 1];
  if (last[1] === 'running') return false;
  const drawn = window.__draw.filter(t => t >= t0); const end = Math.max(last[0], drawn.length ? drawn[drawn.length - 1] : 0);
  return performance.now() - end > quiet ? [last[0], end] : false; }"""
_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
_CURVE_POINT = """() => { const gd = document.querySelector('.st-key-train_curves .js-plotly-plot');
  return !!(gd && gd.calcdata && gd.calcdata.some(cd => cd.length > 0 && Number.isFinite(cd[0].y))); }"""


def ten_second_wav() -> bytes:
    """10 s at 16 kHz: the alarm clock example looped, so there are events and gaps."""
    from diffres.examples import load_example

    x = load_example("alarm_clock")
    x = np.tile(x, int(np.ceil(CLIP_SECONDS * 16000 / len(x))))[: int(CLIP_SECONDS * 16000)]
    buf = io.BytesIO()
    sf.write(buf, x, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def start_server(runs_dir: str, charts: str = "in_place") -> tuple[subprocess.Popen, str]:
    """A Streamlit server of the app; ``charts="streamlit"`` draws with ``st.plotly_chart`` (ui/view.py)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DIFFRES_RUNS_DIR": runs_dir, "DIFFRES_CHARTS": charts}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the Streamlit server did not start")


def finished_after(page, action: Callable[[], None], quiet_ms: int = 250) -> float:
    """Seconds from ``action`` to the page finished, charts drawn (see the module docstring)."""
    return finished_both(page, action, quiet_ms)[1]


def finished_both(page, action: Callable[[], None], quiet_ms: int = 250) -> tuple[float, float]:
    """Seconds from ``action`` to (the script's run finished, the page finished)."""
    t0 = page.evaluate("() => performance.now()")
    action()
    done = page.wait_for_function(_FINISHED, arg=[t0, quiet_ms], timeout=TIMEOUT, polling=10)
    script, drawn = done.json_value()
    return (script - t0) / 1000.0, (drawn - t0) / 1000.0


def load(page, url: str) -> float:
    """Seconds from navigation to the page finished (its script's first run done, charts drawn)."""
    t0_wall = time.time()
    page.goto(url, timeout=TIMEOUT)
    done = page.wait_for_function(_FINISHED, arg=[0, 250], timeout=TIMEOUT, polling=10)
    return float(page.evaluate("() => performance.timeOrigin")) / 1000.0 + done.json_value()[1] / 1000.0 - t0_wall


def upload(page, url: str, wav_path: Path) -> None:
    page.goto(f"{url}/adaptive_resolution", timeout=TIMEOUT)
    page.wait_for_timeout(500)
    page.wait_for_selector(_IDLE, state="attached", timeout=TIMEOUT)
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(wav_path))
    page.get_by_test_id("stSidebar").get_by_text(wav_path.name).first.wait_for(timeout=TIMEOUT)
    page.wait_for_timeout(500)
    page.wait_for_selector(_IDLE, state="attached", timeout=TIMEOUT)


def slider_moves(page, key: str, repeats: int, name: str) -> dict[str, list[float]]:
    """``{name: page finished, name (script only): script finished}`` for ``repeats`` moves."""
    thumb = page.locator(f".st-key-{key} input[type='range']")
    out: dict[str, list[float]] = {name: [], f"{name} (script only)": []}
    for k in range(repeats + 1):  # the first move warms the caches of the new neighbour value
        thumb.focus()
        script, drawn = finished_both(page, lambda k=k: thumb.press("ArrowRight" if k % 2 == 0 else "ArrowLeft"))
        if k:
            out[name].append(drawn)
            out[f"{name} (script only)"].append(script)
    return out


def controls(page, url: str, repeats: int) -> dict[str, list[float]]:
    """Adaptive rate at 10 ms and 1 ms, and the lab's hop slider (the clip is uploaded)."""
    res = slider_moves(page, "adapt_rate", repeats, "adaptive rate, 10 ms hop")
    # the fixed front-ends' comparison (open at first) runs only while its expander is open
    toggle = page.locator(".st-key-adapt_compare_open summary")
    finished_after(page, toggle.click, quiet_ms=400)
    res.update(slider_moves(page, "adapt_rate", repeats, "adaptive rate, 10 ms, comparison closed"))
    finished_after(page, toggle.click, quiet_ms=400)
    hop = page.locator(".st-key-adapt_hop input[type='range']")
    for _ in range(3):  # 10 -> 5 -> 2 -> 1 ms
        hop.focus()
        finished_after(page, lambda: hop.press("ArrowLeft"), quiet_ms=400)
    res.update(slider_moves(page, "adapt_rate", repeats, "adaptive rate, 1 ms hop"))
    for _ in range(3):
        hop.focus()
        finished_after(page, lambda: hop.press("ArrowRight"), quiet_ms=400)
    page.goto(f"{url}/spectrogram_lab", timeout=TIMEOUT)
    page.wait_for_timeout(500)
    page.wait_for_selector(_IDLE, state="attached", timeout=TIMEOUT)
    res.update(slider_moves(page, "lab_hop", repeats, "lab hop"))
    return res


def page_loads(page, url: str, repeats: int, cold: bool = True) -> dict[str, list[float]]:
    """Every page's warm load, ``repeats`` times each (after one cold load each when ``cold``)."""
    if cold:
        for name in PAGES:  # the server computes and caches
            load(page, f"{url}/{name}")
    out: dict[str, list[float]] = {name or "home": [] for name in PAGES}
    for _ in range(repeats):  # round-robin, so a slow spell of the machine does not hit one page only
        for name in PAGES:
            out[name or "home"].append(load(page, f"{url}/{name}"))
    return out


def slowest_page(loads: dict[str, list[float]]) -> list[float]:
    """The loads of the page with the highest median load."""
    return loads[max(loads, key=lambda k: statistics.median(loads[k]))]


def play_button(page):
    return page.locator(".st-key-train_play button").first


def start_training(page, url: str, epochs: int = 30) -> float:
    """Open Train with ``epochs`` planned, press Play; seconds to the first curve point."""
    page.goto(f"{url}/train", timeout=TIMEOUT)
    page.wait_for_timeout(500)
    page.wait_for_selector(_IDLE, state="attached", timeout=TIMEOUT)
    box = page.locator(".st-key-train_epochs input")
    box.fill(str(epochs))
    box.press("Enter")
    page.wait_for_timeout(500)
    page.wait_for_selector(_IDLE, state="attached", timeout=TIMEOUT)
    t0 = time.perf_counter()
    play_button(page).click()
    page.wait_for_function(_CURVE_POINT, timeout=TIMEOUT, polling=20)
    return time.perf_counter() - t0


def clicks_while_training(page, repeats: int) -> dict[str, list[float]]:
    """Pause (answered: the button reads Play) and Play again (it reads Pause), ``repeats`` times."""
    out: dict[str, list[float]] = {"train: Pause click while training": [], "train: Play click (resume)": []}
    for _ in range(repeats):
        page.wait_for_timeout(1500)  # training runs
        for label, then in (("train: Pause click while training", "Play"), ("train: Play click (resume)", "Pause")):
            t0 = time.perf_counter()
            play_button(page).click()
            page.locator(".st-key-train_play button").filter(has_text=then).first.wait_for(timeout=TIMEOUT)
            out[label].append(time.perf_counter() - t0)
            if then == "Play":
                page.wait_for_timeout(500)
    return out


def new_page(browser, width: int = 1500, height: int = 1000):
    context = browser.new_context(viewport={"width": width, "height": height})
    context.add_init_script(_OBSERVE)
    return context.new_page()


def single_session(browser, url: str, wav_path: Path, repeats: int) -> dict[str, list[float]]:
    page = new_page(browser)
    res: dict[str, list[float]] = {}
    loads = page_loads(page, url, repeats)
    res.update({f"warm load: {k}": v for k, v in loads.items()})
    res["warm page load (slowest)"] = slowest_page(loads)
    upload(page, url, wav_path)
    res.update(controls(page, url, repeats))
    res["train: Play to first curve point"] = [start_training(page, url)]
    res.update(clicks_while_training(page, repeats))
    play_button(page).click()  # pause: this session's run must not load the next part
    page.context.close()
    return res


def crowded(browser, url: str, wav_path: Path, repeats: int) -> dict[str, list[float]]:
    """The measuring session while two sessions train and one browses (an upload, page switches)."""
    others = [new_page(browser, 1300, 900) for _ in range(3)]
    for trainer in others[:2]:
        start_training(trainer, url)
    browsing = others[2]
    upload(browsing, url, wav_path)
    page = new_page(browser)
    upload(page, url, wav_path)
    res = controls(page, url, repeats)
    loads = page_loads(page, url, repeats, cold=False)
    res["warm page load (slowest)"] = slowest_page(loads)
    res["train: Play to first curve point"] = [start_training(page, url)]
    res.update(clicks_while_training(page, repeats))
    for p in [*others, page]:
        p.context.close()
    return res


def chart_elements_side_by_side(browser, wav_path: Path, tmp: str, repeats: int, blocks: int = 3) -> dict[str, list[float]]:
    """The 10 ms rate slider with the app's in-place charts and with ``st.plotly_chart``: two
    servers, alternating blocks of ``repeats`` moves, so both see the same machine."""
    names = {"in_place": "rate 10 ms: in-place charts", "streamlit": "rate 10 ms: st.plotly_chart"}
    servers = {mode: start_server(str(Path(tmp) / f"runs_{mode}"), charts=mode) for mode in names}
    out: dict[str, list[float]] = {name: [] for name in names.values()}
    try:
        pages = {}
        for mode, (_, url) in servers.items():
            pages[mode] = new_page(browser)
            upload(pages[mode], url, wav_path)
        for _ in range(blocks):
            for mode, page in pages.items():
                out[names[mode]] += slider_moves(page, "adapt_rate", repeats, "x")["x"]
        for page in pages.values():
            page.context.close()
    finally:
        for proc, _ in servers.values():
            proc.kill()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sessions", type=int, choices=(1, 4), default=1)
    parser.add_argument("--browser", action="store_true", help="accepted for compatibility (always a browser)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--chart-ab", action="store_true",
                        help="also time the 10 ms rate slider with st.plotly_chart against the in-place charts")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright
    import plotly
    import streamlit
    import torch

    print(f"python {platform.python_version()}, torch {torch.__version__}, streamlit {streamlit.__version__}, "
          f"plotly {plotly.__version__}; {os.cpu_count()} cores; load average before: "
          + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    with tempfile.TemporaryDirectory() as tmp:
        wav_path = Path(tmp) / "ten_seconds.wav"
        wav_path.write_bytes(ten_second_wav())
        proc, url = start_server(str(Path(tmp) / "runs"))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                            args=["--headless", "--no-sandbox", "--disable-gpu",
                                                  "--disable-background-networking", "--disable-component-update"])
                single = single_session(browser, url, wav_path, args.repeats)
                many = crowded(browser, url, wav_path, args.repeats) if args.sessions == 4 else {}
                proc.terminate()
                ab = chart_elements_side_by_side(browser, wav_path, tmp, args.repeats) if args.chart_ab else {}
                browser.close()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    print("load average after: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    head = f"{'measure':40s} {'median s':>9s} {'max s':>7s} {'target':>7s} {'met':>4s}"
    if many:
        head += f" {'4 sessions':>11s} {'ratio':>6s} {'<=2x':>5s}"
    print("\n" + head)
    rows = {}
    for name, values in single.items():
        med = statistics.median(values)
        target = TARGETS.get(name)
        line = f"{name:40s} {med:9.3f} {max(values):7.3f} " + (
            f"{target:7.2f} {'yes' if med <= target else 'NO':>4s}" if target else f"{'':7s} {'':4s}")
        row = {"median_s": med, "max_s": max(values), "n": len(values), "target_s": target}
        if many and name in many:
            m4 = statistics.median(many[name])
            line += f" {m4:11.3f} {m4 / med:6.2f} {'yes' if m4 <= 2 * med else 'NO':>5s}"
            row.update({"four_sessions_median_s": m4, "ratio": m4 / med})
        rows[name] = row
        print(line)
    if ab:
        (before, b), (after, a) = sorted(ab.items(), key=lambda kv: "plotly_chart" not in kv[0])
        print(f"\nside by side, alternating blocks (n = {len(a)} each): {after} {statistics.median(a):.3f} s, "
              f"{before} {statistics.median(b):.3f} s, ratio {statistics.median(a) / statistics.median(b):.2f}")
        rows.update({k: {"median_s": statistics.median(v), "n": len(v)} for k, v in ab.items()})
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
