"""The teaching parts of the app without a browser (AppTest): every lesson's state and check,
settings in the URL (restored, written, bad ones ignored with a notice), the "Copy link"
control, the step-by-step page's numbers and controls, and the Window page's readouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import diffres
from diffres.examples import load_example
from diffres.explain import diffres_steps, frame_numbers
from diffres.lessons import LESSONS, Facts, lesson
from streamlit.testing.v1 import AppTest
from test_app import charts, decode, trace, wav
from ui.share import PARAMS

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
CHECKPOINTS = ROOT / "checkpoints"


@pytest.fixture(autouse=True)
def folders(tmp_path, monkeypatch):
    """The shipped checkpoints (lessons name them) and a temporary runs folder."""
    monkeypatch.setenv("DIFFRES_CHECKPOINT_DIR", str(CHECKPOINTS))
    monkeypatch.setenv("DIFFRES_RUNS_DIR", str(tmp_path / "runs"))


def start(page: str = "pages/home.py", params: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    for k, v in (params or {}).items():
        at.query_params[k] = v
    at.run()
    if page != "pages/home.py":
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def set_widget(at: AppTest, key: str, value) -> None:
    for kind in ("slider", "select_slider", "radio", "selectbox", "multiselect"):
        found = [w for w in getattr(at, kind) if w.key == key]
        if found:
            (found[0].select(value) if kind == "selectbox" else found[0].set_value(value)).run()
            assert not at.exception, at.exception
            return
    raise AssertionError(f"no widget with key {key!r} on the page")


TITLES = {"lab": "Spectrogram lab", "window": "Window", "adaptive": "Adaptive resolution",
          "steps": "How DiffRes computes", "train": "Train", "inspect": "Inspect"}


def click_start(at: AppTest, button: str, key: str) -> None:
    """Start a lesson: its page opens (``st.switch_page`` in the script).  AppTest runs the next
    runs on the page it was last told, so it is told the lesson's page too, as a browser's URL would."""
    from ui.lessons import PAGES

    at.button(key=button).click().run()
    assert not at.exception, at.exception
    item = lesson(key)
    assert at.title[0].value.startswith(TITLES[item.page]), at.title[0].value
    at.switch_page(PAGES[item.page])


def banner_text(at: AppTest) -> str:
    return " ".join(x.value for x in [*at.success, *at.info] if x.value.startswith(("**Got it", "**Not yet")))


# ------------------------------------------------------------------ lessons


def _first_model(names) -> Path | None:
    return next((CHECKPOINTS / f"{n}.pt" for n in names if (CHECKPOINTS / f"{n}.pt").is_file()), None)


def _model_facts(item) -> dict:
    """What the model-dependent lessons' answers rest on, computed with the library."""
    path = _first_model(item.models)
    if path is None:
        pytest.skip(f"lesson {item.key} runs on a shipped checkpoint ({item.models}), none is in checkpoints/")
    loaded = diffres.load_checkpoint(path)
    fe = diffres.MelFrontend.from_config(loaded.config.mel)
    lm = fe(torch.from_numpy(load_example(item.sound.split(":", 1)[1])))[0]
    rate = item.settings.get("steps_rate", item.settings.get("adapt_rate"))
    with torch.no_grad():
        out = loaded.model.frontend.eval()(lm.unsqueeze(0), reduction_rate=rate)
    spread = diffres.analysis.hop_spread(out.bin_edges, loaded.config.hop_ms)
    return {"steps": diffres_steps(loaded.model.frontend, lm, rate), "log_mel": lm.numpy(), "spread": spread}


def _follow(at: AppTest, item) -> None:
    """Answer the lesson's question through the widgets, as its "How" says."""
    if item.key == "training":
        at.button(key="train_play").click().run()
        for _ in range(120):
            if "Got it" in banner_text(at) or at.button(key="train_play").label == "Finished":
                break
            at.run()
        return
    if item.key == "rate_accuracy":
        at.button(key="inspect_sweep").click().run()
        curve = next(t for t in charts(at)["inspect_rate"]["data"] if t.get("mode", "").startswith("lines"))
        x, y = decode(curve["x"]), decode(curve["y"])
        best = max((r for r in x if any(abs(r - c) < 1e-6 for c in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9))),
                   key=lambda r: y[list(x).index(r)])
        set_widget(at, "lesson_answer", f"{best:g}")
        return
    measured = _model_facts(item) if item.models else {}
    for key, value in item.solve(Facts(dict(item.settings), item.sound, np.zeros(1), 16000, measured)).items():
        set_widget(at, "lesson_answer" if key == "answer" else key, value)


