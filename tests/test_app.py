"""The Streamlit app without a browser (AppTest): every page, uploads, bad audio, sliders."""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
SOUND_PAGES = ["pages/home.py", "pages/spectrogram_lab.py", "pages/adaptive_resolution.py", "pages/window_tradeoff.py",
               "pages/diffres_steps.py"]
ALL_PAGES = SOUND_PAGES + ["pages/lessons.py", "pages/train.py", "pages/inspect.py"]
CHART_KEYS = {
    "pages/home.py": ["home_hops_chart"],
    "pages/spectrogram_lab.py": ["lab_chart", "lab_compare_chart"],
    "pages/adaptive_resolution.py": ["adapt_input", "adapt_main", "adapt_compact", "adapt_compare"],
    "pages/window_tradeoff.py": ["win_chart", "win_compare_chart"],
    "pages/diffres_steps.py": ["steps_chart"],
}


def decode(a):
    if isinstance(a, dict) and "bdata" in a:
        arr = np.frombuffer(base64.b64decode(a["bdata"]), dtype=a["dtype"])
        return arr.reshape([int(s) for s in a["shape"].split(",")]) if "shape" in a else arr
    return np.asarray(a)


def chart_elements(at) -> list:
    """The page's charts (``ui.view.chart``'s component elements; AppTest has no typed element for them)."""
    return list(at.get("bidi_component"))


def chart_key(el) -> str:
    return el.proto.id.rsplit("-", 1)[-1]


def chart_figure(el) -> dict:
    """The figure JSON a chart element sends to the browser."""
    return json.loads(el.proto.bytes.decode("utf-8"))["figure"]


def charts(at: AppTest) -> dict[str, dict]:
    """Plotly charts on the page by key -> decoded figure JSON."""
    return {chart_key(el): chart_figure(el) for el in chart_elements(at)}


def trace(fig: dict, name: str) -> dict:
    return next(t for t in fig["data"] if t.get("name") == name)


