"""What a new user met on the sound pages (issue 9's defect list), checked without a browser."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
from test_app import charts, start, trace, wav

from diffres import figures, lessons
from diffres.examples import get_example


def test_home_panel_titles_wrap_and_every_page_is_linked():
    at = start("pages/home.py")
    titles = [a["text"] for a in charts(at)["home_hops_chart"]["layout"]["annotations"]]
    assert len(titles) == 3 and all("<br>" in t for t in titles), titles  # side by side they ran together
    linked = {el.proto.page for el in at.get("page_link")}
    for page in ("spectrogram_lab", "adaptive_resolution", "train", "lessons", "diffres_steps", "window_tradeoff",
                 "inspect"):
        assert any(page in p for p in linked), (page, linked)


def test_lab_mel_bins_is_a_selectbox_and_the_cost_delta_is_short():
    at = start("pages/spectrogram_lab.py")
    at.selectbox(key="lab_mels").set_value(256).run()
    assert not at.exception
    at.slider(key="lab_hop").set_value(2).run()
    cost = next(m for m in at.metric if m.label == "Classifier cost")
    assert cost.proto.delta.endswith(" frames") and "vs" not in cost.proto.delta


def test_bad_upload_is_said_once_and_aiff_is_accepted():
    at = start("pages/adaptive_resolution.py")
    at.file_uploader(key="sound_upload").set_value(("broken.wav", b"not audio at all", "audio/wav")).run()
    said = [e.value for e in at.error if "broken.wav" in e.value]
    assert len(said) == 1, said
    assert "WAV, FLAC, OGG, MP3 or AIFF" in said[0]  # the formats it names are the uploader's
    assert {"aif", "aiff"} <= set(at.file_uploader(key="sound_upload").proto.type) | {
        t.lstrip(".") for t in at.file_uploader(key="sound_upload").proto.type
    }
    t = np.arange(8000) / 8000
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * 440 * t), 8000, format="AIFF")
    at.file_uploader(key="sound_upload").set_value(("tone.aiff", buf.getvalue(), "audio/aiff")).run()
    assert not at.exception and not at.error
    assert at.session_state["clip"].title == "tone.aiff"


def test_adaptive_shows_boundaries_encoding_scale_and_the_model_hop_of_the_prediction():
    at = start("pages/adaptive_resolution.py")
    at.file_uploader(key="sound_upload").set_value(("bursts.wav", wav(3.0), "audio/wav")).run()
    at.slider(key="adapt_rate").set_value(0.75).run()
    got = charts(at)
    boundaries = trace(got["adapt_main"], "merge boundaries")
    assert boundaries.get("visible", True) is True  # 75 output frames: they used to start hidden
    encoding = trace(got["adapt_compact"], "encoding")
    assert encoding["showscale"] is True and encoding["colorbar"]["title"]["text"] == "code"


def test_png_effective_hop_axis_has_numbers_inside_one_decade():
    assert figures.hop_ticks(10.0, 40.0) == [10.0, 20.0]
    assert figures.hop_ticks(12.0, 18.0) == [12.0, 18.0]
    t, f = 400, 16
    edges = np.concatenate([np.linspace(0, 100, 11), np.linspace(100, t, 91)[1:]])  # widths 10 and 3.3 frames
    png = figures.diffres_png(samples=np.zeros(16000 * 4), sample_rate=16000, log_mel=np.zeros((t, f)),
                              hop_seconds=0.01, mel_frequencies=np.arange(f) * 100.0,
                              importance=np.full(t, 0.25), bin_edges=edges, merged=np.zeros((len(edges) - 1, f)))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_alarm_lesson_and_example_agree_on_the_beep():
    lesson = next(item for item in lessons.LESSONS if item.key == "hop_beeps")
    described = get_example("alarm_clock").description
    assert "40 ms beeps" in described and "40 ms on" in lesson.question and "50 ms" not in lesson.question
