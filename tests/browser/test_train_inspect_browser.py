"""Train and Inspect in a real browser: train the events set for three epochs, pause and resume
while it trains (click latency), kill its training process and continue from the checkpoint,
then open the run on the Inspect page and see its confusion matrix.

Run: ``pytest tests/browser/test_train_inspect_browser.py`` (Debian Chromium at
/usr/bin/chromium; fixtures from ``tests/browser/conftest.py``).  Screenshots and the
measured latencies go to /tmp/diffres_browser.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402

from browser_helpers import TIMEOUT, screenshot, wait_idle  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.usefixtures("runs_dir")]

TRAIN_TIMEOUT = 420_000


def play_button(page: Page):
    # (Streamlit 1.67 renders two button nodes inside a keyed button's container; the first is the visible one)
    return page.locator(".st-key-train_play button").first


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _server_pid(app_url: str) -> int:
    port = app_url.rsplit(":", 1)[1]
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(args) and port.encode() in args:
            return int(cmdline.parent.name)
    raise AssertionError(f"no Streamlit server on port {port}")


def _training_processes(app_url: str) -> list[int]:
    """The server's training processes: descendants at ui.runs.WORKER_NICENESS."""
    from ui.runs import WORKER_NICENESS

    out = []
    for pid in _descendants(_server_pid(app_url)):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[16]) == WORKER_NICENESS and fields[0] != "Z":  # field 19 of stat: nice
            out.append(pid)
    return out


def test_train_one_epoch_then_inspect_confusion(page: Page, app_url, artifacts, runs_dir):
    page.goto(f"{app_url}/train", timeout=TIMEOUT)
    wait_idle(page)
    expect(page.get_by_role("heading", name="Train")).to_be_visible()
    epochs = page.locator(".st-key-train_epochs input")
    epochs.fill("3")  # long enough to pause, resume and kill its process before it ends
    epochs.press("Enter")
    wait_idle(page)
    expect(play_button(page)).to_contain_text("Play")

    play_button(page).click()
    expect(play_button(page)).to_contain_text("Pause", timeout=TIMEOUT)  # data prepared, training
    page.locator(".st-key-train_curves .main-svg").first.wait_for(timeout=TIMEOUT)
    page.wait_for_timeout(3000)  # let a few chunks run

    # click latency while training: Pause must answer quickly, then resume
    t0 = time.perf_counter()
    play_button(page).click()
    expect(play_button(page)).to_contain_text("Play", timeout=TIMEOUT)
    pause_latency = time.perf_counter() - t0
    wait_idle(page)  # the button redraws before the live view: read the step once the rerun is done
    step_text = page.locator("[data-testid='stMetricValue']").nth(1).inner_text()
    page.wait_for_timeout(1500)
    assert page.locator("[data-testid='stMetricValue']").nth(1).inner_text() == step_text, "paused training moved on"
    t0 = time.perf_counter()
    play_button(page).click()
    expect(play_button(page)).to_contain_text("Pause", timeout=TIMEOUT)
    play_latency = time.perf_counter() - t0
    screenshot(page, artifacts / "train_running.png", max_height=7000)

    # the run trains in a process of its own, below the server, at a lower priority
    trainers = _training_processes(app_url)
    assert len(trainers) == 1, trainers
    # a training process that dies (say, killed for memory) stops the run with the reason;
    # Play continues from the last checkpoint (saved at the pause above)
    os.kill(trainers[0], signal.SIGKILL)
    expect(page.get_by_text("the training process stopped unexpectedly (killed by signal 9")).to_be_visible(
        timeout=TIMEOUT)
    expect(page.get_by_text("Press Play to continue from it")).to_be_visible()
    expect(play_button(page)).to_contain_text("Play")
    play_button(page).click()
    expect(play_button(page)).to_contain_text("Pause", timeout=TIMEOUT)
    expect(page.get_by_text("the training process stopped unexpectedly")).to_have_count(0)

    t0 = time.perf_counter()
    try:
        expect(play_button(page)).to_contain_text("Finished", timeout=TRAIN_TIMEOUT)
    except AssertionError:
        screenshot(page, artifacts / "train_failure.png", max_height=7000)
        raise
    finish_seconds = time.perf_counter() - t0
    wait_idle(page)
    expect(page.get_by_role("heading", name="Saved checkpoints")).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)
    page.locator(".st-key-train_probe .main-svg").first.wait_for(timeout=TIMEOUT)
    screenshot(page, artifacts / "train_finished.png", max_height=7000)
    (artifacts / "train_latency.json").write_text(json.dumps(
        {"pause_click_s": pause_latency, "play_click_s": play_latency, "rest_of_epoch_s": finish_seconds}))
    assert pause_latency < 10 and play_latency < 10

    # the checkpoint downloads and loads back safely
    with page.expect_download(timeout=TIMEOUT) as download:
        page.locator("[class*='st-key-train_dl_'] button").first.click()
    saved = artifacts / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.suffix == ".pt"
    import diffres

    loaded = diffres.load_checkpoint(saved)
    assert loaded.card["dataset"] == "events" and loaded.card["epochs"] == 3

    page.locator("[class*='st-key-train_insp_'] button").first.click()
    page.wait_for_url(re.compile(r".*/inspect(\?.*)?$"), timeout=TIMEOUT)  # settings ride in the query
    wait_idle(page)
    expect(page.get_by_role("heading", name="Inspect")).to_be_visible()
    expect(page.get_by_role("heading", name="Model card")).to_be_visible()
    page.get_by_role("tab", name="Validation set").click()
    expect(page.get_by_role("heading", name="Confusion matrix")).to_be_visible(timeout=TIMEOUT)
    page.locator(".st-key-inspect_confusion .main-svg").first.wait_for(timeout=TIMEOUT)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    screenshot(page, artifacts / "inspect_run.png", max_height=7000)
