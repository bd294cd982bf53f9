"""Fixtures for the Playwright browser tests: Debian Chromium and one app server per module."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("DIFFRES_BROWSER_ARTIFACTS", "/tmp/diffres_browser"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def fixture_wav(tmp_path_factory) -> Path:
    """A 3 s 22.05 kHz stereo WAV with tone bursts (exercises resampling and mono mixing)."""
    import soundfile as sf

    sr = 22050
    t = np.arange(3 * sr) / sr
    env = ((t % 0.5) < 0.08).astype(np.float32)
    x = 0.4 * np.sin(2 * np.pi * 880 * t) * env
    path = tmp_path_factory.mktemp("audio") / "bursts.wav"
    sf.write(path, np.stack([x, 0.5 * x], axis=1), sr)
    return path


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, fixture_wav):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian Chromium (/usr/bin/chromium) is not installed")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={fixture_wav}"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "permissions": ["microphone"], "viewport": {"width": 1500, "height": 1000}}


@pytest.fixture(scope="module")
def app_url():
    """Start ``streamlit run app.py`` on a free port for the module; yield its URL."""
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
           "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        proc.terminate()
        pytest.fail("the Streamlit server did not start within 60 s")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """Training runs of the module's app server go to a temporary folder, not ~/.cache.  Request
    it before the server starts: ``pytestmark = pytest.mark.usefixtures("runs_dir")``."""
    old = os.environ.get("DIFFRES_RUNS_DIR")
    os.environ["DIFFRES_RUNS_DIR"] = str(tmp_path_factory.mktemp("runs"))
    yield os.environ["DIFFRES_RUNS_DIR"]
    if old is None:
        os.environ.pop("DIFFRES_RUNS_DIR", None)
    else:
        os.environ["DIFFRES_RUNS_DIR"] = old