@pytest.mark.parametrize("key", [x.key for x in LESSONS])
def test_lesson_loads_its_state_and_its_check_passes_when_followed(key):
    item = lesson(key)
    at = start("pages/spectrogram_lab.py")
    # earlier tweaks that must not leak into the lesson
    set_widget(at, "lab_mels", 128)
    set_widget(at, "lab_db", 40)
    at.file_uploader(key="sound_upload").set_value(("mine.wav", wav(), "audio/wav")).run()
    at.switch_page("pages/lessons.py").run()
    click_start(at, f"lesson_start_{key}", key)
    ss = at.session_state
    assert ss["lesson_active"] == key
    for k, v in item.settings.items():
        assert ss[k] == v, k
    if item.sound is not None:
        assert ss["clip"].digest.startswith(item.sound)  # the lesson's sound replaced the upload
    assert any(m.value.startswith(f"**Lesson {[x.key for x in LESSONS].index(key) + 1} of") for m in at.markdown)
    assert "Not yet" in banner_text(at)
    _follow(at, item)
    assert not at.exception, at.exception
    assert "Got it" in banner_text(at), banner_text(at)
    assert key in ss["lessons_done"]


def test_every_lesson_state_is_a_state_the_app_and_a_link_can_hold():
    from ui.lessons import PAGES

    for item in LESSONS:
        assert item.page in PAGES
        for key, value in item.settings.items():
            spec = PARAMS[key]
            assert spec.parse(spec.show(value)) == value, key  # a value the control (and a link) can hold
        if item.sound is not None:
            assert PARAMS["sound_example"].parse(item.sound) == item.sound


def test_lesson_progress_and_next_lesson():
    at = start("pages/lessons.py")
    click_start(at, "lesson_start_frame_cost", "frame_cost")
    set_widget(at, "lab_hop", 2)
    assert "Got it" in banner_text(at)
    click_start(at, "lesson_next", "long_window")  # the next one not yet done
    at.run()
    assert at.session_state["lesson_active"] == "long_window" and at.session_state["win_ms"] == 10
    at.button(key="lesson_end").click().run()
    assert "lesson_active" not in at.session_state and not banner_text(at)
    at.switch_page("pages/lessons.py").run()
    assert "1 of" in json.dumps([p.proto.text for p in at.get("progress")])


# ------------------------------------------------------------------ settings in the URL


def test_a_link_restores_settings_and_sound_and_ignores_bad_ones():
    params = {"sound_example": "example:siren", "lab_hop": "5", "lab_win": "999", "adapt_rate": "0.4",
              "lab_frange": "4000,100", "nonsense": "1", "win_ms": "64"}
    at = start("pages/spectrogram_lab.py", params)
    assert at.session_state["clip"].title == "Siren"
    assert at.slider(key="lab_hop").value == 5 and at.slider(key="lab_win").value == 25
    notice = next(w.value for w in at.warning if "ignored" in w.value)
    for bad in ("lab_win=999", "lab_frange=4000,100", "nonsense"):
        assert bad in notice
    assert "lab_hop" not in notice and not at.error
    qp = dict(at.query_params)
    assert qp["lab_hop"] == "5" and "lab_win" not in qp and "nonsense" not in qp  # the URL keeps what was used
    at.switch_page("pages/adaptive_resolution.py").run()
    assert at.slider(key="adapt_rate").value == 0.4  # a rate from the link survives the model's default
    at.switch_page("pages/window_tradeoff.py").run()
    assert at.select_slider(key="win_ms").value == 64
    at.button(key="url_notice_ok").click().run()
    assert not [w for w in at.warning if "ignored" in w.value]


def test_the_url_follows_every_page_and_the_copy_link_says_what_cannot_travel():
    at = start("pages/spectrogram_lab.py")
    assert not {k: v for k, v in at.query_params.items() if k.startswith("lab_")}  # defaults stay out
    set_widget(at, "lab_hop", 20)
    at.switch_page("pages/adaptive_resolution.py").run()
    set_widget(at, "adapt_rate", 0.5)
    qp = dict(at.query_params)
    assert qp["lab_hop"] == "20" and qp["adapt_rate"] == "0.5"  # the lab's hop persists on another page
    link = next(c.value for c in at.code if c.value.startswith("http"))
    assert "/adaptive_resolution?" in link and "lab_hop=20" in link and "adapt_rate=0.5" in link
    assert not [w for w in at.warning if "cannot travel" in w.value]
    at.file_uploader(key="sound_upload").set_value(("mine.wav", wav(), "audio/wav")).run()
    assert any("cannot travel in a link" in w.value and "mine.wav" in w.value for w in at.warning)


