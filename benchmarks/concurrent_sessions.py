"""Four browser sessions on one app server for a while: two training, two browsing.

Starts ``streamlit run app.py`` cold (so the first page loads race each other, as when the
pandas partial-import traceback was seen) and opens four Chromium tabs at once:

- two sessions on the Train page press Play on a quick built-in run and keep training
  (pressing Play again whenever a run finishes, so the server trains all along);
- two sessions walk the pages (Home, Spectrogram lab, Adaptive resolution, Inspect) in a
  loop, uploading a sound now and then.

Every few seconds it samples the server's memory (RSS of the process tree) and scans each
tab for a Streamlit exception box, a traceback, the app's "unexpected error" sentence or an
error toast.  Figures (issue 11): 0 errors, bounded memory (the last third of the run may not
grow past the first third's peak by more than ``--growth-mb``).

Run: ``python benchmarks/concurrent_sessions.py [--minutes 10] [--growth-mb 300]``
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

PAGES = ["", "spectrogram_lab", "adaptive_resolution", "inspect"]
BAD_TEXT = ("Traceback", "This page stopped on an unexpected error", "partially initialized", "AxiosError")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss_mb(pid: int) -> float:
    """RSS of ``pid`` and its children, MB."""
    pids, total = [pid], 0.0
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
    pids += [int(p) for p in out]
    for p in pids:
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except OSError:
            pass
    return total


def scan(page, who: str, errors: list[str]) -> None:
    try:
        if page.locator("[data-testid='stException']").count():
            errors.append(f"{who}: exception box: {page.locator('[data-testid=stException]').first.inner_text()[:200]}")
        text = page.inner_text("body", timeout=10000)
    except Exception:
        return
    for bad in BAD_TEXT:
        if bad in text:
            errors.append(f"{who}: {bad!r} on the page")


def trainer_session(browser, url: str, who: str, stop: threading.Event, errors: list[str], stats: dict) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/train", timeout=180000)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", state="attached",
                           timeout=180000)
    epochs = page.locator(".st-key-train_epochs input")  # one epoch a run: short runs, many of them
    epochs.fill("1", timeout=60000)
    epochs.press("Enter")
    page.wait_for_timeout(2000)
    while not stop.is_set():
        button = page.locator(".st-key-train_play button").first  # the page may show a lesson's Play too
        label = button.inner_text(timeout=30000)
        if "Finished" in label:
            page.locator(".st-key-train_reset button").first.click()
            stats[who] = stats.get(who, 0) + 1
        elif "Play" in label:
            button.click()
        page.wait_for_timeout(5000)
        scan(page, who, errors)
    page.close()


def browsing_session(browser, url: str, who: str, wav: Path, stop: threading.Event, errors: list[str],
                     stats: dict) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    k = 0
    while not stop.is_set():
        page.goto(f"{url}/{PAGES[k % len(PAGES)]}", timeout=180000)
        page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", state="attached",
                               timeout=180000)
        if k % 3 == 1:
            page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(str(wav))
            page.wait_for_timeout(4000)
        page.wait_for_timeout(3000)
        scan(page, who, errors)
        stats[who] = stats.get(who, 0) + 1
        k += 1
    page.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--growth-mb", type=float, default=300.0, help="allowed growth of the last third over the first")
    args = ap.parse_args()
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} "
          "(a shared machine: timings are noisy)", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="diffres-sessions-"))
    wav = tmp / "bursts.wav"
    t = np.arange(3 * 22050) / 22050
    sf.write(wav, (0.4 * np.sin(2 * np.pi * 880 * t) * ((t % 0.5) < 0.08)).astype(np.float32), 22050)
    port = free_port()
    env = dict(os.environ, DIFFRES_RUNS_DIR=str(tmp / "runs"))
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                               "--server.port", str(port), "--server.fileWatcherType", "none"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(iter(server.stdout.readline, "")), daemon=True).start()  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180  # the port opens before any script has run: the first page loads still race
    while time.time() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    else:
        print("the server did not open its port within 180 s")
        server.kill()
        return 2
    errors: list[str] = []
    stats: dict[str, int] = {}
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    sessions = [
        (trainer_session, "train-1", ()),
        (trainer_session, "train-2", ()),
        (browsing_session, "browse-1", (wav,)),
        (browsing_session, "browse-2", (wav,)),
    ]
    jobs = [threading.Thread(target=_session, args=(fn, url, who, extra, stop, errors, stats)) for fn, who, extra in
            sessions]
    t0 = time.time()
    try:
        for j in jobs:  # all four at once, on a cold server
            j.start()
        while time.time() - t0 < args.minutes * 60:
            samples.append((time.time() - t0, tree_rss_mb(server.pid)))
            print(f"{samples[-1][0]:6.0f} s  server {samples[-1][1]:6.0f} MB  errors {len(errors)}  {stats}",
                  flush=True)
            time.sleep(15)
        stop.set()
        for j in jobs:
            j.join(timeout=180)
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=30)
    server_errors = [line for line in log if "Traceback" in line or "partially initialized" in line]
    third = max(1, len(samples) // 3)
    first, last = max(m for _, m in samples[:third]), max(m for _, m in samples[-third:])
    print(f"\n{args.minutes:g} min, 4 sessions (2 training): {len(errors)} errors on pages, "
          f"{len(server_errors)} tracebacks in the server log; server memory peak {max(m for _, m in samples):.0f} MB, "
          f"first third {first:.0f} MB, last third {last:.0f} MB (growth {last - first:+.0f} MB, "
          f"allowed {args.growth_mb:.0f}); rounds: {stats}; load average {os.getloadavg()[0]:.1f}")
    for e in (errors + server_errors)[:20]:
        print("  ", e.strip()[:300])
    return 0 if not errors and not server_errors and last - first <= args.growth_mb else 1


def _session(fn, url: str, who: str, extra: tuple, stop: threading.Event, errors: list[str], stats: dict) -> None:
    """One session in its own thread with its own Playwright and Chromium (Playwright's sync
    API is bound to the thread that started it); a crash of the driver, not of the app, is
    reported as such."""
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
            try:
                fn(browser, url, who, *extra, stop, errors, stats)
            finally:
                browser.close()
    except Exception as exc:
        errors.append(f"driver of {who} stopped: {type(exc).__name__}: {str(exc)[:200]}")


if __name__ == "__main__":
    sys.exit(main())