def wav(seconds: float = 2.0, sample_rate: int = 22050, channels: int = 2) -> bytes:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    x = 0.3 * np.sin(2 * np.pi * 660 * t) * ((t % 0.4) < 0.1)
    buf = io.BytesIO()
    sf.write(buf, np.stack([x] * channels, axis=1), sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.fixture(autouse=True)
def no_checkpoints(tmp_path, monkeypatch):
    """By default the app sees an empty checkpoint folder (the untrained fallback)."""
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setenv("DIFFRES_CHECKPOINT_DIR", str(folder))
    return folder


def start(page: str = "pages/home.py") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    if page != "pages/home.py":
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("page", ALL_PAGES)
def test_page_renders_default_example(page):
    at = start(page)
    assert not at.error
    assert at.session_state["clip"].title == "Triple strokes (tabla)"
    assert at.title[0].value
    got = charts(at)
    for key in CHART_KEYS.get(page, []):
        assert key in got and got[key]["data"], f"{key} missing on {page}"
    for fig in got.values():  # our colours; Streamlit's own template uses the placeholders on purpose
        fig["layout"].pop("template", None)
        assert "#0000" not in json.dumps(fig).lower()


@pytest.mark.parametrize("page", SOUND_PAGES)
def test_uploaded_wav_renders(page):
    at = start(page)
    at.file_uploader(key="sound_upload").set_value(("bursts.wav", wav(), "audio/wav")).run()
    assert not at.exception, at.exception
    assert not at.error
    clip = at.session_state["clip"]
    assert clip.kind == "upload" and clip.title == "bursts.wav"
    assert clip.sample_rate == 16000 and abs(clip.seconds - 2.0) < 0.01
    for key in CHART_KEYS[page]:
        assert key in charts(at)
    # the clip persists on another page
    other = SOUND_PAGES[(SOUND_PAGES.index(page) + 1) % len(SOUND_PAGES)]
    at.switch_page(other).run()
    assert not at.exception
    assert at.session_state["clip"].title == "bursts.wav"


@pytest.mark.parametrize("page", SOUND_PAGES)
@pytest.mark.parametrize("data", [b"this is not audio at all", b"RIFF\x24\x00\x00\x00WAVEfmt junk", b"\x00" * 100])
def test_corrupt_upload_shows_error_not_traceback(page, data):
    at = start(page)
    at.file_uploader(key="sound_upload").set_value(("broken.wav", data, "audio/wav")).run()
    assert not at.exception, at.exception
    messages = [e.value for e in at.error]
    assert messages and any("broken.wav" in m for m in messages)
    assert at.session_state["clip"].title == "Triple strokes (tabla)"  # the previous sound stays
    for key in CHART_KEYS[page]:
        assert key in charts(at)


def test_long_upload_is_trimmed_with_notice():
    at = start("pages/spectrogram_lab.py")
    at.file_uploader(key="sound_upload").set_value(("long.wav", wav(31.0, 8000, 1), "audio/wav")).run()
    assert not at.exception
    assert at.session_state["clip"].trimmed and abs(at.session_state["clip"].seconds - 30.0) < 0.01
    assert any("first 30 s" in i.value for i in at.info)


def test_microphone_recording_becomes_current():
    at = start("pages/spectrogram_lab.py")
    at.audio_input(key="sound_mic").set_value(("rec.wav", wav(1.5, 16000, 1), "audio/wav")).run()
    assert not at.exception
    assert at.session_state["clip"].kind == "microphone"
    at.selectbox(key="sound_example").select("example:siren").run()
    assert at.session_state["clip"].title == "Siren"


def test_preset_shows_known_events():
    at = start("pages/adaptive_resolution.py")
    at.selectbox(key="sound_example").select("preset:click_train").run()
    assert not at.exception
    fig = charts(at)["adapt_main"]
    assert any(t.get("name") == "known events" for t in fig["data"])


def test_lab_sliders_change_the_figure():
    at = start("pages/spectrogram_lab.py")
    x10 = decode(trace(charts(at)["lab_chart"], "log-mel")["x"])
    at.slider(key="lab_hop").set_value(40).run()
    assert not at.exception
    x40 = decode(trace(charts(at)["lab_chart"], "log-mel")["x"])
    n = at.session_state["clip"].samples.size
    assert len(x10) == 1 + n // 160 + 1 and len(x40) == 1 + n // 640 + 1  # frames + 1 edges
    assert abs(x40[-1] - x10[-1]) < 0.05  # same clip length in seconds
    at.selectbox(key="lab_mels").set_value(128).run()
    z = decode(trace(charts(at)["lab_chart"], "log-mel")["z"])
    assert z.shape[0] == 128
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Time step"] == "40 ms" and metrics["Classifier cost"] == "0.25x"


def test_lab_reset_restores_the_default_controls():
    at = start("pages/spectrogram_lab.py")
    at.slider(key="lab_hop").set_value(3).run()
    at.selectbox(key="lab_mels").set_value(128).run()
    at.button(key="lab_reset").click().run()
    assert not at.exception
    assert at.slider(key="lab_hop").value == 10 and at.selectbox(key="lab_mels").value == 64


def test_lab_invalid_frequency_range_is_an_error():
    at = start("pages/spectrogram_lab.py")
    at.slider(key="lab_frange").set_value((4000, 4000)).run()
    assert not at.exception
    assert at.error


def merged_frames(fig: dict) -> int:
    """Output frames the merged row shows: its merge boundaries plus one (its columns lie on an
    even grid, so plotly.js draws it as one image)."""
    tr = trace(fig, "merged")
    assert "x" not in tr and tr["dx"] > 0  # an even grid (x0/dx)
    return len(decode(trace(fig, "merge boundaries")["x"])) // 2 + 1


def merged_end(fig: dict) -> float:
    """Seconds where the merged row's columns end."""
    tr = trace(fig, "merged")
    return tr["x0"] + (decode(tr["z"]).shape[1] - 0.5) * tr["dx"]


def test_fixed_frontend_comparison_runs_only_while_open():
    at = start("pages/adaptive_resolution.py")
    assert any("Same frame budget" in e.label for e in at.expander)
    fig = charts(at)["adapt_compare"]  # open at first
    budget = next(c.value for c in at.caption if c.value.startswith("All three keep"))
    out_len = int(budget.split()[3])
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert [t.split(":")[0] for t in titles] == ["DiffRes", "Average pooling", "Change hop (evenly spaced frames)"]
    assert all(f"{out_len} frames" in t for t in titles)  # one budget for all three
    at.session_state["adapt_compare_open"] = False  # what a click on the open expander does
    at.run()
    assert not at.exception, at.exception
    assert "adapt_compare" not in charts(at) and "adapt_main" in charts(at)  # closed: not computed, not sent


def test_adaptive_rate_slider_changes_the_figure():
    at = start("pages/adaptive_resolution.py")
    assert any("untrained" in w.value.lower() for w in at.warning)
    f50 = merged_frames(charts(at)["adapt_main"])
    at.slider(key="adapt_rate").set_value(0.75).run()
    assert not at.exception
    f75 = merged_frames(charts(at)["adapt_main"])
    n_frames = 1 + at.session_state["clip"].samples.size // 160  # 10 ms hop
    assert f50 == n_frames // 2 and f75 == n_frames // 4
    assert abs(merged_end(charts(at)["adapt_main"]) - n_frames * 0.01) < 1e-4
    at.select_slider(key="adapt_hop").set_value(2.0).run()
    assert not at.exception
    n_fine = 1 + at.session_state["clip"].samples.size // 32  # 2 ms hop
    assert merged_frames(charts(at)["adapt_main"]) == n_fine // 4


def test_adaptive_listen_and_downloads():
    at = start("pages/adaptive_resolution.py")
    at.toggle(key="adapt_listen").set_value(True).run()
    assert not at.exception
    players = at.get("audio")
    assert len(players) == 4  # sidebar player, original, two resyntheses
    labels = {key: at.download_button(key=key).label for key in ("adapt_png", "adapt_csv", "adapt_edges_csv", "adapt_npz")}
    assert labels == {"adapt_png": "PNG figure", "adapt_csv": "Importance (CSV)", "adapt_edges_csv": "Bin edges (CSV)",
                      "adapt_npz": "Merged spectrogram (NPZ)"}
    at.toggle(key="adapt_listen").set_value(False).run()
    assert len(at.get("audio")) == 1  # only the sidebar's player without listening


@pytest.fixture
def shipped_like(no_checkpoints):
    """A checkpoint folder holding one (untrained but valid) DiffRes model, a baseline and a broken file."""
    import diffres
    from diffres.models import AudioClassifier, ModelConfig

    torch.manual_seed(0)
    model = AudioClassifier(ModelConfig.from_dict(dict(classes=("alarm_clock", "siren", "other"), frontend="diffres",
                                                       reduction_rate=0.75, n_mels=64, hop_ms=20.0))).eval()
    diffres.save_checkpoint(no_checkpoints / "tiny_diffres.pt", model,
                            card={"dataset": "events", "metrics": {"test_accuracy": 0.5}})
    base = AudioClassifier(ModelConfig(classes=("a", "b"), frontend="avgpool")).eval()
    diffres.save_checkpoint(no_checkpoints / "avg.pt", base, card={"dataset": "events"})
    (no_checkpoints / "zz_broken.pt").write_bytes(b"not a checkpoint")
    (no_checkpoints / "zz_broken.json").write_text(json.dumps({"frontend": "diffres", "hop_ms": 10}))
    return no_checkpoints


def test_adaptive_uses_a_checkpoint_and_its_settings(shipped_like):
    at = start("pages/adaptive_resolution.py")
    model = at.selectbox(key="adapt_model")
    assert "tiny_diffres" in model.value and len(model.options) == 3  # two diffres files + untrained
    assert at.select_slider(key="adapt_hop").value == 20.0
    assert at.slider(key="adapt_rate").value == 0.75
    assert not any("untrained" in w.value.lower() for w in at.warning)
    assert len(at.get("progress")) == 3  # prediction bars
    assert merged_frames(charts(at)["adapt_main"]) == int((1 + at.session_state["clip"].samples.size // 320) * 0.25)
    broken = next(o for o in model.options if "zz_broken" in o)
    model.select(broken).run()
    assert not at.exception
    assert any("cannot be used" in e.value for e in at.error)


def test_adaptive_with_the_repository_checkpoints(monkeypatch):
    """The shipped checkpoints (when present) load, set the front-end and predict."""
    import ui.cache

    monkeypatch.delenv("DIFFRES_CHECKPOINT_DIR", raising=False)
    shipped = [e for e in ui.cache._checkpoint_index.__wrapped__(str(ui.cache.CHECKPOINT_DIR))
               if e["card"].get("frontend") == "diffres"]
    if not shipped:
        pytest.skip("no DiffRes checkpoint shipped in checkpoints/ yet")
    at = start("pages/adaptive_resolution.py")
    assert not any("untrained" in w.value.lower() for w in at.warning)
    card = shipped[0]["card"]
    assert at.select_slider(key="adapt_hop").value == float(card["hop_ms"])
    assert len(at.get("progress")) >= 2
    at.slider(key="adapt_rate").set_value(0.5).run()
    assert not at.exception


def _pcm(x: np.ndarray, sample_rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.mark.parametrize("page", ["pages/spectrogram_lab.py", "pages/adaptive_resolution.py"])
@pytest.mark.parametrize("kind", ["silent", "20 ms", "8 kHz mono"])
def test_edge_case_sounds_render(page, kind):
    rng = np.random.default_rng(0)
    data = {"silent": _pcm(np.zeros(16000)), "20 ms": _pcm(0.5 * rng.uniform(-1, 1, 320)),
            "8 kHz mono": _pcm(0.3 * np.sin(np.arange(8000) * 0.3), 8000)}[kind]
    at = start(page)
    at.file_uploader(key="sound_upload").set_value((f"{kind}.wav", data, "audio/wav")).run()
    assert not at.exception, at.exception
    assert at.session_state["clip"].title == f"{kind}.wav"
    if kind == "silent":
        assert any("silent" in w.value for w in at.warning)
    if page.endswith("adaptive_resolution.py"):
        at.slider(key="adapt_rate").set_value(0.95).run()
        assert not at.exception, at.exception


def test_time_range_slider_zooms_both_pages():
    at = start("pages/adaptive_resolution.py")
    at.slider(key="adapt_view").set_value((1.0, 2.0)).run()
    assert not at.exception
    ox = decode(trace(charts(at)["adapt_input"], "original")["x"])
    assert 0.99 <= ox[0] <= 1.0 and 2.0 <= ox[-1] <= 2.011
    at.switch_page("pages/spectrogram_lab.py").run()
    at.slider(key="lab_view").set_value((0.5, 1.0)).run()
    assert not at.exception
    lx = decode(trace(charts(at)["lab_chart"], "log-mel")["x"])
    assert len(lx) - 1 == 50 and lx[0] == pytest.approx(0.5) and lx[-1] == pytest.approx(1.0)
    # a new, shorter sound resets the range instead of failing
    at.selectbox(key="sound_example").select("example:digit_seven").run()
    assert not at.exception
    assert at.slider(key="lab_view").value[1] == pytest.approx(round(at.session_state["clip"].seconds, 2))


@pytest.mark.parametrize("rate", [0.0, 0.5, 0.9])
def test_cached_merge_equals_the_module_forward(rate):
    """The page caches the score network's output and re-merges per rate; that must equal DiffRes.forward."""
    import diffres
    from diffres.examples import load_example
    from ui import cache

    x = load_example("siren")
    settings = cache.mel_settings(16000, 64, 10.0, 25.0)
    res = cache.diffres_merge("test:siren", cache.UNTRAINED_ID, x, settings, rate)
    mel = cache.log_mel("test:siren", x, settings)
    with torch.no_grad():
        out = cache.untrained_diffres(64)(torch.from_numpy(mel.log_mel).unsqueeze(0), reduction_rate=rate)
    np.testing.assert_allclose(res.avg, out.avg[0].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(res.bin_edges, out.bin_edges[0].numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(res.importance, out.importance[0].numpy(), rtol=1e-6, atol=1e-6)
    assert res.out_len == diffres.output_length(mel.log_mel.shape[0], rate)


@pytest.mark.parametrize("page", ALL_PAGES)
def test_every_page_runs_inside_the_entrypoint(page):
    """AppTest starts each run in Streamlit's legacy pages/ mode, which would execute the page
    script alone; ui.frame reroutes it through app.py (public st.navigation, then a rerun), so
    the shared sidebar is there on every page, on the first run after a switch too."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page(page).run()  # the first run of this session goes straight to the page
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="sound_example").label == "Example or synthetic preset"
    assert any("Now using:" in c.value for c in at.sidebar.caption)