@pytest.mark.parametrize("page, keys", [
    ("pages/home.py", ["home_hops"]),
    ("pages/spectrogram_lab.py", ["lab_hop", "lab_win", "lab_mels", "lab_frange", "lab_db", "lab_cmap",
                                  "lab_compare_hops"]),
    ("pages/window_tradeoff.py", ["win_ms", "win_hop", "win_fmax", "win_db", "win_compare", "win_tile_s"]),
    ("pages/adaptive_resolution.py", ["adapt_db", "adapt_cmap", "adapt_listen"]),
    ("pages/diffres_steps.py", ["steps_span", "steps_step"]),
    ("pages/train.py", ["train_source", "train_dataset", "train_quick", "train_frontend", "train_rate", "train_hop",
                        "train_epochs", "train_lr", "train_seed", "train_width", "train_batch", "train_mels",
                        "train_specaug", "train_reverb"]),
])
def test_url_defaults_and_options_are_the_widgets_own(page, keys):
    """A value equal to the widget's default is left out of the link; every option parses."""
    at = start(page)
    widgets = {w.key: w for kind in ("slider", "select_slider", "selectbox", "multiselect", "toggle", "number_input",
                                     "radio") for w in getattr(at, kind)}
    widgets |= {w.key: w for w in at.get("button_group")}
    for key in keys:
        spec = PARAMS[key]
        if key in widgets:
            value = widgets[key].value
        else:
            value = at.session_state[key]
        value = list(value) if isinstance(value, list) else value
        assert spec.parse(spec.show(value)) == (tuple(value) if isinstance(spec.default, tuple) else value), key
        assert spec.show(value) == spec.show(spec.default), key
        offered = getattr(widgets.get(key), "options", None)
        if spec.options is not None and offered:  # the same choices (AppTest shows them as text)
            labels = [widgets[key].format_func(o) if hasattr(widgets[key], "format_func") else o for o in spec.options]
            assert [str(o) for o in offered] in ([str(o) for o in spec.options], [str(x) for x in labels]), key


# ------------------------------------------------------------------ how DiffRes computes


def test_step_view_numbers_are_the_librarys():
    at = start("pages/diffres_steps.py")
    ss = at.session_state
    model_id, rate, j = ss["steps_model"], ss["steps_rate"], ss["steps_frame"]
    loaded = diffres.load_checkpoint(model_id.rsplit(":", 1)[0])
    fe = diffres.MelFrontend.from_config(loaded.config.mel)
    lm = fe(torch.from_numpy(at.session_state["clip"].samples))[0]
    steps = diffres_steps(loaded.model.frontend, lm, rate)
    n = frame_numbers(steps, lm.numpy(), j)
    for step in range(1, 8):
        table = at.dataframe[0].value
        np.testing.assert_array_equal(table["input frame"].to_numpy(), n.frames)
        if step >= 3:
            np.testing.assert_allclose(table["importance"].to_numpy(), n.importance, rtol=0, atol=1e-7)
        if step >= 4:
            np.testing.assert_allclose(table["c end"].to_numpy(), n.c_end, rtol=0, atol=1e-9)
        if step >= 5:
            np.testing.assert_allclose(table[f"W[i, {j}]"].to_numpy(), n.weights, rtol=0, atol=1e-9)
        fig = charts(at)["steps_chart"]
        rect = next(s for s in fig["layout"]["shapes"] if s["type"] == "rect")
        assert rect["x0"] == pytest.approx(steps.bin_edges[j] * fe.hop_seconds)
        if step < 7:
            at.button(key="steps_next").click().run()
            assert at.select_slider(key="steps_step").value == step + 1
    edges = next(c.value for c in at.caption if c.value.startswith("Bin edges"))
    assert f"{n.start:.3f}" in edges and f"{n.end:.3f}" in edges
    assert at.button(key="steps_next").disabled
    at.button(key="steps_back").click().run()
    assert at.select_slider(key="steps_step").value == 6


def test_step_view_plays_through_and_follows_the_output_frame():
    at = start("pages/diffres_steps.py")
    at.button(key="steps_play").click().run()
    assert at.select_slider(key="steps_step").value == 1 and at.button(key="steps_play").label == "Pause"
    seen = [1]
    for _ in range(8):  # AppTest runs a run_every fragment once per run: one tick each
        at.run()
        seen.append(at.select_slider(key="steps_step").value)
    assert seen[:7] == [1, 2, 3, 4, 5, 6, 7] and seen[-1] == 7 and at.button(key="steps_play").label == "Play through"
    set_widget(at, "steps_frame", 3)
    fig = charts(at)["steps_chart"]
    bars = trace(fig, "W[i, 3]")
    assert decode(bars["y"]).sum() == pytest.approx(1.0, abs=1e-5)
    at.file_uploader(key="sound_upload").set_value(("mine.wav", wav(1.0, 16000, 1), "audio/wav")).run()
    assert not at.exception and not at.error
    assert at.slider(key="steps_frame").max <= 25  # 101 frames at rate 0.75


# ------------------------------------------------------------------ window


def test_window_page_readouts_follow_the_window():
    at = start("pages/window_tradeoff.py", {"sound_example": "preset:tones_and_clicks"})
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Bin width"] == "40.0 Hz" and metrics["Window"] == "25 ms"
    set_widget(at, "win_ms", 100)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Bin width"] == "10.0 Hz" and metrics["Tile: window x bin width"].endswith("= 1")
    assert any("two lines" in i.value and "smeared" in i.value for i in at.info)
    fig = charts(at)["win_chart"]
    rect = next(s for s in fig["layout"]["shapes"] if s["type"] == "rect")
    assert rect["x1"] - rect["x0"] == pytest.approx(0.1) and rect["y1"] - rect["y0"] == pytest.approx(10.0)
    assert len([t for t in charts(at)["win_compare_chart"]["data"] if t["type"] == "heatmap"]) == 3
